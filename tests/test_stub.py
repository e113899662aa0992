"""The hand-written stub `_core.pyi` matches the compiled extension (mypy.stubtest)."""

import subprocess
import sys

import pytest


def test_core_stub_matches_extension():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "headstart._core"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr

"""Properties of the built extension itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headstart import _core


def test_simd_intrinsics_are_inlined():
    """No `core::arch` intrinsic may survive as an out-of-line function in the extension.

    An intrinsic that needs a CPU feature its caller's `#[target_feature]` does not enable
    (e.g. AVX-512DQ's `_mm512_or_ps` in an `avx512f` kernel) compiles to a call per vector
    with the vectors passed through memory: that once cost a third of a BCE kernel's time
    and no test of values can see it. Such calls leave `core_arch` symbols behind.
    """
    so = Path(_core.__file__).read_bytes()
    # Rust v0 (`_R...`) and legacy (`_ZN...`) mangled names of our own functions; none
    # means the symbol table was stripped and there is nothing to inspect.
    if not re.search(rb"9headstart", so):
        pytest.skip("the extension's symbol table is stripped")
    arch = set(re.findall(rb"_[RZ]\w*core9core_arch\w*", so))
    out_of_line = sorted(s.decode() for s in arch if b"_mm" in s)
    assert not out_of_line, f"intrinsics compiled out of line: {out_of_line}"

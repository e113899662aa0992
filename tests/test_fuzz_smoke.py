"""A bounded run of the reader fuzzer (fuzz/fuzz_readers.py) on every test run.

50 derandomized examples of the fuzzer's own strategies (random bytes, valid and mutated
CSV/TSV/text/gzip/.npy files) scanned by its worker subprocess with a timeout: each must
give statistics or an exception of the documented families, never a panic, a crash, a hang
or another exception type. The long runs are ``python fuzz/fuzz_readers.py --seconds N``.

The kinds here are the explicit ones, which go straight to the Rust readers. ``kind='auto'``
and ``'multilabel'`` on files first go through Python helpers (a CSV sniffer, ``np.load``)
that today leak csv.Error / EOFError / zlib.error / tokenize.TokenError; those are pinned as
strict xfails in tests/test_bad_input.py and get their own fuzz smoke here once fixed.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings

_PATH = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_readers.py"
_spec = importlib.util.spec_from_file_location("fuzz_readers", _PATH)
fr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fr)


@pytest.fixture(scope="module")
def worker():
    with fr.Worker(timeout=30.0) as w:
        yield w


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz"))


@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=fr.cases(kinds=("regression", "classification")))
def test_readers_fuzz_smoke(worker, workdir, case):
    out = fr.run_case(worker, workdir, case)
    assert not fr.is_finding(out), (case[0], case[2], out)


def test_worker_reports_a_hang_and_a_crash(tmp_path):
    """The harness itself: a worker that hangs or dies is reported, not waited on."""
    p = tmp_path / "x.csv"
    p.write_text("y\n1\n")
    with fr.Worker(timeout=0.5) as w:
        assert w.run(str(p), {"kind": "regression"})["status"] == "ok"
        w.proc.stdin.write("not json\n")  # the worker dies on a malformed job
        w.proc.stdin.flush()
        w.proc.wait(timeout=30)
        out = w.run(str(p), {"kind": "regression"})  # restarted transparently
        assert out["status"] == "ok"
        w.proc.kill()
        w.proc.wait(timeout=30)
        # the next job goes to a fresh worker
        assert w.run(str(p), {"kind": "regression"})["status"] == "ok"
        assert w.started == 3

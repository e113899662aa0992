"""Nothing lost, nothing hangs, nothing crashes: line endings, number spellings, pipes and
FIFOs, corrupt states, absurd arguments, values near the float64 maximum, numpy's quantile
methods. Each test is one way a user could otherwise get a silent wrong answer."""

from __future__ import annotations

import math
import os
import pickle
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import headstart as hs
from headstart import HeadstartError
from headstart.stats.results import QUANTILE_METHODS

PY = sys.executable


def _run(code: str, **kw):
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120, **kw)


# ------------------------------------------------------------------ line endings, spellings


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("kind", ["classes", "regression"])
def test_every_line_ending_reads_every_value(tmp_path, nl, kind):
    vals = [3, 1, 1, 2, 2, 2, 0] * 50
    p = tmp_path / "y.csv"
    p.write_bytes(nl.join([b"id,y"] + [f"{i},{v}".encode() for i, v in enumerate(vals)]) + nl)
    if kind == "classes":
        s = hs.scan(p, column="y", kind="classification")
        assert s.n == len(vals)
        assert dict(zip(s.classes.tolist(), s.counts.tolist())) == {0: 50, 1: 100, 2: 150, 3: 50}
    else:
        s = hs.scan(p, column="y", kind="regression")
        assert s.n == len(vals) and s.mean == pytest.approx(np.mean(vals))
        assert s.median == np.median(vals)
    one = tmp_path / "one.txt"  # one value per line
    one.write_bytes(nl.join(str(v).encode() for v in vals) + nl)
    assert hs.scan(one, header=False).n == len(vals)


def test_cr_then_lf_is_an_error_not_a_guess(tmp_path):
    p = tmp_path / "mixed.csv"
    p.write_bytes(b"y\r" + b"1\r2\r" * 40000 + b"3\n4\n")
    with pytest.raises(HeadstartError, match=r"mixed\.csv: mixed line endings.*CR-only.*LF"):
        hs.scan(p)


def test_integer_spellings_are_one_class(tmp_path):
    p = tmp_path / "s.csv"
    p.write_bytes(b"y\n3\n 3\n+3\n3 \n4\n")
    r = hs.bias_init(p)
    assert r.counts[3] == 4 and r.counts[4] == 1 and r.n == 5


# ------------------------------------------------------------------ stdin, pipes, FIFOs


def test_stdin_pipe_is_read_completely():
    data = "".join(f"{i % 7}\n" for i in range(100_000))
    r = _run(
        "import headstart as hs; s = hs.scan('/dev/stdin'); print(s.n, s.counts.tolist())",
        input=data,
    )
    assert r.returncode == 0, r.stderr
    n, counts = r.stdout.split(" ", 1)
    assert int(n) == 100_000
    assert eval(counts) == np.bincount(np.arange(100_000) % 7).tolist()


def test_stdin_second_pass_is_not_needed_or_said(tmp_path):
    # the median needs two passes; stdin is spooled, so it is read exactly once
    vals = np.random.default_rng(1).normal(size=20_000)
    data = "".join(f"{float(v)!r}\n" for v in vals)
    r = _run(
        "import headstart as hs; print(repr(hs.scan('/dev/stdin', kind='regression').median))",
        input=data,
    )
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == np.median(vals)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_read_once_and_returns(tmp_path):
    fifo = tmp_path / "labels"
    os.mkfifo(fifo)
    vals = [i % 5 for i in range(50_000)]

    def writer():
        with open(fifo, "w") as f:
            f.writelines(f"{v}\n" for v in vals)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    r = _run(f"import headstart as hs; print(hs.scan({str(fifo)!r}).n)")
    t.join(timeout=10)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(vals)


# ------------------------------------------------------------------ corrupt states


def _states():
    c = hs.ClassCounts()
    c.update(np.array([0, 1, 1, 2, 2, 2, 7]))
    s = hs.RegressionState(quantiles=[0.25])
    s.update(np.linspace(-3, 5, 2000))
    return [c, s]


def _same(a, b):
    return pickle.dumps(a) == pickle.dumps(b)


@pytest.mark.parametrize("which", [0, 1], ids=["ClassCounts", "RegressionState"])
def test_every_single_bit_flip_of_a_pickled_state_is_refused(which):
    state = _states()[which]
    b = pickle.dumps(state)
    changed = []
    for bit in range(len(b) * 8):
        c = bytearray(b)
        c[bit // 8] ^= 1 << (bit % 8)
        try:
            got = pickle.loads(bytes(c))
        except Exception:
            continue  # refused: by pickle itself or by the state's checksum
        if not isinstance(got, type(state)) or not _same(got, state):
            changed.append(bit)
    assert changed == [], f"{len(changed)} bit flips unpickled to a different state"


def test_truncated_state_bytes_are_refused():
    for state in _states():
        b = pickle.dumps(state)
        for cut in range(1, len(b), max(1, len(b) // 50)):
            with pytest.raises(Exception):
                pickle.loads(b[:cut])
        # the core's own frame: a truncated copy says so
        core = state.__getstate__()["s"]
        with pytest.raises(HeadstartError, match="truncated or corrupt"):
            type(state._s).from_bytes(core[:-5])


# ------------------------------------------------------------------ absurd arguments


def test_absurd_thread_counts_are_refused_fast():
    before = hs.get_num_threads()
    for n in [2**31, 10**6]:
        with pytest.raises(HeadstartError, match=r"at most \d+ threads"):
            hs.set_num_threads(n)
    assert hs.get_num_threads() == before
    with pytest.raises(OverflowError):
        hs.set_num_threads(-1)


def test_rayon_num_threads_above_the_cap_is_capped_and_said():
    r = _run(
        "import headstart as hs; print(hs.get_num_threads())",
        env={**os.environ, "RAYON_NUM_THREADS": str(2**31)},
    )
    assert r.returncode == 0 and int(r.stdout) <= 8 * os.cpu_count() + 64
    assert "above headstart's cap" in r.stderr


@pytest.mark.parametrize("value", ["bogus", "avx9"])
def test_invalid_simd_level_is_said(value):
    r = _run(
        "import headstart as hs; print(hs.simd_level())",
        env={**os.environ, "HEADSTART_SIMD": value},
    )
    assert r.returncode == 0
    assert f"HEADSTART_SIMD={value!r} is not a level" in r.stderr


@pytest.mark.parametrize("value,level", [("AVX-512", "avx512"), (" Baseline ", "scalar")])
def test_simd_level_aliases_are_the_cores(value, level):
    # the import-time check reads the names from the core (_core.parse_simd_level)
    if level not in hs.available_simd_levels():
        pytest.skip(f"this CPU has no {level}")
    r = _run(
        "import headstart as hs; print(hs.simd_level())",
        env={**os.environ, "HEADSTART_SIMD": value},
    )
    assert r.returncode == 0 and r.stdout.strip() == level and "HEADSTART_SIMD" not in r.stderr


def test_fractional_ignore_index_is_a_type_error():
    x = np.zeros((3, 3))
    with pytest.raises(TypeError, match=r"ignore_index must be an integer, got 1\.5"):
        hs.cross_entropy(x, np.array([0, 1, 2]), ignore_index=1.5)
    # numpy integers are integers
    a = hs.cross_entropy(x, np.array([0, 1, 2]), ignore_index=np.int64(1))
    assert a == pytest.approx(math.log(3))


def test_uint64_target_out_of_range_names_the_value():
    with pytest.raises(IndexError, match=str(2**64 - 1)):
        hs.cross_entropy(np.zeros((2, 3)), np.array([0, 2**64 - 1], dtype=np.uint64))


# ------------------------------------------------------------------ files that are not what they say


def test_plain_text_named_gz_says_not_gzip(tmp_path):
    for body in [b"y\n1\n2\n", b"y\n" + b"1.5\n" * 1000]:
        p = tmp_path / "plain.csv.gz"
        p.write_bytes(body)
        with pytest.raises(OSError, match=r"plain\.csv\.gz: .*not gzip-compressed"):
            hs.scan(p)


@pytest.mark.parametrize("body", [b"a,b\n", b"a,b\n\n"], ids=["header-only", "header-blank"])
def test_missing_column_of_a_header_only_file_is_named(tmp_path, body):
    p = tmp_path / "h.csv"
    p.write_bytes(body)
    with pytest.raises(HeadstartError, match=r"no column named [\'\"]x[\'\"].*a, b"):
        hs.scan(p, column="x")
    r = subprocess.run(
        [PY, "-m", "headstart", "init", str(p), "--column", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and re.search(r"no column named .x.", r.stderr), r.stderr


# ------------------------------------------------------------------ float64 range, numpy's rules

M = np.finfo(np.float64).max


def test_moments_near_the_float64_maximum():
    s = hs.scan(np.array([M, -M, M]))
    assert s.mean == np.mean(np.array([M, -M, M]))  # numpy: 5.99e307
    assert s.var == math.inf  # the variance itself is beyond the range (numpy: inf)
    s = hs.scan(np.array([M, M, M]))
    assert (s.mean, s.var, s.median) == (M, 0.0, M)
    s = hs.scan(np.array([M, M * 0.5]))
    assert s.median == 0.75 * M  # numpy's (a + b) / 2 overflows to inf here


def test_median_of_signed_zeros_is_numpy_bit_for_bit():
    for v in [[-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0], [-0.0, 0.0, 0.0, -0.0]]:
        got = hs.scan(np.array(v)).median
        want = np.median(np.array(v))
        assert np.signbit(got) == np.signbit(want) and got == want, v


@settings(max_examples=60, deadline=None)
@given(
    vals=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)), min_size=1, max_size=300
    ),
    q=st.floats(0.0, 1.0),
)
def test_all_numpy_quantile_methods_bit_for_bit(vals, q):
    y = np.array(vals)
    s = hs.scan(y, quantiles=[q])
    for m in QUANTILE_METHODS:
        want = np.quantile(y, q, method=m)
        got = s.quantile(q, m)
        assert got == want or (math.isnan(got) and math.isnan(want)), (m, q, got, want)


def test_quantile_method_names_are_numpys():
    assert len(QUANTILE_METHODS) == 13
    with pytest.raises(ValueError, match="median_unbiased"):
        hs.scan(np.arange(5.0), quantiles=[0.5]).quantile(0.5, "bogus")


@pytest.mark.parametrize("loss", ["cross_entropy", "bce", "mse"])
def test_zero_columns_is_an_error_not_nan(loss):
    with pytest.raises(HeadstartError, match="0 columns"):
        hs.bias_init(np.zeros((5, 0)), loss)


SHRINK = """
import os, sys, numpy as np, headstart as hs
p, kind = sys.argv[1], sys.argv[2]
n = 40_000_000
a = (np.arange(n) % 1000).astype({"int64": np.int64, "int32": np.int32}.get(kind, np.float64))
np.save(p, a)
state = {"cut": False}
def cut(pass_no, done, total):
    if not state["cut"]:
        state["cut"] = True
        os.truncate(p, 4096)  # another process rewrote the file under the scan
try:
    if kind != "float":
        hs.scan(p, kind="classification", progress=cut)
    else:
        hs.scan(p, kind="regression", progress=cut)
except OSError as e:
    print("OSError:", e)
"""


@pytest.mark.parametrize("kind", ["float", "int32", "int64"])
def test_npy_truncated_while_scanned_is_an_error_not_sigbus(tmp_path, kind):
    r = _run(SHRINK.replace("sys.argv[1]", repr(str(tmp_path / "y.npy"))).replace(
        "sys.argv[2]", repr(kind)))
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])  # -7 would be SIGBUS
    assert "the file shrank to 4096 bytes while being read" in r.stdout, r.stdout


RACE = """
import os, sys, threading, time, numpy as np, headstart as hs
p, kind, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = 30_000_000
if kind == "raw":
    (np.arange(n) % 5000).astype(np.uint16).tofile(p)
else:
    np.save(p, (np.arange(n) % 1000).astype({"int64": np.int64, "int32": np.int32}.get(kind, np.float64)))
def cut():
    time.sleep(delay)
    os.truncate(p, 4096)  # at a moment no check is waiting for
threading.Thread(target=cut, daemon=True).start()
try:
    if kind == "raw":
        hs.scan(p, kind="classification", label_dtype="uint16")
    elif kind == "float":
        hs.scan(p, kind="regression", quantiles=[0.25])
    else:
        hs.scan(p, kind="classification")
    print("finished before the cut")
except OSError as e:
    print("OSError:", e)
except hs.HeadstartError as e:  # cut before the file was opened: a short file
    print("short at open:", e)
"""


@pytest.mark.parametrize("kind", ["float", "int32", "int64", "raw"])
def test_truncation_at_any_moment_is_never_sigbus(tmp_path, kind):
    # Files are read by position, not mapped: whenever the truncation lands, the scan ends
    # with an OSError naming the file (or finishes first), and the process survives.
    suffix = ".bin" if kind == "raw" else ".npy"
    for delay in (0.0, 0.01, 0.03, 0.08):
        p = tmp_path / f"y{suffix}"
        code = RACE.replace("sys.argv[1]", repr(str(p))).replace("sys.argv[2]", repr(kind))
        r = _run(code.replace("float(sys.argv[3])", repr(delay)))
        assert r.returncode == 0, (delay, r.returncode, r.stderr[-500:])  # -7 is SIGBUS
        out = r.stdout.strip()
        assert (
            out == "finished before the cut"
            or (out.startswith("OSError:") and "shrank" in out and str(p) in out)
            or (out.startswith("short at open:") and str(p) in out)
        ), (delay, out)


def _denied_path():
    """A path that even root may not read (this machine runs the tests as root, so a
    chmod 000 file would be readable): /proc/1/mem where the kernel refuses it."""
    p = "/proc/1/mem"
    try:
        with open(p, "rb") as f:
            f.read(1)
    except PermissionError:
        return p
    except OSError:
        return None
    return None


@pytest.mark.parametrize("fmt", [None, "csv", "text", "raw", "npy"])
def test_permission_denied_is_a_permission_error(fmt):
    p = _denied_path()
    if p is None:
        pytest.skip("no unreadable path on this machine (e.g. /proc/1/mem readable)")
    kw = {"label_dtype": "uint8"} if fmt == "raw" else {}
    with pytest.raises(PermissionError, match="/proc/1/mem"):
        hs.scan(p, format=fmt, **kw)

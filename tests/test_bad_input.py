"""The bad-input matrix: every public function and the CLI, fed each class of bad input.

Each row is (id, call, expected exception type, regex the message must match). The regex
names the problem (the dtype, the shape, the file and line, the option), so a row fails if
the error is right in type but useless to the user. Rows where today's behaviour is wrong
(a crash, a silent wrong answer, an exception outside the documented families or a message
that hides the cause) are marked ``xfail(strict=True)`` with the reason: they turn into
failures the day the core is fixed, and the mark is then removed.

File inputs are written by ``_files`` into a temporary directory; file scans run in the
test process (the readers are Rust: a panic would surface as PanicException, which
``pytest.raises(Exception)`` does not catch, so a panic fails the row loudly). The CLI runs
in a subprocess with a timeout.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import headstart as hs
from headstart import HeadstartError

# ------------------------------------------------------------------------------ the files


def _npy(a, **kw) -> bytes:
    b = io.BytesIO()
    np.save(b, a, **kw)
    return b.getvalue()


_GZ = gzip.compress(b"y\n" + b"1.5\n" * 10000)
_NPY = _npy(np.arange(1000, dtype=np.float64))

FILES = {
    "ok.csv": b"id,y\n1,2.5\n2,3.5\n3,1.0\n",
    "badval.csv": b"id,y\n1,2.5\n2,abc\n3,1.0\n",
    "long_row.csv": b"id,y\n1,2.5\n2,3.5,9\n3,1.0\n",
    "short_row.csv": b"id,y\n1,2.5\n2\n3,1.0\n",
    "unclosed_quote.csv": b'id,y\n1,2.5\n2,"3.5\n3,1.0\n',
    "garbage.csv": bytes((i * 151 + 7) % 256 for i in range(4096)),
    "garbage.txt": bytes(range(256)) * 10,
    "empty.csv": b"",
    "empty.txt": b"",
    "header_only.csv": b"id,y\n",
    "nan.csv": b"y\n1.0\nnan\n2.0\n",
    "inf.csv": b"y\n1.0\ninf\n2.0\n",
    "empty_cell.csv": b"id,y\n1,2.0\n2,\n3,1.0\n",
    "trunc.csv.gz": _GZ[: len(_GZ) // 2],
    "not_gzip.csv.gz": b"y\n1.0\n2.0\n",
    "trunc.npy": _NPY[: len(_NPY) // 2],
    "trunc_header.npy": _NPY[:40],
    "garbage.npy": bytes((i * 97 + 13) % 256 for i in range(500)),
    "bad_header.npy": b"\x93NUMPY\x01\x00" + b"\xff" * 100,
    "empty.npy": b"",
    "complex.npy": _npy(np.array([1 + 2j, 3j])),
    "str.npy": _npy(np.array(["a", "b"])),
    "object.npy": _npy(np.array([1, None], dtype=object), allow_pickle=True),
    "nan.npy": _npy(np.array([1.0, np.nan, 2.0])),
    "bigint.txt": b"y\n1\n99999999999999999999999\n",
    "bad_block.txt.gz": _GZ[:10] + b"\xff" * 20,
    "bad_header_dict.npy": b"\x93NUMPY\x01\x00\x35\x00{'descr': '<f8', ("
    + b" " * 34
    + b"\n"
    + b"\x00" * 24,
    "float_classes.npy": _npy(np.array([0.5, 1.0])),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    for name, data in FILES.items():
        (d / name).write_bytes(data)
    return d


# ------------------------------------------------------------------------------ the rows

X = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
Y = np.array([2, 0])
XR = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
YR = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]])


def _ro(shape):
    a = np.zeros(shape)
    a.flags.writeable = False
    return a


def row(id, call, exc, match, bug=None):
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(call, exc, match, id=id, marks=marks)


KERNELS = [hs.softmax, hs.log_softmax, hs.logsumexp]
ROWWISE = [hs.softmax, hs.log_softmax]


def _kernel_rows():
    rows = []
    for f in KERNELS:
        n = f.__name__
        rows += [
            row(f"{n}-complex", lambda f=f: f(np.ones(3, complex)), TypeError, r"complex"),
            row(
                f"{n}-object",
                lambda f=f: f(np.array([1, "a"], dtype=object)),
                TypeError,
                r"dtype object",
            ),
            row(f"{n}-str", lambda f=f: f("abc"), TypeError, r"dtype <U3"),
            row(
                f"{n}-float128",
                lambda f=f: f(np.zeros(3, np.longdouble)),
                TypeError,
                r"float128|longdouble",
            ),
            row(f"{n}-axis", lambda f=f: f(X, axis=5), np.exceptions.AxisError, r"axis 5"),
        ]
    for f in ROWWISE:
        n = f.__name__
        rows += [
            row(
                f"{n}-out-readonly",
                lambda f=f: f(X, axis=-1, out=_ro(X.shape)),
                ValueError,
                r"read-only",
            ),
            row(
                f"{n}-out-shape",
                lambda f=f: f(X, axis=-1, out=np.zeros(5)),
                ValueError,
                r"shape \(5,\)",
            ),
            row(
                f"{n}-out-dtype",
                lambda f=f: f(X, axis=-1, out=np.zeros(X.shape, np.float32)),
                TypeError,
                r"float32",
            ),
            row(
                f"{n}-out-list", lambda f=f: f(X, axis=-1, out=[0.0] * 6), TypeError, r"numpy array"
            ),
        ]
    return rows


LOSSES = [
    getattr(hs, n)
    for n in hs.__all__
    if n.endswith("_loss") or n in ("cross_entropy", "binary_cross_entropy_with_logits")
]
CLASS_LOSSES = {"cross_entropy", "multi_margin_loss", "multiclass_hinge_loss"}


def _loss_rows():
    rows = []
    for f in LOSSES:
        n = f.__name__
        cls = n in CLASS_LOSSES
        x, t = (X, Y) if cls else (XR, YR)
        rows += [
            row(
                f"{n}-int-input",
                lambda f=f, t=t: f(np.zeros((2, 3), np.int64), t),
                TypeError,
                r"int64",
            ),
            row(
                f"{n}-complex-input",
                lambda f=f, t=t: f(np.zeros((2, 3), complex), t),
                TypeError,
                r"complex128",
            ),
            row(
                f"{n}-object-input",
                lambda f=f, t=t: f(np.array([[1, "a", None]] * 2, dtype=object), t),
                TypeError,
                r"object",
            ),
            row(
                f"{n}-str-target",
                lambda f=f, x=x, t=t: f(x, np.full(t.shape, "a")),
                TypeError,
                r"<U1",
            ),
            row(
                f"{n}-target-shape",
                lambda f=f, x=x, t=t, cls=cls: f(x, t[:1] if cls else t[:, :2]),
                ValueError,
                r"shape \(1,\)" if cls else r"shape \(2, 2\)",
            ),
            row(
                f"{n}-reduction",
                lambda f=f, x=x, t=t: f(x, t, reduction="avg"),
                ValueError,
                r"'avg'",
            ),
            row(
                f"{n}-grad-readonly",
                lambda f=f, x=x, t=t: f(x, t, grad_out=_ro(x.shape)),
                ValueError,
                r"read-only",
            ),
            row(
                f"{n}-grad-shape",
                lambda f=f, x=x, t=t: f(x, t, grad_out=np.zeros((3, 2))),
                ValueError,
                r"shape",
            ),
            row(
                f"{n}-grad-dtype",
                lambda f=f, x=x, t=t: f(x, t, grad_out=np.zeros(x.shape, np.float32)),
                ValueError,
                r"dtype",
            ),
            row(
                f"{n}-scalar-input",
                lambda f=f, t=t: f(np.float64(1.0), t),
                ValueError,
                r"shape|dimension",
            ),
        ]
        if cls:
            rows += [
                row(
                    f"{n}-target-too-big",
                    lambda f=f: f(X, np.array([3, 0])),
                    IndexError,
                    r"target 3 .*out of range for 3 classes",
                ),
                row(
                    f"{n}-target-negative",
                    lambda f=f: f(X, np.array([0, -2])),
                    IndexError,
                    r"target -2 .*out of range",
                ),
            ]
    rows += [
        row(
            "cross_entropy-prob-target-negative",
            lambda: hs.cross_entropy(X, np.array([[1.5, -0.5, 0.0], [0.0, 1.0, 0.0]])),
            ValueError,
            r">= 0; row 0",
        ),
        row(
            "cross_entropy-prob-target-sum",
            lambda: hs.cross_entropy(X, np.array([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]])),
            ValueError,
            r"sum to 1.*row 0",
        ),
        row(
            "cross_entropy-weight-len",
            lambda: hs.cross_entropy(X, Y, weight=[1.0]),
            ValueError,
            r"weight must be a 1-D array with one entry per class \(3\), got shape \(1,\)",
        ),
        row(
            "cross_entropy-label-smoothing",
            lambda: hs.cross_entropy(X, Y, label_smoothing=2.0),
            ValueError,
            r"label_smoothing",
        ),
        row(
            "cross_entropy-uint64-target",
            lambda: hs.cross_entropy(X, np.array([2**63, 0], dtype=np.uint64)),
            IndexError,
            r"out of range",
        ),
        row(
            "multiclass_hinge_loss-variant",
            lambda: hs.multiclass_hinge_loss(X, Y, variant="nope"),
            ValueError,
            r"variant",
        ),
        row(
            "multi_margin_loss-p",
            lambda: hs.multi_margin_loss(X, Y, p=3),
            ValueError,
            r"p must be 1 or 2",
        ),
    ]
    return rows


def _state_rows():
    def reg_update(a, **kw):
        s = hs.RegressionState(**kw)
        s.update(a)
        return s

    def cc_update(a, **kw):
        c = hs.ClassCounts(**kw)
        c.update(a)
        return c.result()

    return [
        row(
            "RegressionState-complex", lambda: reg_update(np.array([1 + 1j])), TypeError, r"complex"
        ),
        row("RegressionState-str", lambda: reg_update(np.array(["a"])), TypeError, r"<U1"),
        row(
            "RegressionState-object", lambda: reg_update(np.array([object()])), TypeError, r"object"
        ),
        row(
            "RegressionState-nan",
            lambda: reg_update(np.array([1.0, np.nan])),
            HeadstartError,
            r"NaN at index 1",
        ),
        row(
            "RegressionState-inf",
            lambda: reg_update(np.array([1.0, np.inf])),
            HeadstartError,
            r"inf",
        ),
        row(
            "RegressionState-quantile",
            lambda: hs.RegressionState(quantiles=[1.5]),
            ValueError,
            r"quantiles must be in \[0, 1\], got 1.5",
        ),
        row(
            "RegressionState-delta-neg",
            lambda: hs.RegressionState(huber_delta=-1.0),
            ValueError,
            r"huber_delta must be positive",
        ),
        row(
            "RegressionState-delta-nan",
            lambda: hs.RegressionState(huber_delta=float("nan")),
            ValueError,
            r"huber_delta.*nan",
        ),
        row(
            "RegressionState-nan-policy",
            lambda: hs.RegressionState(nan="maybe"),
            ValueError,
            r"nan must be 'raise' or 'skip'",
        ),
        row(
            "RegressionState-result-unfinished",
            lambda: hs.RegressionState().result(),
            HeadstartError,
            r"finish_pass",
        ),
        row(
            "RegressionState-result-empty",
            lambda: (lambda s: (s.finish_pass(), s.result())[1])(hs.RegressionState()),
            HeadstartError,
            r"empty|no (data|targets|values)",
        ),
        row(
            "RegressionState-merge-wrong-type",
            lambda: hs.RegressionState().merge(hs.ClassCounts()),
            TypeError,
            r"RegState",
        ),
        row("ClassCounts-complex", lambda: cc_update(np.array([1 + 1j])), TypeError, r"complex128"),
        row(
            "ClassCounts-fraction",
            lambda: cc_update(np.array([1.5])),
            HeadstartError,
            r"1\.5.*not an integer",
        ),
        row(
            "ClassCounts-nan",
            lambda: cc_update(np.array([np.nan])),
            HeadstartError,
            r"missing label \(NaN\)",
        ),
        row(
            "ClassCounts-nan-policy",
            lambda: hs.ClassCounts(nan="maybe"),
            ValueError,
            r"nan must be 'raise' or 'skip'",
        ),
        row(
            "ClassCounts-object",
            lambda: cc_update(np.array([object()], dtype=object)),
            TypeError,
            r"object",
        ),
        row(
            "ClassCounts-uint64-overflow",
            lambda: cc_update(np.array([2**63], dtype=np.uint64)),
            HeadstartError,
            r"9223372036854775808",
        ),
        row(
            "ClassCounts-float-overflow",
            lambda: cc_update(np.array([1e300])),
            HeadstartError,
            r"1e\+300",
        ),
        row(
            "ClassCounts-merge-wrong-type",
            lambda: hs.ClassCounts().merge(hs.RegressionState()),
            TypeError,
            r"ClassState",
        ),
    ]


def _init_rows():
    return [
        row(
            "bias_init-unknown-loss",
            lambda: hs.bias_init(Y, "nope"),
            ValueError,
            r"unknown loss 'nope'",
        ),
        row(
            "bias_init-loss-type",
            lambda: hs.bias_init(Y, 3),
            TypeError,
            r"loss must be a loss name",
        ),
        row(
            "bias_init-bad-option",
            lambda: hs.bias_init(Y, "mse", tau=0.3),
            TypeError,
            r"does not take option.*tau",
        ),
        row(
            "bias_init-empty-classes",
            lambda: hs.bias_init(np.array([], np.int64), "ce"),
            HeadstartError,
            r"no labels",
        ),
        row(
            "bias_init-empty-targets",
            lambda: hs.bias_init(np.array([]), "mse"),
            HeadstartError,
            r"no targets",
        ),
        row(
            "bias_init-label-ge-num-classes",
            lambda: hs.bias_init(np.array([0, 1, 5]), "ce", num_classes=3),
            HeadstartError,
            r"label 5 .*num_classes=3",
        ),
        row(
            "bias_init-negative-label",
            lambda: hs.bias_init(np.array([0, 1, -1]), "ce"),
            HeadstartError,
            r"negative class label -1",
        ),
        row(
            "bias_init-complex",
            lambda: hs.bias_init(np.array([1 + 1j]), "mse"),
            TypeError,
            r"complex",
        ),
        row(
            "bias_init-object",
            lambda: hs.bias_init(np.array(["a"], dtype=object), "mse"),
            TypeError,
            r"dtype",
        ),
        row(
            "bias_init-nan",
            lambda: hs.bias_init(np.array([1.0, np.nan]), "mse"),
            HeadstartError,
            r"NaN at index 1",
        ),
        row(
            "bias_init-inf",
            lambda: hs.bias_init(np.array([1.0, np.inf]), "mse"),
            HeadstartError,
            r"inf",
        ),
        row(
            "bias_init-poisson-negative",
            lambda: hs.bias_init(np.array([-1.0, 1.0]), "poisson"),
            HeadstartError,
            r">= 0; the minimum is -1",
        ),
        row(
            "bias_init-bce-range",
            lambda: hs.bias_init(np.array([0.0, 2.0]), "bce"),
            HeadstartError,
            r"\[0, 1\].*\[0, 2\]",
        ),
        row("bias_init-nan-policy", lambda: hs.bias_init(Y, "ce", nan="maybe"), ValueError, r"nan"),
        row(
            "bias_init-missing-file",
            lambda: hs.bias_init("/nonexistent/labels.csv", "ce"),
            FileNotFoundError,
            r"labels.csv",
        ),
        row(
            "check_init-target-oob",
            lambda: hs.check_init(np.zeros((2, 3)), Y, "ce", target=np.array([0, 5])),
            IndexError,
            r"target 5",
        ),
        row(
            "check_init-target-shape",
            lambda: hs.check_init(np.zeros((2, 3)), Y, "ce", target=np.array([0])),
            ValueError,
            r"shape \(1,\)",
        ),
        row(
            "check_init-loss-str",
            lambda: hs.check_init("abc", Y, "ce"),
            TypeError,
            r"loss_value|first loss|logits",
        ),
        row(
            "check_init-wrong-loss",
            lambda: hs.check_init(1.0, hs.bias_init(Y, "ce"), "mse"),
            HeadstartError,
            r"bias_init result is for 'cross_entropy'",
        ),
    ]


def _scan_rows():
    R = dict(kind="regression", huber_delta=1.0, quantiles=[0.5])
    C = dict(kind="classification")
    rows = [
        row(
            "scan-kind",
            lambda d: hs.scan(d / "ok.csv", kind="nope"),
            ValueError,
            r"kind must be one of",
        ),
        row(
            "scan-nan-policy",
            lambda d: hs.scan(d / "ok.csv", nan="maybe"),
            ValueError,
            r"nan must be",
        ),
        row(
            "scan-quantile",
            lambda d: hs.scan(d / "ok.csv", quantiles=[2]),
            ValueError,
            r"quantiles must be in",
        ),
        row(
            "scan-missing",
            lambda d: hs.scan(d / "nope.csv"),
            FileNotFoundError,
            r"nope.csv: no such file",
        ),
        row("scan-directory", lambda d: hs.scan(d), IsADirectoryError, r"is a directory"),
        row(
            "scan-column-name",
            lambda d: hs.scan(d / "ok.csv", column="zz"),
            HeadstartError,
            r"no column named \"zz\"",
        ),
        row(
            "scan-column-index",
            lambda d: hs.scan(d / "ok.csv", column=7, **R),
            HeadstartError,
            r"column index 7 is out of range",
        ),
        row(
            "scan-gz-npy",
            lambda d: hs.scan(d / "x.npy.gz"),
            (ValueError, FileNotFoundError),
            r"x.npy.gz",
        ),
        row(
            "scan-2d-regression",
            lambda d: hs.scan(np.zeros((3, 4)), kind="regression"),
            ValueError,
            r"1-D.*\(3, 4\)",
        ),
        row(
            "scan-multilabel-range",
            lambda d: hs.scan(np.array([[0, 2], [1, 0]])),
            HeadstartError,
            r"row 0, column 1 is 2(\.0)?$",
        ),
        row(
            "scan-multilabel-nan",
            lambda d: hs.scan(np.array([[0, np.nan], [1, 0]])),
            HeadstartError,
            r"NaN",
        ),
        row("scan-empty-iterator", lambda d: hs.scan(iter([])), HeadstartError, r"no data"),
    ]
    # (file, scan kwargs, exception, regex, bug)
    table = [
        (
            "badval.csv",
            R,
            HeadstartError,
            r"badval.csv:3: column 2: expected a number, found \"abc\"",
            None,
        ),
        ("long_row.csv", R, HeadstartError, r"long_row.csv:3: .*expected 2 fields, found 3", None),
        ("long_row.csv", C, HeadstartError, r"long_row.csv:3: .*expected 2 fields, found 3", None),
        (
            "short_row.csv",
            R,
            HeadstartError,
            r"short_row.csv:3: .*expected 2 fields, found 1",
            None,
        ),
        (
            "short_row.csv",
            {},
            HeadstartError,
            r"short_row.csv:3: .*expected 2 fields, found 1",
            None,
        ),
        (
            "unclosed_quote.csv",
            R,
            HeadstartError,
            r"unclosed_quote.csv:3: .*(unclosed|unterminated|quote)",
            None,
        ),
        (
            "unclosed_quote.csv",
            C,
            HeadstartError,
            r"unclosed_quote.csv:3: .*(unclosed|unterminated|quote)",
            None,
        ),
        (
            "garbage.csv",
            {},
            HeadstartError,
            r"garbage.csv",
            None,
        ),
        ("garbage.csv", R, HeadstartError, r"garbage.csv:\d+: ", None),
        ("garbage.txt", R, HeadstartError, r"garbage.txt:1: column 1: expected a number", None),
        (
            "garbage.txt",
            C,
            HeadstartError,
            r"garbage.txt:\d+",
            None,
        ),
        ("nan.csv", R, HeadstartError, r"nan.csv:3: column 1: NaN value", None),
        (
            "inf.csv",
            R,
            HeadstartError,
            r"inf.csv:3: .*inf",
            None,
        ),
        ("empty_cell.csv", R, HeadstartError, r"empty_cell.csv:3: column 2: empty value", None),
        ("empty_cell.csv", C, HeadstartError, r"empty_cell.csv:3: column 2: empty label", None),
        ("trunc.csv.gz", R, OSError, r"trunc.csv.gz: incomplete deflate stream", None),
        (
            "trunc.csv.gz",
            {},
            OSError,
            r"trunc.csv.gz",
            None,
        ),
        ("not_gzip.csv.gz", R, OSError, r"not_gzip.csv.gz: invalid gzip header", None),
        (
            "not_gzip.csv.gz",
            {},
            OSError,
            r"not_gzip.csv.gz",
            None,
        ),
        (
            "trunc.npy",
            R,
            HeadstartError,
            r"trunc.npy: not a readable .npy file: file has \d+ bytes",
            None,
        ),
        (
            "trunc_header.npy",
            R,
            HeadstartError,
            r"trunc_header.npy: not a readable .npy file: truncated header",
            None,
        ),
        (
            "garbage.npy",
            R,
            HeadstartError,
            r"garbage.npy: not a readable .npy file: missing the",
            None,
        ),
        ("bad_header.npy", C, HeadstartError, r"bad_header.npy: not a readable .npy file", None),
        ("empty.npy", R, HeadstartError, r"empty.npy: not a readable .npy file", None),
        ("complex.npy", R, HeadstartError, r"complex.npy: unsupported .npy dtype \"c16\"", None),
        ("str.npy", C, HeadstartError, r"str.npy: unsupported .npy dtype \"U1\"", None),
        ("object.npy", R, HeadstartError, r"object.npy: unsupported .npy dtype \"O\"", None),
        ("nan.npy", R, HeadstartError, r"nan.npy: NaN at index 1", None),
        (
            "float_classes.npy",
            C,
            HeadstartError,
            r"float_classes.npy: class labels must be integers",
            None,
        ),
    ]
    # found by fuzz/fuzz_readers.py
    table += [
        ("bad_block.txt.gz", R, OSError, r"bad_block.txt.gz: corrupt deflate stream", None),
        (
            "bad_block.txt.gz",
            {},
            OSError,
            r"bad_block.txt.gz",
            None,
        ),
        (
            "bad_header_dict.npy",
            R,
            HeadstartError,
            r"bad_header_dict.npy: not a readable .npy file",
            None,
        ),
    ]
    # kind='auto' reads the header with numpy first: its reasons, with the file named.
    for f in (
        "trunc.npy",
        "trunc_header.npy",
        "garbage.npy",
        "bad_header.npy",
        "object.npy",
        "empty.npy",
        "bad_header_dict.npy",
    ):
        table.append((f, {}, HeadstartError, re.escape(f) + ": not a readable .npy file", None))
    for f, kw, exc, match, bug in table:
        tag = kw.get("kind", "auto")
        rows.append(
            row(f"scan-{f}-{tag}", lambda d, f=f, kw=kw: hs.scan(d / f, **kw), exc, match, bug)
        )
    # empty input: a scan may return empty statistics, but bias_init must refuse them
    for f in ["empty.csv", "empty.txt", "header_only.csv"]:
        for loss, what in [("ce", "no labels"), ("mse", "no targets")]:
            rows.append(
                row(
                    f"bias_init-{f}-{loss}",
                    lambda d, f=f, loss=loss: hs.bias_init(d / f, loss),
                    HeadstartError,
                    what,
                )
            )
    return rows


@pytest.mark.parametrize(
    "call, exc, match", _kernel_rows() + _loss_rows() + _state_rows() + _init_rows()
)
def test_bad_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call, exc, match", _scan_rows())
def test_bad_file(files, call, exc, match):
    with pytest.raises(exc, match=match):
        call(files)


# --------------------------------------------------------------- aliasing out= and input


@pytest.mark.parametrize("f", ROWWISE, ids=lambda f: f.__name__)
def test_rowwise_out_overlapping_input(f):
    """out= overlapping the input (shifted by one element) gives the unaliased answer."""
    b = np.arange(7.0)
    want = f(b[1:].copy(), axis=-1)
    got = f(b[1:], axis=-1, out=b[:-1])
    np.testing.assert_array_equal(got, want)
    c = np.arange(12.0).reshape(3, 4)
    want = f(c.T.copy(), axis=-1)
    np.testing.assert_array_equal(f(c.T, axis=-1, out=c.T), want)


@pytest.mark.parametrize(
    "f", [f for f in LOSSES if f.__name__ not in CLASS_LOSSES], ids=lambda f: f.__name__
)
def test_grad_out_aliasing_target(f):
    """grad_out may be the input (documented); grad_out being the *target* must either be
    refused or give the unaliased answer, never a gradient computed from a half-overwritten
    target."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    t = rng.uniform(0.0, 1.0, size=(5, 3))
    want_loss, want_grad = f(x, t, return_grad=True)
    # grad_out is the input: documented as allowed
    xx = x.copy()
    loss, g = f(xx, t, grad_out=xx)
    assert g is xx
    np.testing.assert_array_equal(g, want_grad)
    assert loss == want_loss
    # grad_out is the target
    tt = t.copy()
    try:
        loss, g = f(x, tt, grad_out=tt)
    except ValueError as e:
        assert re.search(r"grad_out|alias|overlap", str(e))
        return
    np.testing.assert_array_equal(g, want_grad)
    assert loss == want_loss


def test_cross_entropy_grad_out_aliasing_prob_target():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    p = rng.dirichlet(np.ones(3), size=4)
    want_loss, want_grad = hs.cross_entropy(x, p, return_grad=True)
    pp = p.copy()
    try:
        loss, g = hs.cross_entropy(x, pp, grad_out=pp)
    except ValueError as e:
        assert re.search(r"grad_out|alias|overlap", str(e))
        return
    np.testing.assert_array_equal(g, want_grad)
    assert loss == want_loss


@pytest.mark.parametrize(
    "f", [hs.multi_margin_loss, hs.multiclass_hinge_loss], ids=lambda f: f.__name__
)
def test_hinge_nan_propagates(f):
    assert np.isnan(f(np.full((2, 3), np.nan), Y))


# ------------------------------------------------------------------------------ the CLI


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "headstart", "init", *map(str, args), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


CLI_ROWS = [
    # (id, args given the files dir d, regex on stderr)
    (
        "badval",
        lambda d: [d / "badval.csv", "--loss", "mse"],
        r"badval.csv:3: column 2: expected a number",
    ),
    ("long-row", lambda d: [d / "long_row.csv"], r"long_row.csv:3: .*expected 2 fields, found 3"),
    (
        "unclosed-quote",
        lambda d: [d / "unclosed_quote.csv", "--loss", "mse"],
        r"unclosed_quote.csv:3",
    ),
    ("garbage-csv", lambda d: [d / "garbage.csv"], r"garbage.csv:\d+"),
    ("garbage-csv-mse", lambda d: [d / "garbage.csv", "--loss", "mse"], r"garbage.csv:\d+"),
    (
        "trunc-gz",
        lambda d: [d / "trunc.csv.gz", "--loss", "mse"],
        r"trunc.csv.gz: incomplete deflate stream",
    ),
    ("not-gz", lambda d: [d / "not_gzip.csv.gz"], r"not_gzip.csv.gz: invalid gzip header"),
    (
        "trunc-npy",
        lambda d: [d / "trunc.npy", "--loss", "mse"],
        r"trunc.npy: not a readable .npy file",
    ),
    ("garbage-npy", lambda d: [d / "garbage.npy"], r"garbage.npy: not a readable .npy file"),
    (
        "empty-npy",
        lambda d: [d / "empty.npy", "--loss", "mse"],
        r"empty.npy: not a readable .npy file",
    ),
    ("empty-csv", lambda d: [d / "empty.csv"], r"no labels"),
    ("header-only", lambda d: [d / "header_only.csv", "--loss", "mse"], r"no targets"),
    ("dev-null", lambda d: ["/dev/null"], r"no labels"),
    ("missing", lambda d: [d / "nope.csv"], r"nope.csv: no such file"),
    ("directory", lambda d: [d], r"is a directory"),
    ("nan", lambda d: [d / "nan.csv", "--loss", "mse"], r"nan.csv:3: column 1: NaN value"),
    ("unknown-loss", lambda d: [d / "ok.csv", "--loss", "nope"], r"unknown loss 'nope'"),
    ("column-name", lambda d: [d / "ok.csv", "--column", "zz"], r"no column named \"zz\""),
    ("column-index", lambda d: [d / "ok.csv", "--column", "7"], r"column index 7 is out of range"),
    (
        "option-for-other-loss",
        lambda d: [d / "ok.csv", "--loss", "mse", "--tau", "0.3"],
        r"does not take option.*tau",
    ),
    ("bad-delta", lambda d: [d / "ok.csv", "--loss", "huber", "--delta", "-1"], r"delta must be"),
    (
        "bad-weight",
        lambda d: [d / "ok.csv", "--weight", "a,b"],
        r"--weight: expected comma-separated numbers",
    ),
    (
        "num-classes",
        lambda d: [d / "ok.csv", "--column", "id", "--num-classes", "1"],
        r"--num-classes 1",
    ),
    ("ids-both", lambda d: [d / "ok.csv", "--sparse-ids", "--dense-ids"], r"not allowed with"),
    ("layer-empty", lambda d: [d / "ok.csv", "--layer", ""], r"--layer: expected the layer"),
    ("layer-space", lambda d: [d / "ok.csv", "--layer", "a b"], r"--layer: expected the layer"),
    ("csv-as-npy", lambda d: [d / "ok.csv", "--format", "npy"], r"ok.csv: .*missing the \\x93NUMPY"),
    ("smoothing", lambda d: [d / "ok.csv", "--label-smoothing", "2"], r"label_smoothing must be in"),
    ("tau", lambda d: [d / "ok.csv", "--loss", "quantile", "--tau", "1.5"], r"tau must be in \(0, 1\)"),
    ("margin", lambda d: [d / "ok.csv", "--loss", "hinge", "--margin", "nan"], r"margin must be a finite"),
    ("beta", lambda d: [d / "ok.csv", "--loss", "smooth_l1", "--beta", "-1"], r"beta must be a finite"),
    ("floor", lambda d: [d / "ok.csv", "--floor", "abc"], r"floor='abc'"),
    ("num-classes-0", lambda d: [d / "ok.csv", "--num-classes", "0"], r"num_classes must be >= 1"),
    ("label-dtype-text", lambda d: [d / "ok.csv", "--label-dtype", "uint16"], r"applies to raw binary"),
    (
        "out-missing-dir",
        lambda d: [d / "ok.csv", "--loss", "mse", "--out", d / "missing" / "b.npy"],
        r"missing/b.npy",
    ),
    (
        "out-under-a-file",
        lambda d: [d / "ok.csv", "--loss", "mse", "--out", d / "ok.csv" / "b.npy"],
        r"ok.csv/b.npy",
    ),
]
CLI_BUGS = {
    "unclosed-quote": "the message is 'expected a number, found \"3.5\\n3,1.0\"' (see scan rows); "
    "this row only checks the line number, which is right",
}


@pytest.mark.parametrize("args, match", [pytest.param(a, m, id=i) for i, a, m in CLI_ROWS])
def test_cli_user_error(files, args, match):
    r = _cli(*args(files))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert re.search(match, r.stderr), r.stderr[-2000:]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write a read-only directory"
)
def test_cli_out_read_only_dir(files, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _cli(files / "ok.csv", "--loss", "mse", "--out", ro / "b.npy")
    finally:
        ro.chmod(0o755)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert re.search(r"[Pp]ermission denied.*b.npy", r.stderr), r.stderr


def test_cli_inf_target(files):
    r = _cli(files / "inf.csv", "--loss", "mse")
    assert r.returncode == 2 and re.search(r"inf.csv:3", r.stderr), r.stderr


def test_labels_beyond_int64_are_refused(tmp_path):
    """Integer labels that do not fit int64 are an error naming the line, never wrapped and
    never a silent switch of the whole column to strings; classes= keeps them as names."""
    p = tmp_path / "bigint.txt"
    p.write_text("y\n1\n99999999999999999999999\n")
    with pytest.raises(
        HeadstartError,
        match=r"'99999999999999999999999' \(line 3 of .*bigint.txt\) does not fit in int64",
    ):
        hs.scan(p, header=True)


# ------------------------------------------------------------- a panic in the core itself


@pytest.mark.parametrize("on_pool", [False, True], ids=["caller", "rayon-worker"])
def test_core_panic_is_a_headstart_error(on_pool):
    """No input should make the core panic, but a bug that does must not raise
    PanicException (a BaseException that ``except Exception`` misses): every call into the
    core runs behind one guard that turns a panic into HeadstartError, on the calling thread
    and on the pool's workers alike. Afterwards the pool still works."""
    from headstart import _core

    with pytest.raises(HeadstartError, match=r"internal error in headstart.*deliberate test panic"):
        _core._panic_for_tests(on_pool)
    x = np.random.default_rng(0).standard_normal((4096, 64))
    np.testing.assert_allclose(hs.softmax(x, axis=1).sum(axis=1), 1.0, rtol=1e-12)

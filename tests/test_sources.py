"""The front door (headstart.sources): every kind of source gives the same statistics, bias,
classes and expected loss as a plain numpy array of the same labels, and every rule of how
labels are read has a test of its error.

Optional libraries (pandas, polars, pyarrow, datasets, torch) are skipped with a reason when
absent; CI installs all but torch.
"""

from __future__ import annotations

import os
import subprocess
import sys

import headstart as hs
import numpy as np
import pytest
from headstart import HeadstartError

RNG = np.random.default_rng(16)
Y_CLS = RNG.choice(5, size=2000, p=[0.5, 0.2, 0.15, 0.1, 0.05])  # class 4 rare
Y_REG = RNG.lognormal(0.0, 1.0, size=2001)


def same_init(got, want):
    """Same outputs, classes, bias and expected loss (to the last float32 bit)."""
    np.testing.assert_array_equal(
        np.asarray(got.classes).astype(str), np.asarray(want.classes).astype(str)
    )
    np.testing.assert_array_equal(got.bias, want.bias)
    assert got.expected_loss == pytest.approx(want.expected_loss, rel=1e-12)
    if want.counts is not None:
        np.testing.assert_array_equal(got.counts, want.counts)


REF_CE = hs.bias_init(Y_CLS, "ce")
REF_L1 = hs.bias_init(Y_REG, "l1")
REF_HUBER = hs.bias_init(Y_REG, "huber", delta=0.5)


def check_all(src, **kw):
    """Class labels and regression targets of the same source kind."""
    cls, reg = src
    same_init(hs.bias_init(cls, "ce", **kw.get("cls", {})), REF_CE)
    same_init(hs.bias_init(reg, "l1", **kw.get("reg", {})), REF_L1)
    same_init(hs.bias_init(reg, "huber", delta=0.5, **kw.get("reg", {})), REF_HUBER)


# ------------------------------------------------------------------------------- pandas


def test_pandas_series_frame_categorical_and_nullable():
    pd = pytest.importorskip("pandas")
    check_all((pd.Series(Y_CLS), pd.Series(Y_REG)))
    df = pd.DataFrame({"id": np.arange(Y_CLS.size), "label": Y_CLS})
    same_init(hs.bias_init(df, "ce", column="label"), REF_CE)
    same_init(hs.bias_init(df, "ce"), REF_CE)  # default: the last column
    dfr = pd.DataFrame({"y": Y_REG, "w": 1.0})
    same_init(hs.bias_init(dfr, "l1", column="y"), REF_L1)
    same_init(hs.bias_init(dfr, "l1", column=0), REF_L1)  # by position
    with pytest.raises(
        HeadstartError, match=r"no column 'nope' in the pandas DataFrame; it has: y, w"
    ):
        hs.bias_init(dfr, "l1", column="nope")
    # categorical: the categories name the outputs, unseen categories included
    cat = pd.Series(pd.Categorical(["b", "a", "b", "c"], categories=["c", "b", "a", "z"]))
    r = hs.bias_init(cat, "ce")
    assert list(r.classes) == ["c", "b", "a", "z"] and list(r.counts) == [1, 2, 1, 0]
    # nullable integers with a missing value: refused, or skipped and counted
    s = pd.Series([0, 1, None, 1], dtype="Int64")
    with pytest.raises(HeadstartError, match=r"missing label \(NaN\) at index 2"):
        hs.bias_init(s, "ce")
    r = hs.bias_init(s, "ce", nan="skip")
    assert list(r.counts) == [1, 2] and r.stats.skipped == 1


# ------------------------------------------------------------------------------- polars


def test_polars_series_frame_and_lazy_frame():
    pl = pytest.importorskip("polars")
    check_all((pl.Series("y", Y_CLS), pl.Series("y", Y_REG)))
    df = pl.DataFrame({"id": np.arange(Y_REG.size), "y": Y_REG})
    same_init(hs.bias_init(df, "l1", column="y"), REF_L1)
    lf = pl.LazyFrame({"label": Y_CLS, "other": 0})
    same_init(hs.bias_init(lf, "ce", column="label"), REF_CE)
    lazy_reg = pl.LazyFrame({"y": Y_REG}).with_columns(pl.col("y") * 1.0)
    same_init(hs.bias_init(lazy_reg, "huber", delta=0.5), REF_HUBER)  # two passes, re-run
    with pytest.raises(
        HeadstartError, match=r"no column 'x' in the polars LazyFrame; it has: label, other"
    ):
        hs.scan(lf, column="x")
    strings = pl.Series(["cat", "dog", None, "cat"])
    with pytest.raises(HeadstartError, match="missing label"):
        hs.scan(strings)
    r = hs.scan(strings, nan="skip")
    assert list(r.classes) == ["cat", "dog"] and list(r.counts) == [2, 1] and r.skipped == 1


# ------------------------------------------------------------------------------ pyarrow


def test_pyarrow_arrays_tables_readers_and_datasets(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pads = pytest.importorskip("pyarrow.dataset")
    check_all((pa.array(Y_CLS), pa.chunked_array([Y_REG[:700], Y_REG[700:]])))
    t = pa.table({"label": Y_CLS, "y": Y_REG[: Y_CLS.size]})
    same_init(hs.bias_init(t, "ce", column="label"), REF_CE)
    with pytest.raises(HeadstartError, match="no column 'z' in the Arrow table; it has: label, y"):
        hs.bias_init(t, "ce", column="z")
    # a RecordBatchReader is one pass: exact for class counts, refused for the median
    tr = pa.table({"y": Y_REG})
    reader = pa.RecordBatchReader.from_batches(tr.schema, tr.to_batches(max_chunksize=500))
    with pytest.raises(HeadstartError, match="read only once"):
        hs.bias_init(reader, "l1")
    tc = pa.table({"label": Y_CLS})
    reader = pa.RecordBatchReader.from_batches(tc.schema, tc.to_batches(max_chunksize=300))
    same_init(hs.bias_init(reader, "ce"), REF_CE)
    # a dataset (a directory of Parquet files) is streamed and re-readable
    import pyarrow.parquet as pq

    d = tmp_path / "ds"
    d.mkdir()
    for i, part in enumerate(np.array_split(np.arange(Y_REG.size), 3)):
        pq.write_table(pa.table({"y": Y_REG[part]}), d / f"part-{i}.parquet")
    same_init(hs.bias_init(pads.dataset(d), "l1"), REF_L1)
    # a dictionary (categorical) column: its categories, in their order, name the outputs
    dic = pa.array(["b", "a", "b"]).dictionary_encode()
    r = hs.scan(dic)
    assert r.names == ["b", "a"] and list(r.classes) == [0, 1] and list(r.counts) == [2, 1]
    assert list(hs.bias_init(dic, "ce").classes) == ["b", "a"]


# ----------------------------------------------------------------- Hugging Face datasets


def test_hf_dataset_class_label_names_and_iterable():
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list("abcdef"))}
    )
    ds = datasets.Dataset.from_dict(
        {"text": ["x"] * Y_CLS.size, "label": Y_CLS.tolist()}, features=feats
    )
    r = hs.bias_init(ds, "ce")  # default column: the last; ClassLabel names the 6 outputs
    assert list(r.classes) == list("abcdef") and len(r) == 6 and r.counts[5] == 0
    np.testing.assert_array_equal(r.counts[:5], REF_CE.counts)
    same = hs.bias_init(Y_CLS, "ce", classes=list("abcdef"))
    np.testing.assert_array_equal(r.bias, same.bias)
    # after select / shuffle the dataset is what it shows, not its underlying table
    sub = ds.select(range(100)).shuffle(seed=0)
    r = hs.bias_init(sub, "ce", column="label")
    np.testing.assert_array_equal(r.counts, np.bincount(Y_CLS[:100], minlength=6))
    with pytest.raises(
        HeadstartError, match=r"no column 'y' in the Hugging Face Dataset; it has: text, label"
    ):
        hs.scan(ds, column="y")
    it = ds.to_iterable_dataset(num_shards=2)
    r = hs.bias_init(it, "ce", column="label")
    np.testing.assert_array_equal(r.counts[:5], REF_CE.counts)
    reg = datasets.Dataset.from_dict({"y": Y_REG.tolist()})
    same_init(hs.bias_init(reg, "l1"), REF_L1)
    same_init(hs.bias_init(reg.to_iterable_dataset(), "l1"), REF_L1)  # re-iterable: exact
    # ClassLabel's -1 ("no label", GLUE's test splits) is a missing label
    test = datasets.Dataset.from_dict(
        {"label": [0, -1, 1]},
        features=datasets.Features({"label": datasets.ClassLabel(names=["n", "p"])}),
    )
    with pytest.raises(HeadstartError, match="missing label"):
        hs.bias_init(test, "ce")
    assert list(hs.bias_init(test, "ce", nan="skip").counts) == [1, 1]


# ------------------------------------------------------------------------------- torch


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    check_all((torch.from_numpy(Y_CLS), torch.from_numpy(Y_REG)))
    # bfloat16 / float16 targets read as their exact float32 values
    yb = torch.from_numpy(Y_REG).to(torch.bfloat16)
    same_init(hs.bias_init(yb, "l1"), hs.bias_init(yb.float().numpy(), "l1"))
    # a target that requires grad (e.g. soft labels from a teacher) is detached
    soft = torch.softmax(torch.randn(50, 4, dtype=torch.float64), 1).requires_grad_()
    r = hs.bias_init(soft, "ce")  # 2-D rows: probability targets, as with .numpy()
    same_init(r, hs.bias_init(soft.detach().numpy(), "ce"))
    assert r.details.get("probability_targets")
    onehot = torch.nn.functional.one_hot(torch.from_numpy(Y_CLS), 5)
    np.testing.assert_allclose(hs.bias_init(onehot.double(), "ce").bias, REF_CE.bias, rtol=1e-6)


def test_torch_training_step_check_init():
    torch = pytest.importorskip("torch")
    y = torch.from_numpy(Y_CLS)
    init = hs.bias_init(y, "ce")
    model = torch.nn.Linear(8, 5)
    torch.nn.init.zeros_(model.weight)
    init.apply_to(model)
    x = torch.randn(256, 8)
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y[:256])
    assert loss.requires_grad
    check = hs.check_init(loss, init, batch_size=256)
    assert check.observed == pytest.approx(float(loss.detach()))
    check2 = hs.check_init(logits, init, target=y[:256])  # logits that require grad
    assert check2.observed == pytest.approx(float(loss.detach()), rel=1e-5)
    loss.backward()  # the graph is untouched
    half = hs.bias_init(y.to(torch.bfloat16), "ce")
    np.testing.assert_array_equal(half.bias, init.bias)


# ------------------------------------------------------------------- training-loop losses


def test_check_init_takes_keras_results_and_numbers():
    init = REF_CE
    opt = init.expected_loss
    assert hs.check_init([opt, 0.5], init).ok  # Keras evaluate(): [loss, accuracy]
    assert hs.check_init({"loss": opt, "accuracy": 0.5}, init).ok
    assert hs.check_init(np.float32(opt), init).ok
    assert hs.check_init(np.array(opt), init).ok
    with pytest.raises(HeadstartError, match="'loss' entry"):
        hs.check_init({"acc": 1.0}, init)


# ---------------------------------------------------------------------- label typing


def test_float_text_labels_are_integer_classes(tmp_path):
    """pandas writes an integer column that holds a NaN as floats: "2.0" is class 2, and
    output 2 stays class 2 (a string sort would put "10.0" there)."""
    y = np.array([0, 1, 2, 10, 2, 2])
    p = tmp_path / "y.csv"
    p.write_text("label\n" + "".join(f"{v}.0\n" for v in y))
    r = hs.bias_init(p, "ce")
    same_init(r, hs.bias_init(y, "ce"))
    assert len(r) == 11 and r.counts[2] == 3
    # the same from a float array, and "2", " 2", "+2", "2e0" are all class 2
    same_init(hs.bias_init(y.astype(float), "ce"), r)
    q = tmp_path / "mixed_forms.txt"
    q.write_text("2\n 2\n+2\n2e0\n2.0\n1\n")
    s = hs.scan(q)
    assert list(s.classes) == [1, 2] and list(s.counts) == [1, 5]


def test_numbers_mixed_with_names_is_an_error_with_lines(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("id,label\n1,3\n2,4\n3,cat\n")
    with pytest.raises(
        HeadstartError,
        match=r"'3' \(line 2 of .*m.csv\) is a number and 'cat' \(line 4 of .*m.csv\) is not",
    ):
        hs.bias_init(p, "ce")
    r = hs.bias_init(p, "ce", classes=["3", "4", "cat"])  # the escape: every label a name
    assert list(r.counts) == [1, 1, 1]
    with pytest.raises(
        HeadstartError, match=r"'2.5' \(line 3 of .*\) is a number but not an integer"
    ):
        q = tmp_path / "f.csv"
        q.write_text("label\n1\n2.5\n")
        hs.bias_init(q, "ce")
    with pytest.raises(HeadstartError, match="mix numbers and names"):
        hs.scan(np.array(["1", "a"], dtype=object))
    # 4 from an array and "4" from a file merge into one class
    a = hs.ClassCounts()
    a.update(np.array([4, 5]))
    b = hs.ClassCounts()
    b.update(np.array(["4"]))
    a.merge(b)
    assert list(a.result().classes) == [4, 5] and list(a.result().counts) == [2, 1]


def test_missing_tokens_in_a_numeric_column(tmp_path):
    p = tmp_path / "na.csv"
    p.write_text("y\n1\nNA\n2\n")
    with pytest.raises(HeadstartError, match=r"missing label 'NA' \(line 3"):
        hs.scan(p)
    r = hs.scan(p, nan="skip")
    assert list(r.classes) == [1, 2] and r.skipped == 1


# ---------------------------------------------------------------------------- headers


def test_header_rule(tmp_path):
    def scan_text(name, text, **kw):
        p = tmp_path / name
        p.write_text(text)
        return hs.scan(p, **kw)

    # a .txt with a header line: the header is not a class, the labels stay integers
    r = scan_text("h.txt", "label\n0\n1\n1\n")
    assert list(r.classes) == [0, 1] and r.n == 3 and r.column == "label"
    assert any("header" in n for n in r.notes)
    # a header-less CSV of numbers keeps its first value
    r = scan_text("nh.csv", "5\n1\n1\n")
    assert list(r.counts) == [2, 1] and r.n == 3
    r = scan_text("nh2.csv", "0.5,1\n1.5,0\n", column=0, kind="regression")
    assert r.n == 2 and r.min == 0.5
    # explicit header= wins
    r = scan_text("e.csv", "5\n1\n1\n", header=True)
    assert r.n == 2
    r = scan_text("e2.txt", "label\ncat\ndog\n", header=False)
    assert "label" in list(r.classes)
    # names only: CSV has a header unless its first value recurs below; text has none
    r = scan_text("names.csv", "pet\ncat\ndog\ncat\n")
    assert list(r.classes) == ["cat", "dog"]
    r = scan_text("names2.csv", "cat\ndog\ncat\n")
    assert list(r.counts) == [2, 1] and any("read as data" in n for n in r.notes)
    r = scan_text("names.txt", "cat\ndog\ncat\n")
    assert list(r.counts) == [2, 1]
    with pytest.raises(ValueError, match="header must be"):
        hs.scan(tmp_path / "names.txt", header="yes")


def test_stdin_and_pipes(tmp_path):
    """`-` in the CLI and a pipe path in the API are read whole (a pipe is copied first)."""
    y = RNG.integers(0, 3, 100_000)
    data = "".join(f"{v}\n" for v in y).encode()
    out = subprocess.run(
        [sys.executable, "-m", "headstart", "init", "-", "--json"],
        input=data,
        capture_output=True,
        check=True,
    )
    import json

    d = json.loads(out.stdout)
    assert d["n"] == y.size and d["counts"] == np.bincount(y).tolist()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    import threading

    def feed():
        with open(fifo, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed)
    t.start()
    r = hs.scan(str(fifo))
    t.join()
    assert r.n == y.size and list(r.counts) == np.bincount(y).tolist()


# --------------------------------------------------------------------- outputs and names


def test_classes_name_integer_outputs():
    names = ["airplane", "cat", "dog", "frog", "ship"]  # ImageFolder(...).classes
    r = hs.bias_init(Y_CLS, "ce", classes=names)
    assert list(r.classes) == names
    np.testing.assert_array_equal(r.bias, REF_CE.bias)
    r = hs.bias_init(Y_CLS, "ce", classes=names + ["truck"])  # an output never seen
    assert len(r) == 6 and r.counts[5] == 0
    with pytest.raises(HeadstartError, match=r"label 4 is not an output index for the 3 names"):
        hs.bias_init(Y_CLS, "ce", classes=names[:3])
    # integer classes= lists label values in output order
    r = hs.bias_init(np.array([10, 20, 20]), "ce", classes=[20, 10])
    assert list(r.counts) == [2, 1]


def test_sparse_ids_get_sorted_outputs(tmp_path):
    ids = RNG.integers(0, 2**62, 300)
    y = RNG.choice(ids, 5000)
    r = hs.bias_init(y, "ce")  # 2^62 outputs would be 32 EiB: ids, in sorted order
    u, c = np.unique(y, return_counts=True)
    np.testing.assert_array_equal(r.classes, u)
    np.testing.assert_array_equal(r.counts, c)
    assert "sparse_ids" in r.details and any("sparse integer ids" in n for n in r.notes())
    np.testing.assert_allclose(r.bias, np.log(c / c.sum()), rtol=1e-6)
    dense = hs.bias_init(np.array([0, 5, 5]), "ce")
    assert len(dense) == 6 and "sparse_ids" not in dense.details
    assert len(hs.bias_init(np.array([0, 5, 5]), "ce", sparse_ids=True)) == 2
    neg = hs.bias_init(np.array([-7, 3, 3]), "ce", sparse_ids=True)
    assert list(neg.classes) == [-7, 3]
    # the CLI writes the ids beside the bias
    p = tmp_path / "ids.npy"
    np.save(p, y)
    out = tmp_path / "b.npy"
    res = subprocess.run(
        [sys.executable, "-m", "headstart", "init", str(p), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sparse integer ids" in res.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "b.classes.npy"), u)
    np.testing.assert_array_equal(np.load(out), r.bias)


def test_label_sep_means_multilabel(tmp_path):
    p = tmp_path / "tags.csv"
    p.write_text("id,tags\n1,a|b\n2,\n3,b\n4,c|a\n")
    with pytest.raises(HeadstartError, match=r"label_sep=.*multi-label.*cross_entropy cannot take"):
        hs.bias_init(p, "ce", column="tags", label_sep="|")
    r = hs.bias_init(p, "bce", column="tags", label_sep="|")
    assert list(r.classes) == ["a", "b", "c"] and r.n == 4  # the empty tag set is a row
    np.testing.assert_allclose(r.details["rates"], [0.5, 0.5, 0.25])
    r2 = hs.bias_init(p, "bce", column="tags", label_sep="|", classes=["c", "b", "a", "d"])
    np.testing.assert_allclose(r2.details["rates"], [0.25, 0.5, 0.5, 0.0])
    res = subprocess.run(
        [sys.executable, "-m", "headstart", "init", str(p), "--column", "tags", "--label-sep", "|"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "multi-label" in res.stderr
    # the same tag strings in memory
    r3 = hs.bias_init(np.array(["a|b", "", "b", "c|a"], dtype=object), "bce", label_sep="|")
    np.testing.assert_allclose(r3.details["rates"], r.details["rates"])


def test_ignore_index_must_match_the_label_type():
    with pytest.raises(HeadstartError, match=r"ignore_index='x' but the labels are integers"):
        hs.bias_init(Y_CLS, "ce", ignore_index="x")
    r = hs.bias_init(Y_CLS, "ce", ignore_index=7)
    assert "ignore_index_unmatched" in r.details and any("matched no label" in n for n in r.notes())
    assert "ignore_index_unmatched" not in hs.bias_init(Y_CLS, "ce").details  # the default
    r = hs.bias_init(np.array(["cat", "dog", "pad", "cat"]), "ce", ignore_index="pad")
    assert list(r.classes) == ["cat", "dog"] and r.details["ignored"] == 1
    with pytest.raises(HeadstartError, match=r"ignore_index=3 but the labels are names"):
        hs.bias_init(np.array(["cat", "dog"]), "ce", ignore_index=3)


def test_flat_huber_zero_set_gives_its_midpoint():
    """psi flat at zero on [y3 + d, y4 - d]: the Huber location is its midpoint (the median),
    whatever bracket the selection narrowed to."""
    y = np.array([0.23072408, 0.61690629, 0.73285423, 2.14605805, 3.59959417, 10.75087375])
    for src in (y, RNG.permutation(y), lambda: iter([y[:2], y[2:]])):
        s = hs.scan(src, huber_delta=0.7)
        assert s.huber_location(0.7) == pytest.approx((y[2] + y[3]) / 2, rel=1e-15)


def test_unknown_objects_and_bad_columns():
    with pytest.raises(TypeError, match="cannot read labels from a builtins.dict"):
        hs.scan({"a": 1})
    with pytest.raises(HeadstartError, match="column='y' applies to tables"):
        hs.scan(np.arange(3), column="y")


# ------------------------------------------------------------ found by a newcomer's trial


def test_categorical_columns_keep_their_categories_in_every_container(tmp_path):
    """pandas categoricals, the same written to Parquet, polars Enum: the categories in
    their order name the outputs (unseen ones too) and the codes are the labels."""
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    cats = ["dog", "cat", "bee", "ant"]
    values = ["dog", "dog", "dog", "cat", "ant"]
    df = pd.DataFrame({"pet": pd.Categorical(values, categories=cats)})
    want = hs.bias_init(df, "ce")
    assert list(want.classes) == cats and list(want.counts) == [3, 1, 0, 1]
    df.to_parquet(tmp_path / "p.parquet")
    for src in (
        tmp_path / "p.parquet",
        pl.Series(values, dtype=pl.Enum(cats)),
        pl.LazyFrame({"pet": pl.Series(values, dtype=pl.Enum(cats))}),
    ):
        same_init(hs.bias_init(src, "ce"), want)
    assert hs.scan(pl.Series(values, dtype=pl.Enum(cats))).names == cats


def test_every_judged_header_is_noted(tmp_path):
    p = tmp_path / "names_nohdr.csv"
    p.write_text("cat\ndog\ndog\nbird\n")
    r = hs.scan(p)
    assert r.n == 3 and any("taken as the header" in n for n in r.notes)
    q = tmp_path / "names_hdr.txt"
    q.write_text("label\ncat\ndog\ndog\nbird\n")
    r = hs.scan(q)
    assert r.n == 5 and any("read as a label" in n for n in r.notes)


def test_column_names_need_a_header(tmp_path):
    for name in ("n.csv", "n.txt"):
        p = tmp_path / name
        p.write_text("6\n1\n")
        with pytest.raises(
            HeadstartError, match=r"no column named 'label': the file has no header"
        ):
            hs.scan(p, column="label")


def test_stdin_format_from_the_content(tmp_path):
    pd = pytest.importorskip("pandas")
    y = RNG.normal(size=500)
    df = pd.DataFrame({"id": np.arange(500), "price": y})
    cases = {
        "csv": df.to_csv(index=False).encode(),
        "parquet": None,
    }
    df.to_parquet(tmp_path / "x.parquet")
    cases["parquet"] = (tmp_path / "x.parquet").read_bytes()
    import json

    for name, data in cases.items():
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "headstart",
                "init",
                "-",
                "--column",
                "price",
                "--loss",
                "l1",
                "--json",
            ],
            input=data,
            capture_output=True,
        )
        assert out.returncode == 0, (name, out.stderr)
        d = json.loads(out.stdout)
        assert d["bias"][0] == pytest.approx(float(np.float32(np.median(y))), rel=1e-6), name


def test_check_init_checks_widths_and_compares_on_the_batch():
    y = RNG.choice(3, 1000, p=[0.5, 0.3, 0.2])
    init = hs.bias_init(y, "ce")
    with pytest.raises(HeadstartError, match=r"logits have 5 outputs per sample .* computed 3"):
        hs.check_init(np.zeros((32, 5)), init, target=y[:32])
    big = y[:512]
    zero = hs.check_init(np.zeros((512, 3)), init, target=big)
    assert zero.verdict == "bias_off" and "on this batch" in str(zero)
    assert zero.naive == pytest.approx(np.log(3))
    good = hs.check_init(np.tile(init.bias, (512, 1)), init, target=big)
    assert good.ok and good.optimum == pytest.approx(good.observed)
    # a batch that cannot tell the optimum from uniform says so instead of "ok"
    tiny = hs.check_init(float(np.log(3)), init, batch_size=8)
    assert tiny.verdict == "inconclusive"
    with pytest.raises(TypeError, match="empty"):
        hs.check_init([], init)
    with pytest.raises(TypeError, match="neither a loss nor an array"):
        hs.check_init([[1.7], 0.5], init)


def test_dense_outputs_have_a_limit():
    with pytest.raises(HeadstartError, match="sparse_ids=True"):
        hs.bias_init(np.array([0, 2**62]), "ce", sparse_ids=False)


def test_hf_class_label_is_the_default_column_and_generators_work():
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {"label": datasets.ClassLabel(names=["a", "b"]), "x": datasets.Value("float32")}
    )
    ds = datasets.Dataset.from_dict({"label": [0, 1, 1], "x": [1.0, 2.0, 3.0]}, features=feats)
    assert list(hs.bias_init(ds, "ce").classes) == ["a", "b"]  # not the last column, x

    def gen():
        for i in range(99):
            yield {"x": 1.0, "label": i % 3}

    it = datasets.IterableDataset.from_generator(gen)
    assert list(hs.bias_init(it, "ce", column="label").counts) == [33, 33, 33]


def test_a_tag_repeated_in_a_row_is_one_positive(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("tags\ncat|cat\ncat|cat\ndog\n")
    r = hs.bias_init(p, "bce", label_sep="|")
    np.testing.assert_allclose(r.details["rates"], [2 / 3, 1 / 3])
    mem = hs.bias_init(np.array(["cat|cat", "cat|cat", "dog"], dtype=object), "bce", label_sep="|")
    np.testing.assert_array_equal(mem.bias, r.bias)


def test_missing_tokens_in_regression_columns(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("y\n2.5\nNA\n4.5\nnull\n")
    with pytest.raises(HeadstartError, match=r"r.csv:3: column 1: missing value \"NA\""):
        hs.scan(p, kind="regression")
    r = hs.scan(p, nan="skip")  # kind from the content: NA tokens are not numbers' enemies
    assert isinstance(r, hs.RegressionStats) and r.n == 2 and r.skipped == 2 and r.median == 3.5


# --------------------------------------------------------------------- raw token files


def llmc_file(path, tokens, magic=20240520, version=1, count=None, dtype=np.uint16):
    header = np.zeros(256, np.int32)
    header[:3] = (magic, version, len(tokens) if count is None else count)
    with open(path, "wb") as f:
        header.tofile(f)
        np.asarray(tokens, dtype).tofile(f)


def test_raw_token_files(tmp_path):
    tokens = RNG.zipf(1.3, 200_000) % 50257
    p = tmp_path / "train.bin"
    tokens.astype(np.uint16).tofile(p)  # nanoGPT's prepare.py
    want = hs.bias_init(tokens, "ce", num_classes=50257)
    same_init(hs.bias_init(p, "ce", label_dtype="uint16", num_classes=50257), want)
    r = hs.scan(p, label_dtype="uint16")
    np.testing.assert_array_equal(r.counts, np.unique(tokens, return_counts=True)[1])
    assert any("uint16 values, no header" in n for n in r.notes)
    with pytest.raises(
        HeadstartError, match=r"needs its element type.*nanoGPT's train.bin is uint16"
    ):
        hs.scan(p)
    # llm.c: the header gives the dtype and is checked
    q = tmp_path / "fineweb_train_000001.bin"
    llmc_file(q, tokens)
    same_init(hs.bias_init(q, "ce", num_classes=50257), want)
    assert any("llm.c header" in n for n in hs.scan(q).notes)
    for name, kw, msg in [
        ("v.bin", dict(version=3), "version 3, expected 1"),
        ("n.bin", dict(count=len(tokens) + 1), "promises"),
    ]:
        llmc_file(tmp_path / name, tokens, **kw)
        with pytest.raises(HeadstartError, match=msg):
            hs.scan(tmp_path / name)
    with pytest.raises(HeadstartError, match="says uint16"):
        hs.scan(q, label_dtype="uint32")
    llama = tmp_path / "llama.bin"
    llmc_file(llama, tokens * 2, magic=20240801, version=7, dtype=np.uint32)
    np.testing.assert_array_equal(hs.scan(llama).classes, np.unique(tokens * 2))
    # every element type, and an odd size
    for dt in ("uint8", "uint16", "uint32", "int32", "int64"):
        v = (tokens % 200).astype(dt)
        f = tmp_path / f"t_{dt}.bin"
        v.tofile(f)
        np.testing.assert_array_equal(
            hs.scan(f, label_dtype=dt).counts, np.bincount(v)[np.bincount(v) > 0]
        )
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(HeadstartError, match="7 bytes is not a whole number of uint16"):
        hs.scan(tmp_path / "odd.bin", label_dtype="uint16")
    # the CLI, and a token file on stdin (llm.c's header tells it apart)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "headstart",
            "init",
            str(p),
            "--label-dtype",
            "uint16",
            "--num-classes",
            "50257",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    assert json.loads(res.stdout)["n"] == tokens.size
    res = subprocess.run(
        [sys.executable, "-m", "headstart", "init", "-", "--num-classes", "50257", "--json"],
        input=q.read_bytes(),
        capture_output=True,
        check=True,
    )
    assert json.loads(res.stdout)["counts"] == np.bincount(tokens, minlength=50257).tolist()

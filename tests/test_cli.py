"""The ``headstart init`` command end to end: reports and --json on real files checked
against numpy, --out, --plot, exit codes and one-line errors without tracebacks."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import sys

import headstart as hs
import numpy as np
import pytest
from headstart import _cli

HAS_MPL = _cli._have_matplotlib()


def run(capsys, *argv):
    code = _cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def pets(tmp_path):
    rng = np.random.default_rng(7)
    names = np.array(["cat", "dog", "emu", "yak"])
    y = names[rng.choice(4, size=500, p=[0.6, 0.25, 0.1, 0.05])]
    w = rng.lognormal(1.0, 0.8, 500)
    p = tmp_path / "pets.csv"
    p.write_text(
        "id,label,weight\n"
        + "".join(f"{i},{a},{float(b)!r}\n" for i, (a, b) in enumerate(zip(y, w)))
    )
    return p, y, w


def test_bundled_example_report(capsys):
    code, out, err = run(capsys, "init")
    assert code == 0 and err == ""
    ref = hs.bias_init(hs.scan(_example(), column="pet"), "ce")
    assert "bundled example" in out and 'column "pet"' in out
    assert f"{ref.expected_loss:.6g}" in out and f"log {len(ref)}" in out
    assert "with torch.no_grad(): model.fc.bias.copy_(torch.tensor([" in out
    for name, count in zip(ref.classes, ref.counts):
        assert any(name in line and f" {count} " in line for line in out.splitlines())


def _example():
    from importlib import resources

    return str(resources.files("headstart").joinpath("data", "example_labels.csv"))


def test_bundled_example_is_a_package_file():
    path = _example()
    assert os.path.isfile(path)
    s = hs.scan(path, column="pet")
    assert s.n >= 200 and len(s.classes) >= 5
    assert s.counts.max() > 5 * s.counts.min()  # imbalanced


def test_json_classification_matches_numpy(capsys, pets):
    path, y, _ = pets
    d = run_json(capsys, "init", str(path), "--column", "label")
    classes, counts = np.unique(y, return_counts=True)
    assert d["classes"] == classes.tolist() and d["counts"] == counts.tolist()
    f = counts / counts.sum()
    np.testing.assert_allclose(d["bias"], np.log(f), rtol=1e-6)
    assert d["expected_loss"] == pytest.approx(-(f * np.log(f)).sum(), rel=1e-12)
    assert d["zero_bias_loss"] == pytest.approx(math.log(4), rel=1e-12)
    assert d["loss"] == "cross_entropy" and d["column"] == "label"
    assert d["torch_line"].startswith("with torch.no_grad():")


def test_json_options_weight_smoothing(capsys, pets):
    path, y, _ = pets
    d = run_json(
        capsys, "init", str(path), "-c", "label", "--weight", "1,2,3,4", "--label-smoothing", "0.1"
    )
    ref = hs.bias_init(y, "ce", weight=[1, 2, 3, 4], label_smoothing=0.1)
    np.testing.assert_allclose(d["bias"], ref.bias)
    assert d["expected_loss"] == pytest.approx(ref.expected_loss, rel=1e-12)


def test_regression_json_and_text(capsys, pets):
    path, _, w = pets
    d = run_json(capsys, "init", str(path), "-c", "weight", "--loss", "huber", "--delta", "0.5")
    s = hs.scan(w, huber_delta=0.5)
    assert d["bias"][0] == pytest.approx(s.huber_location(0.5), rel=1e-6)
    assert d["expected_loss"] == pytest.approx(s.huber_loss(0.5), rel=1e-12)
    code, out, _ = run(capsys, "init", str(path), "-c", "weight", "--loss", "mse")
    assert code == 0
    assert "the mean" in out and f"{w.var():.6g}" in out
    d = run_json(capsys, "init", str(path), "-c", "weight", "--loss", "quantile", "--tau", "0.9")
    assert d["bias"][0] == pytest.approx(np.quantile(w, 0.9, method="inverted_cdf"), rel=1e-6)


def test_multi_column_regression(capsys, tmp_path):
    rng = np.random.default_rng(2)
    y = rng.normal([1.0, -4.0], [2.0, 0.5], (300, 2))
    p = tmp_path / "two.csv"
    p.write_text("a,b\n" + "".join(f"{float(u)!r},{float(v)!r}\n" for u, v in y))
    d = run_json(capsys, "init", str(p), "-c", "a,b", "--loss", "mse")
    np.testing.assert_allclose(d["bias"], y.mean(axis=0), rtol=1e-6)
    assert d["expected_loss"] == pytest.approx(y.var(axis=0).mean(), rel=1e-10)


def test_npy_gz_and_out(capsys, tmp_path):
    y = np.repeat(np.arange(3), [50, 30, 20])
    npy = tmp_path / "y.npy"
    np.save(npy, y)
    out = tmp_path / "bias.npy"
    code, text, _ = run(capsys, "init", str(npy), "--out", str(out), "--dtype", "float64")
    assert code == 0 and f"bias written to {out}" in text
    b = np.load(out)
    assert b.dtype == np.float64
    np.testing.assert_allclose(b, np.log([0.5, 0.3, 0.2]), rtol=1e-12)
    gz = tmp_path / "y.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("".join(f"{v}\n" for v in y))
    d = run_json(capsys, "init", str(gz), "--num-classes", "4")
    assert d["counts"] == [50, 30, 20, 0]
    assert d["floor"]["classes"] == [3]
    assert d["bias"][3] == pytest.approx(math.log(0.5 / 100), rel=1e-6)


def test_hinge_and_bce_reports(capsys, pets):
    path, y, _ = pets
    code, out, _ = run(capsys, "init", str(path), "-c", "label", "--loss", "hinge")
    assert code == 0 and "level" in out and "(equal scores)" in out
    ref = hs.bias_init(y, "hinge")
    assert f"{ref.expected_loss:.6g}" in out
    d = run_json(capsys, "init", str(path), "-c", "label", "--loss", "crammer_singer")
    assert d["options"]["variant"] == "crammer_singer"
    d = run_json(capsys, "init", str(path), "-c", "label", "--loss", "bce", "--pos-weight", "2")
    f = np.unique(y, return_counts=True)[1] / y.size
    np.testing.assert_allclose(d["bias"], np.log(2 * f / (1 - f)), rtol=1e-6)


def test_default_column_is_reported(capsys, pets):
    path, _, w = pets
    d = run_json(capsys, "init", str(path), "--loss", "mse")  # scan takes the last column
    assert d["column"] == "weight"
    assert d["bias"][0] == pytest.approx(w.mean(), rel=1e-6)


def test_quiet_prints_nothing(capsys, pets):
    path, _, _ = pets
    code, out, err = run(capsys, "init", str(path), "-c", "label", "-q")
    assert code == 0 and out == "" and err == ""


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed")
@pytest.mark.parametrize(
    "loss,column", [("ce", "label"), ("huber", "weight"), ("hinge", "label"), ("bce", "label")]
)
def test_plot(capsys, pets, tmp_path, loss, column):
    path, _, _ = pets
    png = tmp_path / f"{loss}.png"
    code, out, err = run(
        capsys, "init", str(path), "-c", column, "--loss", loss, "--plot", str(png)
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot written to {png}" in out


def test_plot_without_matplotlib_is_a_hint(capsys, pets, monkeypatch):
    monkeypatch.setattr(_cli, "_have_matplotlib", lambda: False)
    path, _, _ = pets
    code, out, err = run(capsys, "init", str(path), "-c", "label", "--plot", "x.png")
    assert code == 2 and out == ""
    assert err.strip() == "headstart: error: --plot needs matplotlib: pip install 'headstart[plot]'"


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["init", "{dir}/missing.csv"], "no such file"),
        (["init", "{pets}", "-c", "nope"], 'no column named "nope"'),
        (["init", "{pets}", "-c", "label", "--loss", "kl"], "unknown loss 'kl'"),
        (["init", "{pets}", "-c", "label", "--delta", "1"], "does not take option(s) delta"),
        (["init", "{pets}", "-c", "label", "--num-classes", "3"], "--num-classes 3"),
        (["init", "{one}"], "one class only"),
        (["init", "{empty}"], "empty"),
        (["init", "{pets}", "-c", "weight", "--loss", "pinball", "--tau", "1.5"], "tau"),
        (["init", "{pets}", "-c", "label", "--floor", "0.3"], "floor"),
        (["init", "{pets}", "-c", "label", "--loss", "mse"], "expected a number"),
    ],
)
def test_user_errors_exit_2_one_line(capsys, pets, tmp_path, argv, needle):
    (tmp_path / "one.txt").write_text("a\na\na\n")
    (tmp_path / "empty.txt").write_text("")
    fill = {
        "dir": tmp_path,
        "pets": pets[0],
        "one": tmp_path / "one.txt",
        "empty": tmp_path / "empty.txt",
    }
    code, out, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("headstart: error: "), err
    assert needle in err and "Traceback" not in err


def test_usage_errors(capsys):
    assert _cli.main([]) == 2
    assert "usage" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _cli.main(["init", "--tau", "abc"])
    assert e.value.code == 2
    assert "invalid float value" in capsys.readouterr().err


def test_python_dash_m_subprocess(pets):
    path, y, _ = pets
    r = subprocess.run(
        [sys.executable, "-m", "headstart", "init", str(path), "-c", "label", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["n"] == y.size
    r = subprocess.run(
        [sys.executable, "-m", "headstart", "init", str(path) + ".nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.skipif(shutil.which("headstart") is None, reason="console script not installed")
def test_console_script():
    r = subprocess.run(["headstart", "init", "--json"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["loss"] == "cross_entropy"


def test_json_reports_skipped_values(capsys, tmp_path):
    # --nan skip leaves values out: the JSON says how many (it used to say nothing)
    p = tmp_path / "nan.csv"
    p.write_text("y\n1.5\nnan\n2.5\n\n3\n")
    d = run_json(capsys, "init", str(p), "--loss", "mse", "--nan", "skip")
    assert d["n"] == 3 and d["skipped"] == 2
    assert d["bias"][0] == pytest.approx(7.0 / 3.0, rel=1e-6)
    d = run_json(capsys, "init", str(p), "--loss", "l1", "--nan", "skip")
    assert d["skipped"] == 2 and d["bias"][0] == pytest.approx(2.5)
    labels = tmp_path / "cls.csv"
    labels.write_text("label\ncat\n\ndog\ncat\n")
    d = run_json(capsys, "init", str(labels), "--nan", "skip")
    assert d["n"] == 3 and d["skipped"] == 1
    assert hs.bias_init(labels, nan="skip").to_dict()["skipped"] == 1


def test_errors_name_cli_options_not_keywords(capsys, tmp_path):
    # the library says nan='skip', sparse_ids=True, classes=; the CLI user reads options
    p = tmp_path / "n.csv"
    p.write_text("y\n1.5\nnan\n")
    code, _, err = run(capsys, "init", str(p), "--loss", "mse")
    assert code == 2 and "--nan skip" in err and "nan='skip'" not in err
    q = tmp_path / "neg.csv"
    q.write_text("y\n-5\n3\n")
    code, _, err = run(capsys, "init", str(q))
    assert code == 2 and "--sparse-ids" in err and "sparse_ids" not in err
    r = tmp_path / "cls.csv"
    r.write_text("label\ncat\ndog\n")
    code, _, err = run(capsys, "init", str(r), "--classes", "cat")
    assert code == 2 and "--classes" in err and "classes=" not in err
    code, _, err = run(capsys, "init", str(r), "--label-dtype", "uint16")
    assert code == 2 and "--label-dtype applies" in err and "--format raw" in err

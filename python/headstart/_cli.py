"""The ``headstart`` command line: ``headstart init [PATH] [--column C] [--loss L] ...``.

Exit codes: 0 success; 2 a usage or input error (bad option, unknown loss, missing file or
column, bad label), reported in one line without a traceback; 1 anything else (a bug: the
traceback is printed); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import sys
from importlib import resources

import numpy as np

from . import __version__
from ._core import HeadstartError
from .api import bias_init
from .bias import BiasInit, loss_names
from .bias.fmt import short_float
from .bias.losses import resolve_loss

EXAMPLE = "example_labels.csv"
EXAMPLE_CLASS_COLUMN = "pet"
EXAMPLE_TARGET_COLUMN = "weight_kg"
PLOT_QUANTILES = tuple(float(q) for q in np.round(np.linspace(0.025, 0.975, 39), 3))
MAX_TABLE_ROWS = 20


class UserError(Exception):
    """A mistake in the command line or the input: reported without a traceback."""


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _column(text: str):
    parts = [p.strip() for p in text.split(",")] if "," in text else [text]
    out = [int(p) if p.lstrip("-").isdigit() else p for p in parts]
    return out if len(out) > 1 else out[0]


def _label(text: str):
    """A label on the command line: an integer when it reads as one, else a name."""
    t = text.strip()
    return int(t) if t.lstrip("+-").isdigit() else t


def _floor(text: str):
    t = text.strip().lower()
    if t == "none":
        return None
    try:
        return float(t)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headstart",
        description="Start your output layer right: the optimal bias and the loss at init, "
        "from your training labels.",
    )
    parser.add_argument("--version", action="version", version=f"headstart {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "init",
        help="optimal output bias and expected loss at initialisation",
        description="Compute the optimal constant output (the last layer's bias) for a loss "
        "and the loss a model should show at initialisation. With no PATH it runs on a small "
        "bundled example (pet classes and weights).",
        epilog="losses: "
        + ", ".join(sorted(set(loss_names().values())))
        + "; aliases: "
        + ", ".join(k for k, v in loss_names().items() if k != v),
    )
    p.add_argument(
        "path",
        nargs="?",
        help="label file (csv, tsv, txt, npy, bin, their .gz, parquet, feather); - reads stdin",
    )
    p.add_argument(
        "-c",
        "--column",
        type=_column,
        help="column name or 0-based index (comma-separated for several regression outputs)",
    )
    p.add_argument(
        "-l", "--loss", default="cross_entropy", help="loss name (default: cross_entropy)"
    )
    g = p.add_argument_group("loss options (torch names)")
    g.add_argument("--weight", type=_float_list, help="per-class weights, comma-separated")
    g.add_argument("--label-smoothing", type=float, dest="label_smoothing")
    g.add_argument(
        "--ignore-index",
        type=_label,
        dest="ignore_index",
        help="a label to leave out (cross_entropy): an integer, or a name for name labels",
    )
    g.add_argument(
        "--pos-weight",
        type=_float_list,
        dest="pos_weight",
        help="BCE pos_weight, one number or one per output",
    )
    g.add_argument("--delta", type=float, help="Huber delta")
    g.add_argument("--beta", type=float, help="smooth L1 beta")
    g.add_argument("--tau", type=float, help="pinball / quantile level in (0, 1)")
    g.add_argument("--margin", type=float, help="hinge margin")
    g.add_argument(
        "--variant", choices=["weston_watkins", "crammer_singer"], help="multiclass hinge variant"
    )
    p.add_argument(
        "--num-classes",
        type=int,
        dest="num_classes",
        help="number of outputs (integer labels index them)",
    )
    p.add_argument(
        "--classes",
        type=lambda s: [_label(c) for c in s.split(",")],
        help="class names of the outputs 0..C-1 for integer labels (e.g. ImageFolder's "
        "classes), or every label in output order, comma-separated",
    )
    ids = p.add_mutually_exclusive_group()  # one layout or the other, not both
    ids.add_argument(
        "--sparse-ids",
        dest="sparse_ids",
        action="store_const",
        const=True,
        help="integer labels are ids: one output per distinct id, in sorted order (the "
        "default decides: ids when they would need over 4M outputs, over twice the ids seen)",
    )
    ids.add_argument(
        "--dense-ids",
        dest="sparse_ids",
        action="store_const",
        const=False,
        help="integer labels index the outputs 0..max, however sparse",
    )
    p.add_argument(
        "--floor",
        type=_floor,
        default="pseudocount",
        help="finite value for classes never seen: pseudocount[:ALPHA] (default, "
        "alpha 0.5), min_log_prob:M or a negative number M, or none",
    )
    p.add_argument(
        "--nan",
        choices=["raise", "skip"],
        default=None,
        help="NaN / empty values: raise (default) or skip and count them",
    )
    p.add_argument("--delimiter", help="field delimiter of a text file")
    p.add_argument(
        "--format",
        choices=["csv", "tsv", "text", "npy", "raw", "parquet", "ipc"],
        help="file format, instead of the extension's (stdin: text, one value per line)",
    )
    h = p.add_mutually_exclusive_group()
    h.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        default="auto",
        help="the first line of a text file is a header",
    )
    h.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        help="the first line is data (default: decided from the file; see the README)",
    )
    p.add_argument(
        "--label-dtype",
        dest="label_dtype",
        choices=["uint8", "uint16", "uint32", "int32", "int64"],
        help="element type of a raw binary file (.bin; nanoGPT's train.bin is uint16; "
        "an llm.c header gives it)",
    )
    p.add_argument(
        "--label-sep",
        dest="label_sep",
        help="separator of several labels in one cell (multi-label, BCE)",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float64", "float16"],
        default="float32",
        help="dtype of the bias (--out, --json)",
    )
    p.add_argument(
        "--layer", default="model.fc", type=_layer, help="layer name in the PyTorch line"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the report")
    p.add_argument("--out", help="write the bias to this .npy file")
    p.add_argument(
        "--plot",
        help="draw the label distribution with the chosen constant "
        "(needs matplotlib) into this image file",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no report and no progress bar")
    return parser


_OPTION_DESTS = (
    "weight",
    "label_smoothing",
    "ignore_index",
    "pos_weight",
    "delta",
    "beta",
    "tau",
    "margin",
    "variant",
)


def _have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def main(argv=None) -> int:
    """Entry point of the ``headstart`` script and ``python -m headstart``; returns the exit
    code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _init(args)
    except BrokenPipeError:
        # `headstart init x.csv | head`: the reader left; stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("headstart: interrupted", file=sys.stderr)
        return 130
    except (UserError, HeadstartError, ValueError, TypeError, OSError, LookupError) as e:
        msg = str(e) or type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        print(f"headstart: error: {_cli_words(msg)}", file=sys.stderr)
        return 2


# The library's messages name its keyword arguments; a CLI user gets the options.
_CLI_WORDS = [
    (r"\blabel_dtype= \(--label-dtype\)", "--label-dtype"),
    (r"\blabel_sep= \(--label-sep\)", "--label-sep"),
    (r"\bnan='skip'", "--nan skip"),
    (r"\bformat='raw'", "--format raw"),
    (r"\bsparse_ids=True", "--sparse-ids"),
    (r"\bsparse_ids=False", "--dense-ids"),
    (r"\bnum_classes=", "--num-classes "),
    (r"\bclasses=\[\.\.\.\]", "--classes a,b,..."),
    (r"\bclasses=", "--classes"),
    (r"\blabel_dtype=", "--label-dtype"),
    (r"\blabel_sep=", "--label-sep"),
]


def _cli_words(msg: str) -> str:
    import re

    for pat, rep in _CLI_WORDS:
        msg = re.sub(pat, rep, msg)
    return msg


def _example_path(stack: contextlib.ExitStack) -> str:
    ref = resources.files("headstart").joinpath("data", EXAMPLE)
    return str(stack.enter_context(resources.as_file(ref)))


def _init(args) -> int:
    if args.plot and not _have_matplotlib():
        raise UserError("--plot needs matplotlib: pip install 'headstart[plot]'")
    options = {k: getattr(args, k) for k in _OPTION_DESTS if getattr(args, k) is not None}
    if "pos_weight" in options and len(options["pos_weight"]) == 1:
        options["pos_weight"] = options["pos_weight"][0]
    scan_options = {}
    with contextlib.ExitStack() as stack:
        column = args.column
        bundled = args.path is None
        if bundled:
            path = _example_path(stack)
            if column is None:
                fam = resolve_loss(args.loss)[0].family
                column = EXAMPLE_TARGET_COLUMN if fam == "regression" else EXAMPLE_CLASS_COLUMN
        elif args.path == "-":
            path = "/dev/stdin"  # a pipe: copied to a temporary file, read whole
        else:
            path = args.path
        family = _family(args.loss)
        if args.plot and family == "regression":
            scan_options["quantiles"] = list(PLOT_QUANTILES)
        result = bias_init(
            path,
            args.loss,
            column=column,
            num_classes=args.num_classes,
            classes=args.classes,
            floor=args.floor,
            dtype=np.dtype(args.dtype),
            nan=args.nan,
            progress=None if args.quiet else True,
            sparse_ids=args.sparse_ids,
            label_sep=args.label_sep,
            header=args.header,
            format=args.format,
            delimiter=args.delimiter,
            label_dtype=args.label_dtype,
            scan_options=scan_options or None,
            **options,
        )
    shown = "bundled example " + EXAMPLE if bundled else ("stdin" if args.path == "-" else path)
    if column is None:  # the column scan chose (the only or the last one)
        first = result.stats[0] if isinstance(result.stats, list) else result.stats
        column = getattr(first, "column", None) or None
    vocab = None
    if args.out:
        np.save(args.out, result.bias)
        vocab = _write_vocabulary(result, args.out)
    if args.plot:
        _plot(result, args.plot, shown, column)
    if args.json:
        d = result.to_dict()
        d.update(
            source=shown if not bundled else EXAMPLE,
            column=column,
            torch_line=result.torch_line(args.layer, path=args.out or "bias.npy"),
            out=args.out,
            vocabulary=vocab,
            plot=args.plot,
            notes=result.notes(),
        )
        print(json.dumps(d, indent=2, allow_nan=False))
    elif not args.quiet:
        print(report(result, shown, column, args.layer, args.out, args.plot, vocab))
    return 0


def _write_vocabulary(r: BiasInit, out: str) -> str | None:
    """Beside ``--out``: the label of each output when outputs are not simply the integer
    labels 0..C-1 (sparse ids: ``<stem>.classes.npy``; names: ``<stem>.classes.txt``, one
    per line). Returns the path written, or None."""
    if r.classes is None:
        return None
    cls = np.asarray(r.classes)
    stem = out.removesuffix(".npy")
    if cls.dtype.kind in "iu":
        if np.array_equal(cls, np.arange(cls.shape[0])):
            return None
        path = stem + ".classes.npy"
        np.save(path, cls.astype(np.int64))
        return path
    path = stem + ".classes.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{c}\n" for c in cls.tolist())
    return path


def _family(loss: str) -> str:
    return resolve_loss(loss)[0].family


# ----------------------------------------------------------------------------- the report


def _num(x, digits=6) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _opts_text(r: BiasInit) -> str:
    skip = {"reduction"}
    defaults = {
        "label_smoothing": 0.0,
        "ignore_index": -100,
        "log_input": True,
        "full": False,
        "eps": 1e-8,
        "p": 1,
        "variant": "weston_watkins",
    }
    parts = []
    for k, v in r.options.items():
        if k in skip or v is None or defaults.get(k, object()) == v:
            continue
        if isinstance(v, (list, tuple, np.ndarray)):
            v = ",".join(f"{float(x):g}" for x in np.asarray(v).reshape(-1))
        parts.append(f"{k}={v}")
    return f" ({', '.join(parts)})" if parts else ""


def report(
    r: BiasInit, source: str, column, layer: str = "model.fc", out=None, plot=None, vocab=None
) -> str:
    """The human-readable report of one bias_init result."""
    col = f', column "{column}"' if column is not None else ""
    lines = [f"headstart init: {source}{col}"]
    lines.append(f"loss: {r.loss}{_opts_text(r)}")
    if r.family in ("softmax", "hinge") or (r.family == "sigmoid" and r.counts is not None):
        lines.append(f"{r.n} labels, {len(r.counts)} classes")
    elif r.family == "sigmoid":
        lines.append(f"{r.n} rows, {len(r)} outputs")
    else:
        lines.append(f"{r.n} targets" + (f", {len(r)} outputs" if len(r) > 1 else ""))
    if "ignored" in r.details:
        lines.append(f"({r.details['ignored']} labels equal to ignore_index were left out)")
    skipped = _skipped(r)
    if skipped:
        lines.append(f"({skipped} NaN / empty values skipped)")
    lines.append("")
    lines.extend(_table(r))
    lines.append("")
    width = 24
    lines.append(f"{'expected loss at init':<{width}}{_num(r.expected_loss)}{_expected_note(r)}")
    lines.append(f"{'with a zero bias':<{width}}{_num(r.zero_bias_loss)}{_zero_note(r)}")
    if r.gain is not None:
        lines.append(f"{'bias_init saves':<{width}}{_num(r.gain, 4)} at step 0")
    if r.floor.classes:
        lines.append(f"{'floor':<{width}}{r.floor}")
    for note in r.notes():
        lines.append("note: " + note)
    lines.append("")
    npy = out or "bias.npy"
    lines.append("PyTorch:")
    lines.append("  " + r.torch_line(layer, path=npy))
    if len(r) > 32 and not out:
        lines.append("  (write bias.npy with --out bias.npy)")
    lines.append(
        f"Keras: bias_initializer=keras.initializers.Constant(np.load({npy!r}))"
        if len(r) > 32
        else "Keras: bias_initializer=keras.initializers.Constant("
        + "["
        + ", ".join(_short(v) for v in r.bias)
        + "])"
    )
    if out:
        lines.append(f"bias written to {out}")
    if vocab:
        lines.append(f"labels of the outputs written to {vocab}")
    if plot:
        lines.append(f"plot written to {plot}")
    return "\n".join(lines)


def _short(v) -> str:
    return short_float(v)


def _layer(s: str) -> str:
    """The layer as Python names it (model.fc, net.head[0])."""
    import re

    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[\d+\])*", s):
        raise argparse.ArgumentTypeError(
            f"expected the layer as Python names it, e.g. model.fc or net.head[0], got {s!r}"
        )
    return s


def _skipped(r: BiasInit) -> int:
    return r.skipped


def _expected_note(r: BiasInit) -> str:
    plain = all(
        r.options.get(k) in (None, 0.0) for k in ("weight", "label_smoothing", "pos_weight")
    )
    if r.family == "softmax" and plain:
        return "   (entropy of the labels, H(F))"
    notes = {
        "mse_loss": "   (variance of the targets)",
        "l1_loss": "   (mean |y - median|)",
        "poisson_nll_loss": "   (m - m log m, m = mean)",
    }
    if r.family == "sigmoid" and plain:
        return "   (mean binary entropy of the outputs)"
    return notes.get(r.loss, "")


def _zero_note(r: BiasInit) -> str:
    c = len(r)
    if (
        r.family == "softmax"
        and not r.options.get("weight")
        and not r.options.get("label_smoothing")
    ):
        return f"   (uniform: log {c})"
    if r.family == "hinge":
        return "   (equal scores)"
    if r.zero_bias_loss is None and "zero_bias_loss" in r.details:
        return "   (not in the statistics of a file; pass an array to bias_init for it)"
    return ""


def _table(r: BiasInit) -> list[str]:
    fam = r.family
    bias = np.asarray(r.bias, np.float64)
    if fam in ("softmax", "hinge") or (fam == "sigmoid" and r.counts is not None and len(r) > 1):
        names = [str(c) for c in r.classes]
        counts = r.counts
        share = counts / max(r.n, 1)
        extra = "level" if fam == "hinge" else None
        w = max(5, *(len(n) for n in names))
        head = f"  {'#':>3}  {'class':<{w}}  {'count':>9}  {'share':>7}  {'bias':>9}"
        if extra:
            head += f"  {extra:>5}"
        rows = [head]
        # output order (the order of the bias vector); the largest classes when too many
        order = np.arange(len(counts))
        if len(order) > MAX_TABLE_ROWS:
            order = np.argsort(-counts, kind="stable")
            rows[0] += "   (largest classes)"
        shown = order if len(order) <= MAX_TABLE_ROWS else order[: MAX_TABLE_ROWS - 5]
        for i in shown:
            row = f"  {i:>3}  {names[i]:<{w}}  {counts[i]:>9d}  {share[i]:>7.2%}  {bias[i]:>9.4f}"
            if extra:
                row += f"  {int(r.details['levels'][i]):>5d}"
            rows.append(row)
        if len(shown) < len(order):
            rest = order[len(shown) :]
            rows.append(
                f"  ... {len(rest)} more classes with {int(counts[rest].sum())} labels "
                f"(bias {bias[rest].min():.4f} to {bias[rest].max():.4f})"
            )
        return rows
    if fam == "sigmoid":
        p = np.asarray(r.details["rates"], np.float64)
        names = ["output"] if r.classes is None else [str(c) for c in r.classes]
        if "positive_class" in r.details:
            names = [f"{r.details['positive_class']} (positive)"]
        w = max(6, *(len(n) for n in names))
        rows = [f"  {'output':<{w}}  {'rate':>8}  {'bias':>9}"]
        for i in range(min(len(p), MAX_TABLE_ROWS)):
            rows.append(f"  {names[i]:<{w}}  {p[i]:>8.4f}  {bias[i]:>9.4f}")
        if len(p) > MAX_TABLE_ROWS:
            rows.append(f"  ... {len(p) - MAX_TABLE_ROWS} more outputs")
        return rows
    stats = r.stats if isinstance(r.stats, list) else [r.stats]
    names = ["target"] if r.classes is None else [str(c) for c in r.classes]
    w = max(6, *(len(n) for n in names))
    head = f"  {'':<{w}}  {'mean':>10}  {'std':>10}  {'min':>10}  {'median':>10}  "
    rows = [head + f"{'max':>10}  {'bias':>10}"]
    for name, s, b in zip(names, stats, bias):
        rows.append(
            f"  {name:<{w}}  {s.mean:>10.5g}  {math.sqrt(s.var):>10.5g}  {s.min:>10.5g}  "
            f"{s.median:>10.5g}  {s.max:>10.5g}  {b:>10.5g}"
        )
    rows.append(f"  bias = {_bias_name(r)}")
    return rows


def _bias_name(r: BiasInit) -> str:
    o = r.options
    return {
        "mse_loss": "the mean",
        "l1_loss": "the median",
        "huber_loss": f"the Huber location (delta={o.get('delta')})",
        "smooth_l1_loss": f"the Huber location (delta=beta={o.get('beta')})",
        "pinball_loss": f"the {o.get('tau')}-quantile",
        "poisson_nll_loss": "log(mean), the log link",
    }.get(r.loss, "")


# ------------------------------------------------------------------------------- the plot


def _plot(r: BiasInit, out: str, source: str, column) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    title = f"{os.path.basename(source)}" + (f" [{column}]" if column is not None else "")
    fam = r.family
    if fam in ("softmax", "hinge", "sigmoid") and (r.counts is not None or fam == "sigmoid"):
        if r.counts is not None and not (fam == "sigmoid" and len(r) == 1):
            names = [str(c) for c in r.classes]
            share = r.counts / max(r.n, 1)
        else:
            names = ["output"] if r.classes is None else [str(c) for c in r.classes]
            share = np.asarray(r.details["rates"], np.float64)
        x = np.arange(len(names))
        handles = [ax.bar(x, share, color="#9ab", label="label share")]
        ax.set_ylim(0, float(np.max(share)) * 1.35 if len(share) else 1)
        b = np.asarray(r.bias, np.float64)
        if fam == "softmax":
            q = np.exp(b - b.max())
            handles += ax.plot(x, q / q.sum(), "o", color="#c33", label="softmax(bias)")
        elif fam == "sigmoid":
            handles += ax.plot(x, 1 / (1 + np.exp(-b)), "o", color="#c33", label="sigmoid(bias)")
        else:
            ax2 = ax.twinx()
            handles += ax2.plot(x, b, "o", color="#c33", label="bias (hinge score)")
            lo, hi = float(b.min()), float(b.max())
            ax2.set_ylim(lo - 0.1 * (hi - lo + 1), hi + 0.45 * (hi - lo + 1))
            ax2.set_ylabel("bias")
        if len(names) <= 40:
            many = len(names) > 8
            ax.set_xticks(x, names, rotation=45 if many else 0, ha="right" if many else "center")
        ax.set_ylabel("share of labels")
        ax.legend(handles=handles, loc="upper right")
    else:
        s = r.stats[0] if isinstance(r.stats, list) else r.stats
        qs = [q for q in PLOT_QUANTILES if q in getattr(s, "quantiles_requested", PLOT_QUANTILES)]
        edges = np.array([s.min] + [s.quantile(q) for q in qs] + [s.max], np.float64)
        mass = np.diff(np.array([0.0, *qs, 1.0]))
        widths = np.diff(edges)
        ok = widths > 0
        dens = np.zeros_like(widths)
        dens[ok] = mass[ok] / widths[ok]
        logx = edges[0] > 0 and edges[-1] / edges[0] > 1e3
        if logx:  # density per decade, so areas read right on a log axis
            lw = np.diff(np.log10(edges))
            dens = np.zeros_like(widths)
            dens[ok] = mass[ok] / lw[ok]
        ax.stairs(dens, edges, fill=True, color="#9ab", label="distribution (exact quantiles)")
        marks = [("mean", s.mean, "#333", "--"), ("median", s.median, "#36c", ":")]
        if r.loss in ("huber_loss", "smooth_l1_loss"):
            marks.append(("Huber location", float(r.bias[0]), "#c33", "-"))
        else:
            marks.append(("bias", float(r.bias[0]), "#c33", "-"))
        for name, v, color, style in marks:
            ax.axvline(v, color=color, linestyle=style, label=f"{name} {v:.4g}")
        ax.set_xlabel(str(column) if column is not None else "target")
        ax.set_ylabel("density per decade" if logx else "density")
        ax.set_ylim(0, float(dens.max()) * 1.3 if dens.size and dens.max() > 0 else 1)
        ax.legend(loc="upper right")
        if logx:
            ax.set_xscale("log")
    ax.set_title(f"{title}\n{r.loss}: expected loss at init {r.expected_loss:.4g}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

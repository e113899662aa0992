"""Label files: format by extension (or ``format=``), the header rule, pipes, raw binary.

Formats: CSV / TSV / text with one value per line (and their ``.gz``), ``.npy``,
Parquet / Feather / Arrow IPC (through pyarrow), and raw binary (``.bin``, or
``format="raw"``): a flat array of ``dtype`` values, with llm.c's 1024-byte header
recognised and checked.

The header rule (``header="auto"``, the default for text files): the first line is a header
when some column whose values below are numbers holds something else on the first line
(``label`` above ``3``); it is data when every such column holds a number there, so a value
that parses as a label of the column's type is never eaten. A column of names alone cannot
tell: CSV / TSV files are taken to have a header unless the first line's value also occurs
below it (then it is data), text files to have none; either way the statistics' ``notes``
say what was decided, and ``header=True`` / ``False`` overrides it.

Pipes and other non-regular files (``/dev/stdin``, a FIFO) are first copied to a temporary
file, so that they are read whole, exactly, and more than once when the statistics need it.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import stat
import tempfile
import zlib

from .labels import NA_TOKENS

__all__ = [
    "ARROW_EXT",
    "FORMATS",
    "TextSniff",
    "detect_format",
    "known_extension",
    "locate_label",
    "resolve_format",
    "sniff_text",
    "spool",
]

TEXT_EXT = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None, ".dat": None}
ARROW_EXT = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "ipc",
    ".arrow": "ipc",
    ".ipc": "ipc",
}
FORMATS = ("csv", "tsv", "text", "npy", "raw", "parquet", "ipc")
SNIFF_BYTES = 1 << 16


def resolve_format(path: str, format, delimiter):
    """(format, gzip?, delimiter) of a path: ``format`` when given, else the extension."""
    low = path.lower()
    gz = low.endswith(".gz")
    stem = low[:-3] if gz else low
    ext = os.path.splitext(stem)[1]
    if format is not None:
        fmt = str(format).lower()
        if fmt in ("arrow", "feather"):
            fmt = "ipc"
        if fmt == "txt":
            fmt = "text"
        if fmt == "bin":
            fmt = "raw"
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        if fmt == "csv":
            return "text", gz, "," if delimiter is None else delimiter
        if fmt == "tsv":
            return "text", gz, "\t" if delimiter is None else delimiter
    elif ext == ".npy":
        fmt = "npy"
    elif ext == ".bin":
        fmt = "raw"
    elif ext in ARROW_EXT:
        fmt = ARROW_EXT[ext]
    else:
        fmt = "text"
        if delimiter is None:
            delimiter = TEXT_EXT.get(ext)
    if fmt in ("npy", "raw", "parquet", "ipc") and gz:
        raise ValueError(f"{path}: gzip-compressed {fmt} files are not supported; decompress it")
    return fmt, gz, delimiter


def known_extension(path: str) -> bool:
    """Whether the file name says its format (else :func:`detect_format` reads it)."""
    low = path.lower()
    stem = low.removesuffix(".gz")
    ext = os.path.splitext(stem)[1]
    return ext in TEXT_EXT or ext in ARROW_EXT or ext in (".npy", ".bin")


LLMC_MAGICS = (20240520, 20240801)


def detect_format(path: str, delimiter):
    """(format, gzip?, delimiter, note) of a file whose name does not say (stdin, a pipe,
    a name without an extension), from its first bytes: gzip, .npy, Parquet and Arrow magic
    numbers, llm.c's token-file header, else text: tab- or comma-separated when the first
    line holds a tab or a comma, else one value per line."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    gz = head[:2] == b"\x1f\x8b"
    if gz:
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(1 << 16)
        except (OSError, EOFError, zlib.error):
            head = b""
    fmt = None
    if head[:6] == b"\x93NUMPY":
        fmt = "npy"
    elif head[:4] == b"PAR1":
        fmt = "parquet"
    elif head[:6] == b"ARROW1":
        fmt = "ipc"
    elif len(head) >= 4 and int.from_bytes(head[:4], "little") in LLMC_MAGICS:
        fmt = "raw"
    if fmt is not None:
        if gz:
            raise ValueError(f"{path}: gzip-compressed {fmt} data is not supported; decompress it")
        return fmt, False, None, f"format read from the content: {fmt}"
    first = head.split(b"\n", 1)[0]
    if delimiter is None:
        delimiter = "\t" if b"\t" in first else "," if b"," in first else None
    what = {"\t": "tab-separated", ",": "comma-separated", None: "one value per line"}.get(
        delimiter, f"separated by {delimiter!r}"
    )
    return (
        "text",
        gz,
        delimiter,
        f"format read from the content: text, {what}" + (" (gzip)" if gz else ""),
    )


def spool(path: str, suffix: str = "") -> str | None:
    """Copy a pipe, FIFO or character device to a temporary file and return its path (the
    caller removes it); None for a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    fd, tmp = tempfile.mkstemp(prefix="headstart-", suffix=suffix)
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _open_text(path, gz):
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _is_number(s: str) -> bool:
    t = s.strip()
    if not t or t in NA_TOKENS:
        return False
    try:
        float(t)
    except ValueError:
        return False
    return t.lower().lstrip("+-") not in ("inf", "infinity", "nan")


class TextSniff:
    """What the first 64 KiB of a text file say: ``header`` (bool), ``names`` (the header's
    fields, or None), ``index`` (0-based column, or None when a name is not in the
    header), ``values`` (the column's sample values below the header), ``complete`` (the
    whole file was read), ``note`` (the header decision, when it was a judgement)."""

    def __init__(self, header, names, index, values, complete, note, first=""):
        self.first = first  # the first line's text
        self.header = header
        self.names = names
        self.index = index
        self.values = values
        self.complete = complete
        self.note = note


def sniff_text(path, gz, delimiter, header, column, shown=None) -> TextSniff:
    """Decide the header (``header`` True / False / "auto") and sample the column."""
    shown = shown or path
    try:
        with _open_text(path, gz) as f:
            head = f.read(SNIFF_BYTES)
            complete = f.read(1) == ""
    except (OSError, EOFError, zlib.error):
        # A bad gzip header, a truncated or corrupt stream: the reader reports it with
        # the file's position; the header rule has nothing to go on.
        head, complete = "", True
    if not complete:  # drop the last, possibly partial, line
        cut = max(head.rfind("\n"), head.rfind("\r"))
        head = head[: cut + 1] if cut >= 0 else head
    if delimiter is None:
        rows = [[ln] for ln in head.splitlines()]
    else:
        try:
            rows = list(csv.reader(io.StringIO(head), delimiter=delimiter))
        except csv.Error:
            # Malformed quoting: the reader names the line; this sample only guides the
            # header rule.
            rows = [ln.split(delimiter) for ln in head.splitlines()]
    rows = [r for r in rows if r != []] if delimiter is not None else rows
    first = rows[0] if rows else []
    width = len(first) if first else 1

    def col_index(names):
        if column is None:
            return width - 1
        if isinstance(column, str):
            return names.index(column) if names and column in names else None
        return int(column)

    if header == "auto":
        header, note = _decide_header(rows, delimiter, column, col_index)
    else:
        header, note = bool(header), None
    names = [c.strip() for c in first] if header and rows else None
    body = rows[1:] if header else rows
    idx = col_index(names)
    values = [r[idx].strip() for r in body if idx is not None and 0 <= idx < len(r)]
    first_text = (delimiter or ",").join(first) if first else ""
    return TextSniff(header, names, idx, values, complete, note, first_text)


def _decide_header(rows, delimiter, column, col_index):
    if not rows:
        return False, None
    first, body = rows[0], rows[1:]
    if isinstance(column, str) and column in [c.strip() for c in first]:
        return True, None
    numeric_cols = []
    for j in range(len(first)):
        vals = [r[j].strip() for r in body if j < len(r) and r[j].strip()]
        vals = [v for v in vals if v not in NA_TOKENS]
        if vals and all(_is_number(v) for v in vals):
            numeric_cols.append(j)
    if numeric_cols:
        if any(not _is_number(first[j]) and first[j].strip() for j in numeric_cols):
            bad = next(j for j in numeric_cols if first[j].strip() and not _is_number(first[j]))
            return True, f"first line taken as a header ({first[bad].strip()!r} above numbers)"
        return False, None
    # Every sampled column holds names: the first line cannot be told from data.
    j = col_index(None)
    j = len(first) - 1 if j is None else j
    cell = first[j].strip() if 0 <= j < len(first) else ""
    below = {r[j].strip() for r in body if 0 <= j < len(r)}
    if delimiter is None:
        return False, (
            f"first line {cell!r} read as a label: a column of names cannot tell a header "
            "from data; pass header=True (--header) if it is a header"
        )
    if cell in below:
        return False, (
            f"first line read as data: its value {cell!r} occurs again below it; pass "
            "header=True (--header) if it is a header"
        )
    return True, (
        f"first line {cell!r} taken as the header: a column of names cannot tell a header "
        "from data; pass header=False (--no-header) if it is data"
    )


def locate_label(path, gz, delimiter, header, index, text, shown=None) -> str:
    """ ", line L of FILE" for the first record whose column ``index`` holds ``text``
    (compared as written and stripped), or "" when it cannot be found. Used only to word
    an error, so it reads the file again in Python."""
    shown = shown or path
    if index is None:
        return ""
    want = text.strip()
    try:
        with _open_text(path, gz) as f:
            if delimiter is None:
                for line_no, line in enumerate(f, 1):
                    if line_no == 1 and header:
                        continue
                    if line.rstrip("\r\n").strip() == want:
                        return f" (line {line_no} of {shown})"
                return ""
            r = csv.reader(f, delimiter=delimiter)
            for row in r:
                if r.line_num == 1 and header:
                    continue
                if index < len(row) and row[index].strip() == want:
                    return f" (line {r.line_num} of {shown})"
    except (OSError, csv.Error, zlib.error, EOFError):
        return ""
    return ""

"""Reading the CSV a Generator packs, and casting its cells to the column dtypes.

Dtypes: 'uint8', 'uint16', 'uint32', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32',
'float64', 'bool', 'str'; a leading 'v' (e.g. 'vint64') marks a variable-length column whose cells
are comma-separated lists (an empty cell is an empty list). Bool cells read true/false, 1/0, yes/no.
Line numbers are 1-based as an editor shows them (the header is line 1).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass

import numpy as np

BASE_DTYPES = (
    "uint8",
    "uint16",
    "uint32",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "bool",
    "str",
)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class Dtype:
    """A parsed column dtype: its base NumPy dtype name and whether rows have variable length."""

    base: str
    vlen: bool

    def __str__(self) -> str:
        return ("v" if self.vlen else "") + self.base


def parse_dtype(text: str) -> Dtype:
    """Parse 'int8', 'vuint8', ... into a Dtype; anything else raises a ValueError listing the valid names."""
    if not isinstance(text, str):
        raise TypeError(f"a dtype must be a string such as 'int64' or 'vuint8', got {text!r}")
    name = text.strip()
    vlen = name.startswith("v") and name[1:] in BASE_DTYPES
    base = name[1:] if vlen else name
    if base not in BASE_DTYPES:
        hint = f" (did you mean 'vuint{name[5:]}'?)" if name.startswith("vunit") else ""
        raise ValueError(
            f"unknown dtype {text!r}{hint}; valid dtypes: {', '.join(BASE_DTYPES)}, "
            "each optionally prefixed with 'v' for variable length (e.g. 'vuint8')"
        )
    if vlen and base == "str":
        raise ValueError("dtype 'vstr' is not supported: a 'str' column already holds text of any length")
    return Dtype(base, vlen)


@dataclass
class Table:
    """A CSV read into memory: its path, header names and data rows as (line number, cells)."""

    path: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def where(self, line: int, column: int) -> str:
        """'file.csv, line 7, column 'label'' for error messages."""
        return f"{self.path}, line {line}, column {self.header[column]!r}"


def read_csv(path: str | os.PathLike) -> Table:
    """Read a CSV with a header row (delimiter ',', quote '"'), checking names, column counts and emptiness.

    Blank lines are skipped. Raises ValueError naming the line for a bad header, a row with the
    wrong number of columns, a file without data rows, or text that is not UTF-8 (line, column and
    byte, with how to convert the file).
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        text = _utf8(path, raw.read())
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter=",", quotechar='"', strict=True)
        header: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        end = 0  # reader.line_num after the previous record: the next record starts on end + 1
        try:
            for cells in reader:
                start, end = end + 1, reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if header is None:
                    header = _check_header(path, start, cells)
                elif len(cells) != len(header):
                    raise ValueError(
                        f"{path}, line {start}: expected {len(header)} columns ({', '.join(header)}), got {len(cells)}"
                    )
                else:
                    rows.append((start, cells))
        except csv.Error as err:
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from None
    if header is None:
        raise ValueError(f"{path} is empty: a header row and at least one data row are needed")
    if not rows:
        raise ValueError(f"{path} has a header ({', '.join(header)}) but no data rows")
    return Table(path, header, rows)


def _utf8(path: str, data: bytes) -> str:
    """The file's text (UTF-8, with or without a BOM); other encodings raise ValueError saying where and how to fix."""
    fix = "re-save it as UTF-8 (in a spreadsheet: 'CSV UTF-8'; or `iconv -f {enc} -t UTF-8 in.csv > out.csv`)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (len(data) >= 2 and b"\x00" in data[:64]):
        enc = "UTF-32" if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) else "UTF-16"
        raise ValueError(f"{path} is {enc}-encoded text, not UTF-8: {fix.format(enc=enc)}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        before = data[line_start : err.start].decode("utf-8", errors="replace")
        column = len(next(csv.reader([before]), [""])) if before else 1
        name = ""
        if line > 1:
            first = data[: data.find(b"\n")].decode("utf-8-sig", errors="replace")
            header = next(csv.reader([first]), [])
            name = f" ({header[column - 1].strip()!r})" if column <= len(header) else ""
        raise ValueError(
            f"{path}, line {line}, column {column}{name}: byte 0x{data[err.start]:02x} is not UTF-8 (the file looks "
            f"Latin-1 / Windows-1252 encoded): {fix.format(enc='LATIN1')}"
        ) from None


def _check_header(path: str, line: int, cells: list[str]) -> list[str]:
    names = [c.strip() for c in cells]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            raise ValueError(f"{path}, line {line}: header column {i + 1} has no name")
        if "/" in name or name == ".":
            raise ValueError(f"{path}, line {line}: header name {name!r} (column {i + 1}) must not contain '/'")
        if name in seen:
            raise ValueError(
                f"{path}, line {line}: duplicate header name {name!r} (columns {seen[name] + 1} and {i + 1})"
            )
        seen[name] = i
    return names


def cast_cell(cell: str, dtype: Dtype):
    """Cast one cell to `dtype`: a Python scalar, a str, or a 1-D array for a 'v' dtype; ValueError says why not."""
    if dtype.base == "str":
        return cell
    if dtype.vlen:
        pieces = [] if not cell.strip() else cell.split(",")
        return np.array([_cast_scalar(p, dtype.base) for p in pieces], dtype=dtype.base)
    if "," in cell:
        raise ValueError(
            f"{cell!r} holds {len(cell.split(','))} values; use dtype 'v{dtype.base}' for a variable-length column"
        )
    return _cast_scalar(cell, dtype.base)


def _cast_scalar(text: str, base: str):
    text = text.strip()
    if base == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a bool (use true/false, 1/0 or yes/no)")
    if base.startswith(("int", "uint")):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        info = np.iinfo(base)
        if not info.min <= value <= info.max:
            raise ValueError(f"{value} is out of range for {base} [{info.min}, {info.max}]")
        return value
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if np.isfinite(value) and not np.isfinite(np.asarray(value, dtype=base)):
        raise ValueError(f"{value} is out of range for {base}")
    return value


def cast_column(table: Table, column: int, dtype: Dtype) -> list:
    """All cells of `column` cast to `dtype`; the first failure raises ValueError with its line and column."""
    out = []
    for line, cells in table.rows:
        try:
            out.append(cast_cell(cells[column], dtype))
        except ValueError as err:
            raise ValueError(f"{table.where(line, column)}: cannot cast to {dtype}: {err}") from None
    return out

"""The HDF5 layout Nebulae writes and reads (format 1), with its low-level writer and reader.

Root attributes: `nebulae_format` (1), `count` (rows), `columns` (JSON list of {name, dtype,
kind} in CSV order), `encode` ('jpeg', 'png' or ''), `height`, `width`, `channel`.

Per column, by kind:
- 'image'  : group `name` with `blob` (uint8, every encoded image back to back) and `offsets`
             (int64, count + 1): row i is blob[offsets[i]:offsets[i+1]].
- 'frames' : (is_seq) group `name` with `blob`, `offsets` (one per frame + 1) and `rows`
             (int64, count + 1): row i holds frames rows[i] .. rows[i+1]-1 (ragged lengths allowed).
- 'scalar' : dataset `name` of shape (count,) and the column's dtype.
- 'vlen'   : group `name` with `data` (flat, the column's base dtype) and `offsets` (count + 1).
- 'str'    : group `name` with `blob` (UTF-8 bytes) and `offsets` (count + 1).
Flat bytes plus offsets read ~8x faster than HDF5 variable-length rows (reference/env.md §4),
and the offsets stay in RAM so a row costs one contiguous slice read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import h5py
import numpy as np

from nebulae import faults

FORMAT = 1
KINDS = ("image", "frames", "scalar", "vlen", "str")
CACHE_BYTES = 256 * 2**20  # blobs up to this size are read into RAM once per process


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a packed file: its name, dtype ('uint8', ..., 'str') and kind (see module docstring)."""

    name: str
    dtype: str
    kind: str


class Writer:
    """Append rows column by column, then `close()` writes the file (used by fuel.Generator and tests)."""

    def __init__(
        self,
        path: str | os.PathLike,
        columns: Sequence[ColumnSpec],
        encode: str = "",
        height: int = 0,
        width: int = 0,
        channel: int = 0,
    ):
        self.path, self.columns = os.fspath(path), list(columns)
        for col in self.columns:
            if col.kind not in KINDS:
                raise ValueError(f"column {col.name!r}: unknown kind {col.kind!r} (valid: {', '.join(KINDS)})")
        self.meta = {"encode": encode, "height": height, "width": width, "channel": channel}
        self.rows: dict[str, list] = {c.name: [] for c in self.columns}

    def append(self, row: dict) -> None:
        """Add one row: encoded bytes for 'image', a list of encoded frames for 'frames', values otherwise."""
        for col in self.columns:
            self.rows[col.name].append(row[col.name])

    def close(self) -> None:
        """Write everything to `path` (the caller makes it atomic by writing to a temporary name)."""
        count = len(self.rows[self.columns[0].name]) if self.columns else 0
        with h5py.File(self.path, "w") as f:
            f.attrs["nebulae_format"] = FORMAT
            f.attrs["count"] = count
            f.attrs["columns"] = json.dumps([c.__dict__ for c in self.columns])
            for key, value in self.meta.items():
                f.attrs[key] = value
            for col in self.columns:
                _write_column(f, col, self.rows[col.name])
                faults.point("layout.column-written")


def _flat(chunks: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(chunks) + 1, np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    data = np.concatenate(chunks).astype(dtype, copy=False) if chunks else np.zeros(0, dtype)
    return data, offsets


def _write_column(f: h5py.File, col: ColumnSpec, values: list) -> None:
    if col.kind == "scalar":
        f.create_dataset(col.name, data=np.asarray(values, dtype=col.dtype))
        return
    group = f.create_group(col.name)
    if col.kind == "frames":
        frames = [np.frombuffer(b, np.uint8) for row in values for b in row]
        group["rows"] = _flat([np.zeros(len(row)) for row in values], np.uint8)[1]
        group["blob"], group["offsets"] = _flat(frames, np.uint8)
    elif col.kind in ("image", "str"):
        chunks = [np.frombuffer(v.encode("utf-8") if col.kind == "str" else v, np.uint8) for v in values]
        group["blob"], group["offsets"] = _flat(chunks, np.uint8)
    else:
        group["data"], group["offsets"] = _flat([np.atleast_1d(np.asarray(v)) for v in values], col.dtype)


def decode(data: np.ndarray | bytes, channel: int) -> np.ndarray:
    """Decode JPEG/PNG bytes to an RGB (or grey) HWC uint8 array with `channel` channels."""
    buf = np.frombuffer(data, np.uint8)
    if not buf.size:
        raise ValueError("no image bytes (an empty file?)")
    flags = (cv2.IMREAD_GRAYSCALE if channel == 1 else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as err:  # OpenCV's assertions, e.g. over its own pixel limit
        raise ValueError(f"undecodable image bytes ({str(err).strip().splitlines()[-1]})") from None
    if image is None:
        raise ValueError("undecodable image bytes")
    if channel == 1:
        return image[:, :, None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_PARTS = {"image": ("blob", "offsets"), "str": ("blob", "offsets"), "frames": ("blob", "offsets", "rows")}
_PARTS["vlen"] = ("data", "offsets")


def _check_column(f: h5py.File, spec: ColumnSpec, count: int) -> str:
    """What is wrong with the datasets of column `spec` (from metadata only, nothing read), or ''."""
    if spec.kind not in KINDS:
        return f"has an unknown kind {spec.kind!r}"
    node = f.get(spec.name)
    if node is None:
        return f"is listed in the file's columns but its {'dataset' if spec.kind == 'scalar' else 'group'} is missing"
    if spec.kind == "scalar":
        if not isinstance(node, h5py.Dataset) or node.shape != (count,):
            return f"should be a dataset of shape ({count},), found {getattr(node, 'shape', 'a group')}"
        return ""
    for part in _PARTS[spec.kind]:
        data = node.get(part) if isinstance(node, h5py.Group) else None
        if not isinstance(data, h5py.Dataset) or data.ndim != 1:
            return f"lacks its dataset {spec.name}/{part}"
    rows = node["rows" if spec.kind == "frames" else "offsets"]
    if rows.shape != (count + 1,):
        return f"has {rows.name} of shape {rows.shape} for {count} rows (expected ({count + 1},))"
    return ""


class Column:
    """Read access to one column of a Reservoir: `column[i]` gives row i decoded; `column.raw(i)` the stored bytes."""

    def __init__(self, reservoir: Reservoir, spec: ColumnSpec):
        self.reservoir, self.spec = reservoir, spec
        self._offsets = self._rows = self._blob = None

    def _load(self) -> None:
        node = self.reservoir.file[self.spec.name]
        if self.spec.kind == "scalar":
            self._blob = node[...]
            return
        self._offsets = node["offsets"][...]
        self._rows = node["rows"][...] if self.spec.kind == "frames" else None
        data = node["data" if self.spec.kind == "vlen" else "blob"]
        self._blob = data[...] if data.size * data.dtype.itemsize <= CACHE_BYTES else data

    def raw(self, i: int):
        """The stored value of row i without decoding images (bytes, or a list of frame bytes)."""
        try:
            return self._raw(i)
        except (OSError, KeyError, RuntimeError) as err:  # h5py's, for damaged data or a file changed under us
            if isinstance(err, OSError) and err.errno is not None:
                raise  # a system error (disk, NFS) already names itself
            raise OSError(
                f"{self.reservoir.path}: cannot read row {i} of column {self.spec.name!r} ({err}); the file is "
                f"damaged: copy it again or re-pack it with fuel.Generator"
            ) from None

    def _raw(self, i: int):
        if self.reservoir._pid != os.getpid():
            self.reservoir.file  # noqa: B018 (reopens after a fork and drops caches tied to the old handle)
        if self._blob is None:
            self._load()
        kind = self.spec.kind
        if kind == "scalar":
            return self._blob[i]
        if kind == "frames":
            start, stop = self._rows[i], self._rows[i + 1]
            lo, hi = self._offsets[start], self._offsets[stop]
            chunk = np.asarray(self._blob[lo:hi])
            return [
                chunk[a - lo : b - lo] for a, b in zip(self._offsets[start:stop], self._offsets[start + 1 : stop + 1])
            ]
        value = np.asarray(self._blob[self._offsets[i] : self._offsets[i + 1]])
        if kind == "str":
            return value.tobytes().decode("utf-8")
        return value

    def __getitem__(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(
                f"row {i} out of range for column {self.spec.name!r} with {n} rows ({self.reservoir.path})"
            )
        i = i % n
        value = self.raw(i)
        channel = int(self.reservoir.meta.get("channel") or 3)
        if self.spec.kind == "image":
            return decode(value, channel)
        if self.spec.kind == "frames":
            return np.stack([decode(v, channel) for v in value])
        return value

    def __len__(self) -> int:
        return self.reservoir.count


class Reservoir:
    """Lazy reader of one packed HDF5 file: opens the file on first use in each process, never across fork.

    `reservoir['image'][i]` decodes row i of a column; `reservoir.read(i)` gives a dict of all
    columns. Pickling sends only the path, so worker processes open their own handle.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        damaged = "copy it again or re-pack it with fuel.Generator"
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            if err.errno is not None:
                raise
            raise ValueError(
                f"{self.path}: cannot open this HDF5 file ({err}); it is truncated or damaged (a copy or a "
                f"write cut short?): {damaged}"
            ) from None
        with f:
            if int(f.attrs.get("nebulae_format", 0)) != FORMAT:
                raise ValueError(
                    f"{self.path}: not a Nebulae packed file of format {FORMAT} "
                    f"(attribute nebulae_format = {f.attrs.get('nebulae_format')!r})"
                )
            try:
                self.count = int(f.attrs["count"])
                self.specs = [ColumnSpec(**c) for c in json.loads(f.attrs["columns"])]
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{self.path}: its 'count' or 'columns' attribute is missing or bad ({err}): {damaged}"
                ) from None
            for spec in self.specs:
                problem = _check_column(f, spec, self.count)
                if problem:
                    raise ValueError(f"{self.path}: column {spec.name!r} {problem}: {damaged}")
            self.meta = {
                k: (v.item() if hasattr(v, "item") else v)
                for k, v in f.attrs.items()
                if k in ("encode", "height", "width", "channel")
            }
        self._file = None
        self._pid = None
        self._columns = {s.name: Column(self, s) for s in self.specs}

    @property
    def file(self) -> h5py.File:
        """The open h5py file of this process (reopened after a fork)."""
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            for column in self._columns.values():
                if not isinstance(column._blob, np.ndarray):
                    column._blob = None  # a dataset of the old handle; RAM caches survive a fork
        return self._file

    def __getitem__(self, name: str) -> Column:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"{self.path} has no column {name!r}; columns: {', '.join(self._columns)}") from None

    def keys(self) -> list[str]:
        """Column names in CSV order."""
        return list(self._columns)

    def __len__(self) -> int:
        return self.count

    def read(self, i: int, names: Sequence[str] | None = None) -> dict:
        """Row i as {column: decoded value}."""
        return {name: self[name][i] for name in (names or self.keys())}

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def close(self) -> None:
        """Close this process's handle."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        for column in self._columns.values():
            if isinstance(column._blob, h5py.Dataset):
                column._blob = None  # tied to the closed handle; RAM caches stay

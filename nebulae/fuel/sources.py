"""What a Tank reads from: packed HDF5 files (one or several shards), a plain CSV, or in-memory data.

`open_source(data_path, specs)` returns a source whose `source[column][i]` is row i decoded
(images as HWC uint8 RGB, or grey with one channel), `len(source)` rows, `source.columns` the
{name: dtype} of the file and `source.path` for messages. JPEG is decoded with simplejpeg (same
pixels as OpenCV, faster); anything else with OpenCV.

A CSV is read whole at construction (header row, ',' delimiter, '"' quotes) and its cells cast to
the dtypes asked for (see `nebulae.fuel.csvspec`); without a spec every column stays 'str'. A
'uint8' / 'vuint8' column whose first cell is not an integer (list) holds image file paths relative to the
CSV's folder: each is checked to exist at construction and decoded to RGB when read.

In-memory data (a dict of NumPy arrays, or a map-style dataset) is served by `nebulae.fuel.memory`.
"""

from __future__ import annotations

import bisect
import glob
import os
from collections.abc import Sequence

import h5py
import numpy as np
import simplejpeg

from nebulae.fuel import csvspec, layout, memory, pixels

_JPEG_MAGIC = b"\xff\xd8"
_IMAGE_KINDS = ("image", "frames")


def decode_image(data: np.ndarray | bytes, channel: int = 3) -> np.ndarray:
    """Decode encoded image bytes to HWC uint8: RGB for `channel` 3, (H, W, 1) grey for 1."""
    buf = np.frombuffer(data, np.uint8)
    if buf[:2].tobytes() == _JPEG_MAGIC:
        try:
            return simplejpeg.decode_jpeg(buf, colorspace="GRAY" if channel == 1 else "RGB")
        except ValueError:
            pass  # e.g. a CMYK or slightly damaged JPEG, which OpenCV still decodes
    return layout.decode(buf, channel)


def open_source(data_path: object, specs: dict[str, str] | None = None):
    """Open `data_path` (an HDF5 file, a list or glob pattern of shards, a .csv/.txt file, or in-memory data).

    In-memory data is a dict of equally long NumPy arrays or a map-style dataset (`nebulae.fuel.memory`).
    `specs` ({column: dtype}) matters only for a CSV, whose cells are cast when it is read.
    """
    if memory.is_memory(data_path):
        return memory.open_memory(data_path)
    if isinstance(data_path, (str, os.PathLike)):
        path = os.fspath(data_path)
        if path.lower().endswith((".csv", ".txt")):
            return CsvSource(path, specs)
        if any(c in path for c in "*?["):
            paths = sorted(glob.glob(path))
            if not paths:
                raise FileNotFoundError(f"no data file matches the pattern {path!r}")
        else:
            paths = [path]
    else:
        paths = [os.fspath(p) for p in data_path]
        if not paths:
            raise ValueError("data_path is an empty list: give at least one packed HDF5 file")
    return PackedSource(paths)


class PackedSource:
    """Files packed by nebulae.fuel (format of `layout`), read as one dataset: shard after shard in order."""

    def __init__(self, paths: Sequence[str]):
        self.reservoirs = [_open_reservoir(p) for p in paths]
        self.path = paths[0] if len(paths) == 1 else f"{len(paths)} shards ({paths[0]}, ...)"
        first = self.reservoirs[0]
        self.specs = {s.name: s for s in first.specs}
        for r in self.reservoirs[1:]:
            if [(s.name, s.kind) for s in r.specs] != [(s.name, s.kind) for s in first.specs]:
                raise ValueError(
                    f"shard {r.path} has columns {[s.name for s in r.specs]} "
                    f"but {first.path} has {[s.name for s in first.specs]}: shards must share their columns"
                )
        self.columns = {s.name: s.dtype for s in first.specs}
        self.starts = [0]
        for r in self.reservoirs:
            self.starts.append(self.starts[-1] + r.count)
        self._views = {name: PackedColumn(self, name) for name in self.columns}

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, name: str) -> PackedColumn:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"{self.path} has no column {name!r}; columns: {', '.join(self.columns)}") from None

    def keys(self) -> list[str]:
        """Column names in file order."""
        return list(self.columns)

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, row within the shard) of global row `index`."""
        n = self.starts[-1]
        if not -n <= index < n:
            raise IndexError(f"row {index} out of range for {n} rows ({self.path})")
        index %= n
        if len(self.reservoirs) == 1:
            return 0, index
        shard = bisect.bisect_right(self.starts, index) - 1
        return shard, index - self.starts[shard]

    def __getstate__(self):
        return {"paths": [r.path for r in self.reservoirs]}

    def __setstate__(self, state):
        self.__init__(state["paths"])

    def before_fork(self, names: Sequence[str]) -> None:
        """Load the RAM caches of `names` once (forked workers share them) and close every HDF5 handle."""
        for r in self.reservoirs:
            if r.count:
                for name in names:
                    r[name].raw(0)
            r.close()
            for spec in r.specs:
                column = r[spec.name]
                # A blob too big for RAM stays an h5py dataset of the handle just closed: forget it so
                # each process reopens the file itself (layout.Reservoir does not do this on close).
                if not isinstance(getattr(column, "_blob", None), np.ndarray):
                    column._blob = None


class PackedColumn:
    """One column across all shards: `column[i]` decodes global row i."""

    def __init__(self, source: PackedSource, name: str):
        self.source, self.name = source, name
        self.kind = source.specs[name].kind
        self.parts = [r[name] for r in source.reservoirs]
        self.channels = [int(r.meta.get("channel") or 3) for r in source.reservoirs]

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        shard, local = self.source.locate(int(index))
        value = self.parts[shard].raw(local)
        if self.kind not in _IMAGE_KINDS:
            return value
        try:
            if self.kind == "image":
                return decode_image(value, self.channels[shard])
            return np.stack([decode_image(v, self.channels[shard]) for v in value])
        except ValueError as err:
            path = self.source.reservoirs[shard].path
            raise ValueError(f"{path}: column {self.name!r}, row {local}: {err}") from None


def _open_reservoir(path: str) -> layout.Reservoir:
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file {path!r} does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path!r} is not an HDF5 file (a Tank reads files packed by fuel.Generator, or a .csv)")
    return layout.Reservoir(path)


class CsvSource:
    """A plain CSV read into memory, cells cast by dtype; image-path columns are decoded when read."""

    def __init__(self, path: str, specs: dict[str, str] | None = None):
        if not os.path.exists(path):
            raise FileNotFoundError(f"data file {path!r} does not exist")
        table = csvspec.read_csv(path)
        self.path, self.root = path, os.path.dirname(os.path.abspath(path))
        wanted = dict(specs) if isinstance(specs, dict) else {}
        self.columns = {name: "str" for name in table.header}
        self.images: set[str] = set()
        self.values: dict[str, list] = {}
        self.wheres: dict[str, list[str]] = {}  # per image column, each row's 'file, line, column'
        self.max_pixels = pixels.resolve(None)
        self.count = len(table.rows)
        for name in wanted.keys() & set(table.header):
            try:
                dtype = csvspec.parse_dtype(wanted[name])
            except (TypeError, ValueError) as err:
                raise ValueError(f"data_specf[{name!r}]: {err}") from None
            self._load(table, name, dtype)
        for name in set(table.header) - wanted.keys():
            self.values[name] = [cells[table.header.index(name)] for _, cells in table.rows]

    def _load(self, table: csvspec.Table, name: str, dtype: csvspec.Dtype) -> None:
        column = table.header.index(name)
        self.columns[name] = str(dtype)
        if dtype.base != "uint8" or _casts(table.rows[0][1][column], dtype):
            self.values[name] = csvspec.cast_column(table, column, dtype)
            return
        paths = []
        for line, cells in table.rows:
            path = os.path.join(self.root, cells[column].strip())
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{table.where(line, column)}: image file not found: {path}")
            paths.append(path)
        self.values[name], self.columns[name] = paths, "uint8"
        self.wheres[name] = [table.where(line, column) for line, _ in table.rows]
        self.images.add(name)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, name: str) -> CsvColumn:
        if name not in self.values:
            raise KeyError(f"{self.path} has no column {name!r}; columns: {', '.join(self.columns)}")
        return CsvColumn(self.values[name], name in self.images, self.wheres.get(name), self.max_pixels)

    def keys(self) -> list[str]:
        """Column names in header order."""
        return list(self.columns)

    def before_fork(self, names: Sequence[str]) -> None:
        """Nothing to do: a CSV source holds no open file."""


def _casts(cell: str, dtype: csvspec.Dtype) -> bool:
    try:
        csvspec.cast_cell(cell, dtype)
    except ValueError:
        return False
    return True


class CsvColumn:
    """One CSV column: `column[i]` is the cast cell, or the decoded RGB image for an image-path column."""

    def __init__(
        self,
        values: list,
        images: bool,
        wheres: list[str] | None = None,
        max_pixels: int | None = pixels.DEFAULT_MAX_PIXELS,
    ):
        self.values, self.images, self.wheres, self.max_pixels = values, images, wheres, max_pixels

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int):
        value = self.values[index]
        if not self.images:
            return value
        where = f"{self.wheres[index]}: " if self.wheres else ""
        with open(value, "rb") as f:
            data = f.read()
        if not data:
            raise ValueError(f"{where}image file {value} is empty (0 bytes): replace it or remove its row")
        try:
            pixels.check(data, self.max_pixels, pixels.ENV_HOW)
        except pixels.ImageTooLargeError as err:
            raise ValueError(f"{where}image file {value}: {err}") from None
        try:
            return decode_image(data, 3)
        except ValueError as err:
            raise ValueError(
                f"{where}undecodable image file {value} ({err}): replace it with a valid image or remove its row"
            ) from None

"""Generator: pack the images (or frame sequences) and labels listed in a CSV into Nebulae HDF5 files.

Column 0 of the CSV names the image file (relative to `file_dir`), or with `is_seq` a quoted,
comma-separated list of frame files; the other columns are cast to their dtypes (see
`nebulae.fuel.csvspec`). Every row is validated before any image is encoded, images are
transcoded in worker processes, and the output is written to temporary files that replace the
destinations only once everything succeeded (`nebulae.fuel.layout` describes the file format).

Images: the EXIF orientation is always applied to the pixels (so every reader sees them upright
and `height` x `width` is the stored shape); with `keep_exif` the rest of the EXIF block is kept in
the encoded file (byte for byte when there was no orientation to undo, otherwise re-serialised
by Pillow without the orientation tag), without it the output carries no EXIF. Then the image is
resized to exactly `height` x `width` (INTER_AREA when shrinking, INTER_LINEAR otherwise; both 0
keeps the sizes), converted to `channel` (3 = RGB, 1 = grey; alpha is dropped, palettes are
expanded, 16-bit samples are scaled to 8 bits) and encoded as JPEG (quality 95, 4:2:0) or PNG.

Shards: `shards=1` writes `dst_path`; `shards=k` writes k files of contiguous, nearly equal row
ranges named `<stem>_<i>of<k><suffix>` with i = 1..k zero-padded to the width of k (`shard_paths`).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import difflib
import io
import multiprocessing as mp
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from nebulae import faults
from nebulae.cockpit.anchors import alive

from . import pixels
from .csvspec import Table, cast_column, parse_dtype, read_csv
from .layout import ColumnSpec, Writer
from .progress import Bar

DEFAULTS: dict[str, Any] = {
    "file_dir": None,
    "file_list": None,
    "dtype": None,
    "is_seq": False,
    "height": 0,
    "width": 0,
    "channel": 3,
    "encode": "JPEG",
    "shards": 1,
    "keep_exif": True,
    "workers": None,
    "max_pixels": None,
    "allow_outside": False,
}
ENCODINGS = ("JPEG", "PNG")
JPEG_QUALITY = 95
PNG_COMPRESSION = 3
FRAMES_PER_CHUNK = 64  # images a worker transcodes per task: small IPC per image, fine-grained balance
_ORIENTATION = 0x0112
# file magic -> the bytes its EXIF block starts with (JPEG APP1, PNG chunk, WebP chunk); other formats
# (TIFF, HEIF, ...) are always asked for their EXIF
_EXIF_MARKS = {b"\xff\xd8": b"Exif\x00\x00", b"\x89PNG": b"eXIf", b"RIFF": b"EXIF"}


class Generator:
    """Pack raw files listed in a CSV into Nebulae HDF5 files: `Generator(...).generate(dst_path, ...)`.

    `dtype` gives one dtype per CSV column, the first ('vuint8') for the image column. `file_list`
    is used as given (absolute or relative to the working directory), else relative to `file_dir`;
    image paths are relative to `file_dir`, which defaults to the CSV's folder. Every argument of
    `generate` except `dst_path` may also be set here or with `modify` (a `config` dict overrides
    the keywords); `workers` (None = all cores, 0 = this process) is an extra setting.

    Args:
        max_pixels: the most pixels an image may declare in its header, checked before decoding (a
            decompression bomb guard); None (default): the environment variable NEB_MAX_PIXELS, else
            2**28 (about 268 megapixels); 0: no limit.
        allow_outside: pack image paths that lead outside `file_dir` (`../`, absolute paths, symlinks
            out of it); by default such a row is refused with an error naming the CSV line and path.
    """

    def __init__(
        self,
        file_dir: str | os.PathLike | None = None,
        file_list: str | os.PathLike | None = None,
        dtype: Sequence[str] | None = None,
        is_seq: bool = False,
        config: Mapping[str, Any] | None = None,
        **settings: Any,
    ):
        self._settings = dict(DEFAULTS)
        self.modify(config, file_dir=file_dir, file_list=file_list, dtype=dtype, is_seq=is_seq, **settings)

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of the current settings."""
        return dict(self._settings)

    def modify(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Change settings (file_dir, file_list, dtype, is_seq, height, width, channel, encode, shards,
        keep_exif, workers, max_pixels, allow_outside); `config` entries win over keywords; unknown names
        raise ValueError."""
        changes = {**kwargs, **dict(config or {})}
        self._settings = _checked({**self._settings, **changes}, changes)

    def __repr__(self) -> str:
        return f"Generator({', '.join(f'{k}={v!r}' for k, v in self._settings.items())})"

    def generate(
        self,
        dst_path: str | os.PathLike,
        height: int | None = None,
        width: int | None = None,
        channel: int | None = None,
        encode: str | None = None,
        shards: int | None = None,
        keep_exif: bool | None = None,
        workers: int | None = None,
    ) -> list[str]:
        """Write the packed file(s) and return their paths; arguments left None use the stored settings.

        All rows are validated first; on any error (or interrupt) no destination is created or
        changed and the temporary files are removed.
        """
        given = {"height": height, "width": width, "channel": channel, "encode": encode}
        given |= {"shards": shards, "keep_exif": keep_exif, "workers": workers}
        given = {k: v for k, v in given.items() if v is not None}
        s = _checked({**self._settings, **given}, given)
        if (s["height"] > 0) != (s["width"] > 0):
            raise ValueError(
                f"height and width must both be > 0 (resize) or both 0 (keep sizes), got {s['height']} x {s['width']}"
            )
        dst_path = os.fspath(dst_path)
        if dst_path.lower().endswith(".npz"):
            raise ValueError(f"{dst_path}: Nebulae packs HDF5 only (use a .h5 or .hdf5 name), not npz")
        plan = _plan(s)
        count = len(plan.table.rows)
        if s["shards"] > count:
            raise ValueError(f"shards={s['shards']} but {plan.table.path} has only {count} data rows")
        finals = shard_paths(dst_path, s["shards"])
        for path in finals:
            if os.path.isdir(path):
                raise ValueError(f"destination {path} is a directory")
        os.makedirs(os.path.dirname(os.path.abspath(dst_path)), exist_ok=True)
        recipe = _Recipe(
            s["height"],
            s["width"],
            s["channel"],
            s["encode"],
            s["keep_exif"],
            plan.table.path,
            plan.columns[0].name,
            pixels.resolve(s["max_pixels"]),
        )
        for path in finals:
            _sweep_temps(path)
        temps: list[str] = []
        try:
            _write_shards(plan, recipe, finals, temps, s["workers"])
            faults.point("generator.before-replace")
            for temp, final in zip(temps, finals):
                os.replace(temp, final)
            temps.clear()
        finally:
            for temp in temps:
                with contextlib.suppress(OSError):
                    os.remove(temp)
        return finals


def shard_paths(dst_path: str | os.PathLike, shards: int) -> list[str]:
    """The file names `generate` writes: [dst_path] for one shard, else `<stem>_<i>of<k><suffix>`, i = 1..k."""
    dst_path = os.fspath(dst_path)
    if shards == 1:
        return [dst_path]
    stem, suffix = os.path.splitext(dst_path)
    digits = len(str(shards))
    return [f"{stem}_{i:0{digits}d}of{shards}{suffix}" for i in range(1, shards + 1)]


# ---------------------------------------------------------------------------------------------
# settings and the validated plan


def _checked(settings: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in changes if k not in DEFAULTS]
    if unknown:
        hints = [
            f"{k!r}" + "".join(f" (did you mean {m!r}?)" for m in difflib.get_close_matches(k, DEFAULTS, 1))
            for k in unknown
        ]
        raise ValueError(f"unknown Generator setting {', '.join(hints)}; valid: {', '.join(DEFAULTS)}")
    s = dict(settings)
    for key in ("file_dir", "file_list"):
        if s[key] is not None:
            if not isinstance(s[key], str | os.PathLike):
                raise TypeError(f"{key} must be a path, got {s[key]!r}")
            s[key] = os.fspath(s[key])
    if s["dtype"] is not None:
        if isinstance(s["dtype"], str) or not isinstance(s["dtype"], Sequence):
            raise TypeError(f"dtype must be a list of dtype names such as ['vuint8', 'int64'], got {s['dtype']!r}")
        s["dtype"] = [str(parse_dtype(d)) for d in s["dtype"]]
    for key in ("is_seq", "keep_exif", "allow_outside"):
        if not isinstance(s[key], bool | np.bool_):
            raise TypeError(f"{key} must be True or False, got {s[key]!r}")
        s[key] = bool(s[key])
    for key, low in (("height", 0), ("width", 0), ("shards", 1)):
        if not _is_int(s[key]) or s[key] < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {s[key]!r}")
        s[key] = int(s[key])
    if s["channel"] not in (1, 3) or not _is_int(s["channel"]):
        raise ValueError(f"channel must be 1 (grey) or 3 (RGB), got {s['channel']!r}")
    s["channel"] = int(s["channel"])
    encode = s["encode"].upper() if isinstance(s["encode"], str) else s["encode"]
    encode = "JPEG" if encode == "JPG" else encode
    if encode not in ENCODINGS:
        raise ValueError(f"encode must be 'JPEG' or 'PNG' (any case), got {s['encode']!r}")
    s["encode"] = encode
    if s["max_pixels"] is not None and (not _is_int(s["max_pixels"]) or s["max_pixels"] < 0):
        raise ValueError(
            f"max_pixels must be None (NEB_MAX_PIXELS or 2**28), 0 (no limit) or a pixel count, got {s['max_pixels']!r}"
        )
    if s["workers"] is not None and (not _is_int(s["workers"]) or s["workers"] < 0):
        raise ValueError(
            f"workers must be None (all cores), 0 (this process) or a positive integer, got {s['workers']!r}"
        )
    return s


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


@dataclass
class _Plan:
    table: Table
    columns: list[ColumnSpec]
    values: dict[str, list]  # cast values of the non-image columns
    images: list[list[str]]  # per row, the image file(s) to read


def _plan(s: dict[str, Any]) -> _Plan:
    """Read the CSV and validate every row: column counts, casts, image paths (before any encoding)."""
    if s["file_list"] is None:
        raise ValueError("file_list (the CSV listing the files) is not set")
    csv_path = _find_csv(s["file_list"], s["file_dir"])
    table = read_csv(csv_path)
    header = table.header
    if s["dtype"] is None:
        raise ValueError(f"dtype is not set: give one dtype per column of {csv_path} ({', '.join(header)})")
    dtypes = [parse_dtype(d) for d in s["dtype"]]
    if len(dtypes) != len(header):
        raise ValueError(
            f"{len(s['dtype'])} dtypes for the {len(header)} columns of {csv_path} ({', '.join(header)}): "
            "give one per column, the first for the image column"
        )
    if dtypes[0].base != "uint8":
        raise ValueError(
            f"{csv_path}: column 1 ({header[0]!r}) is the image column; its dtype must be 'vuint8' (or 'uint8'), "
            f"got {str(dtypes[0])!r}"
        )
    kind = "frames" if s["is_seq"] else "image"
    columns = [ColumnSpec(header[0], "uint8", kind)]
    values = {}
    for i, dtype in enumerate(dtypes[1:], start=1):
        col_kind = "str" if dtype.base == "str" else "vlen" if dtype.vlen else "scalar"
        columns.append(ColumnSpec(header[i], dtype.base, col_kind))
        values[header[i]] = cast_column(table, i, dtype)
    root = s["file_dir"] if s["file_dir"] is not None else os.path.dirname(os.path.abspath(csv_path))
    real_root = os.path.realpath(root)
    images = []
    for line, cells in table.rows:
        names = cells[0].split(",") if s["is_seq"] else [cells[0]]
        paths = []
        for name in names:
            name = name.strip()
            if not name:
                raise ValueError(f"{table.where(line, 0)}: empty image path in {cells[0]!r}")
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                raise ValueError(f"{table.where(line, 0)}: image file not found: {path}")
            real = os.path.realpath(path)
            if not s["allow_outside"] and os.path.commonpath([real, real_root]) != real_root:
                raise ValueError(
                    f"{table.where(line, 0)}: image path {name!r} leads outside file_dir {real_root} (to {real}); "
                    "move the file under file_dir, or pass allow_outside=True (`pack --allow-outside`) to pack it"
                )
            paths.append(path)
        images.append(paths)
    return _Plan(table, columns, values, images)


def _find_csv(file_list: str, file_dir: str | None) -> str:
    if os.path.isfile(file_list):
        return file_list
    tried = [os.path.abspath(file_list)]
    if file_dir is not None and not os.path.isabs(file_list):
        candidate = os.path.join(file_dir, file_list)
        if os.path.isfile(candidate):
            return candidate
        tried.append(os.path.abspath(candidate))
    raise FileNotFoundError(f"file_list {file_list!r} not found (tried {' and '.join(tried)})")


# ---------------------------------------------------------------------------------------------
# writing: chunks of rows go to worker processes, results come back in order, shard by shard


def _write_shards(plan: _Plan, recipe: _Recipe, finals: list[str], temps: list[str], workers: int | None) -> None:
    count, shards = len(plan.images), len(finals)
    bounds = [i * count // shards for i in range(shards + 1)]
    total = sum(len(p) for p in plan.images)
    chunks = list(_chunks(plan, count))
    procs = _worker_count(workers, total)
    meta = {"encode": recipe.encode.lower(), "height": recipe.height, "width": recipe.width, "channel": recipe.channel}
    shard, row = 0, 0
    writer = Writer(_temp_beside(finals[0], temps), plan.columns, **meta)
    with _results(chunks, recipe, procs) as results, Bar(total, f"packing {os.path.basename(finals[0])}") as bar:
        for encoded in results:
            for frames in encoded:
                item = {name: values[row] for name, values in plan.values.items()}
                item[plan.columns[0].name] = frames if plan.columns[0].kind == "frames" else frames[0]
                writer.append(item)
                faults.point("generator.row")
                row += 1
                bar.advance(len(frames))
                if row == bounds[shard + 1]:
                    writer.close()
                    shard += 1
                    if shard < shards:
                        writer = Writer(_temp_beside(finals[shard], temps), plan.columns, **meta)
    if shard != shards:
        raise RuntimeError(f"internal error: {row} of {count} rows written to {shard} of {shards} shards")


def _temp_beside(final: str, temps: list[str]) -> str:
    # a fresh hidden name in the destination's folder; h5py creates it with the usual permissions
    folder, name = os.path.split(os.path.abspath(final))
    path = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    temps.append(path)
    return path


def _sweep_temps(final: str) -> list[str]:
    """Remove the temporary files of `final` that dead processes left (a Generator killed while writing).

    A temporary file is `.<name>.<pid>.<12 hex>.tmp` beside the destination; one whose pid still runs
    may be another Generator's work in progress and is left alone.
    """
    folder, name = os.path.split(os.path.abspath(final))
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{12}}\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            match = pattern.fullmatch(entry)
            if match and not alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, entry))
                    removed.append(entry)
    return removed


def _chunks(plan: _Plan, count: int) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    frames = 0
    for (line, _), paths in zip(plan.table.rows, plan.images):
        chunk.append((line, paths))
        frames += len(paths)
        if frames >= FRAMES_PER_CHUNK:
            yield chunk
            chunk, frames = [], 0
    if chunk:
        yield chunk


def _worker_count(workers: int | None, total: int) -> int:
    if workers is not None:
        return workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if cores < 2 or total <= FRAMES_PER_CHUNK else min(cores, -(-total // FRAMES_PER_CHUNK))


@contextlib.contextmanager
def _results(chunks: list, recipe: _Recipe, procs: int) -> Iterator[Iterator[list[list[bytes]]]]:
    """Yield an iterator over the transcoded chunks, in order (in this process when procs == 0)."""
    if procs == 0:
        yield (_transcode_chunk(chunk, recipe) for chunk in chunks)
        return
    pool = cf.ProcessPoolExecutor(
        procs, mp_context=_mp_context(), initializer=_init_worker, initargs=(recipe, os.getpid())
    )
    try:
        yield _ordered(pool, chunks, window=4 * procs)
    except BaseException:
        _stop(pool)  # an interrupt can land inside the executor's bookkeeping: never wait on it then
        raise
    pool.shutdown(wait=True, cancel_futures=True)


STOP_GRACE_S = 10.0  # how long a stopped pool's workers may take to finish the chunk in hand


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool without waiting for its management thread: queued chunks are cancelled, a worker finishes
    the chunk in hand and exits; one still busy after `STOP_GRACE_S` is terminated. (A worker killed while it
    writes its result leaves a torn message in the result pipe, on which the executor's thread, and with it
    the interpreter's exit, would block forever.)"""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in workers:
        proc.join(max(deadline - time.monotonic(), 0.0))
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
    for proc in workers:
        proc.join(5)


def _ordered(pool: cf.ProcessPoolExecutor, chunks: list, window: int) -> Iterator[list[list[bytes]]]:
    pending: collections.deque[cf.Future] = collections.deque()
    submitted = done = 0
    try:
        while done < len(chunks):
            while submitted < len(chunks) and len(pending) < window:
                pending.append(pool.submit(_transcode_chunk, chunks[submitted]))
                submitted += 1
            result = pending.popleft().result()
            done += 1
            yield result
    except cf.process.BrokenProcessPool as err:
        first, last = chunks[done][0][0], chunks[done][-1][0]
        raise RuntimeError(f"a worker process died while packing lines {first}-{last}; nothing was written") from err


def _mp_context() -> mp.context.BaseContext:
    # fork starts workers in milliseconds; jax is multithreaded and must not be forked
    methods = mp.get_all_start_methods()
    if "fork" in methods and "jax" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


# ---------------------------------------------------------------------------------------------
# per image work (runs in the workers)


@dataclass(frozen=True)
class _Recipe:
    height: int
    width: int
    channel: int
    encode: str
    keep_exif: bool
    csv: str
    column: str
    max_pixels: int | None = pixels.DEFAULT_MAX_PIXELS

    def where(self, line: int) -> str:
        return f"{self.csv}, line {line}, column {self.column!r}"


_RECIPE: _Recipe | None = None
_WATCH_S = 0.25  # how often a worker checks that its parent is alive


def _init_worker(recipe: _Recipe, owner: int) -> None:
    global _RECIPE
    _RECIPE = recipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts the pool down
    cv2.setNumThreads(1)
    threading.Thread(target=_watch_parent, args=(os.getppid(), owner), daemon=True, name="generator-parent").start()


def _watch_parent(parent: int, owner: int) -> None:
    """End this worker within a second of the Generator's death (a killed Generator leaves no orphans).

    `parent` is the Generator (`owner`), or the forkserver, which exits with it; either way this
    process is then re-parented. The pool's pipes never report it: the sibling workers hold their ends.
    """
    while os.getppid() == parent and alive(owner):
        time.sleep(_WATCH_S)
    os._exit(1)


def _transcode_chunk(chunk: list[tuple[int, list[str]]], recipe: _Recipe | None = None) -> list[list[bytes]]:
    recipe = recipe or _RECIPE
    out = []
    for line, paths in chunk:
        frames = []
        for path in paths:
            try:
                data = _read(path)
            except OSError as err:
                raise ValueError(f"{recipe.where(line)}: cannot read image {path}: {err}") from None
            if not data:
                raise ValueError(
                    f"{recipe.where(line)}: image file {path} is empty (0 bytes): replace it with the image "
                    "(a copy or download cut short?) or remove its row"
                )
            try:
                pixels.check(data, recipe.max_pixels)
            except pixels.ImageTooLargeError as err:
                raise ValueError(f"{recipe.where(line)}: image {path}: {err}") from None
            try:
                with pixels.unlimited_pillow():  # the limit was checked above; Pillow's own would differ
                    frames.append(
                        transcode(data, recipe.height, recipe.width, recipe.channel, recipe.encode, recipe.keep_exif)
                    )
            except (UndecodableImageError, cv2.error) as err:
                raise ValueError(
                    f"{recipe.where(line)}: cannot decode image {path}: {_first_line(err)}; "
                    "replace the file with a valid image or remove its row"
                ) from None
        out.append(frames)
    return out


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[-1] if isinstance(err, cv2.error) else text


def _read(path: str) -> bytes:
    # os-level reads: half the cost of open().read() for the small files that dominate datasets
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 24):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class UndecodableImageError(ValueError):
    """The bytes are not an image any of simplejpeg, OpenCV or Pillow can decode."""


def transcode(data: bytes, height: int, width: int, channel: int, encode: str, keep_exif: bool) -> bytes:
    """Decode an image file's bytes, orient, resize, convert and re-encode it as `Generator.generate` does."""
    orientation, exif = _exif(data, keep_exif)
    swap = orientation >= 5  # orientations 5-8 transpose the image
    image = _decode(data, channel, (width, height) if swap else (height, width))
    image = _orient(image, orientation)
    if height > 0 and width > 0 and image.shape[:2] != (height, width):
        shrink = height <= image.shape[0] and width <= image.shape[1]
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        image = image.reshape(height, width, channel)
    return _encode(image, encode, exif)


def _exif(data: bytes, keep: bool) -> tuple[int, bytes]:
    """(EXIF orientation 1-8, the EXIF bytes to write: b'' unless `keep`, never with an orientation tag)."""
    mark = _EXIF_MARKS.get(data[:4], _EXIF_MARKS.get(data[:2]))
    if mark is not None and mark not in data:
        return 1, b""
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            raw = im.info.get("exif", b"")
    except Exception:
        return 1, b""  # not an image Pillow reads: the decoder reports it
    orientation = exif.get(_ORIENTATION, 1)
    orientation = orientation if orientation in range(1, 9) else 1
    if not keep or not len(exif):
        return orientation, b""
    if exif.get(_ORIENTATION, 1) == 1 and raw:
        return orientation, raw
    del exif[_ORIENTATION]
    return orientation, exif.tobytes()


def _decode(data: bytes, channel: int, min_size: tuple[int, int]) -> np.ndarray:
    """HWC uint8 RGB (or HW1 grey), without applying any EXIF orientation; JPEGs may come DCT-downscaled
    to no smaller than `min_size` (height, width)."""
    if data[:2] == b"\xff\xd8":
        try:
            kwargs = {"min_height": min_size[0], "min_width": min_size[1]} if min(min_size) > 0 else {}
            return simplejpeg.decode_jpeg(data, colorspace="GRAY" if channel == 1 else "RGB", **kwargs)
        except ValueError:
            pass  # e.g. arithmetic coding or a 12-bit JPEG: Pillow decides (it rejects truncated files)
    else:
        flags = (cv2.IMREAD_GRAYSCALE if channel == 1 else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:  # e.g. over OpenCV's own pixel limit, or no bytes: Pillow decides
            image = None
        if image is not None:
            return image[:, :, None] if channel == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L" if channel == 1 else "RGB")).reshape(im.height, im.width, channel)
    except Exception as err:
        raise UndecodableImageError(str(err) or type(err).__name__) from None


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation `orientation` (as Pillow's ImageOps.exif_transpose does) to an HWC array."""
    if orientation == 1:
        return image
    transposed = image.transpose(1, 0, 2)
    view = {
        2: image[:, ::-1],
        3: image[::-1, ::-1],
        4: image[::-1],
        5: transposed,
        6: transposed[:, ::-1],
        7: transposed[::-1, ::-1],
        8: transposed[::-1],
    }[orientation]
    return np.ascontiguousarray(view)


def _encode(image: np.ndarray, encode: str, exif: bytes) -> bytes:
    grey = image.shape[2] == 1
    if exif:
        buf = io.BytesIO()
        pil = Image.fromarray(image[:, :, 0] if grey else image)
        if encode == "JPEG":
            pil.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=2, exif=exif)
        else:
            pil.save(buf, "PNG", compress_level=PNG_COMPRESSION, exif=exif)
        return buf.getvalue()
    if encode == "JPEG":
        return simplejpeg.encode_jpeg(
            image, quality=JPEG_QUALITY, colorspace="GRAY" if grey else "RGB", colorsubsampling="420"
        )
    ok, buf = cv2.imencode(
        ".png",
        image if grey else cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION],
    )
    if not ok:
        raise RuntimeError("OpenCV failed to encode a PNG")
    return buf.tobytes()

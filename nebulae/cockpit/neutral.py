"""The neutral weights format: one HDF5 file, one dataset per parameter path, readable by either engine.

Layout (format 1): every array of `Craft.export_weights()` is a dataset at its '/'-joined path
('net/conv1/weight' -> group net, group conv1, dataset weight), in PyTorch's layouts, which both
engines share. Root attributes: ``nebulae_format`` (1), ``engine`` (the writer's), ``version``
(nebulae's), ``step`` (updates applied, -1 when unknown) and ``scope``. bfloat16 arrays are stored as
float32 with a ``dtype`` attribute. The file is written under a hidden temporary name, flushed
and renamed, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import h5py
import numpy as np

from nebulae import faults
from nebulae.cockpit import anchors

FORMAT = 1
SUFFIXES = (".h5", ".hdf5")


def is_neutral(file: str | os.PathLike) -> bool:
    """Whether `file` names the neutral HDF5 format (by its extension)."""
    return bool(file) and os.fspath(file).lower().endswith(SUFFIXES)


def write(path: str, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Write {path: array} and `meta` (engine, version, step, scope) to `path` atomically; return the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = anchors.temporary(path)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["nebulae_format"] = FORMAT
            for key, value in meta.items():
                f.attrs[key] = "" if value is None else value
            for key, array in arrays.items():
                array = np.asarray(array)
                if array.dtype.name == "bfloat16":
                    f.create_dataset(key, data=array.astype(np.float32)).attrs["dtype"] = "bfloat16"
                else:
                    f.create_dataset(key, data=array)
            faults.point("neutral.writing")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        anchors.remove(tmp)
        if isinstance(err, Exception) and anchors.full_disk(err):  # named, as for the engines' anchors
            raise anchors.save_failed(path, err, sum(np.asarray(a).nbytes for a in arrays.values())) from err
        raise
    anchors.fsync_folder(folder)
    return path


class Skipped(NamedTuple):
    """A dataset that was not read: unexpected, or of the wrong shape (known from the file's metadata)."""

    shape: tuple[int, ...]
    dtype: np.dtype


def read(path: str, expected: dict[str, tuple] | None = None) -> tuple[dict[str, np.ndarray | Skipped], dict]:
    """({path: array}, meta) from a neutral file; a file that is not one raises ValueError.

    With `expected` ({path: shape}), names, shapes and dtypes are checked from the metadata first and only the
    datasets that will be loaded are read: the others come back as `Skipped(shape, dtype)`, so a huge
    unexpected dataset costs nothing.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no neutral weights file at {path!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path!r} is not a Nebulae weights file (not HDF5: {err})") from None
    with f:
        if "nebulae_format" not in f.attrs:
            raise ValueError(
                f"{path!r} is an HDF5 file but not a Nebulae weights file (no 'nebulae_format' attribute); "
                "write one with TimeMachine.drop(craft, file='name.h5')"
            )
        if int(f.attrs["nebulae_format"]) > FORMAT:
            raise ValueError(
                f"{path!r} has weights format {int(f.attrs['nebulae_format'])}; this Nebulae reads up to {FORMAT}"
            )
        meta = {k: _plain(v) for k, v in f.attrs.items()}
        datasets: dict[str, h5py.Dataset] = {}

        def visit(key, node):  # returns None: visititems stops at the first other value
            if isinstance(node, h5py.Dataset):
                datasets[key] = node

        f.visititems(visit)
        arrays: dict[str, np.ndarray | Skipped] = {}
        for key, node in datasets.items():
            wanted = expected is None or (key in expected and tuple(expected[key]) == node.shape)
            if wanted and node.dtype.kind not in "biuf":  # an unexpected one is only reported, never read
                raise ValueError(
                    f"{path!r}: dataset {key!r} holds {node.dtype} values, not numbers; a Nebulae weights file "
                    "holds numeric arrays only (write it with TimeMachine.drop(craft, file='name.h5'))"
                )
            try:
                arrays[key] = node[()] if wanted else Skipped(node.shape, node.dtype)
            except OSError as err:
                raise ValueError(f"{path!r}: dataset {key!r} cannot be read ({err}); the file is damaged") from None
    return arrays, meta


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value

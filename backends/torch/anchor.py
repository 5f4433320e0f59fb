"""Anchors on torch: a craft's whole state in one `torch.save` file, and the devices an Engine selects.

The file holds ``{'nebulae': meta, 'state': craft.state_dict(), 'rng': {...}}``. The state dict
carries parameters, buffers and every `_extra_state` (torch.optim state, GradScaler, update and
call counters — hence schedule and warm-up position — and EMA shadows); 'rng' is torch's global
generator (and CUDA's when initialised), which draws the dropout masks.

Asynchronous (the default): the loop's thread only copies the tensors to host memory (the next
step changes them in place; views of one tensor stay shared), then a background thread runs
`torch.save` into a hidden temporary file, fsyncs it and renames it into place. Peak host memory
grows by one copy of the state while a save is in flight. A crash at any point leaves earlier
anchors intact, and a power loss cannot leave a renamed but empty file. Loading uses
``weights_only=True`` and maps tensors to the craft's device: a file whose unpickling would run
code is refused, never executed.
"""

from __future__ import annotations

import os
import pickle
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

from nebulae import faults
from nebulae.astro import statedict
from nebulae.cockpit import anchors
from nebulae.cockpit.engine import check_gpu_count, no_gpu, restrict_gpus

from . import ema as _ema
from . import optim as _optim
from . import sharding as _sharding
from . import tensor as _tensor

SUFFIX = ".pth"
COLLECTIVE = False  # under a Multiverse: every rank holds the same weights: rank 0 alone writes


def step_of(craft) -> anchors.Step | None:  # the naming rule is the front's (anchors.step_of)
    return anchors.step_of(
        (m.updates, m._calls, m.conf.grad_accum) for m in craft.modules() if isinstance(m, _optim.Updater)
    )


def swapped_emas(craft) -> list[str]:
    return [path.replace(".", "/") for path, m in craft.named_modules() if isinstance(m, _ema.Updater) and m._swapped]


def save(craft, path: str, meta: dict, scope: str | None, asynchronous: bool):
    full = craft.state_dict()
    if any(_sharding.is_sharded(v) for v in full.values()):
        raise RuntimeError(
            f"TimeMachine: {type(craft).__name__} holds sharded parameters (Multiverse(shard='params')), which a "
            "'.pth' anchor written by rank 0 alone cannot hold; drop to a '.h5' file (every rank gathers the "
            "weights) or train unsharded"
        )
    state = OrderedDict((k, v) for k, v in full.items() if statedict.within(k.replace(".", "/"), scope))
    state._metadata = getattr(full, "_metadata", OrderedDict())  # module versions, read by load_state_dict
    anchors.check_some(state, craft, scope)
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    payload = {"nebulae": meta, "state": state, "rng": rng}
    pending = _Pending(path)
    if asynchronous:
        pending.start(_host_copy(payload, {}))  # the next step may change every tensor in place: save a copy
    else:
        pending.run(payload)
        pending.raise_error()
    return pending


def _arrays(obj, prefix: str = ""):
    """(path, bytes as a NumPy uint8 array) of every tensor in a state dict, extra states included."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _arrays(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _arrays(value, f"{prefix}/{i}")


def _host_copy(obj, memo: dict):
    """A deep copy of the tensors in `obj` on the CPU (views of one tensor stay views of one copy)."""
    if isinstance(obj, torch.Tensor):
        key = (obj.data_ptr(), obj.device, obj.dtype, tuple(obj.shape), obj.stride())
        if key not in memo:
            memo[key] = obj.detach().to("cpu", copy=True)
        return memo[key]
    if isinstance(obj, dict):
        copy = type(obj)((k, _host_copy(v, memo)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # state dicts carry module versions that load_state_dict reads
            copy._metadata = obj._metadata
        return copy
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_host_copy(v, memo) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_host_copy(v, memo) for v in obj)
    return obj


class _Writing:
    """The file torch.save writes into, with a fault point at every write (a disk that fills up mid-file)."""

    def __init__(self, f):
        self.f = f

    def write(self, data) -> int:
        faults.point("anchor.writing")
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


class _Pending:
    """An anchor on its way to disk: `torch.save` to a temporary file, fsync, rename, fsync of the folder."""

    def __init__(self, path: str):
        self.path, self.tmp = path, anchors.temporary(path)
        self.error: BaseException | None = None
        self.size: int | None = None  # the bytes of the tensors being written, named when the disk is full
        self.thread: threading.Thread | None = None

    def start(self, payload: dict) -> None:
        self.thread = threading.Thread(target=self.run, args=(payload,), name="nebulae-anchor", daemon=False)
        self.thread.start()

    def run(self, payload: dict) -> None:
        try:
            sizes: list[int] = []  # one tensor at a time: no second host copy of a GPU state
            arrays = ((key, a) for key, a in _arrays(payload["state"]) if not sizes.append(a.nbytes))
            payload["nebulae"] = {**payload["nebulae"], "digests": anchors.digests(arrays)}
            self.size = sum(sizes)
            with open(self.tmp, "wb") as f:
                torch.save(payload, _Writing(f))
                f.flush()
                os.fsync(f.fileno())
            faults.point("anchor.written")
            os.replace(self.tmp, self.path)
            anchors.fsync_folder(os.path.dirname(os.path.abspath(self.path)))
        except BaseException as err:  # surfaced by wait()
            self.error = err
            anchors.remove(self.tmp)

    def raise_error(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise anchors.save_failed(self.path, error, self.size) from error

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        self.raise_error()


def is_complete(path: str) -> bool:
    return os.path.isfile(path)


def read(path: str, craft) -> tuple[dict, dict[str, Any]]:
    # mapped to the craft's device; weights_only: a pickle that asks for code is refused, never run
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a directory, not a torch anchor (JAX writes Orbax directories; to move weights between "
            "engines, drop and load a '.h5' file)"
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # foreign files: we refuse anyway
            loaded = torch.load(path, map_location=_device_of(craft), weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path!r} is not a Nebulae checkpoint: its pickle asks for objects outside plain tensors and containers "
            f"({_first_line(err)}). It was refused and NOT executed; never load files you do not trust."
        ) from None
    except Exception as err:  # not a zip/pickle at all, truncated, ...
        raise anchors.unreadable(path, err) from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("nebulae"), dict) or "state" not in loaded:
        raise ValueError(
            f"{path!r} is a torch file but not a Nebulae checkpoint (no 'nebulae' marker); for a bare state dict use "
            "craft.load_state_dict(torch.load(path, weights_only=True))"
        )
    anchors.verify(path, loaded["nebulae"].get("digests"), _arrays(loaded["state"]))
    meta = dict(loaded["nebulae"])
    meta["rng"] = loaded.get("rng")
    meta["module_versions"] = getattr(loaded["state"], "_metadata", None)
    return meta, {k.replace(".", "/"): v for k, v in loaded["state"].items()}


def shapes(craft) -> dict[str, tuple]:
    return {  # extra states (optimizer, counters) have shape ()
        k.replace(".", "/"): tuple(v.shape) if isinstance(v, torch.Tensor) else ()
        for k, v in craft.state_dict(keep_vars=True).items()
    }


def apply(craft, state: dict[str, Any], meta: dict, restore_rng: bool) -> None:
    chosen = OrderedDict((k.replace("/", "."), v) for k, v in state.items())
    if meta.get("module_versions") is not None:
        chosen._metadata = meta["module_versions"]
    craft.load_state_dict(chosen, strict=False)
    rng = meta.get("rng") if restore_rng else None
    if rng:
        torch.set_rng_state(rng["cpu"].cpu())
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([r.cpu() for r in rng["cuda"]])


def _device_of(craft) -> torch.device:
    for t in craft.parameters():
        return t.device
    for t in craft.buffers():
        return t.device
    return _tensor.device()


def _first_line(err: BaseException) -> str:
    text = str(err)
    for line in text.splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def select_devices(kind: str, indices: Sequence[int]) -> list:
    # CUDA reads CUDA_VISIBLE_DEVICES once, when it initialises: another set afterwards is refused (too late)
    if kind == "CPU":
        return [torch.device("cpu")]
    first = "anything touches CUDA (torch.cuda.*, .cuda(), seeding helpers)"
    wanted = restrict_gpus(indices, torch.cuda.is_initialized(), "torch", first)
    if not torch.cuda.is_available():
        why = "sees no CUDA device: a CPU-only build of torch, or the NVIDIA driver is not usable from this process"
        raise no_gpu(wanted, f"torch {torch.__version__}", why)
    torch.cuda.init()
    count = torch.cuda.device_count()
    check_gpu_count(indices, count, "CUDA", " before the Engine (e.g. torch.cuda.is_available() ran earlier)")
    return [torch.device(f"cuda:{i}") for i in range(count)]


def place(craft, device) -> None:
    device = torch.device(device)
    craft.to(device)
    for m in craft.modules():
        if isinstance(m, _ema.Updater):
            m._shadow = [t.to(device) for t in m._shadow]
        elif isinstance(m, _optim.Updater):
            for slot in m._optim.state.values():
                for key, value in slot.items():
                    if isinstance(value, torch.Tensor) and value.dim() > 0:
                        slot[key] = value.to(device)
    _tensor.set_device(device)

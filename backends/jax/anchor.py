"""Anchors on JAX: a craft's whole state as an Orbax checkpoint directory, and the devices an Engine selects.

The state is every nnx Variable of the craft keyed by its '/'-joined graph path (parameters,
BatchStat, OptSlot — optax slots, update counter, hence schedule and warm-up position, loss
scale —, EmaShadow, RngState dropout streams, ...), each reached once even when crafts share a
model. It is saved as a nested pytree plus a JSON item (meta and the key list with shapes and
dtypes) by `ocp.AsyncCheckpointer`: `save` returns once the arrays are copied off the device
(so the next step may donate and overwrite them), and the write runs in the background. Orbax
writes into ``<anchor>.orbax-checkpoint-tmp`` and renames it when complete, so a crash never
leaves a half-written anchor under its name; when the name is taken (same step saved again) the
new anchor is written under a hidden name and swapped in by `wait()`.

Why AsyncCheckpointer and not CheckpointManager: anchors must be named `<scope>-<step>` like the
torch files (CheckpointManager's standard names are `<prefix>_<step>`), named anchors
(`file='best'`) must live beside them, re-saving a step must replace it atomically
(CheckpointManager refuses or skips a step it has), and rotation must count anchors written by
earlier processes. `nebulae.cockpit` does naming and rotation for both engines from the folder
listing; Orbax does the asynchronous, atomic write. Reading never unpickles anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nebulae import faults
from nebulae.astro import statedict
from nebulae.cockpit import anchors
from nebulae.cockpit.engine import check_gpu_count, no_gpu, restrict_gpus

from . import ema as _ema
from . import layout as _layout
from . import optim as _optim
from . import tensor as _tensor

SUFFIX = ""
COLLECTIVE = True  # under a Multiverse: Orbax's save is collective: every host calls it, the primary host writes
_MEMORY_VARS = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR")


def step_of(craft) -> anchors.Step | None:  # the naming rule is the front's (anchors.step_of)
    return anchors.step_of(
        (m.updates, int(m.calls.get_value()), m.conf.grad_accum)
        for _, m in nnx.iter_graph(craft)
        if isinstance(m, _optim.Updater)
    )


def swapped_emas(craft) -> list[str]:
    return ["/".join(map(str, p)) for p, m in nnx.iter_graph(craft) if isinstance(m, _ema.Updater) and m.swapped()]


def _variables(craft) -> dict[str, nnx.Variable]:
    out = {}
    for path, v in nnx.iter_graph(craft):
        if isinstance(v, nnx.Variable) and isinstance(v.get_raw_value(), (jax.Array, np.ndarray, np.generic)):
            out["/".join(str(p) for p in path)] = v
    return out


def _is_key(value) -> bool:
    return jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _nest(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def save(craft, path: str, meta: dict, scope: str | None, asynchronous: bool):
    path = os.path.abspath(path)  # Orbax takes absolute paths only
    flat, keys = {}, {}
    for key, var in _variables(craft).items():
        if not statedict.within(key, scope):
            continue
        value = var.get_raw_value()
        entry = {}
        if _is_key(value):
            entry["key_impl"] = str(jax.random.key_impl(value))
            value = jax.random.key_data(value)
        flat[key] = value
        keys[key] = {"shape": list(np.shape(value)), "dtype": str(value.dtype), **entry}
    anchors.check_some(flat, craft, scope)
    host = jax.device_get(flat)  # one transfer for all; the digests are of the bytes Orbax will write
    for key, crc in anchors.digests((k, np.asarray(v)) for k, v in host.items()).items():
        keys[key]["crc32"] = crc
    # a hidden name until complete: Orbax's own temporary folder then never carries a visible name. Several
    # processes write one collective checkpoint under the same name, so there it is written in place.
    hidden = jax.process_count() == 1 or os.path.lexists(path)
    target = anchors.temporary(path, "nebulae-new") if hidden else path
    checkpointer = ocp.AsyncCheckpointer(ocp.CompositeCheckpointHandler())
    checkpointer.save(
        target,
        args=ocp.args.Composite(state=ocp.args.PyTreeSave(_nest(flat)), meta=ocp.args.JsonSave({**meta, "keys": keys})),
    )
    pending = _Pending(checkpointer, target, path)
    if not asynchronous:
        pending.wait()
    return pending


class _Pending:
    """An Orbax save in flight; `wait()` finishes it and, when it replaces an anchor, swaps it in."""

    def __init__(self, checkpointer, written: str, path: str):
        self.checkpointer, self.written, self.path = checkpointer, written, path

    def wait(self) -> None:
        checkpointer, self.checkpointer = self.checkpointer, None
        if checkpointer is None:
            return
        try:
            checkpointer.wait_until_finished()
            faults.point("anchor.written")
        except BaseException as err:
            if self.written != self.path:
                anchors.remove(self.written)
            raise anchors.save_failed(self.path, err) from err
        finally:
            checkpointer.close()
        if self.written == self.path:
            return
        folder = os.path.dirname(self.path)
        if not os.path.lexists(self.path):
            os.rename(self.written, self.path)
            anchors.fsync_folder(folder)
            return
        old = anchors.temporary(self.path, "nebulae-old")  # a kill from here on: anchors.sweep puts one back
        os.rename(self.path, old)
        faults.point("anchor.between-renames")
        os.rename(self.written, self.path)
        anchors.fsync_folder(folder)
        anchors.remove(old)


def is_complete(path: str) -> bool:  # an Orbax directory under its final name
    return os.path.isdir(os.path.join(path, "meta")) and os.path.isdir(os.path.join(path, "state"))


def read(path: str, craft) -> tuple[dict, dict[str, Any]]:  # the values as NumPy arrays
    path = os.path.abspath(path)  # Orbax takes absolute paths only
    if not os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a file, not a JAX anchor (JAX anchors are Orbax directories; '.pth' files come from the "
            "torch engine — move weights between engines with a '.h5' file). It was not read; nothing was unpickled."
        )
    if not is_complete(path):
        raise ValueError(f"{path!r} is not a (complete) Nebulae anchor: it lacks the Orbax items 'meta' and 'state'")
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        meta = checkpointer.restore(path, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as err:
        raise ValueError(f"{path!r} is not a readable Nebulae anchor ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or "keys" not in meta or "format" not in meta:
        raise ValueError(f"{path!r} is an Orbax checkpoint but not a Nebulae anchor (no Nebulae metadata)")
    keys = meta.pop("keys")
    target = _nest({k: jax.ShapeDtypeStruct(tuple(e["shape"]), np.dtype(e["dtype"])) for k, e in keys.items()})
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    try:
        state = checkpointer.restore(
            path, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(item=target, restore_args=restore_args))
        )["state"]
    except Exception as err:  # tensorstore's OUT_OF_RANGE for a cut-short file, a garbled chunk, ...
        raise anchors.unreadable(path, err) from None
    flat = _flatten(state)
    anchors.verify(path, {k: e["crc32"] for k, e in keys.items() if "crc32" in e}, flat.items())
    if int(meta.get("format", 0)) < 2:
        flat = _layout.from_format_1(flat, shapes(craft))
    meta["key_impls"] = {k: e["key_impl"] for k, e in keys.items() if "key_impl" in e}
    return meta, flat


def shapes(craft) -> dict[str, tuple]:
    out = {}  # PRNG keys as their key data
    for key, var in _variables(craft).items():
        value = var.get_raw_value()
        out[key] = tuple(np.shape(jax.random.key_data(value) if _is_key(value) else value))
    return out


def apply(craft, state: dict[str, Any], meta: dict, restore_rng: bool) -> None:
    # the random streams are Variables of the craft, restored with the rest (`restore_rng` has no extra effect)
    own = _variables(craft)
    for key, value in state.items():
        var = own[key]
        current = var.get_raw_value()
        if _is_key(current):
            data = jax.device_put(np.asarray(value, np.uint32), _placement(current))
            var.set_raw_value(jax.random.wrap_key_data(data, impl=meta.get("key_impls", {}).get(key)))
        else:
            var.set_raw_value(jax.device_put(np.asarray(value, dtype=current.dtype), _placement(current)))


def _placement(current):
    return current.sharding if isinstance(current, jax.Array) else _tensor.device()


def select_devices(kind: str, indices: Sequence[int]) -> list:
    # before JAX initialises: 'CPU' keeps JAX off the GPUs (jax_platforms='cpu'); 'GPU' also sets
    # XLA_PYTHON_CLIENT_PREALLOCATE=false unless the user set an XLA_PYTHON_CLIENT_* memory variable
    from jax._src import xla_bridge

    initialised = xla_bridge.backends_are_initialized()
    if kind == "CPU":
        if not initialised:
            jax.config.update("jax_platforms", "cpu")
        return jax.devices("cpu")
    wanted = restrict_gpus(indices, initialised, "JAX", "the first array, jax.devices() call or model")
    if not initialised and not any(v in os.environ for v in _MEMORY_VARS):
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    try:
        gpus = jax.devices("gpu")
    except RuntimeError as err:
        why = "has no GPU backend: install a CUDA build (pip install 'nebulae[cuda12]'), or the driver is not usable"
        why += f" ({err})"
        raise no_gpu(wanted, f"JAX {jax.__version__}", why) from None
    check_gpu_count(indices, len(gpus), "JAX")
    return gpus


def place(craft, device) -> None:  # every Variable: parameters, optimizer and EMA state, RNG streams
    for _, var in nnx.iter_graph(craft):
        if isinstance(var, nnx.Variable) and isinstance(var.get_raw_value(), jax.Array):
            var.set_raw_value(jax.device_put(var.get_raw_value(), device))
    _tensor.set_device(device)

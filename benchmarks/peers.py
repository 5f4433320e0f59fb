"""Keras 3 peers of the train-step suite (``bench --peers keras``): its workloads as Keras users write them.

Contenders (each in its own worker process; ``KERAS_BACKEND`` is set in the worker's environment before
keras is imported, see `ENV`):
- ``keras-torch-tob`` / ``keras-jax-tob``: ``model.train_on_batch(x, y)`` once per step. It returns the
  loss as a Python float, so every step ends with a device sync (as it does for a Keras user).
- ``keras-torch-fit`` / ``keras-jax-fit``: ``model.fit(data, epochs=1, verbose=0)`` where ``data`` is a
  ``keras.utils.PyDataset`` (one worker thread, no multiprocessing: Keras' default) whose S items are the
  same batch. The harness calls ``step()`` S times then ``sync()`` once per repetition: here ``step()``
  only queues one batch and ``sync()`` runs one ``fit`` epoch over the queued batches, so a repetition of
  S steps is one epoch of S steps, and its per-epoch set-up (epoch iterator, callbacks, and on JAX the
  state hand-over into and out of the jitted loop) is inside the timing, spread over S steps.
Both modes feed the same fixed batch (`train_step.make_batch`), converted once to the backend's tensors
(``keras.ops.convert_to_tensor``), like the other contenders' device-resident batch: the loader suite
measures data pipelines, this one training steps.

Models (``data_format="channels_first"`` everywhere, so the NCHW batch is used as is, the layout of
every other contender): the MLP 784-512-512-10; the CNN of `train_step` (conv3x3 pad 1 + ReLU + 2x2
max-pool twice, flatten, dense + ReLU, dense); ResNet-18 and ResNet-50 v1.5 in the layout of
`benchmarks.resnet` (conv7x7/2 no bias + BN + ReLU + max-pool 3x3/2 pad 1; basic blocks or bottlenecks
of 64/128/256/512 channels with a 1x1 conv + BN shortcut where the shape changes; global average
pooling; dense). Under ``precision`` bf16 the global policy is ``mixed_bfloat16`` (float32 variables).
Keras' ``padding="same"`` pads a stride-2
layer asymmetrically (0 before, 1 after), so the stride-2 convolutions and the stem's max-pool get an
explicit ``ZeroPadding2D`` and ``padding="valid"`` instead (as ``keras.applications`` does): the
torchvision padding exactly (zero padding before the max-pool equals -inf padding: its input is a ReLU
output). BatchNormalization uses torch's constants (momentum 0.9 in Keras terms, epsilon 1e-5), in
training mode as both modes run it. Training: ``model.compile(optimizer=keras.optimizers.Adam(1e-3),
loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))``, no metrics, every other argument
default: ``jit_compile="auto"``, which resolves to XLA (``jax.jit``) on the JAX backend and to eager
execution on the torch backend (Keras does not turn on ``torch.compile`` unless asked), and
``steps_per_execution=1``.

`info()` reports the model's trainable parameter count (``nparams``); the suite compares it with
nebulae's (`nebulae.astro.hangar.nparams` of the same workload) and fails the row when they differ.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

NAMES = ("keras-torch-tob", "keras-torch-fit", "keras-jax-tob", "keras-jax-fit")
BACKEND = {name: name.split("-")[1] for name in NAMES}  # the KERAS_BACKEND of each contender
ENV = {name: {"KERAS_BACKEND": BACKEND[name]} for name in NAMES}
ENGINE = {name: "pytorch" if BACKEND[name] == "torch" else "jax" for name in NAMES}
PACKAGES = {"keras": "keras"}  # the package each `--peers` choice imports
MISSING = "--peers {peer} needs {package}: pip install 'nebulae[bench]'"  # the one line printed when it is missing


def missing(peers: Sequence[str]) -> list[str]:
    """The `--peers` choices among `peers` whose package is not installed (they are skipped, the rest runs).

    Args:
        peers: choices of ``--peers`` (keys of `PACKAGES`).
    """
    return [p for p in peers if importlib.util.find_spec(PACKAGES[p]) is None]


def keras_model(cfg: dict):
    """The Keras model of workload `cfg` (see `benchmarks.train_step.workload_config`), built on its input."""
    import keras
    from keras import layers

    fmt = "channels_first"
    keras.utils.set_random_seed(0)

    def conv(filters: int, k: int, stride: int = 1, bias: bool = True) -> list:
        if stride == 1:
            return [layers.Conv2D(filters, k, padding="same", use_bias=bias, data_format=fmt)]
        pad = layers.ZeroPadding2D(k // 2, data_format=fmt)
        return [pad, layers.Conv2D(filters, k, stride, padding="valid", use_bias=bias, data_format=fmt)]

    def bn():
        return layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5)

    def seq(x, ops: list):
        for op in ops:
            x = op(x)
        return x

    if cfg["kind"] == "mlp":
        d = cfg["dims"]
        inputs = keras.Input((d[0],))
        x = layers.Dense(d[1], activation="relu")(inputs)
        x = layers.Dense(d[2], activation="relu")(x)
        return keras.Model(inputs, layers.Dense(d[3])(x))
    inputs = keras.Input(cfg["image"])
    if cfg["kind"] == "cnn":
        x = inputs
        for chans in cfg["chans"]:
            x = layers.ReLU()(seq(x, conv(chans, 3, cfg["stride"])))
            if cfg["pool"] == "max":
                x = layers.MaxPooling2D(2, data_format=fmt)(x)
        x = layers.Flatten(data_format=fmt)(x)
        x = layers.Dense(cfg["hidden"], activation="relu")(x)
        return keras.Model(inputs, layers.Dense(cfg["classes"])(x))

    from .resnet import EXPANSION, blocks_of

    x = layers.ReLU()(bn()(seq(inputs, conv(64, 7, 2, bias=False))))
    x = layers.MaxPooling2D(3, 2, data_format=fmt)(layers.ZeroPadding2D(1, data_format=fmt)(x))
    for kind, cin, width, s in blocks_of(cfg["depth"]):
        cout = width * EXPANSION[kind]
        if kind == "basic":
            y = layers.ReLU()(bn()(seq(x, conv(width, 3, s, bias=False))))
            y = bn()(seq(y, conv(width, 3, bias=False)))
        else:  # bottleneck: 1x1 reduce, 3x3 with the stride (v1.5), 1x1 expand
            y = layers.ReLU()(bn()(seq(x, conv(width, 1, bias=False))))
            y = layers.ReLU()(bn()(seq(y, conv(width, 3, s, bias=False))))
            y = bn()(seq(y, conv(cout, 1, bias=False)))
        if s != 1 or cin != cout:
            x = bn()(layers.Conv2D(cout, 1, s, use_bias=False, data_format=fmt)(x))
        x = layers.ReLU()(layers.Add()([y, x]))
    x = layers.GlobalAveragePooling2D(data_format=fmt)(x)
    return keras.Model(inputs, layers.Dense(cfg["classes"])(x))


def trainable_params(model) -> int:
    """The number of trainable parameters of a Keras model (BatchNormalization's moving statistics excluded)."""
    import math

    return sum(math.prod(v.shape) for v in model.trainable_weights)


def build_keras(contender: str, cfg: dict):
    """The Keras contender `contender` (one of `NAMES`) on workload `cfg`; returns (step, sync, info).

    Args:
        contender: ``keras-<backend>-tob`` (``train_on_batch`` per step) or ``keras-<backend>-fit``
            (one ``fit`` epoch per repetition); the backend must be the worker's ``KERAS_BACKEND``.
        cfg: the workload, from `benchmarks.train_step.workload_config`.
    """
    import keras

    from .train_step import make_batch

    wanted = BACKEND[contender]
    if keras.backend.backend() != wanted:
        raise RuntimeError(
            f"{contender} needs KERAS_BACKEND={wanted} set before keras is imported; "
            f"this process has {keras.backend.backend()!r} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r})"
        )
    # mixed bf16: float32 variables, bf16 compute (the policy applies to the layers built after it is set)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if cfg.get("precision") == "bf16" else "float32")
    model = keras_model(cfg)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = (keras.ops.convert_to_tensor(a) for a in make_batch(cfg))
    nparams = trainable_params(model)

    def info() -> dict:
        return {"nparams": nparams}

    if contender.endswith("-tob"):
        return (lambda: model.train_on_batch(x, y)), float, info

    class Batches(keras.utils.PyDataset):
        """`n` items, each the same batch (x, y)."""

        def __init__(self, n: int):
            super().__init__()
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int):
            return x, y

    queued = [0]

    def step() -> None:
        queued[0] += 1

    def sync(_) -> float:
        n, queued[0] = queued[0], 0
        history = model.fit(Batches(n), epochs=1, verbose=0, shuffle=False)
        return float(history.history["loss"][-1])

    return step, sync, info


def check_params(results: dict[str, dict[str, dict]]) -> list[str]:
    """Check every peer's trainable parameter count against nebulae's on the same workload, in place.

    A peer whose count differs from that of the nebulae contender of its backend (else of any nebulae
    contender that ran the workload) becomes an ``{"error": ...}`` result (a FAILED row); one that matches
    gets a ``params`` note. Returns the error messages.

    Args:
        results: ``{workload: {contender: result}}`` as `benchmarks.train_step.bench` pools them; results
            with an ``nparams`` entry take part.
    """
    errors = []
    for workload, res in results.items():
        counts = {c: r["nparams"] for c, r in res.items() if c.startswith("nebulae-") and "nparams" in r}
        for c in (c for c in NAMES if "nparams" in res.get(c, {})):
            n = res[c]["nparams"]
            ref = f"nebulae-{BACKEND[c]}" if f"nebulae-{BACKEND[c]}" in counts else next(iter(counts), None)
            if ref is None:
                res[c]["params"] = f"{n} trainable params (unchecked: no nebulae contender ran)"
            elif counts[ref] == n:
                res[c]["params"] = f"{n} trainable params, as {ref}"
            else:
                error = f"{c}: {n:,} trainable parameters, {ref} {counts[ref]:,}: not the same {workload} model"
                res[c] = {"error": error}
                errors.append(error)
    return errors

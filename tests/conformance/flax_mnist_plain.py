"""The Flax NNX MNIST tutorial (flax docs_nnx/mnist_tutorial) in plain Flax NNX + optax, on the digits.

CNN, loss_fn, train_step, eval_step and pred_step follow the tutorial (flax 0.12: `nnx.Optimizer(..., wrt=nnx.Param)`,
`optimizer.update(model, grads)`); `train_step` also returns the loss so that each step can be compared.
Images are NHWC in [0, 1] (the tutorial's `/ 255`); `to_nebulae` / `from_nebulae` convert the weights to and
from Nebulae's layout (OIHW kernels, (out, in) dense weights, linear1's inputs in (C, H, W) flatten order).
"""

from __future__ import annotations

from functools import partial

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tests.conformance import digits
from tests.conformance.settings import FLAX_MNIST as CFG

ENGINE = "jax"
FEATURES = (64, 7, 7)  # conv2's output (C, H, W) after two 2x2 poolings of 28x28 images


class CNN(nnx.Module):
    """A simple CNN model."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x):
        x = self.avg_pool(nnx.relu(self.conv1(x)))
        x = self.avg_pool(nnx.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)  # flatten
        x = nnx.relu(self.linear1(x))
        x = self.linear2(x)
        return x


def to_nebulae(model: CNN) -> dict[str, np.ndarray]:
    """The model's parameters under Nebulae's names and layouts."""
    c, h, w = FEATURES
    out = {}
    for name in ("conv1", "conv2"):
        layer = getattr(model, name)
        out[f"{name}/weight"] = np.asarray(layer.kernel[...]).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        out[f"{name}/bias"] = np.asarray(layer.bias[...])
    kernel = np.asarray(model.linear1.kernel[...])  # (H*W*C, out), inputs in NHWC flatten order
    out["linear1/weight"] = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
    out["linear1/bias"] = np.asarray(model.linear1.bias[...])
    out["linear2/weight"] = np.asarray(model.linear2.kernel[...]).T
    out["linear2/bias"] = np.asarray(model.linear2.bias[...])
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def from_nebulae(model: CNN, weights: dict[str, np.ndarray]) -> None:
    """Load Nebulae-layout weights into the model (the inverse of `to_nebulae`)."""
    c, h, w = FEATURES
    for name in ("conv1", "conv2"):
        getattr(model, name).kernel[...] = jnp.asarray(weights[f"{name}/weight"].transpose(2, 3, 1, 0))
        getattr(model, name).bias[...] = jnp.asarray(weights[f"{name}/bias"])
    w1 = weights["linear1/weight"].reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(c * h * w, -1)
    model.linear1.kernel[...] = jnp.asarray(w1)
    model.linear1.bias[...] = jnp.asarray(weights["linear1/bias"])
    model.linear2.kernel[...] = jnp.asarray(weights["linear2/weight"].T)
    model.linear2.bias[...] = jnp.asarray(weights["linear2/bias"])


def initial_weights() -> dict[str, np.ndarray]:
    return to_nebulae(CNN(rngs=nnx.Rngs(0)))


def loss_fn(model: CNN, batch):
    logits = model(batch["image"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits=logits, labels=batch["label"]).mean()
    return loss, logits


@nnx.jit
def train_step(model: CNN, optimizer: nnx.Optimizer, metrics: nnx.MultiMetric, batch):
    """Train for a single step."""
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, logits), grads = grad_fn(model, batch)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])  # In-place updates.
    optimizer.update(model, grads)  # In-place updates.
    return loss


@nnx.jit
def eval_step(model: CNN, metrics: nnx.MultiMetric, batch):
    loss, logits = loss_fn(model, batch)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])  # In-place updates.


@nnx.jit
def pred_step(model: CNN, batch):
    logits = model(batch["image"])
    return logits.argmax(axis=1)


def as_batch(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """A tutorial batch: NHWC float images, integer labels."""
    return {"image": np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "label": y.astype(np.int32)}


def run(steps: int, init_weights: dict[str, np.ndarray], lr_scale: float = 1.0) -> dict:
    model = CNN(rngs=nnx.Rngs(0))
    from_nebulae(model, init_weights)
    optimizer = nnx.Optimizer(model, optax.adamw(CFG["lr"] * lr_scale, CFG["momentum"]), wrt=nnx.Param)
    metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average("loss"))
    losses = []
    for x, y in digits.batches(CFG["size"], CFG["batch"], steps):
        losses.append(float(train_step(model, optimizer, metrics, as_batch(x, y))))
    history = {f"train_{k}": np.asarray(v) for k, v in metrics.compute().items()}
    metrics.reset()
    test_batch = as_batch(*digits.held_out(CFG["size"], CFG["test"]))
    eval_step(model, metrics, test_batch)
    history.update({f"test_{k}": np.asarray(v) for k, v in metrics.compute().items()})
    model.eval()  # Switch to evaluation mode.
    history["pred"] = np.asarray(pred_step(model, test_batch))
    return {"losses": {"train": np.array(losses)}, "weights": to_nebulae(model), "eval": history}

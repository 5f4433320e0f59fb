"""The Flax NNX MNIST tutorial written once with Nebulae dock crafts; runs unchanged on both engines.

Port notes: Nebulae is NCHW / OIHW (PyTorch's convention), so the images are fed NCHW and the tutorial's
weights are converted once (`flax_mnist_plain.to_nebulae`); nnx.Conv's default padding='SAME' is
`dock.autoPad`; optax.adamw's default weight_decay=1e-4 is given explicitly (Nebulae's AdamW defaults to
wd=0); the tutorial's MultiMetric (Accuracy, Average('loss')) is the mean of the per-step `AccCls` and loss.
"""

from __future__ import annotations

import numpy as np

from nebulae.astro import dock
from tests.conformance import digits
from tests.conformance.settings import FLAX_MNIST as CFG

SAME = dock.autoPad(None, (3, 3))


class CNN(dock.Craft):
    """A simple CNN model."""

    def __init__(self, scope: str = "CNN"):
        super().__init__(scope)
        self.conv1 = dock.Conv(1, 32, (3, 3), padding=SAME)
        self.conv2 = dock.Conv(32, 64, (3, 3), padding=SAME)
        self.avg_pool = dock.AvgPool((2, 2), 2)
        self.linear1 = dock.Dense(3136, 256)
        self.linear2 = dock.Dense(256, 10)
        self.relu, self.reshape = dock.Relu(), dock.Reshape()

    def run(self, x):
        x = self.avg_pool(self.relu(self.conv1(x)))
        x = self.avg_pool(self.relu(self.conv2(x)))
        x = self.reshape(x, (x.shape[0], -1))  # flatten
        x = self.relu(self.linear1(x))
        return self.linear2(x)


class Train(dock.Craft):
    def __init__(self, model: CNN, scope: str = "TRAIN"):
        super().__init__(scope)
        self.model, self.loss, self.accuracy = model, dock.SftmXE(), dock.AccCls()
        self.optz = dock.AdamW(model, lr=CFG["lr"], mmnt1=CFG["momentum"], wd=CFG["wd"])

    def run(self, image, label):
        with dock.Rudder() as rd:
            self.model.gear(rd)
            logits = self.model(image)
            loss = self.loss(logits, label)
            self.optz(loss)
        return loss, self.accuracy(logits, label)


class Eval(dock.Craft):
    def __init__(self, model: CNN, scope: str = "EVAL"):
        super().__init__(scope)
        self.model, self.loss, self.accuracy, self.argmax = model, dock.SftmXE(), dock.AccCls(), dock.Argmax()

    def run(self, image, label):
        logits = self.model(image)
        return self.loss(logits, label), self.accuracy(logits, label), self.argmax(logits, 1)


def run(steps: int, init_weights: dict[str, np.ndarray]) -> dict:
    model = CNN()
    model.import_weights(init_weights)
    train, evaluate = Train(model), Eval(model)
    losses, accuracies = [], []
    for x, y in digits.batches(CFG["size"], CFG["batch"], steps):
        loss, accuracy = train(dock.coat(x), dock.coat(y))
        losses.append(float(dock.shell(loss)))
        accuracies.append(float(dock.shell(accuracy)))
    x, y = digits.held_out(CFG["size"], CFG["test"])
    with dock.Nozzle():
        test_loss, test_accuracy, pred = (dock.shell(v) for v in evaluate(dock.coat(x), dock.coat(y)))
    history = {"train_loss": np.mean(losses), "train_accuracy": np.mean(accuracies)}
    history.update({"test_loss": test_loss, "test_accuracy": test_accuracy, "pred": pred})
    return {"losses": {"train": np.array(losses)}, "weights": model.export_weights(), "eval": history}

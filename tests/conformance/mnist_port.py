"""pytorch/examples mnist/main.py written once with Nebulae dock crafts; runs unchanged on both engines.

Port notes: the net ends in `LogSoftmax(1)` and the losses are `NLL()` / `NLL(reduction='sum')`, as the
example's log_softmax + nll_loss; `torch.flatten(x, 1)` is `Flatten(1)`; Adadelta(lr=1.0) + StepLR as the
example. The initial weights are imported, so both scripts start from the same draw (`TorchUnif` gives
torch's distribution, not torch's random numbers).
"""

from __future__ import annotations

import numpy as np

from nebulae.astro import dock
from tests.conformance import digits
from tests.conformance.settings import MNIST


class Net(dock.Craft):
    def __init__(self, p_drop=(0.25, 0.5), scope: str = "NET"):
        super().__init__(scope)
        self.conv1 = dock.Conv(1, 32, 3, 1)
        self.conv2 = dock.Conv(32, 64, 3, 1)
        self.dropout1 = dock.Dropout(p_drop[0])
        self.dropout2 = dock.Dropout(p_drop[1])
        self.fc1 = dock.Dense(9216, 128)
        self.fc2 = dock.Dense(128, 10)
        self.relu, self.pool, self.flatten = dock.Relu(), dock.MaxPool((2, 2), 2), dock.Flatten(1)
        self.log_softmax = dock.LogSoftmax(1)

    def run(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.pool(x)
        x = self.dropout1(x)
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.log_softmax(self.fc2(x))


class Train(dock.Craft):
    def __init__(self, net: Net, scope: str = "TRAIN"):
        super().__init__(scope)
        self.net, self.loss = net, dock.NLL()
        # the example: optim.Adadelta(lr=1.0) + StepLR(step_size=1 epoch, gamma=0.7)
        self.optz = dock.Adadelta(net, lr=MNIST["lr"], lr_decay=dock.StepLR(MNIST["epoch_len"], MNIST["gamma"]))

    def run(self, x, z):
        with dock.Rudder() as rd:
            self.net.gear(rd)
            loss = self.loss(self.net(x), z)
            self.optz(loss)
        return loss


class Dev(dock.Craft):
    def __init__(self, net: Net, scope: str = "DEV"):
        super().__init__(scope)
        self.net, self.loss, self.pred = net, dock.NLL(reduction="sum"), dock.Argmax()

    def run(self, x, z):
        output = self.net(x)
        return self.loss(output, z) / x.shape[0], self.pred(output, 1)  # the example: sum / the set size


def run(steps: int, init_weights: dict[str, np.ndarray]) -> dict:
    cfg = MNIST
    net = Net(cfg["p_drop"])
    net.import_weights(init_weights)
    train, dev = Train(net), Dev(net)
    losses = [
        dock.shell(train(dock.coat(x), dock.coat(z)))
        for x, z in digits.batches(cfg["size"], cfg["batch"], steps, norm=cfg["norm"])
    ]
    x, z = digits.held_out(cfg["size"], cfg["test"], cfg["norm"])
    with dock.Nozzle():
        test_loss, pred = dev(dock.coat(x), dock.coat(z))
    return {
        "losses": {"train": np.array(losses, np.float64)},
        "weights": net.export_weights(),
        "eval": {"test_loss": dock.shell(test_loss), "correct": np.asarray(float((dock.shell(pred) == z).sum()))},
    }

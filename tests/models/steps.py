"""Model and step crafts written once against a `dock` namespace, for tests on either engine."""

from __future__ import annotations


def mlp(dock, in_chs=12, hidden=16, nclass=5, bn=True, p_drop=0.0):
    """A small MLP (Dense, optional BN and Dropout)."""

    class MLP(dock.Craft):
        def __init__(self):
            super().__init__("MLP")
            self.fc1 = dock.Dense(in_chs, hidden, b_init=dock.Void() if bn else None)
            self.bn = dock.BN(hidden, 1) if bn else None
            self.act = dock.Relu()
            self.drop = dock.Dropout(p_drop) if p_drop else None
            self.fc2 = dock.Dense(hidden, nclass)

        def run(self, x):
            y = self.fc1(x)
            if self.bn is not None:
                y = self.bn(y)
            y = self.act(y)
            if self.drop is not None:
                y = self.drop(y)
            return self.fc2(y)

    return MLP()


def cnn(dock, chs=4, nclass=5):
    """A small CNN with BatchNorm (bias-free convs before BN)."""

    class CNN(dock.Craft):
        def __init__(self):
            super().__init__("CNN")
            self.conv1 = dock.Conv(3, chs, (3, 3), padding=1, b_init=dock.Void())
            self.bn1 = dock.BN(chs, 2)
            self.conv2 = dock.Conv(chs, 2 * chs, (3, 3), stride=2, padding=1, b_init=dock.Void())
            self.bn2 = dock.BN(2 * chs, 2)
            self.act = dock.Relu()
            self.fc = dock.Dense(2 * chs * 4 * 4, nclass)

        def run(self, x):
            y = self.act(self.bn1(self.conv1(x)))
            y = self.act(self.bn2(self.conv2(y)))
            return self.fc(y.reshape(y.shape[0], -1))

    return CNN()


def train_dev(dock, net, optimizer="Adam", ema=None, **opt_args):
    """The DESIGN §4 Train / Dev pair around `net`."""

    class Train(dock.Craft):
        def __init__(self, scope="TRAIN"):
            super().__init__(scope)
            self.net = net
            self.loss = dock.SftmXE()
            self.optz = getattr(dock, optimizer)(net, **opt_args)
            self.ema = dock.EMA(net, ema) if ema else None

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                y = self.net(x)
                loss = self.loss(y, z)
                self.optz(loss)
                if self.ema is not None:
                    self.ema.update()
            return loss

    class Dev(dock.Craft):
        def __init__(self, scope="DEV"):
            super().__init__(scope)
            self.net = net

        def run(self, x):
            return self.net(x)

    return Train(), Dev()


def fit_dense(dock, weight, bias, optimizer="Adam", **opt_args):
    """A Dense layer (`weight` (out, in), `bias`) fitted by `optimizer` to the mean squared error of its targets:
    `fit(x, t)` returns the loss; `fit.layer`, `fit.optz`."""
    layer = dock.Dense(weight.shape[1], weight.shape[0])
    layer.import_weights({"weight": weight, "bias": bias})

    class Fit(dock.Craft):
        def __init__(self):
            super().__init__("FIT")
            self.layer = layer
            self.optz = getattr(dock, optimizer)(layer, **opt_args)

        def run(self, x, t):
            loss = ((self.layer(x) - t) ** 2).mean()
            self.optz(loss)
            return loss

    return Fit()

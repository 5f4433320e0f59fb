"""The brochure's distributed example, as written there (typos fixed), for the Multiverse tests.

usage: python brochure_world.py WORKDIR NWORLD

Differences from the brochure text: `from nebulae.fuel import farm` (a module that never existed)
is gone; `Engine(device=GPU, ngpu=...)` is `Engine(device=CPU, ngpus=...)` (CPU for the test
machine; `ngpus` is the argument's name); the elided parts (dashboard, tanks, layers, steps) are
filled in with the smallest real ones. Rank 0 writes WORKDIR/result.json.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import nebulae as neb
from nebulae.astro import dock
from nebulae.cockpit import CPU, Engine, TimeMachine
from nebulae.fuel import depot

EPOCHS = 2


def launch(mv=None):  # [1]
    mv.init()  # [2]
    work = os.environ["WORLD_DIR"]
    ng = Engine(device=CPU, ngpus=mv.nworld)  # [3]
    tm = TimeMachine(save_path=os.path.join(work, "ckpt"), ckpt_path=os.path.join(work, "ckpt"))

    def prep(item, rng):
        item["image"] = item["image"].astype(np.float32).transpose(2, 0, 1) / 255.0
        return item

    spec = {"image": "vuint8", "label": "int64"}
    data_t = depot.Tank(os.path.join(work, "fuel.hdf5"), spec, batch_size=4, shuffle=True, prep_fn=prep)
    data_v = depot.Tank(os.path.join(work, "fuel.hdf5"), spec, batch_size=4, shuffle=False, prep_fn=prep)

    class Net(dock.Craft):
        def __init__(self, nclass, scope):
            super().__init__(scope)
            self.conv = dock.Conv(3, 4, (3, 3), padding=1)
            self.act = dock.Relu()
            self.fc = dock.Dense(4 * 8 * 8, nclass)
            self.loss = dock.SftmXE()

        def run(self, x, z):
            y = self.act(self.conv(x))
            return self.loss(self.fc(y.reshape(y.shape[0], -1)), z)

    class Train(dock.Craft):
        def __init__(self, net, scope="TRAIN"):
            super().__init__(scope)
            self.net = net
            self.optz = dock.Momentum(net, lr=0.05, mmnt=0.9)

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                loss = self.net(x, z)
                self.optz(loss)
            loss = mv.reduce(loss)  # [4]
            return loss

    class Dev(dock.Craft):
        def __init__(self, net, scope="DEVELOP"):
            super().__init__(scope)
            self.net = net

        def run(self, x, z, idx):
            with dock.Nozzle() as nz:
                self.net.gear(nz)
                loss = self.net(x, z)
            loss = mv.reduce(loss)  # [4]
            return loss

    net = Net(10, "cnn")
    net.gear(ng)
    net, data_t, data_v = mv.sync(net, (data_t, data_v))  # [5]
    train = Train(net)
    dev = Dev(net)

    history = []
    for epoch in range(EPOCHS):
        for mile in range(data_t.MPE):  # noqa: B007 (the brochure's loop)
            batch = data_t.next()
            loss = train(dock.coat(batch["image"]), dock.coat(batch["label"]))
        dev_losses = []
        for mile in range(data_v.MPE):
            batch = data_v.next()
            dev_losses.append(dock.shell(dev(dock.coat(batch["image"]), dock.coat(batch["label"]), mile)))
        history.append({"epoch": epoch, "train": dock.shell(loss), "dev": float(np.mean(dev_losses))})
        tm.drop(train)
    tm.wait()
    if mv.rank == 0:
        result = {
            "history": history,
            "mpe": data_t.MPE,
            "batch": data_t.batch_size,
            "nworld": mv.nworld,
            "engine": neb.Law.CORE,
        }
        with open(os.path.join(work, "result.json"), "w") as f:
            json.dump(result, f)


def make_data(work: str, n: int = 32) -> None:
    """Pack n random 8x8 RGB PNGs with labels into WORKDIR/fuel.hdf5 with fuel.Generator."""
    import cv2

    raw = os.path.join(work, "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(os.path.join(work, "list.csv"), "w") as f:
        f.write("image,label\n")
        for i in range(n):
            cv2.imwrite(os.path.join(raw, f"{i}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            f.write(f"{i}.png,{i % 10}\n")
    fg = neb.fuel.Generator(file_dir=raw, file_list=os.path.join(work, "list.csv"), dtype=["vuint8", "int64"])
    fg.generate(dst_path=os.path.join(work, "fuel.hdf5"), channel=3, height=8, width=8, encode="PNG")


if __name__ == "__main__":
    work, nworld = sys.argv[1], int(sys.argv[2])
    os.environ["WORLD_DIR"] = work
    make_data(work)
    is_distributed = nworld > 1
    # ------------------- Global Setting --------------------- #
    if is_distributed:
        mv = neb.cockpit.Multiverse(launch, nworld)
        mv()  # [6]
    else:
        launch(neb.cockpit.Multiverse(launch, 1))

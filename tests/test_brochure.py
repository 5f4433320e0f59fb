"""The brochure's code snippets (/work/shared/spec/nebulae-brochure.txt) run as documented.

Each snippet below is the brochure's text with only its typos fixed (marked `# fixed:`) and its
example paths ('/home/...') pointed at files made here; the test executes it and checks that it
did what the brochure says. The Multiverse example is tested in tests/test_multiverse.py.
"""

from __future__ import annotations

import csv
import textwrap

import cv2
import numpy as np
import pytest

from tests.conftest import assert_close

GENERATOR_SNIPPET = """
import nebulae as neb
# create a data generator
fg = neb.fuel.Generator(file_dir='/home/file_dir',
                        file_list='file_list.csv',
                        dtype=['vuint8', 'int8'])
# generate compressed data file
fg.generate(dst_path='/home/data/fuel.hdf5',
            channel=3,
            height=224,
            width=224)
"""

MODIFY_SNIPPET = """
fg.modify(height=200, width=200)
"""

MODIFY_CONFIG_SNIPPET = """
config = {'height': 200, 'width': 200}
fg.modify(config=config)
"""

TANK_SNIPPET = """
from nebulae.fuel import depot
# define data-reading functions
def fetcher(data, idx):
  ret = {}
  ret['image'] = data['image'][idx]
  ret['label'] = data['label'][idx].astype('int64')
  return ret

def prep(data):
  # convert to channel-first format
  data['image'] = np.transpose(data['image'], (2, 0, 1)).astype('float32')
  return data

# create a data depot
tk = depot.Tank("/home/dataset.hdf5",
                {'image': 'vuint8', 'label': 'int64'},  # fixed: 'vunit8'
                batch_size=128, shuffle=True,
                fetch_fn=fetcher, prep_fn=prep)
"""

CRAFT_SNIPPET = """
import nebulae  # fixed: missing
from nebulae.astro import dock
import torch
# designate pytorch as core backend
nebulae.Law.CORE = 'pytorch'
# create a network using nebulae
class NetNeb(dock.Craft):
    def __init__(self, nclass, scope='NEB'):
        super(NetNeb, self).__init__(scope)  # fixed: super(Net, self)
        self.flat = dock.Reshape()
        self.fc = dock.Dense(512, nclass)

    def run(self, x):
        x = self.flat(x, (-1, 512))
        y = self.fc(x)
        return y
# you can create a same network using pytorch functions
class NetTorch(dock.Craft):
    def __init__(self, nclass, scope='TORCH'):
        super(NetTorch, self).__init__(scope)  # fixed: super(Net, self)
        self.fc = torch.nn.Linear(512, nclass)

    def run(self, x):
        x = x.view(-1, 512)
        y = self.fc(x)
        return y
"""


def run(snippet: str, paths: dict[str, str] | None = None, namespace: dict | None = None) -> dict:
    """Execute a snippet (example paths replaced by real ones) in `namespace`; return the namespace."""
    text = textwrap.dedent(snippet)
    for old, new in (paths or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    namespace = {"np": np} if namespace is None else namespace
    exec(compile(text, "<brochure>", "exec"), namespace)
    return namespace


def write_images(folder, count: int, size: tuple[int, int]) -> list[tuple[str, int]]:
    """`count` random RGB JPEGs img_1.jpg.. in `folder` and file_list.csv (image,label) listing them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, count + 1):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"img_{i}.jpg"), image)
        rows.append((f"img_{i}.jpg", int(rng.integers(0, 10))))
    with open(folder / "file_list.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "label"])
        out.writerows(rows)
    return rows


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """The brochure's /home/file_dir: a few photos listed in file_list.csv."""
    folder = tmp_path_factory.mktemp("home") / "file_dir"
    return folder, write_images(folder, 6, (30, 40))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The brochure's /home/dataset.hdf5: 256 packed 16x20 images."""
    import nebulae as neb

    home = tmp_path_factory.mktemp("home")
    rows = write_images(home / "raw", 256, (16, 20))
    fg = neb.fuel.Generator(file_dir=str(home / "raw"), file_list="file_list.csv", dtype=["vuint8", "int64"])
    fg.generate(home / "dataset.hdf5", height=16, width=20, workers=0)
    return home / "dataset.hdf5", rows


def packed(path) -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of a packed file, in order."""
    from nebulae.fuel import Tank

    with Tank(str(path), batch_size=1000, shuffle=False, in_same_size=False) as tk:
        batch = tk.next()
    return batch["image"], batch["label"]


@pytest.mark.once
def test_generator_packs_the_file_list(raw, tmp_path):
    folder, rows = raw
    dst = tmp_path / "data" / "fuel.hdf5"
    run(GENERATOR_SNIPPET, {"/home/file_dir": str(folder), "/home/data/fuel.hdf5": str(dst)})
    images, labels = packed(dst)
    assert images.shape == (6, 224, 224, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int8 and labels.tolist() == [label for _, label in rows]


@pytest.mark.once
def test_generator_modify_changes_the_next_file(raw, tmp_path):
    folder, _ = raw
    ns = run(GENERATOR_SNIPPET, {"/home/file_dir": str(folder), "/home/data/fuel.hdf5": str(tmp_path / "a.hdf5")})
    run(MODIFY_SNIPPET, namespace=ns)
    ns["fg"].generate(dst_path=str(tmp_path / "b.hdf5"))
    assert packed(tmp_path / "a.hdf5")[0].shape == (6, 224, 224, 3)
    assert packed(tmp_path / "b.hdf5")[0].shape == (6, 200, 200, 3)


@pytest.mark.once
def test_generator_modify_with_a_config_dict(raw, tmp_path):
    import nebulae as neb

    folder, _ = raw
    fg = neb.fuel.Generator(file_dir=str(folder), file_list="file_list.csv", dtype=["vuint8", "int8"])
    run(MODIFY_CONFIG_SNIPPET, namespace={"fg": fg})
    assert fg.settings["height"] == fg.settings["width"] == 200
    fg.generate(dst_path=str(tmp_path / "c.hdf5"))
    assert packed(tmp_path / "c.hdf5")[0].shape == (6, 200, 200, 3)
    with pytest.raises(ValueError, match="unknown Generator setting 'hieght' \\(did you mean 'height'\\?\\)"):
        fg.modify(config={"hieght": 100})
    # "config: a dictionary containing all parameters", instead of the keywords
    whole = neb.fuel.Generator(config={**fg.settings, "height": 50, "width": 60})
    whole.generate(str(tmp_path / "d.hdf5"))
    assert packed(tmp_path / "d.hdf5")[0].shape == (6, 50, 60, 3)


@pytest.mark.once
def test_tank_next_mpe_and_len(dataset):
    path, rows = dataset
    ns = run(TANK_SNIPPET, {"/home/dataset.hdf5": str(path)})
    tk = ns["tk"]
    try:
        assert len(tk) == 256 and tk.MPE == 2
        batch = tk.next()
        assert batch["image"].shape == (128, 3, 16, 20) and batch["image"].dtype == np.float32
        assert batch["label"].shape == (128,) and batch["label"].dtype == np.int64
        second = tk.next()
        labels = sorted(batch["label"].tolist() + second["label"].tolist())
        assert labels == sorted(label for _, label in rows)  # one epoch serves every sample once
        images, _ = packed(path)
        first = {img.astype(np.float32).transpose(2, 0, 1).tobytes() for img in images}
        assert all(b.tobytes() in first for b in batch["image"])  # channel-first copies of stored images
    finally:
        tk.close()


@pytest.mark.once
def test_tank_with_the_brochure_typo_names_it(dataset):
    from nebulae.fuel import depot

    with pytest.raises(ValueError, match="unknown dtype 'vunit8' \\(did you mean 'vuint8'\\?\\)"):
        depot.Tank(str(dataset[0]), {"image": "vunit8", "label": "int64"}, batch_size=128)


def test_craft_nebulae_and_torch_networks(engine, dock):
    snippet = CRAFT_SNIPPET
    if engine != "pytorch":  # the nebulae half, on this engine (NetTorch needs torch)
        snippet = snippet.replace("import torch\n", "").replace("'pytorch'", f"'{engine}'")
        snippet = snippet.split("# you can create")[0]
    ns = run(snippet)
    x = np.random.default_rng(0).normal(size=(4, 8, 64)).astype(np.float32)
    neb = ns["NetNeb"](10)
    assert neb.scope == "NEB" and sorted(neb.export_weights()) == ["fc/bias", "fc/weight"]
    y = dock.shell(neb(dock.coat(x)))
    w = neb.export_weights()
    assert_close(y, x.reshape(4, 512) @ w["fc/weight"].T + w["fc/bias"], rtol=1e-4, atol=1e-4)
    if engine == "pytorch":
        net = ns["NetTorch"](10)
        assert net.scope == "TORCH" and {k: v.shape for k, v in net.export_weights().items()} == {
            "fc/weight": (10, 512),
            "fc/bias": (10,),
        }
        net.import_weights(w)  # the same network: nebulae's weights load into the torch.nn.Linear
        assert_close(dock.shell(net(dock.coat(x))), y)


def test_engine_and_timemachine(dock, tmp_path):
    from nebulae.cockpit import CPU, Engine, TimeMachine

    class Net(dock.Craft):
        def __init__(self, scope="NET"):
            super().__init__(scope)
            self.fc = dock.Dense(3, 2)

        def run(self, x):
            return self.fc(x)

    ng = Engine("CPU", ngpus=1, least_mem=2048, available_gpus=())
    assert ng.device == CPU
    net = Net()
    net.gear(ng)
    before = net.export_weights()
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path), max_anchors=-1)
    path = tm.drop(net, file="", save_scope=None)
    tm.drop(net, file="net.h5")
    tm.wait()
    net.import_weights({k: v + 1 for k, v in before.items()})
    landing = tm.to(net, file="", ckpt_scope=None, frozen=False)
    assert landing.path == path
    for key, value in net.export_weights().items():
        assert_close(value, before[key], what=key)
    net.import_weights({k: v + 1 for k, v in before.items()})
    tm.to(net, file="net.h5", ckpt_scope="fc", frozen=True)
    for key, value in net.export_weights().items():
        assert_close(value, before[key], what=key)


def test_coat_and_shell(engine, dock):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = dock.coat(x, as_const=True)
    assert not isinstance(t, np.ndarray)
    back = dock.shell(t, as_np=True)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32 and back.tolist() == x.tolist()
    assert dock.shell(dock.coat(2.5)) == 2.5 and isinstance(dock.shell(dock.coat(2.5)), float)
    assert not isinstance(dock.shell(t, as_np=False), np.ndarray)  # stays an engine tensor, off the device
    if engine == "pytorch":
        assert dock.coat(x, as_const=False).requires_grad and not t.requires_grad


def test_autopad_keeps_the_size_at_stride_one(dock):
    autoPad = dock.autoPad
    assert autoPad((32, 32), (3, 3), 1, 1) == [1, 1, 1, 1]
    assert autoPad((8, 8, 8), (3, 5, 7), 1, 1) == [3, 3, 2, 2, 1, 1]  # (left, right, top, bottom, front, back)
    x = np.random.default_rng(0).normal(size=(1, 2, 9, 10)).astype(np.float32)
    for kernel, dilation in (((3, 3), 1), ((4, 2), 1), ((3, 4), 2)):
        conv = dock.Conv(2, 3, kernel, padding=autoPad((9, 10), kernel, 1, dilation), dilation=dilation)
        assert dock.shell(conv(dock.coat(x))).shape == (1, 3, 9, 10), (kernel, dilation)
    assert autoPad((9, 10), (3, 3), 2, 1) == [0, 1, 1, 1]  # stride 2: ceil(n / 2) outputs

"""The vertical slice: Craft, Dense, Relu, coat/shell and path-keyed weights, on both engines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import assert_close, run_python

MLP_SOURCE = """
import json, sys, numpy as np
import nebulae
from nebulae.astro import dock

class MLP(dock.Craft):
    def __init__(self, scope='MLP'):
        super().__init__(scope)
        self.fc1 = dock.Dense(6, 16)
        self.act = dock.Relu()
        self.fc2 = dock.Dense(16, 3)

    def run(self, x):
        return self.fc2(self.act(self.fc1(x)))

weights = {k: np.asarray(v, dtype='float32') for k, v in np.load(sys.argv_weights).items()}
net = MLP()
net.import_weights(weights)
x = np.load(sys.argv_x)
y = dock.shell(net(dock.coat(x)))
print(json.dumps({'engine': nebulae.Law.BOUND, 'y': np.asarray(y).tolist(),
                  'keys': sorted(net.export_weights())}))
"""


@pytest.mark.once
def test_mlp_written_once_matches_across_engines_in_separate_processes(tmp_path):
    rng = np.random.default_rng(1)
    weights = {
        "fc1/weight": rng.normal(size=(16, 6)),
        "fc1/bias": rng.normal(size=16),
        "fc2/weight": rng.normal(size=(3, 16)),
        "fc2/bias": rng.normal(size=3),
    }
    np.savez(tmp_path / "w.npz", **weights)
    np.save(tmp_path / "x.npy", rng.normal(size=(5, 6)).astype("float32"))
    prelude = f"import sys\nsys.argv_weights = {str(tmp_path / 'w.npz')!r}\nsys.argv_x = {str(tmp_path / 'x.npy')!r}\n"
    results = {}
    for engine in ("pytorch", "jax"):
        r = run_python(prelude + MLP_SOURCE, {"NEB_CORE": engine})
        assert r.returncode == 0, r.stderr
        results[engine] = json.loads(r.stdout.strip().splitlines()[-1])
        assert results[engine]["engine"] == engine
    assert results["pytorch"]["keys"] == results["jax"]["keys"] == sorted(weights)
    assert_close(results["pytorch"]["y"], results["jax"]["y"], what="MLP outputs, torch vs jax")
    x = np.load(tmp_path / "x.npy")
    h = np.maximum(x @ weights["fc1/weight"].T + weights["fc1/bias"], 0)
    assert_close(results["jax"]["y"], h @ weights["fc2/weight"].T + weights["fc2/bias"], what="vs NumPy")


@pytest.mark.once
def test_same_seed_gives_same_initial_weights_on_both_engines(both):
    from nebulae.astro import init

    tdock, jdock = both
    init.seed(7)
    a = tdock.Dense(5, 4)
    init.seed(7)
    b = jdock.Dense(5, 4)
    wa, wb = a.export_weights(), b.export_weights()
    assert sorted(wa) == sorted(wb) == ["bias", "weight"]
    for k in wa:
        assert_close(wa[k], wb[k], rtol=0, atol=0, what=k)
    assert wa["weight"].std() > 0 and np.all(wa["bias"] == 0)


def test_dense_matches_torch_reference_and_any_axis(dock, engine):
    net = dock.Dense(3, 5, axis=1)
    w = net.export_weights()
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    y = dock.shell(net(dock.coat(x)))
    expected = np.einsum("bik,oi->bok", x, w["weight"]) + w["bias"][None, :, None]
    assert y.shape == (2, 5, 4)
    assert_close(y, expected)
    if engine == "pytorch":
        import torch

        ref = torch.nn.functional.linear(torch.from_numpy(x).transpose(1, 2), torch.from_numpy(w["weight"]))
        assert_close(y, ref.transpose(1, 2).numpy() + w["bias"][None, :, None])


def test_import_weights_reports_and_strictness(dock):
    net = dock.Dense(3, 2)
    good = net.export_weights()
    with pytest.raises(KeyError, match="missing keys: bias"):
        net.import_weights({"weight": good["weight"]})
    with pytest.raises(KeyError, match=r"shape mismatch at weight: craft has \(2, 3\), given \(3, 2\)"):
        net.import_weights({"weight": good["weight"].T, "bias": good["bias"]})
    report = net.import_weights(
        {"weight": good["weight"] + 1, "bias": good["bias"], "extra": np.zeros(1)}, strict=False
    )
    assert report.unexpected == ["extra"] and not report.missing
    assert_close(net.export_weights()["weight"], good["weight"] + 1)


def test_coat_shell_round_trip(dock):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = dock.coat(x)
    back = dock.shell(t)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    assert_close(back, x)
    assert dock.shell(dock.coat(np.array([3.5]))) == 3.5
    assert isinstance(dock.shell(dock.coat(2)), int)


def test_lists_of_crafts_are_registered(dock):
    class Stack(dock.Craft):
        def __init__(self):
            super().__init__("STACK")
            self.layers = [dock.Dense(2, 2), dock.Dense(2, 2)]

        def run(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    net = Stack()
    assert sorted(net.export_weights()) == ["layers/0/bias", "layers/0/weight", "layers/1/bias", "layers/1/weight"]
    assert len(net.vars()) == 4 and isinstance(net.vars(), list)
    assert dock.shell(net(dock.coat(np.ones((1, 2), np.float32)))).shape == (1, 2)

"""`craft.compile()`: on torch the step's forward runs through torch.compile with the eager step's update rules,
so a compiled step gives the eager step's numbers; on JAX it is a no-op (the step is always one jax.jit), so the
same script runs on both engines.

Inductor builds C++ with the system compiler: each new graph takes tens of seconds on a small CPU, so the models
are tiny, the optimizer variants reuse one graph (the update is eager), and the checks that only need dynamo's
tracing use backend="eager".
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nebulae.astro import init
from tests.conftest import assert_close
from tests.models.steps import cnn, mlp, train_dev

STEPS = 5
OPTIMIZERS = {"Adam": {"lr": 1e-2}, "Momentum": {"lr": 0.05, "mmnt": 0.9}}


def _batches(kind: str, steps: int = STEPS, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (8, 12) if kind == "mlp" else (8, 3, 8, 8)
    distinct = [(rng.normal(size=shape).astype(np.float32), rng.integers(0, 5, size=8)) for _ in range(2)]
    return [distinct[i % 2] for i in range(steps)]  # revisited, so the loss on batch 0 can fall


def _net(dock, kind: str):
    init.seed(3)
    return mlp(dock) if kind == "mlp" else cnn(dock)


def _train(dock, train, kind: str):
    losses = [float(dock.shell(train(dock.coat(x), dock.coat(z)))) for x, z in _batches(kind)]
    return np.array(losses), train.net.export_weights()


def _two_optimizer_step(dock, net, accum: int):
    """fc1 follows the loss plus a penalty on the logits (Momentum), fc2 the loss alone (Adam); BN only its stats."""

    class Two(dock.Craft):
        def __init__(self):
            super().__init__("TWO")
            self.net, self.loss = net, dock.SftmXE()
            self.o1 = dock.Momentum(net, lr=0.05, mmnt=0.9, update_scope="fc1", grad_accum=accum)
            self.o2 = dock.Adam(net, lr=1e-2, update_scope="fc2", grad_accum=accum)

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                y = self.net(x)
                loss = self.loss(y, z)
                self.o1(loss + 0.1 * (y**2).mean())
                self.o2(loss)
            return loss

    return Two()


def _assert_same_run(got, want, what: str) -> None:
    (lg, wg), (lw, ww) = got, want
    np.testing.assert_allclose(lg, lw, rtol=1e-5, atol=1e-5, err_msg=f"{what}: losses")
    assert sorted(wg) == sorted(ww)
    for key in ww:
        assert_close(wg[key], ww[key], rtol=1e-5, atol=1e-5, what=f"{what}: {key} after {STEPS} steps")


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_compiled_step_gives_the_numbers_of_the_same_step_without_compile(dock, engine, kind, optimizer):
    eager, _ = train_dev(dock, _net(dock, kind), optimizer, **OPTIMIZERS[optimizer])
    want = _train(dock, eager, kind)
    compiled, _ = train_dev(dock, _net(dock, kind), optimizer, **OPTIMIZERS[optimizer])
    assert compiled.compile() is compiled
    got = _train(dock, compiled, kind)
    _assert_same_run(got, want, f"{kind}/{optimizer} compiled vs not")
    assert compiled.traces == 1, "one compilation for a fixed-shape loop"
    if engine == "pytorch":
        assert compiled.compile_seconds > 0
        assert eager.traces == 0 and eager.compile_seconds == 0.0
    assert want[0][4] < want[0][0], "the step should train"


@pytest.mark.parametrize("accum", [1, 2])
def test_two_optimizers_in_one_compiled_step_and_grad_accum_match_the_eager_step(dock, accum):
    eager = _two_optimizer_step(dock, _net(dock, "mlp"), accum)
    want = _train(dock, eager, "mlp")
    compiled = _two_optimizer_step(dock, _net(dock, "mlp"), accum).compile()
    got = _train(dock, compiled, "mlp")
    _assert_same_run(got, want, f"two optimizers, grad_accum={accum}, compiled vs not")
    assert compiled.o1.updates == compiled.o2.updates == STEPS // accum
    assert compiled.traces == 1


def test_compile_refuses_an_unknown_option_on_both_engines(dock):
    train, _ = train_dev(dock, _net(dock, "mlp"), "Adam", lr=1e-2)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['fullgrahp'\].*fullgraph"):
        train.compile(fullgrahp=True)


@pytest.mark.once
def test_the_compiled_torch_step_and_the_jax_step_agree(both):
    tdock, jdock = both
    runs = []
    for dock in (tdock, jdock):
        train, _ = train_dev(dock, _net(dock, "mlp"), "Adam", lr=1e-2)
        runs.append(_train(dock, train.compile(), "mlp"))
    _assert_same_run(runs[0], runs[1], "torch compiled vs jax compiled")


# torch only from here (the `once` pass): what torch.compile adds (counting, copies, the Prober path)


@pytest.fixture
def tdock(both):
    return both[0]


@pytest.mark.once
def test_compiles_stay_bounded_and_are_counted_per_craft(tdock):
    train, dev = train_dev(tdock, _net(tdock, "mlp"), "Adam", lr=1e-2)
    train.compile(backend="eager")
    for x, z in _batches("mlp", 3):
        train(tdock.coat(x), tdock.coat(z))
    assert train.traces == 1
    x, z = _batches("mlp", 1)[0]
    for n in (4, 6, 7):  # a new batch size compiles once more, with a dynamic batch dimension
        train(tdock.coat(x[:n]), tdock.coat(z[:n]))
    assert train.traces == 2
    assert dev.traces == 0, "dev shares the net but was not compiled"
    dev.compile(backend="eager")
    with tdock.Nozzle():
        dev(tdock.coat(x))
        dev(tdock.coat(x))
    assert dev.traces == 1 and train.traces == 2


@pytest.mark.once
def test_many_compiled_crafts_each_compile_their_own_step(tdock):
    """dynamo keeps at most 8 compiled variants per code object; every craft gets its own."""
    x, z = _batches("mlp", 1)[0]
    for _ in range(10):
        train, _ = train_dev(tdock, _net(tdock, "mlp"), "Adam", lr=1e-2)
        train.compile(backend="eager")
        train(tdock.coat(x), tdock.coat(z))
        assert train.traces == 1


@pytest.mark.once
def test_a_copy_of_a_compiled_step_runs_its_own_weights(tdock):
    _, dev = train_dev(tdock, _net(tdock, "mlp"), "Adam", lr=1e-2)
    dev.compile(backend="eager")
    x = tdock.coat(_batches("mlp", 1)[0][0])
    with tdock.Nozzle():
        want = tdock.shell(dev(x))
        twin = copy.deepcopy(dev)
        twin.net.import_weights({k: np.zeros_like(v) for k, v in twin.net.export_weights().items()})
        got = tdock.shell(twin(x))
        again = tdock.shell(dev(x))
    assert twin.traces == 1, "the copy compiles its own step"
    np.testing.assert_array_equal(got, np.zeros_like(want), err_msg="the copy ran the original's weights")
    np.testing.assert_array_equal(again, want)


@pytest.mark.once
def test_a_compiled_step_under_a_prober_gives_the_eager_gradients(tdock):
    def probe(compiled: bool):
        net = _net(tdock, "mlp")

        class Loss(tdock.Craft):
            def __init__(self):
                super().__init__("LOSS")
                self.net, self.loss = net, tdock.SftmXE()

            def run(self, x, z):
                return self.loss(self.net(x), z)

        step = Loss().compile(backend="eager") if compiled else Loss()
        x, z = _batches("mlp", 1)[0]
        with tdock.Prober(wrt=(0,)) as pb:
            step(tdock.coat(x), tdock.coat(z))
        return pb.grads, step.traces

    (want, _), (got, traces) = probe(False), probe(True)
    assert traces == 1
    assert_close(tdock.shell(got["inputs"][0]), tdock.shell(want["inputs"][0]), what="d loss / d x")
    for key in want["params"]:
        assert_close(tdock.shell(got["params"][key]), tdock.shell(want["params"][key]), what=f"d loss / d {key}")


def _pooled_cnn(dock):
    class Pooled(dock.Craft):
        def __init__(self):
            super().__init__("POOLED")
            self.conv, self.act, self.pool = dock.Conv(3, 4, (3, 3), padding=1), dock.Relu(), dock.MaxPool((2, 2))
            self.fc = dock.Dense(4 * 4 * 4, 5)

        def run(self, x):
            y = self.pool(self.act(self.conv(x)))
            return self.fc(y.reshape(y.shape[0], -1))

    return Pooled()


@pytest.mark.once
@pytest.mark.parametrize("model", ["mlp", "cnn", "pooled", "resnet18"])
def test_the_benchmark_models_trace_whole_without_graph_breaks_or_warnings(tdock, model):
    """fullgraph=True raises on any graph break in our crafts; dynamo warns on lru_cache calls it traces."""
    import warnings

    net = {
        "mlp": lambda: mlp(tdock),
        "cnn": lambda: cnn(tdock),
        "pooled": lambda: _pooled_cnn(tdock),
        "resnet18": lambda: tdock.Craft.hangar.ResNet(18, nclass=5, in_shape=(3, 8, 8)),
    }[model]()
    train, _ = train_dev(tdock, net, "Adam", lr=1e-2)
    x, z = _batches("cnn" if model != "mlp" else "mlp", 1)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train.compile(backend="eager", fullgraph=True)(tdock.coat(x), tdock.coat(z))
    assert train.traces == 1
    dynamo = [str(w.message) for w in caught if "Dynamo" in str(w.message)]
    assert not dynamo, dynamo

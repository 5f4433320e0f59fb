"""Normalisation crafts (BN, IN, LN, GN, CBN, CIN, SN): torch vs JAX parity and torch.nn references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import parity

pytestmark = pytest.mark.once

RNG = np.random.default_rng(0)


def data(*shape, scale=1.0, shift=0.0):
    return (RNG.normal(size=shape) * scale + shift).astype(np.float32)


def pair(factory, weights=None):
    """The craft built on both engines from one seed; `weights` (a {path: array} update) imported into both."""
    crafts = [parity.build(dock, factory) for dock in parity.DOCKS]
    if weights:
        for craft in crafts:
            w = craft.export_weights()
            w.update(weights)
            craft.import_weights(w)
    return crafts


def call(craft, dock, *args, train=False):
    coated = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in args]
    with dock.Rudder() if train else dock.Nozzle():
        return dock.shell(craft(*coated))


def run_both(crafts, *args, train=False):
    return [call(c, d, *args, train=train) for c, d in zip(crafts, parity.DOCKS)]


def random_affine(shape, names=("weight", "bias")):
    return {names[0]: data(*shape, scale=0.5, shift=1.0), names[1]: data(*shape, scale=0.5)}


def load_torch(module, weights):
    module.load_state_dict({k.replace("/", "."): torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    return module


# --------------------------------------------------------------------------------------------- BN


@pytest.mark.parametrize(
    "dim, shape, ref",
    [
        (1, (6, 3), torch.nn.BatchNorm1d),
        (1, (4, 3, 5), torch.nn.BatchNorm1d),
        (2, (2, 3, 4, 4), torch.nn.BatchNorm2d),
        (3, (2, 3, 2, 3, 3), torch.nn.BatchNorm3d),
    ],
)
def test_bn_train_eval_and_running_statistics_match_torch(dim, shape, ref):
    mmnt = 0.8
    affine = random_affine((3,))
    crafts = pair(lambda d: d.BN(3, dim, mmnt=mmnt), affine)
    bn = load_torch(ref(3, momentum=1 - mmnt), {**affine, **crafts[0].export_weights()})
    for step in range(3):
        x = data(*shape, scale=2.0, shift=step)
        ta, ja = run_both(crafts, x, train=True)
        parity.assert_same(ta, ja, what=f"BN{dim}d train step {step}")
        expected = bn.train()(torch.from_numpy(x)).detach().numpy()
        parity.assert_same(expected, ta, what=f"BN{dim}d train vs torch.nn, step {step}")
    tw, jw = (c.export_weights() for c in crafts)
    parity.assert_same(tw, jw, what="BN statistics after 3 train calls")
    parity.assert_same(tw["running_mean"], bn.running_mean.numpy(), what="running_mean vs torch.nn")
    parity.assert_same(tw["running_var"], bn.running_var.numpy(), what="running_var vs torch.nn")
    assert not np.allclose(tw["running_mean"], 0.0)
    x = data(*shape)
    ta, ja = run_both(crafts, x)
    parity.assert_same(ta, ja, what=f"BN{dim}d eval")
    parity.assert_same(bn.eval()(torch.from_numpy(x)).detach().numpy(), ta, what=f"BN{dim}d eval vs torch.nn")


def test_bn_without_affine_has_only_statistics():
    crafts = pair(lambda d: d.BN(3, 2, resilient=False))
    x = data(2, 3, 3, 3, shift=1.0)
    ta, ja = run_both(crafts, x, train=True)
    parity.assert_same(ta, ja, what="non-affine BN")
    expected = sorted(torch.nn.BatchNorm2d(3, affine=False).state_dict())  # num_batches_tracked, running_*
    assert sorted(crafts[0].export_weights()) == sorted(crafts[1].export_weights()) == expected
    ref = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True, eps=1e-5).numpy()
    parity.assert_same(ref, ta, what="non-affine BN vs F.batch_norm")


# --------------------------------------------------------------------------------------------- IN


@pytest.mark.parametrize(
    "dim, shape, ref",
    [
        (1, (2, 3, 6), torch.nn.InstanceNorm1d),
        (2, (2, 3, 4, 5), torch.nn.InstanceNorm2d),
        (3, (2, 3, 2, 3, 3), torch.nn.InstanceNorm3d),
    ],
)
def test_in_matches_torch_in_both_modes(dim, shape, ref):
    affine = random_affine((3,))
    crafts = pair(lambda d: d.IN(3, dim), affine)
    ref = load_torch(ref(3, affine=True), affine)
    x = data(*shape, scale=3.0, shift=2.0)
    expected = ref(torch.from_numpy(x)).detach().numpy()
    for train in (False, True):
        ta, ja = run_both(crafts, x, train=train)
        parity.assert_same(ta, ja, what=f"IN{dim}d train={train}")
        parity.assert_same(expected, ta, what=f"IN{dim}d vs torch.nn")
    assert sorted(crafts[1].export_weights()) == ["bias", "weight"]


def test_in_rejects_inputs_without_spatial_extent(both):
    for dock in both:
        craft = dock.IN(3, 1)
        with pytest.raises(ValueError, match="more than one spatial element"):
            call(craft, dock, data(2, 3, 1))
        with pytest.raises(ValueError, match="3 channels on axis 1"):
            call(craft, dock, data(2, 4, 5))
        assert dock.IN(3, resilient=False).export_weights() == {}


# --------------------------------------------------------------------------------------------- LN


@pytest.mark.parametrize("norm_shape, shape", [((3, 4, 5), (2, 3, 4, 5)), ((5,), (2, 3, 5)), (5, (4, 5))])
def test_ln_normalises_trailing_dims_in_tensor_order(norm_shape, shape):
    tail = (norm_shape,) if isinstance(norm_shape, int) else norm_shape
    affine = random_affine(tail)
    crafts = pair(lambda d: d.LN(norm_shape), affine)
    x = data(*shape, scale=2.0, shift=1.0)
    for train in (False, True):
        ta, ja = run_both(crafts, x, train=train)
        parity.assert_same(ta, ja, what=f"LN{norm_shape} train={train}")
    ref = load_torch(torch.nn.LayerNorm(tail), affine)
    parity.assert_same(ref(torch.from_numpy(x)).detach().numpy(), ta, what=f"LN{norm_shape} vs torch.nn")
    assert crafts[1].export_weights()["weight"].shape == tail


def test_ln_rejects_a_shape_that_is_not_trailing(both):
    for dock in both:
        with pytest.raises(ValueError, match=r"does not end with norm_shape \(4, 5, 3\)"):
            call(dock.LN((4, 5, 3)), dock, data(2, 3, 4, 5))
        with pytest.raises(ValueError, match="positive sizes"):
            dock.LN((3, 0))


# --------------------------------------------------------------------------------------------- GN


@pytest.mark.parametrize("shape", [(2, 6, 4, 3), (3, 6, 5), (4, 6)])
def test_gn_matches_torch(shape):
    affine = random_affine((6,))
    crafts = pair(lambda d: d.GN(6, 3), affine)
    x = data(*shape, scale=2.0, shift=-1.0)
    for train in (False, True):
        ta, ja = run_both(crafts, x, train=train)
        parity.assert_same(ta, ja, what=f"GN {shape} train={train}")
    ref = load_torch(torch.nn.GroupNorm(3, 6), affine)
    parity.assert_same(ref(torch.from_numpy(x)).detach().numpy(), ta, what=f"GN {shape} vs torch.nn")


def test_gn_rejects_bad_groups_and_channels(both):
    for dock in both:
        with pytest.raises(ValueError, match="must divide into ngroup 4"):
            dock.GN(6, 4)
        with pytest.raises(ValueError, match="6 channels on axis 1"):
            call(dock.GN(6, 2), dock, data(2, 4, 3))


# --------------------------------------------------------------------------------------------- CBN / CIN


def mlp(w, prefix, z):
    h = np.maximum(z @ w[f"{prefix}/fc1/weight"].T + w[f"{prefix}/fc1/bias"], 0.0)
    return h @ w[f"{prefix}/fc2/weight"].T + w[f"{prefix}/fc2/bias"]


def modulated(w, x, z, normalised):
    shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)
    return mlp(w, "gamma", z).reshape(shape) * normalised + mlp(w, "beta", z).reshape(shape)


def test_cbn_matches_batch_norm_modulated_by_the_mlps():
    crafts = pair(lambda d: d.CBN(6, 4, 2, mmnt=0.7))
    w = crafts[0].export_weights()
    assert sorted(w) == sorted(crafts[1].export_weights())
    assert w["gamma/fc1/weight"].shape == (3, 6) and w["beta/fc2/weight"].shape == (4, 3)
    assert "norm/running_mean" in w and "norm/weight" not in w
    bn = torch.nn.BatchNorm2d(4, momentum=0.3, affine=False)
    for step in range(2):
        x, z = data(3, 4, 3, 3, shift=step), data(3, 6)
        ta, ja = run_both(crafts, x, z, train=True)
        parity.assert_same(ta, ja, what=f"CBN train step {step}")
        expected = modulated(w, x, z, bn.train()(torch.from_numpy(x)).numpy())
        parity.assert_same(expected, ta, what=f"CBN train vs BatchNorm2d + MLPs, step {step}")
    tw, jw = (c.export_weights() for c in crafts)
    parity.assert_same(tw, jw, what="CBN state after train calls")
    parity.assert_same(tw["norm/running_var"], bn.running_var.numpy(), what="CBN running_var vs torch.nn")
    x, z = data(3, 4, 3, 3), data(3, 6)
    ta, ja = run_both(crafts, x, z)
    parity.assert_same(ta, ja, what="CBN eval")
    parity.assert_same(modulated(w, x, z, bn.eval()(torch.from_numpy(x)).numpy()), ta, what="CBN eval vs torch")


def test_cin_matches_instance_norm_modulated_by_the_mlps():
    crafts = pair(lambda d: d.CIN(4, 3, 1))
    w = crafts[0].export_weights()
    assert sorted(w) == sorted(crafts[1].export_weights())
    assert not any(k.startswith("norm/") for k in w)
    x, z = data(2, 3, 7, scale=2.0), data(2, 4)
    expected = modulated(w, x, z, torch.nn.InstanceNorm1d(3)(torch.from_numpy(x)).numpy())
    for train in (False, True):
        ta, ja = run_both(crafts, x, z, train=train)
        parity.assert_same(ta, ja, what=f"CIN train={train}")
        parity.assert_same(expected, ta, what="CIN vs InstanceNorm1d + MLPs")


def test_conditional_norms_reject_a_one_wide_condition(both):
    for dock in both:
        for cls in (dock.CBN, dock.CIN):
            with pytest.raises(ValueError, match="in_chs must be at least 2"):
                cls(1, 4)


# --------------------------------------------------------------------------------------------- SN


def torch_spectral(module, craft_weights, niters, pname="weight"):
    """torch.nn.utils.parametrizations.spectral_norm on `module` with the SN craft's weight, u and v."""
    module = torch.nn.utils.parametrizations.spectral_norm(module, pname, n_power_iterations=niters)
    with torch.no_grad():
        for k, v in craft_weights.items():
            if k.startswith("craft/"):
                name = k[len("craft/") :]
                target = getattr(module.parametrizations, name).original if name == pname else getattr(module, name)
                target.copy_(torch.from_numpy(v))
        param = getattr(module.parametrizations, pname)[0]
        param._u.copy_(torch.from_numpy(craft_weights["u"]))
        param._v.copy_(torch.from_numpy(craft_weights["v"]))
    return module, param


@pytest.mark.parametrize(
    "factory, module, shape",
    [
        (lambda d: d.SN(d.Dense(5, 4)), lambda: torch.nn.Linear(5, 4), (3, 5)),
        (lambda d: d.SN(d.Conv(3, 4, (3, 3), padding=1), niters=2), lambda: torch.nn.Conv2d(3, 4, 3, padding=1), None),
    ],
)
def test_sn_power_iteration_and_outputs_match_torch_spectral_norm(factory, module, shape):
    crafts = pair(factory)
    start = crafts[0].export_weights()
    parity.assert_same(start, crafts[1].export_weights(), what="SN initial state (weights, u, v)")
    assert sorted(start) == ["craft/bias", "craft/weight", "u", "v"]
    ref, param = torch_spectral(module(), start, crafts[0].niters)
    shape = shape or (2, 3, 5, 5)
    for step in range(3):
        x = data(*shape)
        ta, ja = run_both(crafts, x, train=True)
        parity.assert_same(ta, ja, what=f"SN train step {step}")
        parity.assert_same(
            ref.train()(torch.from_numpy(x)).detach().numpy(), ta, what=f"SN vs spectral_norm, step {step}"
        )
        tw, jw = (c.export_weights() for c in crafts)
        parity.assert_same(tw, jw, what=f"SN state after train step {step}")
        parity.assert_same(tw["u"], param._u.numpy(), what=f"u vs torch, step {step}")
        parity.assert_same(tw["v"], param._v.numpy(), what=f"v vs torch, step {step}")
    assert not np.allclose(tw["u"], start["u"])
    parity.assert_same(tw["craft/weight"], start["craft/weight"], what="the wrapped weight itself is left unchanged")
    x = data(*shape)
    ta, ja = run_both(crafts, x)
    parity.assert_same(ta, ja, what="SN eval")
    parity.assert_same(ref.eval()(torch.from_numpy(x)).detach().numpy(), ta, what="SN eval vs spectral_norm")
    parity.assert_same(crafts[1].export_weights()["u"], tw["u"], what="eval leaves u alone")


def test_sn_normalised_weight_has_unit_spectral_norm(both):
    for dock in both:
        sn = parity.build(dock, lambda d: d.SN(d.Dense(6, 4), niters=1))
        for _ in range(5):
            call(sn, dock, data(2, 6), train=True)
        with dock.Nozzle():
            w = dock.shell(sn.normalised())
        assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-4)


def test_sn_gradient_flows_through_sigma_on_both_engines(both):
    grads = []
    for dock in both:
        sn = parity.build(dock, lambda d: d.SN(d.Dense(4, 3)))

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.sn = sn

            def run(self, x):
                return (self.sn(x) ** 2).sum()

        probe = Probe()
        with dock.Prober(wrt=(0,)) as pb:
            probe(dock.coat(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)))
        grads.append({k: dock.shell(v) for k, v in pb.grads["params"].items()})
    parity.assert_same(grads[0], grads[1], what="d loss / d params through SN")
    w = parity.build(both[0], lambda d: d.SN(d.Dense(4, 3))).export_weights()
    x = torch.from_numpy(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    weight = torch.from_numpy(w["craft/weight"]).requires_grad_(True)
    sigma = torch.from_numpy(w["u"]) @ (weight @ torch.from_numpy(w["v"]))
    (torch.nn.functional.linear(x, weight / sigma, torch.from_numpy(w["craft/bias"])) ** 2).sum().backward()
    parity.assert_same(weight.grad.numpy(), grads[0]["sn/craft/weight"], what="SN weight gradient vs autograd")


def test_sn_of_a_one_dimensional_weight_normalises_it(both):
    outs = []
    for dock in both:
        sn = parity.build(dock, lambda d: d.SN(d.BN(4, 1)))
        w = sn.export_weights()
        w["craft/weight"] = np.array([3.0, 0.0, 4.0, 0.0], np.float32)
        sn.import_weights(w)
        assert "u" not in w
        outs.append(call(sn, dock, np.ones((3, 4), np.float32)))  # eval: running stats (0, 1) pass x through
    parity.assert_same(outs[0], outs[1], what="SN of a 1-D weight")
    parity.assert_same(outs[0][0], np.array([0.6, 0.0, 0.8, 0.0], np.float32), what="weight / ||weight|| on BN")


def test_sn_reaches_a_recurrent_weight(both):
    x = data(4, 2, 3)
    crafts = pair(lambda d: d.SN(d.LSTM(3, 4), pname="weight_hh_l0"))
    for step in range(2):
        ta, ja = run_both(crafts, x, train=True)
        parity.assert_same(ta, ja, what=f"SN(LSTM, weight_hh_l0) step {step}")
    plain = parity.build(both[0], lambda d: d.LSTM(3, 4))
    assert not np.allclose(call(plain, both[0], x)[0], ta[0]), "the normalised weight must be used"


def test_sn_rejects_crafts_without_the_parameter(both):
    for dock in both:
        with pytest.raises(TypeError, match="no trainable parameter 'kernel'"):
            dock.SN(dock.Dense(3, 2), pname="kernel")
        with pytest.raises(TypeError, match="no trainable parameter 'weight'"):
            dock.SN(dock.Relu())
        with pytest.raises(ValueError, match="niters must be at least 1"):
            dock.SN(dock.Dense(3, 2), niters=0)


def test_sn_trains_identically_inside_a_step(both):
    x, y = data(4, 5), data(4, 3)
    results = []
    for dock in both:

        class Fit(dock.Craft):
            def __init__(self):
                super().__init__("FIT")
                self.net = dock.SN(dock.Dense(5, 3))
                self.loss = dock.MSE()
                self.optz = dock.Momentum(self.net, lr=0.1)

            def run(self, x, y):
                loss = self.loss(self.net(x), y)
                self.optz(loss)
                return loss

        fit = parity.build(dock, lambda d: Fit())
        with dock.Rudder():
            losses = [dock.shell(fit(dock.coat(x), dock.coat(y))) for _ in range(4)]
        results.append((losses, fit.net.export_weights()))
    parity.assert_same(results[0], results[1], what="SN training trajectory")
    assert results[0][0][-1] < results[0][0][0]

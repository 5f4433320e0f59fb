"""GRU and BiGRU against torch.nn.GRU on both engines: torch's weights copied in, outputs, final states, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import parity

pytestmark = pytest.mark.once

RNG = np.random.default_rng(5)


def data(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def torch_gru(nlayers, bidir, seed=1):
    torch.manual_seed(seed)
    return torch.nn.GRU(3, 4, num_layers=nlayers, bidirectional=bidir)


def copied(dock, ref, name, nlayers):
    """Our craft on `dock` with `ref`'s weights imported (strict: same names and shapes as torch.nn.GRU)."""
    craft = getattr(dock, name)(3, 4, nlayers=nlayers)
    craft.import_weights({k.replace(".", "/"): v.detach().numpy() for k, v in ref.state_dict().items()})
    return craft


@pytest.mark.parametrize("name, bidir", [("GRU", False), ("BiGRU", True)])
@pytest.mark.parametrize("nlayers", [1, 2])
@pytest.mark.parametrize("given_state", [False, True])
def test_gru_matches_torch_nn_gru_with_copied_weights(both, name, bidir, nlayers, given_state):
    ndir = 2 if bidir else 1
    x, h0 = data(6, 2, 3), data(nlayers * ndir, 2, 4)
    ref = torch_gru(nlayers, bidir)
    y, h = ref(torch.from_numpy(x), torch.from_numpy(h0) if given_state else None)
    expected = (y.detach().numpy(), h.detach().numpy())
    for dock in both:
        craft = copied(dock, ref, name, nlayers)
        args = (x, h0) if given_state else (x,)
        with dock.Nozzle():
            out = dock.shell(craft(*(dock.coat(a) for a in args)))
        parity.assert_same(expected, out, what=f"{dock.__name__} {name} (nlayers {nlayers}, h0 {given_state})")
        assert out[0].shape == (6, 2, 4 * ndir) and out[1].shape == (nlayers * ndir, 2, 4)


def test_gru_gradients_match_torch_autograd(both):
    x, h0, wy, wh = data(5, 2, 3), data(4, 2, 4), data(5, 2, 8), data(4, 2, 4)
    ref = torch_gru(2, True)
    tx, th = (torch.from_numpy(a).requires_grad_(True) for a in (x, h0))
    y, h = ref(tx, th)
    ((y * torch.from_numpy(wy)).sum() + (h * torch.from_numpy(wh)).sum()).backward()
    expected = {"inputs": [tx.grad.numpy(), th.grad.numpy()]}
    expected["params"] = {f"gru/{k}": p.grad.numpy() for k, p in ref.named_parameters()}
    for dock in both:
        gru = copied(dock, ref, "BiGRU", 2)

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.gru = gru

            def run(self, x, h0, wy, wh):
                y, h = self.gru(x, h0)
                return (y * wy).sum() + (h * wh).sum()

        with dock.Prober(wrt=(0, 1)) as pb:
            Probe()(*(dock.coat(a) for a in (x, h0, wy, wh)))
        got = dock.shell({"inputs": [pb.grads["inputs"][i] for i in (0, 1)], "params": dict(pb.grads["params"])})
        parity.assert_same(expected, got, rtol=1e-4, atol=1e-5, what=f"{dock.__name__} BiGRU gradients")


def test_gru_parameters_follow_torch_names_shapes_and_init(both):
    ref = dict(torch.nn.GRU(3, 5, num_layers=2, bidirectional=True).named_parameters())
    for dock in both:
        w = parity.build(dock, lambda d: d.BiGRU(3, 5, nlayers=2)).export_weights()
        assert sorted(w) == sorted(ref) and all(w[k].shape == tuple(ref[k].shape) for k in w), dock.__name__
        bound = 1 / np.sqrt(5)
        assert all(np.abs(v).max() <= bound for v in w.values()) and w["weight_hh_l1_reverse"].std() > bound / 3
    t, j = (parity.build(dock, lambda d: d.GRU(3, 5)).export_weights() for dock in both)
    parity.assert_same(t, j, what="GRU initial weights on both engines")


def test_unbatched_gru_matches_torch(both):
    x, h0 = data(6, 3), data(1, 4)
    ref = torch_gru(1, False)
    y, h = ref(torch.from_numpy(x), torch.from_numpy(h0))
    for dock in both:
        with dock.Nozzle():
            out = dock.shell(copied(dock, ref, "GRU", 1)(dock.coat(x), dock.coat(h0)))
        parity.assert_same((y.detach().numpy(), h.detach().numpy()), out, what=f"{dock.__name__} unbatched GRU")
        assert out[0].shape == (6, 4) and out[1].shape == (1, 4)


def test_gru_rejects_bad_input_with_the_same_message(both):
    for dock in both:
        gru = dock.GRU(3, 4, nlayers=2)
        with dock.Nozzle():
            with pytest.raises(ValueError, match=r"GRU: expected input \(T, N, 3\) or \(T, 3\), got \(5, 2, 4\)"):
                gru(dock.coat(data(5, 2, 4)))
            with pytest.raises(ValueError, match=r"GRU: initial state must have shape \(2, 2, 4\), got \(1, 2, 4\)"):
                gru(dock.coat(data(5, 2, 3)), dock.coat(data(1, 2, 4)))
            with pytest.raises(TypeError, match="GRU needs a floating-point input, got dtype int32"):
                gru(dock.coat(np.ones((5, 2, 3), np.int32)))
        with pytest.raises(ValueError, match="BiGRU: in_chs, hid_chs and nlayers must be positive"):
            dock.BiGRU(3, 4, nlayers=0)

"""Sequence crafts (RNN, BiRNN, LSTM, BiLSTM, MHAttn): torch vs JAX parity and torch.nn references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import parity

pytestmark = pytest.mark.once

RNG = np.random.default_rng(3)


def data(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def torch_module(module, weights):
    module.load_state_dict({k.replace("/", "."): torch.from_numpy(v) for k, v in weights.items()})
    return module.eval()


def numpy_of(out):
    if isinstance(out, (tuple, list)):
        return type(out)(numpy_of(o) for o in out)
    return out.detach().numpy()


# --------------------------------------------------------------------------------------------- RNN / LSTM

RECURRENT = [
    ("RNN", False, False),
    ("BiRNN", False, True),
    ("LSTM", True, False),
    ("BiLSTM", True, True),
]


@pytest.mark.parametrize("name, lstm, bidir", RECURRENT)
@pytest.mark.parametrize("given_state", [False, True])
def test_recurrent_matches_torch_nn_with_two_layers(name, lstm, bidir, given_state):
    ndir = 2 if bidir else 1
    x = data(5, 2, 3)
    states = [data(2 * ndir, 2, 4) for _ in range(2 if lstm else 1)] if given_state else []
    ta, ja, tc, jc = parity.outputs(lambda d: getattr(d, name)(3, 4, nlayers=2), x, *states)
    parity.assert_same(ta, ja, what=f"{name} outputs (given state: {given_state})")
    weights = tc.export_weights()
    parity.assert_same(weights, jc.export_weights(), what=f"{name} initial weights")
    ref = torch_module((torch.nn.LSTM if lstm else torch.nn.RNN)(3, 4, num_layers=2, bidirectional=bidir), weights)
    assert sorted(weights) == sorted(k for k, _ in ref.named_parameters())
    t_states = [torch.from_numpy(s) for s in states]
    hx = (tuple(t_states) if lstm else t_states[0]) if given_state else None
    y, hidden = ref(torch.from_numpy(x), hx)
    expected = (y, *hidden) if lstm else (y, hidden)
    parity.assert_same(numpy_of(expected), ta, what=f"{name} vs torch.nn")
    assert ta[0].shape == (5, 2, 4 * ndir) and ta[1].shape == (2 * ndir, 2, 4)


def test_recurrent_parameters_follow_torch_names_shapes_and_init(both):
    for dock in both:
        w = dock.BiLSTM(3, 5, nlayers=2).export_weights()
        ref = dict(torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True).named_parameters())
        assert sorted(w) == sorted(ref)
        for k, v in w.items():
            assert v.shape == tuple(ref[k].shape), k
        bound = 1 / np.sqrt(5)
        assert all(np.abs(v).max() <= bound for v in w.values()) and w["weight_ih_l1_reverse"].std() > bound / 3


def test_lstm_with_only_h_starts_c_at_zero():
    x, h = data(4, 2, 3), data(1, 2, 4)
    ta, ja, tc, _ = parity.outputs(lambda d: d.LSTM(3, 4), x, h)
    parity.assert_same(ta, ja, what="LSTM with h only")
    ref = torch_module(torch.nn.LSTM(3, 4), tc.export_weights())
    y, (hn, cn) = ref(torch.from_numpy(x), (torch.from_numpy(h), torch.zeros(1, 2, 4)))
    parity.assert_same(numpy_of((y, hn, cn)), ta, what="LSTM with h only vs torch.nn (c0 = 0)")


def test_unbatched_sequences_match_torch():
    x = data(6, 3)
    ta, ja, tc, _ = parity.outputs(lambda d: d.BiRNN(3, 2), x)
    parity.assert_same(ta, ja, what="unbatched BiRNN")
    ref = torch_module(torch.nn.RNN(3, 2, bidirectional=True), tc.export_weights())
    parity.assert_same(numpy_of(ref(torch.from_numpy(x))), ta, what="unbatched BiRNN vs torch.nn")
    assert ta[0].shape == (6, 4) and ta[1].shape == (2, 2)


def test_recurrent_rejects_bad_shapes(both):
    for dock in both:
        lstm = dock.LSTM(3, 4, nlayers=2)
        with dock.Nozzle():
            with pytest.raises(ValueError, match=r"expected input \(T, N, 3\)"):
                lstm(dock.coat(data(5, 2, 4)))
            with pytest.raises(ValueError, match=r"initial state must have shape \(2, 2, 4\)"):
                lstm(dock.coat(data(5, 2, 3)), dock.coat(data(1, 2, 4)))
        with pytest.raises(ValueError, match="must be positive"):
            dock.RNN(3, 0)


# --------------------------------------------------------------------------------------------- MHAttn


def mha_reference(craft, q_chs, k_chs, v_chs, nheads):
    ref = torch.nn.MultiheadAttention(q_chs, nheads, kdim=k_chs, vdim=v_chs)
    return torch_module(ref, craft.export_weights())


CASES = {
    "self, no mask": dict(kv=(8, 8), masks=()),
    "cross, pad mask": dict(kv=(6, 5), masks=("pad",)),
    "cross, bool attn mask": dict(kv=(6, 5), masks=(None, "bool")),
    "self, both masks": dict(kv=(8, 8), masks=("pad", "bool")),
    "cross, float attn mask": dict(kv=(6, 5), masks=(None, "float")),
    "self, per-head 3-D mask": dict(kv=(8, 8), masks=(None, "3d")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mhattn_matches_torch_multihead_attention(case):
    k_chs, v_chs = CASES[case]["kv"]
    L, N, H = 3, 2, 2
    q = data(L, N, 8)
    k, v = (q, q) if case.startswith("self") else (data(4, N, k_chs), data(4, N, v_chs))
    S = k.shape[0]
    masks = {
        "pad": np.array([[False] * (S - 1) + [True], [False] * S]),
        "bool": np.triu(np.ones((L, S), bool), 1),
        "float": np.where(np.triu(np.ones((L, S), bool), 1), -2.0, 0.5).astype(np.float32),
        "3d": RNG.random((N * H, L, S)) < 0.3,
        None: None,
    }
    extra = [masks[m] for m in CASES[case]["masks"]]
    if "3d" in CASES[case]["masks"]:
        extra[-1][:, :, 0] = False  # keep one allowed key per query
    ta, ja, tc, _ = parity.outputs(lambda d: d.MHAttn(H, 8, k_chs, v_chs), q, k, v, *extra)
    parity.assert_same(ta, ja, what=f"MHAttn ({case})")
    ref = mha_reference(tc, 8, k_chs, v_chs, H)
    t_masks = [None if m is None else torch.from_numpy(m) for m in extra] + [None] * (2 - len(extra))
    expected = ref(*(torch.from_numpy(a) for a in (q, k, v)), key_padding_mask=t_masks[0], attn_mask=t_masks[1])
    parity.assert_same(numpy_of(expected), ta, what=f"MHAttn ({case}) vs torch.nn")
    assert ta[0].shape == (L, N, 8) and ta[1].shape == (N, L, S)
    if extra and extra[0] is not None:
        assert np.all(ta[1][0, :, -1] == 0), "padded keys get no attention"


def test_mhattn_parameter_names_follow_torch(both):
    for dock in both:
        packed = dock.MHAttn(2, 8, 8, 8).export_weights()
        assert sorted(packed) == ["in_proj_bias", "in_proj_weight", "out_proj/bias", "out_proj/weight"]
        assert packed["in_proj_weight"].shape == (24, 8)
        split = dock.MHAttn(2, 8, 6, 5).export_weights()
        assert sorted(split) == sorted(
            ["in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj/bias", "out_proj/weight"]
        )
        assert split["k_proj_weight"].shape == (8, 6) and split["v_proj_weight"].shape == (8, 5)


def test_mhattn_dropout_acts_on_weights_in_train_mode_only(both):
    q = data(3, 2, 4)
    for dock in both:
        craft = parity.build(dock, lambda d: d.MHAttn(1, 4, 4, 4, p_drop=0.5))
        with dock.Nozzle():
            _, w_eval = dock.shell(craft(*(dock.coat(q),) * 3))
        with dock.Rudder():
            _, w_train = dock.shell(craft(*(dock.coat(q),) * 3))
            _, w_again = dock.shell(craft(*(dock.coat(q),) * 3))
        dropped = w_train == 0
        assert dropped.any() and not dropped.all(), dock.__name__
        np.testing.assert_allclose(w_train[~dropped], 2 * w_eval[~dropped], rtol=1e-5, err_msg=dock.__name__)
        assert not np.array_equal(w_train, w_again), f"{dock.__name__}: a new mask each call"


def test_mhattn_keeps_both_engines_initialiser_streams_aligned():
    def factory(d):
        return [d.MHAttn(2, 4, 4, 4, p_drop=0.1), d.Dense(3, 2)]

    t, j = (parity.build(dock, factory) for dock in parity.DOCKS)
    parity.assert_same(t[1].export_weights(), j[1].export_weights(), what="Dense built after MHAttn")


def test_mhattn_rejects_bad_inputs(both):
    for dock in both:
        with pytest.raises(ValueError, match="must divide into nheads 3"):
            dock.MHAttn(3, 8, 8, 8)
        with pytest.raises(ValueError, match="p_drop"):
            dock.MHAttn(2, 8, 8, 8, p_drop=1.0)
        craft = dock.MHAttn(2, 8, 6, 5)
        q, k, v = (dock.coat(data(*s)) for s in ((3, 2, 8), (4, 2, 6), (4, 2, 5)))
        with dock.Nozzle():
            with pytest.raises(ValueError, match=r"k must be \(length, batch, 6\)"):
                craft(q, q, v)
            with pytest.raises(ValueError, match=r"pad_mask must be \(batch, key length\) \(2, 4\)"):
                craft(q, k, v, dock.coat(np.zeros((2, 3), bool)))
            with pytest.raises(ValueError, match=r"attn_mask must be \(3, 4\)"):
                craft(q, k, v, None, dock.coat(np.zeros((4, 3), bool)))

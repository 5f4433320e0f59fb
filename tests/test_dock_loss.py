"""Losses (MSE, MAE, Huber, Charbon, SigmXE, SftmXE, OHEM) and metrics (AccCls, PSNR, SSIM) on both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import parity

pytestmark = pytest.mark.once

RNG = np.random.default_rng(5)


def data(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def both_scalar(factory, *inputs):
    ta, ja, _, _ = parity.outputs(factory, *inputs)
    assert np.ndim(ta) == 0 and np.ndim(ja) == 0
    return ta, ja


def scalar_dtypes(dock, craft, *inputs):
    with dock.Nozzle():
        out = craft(*(dock.coat(a) for a in inputs))
    return str(out.dtype).replace("torch.", ""), out.ndim


# --------------------------------------------------------------------------------------------- point-wise losses


def t(a):
    return torch.from_numpy(np.asarray(a))


POINTWISE = [
    ("MSE", lambda d: d.MSE(), lambda x, y: F.mse_loss(t(x), t(y))),
    ("MAE", lambda d: d.MAE(), lambda x, y: F.l1_loss(t(x), t(y))),
    ("Huber", lambda d: d.Huber(0.5), lambda x, y: F.huber_loss(t(x), t(y), delta=0.5)),
    ("Huber default", lambda d: d.Huber(), lambda x, y: F.huber_loss(t(x), t(y))),
    ("Charbon", lambda d: d.Charbon(1e-3), lambda x, y: np.mean(np.sqrt((x - y) ** 2 + 1e-3))),
]


@pytest.mark.parametrize("name, factory, reference", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_losses_match_torch(name, factory, reference):
    x, y = data(3, 4, 5, scale=2.0), data(3, 4, 5)
    ta, ja = both_scalar(factory, x, y)
    parity.assert_same(ta, ja, what=name)
    parity.assert_same(float(reference(x, y)), ta, what=f"{name} vs reference")


def test_huber_switches_regime_at_delta():
    x = np.array([0.0, 0.25, 1.0, -3.0], np.float32)
    ta, ja = both_scalar(lambda d: d.Huber(0.5), x, np.zeros(4, np.float32))
    expected = np.mean([0.0, 0.5 * 0.25**2, 0.5 * (1.0 - 0.25), 0.5 * (3.0 - 0.25)])
    parity.assert_same(ta, ja, what="Huber regimes")
    parity.assert_same(expected, ta, what="Huber regimes, by hand")


def test_sigmxe_is_stable_for_large_logits_and_soft_targets():
    x = np.array([[-40.0, -3.0, 0.0, 2.5, 60.0], [1.0, -1.0, 0.5, -0.5, 10.0]], np.float32)
    y = np.array([[0.0, 0.2, 0.5, 1.0, 1.0], [1.0, 0.0, 0.7, 0.3, 0.0]], np.float32)
    ta, ja = both_scalar(lambda d: d.SigmXE(), x, y)
    parity.assert_same(ta, ja, what="SigmXE")
    parity.assert_same(F.binary_cross_entropy_with_logits(t(x), t(y)).item(), ta, what="SigmXE vs torch")
    assert np.isfinite(ta)


@pytest.mark.parametrize("spatial", [False, True])
def test_sftmxe_with_hard_and_soft_labels(spatial):
    shape = (3, 4, 2, 3) if spatial else (5, 4)
    x = data(*shape, scale=3.0)
    hard = RNG.integers(0, 4, size=shape[:1] + shape[2:])
    soft = np.moveaxis(RNG.dirichlet(np.ones(4), size=shape[:1] + shape[2:]), -1, 1).astype(np.float32)
    for labels, what in ((hard, "hard"), (soft, "soft")):
        ta, ja = both_scalar(lambda d: d.SftmXE(), x, labels)
        parity.assert_same(ta, ja, what=f"SftmXE {what} labels")
        parity.assert_same(F.cross_entropy(t(x), t(labels)).item(), ta, what=f"SftmXE {what} vs torch")
    one_hot = np.moveaxis(np.eye(4, dtype=np.float32)[hard], -1, 1)
    expected = F.cross_entropy(t(x), t(hard)).item()
    parity.assert_same((expected, expected), both_scalar(lambda d: d.SftmXE(), x, one_hot), what="one-hot = hard")


def test_losses_reject_mismatched_shapes_and_return_float32(both):
    for dock in both:
        for craft in (dock.MSE(), dock.MAE(), dock.Huber(), dock.Charbon(), dock.SigmXE()):
            with dock.Nozzle(), pytest.raises(ValueError, match=r"prediction \(4, 1\) and target \(4,\)"):
                craft(dock.coat(data(4, 1)), dock.coat(data(4)))
            assert scalar_dtypes(dock, craft, data(2, 3).astype(np.float16), data(2, 3).astype(np.float16)) == (
                "float32",
                0,
            )
        with dock.Nozzle(), pytest.raises(ValueError, match="soft labels must have the logits' shape"):
            dock.SftmXE()(dock.coat(data(2, 3)), dock.coat(data(2, 4)))
        with pytest.raises(ValueError, match="delta must be positive"):
            dock.Huber(0.0)


# --------------------------------------------------------------------------------------------- OHEM


def ohem_reference(loss, he_ratio, np_ratio, thr, chnl_wise, keep_pos, m=None):
    """Row by row with data-dependent k and a full sort: the definition OHEM implements with a static top-K."""
    b, c = loss.shape[:2]
    valid = np.ones(loss.shape, bool) if m is None else np.broadcast_to(m > 0, loss.shape)
    rows = loss.reshape(b * c if chnl_wise else b, -1)
    masks = valid.reshape(rows.shape)
    pixels = rows.shape[1]
    means = []
    for row, ok in zip(rows, masks):
        vals = row[ok]
        if vals.size == 0:
            continue
        pos = vals < thr
        k = max(max(1, math.ceil(he_ratio * pixels)), min(math.floor(np_ratio * pos.sum()), (~pos).sum()))
        hard = np.sort(vals)[::-1][: min(k, vals.size)]
        chosen = np.concatenate([hard[hard >= thr], vals[pos]]) if keep_pos else hard
        means.append(chosen.mean())
    return np.mean(means)


def squared(x, y):
    return (x - y) ** 2


OHEM_CASES = {
    "np bound": dict(he_ratio=0.05, np_ratio=1.0, thr=0.3, chnl_wise=True, keep_pos=False),
    "he bound": dict(he_ratio=0.6, np_ratio=0.5, thr=0.3, chnl_wise=True, keep_pos=False),
    "keep positives": dict(he_ratio=0.05, np_ratio=2.0, thr=0.3, chnl_wise=True, keep_pos=True),
    "keep positives, k past negatives": dict(he_ratio=0.9, np_ratio=3.0, thr=0.5, chnl_wise=True, keep_pos=True),
    "per sample": dict(he_ratio=0.05, np_ratio=3.0, thr=0.3, chnl_wise=False, keep_pos=False),
    "defaults": dict(he_ratio=0.005, np_ratio=3.0, thr=0.01, chnl_wise=True, keep_pos=False),
}


@pytest.mark.parametrize("case", list(OHEM_CASES))
@pytest.mark.parametrize("masked", [False, True])
def test_ohem_matches_the_data_dependent_definition(case, masked):
    kw = OHEM_CASES[case]
    x, y = data(3, 2, 4, 5), data(3, 2, 4, 5)
    inputs = [x, y]
    m = None
    if masked:
        m = (RNG.random((3, 1, 4, 5)) < 0.7).astype(np.float32)
        m[2] = 0.0  # a sample with no valid pixel is left out of the mean
        inputs.append(m)
    ta, ja = both_scalar(lambda d: d.OHEM(squared, **kw), *inputs)
    parity.assert_same(ta, ja, what=f"OHEM {case}")
    parity.assert_same(ohem_reference((x - y) ** 2, m=m, **kw), ta, what=f"OHEM {case} vs reference")
    plain = float(np.mean((x - y) ** 2))
    if case == "keep positives, k past negatives":
        if not masked:  # every negative is mined and every positive kept: each pixel exactly once
            parity.assert_same(plain, ta, what="no pixel counted twice")
    else:
        assert ta != pytest.approx(plain, rel=1e-3), "mining must change the plain mean"


def test_ohem_gradients_match_across_engines(both):
    x, y = data(2, 2, 3, 3), data(2, 2, 3, 3)
    grads = []
    for dock in both:
        ohem = dock.OHEM(squared, he_ratio=0.2, np_ratio=1.0, thr=0.5, keep_pos=True)
        with dock.Prober(wrt=(0,)) as pb:
            ohem(dock.coat(x), dock.coat(y))
        grads.append(dock.shell(pb.grads["inputs"][0]))
    parity.assert_same(grads[0], grads[1], what="d OHEM / d x")
    assert (grads[0] == 0).any() and (grads[0] != 0).any(), "only the mined pixels get gradients"


def test_ohem_rejects_bad_use(both):
    for dock in both:
        with pytest.raises(TypeError, match="loss_fn must be a callable"):
            dock.OHEM(0.5)
        with pytest.raises(ValueError, match="he_ratio"):
            dock.OHEM(squared, he_ratio=0.0)
        x = dock.coat(data(2, 3, 4, 4))
        with dock.Nozzle():
            with pytest.raises(ValueError, match="unreduced per-pixel loss"):
                dock.OHEM(lambda a, b: ((a - b) ** 2).mean())(x, x)
            with pytest.raises(ValueError, match=r"mask \(2, 2, 4, 4\) must broadcast"):
                dock.OHEM(squared)(x, x, dock.coat(np.ones((2, 2, 4, 4), np.float32)))


# --------------------------------------------------------------------------------------------- metrics


def test_acccls_single_label_one_hot_and_spatial():
    x = data(8, 4)
    labels = RNG.integers(0, 4, size=8)
    labels[:4] = x[:4].argmax(1)  # at least half right
    expected = float(np.mean(x.argmax(1) == labels))
    for factory, y in ((lambda d: d.AccCls(), labels), (lambda d: d.AccCls(is_one_hot=True), np.eye(4)[labels])):
        ta, ja = both_scalar(factory, x, y.astype(np.float32) if y.ndim == 2 else y)
        parity.assert_same(ta, ja, what="AccCls")
        parity.assert_same(expected, ta, what="AccCls vs NumPy")
    xs, ys = data(2, 3, 4, 4), RNG.integers(0, 3, size=(2, 4, 4))
    ta, ja = both_scalar(lambda d: d.AccCls(), xs, ys)
    parity.assert_same(ta, ja, what="spatial AccCls")
    parity.assert_same(float(np.mean(xs.argmax(1) == ys)), ta, what="spatial AccCls vs NumPy")


def test_acccls_multi_label_counts_a_sample_only_if_all_labels_match():
    probs = np.array([[0.9, 0.2, 0.7], [0.6, 0.4, 0.1], [0.1, 0.8, 0.3], [0.3, 0.3, 0.3]], np.float32)
    truth = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0]], np.float32)
    ta, ja = both_scalar(lambda d: d.AccCls(multi_class=True), probs, truth)
    parity.assert_same(ta, ja, what="multi-label AccCls")
    parity.assert_same(0.75, ta, what="3 of 4 samples fully right")


def test_psnr_is_per_image_then_averaged():
    x = RNG.random((3, 2, 5, 5)).astype(np.float32)
    y = np.clip(x + data(3, 2, 5, 5, scale=0.05) * np.array([1, 2, 4]).reshape(3, 1, 1, 1), 0, 1).astype(np.float32)
    ta, ja = both_scalar(lambda d: d.PSNR(1.0), x, y)
    mse = ((x - y) ** 2).reshape(3, -1).mean(1)
    parity.assert_same(ta, ja, what="PSNR")
    parity.assert_same(np.mean(10 * np.log10(1.0 / (mse + 1e-8))), ta, what="PSNR vs NumPy")
    ta, ja = both_scalar(lambda d: d.PSNR(255.0), x * 255, x * 255)
    parity.assert_same(ta, ja, what="PSNR of identical images")
    parity.assert_same(10 * np.log10(255.0**2 / 1e-8), ta, rtol=1e-6, what="PSNR ceiling")


@pytest.mark.parametrize("kw", [{}, dict(peak=255.0, size=7, sigma=1.0, k1=0.02, k2=0.05)])
def test_ssim_torch_equals_dm_pix(kw):
    peak = kw.get("peak", 1.0)
    x = RNG.random((2, 3, 16, 14)).astype(np.float32) * peak
    y = np.clip(x + data(2, 3, 16, 14, scale=0.1 * peak), 0, peak).astype(np.float32)
    ta, ja = both_scalar(lambda d: d.SSIM(**kw), x, y)
    parity.assert_same(ta, ja, what=f"SSIM {kw}")
    assert 0.2 < ta < 0.99


def test_ssim_analytic_cases(both):
    x = RNG.random((2, 1, 12, 12)).astype(np.float32)
    ta, ja = both_scalar(lambda d: d.SSIM(), x, x)
    parity.assert_same(1.0, ta, what="SSIM of identical images (torch)")
    parity.assert_same(1.0, ja, what="SSIM of identical images (jax)")
    a, b = np.full((1, 2, 11, 11), 0.3, np.float32), np.full((1, 2, 11, 11), 0.6, np.float32)
    c1 = 0.01**2
    ta, ja = both_scalar(lambda d: d.SSIM(), a, b)
    parity.assert_same(ta, ja, what="SSIM of flat images")
    parity.assert_same((2 * 0.3 * 0.6 + c1) / (0.3**2 + 0.6**2 + c1), ta, what="SSIM of flat images, by hand")


def test_metrics_return_float32_scalars_and_reject_bad_input(both):
    x = RNG.random((2, 3, 11, 11)).astype(np.float32)
    labels = RNG.integers(0, 3, size=(2, 11, 11))
    for dock in both:
        assert scalar_dtypes(dock, dock.AccCls(), x, labels) == ("float32", 0)
        assert scalar_dtypes(dock, dock.PSNR(), x, x) == ("float32", 0)
        assert scalar_dtypes(dock, dock.SSIM(), x, x) == ("float32", 0)
        with pytest.raises(ValueError, match="multi-hot, not one-hot"):
            dock.AccCls(multi_class=True, is_one_hot=True)
        with dock.Nozzle():
            with pytest.raises(ValueError, match=r"integer labels must have shape \(2, 11, 11\)"):
                dock.AccCls()(dock.coat(x), dock.coat(labels[:, :5]))
            with pytest.raises(ValueError, match="at least the window size 11"):
                dock.SSIM()(dock.coat(x[..., :8]), dock.coat(x[..., :8]))
            with pytest.raises(ValueError, match=r"two \(N, C, H, W\) images"):
                dock.SSIM()(dock.coat(x), dock.coat(x[:1]))

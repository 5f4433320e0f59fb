"""Device-side batch augmentation: torch vs JAX parity of the deterministic core (`transform` with given
per-sample parameters) against NumPy/colorsys references, and the behaviour of `run` on each engine."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from nebulae.astro import init
from nebulae.backends.jax import dock as jdock
from nebulae.backends.torch import dock as tdock

pytestmark = pytest.mark.once

ta, ja = tdock, jdock  # the augmenters are dock crafts (nebulae/astro/crafts/augment.py)

ENGINES = [pytest.param((tdock, ta), id="torch"), pytest.param((jdock, ja), id="jax")]


def batch(n=5, c=3, h=9, w=11, seed=0):
    """Random colours plus edge cases for HSV: grey pixels (r = g = b), black, white, ties between channels."""
    x = np.random.default_rng(seed).uniform(0, 1, (n, c, h, w)).astype(np.float32)
    if c == 3:
        x[:, :, 0, 0] = 0.5
        x[:, :, 0, 1] = 0.0
        x[:, :, 0, 2] = 1.0
        x[:, 0, 0, 3] = x[:, 1, 0, 3] = 0.8
        x[:, 1, 0, 4] = x[:, 2, 0, 4] = 0.7
    return x


def hsv_map(x: np.ndarray, fn) -> np.ndarray:
    """Apply fn(h, s, v) -> (h, s, v) to every pixel of an (N, 3, H, W) batch with colorsys (float64)."""
    out = np.empty(x.shape, np.float64)
    for n, i, j in np.ndindex(x.shape[0], x.shape[2], x.shape[3]):
        h, s, v = fn(n, *colorsys.rgb_to_hsv(*x[n, :, i, j].astype(np.float64)))
        out[n, :, i, j] = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return out


def both_transform(make, x, params):
    """(torch, jax) outputs of make(module).transform(x, params), as NumPy."""
    outs = []
    for dock, mod in ((tdock, ta), (jdock, ja)):
        craft = make(mod)
        outs.append(np.asarray(dock.shell(craft.transform(dock.coat(x), dock.coat(params)))))
    return outs


# ----------------------------------------------------------------------------------------------- parity


def test_flip_parity():
    x, flags = batch(), np.array([True, False, True, True, False])
    out_t, out_j = both_transform(lambda m: m.RandFlip(), x, flags)
    ref = np.where(flags[:, None, None, None], x[..., ::-1], x)
    np.testing.assert_array_equal(out_t, ref)
    np.testing.assert_array_equal(out_j, ref)


def test_crop_parity():
    x = batch()
    offsets = np.array([[0, 0], [4, 5], [2, 1], [4, 0], [1, 5]], np.int32)  # padded 13 x 15, crop 9 x 10
    out_t, out_j = both_transform(lambda m: m.RandCrop((9, 10), padding=2), x, offsets)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    ref = np.stack([padded[n, :, t : t + 9, l : l + 10] for n, (t, l) in enumerate(offsets)])
    assert out_t.shape == (5, 3, 9, 10)
    np.testing.assert_array_equal(out_t, ref)
    np.testing.assert_array_equal(out_j, ref)


def test_brighten_and_contrast_parity():
    x = batch()
    shift = np.array([-0.3, -0.05, 0.0, 0.1, 0.4], np.float32)
    out_t, out_j = both_transform(lambda m: m.RandBrighten(0.5), x, shift)
    ref = np.clip(x + shift[:, None, None, None], 0, 1)
    np.testing.assert_allclose(out_t, ref, atol=1e-6)
    np.testing.assert_allclose(out_j, out_t, rtol=1e-5, atol=1e-5)
    factor = np.array([0.0, 0.5, 1.0, 1.5, 2.5], np.float32)
    out_t, out_j = both_transform(lambda m: m.RandContrast(0.0, 3.0), x, factor)
    mean = x.mean(axis=(2, 3), keepdims=True)
    ref = np.clip(factor[:, None, None, None] * (x - mean) + mean, 0, 1)
    np.testing.assert_allclose(out_t, ref, atol=1e-5)
    np.testing.assert_allclose(out_j, out_t, rtol=1e-5, atol=1e-5)


def test_saturation_and_hue_parity_and_colorsys():
    # The HSV round trip divides by (max - min): float32 rounding there reaches a few 1e-6 against
    # float64 colorsys, so the reference check uses 1e-5; the engines run the same operations.
    x = batch(h=6, w=7)
    factor = np.array([0.0, 0.3, 1.0, 1.7, 4.0], np.float32)
    out_t, out_j = both_transform(lambda m: m.RandSaturate(0.0, 5.0), x, factor)
    np.testing.assert_allclose(out_j, out_t, rtol=1e-5, atol=1e-5)
    ref = hsv_map(x, lambda n, h, s, v: (h, min(s * float(factor[n]), 1.0), v))
    np.testing.assert_allclose(out_t, ref, atol=1e-5)
    shift = np.array([-0.5, -0.2, 0.0, 0.13, 0.5], np.float32)
    out_t, out_j = both_transform(lambda m: m.RandHue(0.5), x, shift)
    np.testing.assert_allclose(out_j, out_t, rtol=1e-5, atol=1e-5)
    ref = hsv_map(x, lambda n, h, s, v: (h + float(shift[n]), s, v))
    np.testing.assert_allclose(out_t, ref, atol=1e-5)


# ----------------------------------------------------------------------------------------------- run, per engine


def crafts(mod):
    return [
        mod.RandFlip(),
        mod.RandCrop(9, padding=2),
        mod.RandBrighten(0.3),
        mod.RandContrast(0.5, 1.5),
        mod.RandSaturate(0.5, 1.5),
        mod.RandHue(0.3),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_eval_mode_is_identity_and_train_mode_draws_anew_each_step(engine):
    dock, mod = engine
    init.seed(0)
    torch.manual_seed(0)
    x = dock.coat(batch(n=8, h=9, w=9))
    for craft in crafts(mod):
        with dock.Nozzle():
            np.testing.assert_array_equal(dock.shell(craft(x)), dock.shell(x))
        with dock.Rudder():
            a, b = dock.shell(craft(x)), dock.shell(craft(x))
        name = type(craft).__name__
        assert a.shape == (8, 3, 9, 9) and a.min() >= 0 and a.max() <= 1, name
        assert not np.array_equal(a, b), f"{name}: two steps drew the same parameters"
        assert not np.array_equal(a, dock.shell(x)), name


@pytest.mark.parametrize("engine", ENGINES)
def test_flip_probability(engine):
    dock, mod = engine
    init.seed(1)
    torch.manual_seed(1)
    x = batch(n=400, c=1, h=2, w=3)
    flipped = x[..., ::-1]
    with dock.Rudder():
        all_ = dock.shell(mod.RandFlip(p=1.0)(dock.coat(x)))
        none = dock.shell(mod.RandFlip(p=0.0)(dock.coat(x)))
        some = dock.shell(mod.RandFlip(p=0.3)(dock.coat(x)))
    np.testing.assert_array_equal(all_, flipped)
    np.testing.assert_array_equal(none, x)
    hit = np.array([np.array_equal(s, f) for s, f in zip(some, flipped)])
    assert all(np.array_equal(s, f) or np.array_equal(s, o) for s, f, o in zip(some, flipped, x))
    assert 0.22 < hit.mean() < 0.38


@pytest.mark.parametrize("engine", ENGINES)
def test_crops_are_windows_of_the_padded_image_at_varied_offsets(engine):
    dock, mod = engine
    init.seed(2)
    torch.manual_seed(2)
    x = batch(n=40, c=2, h=6, w=7)
    with dock.Rudder():
        y = dock.shell(mod.RandCrop((5, 4), padding=1)(dock.coat(x)))
    assert y.shape == (40, 2, 5, 4)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    found = []
    for n in range(40):
        hits = [(t, l) for t in range(4) for l in range(6) if np.array_equal(padded[n, :, t : t + 5, l : l + 4], y[n])]
        assert hits, f"sample {n} is not a window of its padded image"
        found.append(hits[0])
    assert len(set(found)) > 8


@pytest.mark.parametrize("engine", ENGINES)
def test_brightness_shift_is_one_value_per_sample_within_delta(engine):
    dock, mod = engine
    init.seed(3)
    torch.manual_seed(3)
    x = np.full((64, 3, 4, 4), 0.5, np.float32)
    with dock.Rudder():
        y = dock.shell(mod.RandBrighten(0.2)(dock.coat(x)))
    shift = (y - 0.5).reshape(64, -1)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(48, axis=1), atol=1e-6)
    assert np.abs(shift).max() <= 0.2 + 1e-6 and shift[:, 0].min() < -0.1 and shift[:, 0].max() > 0.1


def test_jax_step_compiles_once_and_keeps_drawing():
    init.seed(4)
    flip = ja.RandFlip()
    x = jdock.coat(batch(n=16))
    with jdock.Rudder():
        outs = [jdock.shell(flip(x)) for _ in range(3)]
    assert flip.traces == 1
    assert not np.array_equal(outs[0], outs[1]) or not np.array_equal(outs[1], outs[2])


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_batches_get_clear_errors(engine):
    dock, mod = engine
    with dock.Rudder():
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            mod.RandFlip()(dock.coat(np.zeros((3, 4, 4), np.float32)))
        with pytest.raises(ValueError, match="RGB"):
            mod.RandHue(0.1)(dock.coat(np.zeros((2, 4, 4, 4), np.float32)))
        with pytest.raises(ValueError, match="does not fit"):
            mod.RandCrop(9, padding=1)(dock.coat(np.zeros((2, 3, 6, 6), np.float32)))
    with pytest.raises(ValueError, match="RandHue delta"):
        mod.RandHue(0.7)


def test_layers_built_after_augmenters_get_the_same_weights_on_both_engines():
    weights = []
    for dock, mod in ((tdock, ta), (jdock, ja)):
        init.seed(6)
        crafts(mod)
        weights.append(dock.Dense(3, 3).export_weights()["weight"])
    np.testing.assert_array_equal(weights[0], weights[1])


def test_augmenters_nest_in_a_model_step():
    """A model that augments its input inside run: identity under Nozzle, augmented under Rudder, on both engines."""
    for dock, mod in ((tdock, ta), (jdock, ja)):
        init.seed(7)
        torch.manual_seed(7)

        class Net(dock.Craft):
            def __init__(self):
                super().__init__("NET")
                self.flip, self.crop, self.hue = mod.RandFlip(), mod.RandCrop(8, padding=1), mod.RandHue(0.2)

            def run(self, x):
                return self.hue(self.crop(self.flip(x)))

        net, x = Net(), dock.coat(batch(n=6, h=8, w=8))
        with dock.Nozzle():
            np.testing.assert_array_equal(dock.shell(net(x)), dock.shell(x))
        with dock.Rudder():
            y = dock.shell(net(x))
        assert y.shape == (6, 3, 8, 8) and not np.allclose(y, dock.shell(x))

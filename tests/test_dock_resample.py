"""Zoom, SubPix, SurPix, GridSample and Warp: torch vs JAX parity, the torch side against F.interpolate,
F.pixel_(un)shuffle, F.grid_sample and a NumPy shift, gradients on both engines, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import parity

pytestmark = pytest.mark.once

T = torch.from_numpy
TDOCK, JDOCK = parity.DOCKS
LINEAR_MODES = {3: "linear", 4: "bilinear", 5: "trilinear"}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def both_raise(error, match, factory, *inputs):
    """The same bad construction or call raises `error` (message matching `match`) on both engines."""
    for dock in parity.DOCKS:
        with pytest.raises(error, match=match):
            craft = factory(dock)
            if inputs:
                craft(*[dock.coat(a) for a in inputs])


def check(factory, *inputs, ref=None, what=""):
    """Parity at 1e-5 and, when given, the torch side against a reference; returns the torch output."""
    out_t, out_j, _, _ = parity.outputs(factory, *inputs)
    parity.assert_same(out_t, out_j, what=f"{what}: torch vs jax")
    if ref is not None:
        parity.assert_same(np.asarray(ref), out_t, what=f"{what}: torch vs reference")
    return out_t


def probe_grads(factory, *inputs):
    """Gradients of sum(w * craft(*inputs)) w.r.t. every input, on both engines; asserts parity."""
    results = []
    for dock in parity.DOCKS:
        inner = parity.build(dock, factory)

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.inner = inner

            def run(self, w, *args):
                return (self.inner(*args) * w).sum()

        args = [dock.coat(a) for a in inputs]
        with dock.Nozzle():
            w = dock.coat(rand(*np.shape(dock.shell(inner(*args))), seed=9))
        with dock.Prober(wrt=tuple(range(1, len(inputs) + 1))) as pb:
            Probe()(w, *args)
        results.append(dock.shell(pb.grads["inputs"]))
    parity.assert_same(results[0], results[1], 1e-5, 1e-5, "input gradients: torch vs jax")
    assert all(np.abs(g).max() > 0 for g in results[0].values())


# ------------------------------------------------------------------------------------------------------ Zoom

ZOOMS = [
    # (interp, input spatial, target) — size= and scale= for every mode, 1/2/3-D, up and down
    ("NEAREST", (5,), {"size": (7,)}),
    ("NEAREST", (5, 4), {"scale": (1.7, 0.6)}),
    ("NEAREST", (5, 4), {"scale": (2.001, 1.01)}),  # torch's 2-D kernel copies when out == in or 2 * in
    ("NEAREST", (3, 4, 5), {"scale": (1.01, 2.001, 0.5)}),  # ... its 1-D and 3-D kernels do not
    ("LINEAR", (6,), {"scale": (1.5,)}),
    ("LINEAR", (5, 4), {"size": (3, 7)}),
    ("LINEAR", (5, 4), {"scale": (2.0, 1.3)}),
    ("LINEAR", (5, 4), {"scale": (1.01, 0.99)}),  # out == in: torch copies (its ratio would be 1 / 1.01)
    ("LINEAR", (3, 4, 5), {"size": (5, 4, 2)}),
    ("CUBIC", (5, 6), {"size": (8, 3)}),
    ("CUBIC", (5, 6), {"scale": (1.6, 2.0)}),
    ("AREA", (7,), {"size": (3,)}),
    ("AREA", (7, 5), {"scale": (0.5, 0.7)}),
    ("AREA", (4, 5, 6), {"size": (3, 2, 4)}),
]


ZOOMS = [  # aligned matters for LINEAR and CUBIC; NEAREST and AREA ignore it (False must be accepted)
    (*z, aligned) for z in ZOOMS for aligned in ((True, False) if z[0] in ("LINEAR", "CUBIC") else (False,))
]


@pytest.mark.parametrize("case", ZOOMS, ids=[f"{z[0]}-{len(z[1])}d-{next(iter(z[2]))}-{z[3]}" for z in ZOOMS])
def test_zoom_matches_f_interpolate(case):
    interp, spatial, target, aligned = case
    x = rand(2, 3, *spatial)
    mode = {"NEAREST": "nearest", "LINEAR": LINEAR_MODES[x.ndim], "CUBIC": "bicubic", "AREA": "area"}[interp]
    corners = aligned if interp in ("LINEAR", "CUBIC") else None
    ref = F.interpolate(T(x), target.get("size"), target.get("scale"), mode, corners).numpy()
    out = check(lambda d: d.Zoom(**target, interp=getattr(d, interp), aligned=aligned), x, ref=ref, what=mode)
    if "size" in target:
        assert out.shape[2:] == target["size"]


def test_zoom_accepts_names_and_scalars():
    x = rand(1, 2, 4, 6)
    ref = F.interpolate(T(x), scale_factor=1.5, mode="bilinear", align_corners=False).numpy()
    check(lambda d: d.Zoom(scale=1.5, interp="linear", aligned=False), x, ref=ref, what="Zoom('linear', scale=1.5)")
    ref = F.interpolate(T(x), size=3, mode="nearest").numpy()
    check(lambda d: d.Zoom(size=3, interp="nearest"), x, ref=ref, what="Zoom('nearest', size=3)")
    for dock in parity.DOCKS:
        assert (dock.NEAREST, dock.LINEAR, dock.CUBIC, dock.AREA) == (0, 1, 2, 3)


def test_zoom_gradients_match():
    probe_grads(lambda d: d.Zoom(size=(7, 3), interp=d.CUBIC, aligned=False), rand(1, 2, 4, 5))
    probe_grads(lambda d: d.Zoom(scale=(1.5, 0.5, 2.0), interp=d.LINEAR), rand(1, 1, 3, 4, 2))


def test_zoom_bad_arguments_raise_clearly():
    both_raise(ValueError, "exactly one of size and scale", lambda d: d.Zoom())
    both_raise(ValueError, "exactly one of size and scale", lambda d: d.Zoom(size=(4, 4), scale=(2, 2)))
    both_raise(ValueError, "interp must be one of", lambda d: d.Zoom(size=(4, 4), interp="lanczos"))
    both_raise(ValueError, "positive", lambda d: d.Zoom(scale=(0.0, 1.0)))
    both_raise(
        ValueError, "CUBIC interpolation works on 4-D", lambda d: d.Zoom(size=(4,), interp=d.CUBIC), rand(1, 1, 3)
    )
    both_raise(ValueError, "has 2 spatial sizes but the input", lambda d: d.Zoom(size=(4, 4)), rand(1, 1, 3, 3, 3))


# ------------------------------------------------------------------------------------------- SubPix, SurPix


@pytest.mark.parametrize("scale", [2, (3, 3)])
def test_pixel_shuffle_and_unshuffle(scale):
    r = scale if isinstance(scale, int) else scale[0]
    x = rand(2, 2 * r * r, 3, 2)
    up = check(lambda d: d.SubPix(scale), x, ref=F.pixel_shuffle(T(x), r).numpy(), what="SubPix")
    assert up.shape == (2, 2, 3 * r, 2 * r)
    back = check(lambda d: d.SurPix(scale), up, ref=F.pixel_unshuffle(T(up), r).numpy(), what="SurPix")
    parity.assert_same(x, back, rtol=0, atol=0, what="SurPix inverts SubPix")


def test_pixel_shuffle_bad_arguments_raise_clearly():
    both_raise(ValueError, "square factor", lambda d: d.SubPix((2, 3)))
    both_raise(ValueError, "square factor", lambda d: d.SurPix((1, 2)))
    with pytest.raises(ValueError, match="divide by the squared factor"):
        parity.build(JDOCK, lambda d: d.SubPix(2))(JDOCK.coat(rand(1, 6, 2, 2)))
    with pytest.raises(RuntimeError, match="divisible"):
        parity.build(TDOCK, lambda d: d.SubPix(2))(TDOCK.coat(rand(1, 6, 2, 2)))


# ------------------------------------------------------------------------------------------------ GridSample

SAMPLES = [
    (interp, pad, aligned)
    for interp in ("NEAREST", "LINEAR", "CUBIC")
    for pad in ("CONSTANT", "BORDER", "REFLECT")
    for aligned in (True, False)
]


def sample_grid(n, out, nd, seed=1):
    grid = np.random.default_rng(seed).uniform(-1.3, 1.3, size=(n, *out, nd)).astype(np.float32)
    grid.reshape(-1, nd)[:3] = [[-1.0] * nd, [1.0] * nd, [0.0] * nd]  # exact corners and the centre
    return grid


@pytest.mark.parametrize("interp, pad, aligned", SAMPLES)
def test_grid_sample_matches_f_grid_sample_2d(interp, pad, aligned):
    x, grid = rand(2, 3, 4, 5), sample_grid(2, (3, 6), 2)
    mode = {"NEAREST": "nearest", "LINEAR": "bilinear", "CUBIC": "bicubic"}[interp]
    padding = {"CONSTANT": "zeros", "BORDER": "border", "REFLECT": "reflection"}[pad]
    ref = F.grid_sample(T(x), T(grid), mode, padding, aligned).numpy()
    out = check(
        lambda d: d.GridSample(getattr(d, interp), aligned, getattr(d, pad)), x, grid, ref=ref, what=f"{mode}/{padding}"
    )
    assert out.shape == (2, 3, 3, 6)


@pytest.mark.parametrize("interp, pad", [("LINEAR", "REFLECT"), ("NEAREST", "BORDER"), ("LINEAR", "CONSTANT")])
def test_grid_sample_matches_f_grid_sample_3d(interp, pad):
    x, grid = rand(1, 2, 3, 4, 5), sample_grid(1, (2, 3, 2), 3)
    mode = {"NEAREST": "nearest", "LINEAR": "bilinear"}[interp]
    padding = {"CONSTANT": "zeros", "BORDER": "border", "REFLECT": "reflection"}[pad]
    ref = F.grid_sample(T(x), T(grid), mode, padding, False).numpy()
    check(lambda d: d.GridSample(interp.lower(), False, pad.lower()), x, grid, ref=ref, what=f"3-D {mode}/{padding}")


def test_grid_sample_gradients_match():
    probe_grads(lambda d: d.GridSample(d.LINEAR, False, d.BORDER), rand(1, 2, 4, 5), sample_grid(1, (3, 3), 2) * 0.9)


def test_grid_sample_bad_arguments_raise_clearly():
    both_raise(ValueError, "interp must be one of", lambda d: d.GridSample(d.AREA))
    both_raise(ValueError, "pad_mode must be", lambda d: d.GridSample(pad_mode="wrap"))
    for dock in parity.DOCKS:  # the same front check on both engines
        with pytest.raises(ValueError, match="needs a 4-D"):
            parity.build(dock, lambda d: d.GridSample(d.CUBIC))(
                dock.coat(rand(1, 1, 2, 2, 2)), dock.coat(rand(1, 1, 1, 1, 3))
            )
        with pytest.raises(ValueError, match="grid must be"):
            parity.build(dock, lambda d: d.GridSample())(dock.coat(rand(1, 1, 3, 3)), dock.coat(rand(1, 2, 2, 3)))
        with pytest.raises(TypeError, match="GridSample needs a floating-point input, got dtype int32"):
            parity.build(dock, lambda d: d.GridSample())(
                dock.coat(np.ones((1, 1, 3, 3), np.int32)), dock.coat(rand(1, 2, 2, 2))
            )


# ------------------------------------------------------------------------------------------------------ Warp


@pytest.mark.parametrize("interp", ["NEAREST", "LINEAR", "CUBIC"])
@pytest.mark.parametrize("aligned", [True, False])
def test_warp_integer_flow_on_non_square_image_is_a_shift(interp, aligned):
    x = rand(2, 3, 5, 8)
    flow = np.zeros((2, 2, 5, 8), np.float32)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # sample 2 pixels to the right (W) and 1 up (H)
    shifted = np.zeros_like(x)
    shifted[:, :, 1:, :-2] = x[:, :, :-1, 2:]
    check(lambda d: d.Warp(getattr(d, interp), aligned), x, flow, ref=shifted, what=f"Warp {interp}")


def test_warp_fractional_flow_matches_grid_sample():
    x, flow = rand(1, 2, 4, 6), rand(1, 2, 4, 6, seed=3)
    gy, gx = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
    grid = np.stack([2 * (gx + flow[:, 0]) / 5 - 1, 2 * (gy + flow[:, 1]) / 3 - 1], -1).astype(np.float32)
    ref = F.grid_sample(T(x), T(grid), "bilinear", "reflection", True).numpy()
    check(lambda d: d.Warp(d.LINEAR, True, d.REFLECT), x, flow, ref=ref, what="Warp vs grid_sample")
    probe_grads(lambda d: d.Warp(d.LINEAR, False, d.BORDER), x, flow * 0.7)


def test_warp_builds_its_grid_on_the_flow_device_and_dtype():
    # the original built the base grid on the CPU (and transposed); the meta device stands in for a GPU here
    warp = parity.build(TDOCK, lambda d: d.Warp())
    out = warp(torch.zeros(1, 2, 3, 5, device="meta"), torch.zeros(1, 2, 3, 5, device="meta"))
    assert out.device.type == "meta" and out.shape == (1, 2, 3, 5)
    out = warp(torch.ones(1, 1, 3, 5, dtype=torch.float64), torch.zeros(1, 2, 3, 5, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.equal(out, torch.ones_like(out))


def test_warp_bad_flow_raises_clearly():
    both_raise(ValueError, r"flow \(N, 2, H, W\)", lambda d: d.Warp(), rand(1, 1, 4, 5), rand(1, 2, 5, 4))

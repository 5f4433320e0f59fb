"""Engine-neutral numeric constants shared by both engines' crafts."""

GOLDEN = 0.6180339887498949  # MaxEigen's start vector: 1 + frac(i * GOLDEN), no symmetry to stall on
PSNR_EPS = 1e-8

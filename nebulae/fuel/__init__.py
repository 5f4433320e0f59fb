"""fuel: pack raw files into HDF5 (Generator), serve NumPy batches (Tank), augment (Comburant).

Engine-neutral NumPy/OpenCV/h5py code: importing it loads neither torch, jax nor Grain.
"""

from __future__ import annotations

from nebulae import lazy

_EXPORTS = {
    "Generator": "generator",
    "shard_paths": "generator",
    "Tank": "depot",
    "Comburant": "comburant",
    "seeded": "comburant",
    "Op": "comburant",
    "Flip": "comburant",
    "Crop": "comburant",
    "Rotate": "comburant",
    "Resize": "comburant",
    "Pad": "comburant",
    "Brighten": "comburant",
    "Contrast": "comburant",
    "Saturate": "comburant",
    "Hue": "comburant",
    "Blur": "comburant",
    "Sharpen": "comburant",
    "Noise": "comburant",
    "JPEG": "comburant",
    "WebP": "comburant",
    "Random": "comburant",
    "Only": "comburant",
    "Void": "comburant",
    "End": "comburant",
    "HWC2CHW": "comburant",
    "Whiten": "comburant",
    "Sampling": "comburant",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports(__name__, _EXPORTS)

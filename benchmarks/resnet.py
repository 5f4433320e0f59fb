"""Hand-written ResNet-18 / ResNet-50 baselines (v1.5, NCHW) for the train-step benchmark.

Both follow the torchvision layout: conv7x7/2 (3->64, no bias) + BN + ReLU + max-pool 3x3/2 (padding 1),
four stages (64, 128, 256, 512 channels; the first block of stages 2-4 has stride 2 and a 1x1 conv + BN
shortcut, as has any block whose channels change), global average pooling and a dense classifier.
ResNet-18: two basic blocks (3x3, 3x3) per stage. ResNet-50: 3, 4, 6, 3 bottlenecks (1x1 reduce, 3x3
carrying the stride (v1.5), 1x1 expand by 4) per stage.
- `torch_resnet` (`torch_resnet18`): a plain ``nn.Module`` trained eagerly.
- `nnx_resnet` (`nnx_resnet18`): a Flax NNX module on NCHW data (``lax.conv_general_dilated`` with OIHW
  kernels in ``nnx.Param``, ``nnx.BatchNorm(axis=1)``), the layout nebulae uses on JAX, so the JAX
  contenders run the same FLOPs in the same layout. ``compute_dtype="bfloat16"``: parameters stay float32,
  convolutions, BatchNorm and the classifier compute in bf16 (the input is cast by the caller), as
  nebulae's JAX mixed precision does.
"""

from __future__ import annotations

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block) per stage
BLOCKS = 2  # basic blocks per stage (ResNet-18)
LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}  # block kind and blocks per stage
EXPANSION = {"basic": 1, "bottleneck": 4}


def _layout(depth: int) -> tuple[str, tuple[int, ...]]:
    if depth not in LAYOUTS:
        raise ValueError(f"benchmarks.resnet has ResNet depths {sorted(LAYOUTS)}, got {depth!r}")
    return LAYOUTS[depth]


def blocks_of(depth: int) -> list[tuple[str, int, int, int]]:
    """The blocks of ResNet-`depth` in order: (kind, input channels, width, stride); the output has
    width * `EXPANSION[kind]` channels."""
    kind, counts = _layout(depth)
    out, cin = [], 64
    for (width, stride), count in zip(STAGES, counts):
        for b in range(count):
            out.append((kind, cin, width, stride if b == 0 else 1))
            cin = width * EXPANSION[kind]
    return out


def torch_resnet(depth: int, nclass: int):
    """ResNet-`depth` (18 or 50) as a plain torch ``nn.Module`` (NCHW)."""
    from torch import nn

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list:
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]

    class Block(nn.Module):
        def __init__(self, kind: str, cin: int, width: int, stride: int):
            super().__init__()
            cout = width * EXPANSION[kind]
            if kind == "basic":
                layers = [*conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True), *conv_bn(width, width, 3)]
            else:
                layers = [*conv_bn(cin, width, 1), nn.ReLU(inplace=True)]
                layers += [*conv_bn(width, width, 3, stride), nn.ReLU(inplace=True), *conv_bn(width, cout, 1)]
            self.body = nn.Sequential(*layers)
            self.relu = nn.ReLU(inplace=True)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(*conv_bn(cin, cout, 1, stride))

        def forward(self, x):
            return self.relu(self.body(x) + (x if self.short is None else self.short(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(*conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            spec = blocks_of(depth)
            self.blocks = nn.Sequential(*(Block(*b) for b in spec))
            kind, _, width, _ = spec[-1]
            self.fc = nn.Linear(width * EXPANSION[kind], nclass)

        def forward(self, x):
            return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    return ResNet()


def torch_resnet18(nclass: int):
    """ResNet-18 as a plain torch ``nn.Module`` (NCHW)."""
    return torch_resnet(18, nclass)


def nnx_resnet(depth: int, nclass: int, seed: int = 0, compute_dtype: str | None = None):
    """ResNet-`depth` (18 or 50) as a Flax NNX module on NCHW data.

    Args:
        depth: 18 or 50.
        nclass: the number of classes.
        seed: initialisation seed.
        compute_dtype: None (float32) or e.g. "bfloat16": float32 parameters, compute in that dtype.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    rngs = nnx.Rngs(seed)
    rng = np.random.default_rng(seed)  # NumPy initialisation: eager jax.random ops would compile once per shape
    dtype = jnp.dtype(compute_dtype) if compute_dtype else None

    def normal(shape: tuple, fan_in: int, gain: float):
        return jnp.asarray(rng.normal(0.0, (gain / fan_in) ** 0.5, shape).astype(np.float32))

    def cast(w):
        return w if dtype is None else w.astype(dtype)

    class Conv(nnx.Module):
        def __init__(self, cin: int, cout: int, k: int, stride: int):
            self.w = nnx.Param(normal((cout, cin, k, k), cin * k * k, 2.0))
            self.stride, self.pad = (stride, stride), ((k // 2, k // 2), (k // 2, k // 2))

        def __call__(self, x):
            return jax.lax.conv_general_dilated(
                x, cast(self.w[...]), self.stride, self.pad, dimension_numbers=("NCHW", "OIHW", "NCHW")
            )

    def bn(c: int):
        return nnx.BatchNorm(c, axis=1, momentum=0.9, dtype=dtype, rngs=rngs)

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1):
        return nnx.Sequential(Conv(cin, cout, k, stride), bn(cout))

    class Block(nnx.Module):
        def __init__(self, kind: str, cin: int, width: int, stride: int):
            cout = width * EXPANSION[kind]
            if kind == "basic":
                self.convs = nnx.List([conv_bn(cin, width, 3, stride), conv_bn(width, width, 3)])
            else:
                self.convs = nnx.List(
                    [conv_bn(cin, width, 1), conv_bn(width, width, 3, stride), conv_bn(width, cout, 1)]
                )
            changes = stride != 1 or cin != cout
            self.short = nnx.data(conv_bn(cin, cout, 1, stride) if changes else None)

        def __call__(self, x):
            y = x
            for i, layer in enumerate(self.convs):
                y = layer(y) if i == len(self.convs) - 1 else nnx.relu(layer(y))
            return nnx.relu(y + (x if self.short is None else self.short(x)))

    class ResNet(nnx.Module):
        def __init__(self):
            self.conv, self.bn = Conv(3, 64, 7, 2), bn(64)
            spec = blocks_of(depth)
            self.blocks = nnx.List([Block(*b) for b in spec])
            kind, _, width, _ = spec[-1]
            chans = width * EXPANSION[kind]
            self.fc_w = nnx.Param(normal((chans, nclass), chans, 1.0))
            self.fc_b = nnx.Param(jnp.zeros((nclass,)))

        def __call__(self, x):
            x = nnx.relu(self.bn(self.conv(x)))
            pad = ((0, 0), (0, 0), (1, 1), (1, 1))
            x = jax.lax.reduce_window(x, np.array(-np.inf, x.dtype), jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2), pad)
            for block in self.blocks:
                x = block(x)
            return x.mean(axis=(2, 3)) @ cast(self.fc_w[...]) + cast(self.fc_b[...])

    return ResNet()


def nnx_resnet18(nclass: int, seed: int = 0):
    """ResNet-18 as a Flax NNX module on NCHW data."""
    return nnx_resnet(18, nclass, seed)

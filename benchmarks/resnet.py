"""Hand-written ResNet-18 baselines (v1.5 basic blocks, NCHW) for the train-step benchmark.

Both follow the torchvision layout: conv7x7/2 (3->64, no bias) + BN + ReLU + max-pool 3x3/2 (padding 1),
four stages of two basic blocks (64, 128, 256, 512 channels; the first block of stages 2-4 has
stride 2 and a 1x1/2 conv + BN shortcut), global average pooling and a dense classifier.
- `torch_resnet18`: a plain ``nn.Module`` trained eagerly.
- `nnx_resnet18`: a Flax NNX module on NCHW data (``lax.conv_general_dilated`` with OIHW kernels in
  ``nnx.Param``, ``nnx.BatchNorm(axis=1)``), the layout nebulae uses on JAX, so the JAX contenders run
  the same FLOPs in the same layout.
"""

from __future__ import annotations

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block) per stage
BLOCKS = 2  # basic blocks per stage (ResNet-18)


def torch_resnet18(nclass: int):
    """ResNet-18 as a plain torch ``nn.Module`` (NCHW)."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.short is None else self.short(x)))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            )
            blocks, cin = [], 64
            for cout, stride in STAGES:
                for b in range(BLOCKS):
                    blocks.append(Block(cin, cout, stride if b == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, nclass)

        def forward(self, x):
            return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    return ResNet18()


def nnx_resnet18(nclass: int, seed: int = 0):
    """ResNet-18 as a Flax NNX module on NCHW data."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    rngs = nnx.Rngs(seed)
    rng = np.random.default_rng(seed)  # NumPy initialisation: eager jax.random ops would compile once per shape

    def normal(shape: tuple, fan_in: int, gain: float):
        return jnp.asarray(rng.normal(0.0, (gain / fan_in) ** 0.5, shape).astype(np.float32))

    class Conv(nnx.Module):
        def __init__(self, cin: int, cout: int, k: int, stride: int):
            self.w = nnx.Param(normal((cout, cin, k, k), cin * k * k, 2.0))
            self.stride, self.pad = (stride, stride), ((k // 2, k // 2), (k // 2, k // 2))

        def __call__(self, x):
            return jax.lax.conv_general_dilated(
                x, self.w[...], self.stride, self.pad, dimension_numbers=("NCHW", "OIHW", "NCHW")
            )

    def bn(c: int):
        return nnx.BatchNorm(c, axis=1, momentum=0.9, rngs=rngs)

    class Block(nnx.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            self.conv1, self.bn1 = Conv(cin, cout, 3, stride), bn(cout)
            self.conv2, self.bn2 = Conv(cout, cout, 3, 1), bn(cout)
            changes = stride != 1 or cin != cout
            self.short = nnx.data(nnx.Sequential(Conv(cin, cout, 1, stride), bn(cout)) if changes else None)

        def __call__(self, x):
            y = nnx.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return nnx.relu(y + (x if self.short is None else self.short(x)))

    class ResNet18(nnx.Module):
        def __init__(self):
            self.conv, self.bn = Conv(3, 64, 7, 2), bn(64)
            blocks, cin = [], 64
            for cout, stride in STAGES:
                for b in range(BLOCKS):
                    blocks.append(Block(cin, cout, stride if b == 0 else 1))
                    cin = cout
            self.blocks = nnx.List(blocks)
            self.fc_w = nnx.Param(normal((512, nclass), 512, 1.0))
            self.fc_b = nnx.Param(jnp.zeros((nclass,)))

        def __call__(self, x):
            x = nnx.relu(self.bn(self.conv(x)))
            pad = ((0, 0), (0, 0), (1, 1), (1, 1))
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2), pad)
            for block in self.blocks:
                x = block(x)
            return x.mean(axis=(2, 3)) @ self.fc_w[...] + self.fc_b[...]

    return ResNet18()

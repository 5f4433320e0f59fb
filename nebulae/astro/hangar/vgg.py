"""VGG-16 (configuration D): 13 3x3 convs in five max-pooled blocks, then three Dense layers with dropout.

Parameter names follow torchvision (`features/0/weight` ... `classifier/6/bias`); 138,357,544
parameters for 3x224x224 inputs and 1000 classes. The first Dense layer is sized for `in_shape`
(512 x H/32 x W/32 inputs), as torchvision's is for its 7x7 adaptive pool.
"""

from __future__ import annotations

from .shapes import chw

CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG_16:  # noqa: N801 (the original's name)
    """VGG-16 for (B, in_chs, H, W) inputs (H, W multiples of 32); returns (B, nclass) logits.

    `in_shape` (C, H, W) defaults to (in_chs, 224, 224); `p_drop` is the classifier's dropout rate.

    Args:
        in_chs: input channels.
        nclass: the number of classes (logits per input).
        p_drop: the dropout rate of the classifier.
        in_shape: (C, H, W) of the inputs; None means (in_chs, 224, 224).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, in_chs: int = 3, nclass: int = 1000, p_drop: float = 0.5, in_shape=None, scope: str = "VGG_16"):
        super().__init__(scope)
        dock = self.dock
        c, h, w = chw((in_chs, 224, 224) if in_shape is None else in_shape, "VGG_16", 32)
        if c != in_chs:
            raise ValueError(f"VGG_16: in_chs {in_chs} differs from in_shape {tuple(in_shape)} (C, H, W)")
        self.in_shape = (c, h, w)
        layers, chs = [], c
        for item in CONFIG:
            if item == "M":
                layers.append(dock.MaxPool((2, 2), 2))
            else:
                layers += [dock.Conv(chs, item, (3, 3), 1, 1), dock.Relu()]
                chs = item
        self.features = layers
        self.reshape = dock.Reshape()
        flat = chs * (h // 32) * (w // 32)
        self.classifier = [
            dock.Dense(flat, 4096),
            dock.Relu(),
            dock.Dropout(p_drop),
            dock.Dense(4096, 4096),
            dock.Relu(),
            dock.Dropout(p_drop),
            dock.Dense(4096, int(nclass)),
        ]

    def run(self, x):
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"VGG_16 was built for (B, *{self.in_shape}) inputs, got shape {tuple(x.shape)}")
        for layer in self.features:
            x = layer(x)
        x = self.reshape(x, (x.shape[0], -1))
        for layer in self.classifier:
            x = layer(x)
        return x


CRAFTS = ["VGG_16"]

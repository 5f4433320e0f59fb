"""ResNet v1.5 (18, 34, 50): torchvision's architecture, parameter names and parameter counts.

Stem 7x7/2 conv + BN + ReLU + 3x3/2 max-pool; four stages of BasicBlocks (18, 34) or Bottlenecks (50,
stride on the 3x3 conv: v1.5); a 1x1 conv (stride s) + BN shortcut where the shape changes; global
average pooling and a Dense head. Any H, W >= 1 works (32x32 gives a 1x1 last stage).
"""

from __future__ import annotations

from .shapes import check_input, chw

LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}
WIDTHS = (64, 128, 256, 512)


def conv(dock, in_chs: int, out_chs: int, k: int, stride: int = 1):
    return dock.Conv(in_chs, out_chs, (k, k), stride, k // 2, b_init=dock.Void())


def shortcut(dock, in_chs: int, out_chs: int, stride: int):
    if stride == 1 and in_chs == out_chs:
        return None
    return [conv(dock, in_chs, out_chs, 1, stride), dock.BN(out_chs)]


class BasicBlock:
    """Two 3x3 conv + BN layers and a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_chs: int, chs: int, stride: int = 1, scope: str = "BASICBLOCK"):
        super().__init__(scope)
        dock = self.dock
        self.conv1, self.bn1 = conv(dock, in_chs, chs, 3, stride), dock.BN(chs)
        self.conv2, self.bn2 = conv(dock, chs, chs, 3), dock.BN(chs)
        self.relu = dock.Relu()
        self.downsample = shortcut(dock, in_chs, chs, stride)

    def run(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample is not None:
            for layer in self.downsample:
                x = layer(x)
        return self.relu(y + x)


class Bottleneck:
    """1x1 reduce, 3x3 (carrying the stride: v1.5), 1x1 expand by 4, each with BN; residual connection."""

    expansion = 4

    def __init__(self, in_chs: int, chs: int, stride: int = 1, scope: str = "BOTTLENECK"):
        super().__init__(scope)
        dock = self.dock
        self.conv1, self.bn1 = conv(dock, in_chs, chs, 1), dock.BN(chs)
        self.conv2, self.bn2 = conv(dock, chs, chs, 3, stride), dock.BN(chs)
        self.conv3, self.bn3 = conv(dock, chs, chs * 4, 1), dock.BN(chs * 4)
        self.relu = dock.Relu()
        self.downsample = shortcut(dock, in_chs, chs * 4, stride)

    def run(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.downsample is not None:
            for layer in self.downsample:
                x = layer(x)
        return self.relu(y + x)


class ResNet:
    """ResNet-`depth` (18, 34 or 50; v1.5) for (B, C, H, W) inputs, C = in_shape[0]; returns (B, nclass) logits.

    Args:
        depth: 18, 34 (BasicBlocks) or 50 (Bottlenecks).
        nclass: the number of classes (logits per input).
        in_shape: (C, H, W) of the inputs; C sets the first convolution's input channels.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, depth: int, nclass: int = 1000, in_shape=(3, 224, 224), scope: str = "RESNET"):
        super().__init__(scope)
        dock = self.dock
        if depth not in LAYOUTS:
            raise ValueError(f"ResNet depth must be one of {sorted(LAYOUTS)}, got {depth!r}")
        if int(nclass) < 1:
            raise ValueError(f"ResNet nclass must be >= 1, got {nclass!r}")
        self.in_chs = chw(in_shape, "ResNet")[0]
        kind, counts = LAYOUTS[depth]
        block = self.hangar.BasicBlock if kind == "basic" else self.hangar.Bottleneck
        self.conv1, self.bn1 = conv(dock, self.in_chs, 64, 7, 2), dock.BN(64)
        self.relu = dock.Relu()
        self.maxpool = dock.MaxPool((3, 3), 2, 1)
        chs = 64
        for i, (width, count) in enumerate(zip(WIDTHS, counts)):
            blocks = []
            for j in range(count):
                blocks.append(block(chs, width, 2 if i > 0 and j == 0 else 1))
                chs = width * block.expansion
            setattr(self, f"layer{i + 1}", blocks)
        self.avgpool = dock.AvgPool((-1, -1))
        self.reshape = dock.Reshape()
        self.fc = dock.Dense(chs, int(nclass))

    def run(self, x):
        check_input(x, self.in_chs, 1, "ResNet")
        y = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for blk in stage:
                y = blk(y)
        y = self.avgpool(y)
        return self.fc(self.reshape(y, (y.shape[0], y.shape[1])))


class ResNet18(ResNet):
    """ResNet-18 (11,689,512 parameters with 1000 classes).

    Args:
        nclass: the number of classes (logits per input).
        in_shape: (C, H, W) of the inputs; C sets the first convolution's input channels.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, nclass: int = 1000, in_shape=(3, 224, 224), scope: str = "RESNET"):
        super().__init__(18, nclass, in_shape, scope)


class ResNet34(ResNet):
    """ResNet-34 (21,797,672 parameters with 1000 classes).

    Args:
        nclass: the number of classes (logits per input).
        in_shape: (C, H, W) of the inputs; C sets the first convolution's input channels.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, nclass: int = 1000, in_shape=(3, 224, 224), scope: str = "RESNET"):
        super().__init__(34, nclass, in_shape, scope)


class ResNet50(ResNet):
    """ResNet-50 v1.5 (25,557,032 parameters with 1000 classes).

    Args:
        nclass: the number of classes (logits per input).
        in_shape: (C, H, W) of the inputs; C sets the first convolution's input channels.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, nclass: int = 1000, in_shape=(3, 224, 224), scope: str = "RESNET"):
        super().__init__(50, nclass, in_shape, scope)


CRAFTS = ["BasicBlock", "Bottleneck", "ResNet", "ResNet18", "ResNet34", "ResNet50"]

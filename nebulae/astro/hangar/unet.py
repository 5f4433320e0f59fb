"""A small U-Net (Ronneberger et al.): double 3x3 conv blocks, max-pool down, TransConv up, concatenated skips.

`depth` down-steps, channels base_chs * 2^i; padded convolutions keep sizes, so H and W must be
multiples of 2^depth and the output has the input's size.
"""

from __future__ import annotations


class DoubleConv:
    """(3x3 conv + BN + ReLU) twice."""

    def __init__(self, in_chs: int, out_chs: int, scope: str = "DOUBLECONV"):
        super().__init__(scope)
        dock = self.dock
        self.conv1 = dock.Conv(in_chs, out_chs, (3, 3), 1, 1, b_init=dock.Void())
        self.bn1 = dock.BN(out_chs)
        self.conv2 = dock.Conv(out_chs, out_chs, (3, 3), 1, 1, b_init=dock.Void())
        self.bn2 = dock.BN(out_chs)
        self.relu = dock.Relu()

    def run(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class UNet:
    """U-Net for (B, in_chs, H, W) inputs (H, W multiples of 2^depth); returns (B, out_chs, H, W) logits.

    Args:
        in_chs: input channels.
        out_chs: output channels (logits per pixel).
        base_chs: the channels of the first block; block i has base_chs * 2^i.
        depth: the number of down-steps (>= 1).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, in_chs: int = 3, out_chs: int = 1, base_chs: int = 16, depth: int = 3, scope: str = "UNET"):
        super().__init__(scope)
        dock = self.dock
        if int(depth) < 1 or min(in_chs, out_chs, base_chs) < 1:
            raise ValueError(
                f"UNet needs depth >= 1 and positive channel counts, got in_chs={in_chs}, out_chs={out_chs},"
                f" base_chs={base_chs}, depth={depth}"
            )
        self.in_chs, self.depth = in_chs, int(depth)
        widths = [base_chs * 2**i for i in range(self.depth + 1)]
        self.down = [self.hangar.DoubleConv(a, b) for a, b in zip([in_chs, *widths[:-2]], widths[:-1])]
        self.pool = dock.MaxPool((2, 2), 2)
        self.bottom = self.hangar.DoubleConv(widths[-2], widths[-1])
        self.up = [dock.TransConv(b, a, (2, 2), 2) for a, b in zip(widths[:-1], widths[1:])][::-1]
        self.dec = [self.hangar.DoubleConv(2 * a, a) for a in widths[:-1]][::-1]
        self.concat = dock.Concat()
        self.head = dock.Conv(base_chs, out_chs, (1, 1))

    def run(self, x):
        step = 2**self.depth
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != self.in_chs or shape[2] % step or shape[3] % step:
            raise ValueError(
                f"UNet takes (B, {self.in_chs}, H, W) inputs with H and W multiples of {step}, got shape {shape}"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, block, skip in zip(self.up, self.dec, skips[::-1]):
            x = block(self.concat([skip, up(x)], 1))
        return self.head(x)


CRAFTS = ["DoubleConv", "UNet"]

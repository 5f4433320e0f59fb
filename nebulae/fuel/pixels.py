"""The decompression-bomb guard: an image's size read from its header, checked before any decoding.

A few hundred kilobytes of PNG can hold 20000 x 20000 pixels (1.2 GB as RGB). `check(data, limit)`
reads width and height from the header (PNG, JPEG by hand; other formats through Pillow, which
reads only the header when opening) and refuses an image over `limit` pixels. The limit is
`DEFAULT_MAX_PIXELS` (2**28, about 268 megapixels, above every camera sensor), or the environment
variable NEB_MAX_PIXELS, or what the caller passes (Generator(max_pixels=...)); 0 means no limit.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from collections.abc import Iterator

from PIL import Image

DEFAULT_MAX_PIXELS = 2**28
ENV = "NEB_MAX_PIXELS"
_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
ENV_HOW = f"if the image is genuine, raise the limit: set the environment variable {ENV}=N (0: no limit)"
HOW = (
    "if the image is genuine, raise the limit: Generator(max_pixels=N) or `pack --max-pixels N`, or set the "
    f"environment variable {ENV}=N (0: no limit)"
)


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than the limit."""


def resolve(max_pixels: int | None) -> int | None:
    """The limit in force: `max_pixels` when given (0: none), else NEB_MAX_PIXELS, else the default; None = no limit."""
    if max_pixels is None:
        text = os.environ.get(ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        if text.lower() in ("none", "off"):
            return None
        try:
            max_pixels = int(text)
        except ValueError:
            raise ValueError(
                f"environment variable {ENV}={text!r} is not a pixel count: set an integer (0 or 'none': no limit)"
            ) from None
        if max_pixels < 0:
            raise ValueError(f"environment variable {ENV}={text!r} must be >= 0 (0: no limit)")
    return None if max_pixels == 0 else int(max_pixels)


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the image's header declares them, without decoding; None when unreadable."""
    if data[:8] == _PNG and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    try:
        with unlimited_pillow(), Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None  # not an image Pillow knows: the decoder reports it


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA:  # scan data before any frame header
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def check(data: bytes, limit: int | None, how: str = HOW) -> None:
    """Raise ImageTooLargeError when the header of `data` declares more than `limit` pixels (None: no limit);
    the message ends with `how` (how to raise the limit)."""
    if limit is None:
        return
    size = header_size(data)
    if size is not None and size[0] * size[1] > limit:
        width, height = size
        raise ImageTooLargeError(
            f"the image is {width} x {height} = {width * height:,} pixels, over the limit of {limit:,} "
            f"(a decompression bomb?); {how}"
        )


@contextlib.contextmanager
def unlimited_pillow() -> Iterator[None]:
    """Pillow without its own bomb check (ours ran first), its warning silenced."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = before

"""Images into a model's image input: decode (JPEG, PNG, WebP, ... through Pillow), convert to RGB
or grayscale, resize, reorder channels, normalize, and lay out as the input takes them. One place
for it, used by image-folder feeds (validate, quantize, edge calibration) and by the server's
images-in requests.

An image input is 4-D with 1 or 3 channels first (NCHW) or last (NHWC). Normalization is
``(pixels - mean) / std`` per channel on 0..255 pixels, in the model's channel order ("BGR" reverses
them first, as OpenCV- and Caffe-trained models take them). Encoded bytes from a client are checked
before they are decoded: more than MAX_PIXELS (a "decompression bomb", a small file that decodes to
gigabytes) or an unreadable or truncated file is refused, naming the problem.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from ..errors import UsageError
from ..tensors import TensorSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
IMAGENET_MEAN = (123.675, 116.28, 103.53)   # what torchvision and timm models expect, on 0..255 pixels
IMAGENET_STD = (58.395, 57.12, 57.375)
MAX_PIXELS = 64_000_000   # what one encoded image may decode to (8000 x 8000)


@dataclass(frozen=True)
class ImageLayout:
    """Where an image goes in an input: its channels, height, width and whether channels come first."""
    channels: int
    height: int | None
    width: int | None
    channels_first: bool

    @classmethod
    def of(cls, spec: TensorSpec, size: tuple[int, int] | None = None) -> ImageLayout:
        if spec.shape is None or len(spec.shape) != 4:
            raise UsageError(f"{spec.name!r} is no image input (4-D, channels first or last): {spec.shape_str()}",
                             hint="give an .npz of inputs instead")
        first = spec.shape[1] in (1, 3) and spec.shape[3] not in (1, 3)
        channels, height, width = (spec.shape[1:] if first else (spec.shape[3], *spec.shape[1:3]))
        if channels not in (1, 3):
            raise UsageError(f"{spec.name!r} takes {channels} channels; images have 1 or 3")
        height, width = size or (height, width)
        return cls(channels, height, width, first)

    def sized(self) -> tuple[int, int]:
        if not self.height or not self.width:
            raise UsageError("the image input has no fixed height and width", hint="give --image-size H,W")
        return self.height, self.width


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channel_order: str = "RGB"


def to_input(image, layout: ImageLayout, normalization: Normalization | None, dtype) -> np.ndarray:
    """One opened Pillow image as one sample of the input (no batch dim)."""
    from PIL import Image
    height, width = layout.sized()
    image = image.convert("L" if layout.channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32).reshape(height, width, -1)
    if normalization is not None:
        if normalization.channel_order == "BGR" and pixels.shape[-1] == 3:
            pixels = pixels[..., ::-1]
        pixels = (pixels - np.asarray(normalization.mean, np.float32)) / np.asarray(normalization.std, np.float32)
    return (np.transpose(pixels, (2, 0, 1)) if layout.channels_first else pixels).astype(dtype)


def load_file(path: Path, layout: ImageLayout, normalization: Normalization | None, dtype) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return to_input(image, layout, normalization, dtype)
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"cannot read the image {str(path)!r}: {exc}") from None


def decode(data: bytes, layout: ImageLayout, normalization: Normalization | None, dtype, what: str) -> np.ndarray:
    """Encoded image bytes from a client as one sample; ValueError naming ``what`` when they are not a
    readable image, are truncated, or would decode to more than MAX_PIXELS."""
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:   # reads the header only
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ValueError(f"{what} is {width}x{height} pixels; images of at most {MAX_PIXELS:,} pixels "
                                     "are decoded (send it resized)")
                image.load()
                return to_input(image, layout, normalization, dtype)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{what} would decode to more than {MAX_PIXELS:,} pixels (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ValueError(f"{what} is not an image Pillow can read (JPEG, PNG, WebP, BMP, GIF)") from None
    except OSError as exc:
        raise ValueError(f"{what} is truncated or corrupt: {exc}") from None

"""One image file to one training row: grayscale, 8x8, light digits on dark, pixels 0..16.

Pillow is an optional extra (``jobyard[images]``), imported only when a dataset really is a
folder of images, so the reference workload keeps needing nothing but numpy otherwise.
Downscaling averages each block of source pixels (Pillow's BOX filter), which is how the
UCI digits were made: 32x32 bitmaps, ink counted in 4x4 blocks.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from jobyard.workloads.data import IMAGE_SHAPE, PIXEL_MAX
from jobyard.workloads.problems import DatasetError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

INSTALL_HINT = "install jobyard[images] (pip install 'jobyard[images]')"
WHITE = 255.0


class UnreadableImage(Exception):
    """This one file is not an image Pillow can decode."""


def pillow(where: Path) -> ModuleType:
    """``PIL.Image``, or a ``DatasetError`` that says how to get it."""
    try:
        import PIL.Image
    except ImportError as exc:
        raise DatasetError(
            f"{where} is a folder of images and reading images needs Pillow, which is not "
            f"installed: {INSTALL_HINT}"
        ) from exc
    module: ModuleType = PIL.Image  # Any when Pillow (which is typed) is not installed
    return module


def extensions(image: ModuleType) -> frozenset[str]:
    """File suffixes Pillow can open (``.png``, ``.jpg``, ``.bmp``, ...), lower case."""
    return frozenset(suffix.lower() for suffix in image.registered_extensions())


def light_border(pixels: FloatArray, white: float) -> bool:
    """Whether an image's outermost rows and columns are mostly light: paper, not ink."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    return bool(border.mean() > white / 2)


def _grayscale(image: ModuleType, img: Any) -> Any:
    """``L`` mode; transparent pixels count as white paper."""
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        paper = image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = image.alpha_composite(paper, rgba)
    return img.convert("L")


def load(image: ModuleType, path: Path | IO[bytes], invert: bool | str) -> tuple[IntArray, bool]:
    """(the 64 pixels 0..16, whether the image was inverted); ``invert`` may be ``"auto"``."""
    try:
        with image.open(path) as img:
            gray = _grayscale(image, img)
    except (OSError, ValueError, image.DecompressionBombError) as exc:
        raise UnreadableImage(f"cannot read image: {exc}") from exc
    full = np.asarray(gray, dtype=np.float64)
    flip = light_border(full, WHITE) if invert == "auto" else bool(invert)
    size = (IMAGE_SHAPE[1], IMAGE_SHAPE[0])
    small = np.asarray(gray.convert("F").resize(size, image.Resampling.BOX), dtype=np.float64)
    ink = WHITE - small if flip else small
    pixels = np.rint(np.clip(ink, 0.0, WHITE) * PIXEL_MAX / WHITE).astype(np.int64)
    return pixels.reshape(-1), flip


def png_of(pixels: npt.ArrayLike, scale: int = 4) -> bytes:
    """A digit row (64 pixels, 0..16) as a PNG a person would send a model server: light
    ink on dark, each pixel ``scale`` x ``scale``; ``load`` reads it back to the same row."""
    image = pillow(Path("<png>"))
    cells = np.asarray(pixels, dtype=np.float64).reshape(IMAGE_SHAPE)
    gray = np.kron(np.rint(cells * WHITE / PIXEL_MAX), np.ones((scale, scale))).astype(np.uint8)
    out = io.BytesIO()
    image.fromarray(gray, mode="L").save(out, format="PNG")
    return out.getvalue()

"""Reading a folder of the user's images: intensities scaled by each file's bit depth, channels and size
inferred from the files (or given), every conversion counted for the load summary.

Rules (each one stated in the summary):

* **Bit depth.** 8-bit images are divided by 255, 16-bit ones (``I;16`` PNG / TIFF, or 32-bit integer
  images holding 16-bit data) by 65535, 1-bit ones are 0 / 1: never clipped to 8 bits.
* **Channels.** ``channels = 0`` infers them: 1 when every image is greyscale, else 3 (greyscale images
  are then replicated to RGB). A colour image read as greyscale (``channels = 1``) becomes its
  luminance (ITU-R 601); an alpha channel is dropped (counted).
* **Size.** ``size = 0`` infers it: the smallest shorter side among the images, rounded down to a
  multiple of 4 (the U-Net halves it twice), at most 64. Every image is centre-cropped to a square
  and resized to ``size`` x ``size`` (bicubic); images of other sizes are counted (with how many were
  upscaled).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_INFERRED_SIZE = 64
_GREY = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601


@dataclass
class Decoded:
    """One image as floats ``[H, W, C]`` in [0, 1] (C = 1 or 3), and what reading it took."""

    pixels: np.ndarray
    bits: int
    alpha: bool


@dataclass
class FolderNotes:
    """Counts for the load summary."""

    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    bits: Counter[int] = field(default_factory=Counter)
    grey: int = 0
    colour: int = 0
    alpha: int = 0


def decode(im: Any, path: Path) -> Decoded:
    """A PIL image -> floats in [0, 1] scaled by its bit depth (see the module rules)."""
    mode = im.mode
    alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        if a.min() < 0 or a.max() > 65535:
            raise ValueError(f"{path}: 32-bit integer image with values in [{a.min():g}, {a.max():g}]; only 16-bit "
                             "data (0..65535) can be scaled by its bit depth: convert it to 8 or 16 bits")
        return Decoded(a[..., None] / 65535.0, 16, False)
    if mode == "F":
        a = np.asarray(im).astype(np.float64)
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"{path}: floating-point image with values in [{a.min():g}, {a.max():g}], not [0, 1]; "
                             "rescale it or save it as an 8/16-bit PNG")
        return Decoded(a[..., None], 32, False)
    if mode == "1":
        return Decoded(np.asarray(im, dtype=np.float64)[..., None], 1, False)
    grey = mode in _GREY
    rgb = im.convert("L" if grey else "RGB")
    a = np.asarray(rgb).astype(np.float64) / 255.0
    return Decoded(a[..., None] if grey else a, 8, alpha)


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``[H, W, C]`` floats to a square and resize each channel to ``size`` (bicubic, in float:
    no rounding to 8 bits); bicubic overshoot is clipped to [0, 1]."""
    from PIL import Image

    h, w = pixels.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = pixels[top:top + s, left:left + s]
    if s == size:
        return crop
    chans = [np.asarray(Image.fromarray(crop[..., c].astype(np.float32), mode="F")
                        .resize((size, size), Image.Resampling.BICUBIC)) for c in range(crop.shape[2])]
    return np.clip(np.stack(chans, axis=-1), 0.0, 1.0)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    if pixels.shape[2] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    return (pixels @ _LUMA)[..., None]


def read_folder(files: list[Path], *, size: int, channels: int) -> tuple[np.ndarray, list[str]]:
    """``[N, C, S, S]`` floats in [0, 1] and the summary clauses (see the module rules)."""
    from PIL import Image, UnidentifiedImageError

    decoded, notes = [], FolderNotes()
    for f in files:
        try:
            with Image.open(f) as im:
                d = decode(im, f)
        except (UnidentifiedImageError, OSError) as e:
            from .data import ImageDataError

            raise ImageDataError(f"cannot read image {f}: {e}") from e
        decoded.append(d)
        notes.sizes[(d.pixels.shape[1], d.pixels.shape[0])] += 1
        notes.bits[d.bits] += 1
        notes.grey += d.pixels.shape[2] == 1
        notes.colour += d.pixels.shape[2] == 3
        notes.alpha += d.alpha
    clauses = []
    if channels == 0:
        channels = 3 if notes.colour else 1
        clauses.append(f"channels {channels} (inferred: {notes.colour} colour, {notes.grey} greyscale image(s)"
                       + ("; greyscale replicated to RGB" if channels == 3 and notes.grey else "") + ")")
    else:
        converted = notes.grey if channels == 3 else notes.colour
        clauses.append(f"channels {channels}" + (f" ({converted} image(s) converted: "
                                                 f"{'greyscale replicated to RGB' if channels == 3 else 'luminance'})"
                                                 if converted else ""))
    shortest = min(min(w, h) for w, h in notes.sizes)
    if size == 0:
        size = max(4, min(MAX_INFERRED_SIZE, shortest // 4 * 4))
        clauses.append(f"size {size} (inferred: the smallest shorter side {shortest} rounded down to a multiple of 4, "
                       f"at most {MAX_INFERRED_SIZE}; set data.size to choose)")
    sizes = ", ".join(f"{w}x{h} ({k})" for (w, h), k in notes.sizes.most_common(4))
    other = len(notes.sizes) - 4
    rule = "kept as they are" if set(notes.sizes) == {(size, size)} else \
        f"centre-cropped to squares and resized to {size}x{size} (bicubic)"
    upscaled = sum(k for (w, h), k in notes.sizes.items() if min(w, h) < size)
    clauses.append(f"sizes {sizes}{f' and {other} more' if other > 0 else ''}: {rule}"
                   + (f", {upscaled} upscaled" if upscaled else ""))
    depth = ", ".join(f"{k} {b}-bit" for b, k in sorted(notes.bits.items()))
    scale = "; 16-bit ones scaled by 65535, not clipped" if 16 in notes.bits else ""
    clauses.append(f"bit depth {depth}{scale}")
    if notes.alpha:
        clauses.append(f"alpha channel dropped from {notes.alpha} image(s)")
    x = np.stack([to_channels(resize_square(d.pixels, size), channels) for d in decoded])
    return x.transpose(0, 3, 1, 2), clauses

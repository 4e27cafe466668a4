"""Image datasets: ``[N, C, H, W]`` float tensors in [-1, 1] with optional class labels.

* ``digits``: scikit-learn's bundled handwritten digits (1797 real 8x8 images, upsampled; tests);
* ``fashion_mnist``: Debian's ``dataset-fashion-mnist`` (70k 28x28, MIT; benchmarks);
* ``folder``: your own images, one sub-folder per class (PIL).

Every dataset can add ``cond["lowres"]`` (the image average-pooled by ``lowres``) for
super-resolution models, and has ``denormalize`` (to [0, 1] intensities) for impute metrics in
data units.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff import ArrayDataset, Batch, ConfigError, Field, StateSpec, report

from .folder import IMAGE_SUFFIXES

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


class ImageDataError(ConfigError):
    """Image files are missing or unreadable; a :class:`~polydiff.ConfigError`, so the CLI prints the
    message (which names the fix) instead of a traceback."""


class ImageDataset(ArrayDataset):
    """In-memory images ``[N, C, H, W]`` in [-1, 1].

    Args:
        images: ``[N, C, H, W]`` floats in [-1, 1].
        labels: ``[N]`` class labels or ``None``.
        name, options: the dataset's registry name and load options; ``cache_key`` (a hash of both)
            names the reference classifier of the image metrics.
        lowres: > 1: every batch carries ``cond["lowres"]``, the images average-pooled by this factor
            (the input of a super-resolution model); 0 or 1: none.
        class_names: readable names of the labels (pictures).
    """

    def __init__(self, images: Tensor, labels: Tensor | None = None, *, name: str, options: dict[str, Any],
                 lowres: int = 0, num_classes: int | None = None, class_names: tuple[str, ...] = ()) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {list(images.shape)}")
        if images.numel() and (images.min() < -1 - 1e-6 or images.max() > 1 + 1e-6):
            raise ValueError(f"images must lie in [-1, 1], got range [{float(images.min()):.3g}, "
                             f"{float(images.max()):.3g}]")
        c, h, w = images.shape[1:]
        super().__init__(StateSpec((Field("x", (c, h, w)),)), images, labels=labels, num_classes=num_classes)
        if lowres > 1 and (h % lowres or w % lowres):
            raise ValueError(f"lowres factor {lowres} does not divide the image size {h}x{w}")
        self.name, self.options, self.lowres, self.class_names = name, dict(options), lowres, class_names
        self.summary = ""  # what the loader did (inferred, converted, ignored), one line; see polydiff.report
        self._lowres = lowres_of(self.x, lowres) if lowres > 1 else None

    @property
    def cache_key(self) -> str:
        """Identifies the images (not the super-resolution option): the reference classifier's key."""
        opts = {k: v for k, v in sorted(self.options.items()) if k != "lowres"}
        text = json.dumps({"dataset": self.name, "options": opts, "shape": list(self.x.shape)}, sort_keys=True,
                          default=str)
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def get_batch(self, indices: Tensor) -> Batch:
        batch = super().get_batch(indices)
        if self._lowres is not None:
            batch.cond["lowres"] = self._lowres[indices]
        return batch

    def denormalize(self, x: Tensor) -> Tensor:
        """Model units [-1, 1] -> intensities [0, 1] (impute metrics report in these units)."""
        return (x + 1) / 2

    def __repr__(self) -> str:
        return f"ImageDataset({self.name}, n={len(self)}, shape={list(self.x.shape[1:])}, classes={self.num_classes})"


def lowres_of(x: Tensor, factor: int) -> Tensor:
    """Average-pool ``[B, C, H, W]`` by ``factor`` (the degradation a super-resolution model inverts)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def _resize(x: Tensor, size: int) -> Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1]).clamp(-1, 1)


def _first(n: int, *tensors: Tensor) -> list[Tensor]:
    if n < 0:
        raise ValueError(f"n must be >= 0 (0 = all images), got {n}")
    return [t[:n] if n else t for t in tensors]


def load_digits(*, n: int = 0, size: int = 16, lowres: int = 0) -> ImageDataset:
    """scikit-learn's 1797 handwritten digits (8x8, 0..16), resized to ``size`` (bilinear)."""
    from sklearn.datasets import load_digits as sk_digits

    if size < 8:
        raise ValueError(f"digits: size must be >= 8 (the images are 8x8), got {size}")
    d = sk_digits()
    x = torch.from_numpy(d.images).float()[:, None] / 8.0 - 1.0
    x, y = _first(n, _resize(x, size), torch.from_numpy(d.target).long())
    return ImageDataset(x, y, name="digits", options={"n": n, "size": size}, lowres=lowres, num_classes=10,
                        class_names=tuple(str(i) for i in range(10)))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, dims, big-endian uint8 data), gzip or plain."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ImageDataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} values (truncated file?)")
    return body.reshape(dims)


def load_fashion_mnist(*, split: str = "train", n: int = 0, size: int = 28, lowres: int = 0,
                       root: str = str(FASHION_DIR)) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 60k train / 10k test 28x28 greyscale, 10 classes."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"fashion_mnist: split must be 'train', 'test' or 'all', got {split!r}")
    base = Path(root)
    parts = [("train", "train"), ("test", "t10k")]
    xs, ys = [], []
    for name, stem in parts:
        if split not in (name, "all"):
            continue
        img, lab = base / f"{stem}-images-idx3-ubyte.gz", base / f"{stem}-labels-idx1-ubyte.gz"
        if not img.is_file() or not lab.is_file():
            raise ImageDataError(f"Fashion-MNIST not found at {img}: install it with "
                                    "`apt-get install -y dataset-fashion-mnist` (or pass data.root=DIR holding "
                                    f"{img.name} and {lab.name})")
        xs.append(torch.from_numpy(read_idx(img).copy()).float()[:, None] / 127.5 - 1.0)
        ys.append(torch.from_numpy(read_idx(lab).copy()).long())
    x, y = _first(n, torch.cat(xs), torch.cat(ys))
    return ImageDataset(_resize(x, size), y, name="fashion_mnist", options={"split": split, "n": n, "size": size},
                        lowres=lowres, num_classes=10, class_names=FASHION_CLASSES)


def load_folder(*, path: str = "", size: int = 0, channels: int = 0, n: int = 0, lowres: int = 0) -> ImageDataset:
    """Images under ``path``: one sub-folder per class (labels in sorted folder-name order), or
    image files directly in ``path`` (unlabelled). Each is centre-cropped to a square and resized
    to ``size`` (bicubic); ``size = 0`` / ``channels = 0`` infer them from the files, and 16-bit
    images are scaled by their bit depth (rules in :mod:`polydiff_image.folder`). A one-line load
    summary says what was inferred, converted and ignored (``dataset.summary``)."""
    from .folder import read_folder

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise ImageDataError(f"image folder {str(root)!r} does not exist; set data.path=DIR (one sub-folder "
                                "of images per class, or images directly in DIR)")
    if channels not in (0, 1, 3):
        raise ValueError(f"channels must be 1 (greyscale), 3 (RGB) or 0 (infer from the files), got {channels}")
    if size < 0 or n < 0:
        raise ValueError(f"size and n must be >= 0 (0 = infer / all images), got size={size}, n={n}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and _images_in(p))
    files = [(f, i) for i, c in enumerate(classes) for f in _images_in(root / c)] if classes else \
        [(f, -1) for f in _images_in(root)]
    if not files:
        raise ImageDataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root} or its sub-folders")
    ignored = _other_files(root, classes)
    total = len(files)
    files = files[:n] if n else files
    pixels, clauses = read_folder([f for f, _ in files], size=size, channels=channels)
    x = torch.from_numpy(pixels).float() * 2.0 - 1.0
    c, s = x.shape[1], x.shape[-1]
    labels = torch.tensor([i for _, i in files]) if classes else None
    per_class = Counter(i for _, i in files)
    head = (f"{len(files)} image(s) in {len(classes)} class folder(s) ("
            + ", ".join(f"{name}: {per_class[i]}" for i, name in enumerate(classes)) + ")" if classes
            else f"{len(files)} unlabelled image(s)")
    extra = [f"first {n} of {total} images kept (n={n})"] if n and total > n else []
    if ignored:
        kinds = Counter(("image without a class folder" if f.suffix.lower() in IMAGE_SUFFIXES and f.parent == root
                         else f.suffix.lower() or f.name) for f in ignored)
        extra.append(f"{len(ignored)} other file(s) ignored (" + ", ".join(f"{k}: {v}" for k, v in
                                                                           kinds.most_common(5)) + ")")
    ds = ImageDataset(x, labels, name="folder", options={"path": str(root.resolve()), "size": s, "channels": c,
                                                         "n": n, "files": len(files)},
                      lowres=lowres, num_classes=len(classes) or None, class_names=tuple(classes))
    ds.summary = "; ".join([f"image folder {root.name!r}", head, *clauses, *extra])
    report(ds.summary)
    return ds


def _other_files(root: Path, classes: list[str]) -> list[Path]:
    """Files not read (the summary counts them): non-images in the folders read, and, with class
    sub-folders, every file directly in ``root`` (images there have no class)."""
    inside = [f for c in classes for f in (root / c).iterdir()
              if f.is_file() and f.suffix.lower() not in IMAGE_SUFFIXES]
    top = [f for f in root.iterdir() if f.is_file() and (classes or f.suffix.lower() not in IMAGE_SUFFIXES)]
    return sorted(inside + top)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


__all__ = ["FASHION_CLASSES", "ImageDataError", "ImageDataset", "load_digits", "load_fashion_mnist", "load_folder",
           "lowres_of", "read_idx"]

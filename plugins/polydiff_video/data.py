"""Video datasets: clips ``[N, T, C, H, W]`` in [-1, 1] with optional class labels.

* ``moving_digits``: scikit-learn's real handwritten digits bouncing in a canvas, generated
  deterministically from a seed; the label is the digit (tests, benchmark);
* ``opencv_sample``: real street footage, OpenCV's ``vtest.avi`` (795 frames of pedestrians, Debian's
  ``opencv-doc``), downscaled on load and cut into clips;
* ``files``: your own video file(s) or folder(s) of frame images (imageio with PyAV).

Every dataset has ``denormalize`` (to [0, 1] intensities) so impute metrics report in those units,
and ``frames()``: its frames as a labelled image dataset, on which the frame metrics' reference
classifier is trained (the clip's label, or for unlabelled footage the segment of the source video
a clip comes from).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff import ArrayDataset, ConfigError, Field, StateSpec, report
from polydiff.diffusion import Subset, holdout_apart

from .summary import footage_summary

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
COLOUR_LEVELS = 12  # a pixel is coloured when its R, G, B differ by more than this (of 255)
COLOUR_CHECK_EVERY = 8  # frames read as grey: every 8th is also checked for colour (to say what was converted)
SEGMENTS = 10  # pseudo-classes of unlabelled footage for the reference classifier: parts of the video
MAX_CLASSIFIER_FRAMES = 6000  # frames the reference classifier trains on (CPU minutes, not hours)


class VideoDataError(ConfigError):
    """Video files are missing, unreadable or too short; a :class:`~polydiff.ConfigError`, so the CLI
    prints the message (which names the fix) instead of a traceback."""


class VideoDataset(ArrayDataset):
    """In-memory clips ``[N, T, C, H, W]`` in [-1, 1].

    Args:
        clips: ``[N, T, C, H, W]`` floats in [-1, 1].
        labels: ``[N]`` class labels or ``None``.
        name, options: registry name and load options (they name the cached reference classifier).
        segments: ``[N]`` index of the part of the source footage each clip comes from (unlabelled
            data: the reference classifier's pseudo-classes); default: none.
        fps: frames per second of the clips (GIF / MP4 output).
    """

    def __init__(self, clips: Tensor, labels: Tensor | None = None, *, name: str, options: dict[str, Any],
                 num_classes: int | None = None, segments: Tensor | None = None, fps: float = 10.0) -> None:
        if clips.ndim != 5:
            raise ValueError(f"clips must be [N, T, C, H, W], got shape {list(clips.shape)}")
        if clips.shape[1] < 2:
            raise ValueError(f"clips need at least 2 frames, got {clips.shape[1]}")
        if clips.numel() and (clips.min() < -1 - 1e-6 or clips.max() > 1 + 1e-6):
            raise ValueError(f"clips must lie in [-1, 1], got [{float(clips.min()):.3g}, {float(clips.max()):.3g}]")
        t, c, h, w = clips.shape[1:]
        super().__init__(StateSpec((Field("x", (t, c, h, w)),)), clips, labels=labels, num_classes=num_classes)
        self.name, self.options, self.fps = name, dict(options), float(fps)
        self.segments = segments
        self.summary = ""  # what the loader did, one line (polydiff.reporting)
        self.starts: Tensor | None = None  # per clip its first frame in its source video (footage loaders)
        self.sources: Tensor | None = None  # per clip the index of its source video

    @property
    def window_length(self) -> int:
        """Frames per clip (what ``starts`` count in)."""
        return int(self.x.shape[1])

    def holdout_split(self, fraction: float, *, seed: int = 0) -> tuple[Subset, Subset]:
        """The run's (train, held-out) clips (``data.holdout``): clips that share frames (``stride <
        frames``) are held out apart from the training ones (one video: its last ``fraction`` of frames;
        several: whole videos, or the end of each when ``fraction`` of them is under one;
        :func:`polydiff.diffusion.holdout_apart`), else at random."""
        return holdout_apart(self, fraction, seed=seed, length=self.window_length, name=f"video {self.name!r}",
                             what="clip", unit="frame")

    @property
    def cache_key(self) -> str:
        text = json.dumps({"dataset": self.name, "options": self.options, "shape": list(self.x.shape)},
                          sort_keys=True, default=str)
        return f"video-{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def frames(self) -> Any:
        """The frames as a labelled ``polydiff_image`` dataset (at most :data:`MAX_CLASSIFIER_FRAMES`,
        spread evenly over the clips): what the frame metrics' reference classifier learns."""
        from polydiff_image.data import ImageDataset

        n, t = self.x.shape[:2]
        if self.labels is not None and self.num_classes:
            labels, k = self.labels, self.num_classes
        elif self.segments is not None:
            labels, k = self.segments, int(self.segments.max()) + 1
        else:  # no structure known: the clip's position in the dataset
            labels, k = (torch.arange(n) * SEGMENTS) // n, min(SEGMENTS, n)
        frames, frame_labels = self.x.reshape(n * t, *self.x.shape[2:]), labels.repeat_interleave(t)
        step = max(1, -(-len(frames) // MAX_CLASSIFIER_FRAMES))
        return ImageDataset(frames[::step].contiguous(), frame_labels[::step].contiguous(), name=self.cache_key,
                            options={"frames_step": step}, num_classes=max(2, k))

    def denormalize(self, x: Tensor) -> Tensor:
        """Model units [-1, 1] -> intensities [0, 1] (impute metrics report in these units)."""
        return (x + 1) / 2

    def __repr__(self) -> str:
        return f"VideoDataset({self.name}, n={len(self)}, clip={list(self.x.shape[1:])}, classes={self.num_classes})"


def root_dataset(dataset: Any) -> Any:
    """The full dataset behind a (chain of) :class:`~polydiff.diffusion.data.Subset`."""
    while hasattr(dataset, "dataset") and not isinstance(dataset, VideoDataset):
        dataset = dataset.dataset
    return dataset


def frame_windows(dataset: Any, length: int) -> VideoDataset:
    """Every run of ``length`` consecutive frames of every clip of ``dataset`` (any dataset of
    ``[T, C, H, W]`` clips, a held-out :class:`~polydiff.diffusion.data.Subset` included), labels kept: the
    training set of a window model for :func:`polydiff_video.predict.predict_autoregressive`."""
    full = dataset.get_batch(torch.arange(len(dataset)))
    t = full.x.shape[1]
    if not 2 <= length <= t:
        raise VideoDataError(f"window length must be in [2, {t}] (the clips' frames), got {length}")
    clips = full.x.unfold(1, length, 1).permute(0, 1, 5, 2, 3, 4).flatten(0, 1)  # [N * (T - L + 1), L, C, H, W]
    label = full.cond.get("label")
    labels = None if label is None else label.repeat_interleave(t - length + 1)
    root = root_dataset(dataset)
    return VideoDataset(clips.contiguous(), labels, name=getattr(root, "name", "clips"),
                        options={**getattr(root, "options", {}), "window": length},
                        num_classes=getattr(root, "num_classes", None), fps=getattr(root, "fps", 10.0))


def _positive(**values: int) -> None:
    for k, v in values.items():
        if int(v) < 1:
            raise VideoDataError(f"{k} must be >= 1, got {v}")


# ---- moving digits -----------------------------------------------------------------------------

def bounce(start: np.ndarray, velocity: np.ndarray, frames: int, limit: float) -> np.ndarray:
    """Positions ``[frames, 2]`` of a point moving at ``velocity`` inside ``[0, limit]``, reflected
    at the walls (the moving-MNIST motion of Srivastava et al. 2015)."""
    pos, vel, out = start.astype(float).copy(), velocity.astype(float).copy(), []
    for _ in range(frames):
        out.append(pos.copy())
        pos += vel
        for d in range(2):
            if pos[d] < 0:
                pos[d], vel[d] = -pos[d], -vel[d]
            elif pos[d] > limit:
                pos[d], vel[d] = 2 * limit - pos[d], -vel[d]
    return np.clip(np.stack(out), 0, limit)


def load_moving_digits(*, n: int = 1000, frames: int = 8, size: int = 32, digit_size: int = 16,
                       speed: float = 3.0, seed: int = 0) -> VideoDataset:
    """``n`` clips of one real scikit-learn digit (resized to ``digit_size``) bouncing in a black
    ``size`` x ``size`` canvas at ``speed`` pixels per frame in a random direction; deterministic
    from ``seed``. Label: the digit."""
    from sklearn.datasets import load_digits

    _positive(n=n, frames=frames, size=size, digit_size=digit_size)
    if digit_size > size:
        raise VideoDataError(f"digit_size {digit_size} does not fit in a canvas of size {size}")
    if speed < 0:
        raise VideoDataError(f"speed must be >= 0 pixels per frame, got {speed}")
    d = load_digits()
    digits = torch.from_numpy(d.images).float()[:, None] / 16.0  # [1797, 1, 8, 8] in [0, 1]
    digits = F.interpolate(digits, size=(digit_size, digit_size), mode="bilinear", align_corners=False).clamp(0, 1)
    rng = np.random.default_rng(seed)
    which = rng.integers(len(digits), size=n)
    limit = size - digit_size
    clips = torch.zeros(n, frames, 1, size, size)
    for i in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        path = bounce(rng.uniform(0, limit, size=2), speed * np.array([np.cos(angle), np.sin(angle)]), frames, limit)
        for t, (y, x) in enumerate(np.rint(path).astype(int)):
            clips[i, t, :, y:y + digit_size, x:x + digit_size] = digits[which[i]]
    labels = torch.from_numpy(d.target[which]).long()
    return VideoDataset(clips * 2 - 1, labels, name="moving_digits", num_classes=10, fps=5.0,
                        options={"n": n, "frames": frames, "size": size, "digit_size": digit_size, "speed": speed,
                                 "seed": seed})


# ---- real footage --------------------------------------------------------------------------------

def _to_tensor(frames: list[np.ndarray]) -> Tensor:
    """uint8 ``[H, W, C]`` frames -> ``[T, C, H, W]`` in [-1, 1]."""
    return torch.from_numpy(np.stack(frames)).float().permute(0, 3, 1, 2).contiguous() / 127.5 - 1.0


def _square(image: Any, size: int, channels: int) -> np.ndarray:
    """A PIL image centre-cropped to a square, area-resized to ``size``, as ``[size, size, channels]``."""
    from PIL import Image

    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    im = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BOX, box=box)
    return np.asarray(im).reshape(size, size, channels)


def has_colour(rgb: np.ndarray) -> bool:
    """Whether a uint8 ``[H, W, 3]`` frame holds colour: more than 0.1 % of its pixels have channels
    more than :data:`COLOUR_LEVELS` apart (grey footage through a lossy codec stays within a few)."""
    spread = rgb.max(-1).astype(np.int16) - rgb.min(-1)
    return bool((spread > COLOUR_LEVELS).mean() > 1e-3)


def _frame(image: Any, size: int, channels: int, info: dict[str, Any], k: int) -> np.ndarray:
    """:func:`_square`, noting in ``info["colour"]`` whether the source has colour."""
    out = _square(image, size, channels)
    if not info["colour"]:
        if channels == 3:
            info["colour"] = has_colour(out)
        elif k % COLOUR_CHECK_EVERY == 0:
            info["colour"] = has_colour(_square(image, size, 3))
    return out


def to_grey(video: Tensor) -> Tensor:
    """RGB ``[..., 3, H, W]`` in [-1, 1] -> grey ``[..., 1, H, W]`` by luma (ITU-R 601, PIL's ``"L"``),
    rounded to 8-bit levels as if read as grey."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=video.dtype).reshape(3, 1, 1)
    levels = (((video + 1) * 127.5) * w).sum(-3, keepdim=True).round()
    return levels / 127.5 - 1.0


def read_video(path: str | Path, *, size: int, channels: int = 1, every: int = 1,
               info: dict[str, Any] | None = None) -> Tensor:
    """Every ``every``-th frame of a video file (imageio + PyAV) or of a folder of frame images
    (sorted by name), each centre-cropped and downscaled to ``size``: ``[T, C, size, size]`` in [-1, 1].
    ``info``, if given, receives the source's original frame ``size`` (W, H), frame count ``read``,
    ``colour`` (whether any frame has colour, :func:`has_colour`) and, for video files, ``fps``."""
    info = {} if info is None else info
    info["colour"] = False
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if channels not in (1, 3):
        raise VideoDataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    _positive(size=size, every=every)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise VideoDataError(f"{p} holds no frame images ({', '.join(FRAME_SUFFIXES)})")
        out: list[np.ndarray] = []
        for f in files[::every]:
            try:
                with Image.open(f) as im:
                    info.setdefault("size", im.size)
                    out.append(_frame(im, size, channels, info, len(out)))
            except (UnidentifiedImageError, OSError) as e:
                raise VideoDataError(f"cannot read frame image {f}: {e}") from e
        info["read"] = len(files)
        return _to_tensor(out)
    if not p.is_file():
        raise VideoDataError(f"video {str(p)!r} does not exist; set data.path to a video file or a folder of "
                                "frame images")
    import imageio.v3 as iio

    frames: list[np.ndarray] = []
    try:
        info["fps"] = float(iio.immeta(p, plugin="pyav").get("fps") or 0) or None
        for i, img in enumerate(iio.imiter(p, plugin="pyav")):
            info["read"] = i + 1
            info.setdefault("size", (img.shape[1], img.shape[0]))
            if i % every == 0:
                frames.append(_frame(Image.fromarray(img), size, channels, info, len(frames)))
    except Exception as e:  # imageio / PyAV raise OSError, ValueError or av.error.* on a bad file
        raise VideoDataError(f"cannot read video {p}: {type(e).__name__}: {e} (is it a video file PyAV can decode? "
                         "`pip install av` provides the decoder)") from e
    if not frames:
        raise VideoDataError(f"video {p} has no frames")
    return _to_tensor(frames)


def clips_of(video: Tensor, frames: int, stride: int, *, source: str = "video") -> Tensor:
    """Overlapping windows ``[K, frames, C, H, W]`` of a ``[T, C, H, W]`` video, every ``stride`` frames."""
    _positive(frames=frames, stride=stride)
    if len(video) < frames:
        raise VideoDataError(f"{source} has {len(video)} frames (after data.every), fewer than one clip of "
                         f"data.frames={frames}: lower data.frames or data.every, or use a longer video")
    starts = range(0, len(video) - frames + 1, stride)
    return torch.stack([video[s:s + frames] for s in starts])


def _footage(videos: list[tuple[str, Tensor]], *, frames: int, stride: int, name: str, options: dict[str, Any],
             fps: float) -> VideoDataset:
    parts, segments, sources, offset = [], [], [], 0
    for i, (src, video) in enumerate(videos):
        c = clips_of(video, frames, stride, source=src)
        k = min(SEGMENTS, len(c))
        parts.append(c)
        segments.append(offset + (torch.arange(len(c)) * k) // len(c))  # which tenth of the source video
        sources.append(torch.full((len(c),), i))
        offset += k
    seg = torch.cat(segments)
    ds = VideoDataset(torch.cat(parts), None, name=name, options=options, segments=seg, fps=fps)
    ds.starts = torch.cat([torch.arange(len(p)) * stride for p in parts])  # each clip's first frame in its source
    ds.sources = torch.cat(sources)
    return ds


def load_opencv_sample(*, frames: int = 8, size: int = 32, channels: int = 1, every: int = 2, stride: int = 2,
                       path: str = str(VTEST)) -> VideoDataset:
    """OpenCV's ``vtest.avi``: 795 real frames (576x768, 10 fps) of pedestrians, every ``every``-th
    frame centre-cropped and downscaled to ``size``, cut into clips of ``frames`` every ``stride``."""
    p = Path(path)
    if not p.is_file():
        raise VideoDataError(f"OpenCV sample video not found at {p}: install it with "
                                "`apt-get install -y --no-install-recommends opencv-doc` (or pass data.path=FILE)")
    info: dict[str, Any] = {}
    video = read_video(p, size=size, channels=channels, every=every, info=info)
    rate = info.get("fps") or 10.0
    ds = _footage([(str(p), video)], frames=frames, stride=stride, name="opencv_sample", fps=rate / every,
                  options={"frames": frames, "size": size, "channels": channels, "every": every, "stride": stride,
                           "path": str(p)})
    ds.summary = footage_summary("opencv_sample", p, [info], [(str(p), video)], len(ds),
                                 colour=[p.name] if info["colour"] else [], channels=channels, chosen=channels,
                                 frames=frames, stride=stride, every=every, size=size, fps=0.0, rate=rate)
    report(ds.summary)
    return ds


def load_files(*, path: str = "", frames: int = 8, size: int = 32, channels: int = 0, every: int = 1,
               stride: int = 4, fps: float = 0.0) -> VideoDataset:
    """Your footage: ``path`` is a video file, a folder of frame images, or a folder of video files
    and/or frame folders (each one source); clips of ``frames`` every ``stride`` frames.

    ``channels=0`` (the default) keeps colour when any source has colour (3) and reads grey footage
    as grey (1); 1 or 3 choose. ``fps=0``: the first video file's frame rate (10 for frame folders),
    divided by ``every``. The load summary says what was read, converted, cropped and left over."""
    root = Path(path).expanduser()
    if not path or not root.exists():
        raise VideoDataError(f"video path {str(root)!r} does not exist; set data.path to a video file, a folder "
                                "of frame images, or a folder of videos")
    if channels not in (0, 1, 3):
        raise VideoDataError(f"data.channels must be 0 (colour when the files have colour), 1 (grey) or 3 (RGB), "
                             f"got {channels}")
    if fps < 0:
        raise VideoDataError(f"data.fps must be > 0 (or 0: the files' frame rate), got {fps}")
    if root.is_dir() and not any(f.suffix.lower() in FRAME_SUFFIXES for f in root.iterdir()):
        sources = sorted(f for f in root.iterdir()
                         if (f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES) or f.is_dir())
        if not sources:
            raise VideoDataError(f"{root} holds no videos ({', '.join(VIDEO_SUFFIXES)}), frame images or frame folders")
        skipped = sorted(f.name for f in root.iterdir() if f.is_file() and f not in sources)
    else:
        sources, skipped = [root], []
    infos: list[dict[str, Any]] = [{} for _ in sources]
    videos = [(str(s), read_video(s, size=size, channels=channels or 3, every=every, info=i))
              for s, i in zip(sources, infos, strict=True)]
    colour = [s.name for s, i in zip(sources, infos, strict=True) if i["colour"]]
    chosen = channels or (3 if colour else 1)
    if chosen == 1 and channels == 0:  # read as RGB to look for colour; none found
        videos = [(src, to_grey(v)) for src, v in videos]
    rates = [i["fps"] for i in infos if i.get("fps")]
    rate = fps or (rates[0] if rates else 10.0)
    ds = _footage(videos, frames=frames, stride=stride, name="files", fps=rate / every,
                  options={"path": str(root.resolve()), "frames": frames, "size": size, "channels": chosen,
                           "every": every, "stride": stride})
    ds.summary = footage_summary("files", root, infos, videos, len(ds), colour=colour, channels=channels,
                                 chosen=chosen, frames=frames, stride=stride, every=every, size=size, fps=fps,
                                 rate=rate, skipped=skipped)
    report(ds.summary)
    return ds


__all__ = ["VTEST", "VideoDataError", "VideoDataset", "bounce", "clips_of", "has_colour", "load_files",
           "load_moving_digits", "load_opencv_sample", "read_video", "root_dataset", "to_grey"]

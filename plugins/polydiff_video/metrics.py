"""Video metrics: per-frame quality in the image plugin's reference-classifier feature space, temporal
consistency, and for predicted frames (``task="impute"``) digit identity and motion.

None of these is FVD (Unterthiner et al. 2018, I3D features of whole clips): ``frame_fd`` scores
frames one by one with a small CNN trained on the same dataset's frames (not Inception), and motion
is scored separately by ``frame_diff_w1`` and ``centroid_error``. Compare numbers only between runs
on the same dataset and options.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polydiff import Batch, DiffusionDataset
from polydiff.diffusion import Imputation
from polydiff.plugins import ClassifierInfo, NotApplicable

from .data import root_dataset

MAX_REFERENCE_FRAMES = 10000


def classifier_of(reference: DiffusionDataset) -> Any:
    """The reference classifier of a video dataset's frames (trained on first use, then cached)."""
    from polydiff_image.classifier import reference_classifier

    root = root_dataset(reference)
    if not hasattr(root, "frames"):
        raise NotApplicable(f"video metrics need a polydiff_video dataset as reference, got {type(root).__name__}")
    try:
        return reference_classifier(root.frames())
    except ValueError as e:  # unlabelled frames: no reference classifier
        raise NotApplicable(str(e)) from None


def classifier_info(reference: DiffusionDataset) -> ClassifierInfo:
    """The frame CNN behind ``frame_fd`` / ``frame_accuracy`` / ``digit_identity``: its held-out accuracy."""
    info = classifier_of(reference).info
    return ClassifierInfo(name="frame CNN", accuracy=float(info.get("val_accuracy", float("nan"))),
                          n_train=int(info.get("n_train", 0)))


def labelled(reference: DiffusionDataset) -> None:
    """Raise :class:`NotApplicable` (the metric is skipped with a note) unless the clips have class
    labels (the moving digits' digit): identity metrics have no class to keep on the user's footage."""
    root = root_dataset(reference)
    if getattr(root, "labels", None) is None or not getattr(root, "num_classes", None):
        raise NotApplicable(f"needs class-labelled clips (moving_digits: the digit); the "
                            f"{getattr(root, 'name', type(root).__name__)!r} clips have no labels")


def class_classifier_info(reference: DiffusionDataset) -> ClassifierInfo:
    """:func:`classifier_info` for metrics that score classes (``frame_accuracy``, ``digit_identity``):
    not applicable (with the reason) on unlabelled clips, where the frame CNN learns segments."""
    labelled(reference)
    return classifier_info(reference)


def _frames(x: Tensor) -> Tensor:
    return x.reshape(-1, *x.shape[-3:])


def frame_fd(samples: Batch, reference: DiffusionDataset) -> float:
    """Fréchet distance between the FRAMES of samples and of reference clips, in the penultimate
    features of a small CNN trained on the dataset's frames (not FVD, not Inception FID)."""
    clf = classifier_of(reference)
    t = samples.x.shape[1]
    ref = reference.get_batch(torch.arange(min(len(reference), max(2, MAX_REFERENCE_FRAMES // t)))).x
    return clf_fd(clf, _frames(samples.x), _frames(ref))


def clf_fd(clf: Any, a: Tensor, b: Tensor) -> float:
    from polydiff_image.classifier import frechet_distance

    return frechet_distance(clf.features(a), clf.features(b))


def frame_accuracy(samples: Batch, reference: DiffusionDataset) -> float:
    """Fraction of the frames of class-conditional samples that the reference classifier labels as
    the clip's requested class (NaN for samples without a label; not applicable on unlabelled clips)."""
    labelled(reference)
    label = samples.cond.get("label")
    if label is None or not bool((label >= 0).any()) or not getattr(reference, "num_classes", None):
        return float("nan")
    keep = label >= 0
    x = samples.x[keep]
    pred = classifier_of(reference).predict(_frames(x)).reshape(x.shape[:2])
    return float((pred == label[keep, None].to(pred.device)).float().mean())


def motion(x: Tensor) -> Tensor:
    """Per clip, the mean absolute change between consecutive frames in [0, 1] intensity units."""
    y = (x.clamp(-1, 1) + 1) / 2
    return (y[:, 1:] - y[:, :-1]).abs().flatten(1).mean(1)


def frame_diff_w1(samples: Batch, reference: DiffusionDataset) -> float:
    """Temporal consistency: the 1-Wasserstein distance between the per-clip motion statistic
    (mean |frame t+1 - frame t|) of samples and of as many reference clips. Frozen clips score too
    little motion, flickering ones too much; both are far from the data."""
    n = min(len(samples), len(reference))
    a = motion(samples.x[:n]).sort().values
    b = motion(reference.get_batch(torch.arange(n)).x).sort().values
    return float((a - b).abs().mean())


# ---- predicted frames (task="impute") ---------------------------------------------------------

def target_frames(imp: Imputation) -> Tensor:
    """``[n, T]`` booleans: frames with at least one scored entry."""
    m = imp.target.flatten(2).amax(2) > 0
    if not m.any():
        raise ValueError("the imputation has no target frames to score (empty target mask)")
    return m


def digit_identity(imp: Imputation, reference: DiffusionDataset) -> float:
    """Fraction of predicted frames (every sample) the reference classifier labels as the clip's
    class: predicted frames keep the digit's identity (NaN for an imputation without labels; not
    applicable on unlabelled clips: the user's own footage)."""
    labelled(reference)
    hit = _identity_hits(imp, reference)
    return float("nan") if hit is None else float(hit[target_frames(imp)[:, None, :].expand_as(hit)].mean())


def digit_identity_by_frame(imp: Imputation, reference: DiffusionDataset) -> list[float]:
    """:func:`digit_identity` of each frame index that is a target in some clip (in time order):
    shows whether identity is lost at once or drifts away over an autoregressive rollout."""
    hit = _identity_hits(imp, reference)
    m = target_frames(imp)
    if hit is None:
        return [float("nan")] * int(m.any(0).sum())
    return [float(hit[:, :, t][m[:, t]].mean()) for t in range(m.shape[1]) if m[:, t].any()]


def _identity_hits(imp: Imputation, reference: DiffusionDataset) -> Tensor | None:
    """``[n, S, T]``: the classifier's label of every frame of every sample equals the clip's."""
    label = imp.cond.get("label")
    if label is None or not getattr(reference, "num_classes", None):
        return None
    n, s, t = imp.samples.shape[:3]
    pred = classifier_of(reference).predict(_frames(imp.samples)).reshape(n, s, t)
    return (pred == label.to(pred.device)[:, None, None]).float()


def centroids(x: Tensor) -> Tensor:
    """``[..., C, H, W]`` -> ``[..., 2]`` intensity-weighted centre (row, column) in pixels of the
    [0, 1] intensities; an empty frame has its centre in the middle."""
    w = ((x.clamp(-1, 1) + 1) / 2).sum(-3)
    h, wd = w.shape[-2:]
    rows = torch.arange(h, dtype=w.dtype, device=w.device)
    cols = torch.arange(wd, dtype=w.dtype, device=w.device)
    mass = w.sum((-2, -1))
    eps = 1e-6
    r = ((w.sum(-1) * rows).sum(-1) + eps * (h - 1) / 2) / (mass + eps)
    c = ((w.sum(-2) * cols).sum(-1) + eps * (wd - 1) / 2) / (mass + eps)
    return torch.stack([r, c], -1)


def centroid_error(imp: Imputation, reference: DiffusionDataset) -> float:
    """Motion of predicted frames: mean distance (pixels) between the intensity centre of each
    sample's predicted frame and of the true frame (for one moving object: its position error)."""
    m = target_frames(imp)
    err = (centroids(imp.samples) - centroids(imp.truth)[:, None]).norm(dim=-1)  # [n, S, T]
    return float(err[m[:, None, :].expand_as(err)].mean())


def copy_last_frame(imp: Imputation) -> Imputation:
    """The copy-last-frame baseline: every hidden frame is the latest given frame before it (the
    first given frame when none precedes it). Scores it exactly as a model's imputation."""
    given_frame = imp.given.flatten(2).amax(2) > 0  # [n, T]
    if not given_frame.any(1).all():
        raise ValueError("copy_last_frame needs at least one given frame per clip")
    n, t = given_frame.shape
    idx = torch.arange(t).expand(n, t)
    last = torch.where(given_frame, idx, torch.full_like(idx, -1)).cummax(1).values
    first = torch.where(given_frame, idx, torch.full_like(idx, t)).min(1).values
    src = torch.where(last >= 0, last, first[:, None])
    copied = imp.truth[torch.arange(n)[:, None], src]
    filled = torch.where(imp.given.bool(), imp.truth, copied)[:, None]
    return Imputation(samples=filled, truth=imp.truth, given=imp.given, target=imp.target, padding=imp.padding,
                      cond=imp.cond)


__all__ = ["centroid_error", "centroids", "class_classifier_info", "classifier_info", "classifier_of",
           "copy_last_frame", "digit_identity", "digit_identity_by_frame", "frame_accuracy", "frame_diff_w1",
           "frame_fd", "labelled", "motion", "target_frames"]

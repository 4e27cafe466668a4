"""Audio metrics.

Generation (``task="generate"``): a Fréchet distance and an accuracy in the feature space of a small
spoken-digit (or any labelled-clip) classifier trained reproducibly on the dataset's spectrograms and
cached: the idea of FAD (Kilgour et al. 2019), but NOT VGGish FAD: numbers compare only runs on the
same dataset and codec. The classifier, its recipe and the Fréchet formula are the image plugin's
(:mod:`polydiff_image.classifier`), reused on spectrograms with padded frames set to silence.

Imputation (``task="impute"``): log-spectral distance (dB) and spectral convergence of the
per-entry sample median on the hidden frames, computed on the mel power the state encodes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff import Batch, DiffusionDataset
from polydiff.diffusion import Imputation
from polydiff.plugins import ClassifierInfo, NotApplicable

from .data import AudioDataset
from .spectrogram import MelCodec, log_spectral_distance, spectral_convergence

MAX_REFERENCE = 5000


def audio_root(dataset: Any) -> AudioDataset:
    """The :class:`AudioDataset` behind a (possibly nested) Subset, or a clear error."""
    root = dataset
    while not isinstance(root, AudioDataset) and hasattr(root, "dataset"):
        root = root.dataset
    if not isinstance(root, AudioDataset):
        raise ValueError(f"audio metrics need an audio dataset (polydiff_audio) as reference, got "
                         f"{type(dataset).__name__}")
    return root


def _classifier_module() -> Any:
    try:
        from polydiff_image import classifier
    except ImportError as e:
        raise ImportError(f"audio classifier metrics reuse the image plugin's reference classifier, which failed to "
                          f"import ({e}); install it with pip install 'polydiff[image]'") from e
    return classifier


def classifier_input(x: Tensor) -> Tensor:
    """What the classifier sees: spectrograms average-pooled 2x2 (32 x 64 -> 16 x 32), four times
    cheaper to train on a CPU; spoken digits stay separable (see its held-out accuracy)."""
    return F.avg_pool2d(x, 2, ceil_mode=True)


class _ClassifierData:
    """What the image plugin's classifier cache reads: x (silence-filled, pooled), labels, classes, key."""

    def __init__(self, root: AudioDataset) -> None:
        if not root.num_classes or root.labels is None:
            raise ValueError("audio classifier metrics need a labelled dataset (one sub-folder per class)")
        self.x = classifier_input(root.silence_filled(root.x, root.padding))
        self.labels, self.num_classes = root.labels, root.num_classes
        self.cache_key = f"{root.cache_key}-pool2"


def reference_classifier(dataset: DiffusionDataset, *, progress: bool = False) -> Any:
    """The dataset's reference classifier (trained on first use with a fixed seed and recipe, cached
    in ``$POLYDIFF_CACHE/classifiers``); ``.info["val_accuracy"]`` is its held-out accuracy."""
    try:
        return _classifier_module().reference_classifier(_ClassifierData(audio_root(dataset)), progress=progress)
    except ValueError as e:  # unlabelled clips or not an audio dataset: no reference classifier
        raise NotApplicable(str(e)) from None


def classifier_info(reference: DiffusionDataset) -> ClassifierInfo:
    """The spectrogram classifier behind ``audio_fd`` / ``audio_accuracy``: its held-out accuracy."""
    info = reference_classifier(reference).info
    return ClassifierInfo(name="spectrogram CNN", accuracy=float(info.get("val_accuracy", float("nan"))),
                          n_train=int(info.get("n_train", 0)))


def _silenced(batch: Batch) -> Tensor:
    """Classifier input of a batch: clipped to [-1, 1], padded frames silent, pooled."""
    x = batch.x.clamp(-1, 1)
    return classifier_input(x if batch.padding is None else x * batch.padding - (1 - batch.padding))


def _reference(reference: DiffusionDataset) -> Tensor:
    return _silenced(reference.get_batch(torch.arange(min(len(reference), MAX_REFERENCE))))


def audio_fd(samples: Batch, reference: DiffusionDataset) -> float:
    """Fréchet distance between samples and reference clips in the reference classifier's features
    (FAD-like, not VGGish FAD; biased upwards for small sample counts: compare at equal n)."""
    clf = reference_classifier(reference)
    fd: float = _classifier_module().frechet_distance(clf.features(_silenced(samples)),
                                                      clf.features(_reference(reference)))
    return fd


def audio_accuracy(samples: Batch, reference: DiffusionDataset) -> float:
    """Fraction of class-conditional samples the reference classifier labels as the class they were
    asked for (``cond["label"]``); NaN for unlabelled samples."""
    label = samples.cond.get("label")
    if label is None or not bool((label >= 0).any()):
        return float("nan")
    keep = label >= 0
    pred = reference_classifier(reference).predict(_silenced(samples)[keep])
    return float((pred == label[keep].to(pred.device)).float().mean())


def _codec(reference: DiffusionDataset) -> MelCodec:
    return audio_root(reference).codec


def _mel_power(x: Tensor, codec: MelCodec) -> Tensor:
    return torch.pow(10.0, codec.to_db(x.double()) / 10)


def impute_lsd(imp: Imputation, reference: DiffusionDataset) -> float:
    """Log-spectral distance (dB) between truth and the sample median on the hidden entries: per
    hidden frame the RMS over its hidden mel bins, averaged over frames and clips."""
    codec = _codec(reference)
    return log_spectral_distance(_mel_power(imp.truth, codec), _mel_power(imp.median(), codec), mask=imp.target)


def impute_sc(imp: Imputation, reference: DiffusionDataset) -> float:
    """Spectral convergence of the sample median on the hidden entries (mel magnitudes)."""
    codec = _codec(reference)
    return spectral_convergence(_mel_power(imp.truth, codec), _mel_power(imp.median(), codec), mask=imp.target)


def gaussian_baseline(train: DiffusionDataset, n: int, *, seed: int = 0) -> Batch:
    """``n`` full-length spectrograms from ONE Gaussian fitted to the training data (silence-filled,
    full covariance plus a small ridge), clipped to [-1, 1]: what a diffusion model must beat."""
    b = train.get_batch(torch.arange(min(len(train), 20000)))
    x = b.x if b.padding is None else b.x * b.padding - (1 - b.padding)
    flat = x.reshape(len(x), -1).double()
    mu, cov = flat.mean(0), torch.cov(flat.T)
    ridge = 1e-4 * torch.eye(len(mu), dtype=cov.dtype)
    dist = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov + ridge)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, len(mu), generator=g, dtype=torch.float64)
    s = mu + z @ dist.scale_tril.T
    return Batch(x=s.float().reshape(n, *x.shape[1:]).clamp(-1, 1))


def linear_interpolation(truth: Tensor, given: Tensor) -> Tensor:
    """Fill every hidden entry of spectrograms ``[n, 1, n_mels, T]`` by linear interpolation in time
    between the nearest given frames of its mel bin (constant beyond the ends): the baseline of
    audio inpainting."""
    out = truth.clone()
    n, _, m, t = truth.shape
    time = torch.arange(t, dtype=truth.dtype)
    for i in range(n):
        for b in range(m):
            known = given[i, 0, b] > 0
            if known.all() or not known.any():
                continue
            if int(known.sum()) == 1:
                out[i, 0, b] = truth[i, 0, b][known]
                continue
            xs, ys = time[known], truth[i, 0, b][known]
            j = torch.searchsorted(xs, time).clamp(1, len(xs) - 1)
            x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
            w = ((time - x0) / (x1 - x0).clamp_min(1e-9)).clamp(0, 1)
            out[i, 0, b] = torch.where(known, truth[i, 0, b], y0 + w * (y1 - y0))
    return out


__all__ = ["audio_accuracy", "audio_fd", "audio_root", "classifier_info", "gaussian_baseline", "impute_lsd",
           "impute_sc", "linear_interpolation", "reference_classifier"]

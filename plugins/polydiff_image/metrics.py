"""Image sample metrics in the feature space of the dataset's reference classifier (NOT Inception FID)."""

from __future__ import annotations

import torch

from polydiff import Batch, DiffusionDataset
from polydiff.plugins import ClassifierInfo, NotApplicable

from .classifier import ReferenceClassifier, frechet_distance, reference_classifier

MAX_REFERENCE = 10000  # reference images used for the statistics (Fashion-MNIST's test set size)


def _reference_images(reference: DiffusionDataset) -> torch.Tensor:
    n = min(len(reference), MAX_REFERENCE)
    return reference.get_batch(torch.arange(n)).x


def _classifier(reference: DiffusionDataset) -> ReferenceClassifier:
    try:
        return reference_classifier(reference)
    except ValueError as e:  # an unlabelled dataset has no reference classifier
        raise NotApplicable(str(e)) from None


def classifier_info(reference: DiffusionDataset) -> ClassifierInfo:
    """The reference CNN behind ``classifier_fd`` / ``classifier_accuracy``: its held-out accuracy."""
    info = _classifier(reference).info
    return ClassifierInfo(name="reference CNN", accuracy=float(info.get("val_accuracy", float("nan"))),
                          n_train=int(info.get("n_train", 0)))


def classifier_fd(samples: Batch, reference: DiffusionDataset) -> float:
    """Fréchet distance between samples and reference images in the penultimate features of a small
    CNN trained on the same dataset (cached on first use). Not Inception FID: compare only numbers
    of the same dataset, options and sample count (the estimate is biased upwards for small n)."""
    clf = _classifier(reference)
    return frechet_distance(clf.features(samples.x), clf.features(_reference_images(reference)))


def classifier_accuracy(samples: Batch, reference: DiffusionDataset) -> float:
    """Fraction of class-conditional samples that the reference classifier labels as the class they
    were asked for (``cond["label"]``); NaN for unlabelled samples."""
    label = samples.cond.get("label")
    if label is None or not bool((label >= 0).any()):
        return float("nan")
    keep = label >= 0
    pred = _classifier(reference).predict(samples.x[keep])
    return float((pred == label[keep].to(pred.device)).float().mean())


def gaussian_baseline(train: DiffusionDataset, n: int, *, seed: int = 0, max_fit: int = 20000) -> Batch:
    """``n`` samples from ONE Gaussian fitted to the training images (full covariance in pixel
    space), clipped to [-1, 1]: the baseline a diffusion model must beat clearly."""
    x = train.get_batch(torch.arange(min(len(train), max_fit))).x
    flat = x.reshape(len(x), -1).double()
    mu, cov = flat.mean(0), torch.cov(flat.T)
    cov = cov + 1e-5 * torch.eye(len(mu), dtype=cov.dtype)
    dist = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        s = dist.sample((n,)).float()
    return Batch(x=s.reshape(n, *x.shape[1:]).clamp(-1, 1))


__all__ = ["classifier_accuracy", "classifier_fd", "classifier_info", "gaussian_baseline"]

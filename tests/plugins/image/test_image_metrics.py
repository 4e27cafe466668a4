"""Reference classifier (cached, reproducible), Fréchet distance and accuracy metrics."""

from __future__ import annotations

import json

import pytest
import torch

from polydiff import Batch, Subset
from polydiff_image.classifier import cache_dir, frechet_distance, reference_classifier
from polydiff_image.data import load_digits
from polydiff_image.metrics import classifier_accuracy, classifier_fd, gaussian_baseline


@pytest.fixture(scope="module")
def digits():
    return load_digits(n=500)


def test_frechet_distance_of_gaussians_has_the_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    # ||mu||^2 + tr(I + 4I - 2*2I) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.08)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_classifier_is_cached_reproducible_and_accurate(digits):
    held_out = Subset(digits, torch.arange(400, 500))
    clf = reference_classifier(held_out)  # trained now (Subset -> the full dataset)
    files = {p.name for p in (cache_dir() / "classifiers").iterdir()}
    assert {f"{digits.cache_key}.json", f"{digits.cache_key}.safetensors"} <= files
    assert not [f for f in files if f.endswith(".tmp")]  # written atomically, no temporaries left
    info = json.loads((cache_dir() / "classifiers" / f"{digits.cache_key}.json").read_text())
    assert info["val_accuracy"] > 0.8 and clf.info == info
    again = reference_classifier(digits)  # from the cache
    x = digits.x[:32]
    assert torch.equal(clf.features(x), again.features(x))
    assert classifier_accuracy(held_out.get_batch(torch.arange(100)), held_out) > 0.8


def test_fd_and_accuracy_separate_real_images_from_a_gaussian_fit(digits):
    train, held_out = Subset(digits, torch.arange(300)), Subset(digits, torch.arange(300, 500))
    real = train.get_batch(torch.arange(200))
    gauss = gaussian_baseline(train, 200)
    gauss.cond["label"] = real.cond["label"]
    assert classifier_fd(real, held_out) < 0.5 * classifier_fd(gauss, held_out)
    assert classifier_accuracy(real, held_out) > 0.85 > 0.5 > classifier_accuracy(gauss, held_out)
    assert classifier_accuracy(Batch(x=real.x), held_out) != classifier_accuracy(Batch(x=real.x), held_out)  # NaN


def test_metrics_need_an_image_dataset():
    from polydiff.modalities.points import load_ring

    with pytest.raises(ValueError, match="labelled polydiff_image dataset"):
        classifier_fd(Batch(x=torch.zeros(4, 2)), load_ring(n=16))

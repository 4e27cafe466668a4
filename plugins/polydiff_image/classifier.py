"""A small reference classifier CNN per dataset, trained reproducibly on first use and cached on disk.

Its penultimate features give a Fréchet distance (the FID recipe of Heusel et al. 2017, but in the
feature space of THIS small classifier, NOT Inception-v3: numbers are comparable only between runs
on the same dataset and options), and its predictions score class-conditional samples.

Cache: ``$POLYDIFF_CACHE`` (default ``~/.cache/polydiff``) / ``classifiers/<dataset key>.safetensors``
with a JSON sidecar; written atomically (temporary file, then rename), so concurrent first uses
never read half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

RECIPE = {"version": 1, "epochs": 12, "max_steps": 1500, "batch_size": 128, "lr": 2e-3, "seed": 0, "width": 32,
          "features": 64}


def cache_dir() -> Path:
    """``$POLYDIFF_CACHE`` or ``~/.cache/polydiff``."""
    return Path(os.environ.get("POLYDIFF_CACHE") or Path.home() / ".cache" / "polydiff")


class ReferenceCNN(nn.Module):
    """conv-conv-pool-conv-pool-global-pool -> ``features`` -> classes; GroupNorm, so a sample's
    features never depend on the rest of its batch."""

    def __init__(self, in_channels: int, num_classes: int, *, width: int = 32, features: int = 64) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU())

        self.net = nn.Sequential(block(in_channels, width), block(width, width), nn.AvgPool2d(2),
                                 block(width, 2 * width), nn.AvgPool2d(2), block(2 * width, 2 * width),
                                 nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, features), nn.SiLU())
        self.head = nn.Linear(features, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ReferenceClassifier:
    """A trained :class:`ReferenceCNN` with batched ``features`` / ``predict`` and its held-out accuracy."""

    def __init__(self, net: ReferenceCNN, info: dict[str, Any]) -> None:
        self.net, self.info = net.eval(), info

    @torch.no_grad()
    def features(self, x: Tensor, batch_size: int = 512) -> Tensor:
        return torch.cat([self.net.features(x[i:i + batch_size].float()) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 512) -> Tensor:
        return torch.cat([self.net(x[i:i + batch_size].float()).argmax(1) for i in range(0, len(x), batch_size)])


def _root_dataset(dataset: Any) -> Any:
    while hasattr(dataset, "dataset") and not hasattr(type(dataset), "cache_key"):
        dataset = dataset.dataset  # Subset -> the full dataset
    return dataset


def reference_classifier(dataset: Any, *, progress: bool = False) -> ReferenceClassifier:
    """The classifier of ``dataset`` (an image dataset, or a Subset of one), from the cache or
    trained now on ALL its images (fixed seed, fixed recipe) and cached."""
    root = _root_dataset(dataset)
    key = getattr(root, "cache_key", None)
    if key is None or not root.num_classes:
        raise ValueError("image metrics need a labelled polydiff_image dataset (digits, fashion_mnist, or a folder "
                         f"with one sub-folder per class) as reference; got {type(dataset).__name__}")
    path = cache_dir() / "classifiers" / f"{key}.safetensors"
    c = int(root.x.shape[1])
    if path.is_file():
        info = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
        if info.get("recipe") == RECIPE:
            net = ReferenceCNN(c, root.num_classes, width=int(RECIPE["width"]), features=int(RECIPE["features"]))
            net.load_state_dict(load_file(str(path)))
            return ReferenceClassifier(net, info)
    net, info = train_classifier(root.x, root.labels, root.num_classes, progress=progress)
    info["dataset"] = key
    _atomic_write(path, lambda p: save_file(net.state_dict(), str(p)))
    _atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(info, indent=2) + "\n"))
    return ReferenceClassifier(net, info)


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def train_classifier(x: Tensor, labels: Tensor, num_classes: int, *,
                     progress: bool = False) -> tuple[ReferenceCNN, dict[str, Any]]:
    """Train the reference CNN with the fixed :data:`RECIPE` (seeded: the same data gives the same
    weights); 10% of the images are held out to report its accuracy."""
    from tqdm.auto import tqdm

    r = RECIPE
    g = torch.Generator().manual_seed(int(r["seed"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(r["seed"]))
        net = ReferenceCNN(x.shape[1], num_classes, width=int(r["width"]), features=int(r["features"]))
    perm = torch.randperm(len(x), generator=g)
    n_val = max(1, len(x) // 10)
    val, train = perm[:n_val], perm[n_val:]
    opt = torch.optim.AdamW(net.parameters(), lr=float(r["lr"]), weight_decay=1e-4)
    bs, epochs = int(r["batch_size"]), int(r["epochs"])
    per_epoch = (len(train) + bs - 1) // bs
    epochs = min(epochs, max(1, int(r["max_steps"]) // per_epoch))  # large datasets: a few epochs suffice
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(r["lr"]), total_steps=steps)
    bar = tqdm(total=steps, desc="reference classifier", unit="step", disable=not progress)
    net.train()
    for _ in range(epochs):
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            xb = x[idx]
            # small random shifts: features that ignore a pixel of misalignment, as samples may have
            dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(xb), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    clf = ReferenceClassifier(net, {})
    acc = float((clf.predict(x[val]) == labels[val]).float().mean())
    return net.eval(), {"recipe": r, "val_accuracy": acc, "n_train": len(train), "n_val": n_val}


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two feature
    sets (Heusel et al. 2017, Eq. 6); the trace of the matrix square root is the sum of square roots
    of the (real, non-negative) eigenvalues of S_a S_b."""
    a, b = a.double(), b.double()
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Fréchet distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    eig = torch.linalg.eigvals(s_a @ s_b).real.clamp_min(0)
    return float((mu_a - mu_b).square().sum() + s_a.trace() + s_b.trace() - 2 * eig.sqrt().sum())


__all__ = ["RECIPE", "ReferenceCNN", "ReferenceClassifier", "cache_dir", "frechet_distance", "reference_classifier",
           "train_classifier"]

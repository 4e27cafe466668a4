"""Modality conformance: everything the core relies on a modality plugin for, checked in one call."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff._utils import append_dims
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.parameterization import Denoiser
from polydiff.diffusion.state import Batch
from polydiff.plugins import PluginHost, host
from polydiff.plugins.specs import ModalitySpec

from ._backbone import with_padding

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_modality(name_or_spec: str | ModalitySpec, *, dataset_options: Mapping[str, Any] | None = None,
                   batch_size: int = 4, plugin_host: PluginHost | None = None) -> dict[str, Any]:
    """Assert that a modality plugs into the core: registry entries, data, backbone, metric, plots.

    Checks, each with a message naming what is wrong: the modality is registered (and equals the
    given spec); its default dataset and backbone resolve; a batch of ``batch_size`` samples is a
    :class:`~polydiff.diffusion.state.Batch` with the packed shape of its :class:`~polydiff.diffusion.state.StateSpec`
    (``unpack``/``pack`` round trip exact, padded to ``dataset.sample_shape``, masks of packed shape
    with values in {0, 1}, padded entries 0, finite data, labels in range); the default backbone,
    wrapped in :class:`~polydiff.diffusion.parameterization.Denoiser`, accepts ``padding=`` when the batch has
    a padding mask and returns a finite tensor of the input's shape; the
    primary metric is registered and gives a finite float on real samples against the dataset;
    ``plot_samples`` / ``plot_trajectory`` write non-empty PNGs and ``save_samples`` non-empty files.

    Args:
        name_or_spec: the modality's registry name, or its spec.
        dataset_options: options for the default dataset's ``build`` (keep it small: ``{"n": 64}``).
        plugin_host: the host to look in (default: the process-wide one).

    Returns:
        a small report: ``{"modality", "dataset", "backbone", "batch_shape", "metric", "metric_value"}``.
    """
    h = plugin_host or host()
    name = name_or_spec if isinstance(name_or_spec, str) else name_or_spec.name
    modality = h.get_modality(name)  # UnknownNameError lists the registered modalities
    if isinstance(name_or_spec, ModalitySpec) and modality != name_or_spec:
        raise AssertionError(f"modality {name!r} is registered, but the registry holds a different spec: "
                             f"{modality!r}")
    dspec = h.get_dataset(name, modality.default_dataset)
    bspec = h.get_backbone(modality.default_backbone)
    if bspec.modality not in (None, name):
        raise AssertionError(f"default backbone {bspec.name!r} is for modality {bspec.modality!r}, not {name!r}")
    unknown = set(dataset_options or {}) - set(dspec.options)
    if dspec.options and unknown:
        raise AssertionError(f"dataset {dspec.name!r} does not declare option(s) {sorted(unknown)}; "
                             f"declared: {sorted(dspec.options)}")

    dataset = dspec.build(**(dataset_options or {}))
    if not isinstance(dataset, DiffusionDataset):
        raise AssertionError(f"dataset {dspec.name!r}: load() returned {type(dataset).__name__}, which lacks "
                             "the DiffusionDataset attributes (spec, num_classes, sample_shape, get_batch, __len__)")
    if len(dataset) < 1:
        raise AssertionError(f"dataset {dspec.name!r} is empty")
    batch = dataset.get_batch(torch.arange(min(batch_size, len(dataset))))
    _check_batch(batch, dataset, f"dataset {dspec.name!r}")

    net = bspec.build(dataset)
    net.eval()
    with torch.no_grad():  # a noisy input in the state's noise space, as training and sampling give it
        sigma = torch.linspace(0.5, 2.0, len(batch))
        noise = dataset.spec.project(torch.randn(batch.x.shape, generator=torch.Generator().manual_seed(0)),
                                     batch.padding)
        kw = with_padding(net, repr(bspec.name), dict(batch.cond), batch.padding)
        try:
            out = Denoiser(net)(batch.x + append_dims(sigma, batch.x.ndim) * noise, sigma, **kw)
        except Exception as e:
            raise AssertionError(f"default backbone {bspec.name!r} failed on a batch of dataset {dspec.name!r} "
                                 f"(shape {list(batch.x.shape)}): {type(e).__name__}: {e}") from e
    if out.shape != batch.x.shape or not torch.isfinite(out).all():
        raise AssertionError(f"backbone {bspec.name!r} on dataset {dspec.name!r}: denoiser output "
                             f"{list(out.shape)} (finite: {bool(torch.isfinite(out).all())}) for input "
                             f"{list(batch.x.shape)}")

    value = None
    if modality.primary_metric is not None:
        mspec = h.get_metric(modality.primary_metric)
        if mspec.modality not in (None, name):
            raise AssertionError(f"primary metric {mspec.name!r} is for modality {mspec.modality!r}, not {name!r}")
        n = len(dataset)  # other samples than the batch, so a metric comparing them has work to do
        value = mspec.fn(dataset.get_batch(torch.arange(max(0, n - batch_size), n)), dataset)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise AssertionError(f"metric {mspec.name!r} must return a finite float, got {value!r}")

    with tempfile.TemporaryDirectory() as tmp:
        _check_outputs(modality, batch, Path(tmp))
    return {"modality": name, "dataset": dspec.name, "backbone": bspec.name, "batch_shape": list(batch.x.shape),
            "metric": modality.primary_metric, "metric_value": value}


def _check_batch(batch: Batch, dataset: DiffusionDataset, what: str) -> None:
    if not isinstance(batch, Batch):
        raise AssertionError(f"{what}: get_batch returned {type(batch).__name__}, expected polydiff.Batch")
    x, spec = batch.x, dataset.spec
    if not x.is_floating_point() or not torch.isfinite(x).all():
        raise AssertionError(f"{what}: data must be finite floats, got {x.dtype} with "
                             f"{int((~torch.isfinite(x)).sum()) if x.is_floating_point() else '?'} non-finite")
    try:
        fields = spec.unpack(x)
        repacked = spec.pack(fields)
    except ValueError as e:
        raise AssertionError(f"{what}: batch of shape {list(x.shape)} does not fit {spec!r}: {e}") from e
    if not torch.equal(repacked, x):
        raise AssertionError(f"{what}: pack(unpack(x)) != x for {spec!r}")
    full = tuple(dataset.sample_shape)
    if tuple(x.shape[1:]) != full:
        raise AssertionError(f"{what}: batch has per-sample shape {list(x.shape[1:])}, sample_shape says {list(full)}; "
                             "get_batch must pad every batch to dataset.sample_shape, however short its samples "
                             "(the trainer draws noise of that shape)")
    for mname in ("padding", "observed"):
        m: Tensor | None = getattr(batch, mname)
        if m is None:
            continue
        if not ((m == 0) | (m == 1)).all():
            raise AssertionError(f"{what}: {mname} mask must hold only 0 and 1, got values {m.unique()[:8].tolist()}")
    if batch.padding is not None and (x * (1 - batch.padding)).abs().max() > 0:
        raise AssertionError(f"{what}: padded entries (padding == 0) must be 0 in x")
    if batch.observed is not None and batch.padding is not None and (batch.observed > batch.padding).any():
        raise AssertionError(f"{what}: an entry is observed but padded")
    label = batch.cond.get("label")
    if label is not None and dataset.num_classes is not None and (
            label.min() < 0 or label.max() >= dataset.num_classes):
        raise AssertionError(f"{what}: labels must lie in [0, {dataset.num_classes}), "
                             f"got [{int(label.min())}, {int(label.max())}]")


def _check_png(path: Path, what: str) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        raise AssertionError(f"{what} wrote no file at {path}")
    if path.read_bytes()[:8] != PNG_MAGIC:
        raise AssertionError(f"{what} wrote {path.name}, which is not a PNG")


def _check_outputs(modality: ModalitySpec, batch: Batch, tmp: Path) -> None:
    if modality.plot_samples is not None:
        modality.plot_samples(batch, batch, tmp / "samples.png")
        _check_png(tmp / "samples.png", f"{modality.name}.plot_samples")
        modality.plot_samples(batch, None, tmp / "samples_only.png")
        _check_png(tmp / "samples_only.png", f"{modality.name}.plot_samples (no reference)")
    if modality.plot_trajectory is not None:
        frames = [Batch(x=batch.x * t, padding=batch.padding) for t in (3.0, 1.5, 1.0)]
        modality.plot_trajectory(frames, tmp / "trajectory.png")
        _check_png(tmp / "trajectory.png", f"{modality.name}.plot_trajectory")
    if modality.save_samples is not None:
        out = tmp / "saved"
        out.mkdir()
        paths = modality.save_samples(batch, out)
        empty = [str(p) for p in paths if not Path(p).is_file() or Path(p).stat().st_size == 0]
        if not paths or empty:
            raise AssertionError(f"{modality.name}.save_samples wrote no files or empty ones: {empty or paths}")

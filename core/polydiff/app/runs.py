"""Run directories: resolved config, data, model, checkpoints, samples.

A run directory holds ``config.json`` (every default filled in, so a run is reproducible from it
alone), ``metrics.jsonl``, ``checkpoints/`` and ``samples/``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from polydiff import plugins
from polydiff.diffusion.data import DiffusionDataset, Subset, holdout_split
from polydiff.diffusion.losses import Weighting
from polydiff.diffusion.parameterization import Denoiser, Parameterization, field_sigma_data_of, sigma_data_of
from polydiff.diffusion.prior_fill import attach_prior_fill, resolve_prior_fill
from polydiff.diffusion.schedules import NoiseLevels, Schedule, scaled_to_data
from polydiff.files import atomic_write_json, read_json
from polydiff.training.trainer import TrainConfig

from .config import (
    SECTIONS,
    ConfigError,
    DataConfig,
    ModelConfig,
    SampleConfig,
    build_dataclass,
    check_options,
    did_you_mean,
)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a run needs, validated; ``to_dict`` / ``from_dict`` round-trip through JSON."""

    modality: str
    data: DataConfig
    model: ModelConfig
    schedule: dict[str, Any]
    noise_levels: NoiseLevels
    weighting: Weighting
    train: TrainConfig
    sample: SampleConfig

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"modality": self.modality}
        for name in SECTIONS:
            value = getattr(self, name)
            d = dict(value) if isinstance(value, dict) else dataclasses.asdict(value)
            if name in ("data", "model"):  # plugin options sit beside the section's own keys
                d.update(d.pop("options", {}))
            out[name] = d
        return out


def resolve_config(raw: dict[str, Any], *, saved: bool = False) -> RunConfig:
    """Validate a raw config dict and fill every default (dataset, backbone and their options).
    ``saved``: a run's own config.json (written with every field, so a field its kind ignores is not an error)."""
    unknown = set(raw) - {"modality", *SECTIONS}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown top-level key {key!r}{did_you_mean(key, SECTIONS)}; "
                          f"valid: modality, {', '.join(SECTIONS)}")
    if "modality" not in raw:
        raise ConfigError("the config needs a modality (e.g. modality = \"points\")")
    modality = plugins.get_modality(str(raw["modality"]))
    sec = {name: raw.get(name, {}) or {} for name in SECTIONS}
    for name, value in sec.items():
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table/mapping, got {value!r}")

    data = build_dataclass(DataConfig, sec["data"], "data", extra="options")
    dspec = plugins.get_dataset(modality.name, data.dataset or modality.default_dataset)
    data = dataclasses.replace(data, dataset=dspec.name,
                               options=check_options(data.options, dspec.options, "data", f"dataset {dspec.name!r}",
                                                     reserved=_own_keys(DataConfig)))

    model = build_dataclass(ModelConfig, sec["model"], "model", extra="options")
    bspec = plugins.get_backbone(model.backbone or modality.default_backbone)
    model = dataclasses.replace(model, backbone=bspec.name, options=check_options(
        model.options, bspec.options, "model", f"backbone {bspec.name!r}", reserved=_own_keys(ModelConfig)))

    sched = dict(sec["schedule"])
    sspec = plugins.get_schedule(str(sched.pop("name", "edm")))
    build_dataclass(sspec.build, sched, "schedule")  # validates the schedule's own fields
    config = RunConfig(
        modality=modality.name, data=data, model=model, schedule={"name": sspec.name, **sched},
        noise_levels=build_dataclass(NoiseLevels, sec["noise_levels"], "noise_levels"),
        weighting=build_dataclass(Weighting, sec["weighting"], "weighting"),
        train=build_dataclass(TrainConfig, sec["train"], "train"),
        sample=build_dataclass(SampleConfig, sec["sample"], "sample"))
    if model.self_condition and not bspec.self_condition:
        able = sorted(b.name for b in plugins.backbones() if b.self_condition)
        raise ConfigError(f"model.self_condition = true, but backbone {bspec.name!r} takes no self-conditioning "
                          f"input; backbones that do: {', '.join(able) or 'none installed'}")
    resolve_prior_fill(config.model.prior_fill, modality, conditional=config.train.conditional)
    if config.model.scale_noise and not hasattr(sspec.build, "sigma_hi"):
        raise ConfigError(f"model.scale_noise scales a schedule's sigma_lo and sigma_hi; schedule {sspec.name!r} "
                          "has none: use schedule.name = \"edm\" or \"ve\", or model.scale_noise = false")
    if config.model.scale_noise and not isinstance(config.model.sigma_data, int | float | None):
        raise ConfigError("model.scale_noise needs one sigma_data for the whole state, got "
                          f"{config.model.sigma_data!r}: leave model.sigma_data unset (estimated) or give a number")
    if config.train.steps < 1:
        raise ConfigError(f"train.steps must be >= 1, got {config.train.steps}: a run without a trained step "
                          "has no checkpoint to sample")
    _check_sampling(config)
    if not saved:
        _check_kind_fields(sec, config)
    if config.train.log == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.log = 'tensorboard' needs the tensorboard package: pip install tensorboard "
                          "(or use train.log = 'jsonl')")
    if config.train.conditional:
        mspec = plugins.get_mask_strategy(config.train.mask_strategy)
        check_options(config.train.mask_options, mspec.options, "train.mask_options", f"mask strategy {mspec.name!r}")
    if config.train.conditional and config.model.options.get("conditional") is False:
        raise ConfigError("train.conditional = true trains a masked conditional model, but backbone "
                          f"{bspec.name!r} is built with model.conditional = false: set both to true")
    return config


# fields read by one kind only: given under another kind they would change nothing, silently
KIND_FIELDS = {"noise_levels": {"p_mean": "lognormal", "p_std": "lognormal", "m": "logit_normal", "s": "logit_normal"},
               "weighting": {"gamma": "min_snr", "bias": "sigmoid"}}


def _check_kind_fields(sec: dict[str, Any], config: RunConfig) -> None:
    """A [noise_levels] or [weighting] field set away from its default under a kind that does not read it."""
    for section, fields in KIND_FIELDS.items():
        built = getattr(config, section)
        for key, kind in fields.items():
            if key in sec[section] and built.kind != kind and getattr(built, key) != getattr(type(built)(), key):
                default = "" if "kind" in sec[section] else ", the default"
                raise ConfigError(f"{section}.{key} = {getattr(built, key):g} is read only by {section}.kind = "
                                  f"\"{kind}\", and this config's kind is \"{built.kind}\"{default}: set "
                                  f"{section}.kind = \"{kind}\" or leave {section}.{key} out")


def _check_sampling(config: RunConfig) -> None:
    """[sample]: the sampler exists and its options are its own, before anything is trained."""
    spec = plugins.get_sampler(config.sample.sampler)
    check_options(config.sample.options, spec.options, "sample.options", f"sampler {spec.name!r}")


def _own_keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"options"}


def build_schedule(config: RunConfig) -> Schedule:
    """The run's schedule; with ``model.scale_noise``, its sigma range times :func:`noise_scale`."""
    opts = dict(config.schedule)
    spec = plugins.get_schedule(opts.pop("name"))
    schedule: Schedule = build_dataclass(spec.build, opts, "schedule")
    k = noise_scale(config)
    return scaled_to_data(schedule, config.noise_levels, 0.5 * k)[0] if k != 1.0 else schedule


def noise_scale(config: RunConfig) -> float:
    """``sigma_data / 0.5`` with ``model.scale_noise`` (EDM tuned its noise levels for data of spread 0.5),
    else 1. Needs the run's sigma_data recorded (:func:`with_sigma_data`)."""
    if not config.model.scale_noise:
        return 1.0
    sd = config.model.sigma_data
    if not isinstance(sd, int | float) or sd <= 0:
        raise ConfigError(f"model.scale_noise needs the run's sigma_data as one positive number, got {sd!r}")
    return float(sd) / 0.5


def training_levels(config: RunConfig) -> NoiseLevels:
    """``noise_levels``; with ``model.scale_noise``, a lognormal's mean shifted by ``ln`` :func:`noise_scale`
    (the other kinds draw in the schedule's own range, which :func:`build_schedule` scales)."""
    k = noise_scale(config)
    return scaled_to_data(build_schedule(config), config.noise_levels, 0.5 * k)[1] if k != 1.0 else config.noise_levels


def load_data(config: RunConfig) -> tuple[DiffusionDataset, DiffusionDataset]:
    """(train, held-out) datasets, split reproducibly by ``data.split_seed``: by the dataset's own
    ``holdout_split`` when it has one (items that share entries, such as overlapping windows), else at random."""
    spec = plugins.get_dataset(config.modality, str(config.data.dataset))
    dataset = spec.build(**config.data.options)
    if len(dataset) == 0:
        raise ConfigError(f"dataset {config.data.dataset!r} with options {config.data.options} has no items; "
                          "check its path and options")
    if config.data.holdout == 0:
        everything = Subset(dataset, torch.arange(len(dataset)))
        return everything, everything
    split = getattr(dataset, "holdout_split", None)  # a dataset whose items share entries splits them apart
    try:
        train, held_out = (split or partial(holdout_split, dataset))(config.data.holdout, seed=config.data.split_seed)
    except ValueError as err:
        raise ConfigError(f"data.holdout: {err}") from None
    if len(held_out) == 0 or len(train) == 0:
        raise ConfigError(f"data.holdout = {config.data.holdout} of {len(dataset)} items leaves {len(train)} for "
                          f"training and {len(held_out)} held out; use more data, another data.holdout, or "
                          "data.holdout = 0 to evaluate on the training data")
    return train, held_out


def estimate_sigma_data(dataset: DiffusionDataset, n: int = 4096, *,
                        per_field: bool = False) -> float | dict[str, float]:
    """The spread of the real (and observed) entries of up to ``n`` samples: one number, or one per field."""
    batch = dataset.get_batch(torch.arange(min(n, len(dataset))))
    mask = batch.padding if batch.observed is None else (batch.observed if batch.padding is None
                                                           else batch.padding * batch.observed)
    if per_field:
        return {k: round(v, 6) for k, v in field_sigma_data_of(dataset.spec, batch.x, mask).items()}
    return round(sigma_data_of(batch.x, mask), 6)


def residual_sigma_data(config: RunConfig, dataset: DiffusionDataset, n: int = 4096) -> float:
    """The spread of ``x - fill`` on training targets: what a ``prior_fill = "residual"`` model diffuses.
    The targets come from the run's own mask strategy (seeded by ``train.seed``), the fill from the
    modality's prior fill of the remaining entries."""
    batch = dataset.get_batch(torch.arange(min(n, len(dataset))))
    observed = batch.present()
    mask = plugins.get_mask_strategy(config.train.mask_strategy).bind(config.train.mask_options)
    target = mask(observed, torch.Generator().manual_seed(config.train.seed)).to(batch.x.dtype) * observed
    pf = resolve_prior_fill("residual", plugins.get_modality(config.modality), conditional=True)
    assert pf is not None
    return round(pf.residual_spread(batch.x, observed, target, batch.padding), 6)


def resolved_sigma_data(config: RunConfig, dataset: DiffusionDataset) -> float | dict[str, float]:
    """``model.sigma_data`` as a number or a per-field table, estimated from ``dataset`` if not given."""
    sd = config.model.sigma_data
    if sd is None and config.model.prior_fill == "residual":
        return residual_sigma_data(config, dataset)
    if sd is None or sd == "per_field":
        return estimate_sigma_data(dataset, per_field=sd == "per_field")
    if isinstance(sd, dict):
        names = list(dataset.spec.names)
        if sorted(sd) != sorted(names):
            raise ConfigError(f"model.sigma_data names the fields {sorted(sd)}, but this dataset's state has "
                              f"{names}: give one value per field, or sigma_data = \"per_field\" to estimate them")
        try:
            return {k: float(v) for k, v in sd.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"model.sigma_data values must be numbers, got {sd}") from None
    return float(sd)


def build_denoiser(config: RunConfig, dataset: DiffusionDataset) -> Denoiser:
    bspec = plugins.get_backbone(str(config.model.backbone))
    with torch.random.fork_rng(devices=[]):  # initial weights follow the run's seed, not global state
        torch.manual_seed(config.train.seed)
        extra = {"self_condition": True} if config.model.self_condition else {}
        backbone = bspec.build(dataset, **config.model.options, **extra)
    needs, why = getattr(backbone, "required_parameterization", None) or (None, "")  # (kind, reason)
    if needs is not None and needs != config.model.parameterization:
        raise ConfigError(f"{why}: set model.parameterization = \"{needs}\" (got \"{config.model.parameterization}\")")
    if needs is not None and config.model.prior_fill == "residual":
        raise ConfigError(f"{why}, not the residual x - fill that model.prior_fill = \"residual\" diffuses: use "
                          "\"condition\" or \"none\"")
    sigma_data = resolved_sigma_data(config, dataset)
    spec = dataset.spec if isinstance(sigma_data, dict) else None
    denoiser = Denoiser(backbone, Parameterization(kind=config.model.parameterization, sigma_data=sigma_data,
                                                   spec=spec), self_condition=config.model.self_condition)
    pf = resolve_prior_fill(config.model.prior_fill, plugins.get_modality(config.modality),
                            conditional=config.train.conditional)
    return attach_prior_fill(denoiser, pf)


MARKER = ".polydiff-run"  # written into every run directory polydiff creates: its identity, and the licence to delete


def _is_protected(path: Path) -> bool:
    """The working directory, any of its ancestors, and the home directory are never deleted."""
    p, cwd = path.resolve(), Path.cwd().resolve()
    return p == cwd or cwd.is_relative_to(p) or p == Path.home().resolve()


class Run:
    """A run directory and its resolved config."""

    def __init__(self, path: str | Path, config: RunConfig) -> None:
        self.path, self.config = Path(path), config

    @staticmethod
    def target(config: RunConfig, out: str | Path | None = None) -> Path:
        """Where a new run goes: ``out``, else ``runs/<modality>-<dataset>-<time>``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path(out) if out else Path("runs") / f"{config.modality}-{config.data.dataset}-{stamp}"

    @staticmethod
    def check_target(path: Path, *, overwrite: bool = False) -> None:
        """Raise unless a new run may be written at ``path`` (without changing anything).

        Usable: a missing or empty directory, or a polydiff run that never reached its first checkpoint
        (a failed start, reused as is). A finished polydiff run only with ``overwrite`` (it is then
        deleted by :meth:`create`); a directory polydiff did not create, never.
        """
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path} is a file; give a directory path")
        if not path.is_dir() or not any(path.iterdir()):
            return
        if not (path / MARKER).is_file():
            if (path / "config.json").is_file():
                raise ConfigError(f"{path} already holds a config.json but no {MARKER} marker (a run of an older "
                                  "polydiff, or not a polydiff run), so polydiff never deletes it; resume it with "
                                  f"`polydiff train --resume {path}` or choose another --out")
            raise ConfigError(f"--out {path} already exists and holds files that polydiff did not write (no "
                              f"{MARKER} marker); polydiff never deletes them: choose a new or empty directory")
        if _is_protected(path):
            raise ConfigError(f"--out {path} is the working directory or one of its parents; polydiff never "
                              "overwrites it: choose a subdirectory")
        if _incomplete(path):
            return
        if not overwrite:
            raise ConfigError(f"{path} already holds a run; resume it with `polydiff train --resume {path}`, "
                              "choose another --out, or pass --overwrite to replace it")

    @classmethod
    def create(cls, config: RunConfig, out: str | Path | None = None, *, overwrite: bool = False) -> Run:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not out:
            raise ConfigError("under torchrun every process must write to the same run: pass --out DIR")
        path = cls.target(config, out)
        if rank > 0:  # rank 0 creates the directory; the others join it
            return cls._wait_for(path)
        cls.check_target(path, overwrite=overwrite)
        if path.is_dir() and (path / MARKER).is_file() and not _incomplete(path):
            import shutil

            shutil.rmtree(path)  # a finished polydiff run, replaced at the user's explicit --overwrite
        path.mkdir(parents=True, exist_ok=True)
        for stale in ("metrics.jsonl", "config.json"):  # a failed start's leftovers
            (path / stale).unlink(missing_ok=True)
        import uuid

        atomic_write_json(path / MARKER, {"run_id": uuid.uuid4().hex, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                          "modality": config.modality})
        run = cls(path, config)
        run.save_config()
        return run

    @classmethod
    def _wait_for(cls, path: Path, timeout: float = 120.0) -> Run:
        deadline = time.monotonic() + timeout
        while not (path / "config.json").exists():
            if time.monotonic() > deadline:
                raise ConfigError(f"rank 0 did not create {path}/config.json within {timeout:.0f} s")
            time.sleep(0.05)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        p = Path(path)
        cfg_file = p / "config.json"
        if not cfg_file.is_file():
            raise ConfigError(f"{p} is not a polydiff run directory (no config.json); "
                              "create one with `polydiff train MODALITY --out DIR`")
        raw = read_json(cfg_file, "run config")
        if not isinstance(raw, dict):
            raise ConfigError(f"run config {cfg_file} must hold a JSON object; it was edited: restore it")
        try:
            return cls(p, resolve_config(raw, saved=True))
        except ConfigError as e:
            raise ConfigError(f"run config {cfg_file}: {e}") from e

    @property
    def run_id(self) -> str | None:
        """The identity recorded when polydiff created this directory (``None`` for older runs)."""
        marker = self.path / MARKER
        if not marker.is_file():
            return None
        data = read_json(marker, "run marker")
        return str(data.get("run_id")) if isinstance(data, dict) and data.get("run_id") else None

    def identity(self) -> dict[str, str]:
        """Metadata that ties an output file to this run (checked by ``evaluate``)."""
        return {"run_id": self.run_id or "", "modality": self.config.modality}

    def check_owns(self, meta: dict[str, str], path: Path, what: str) -> None:
        """Refuse an output file written by another run or for another modality."""
        modality, run_id = meta.get("modality"), meta.get("run_id")
        if modality and modality != self.config.modality:
            raise ConfigError(f"{what} {path} holds {modality} data, but run {self.path} is a "
                              f"{self.config.modality} run; give a file written for this run")
        if run_id and self.run_id and run_id != self.run_id:
            raise ConfigError(f"{what} {path} was written by another run (run id {run_id}, this run's is "
                              f"{self.run_id}); give a file from {self.path}")

    def save_config(self) -> None:
        atomic_write_json(self.path / "config.json", self.config.to_dict())

    def fix_sigma_data(self, dataset: DiffusionDataset) -> None:
        """Record the data's sigma_data in the config so sampling later uses the same value."""
        self.config = with_sigma_data(self.config, dataset)
        if int(os.environ.get("RANK", "0")) == 0:  # every rank computes the same value; one writes
            self.save_config()

    @property
    def samples_dir(self) -> Path:
        d = self.path / "samples"
        d.mkdir(exist_ok=True)
        return d


def _incomplete(path: Path) -> bool:
    """A polydiff run directory without a checkpoint: a start that failed before its first save."""
    from polydiff.training.checkpoint import latest_checkpoint

    return (path / MARKER).is_file() and latest_checkpoint(path) is None


def with_sigma_data(config: RunConfig, dataset: DiffusionDataset) -> RunConfig:
    """``config`` with ``model.sigma_data`` estimated from ``dataset`` when it was not given."""
    if config.model.sigma_data not in (None, "per_field"):
        return config
    model = dataclasses.replace(config.model, sigma_data=resolved_sigma_data(config, dataset))
    return dataclasses.replace(config, model=model)

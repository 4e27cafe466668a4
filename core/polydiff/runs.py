"""Run directories: resolved config, data, model, checkpoints, samples.

A run directory holds ``config.json`` (every default filled in, so a run is reproducible from it
alone), ``metrics.jsonl``, ``checkpoints/`` and ``samples/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import plugins
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
from .data import DiffusionDataset, Subset, holdout_split
from .losses import Weighting
from .parameterization import Denoiser, Parameterization, field_sigma_data_of, sigma_data_of
from .schedules import NoiseLevels, Schedule
from .training import TrainConfig


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


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw config dict and fill every default (dataset, backbone and their options)."""
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
    build_dataclass(sspec.cls, sched, "schedule")  # validates the schedule's own fields
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
    if config.train.conditional and config.model.options.get("conditional") is False:
        raise ConfigError("train.conditional = true trains a masked conditional model, but backbone "
                          f"{bspec.name!r} is built with model.conditional = false: set both to true")
    return config


def _own_keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"options"}


def build_schedule(config: RunConfig) -> Schedule:
    opts = dict(config.schedule)
    spec = plugins.get_schedule(opts.pop("name"))
    schedule: Schedule = build_dataclass(spec.cls, opts, "schedule")
    return schedule


def load_data(config: RunConfig) -> tuple[DiffusionDataset, DiffusionDataset]:
    """(train, held-out) datasets, split reproducibly by ``data.split_seed``."""
    spec = plugins.get_dataset(config.modality, str(config.data.dataset))
    dataset = spec.load(**config.data.options)
    if config.data.holdout == 0:
        everything = Subset(dataset, torch.arange(len(dataset)))
        return everything, everything
    return holdout_split(dataset, config.data.holdout, seed=config.data.split_seed)


def estimate_sigma_data(dataset: DiffusionDataset, n: int = 4096, *,
                        per_field: bool = False) -> float | dict[str, float]:
    """The spread of the real (and observed) entries of up to ``n`` samples: one number, or one per field."""
    batch = dataset.get_batch(torch.arange(min(n, len(dataset))))
    mask = batch.padding if batch.observed is None else (batch.observed if batch.padding is None
                                                           else batch.padding * batch.observed)
    if per_field:
        return {k: round(v, 6) for k, v in field_sigma_data_of(dataset.spec, batch.x, mask).items()}
    return round(sigma_data_of(batch.x, mask), 6)


def resolved_sigma_data(config: RunConfig, dataset: DiffusionDataset) -> float | dict[str, float]:
    """``model.sigma_data`` as a number or a per-field table, estimated from ``dataset`` if not given."""
    sd = config.model.sigma_data
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
    sigma_data = resolved_sigma_data(config, dataset)
    spec = dataset.spec if isinstance(sigma_data, dict) else None
    return Denoiser(backbone, Parameterization(kind=config.model.parameterization, sigma_data=sigma_data, spec=spec),
                    self_condition=config.model.self_condition)


class Run:
    """A run directory and its resolved config."""

    def __init__(self, path: str | Path, config: RunConfig) -> None:
        self.path, self.config = Path(path), config

    @classmethod
    def create(cls, config: RunConfig, out: str | Path | None = None) -> Run:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not out:
            raise ConfigError("under torchrun every process must write to the same run: pass --out DIR")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(out) if out else Path("runs") / f"{config.modality}-{config.data.dataset}-{stamp}"
        if rank > 0:  # rank 0 creates the directory; the others join it
            return cls._wait_for(path)
        if (path / "config.json").exists():
            raise ConfigError(f"{path} already holds a run; resume it with `polydiff train --resume {path}` "
                              "or choose another --out")
        path.mkdir(parents=True, exist_ok=True)
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
        return cls(p, resolve_config(json.loads(cfg_file.read_text())))

    def save_config(self) -> None:
        tmp = self.path / "config.json.tmp"
        tmp.write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        tmp.replace(self.path / "config.json")

    def fix_sigma_data(self, dataset: DiffusionDataset) -> None:
        """Record the data's sigma_data in the config so sampling later uses the same value."""
        if self.config.model.sigma_data in (None, "per_field"):
            model = dataclasses.replace(self.config.model, sigma_data=resolved_sigma_data(self.config, dataset))
            self.config = dataclasses.replace(self.config, model=model)
            if int(os.environ.get("RANK", "0")) == 0:  # every rank computes the same value; one writes
                self.save_config()

    @property
    def samples_dir(self) -> Path:
        d = self.path / "samples"
        d.mkdir(exist_ok=True)
        return d

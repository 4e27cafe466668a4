"""Run configuration: TOML / YAML / JSON files plus ``key=value`` overrides, validated strictly.

A run config has one section per object it builds::

    modality = "points"
    [data]          # dataset = name, then that dataset's own options
    [model]         # backbone = name, parameterization, sigma_data, self_condition, then the backbone's options
    [schedule]      # name = schedule, then its fields (e.g. s for vp_cosine)
    [noise_levels]  # kind = uniform_t | lognormal | logit_normal, and their parameters
    [weighting]     # kind = uniform | snr | min_snr | edm | sigmoid, gamma, bias, norm = l2 | l1
    [train]         # polydiff.training.trainer.TrainConfig
    [sample]        # default sampler, steps, grid, n, seed, cfg_scale

An unknown key or a bad value fails with a message naming the key and the valid options.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from polydiff.diffusion.parameterization import PARAMETERIZATIONS, Kind
from polydiff.exceptions import ConfigError
from polydiff.options import check_options, coerce, did_you_mean

SECTIONS = ("data", "model", "schedule", "noise_levels", "weighting", "train", "sample")




@dataclass(frozen=True, kw_only=True)
class SampleConfig:
    """Defaults for ``polydiff sample`` / ``evaluate``."""

    sampler: str = "heun"
    steps: int = 32
    grid: Literal["uniform_t", "karras", "logsnr", "optimized"] = "karras"  # optimized: fitted to the run
    n: int = 1000
    seed: int = 0
    cfg_scale: float | None = None
    batch_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the sampler's, e.g. restart's sigma_restart

    def __post_init__(self) -> None:
        for name in ("steps", "n"):
            if getattr(self, name) < 1:
                raise ValueError(f"sample.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"sample.batch_size must be >= 1 (or unset), got {self.batch_size}")
        if self.cfg_scale is not None and not self.cfg_scale >= 0:
            raise ValueError(f"sample.cfg_scale must be >= 0 (or unset), got {self.cfg_scale}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    backbone: str | None = None  # None: the modality's default backbone
    parameterization: Kind = "edm"
    # None: estimated from the training data; "per_field": one value per field of the state, estimated
    # (a table {field = value} once recorded in a run's config)
    sigma_data: Literal["per_field"] | float | dict[str, float] | None = None
    self_condition: bool = False  # the backbone also sees an earlier x0 estimate (Chen et al. 2022)
    # conditional models: "condition" feeds the modality's prior fill of hidden entries to the
    # denoiser (PriSTI, Liu et al. 2023); "residual" diffuses x - fill; "none": zeros (CSDI)
    prior_fill: Literal["none", "condition", "residual"] = "none"
    # EDM's sigma range and lognormal training levels are tuned for data of spread 0.5: scale both by
    # sigma_data / 0.5 (a residual of spread 0.08 is then trained and sampled where it is not drowned)
    scale_noise: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str | None = None  # None: the modality's default dataset
    holdout: float = 0.1  # fraction held out for evaluation
    split_seed: int = 0  # fixed apart from train.seed, so runs with different seeds share a held-out set
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.holdout < 1:
            raise ValueError(f"data.holdout must be in [0, 1), got {self.holdout}")


def build_dataclass(cls: type, values: Mapping[str, Any], section: str, *, extra: str | None = None) -> Any:
    """Instantiate a dataclass from a mapping, rejecting unknown keys and bad values.

    ``extra``: name of a dict field that collects the keys the dataclass does not declare (the
    options of a plugin's dataset/backbone, validated later against the plugin's declared options).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}
    if extra is not None:
        names.discard(extra)
    kwargs: dict[str, Any] = {}
    leftover: dict[str, Any] = {}
    for key, value in values.items():
        if key in names:
            kwargs[key] = coerce(value, hints[key], f"{section}.{key}")
        elif extra is not None:
            leftover[key] = value
        else:
            raise ConfigError(f"unknown key {section}.{key}{did_you_mean(key, names)}; "
                              f"valid keys in [{section}]: {', '.join(sorted(names))}")
    if extra is not None:
        kwargs[extra] = leftover
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[{section}]: {e}") from e


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a dict."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory; give the path of a .toml, .yaml or .json file")
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p} is not UTF-8 text ({e}); save it as UTF-8") from e
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {p}: use .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ConfigError(f"config file {p} is not valid {p.suffix[1:].upper()}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must contain a table/mapping at top level")
    return data


def parse_value(text: str) -> Any:
    """A CLI override value: TOML literal if it parses (numbers, bools, lists), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_options(items: typing.Iterable[str], source: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> options, values as :func:`parse_value` reads them; ``source`` (a flag,
    say) names them in the error."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{source} takes KEY=VALUE, got {item!r}")
        options[key] = parse_value(value)
    return options


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (``modality=...`` at top level) to a raw config dict."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.steps=500)")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) == 1 and parts[0] == "modality":
            out["modality"] = text
            continue
        if len(parts) < 2 or parts[0] not in SECTIONS or not all(parts):
            raise ConfigError(f"override key {key!r}: use <section>.<key> with section one of "
                              f"{', '.join(SECTIONS)}{did_you_mean(parts[0], SECTIONS)}")
        node = out.setdefault(parts[0], {})
        for part in parts[1:-1]:  # section.key.sub=value sets one entry of a table (e.g. sample.options)
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[parts[-1]] = parse_value(text)
    return out


__all__ = ["PARAMETERIZATIONS", "ConfigError", "DataConfig", "ModelConfig", "SampleConfig", "apply_overrides",
           "build_dataclass", "check_options", "coerce", "load_file", "parse_value"]

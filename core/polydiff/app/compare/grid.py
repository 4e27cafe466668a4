"""A comparison grid: which modalities, and which schedule x parameterization x weighting x seed
(trained once each) x sampler x NFE (sampled from the same checkpoint) to measure.

The grid file (TOML / YAML / JSON)::

    seeds = [0, 1]
    schedules = ["edm", { name = "vp_linear", beta_max = 20.0 }]
    parameterizations = ["edm", "eps"]
    weightings = ["edm", { kind = "min_snr", gamma = 5.0 }]
    samplers = ["euler", "dpmpp_2m"]
    nfe = [8, 16]
    sigma_grids = ["karras", "optimized"]   # optional; omitted: each run's sample.grid
    n_samples = 500          # samples per (sampler, NFE)
    likelihood = 128         # held-out items for the probability-flow NLL (0: skip)
    [train]                  # the training budget, shared by every cell: steps and/or max_minutes
    steps = 400
    [modalities.points]      # one table per modality: sections of a run config
    data = { dataset = "ring" }
    model = { width = 64 }
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from polydiff import plugins
from polydiff.app.config import ConfigError, load_file, parse_value
from polydiff.app.runs import RunConfig, resolve_config
from polydiff.diffusion.schedules import GRIDS

GRID_KEYS = {"seeds", "schedules", "parameterizations", "weightings", "samplers", "nfe", "n_samples", "likelihood",
             "train", "modalities", "impute", "sigma_grids"}
# optimized: fitted to each cell's model, sampler and NFE (polydiff.diffusion.grids)
SIGMA_GRIDS = (*GRIDS, "optimized")
RUN_SECTIONS = {"data", "model", "schedule", "noise_levels", "weighting", "train", "sample", "impute"}


def _label(entry: str | Mapping[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    """``"edm"`` or ``{name = "vp_linear", beta_max = 20}`` -> a readable label and the config table."""
    if isinstance(entry, str):
        return entry, {key: entry}
    if not isinstance(entry, Mapping) or key not in entry:
        raise ConfigError(f"grid entry {entry!r} must be a name or a table with a {key!r} key")
    extra = ",".join(f"{k}={v}" for k, v in sorted(entry.items()) if k != key)
    return (f"{entry[key]}({extra})" if extra else str(entry[key])), dict(entry)


@dataclass(frozen=True)
class TrainCell:
    """One training run of the grid; every (sampler, NFE) is measured from its checkpoint."""

    index: int
    modality: str
    schedule: str
    parameterization: str
    weighting: str
    seed: int
    config: RunConfig = field(compare=False, repr=False)

    @property
    def key(self) -> dict[str, Any]:
        return {"modality": self.modality, "dataset": self.config.data.dataset, "schedule": self.schedule,
                "parameterization": self.parameterization, "weighting": self.weighting, "seed": self.seed}

    @property
    def slug(self) -> str:
        """A directory name: readable, and unique through a hash of the full config."""
        text = "-".join(str(v) for v in self.key.values())
        digest = hashlib.sha1(json.dumps(self.config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)[:100] + "-" + digest[:8]


@dataclass(frozen=True)
class Grid:
    samplers: tuple[str, ...]
    nfe: tuple[int, ...]
    n_samples: int
    likelihood: int
    cells: tuple[TrainCell, ...]
    impute: Mapping[str, Mapping[str, Any]]  # per modality: how conditional models are evaluated
    raw: Mapping[str, Any]
    sigma_grids: tuple[str | None, ...] = (None,)  # None: each run's sample.grid

    def measurements_per_cell(self) -> int:
        return len(self.samplers) * len(self.nfe) * len(self.sigma_grids)


def _listed(raw: Mapping[str, Any], key: str, default: list[Any]) -> list[Any]:
    value = raw.get(key, default)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"grid key {key!r} must be a non-empty list, got {value!r}")
    return value


def override(raw: Mapping[str, Any], items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``key.path=value`` overrides at any depth, e.g. ``train.steps=50`` or
    ``modalities.points.model.width=32`` (values parse as TOML literals: numbers, lists, strings)."""
    out = json.loads(json.dumps(dict(raw)))
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"grid override {item!r} must look like key.path=value (e.g. train.steps=50)")
        *parents, leaf = key.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"grid override {item!r}: {part!r} is not a table")
        node[leaf] = parse_value(text)
    return out


def load_grid(source: str | Mapping[str, Any], overrides: tuple[str, ...] | list[str] = ()) -> Grid:
    """Parse and validate a grid file (or dict), with optional ``key.path=value`` overrides: every
    cell's run config is resolved up front, so a typo fails before hours of training, not in the middle."""
    raw = override(dict(load_file(source)) if isinstance(source, str) else dict(source), overrides)
    unknown = sorted(set(raw) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"unknown grid key(s) {', '.join(unknown)}; valid: {', '.join(sorted(GRID_KEYS))}")
    modalities = raw.get("modalities")
    if not isinstance(modalities, Mapping) or not modalities:
        raise ConfigError("the grid needs at least one [modalities.<name>] table (e.g. [modalities.points])")
    samplers = [str(s) for s in _listed(raw, "samplers", ["heun"])]
    for s in samplers:
        plugins.get_sampler(s)  # unknown names fail now, with the valid ones listed
    named_grids = [str(g) for g in _listed(raw, "sigma_grids", [])] if "sigma_grids" in raw else []
    sigma_grids: list[str | None] = [*named_grids] or [None]
    bad_grids = sorted({g for g in named_grids if g not in SIGMA_GRIDS})
    if bad_grids:
        raise ConfigError(f"unknown sigma grid(s) {', '.join(bad_grids)} in sigma_grids; "
                          f"valid: {', '.join(SIGMA_GRIDS)}")
    nfe = [int(n) for n in _listed(raw, "nfe", [16])]
    if min(nfe) < 1:
        raise ConfigError(f"nfe values must be >= 1, got {nfe}")
    budget = raw.get("train", {})
    if not isinstance(budget, Mapping) or not ({"steps", "max_minutes"} & set(budget)):
        raise ConfigError("the grid needs a [train] budget with steps and/or max_minutes (the same for every cell)")
    cells: list[TrainCell] = []
    impute: dict[str, Mapping[str, Any]] = {}
    for modality, sections in modalities.items():
        sections = dict(sections or {})
        bad = sorted(set(sections) - RUN_SECTIONS)
        if bad:
            raise ConfigError(f"[modalities.{modality}] has unknown section(s) {', '.join(bad)}; "
                              f"valid: {', '.join(sorted(RUN_SECTIONS))}")
        impute[modality] = dict(sections.pop("impute", None) or raw.get("impute", {}) or {})
        for sched in _listed(raw, "schedules", ["edm"]):
            s_label, s_table = _label(sched, "name")
            for param in _listed(raw, "parameterizations", ["edm"]):
                for weight in _listed(raw, "weightings", ["edm"]):
                    w_label, w_table = _label(weight, "kind")
                    for seed in _listed(raw, "seeds", [0]):
                        cfg = {"modality": modality, **{k: dict(v) for k, v in sections.items()}}
                        cfg["schedule"] = {**cfg.get("schedule", {}), **s_table}
                        cfg["weighting"] = {**cfg.get("weighting", {}), **w_table}
                        cfg["model"] = {**cfg.get("model", {}), "parameterization": param}
                        cfg["train"] = {**cfg.get("train", {}), **budget, "seed": int(seed)}
                        try:
                            config = resolve_config(cfg)
                        except ConfigError as err:
                            raise ConfigError(f"[modalities.{modality}] with schedule {s_label}, "
                                              f"parameterization {param}, weighting {w_label}: {err}") from None
                        cells.append(TrainCell(len(cells), config.modality, s_label, str(param), w_label, int(seed),
                                               config))
    if "optimized" in sigma_grids and any(c.config.train.conditional for c in cells):
        raise ConfigError("sigma_grids: 'optimized' is fitted for generation; conditional (imputation) cells cannot "
                          "use it yet: drop it or measure unconditional models")
    return Grid(samplers=tuple(samplers), nfe=tuple(nfe), n_samples=int(raw.get("n_samples", 500)),
                likelihood=int(raw.get("likelihood", 128)), cells=tuple(cells), impute=impute, raw=raw,
                sigma_grids=tuple(sigma_grids))


def shard(cells: tuple[TrainCell, ...], spec: str | None) -> Iterator[TrainCell]:
    """``"i/n"``: the cells with ``index % n == i`` (a job-array task's share); ``None``: all."""
    if spec is None:
        yield from cells
        return
    m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise ConfigError(f"--shard takes I/N with 0 <= I < N (e.g. 0/4 for the first of 4 workers), got {spec!r}")
    i, n = int(m[1]), int(m[2])
    yield from (c for c in cells if c.index % n == i)


__all__ = ["Grid", "TrainCell", "load_grid", "override", "shard"]

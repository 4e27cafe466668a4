"""``polydiff compare``: the same schedule x parameterization x weighting x sampler x NFE grid on
every modality, resumable and shardable, with a statistical report (``polydiff report``)."""

from __future__ import annotations

from .grid import Grid, TrainCell, load_grid, shard
from .report import collect, mean_ci, write_report
from .runner import run_grid

__all__ = ["Grid", "TrainCell", "collect", "load_grid", "mean_ci", "run_grid", "shard", "write_report"]

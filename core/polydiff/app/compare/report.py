"""``polydiff report``: tidy measurements (CSV + JSONL), a Markdown report with means and 95% intervals
over seeds, the baselines / floors / ceilings of each modality scored on the same items (``baselines.csv``),
ranks of configurations across modalities, and plots, all rebuilt from the cell files."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from polydiff import plugins
from polydiff.app.config import ConfigError
from polydiff.files import atomic_write_text, read_json

CELL_KEYS = ("modality", "dataset", "schedule", "parameterization", "weighting", "seed")
CONFIG_KEYS = ("schedule", "parameterization", "weighting", "sampler", "nfe")
# two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: the normal 1.96)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t interval (0 for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, 0.0
    t = T975[len(values) - 2] if len(values) - 1 <= len(T975) else 1.96
    return m, t * statistics.stdev(values) / math.sqrt(len(values))


def collect(out: Path) -> list[dict[str, Any]]:
    """Tidy rows, one per (cell, sampler, NFE, metric); training rows have sampler '-' and NFE 0."""
    rows: list[dict[str, Any]] = []
    for train_file in sorted(out.glob("cells/*/train.json")):
        t = read_json(train_file, "cell summary")
        base = {k: t[k] for k in CELL_KEYS}
        meta = {**base, "task": "train", "sampler": "-", "nfe": 0, "steps": t.get("steps")}
        for metric in ("final_loss", "train_seconds", "nll_nats_per_dim"):
            if t.get(metric) is not None:
                rows.append({**meta, "metric": metric, "value": float(t[metric])})
        for label, loss in t.get("loss_by_sigma", {}).items():
            rows.append({**meta, "metric": f"loss@sigma{label}", "value": float(loss)})
        for ev in sorted(train_file.parent.glob("eval/*.json")):
            e = read_json(ev, "measurement")
            meta_e = {**base, "task": e["task"], "sampler": e["sampler"], "nfe": int(e["nfe"]), "steps": e["steps"]}
            skip = {*CELL_KEYS, "task", "sampler", "nfe", "steps"}
            rows.extend({**meta_e, "metric": k, "value": float(v)} for k, v in e.items() if k not in skip)
    return rows


def collect_baselines(out: Path) -> list[dict[str, Any]]:
    """Tidy rows of the baselines, floors and ceilings each cell's run was scored beside (the
    ``table`` of ``run/eval.json`` and ``run/eval-imputation.json``: same items, same masks)."""
    rows: list[dict[str, Any]] = []
    for train_file in sorted(out.glob("cells/*/train.json")):
        t = read_json(train_file, "cell summary")
        base = {k: t[k] for k in CELL_KEYS}
        for name in ("eval.json", "eval-imputation.json"):
            path = train_file.parent / "run" / name
            table = read_json(path, "evaluation").get("table") if path.is_file() else None
            if not table:
                continue
            for r in table.get("rows", [])[1:]:  # row 0 is the model, already measured per NFE
                rows.extend({**base, "task": table["task"], "method": r["method"], "role": r["role"], "metric": m,
                             "value": float(v)} for m, v in r["scores"].items() if v is not None)
    return rows


def _baseline_section(brows: list[dict[str, Any]], modality: str, metric: str, direction: str) -> list[str]:
    mine = [r for r in brows if r["modality"] == modality and r["metric"] == metric]
    if not mine:
        return []
    stats = summarise(mine, metric, ("method", "role"))
    order = sorted(stats, key=lambda k: stats[k][0] * (1 if direction == "lower" else -1))
    body = [[k[0], k[1], _fmt(*stats[k][:2]), str(stats[k][2])] for k in order]
    return [f"Beside it, on the same held-out items and masks ({metric}, {direction} is better): does a "
            "configuration beat doing nothing clever?", "", *_table(["baseline", "role", metric, "cells"], body), ""]


def _direction(metric: str) -> str:
    try:
        return plugins.get_metric(metric).direction
    except KeyError:
        return "lower"  # losses, NLL and times: lower is better


def _primary(modality: str, rows: list[dict[str, Any]]) -> str | None:
    declared = plugins.get_modality(modality).primary_metric
    have = {r["metric"] for r in rows if r["modality"] == modality and r["task"] != "train"}
    if declared in have:
        return declared
    # a conditional (imputation) grid has no generation metric: CRPS is the proper score there
    return "crps" if "crps" in have else (sorted(have)[0] if have else None)


def summarise(rows: list[dict[str, Any]], metric: str,
              keys: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[float, float, int]]:
    """``{key tuple: (mean, 95% half-width, number of seeds)}`` of ``metric`` grouped by ``keys``."""
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in rows:
        if r["metric"] == metric and math.isfinite(r["value"]):
            groups[tuple(r[k] for k in keys)].append(r["value"])
    return {k: (*mean_ci(v), len(v)) for k, v in groups.items()}


def _fmt(mean: float, half: float) -> str:
    return f"{mean:.4g} ± {half:.2g}" if half else f"{mean:.4g}"


def _table(header: list[str], body: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def write_report(out: str | Path) -> Path:
    """Rebuild ``measurements.csv`` / ``.jsonl``, ``report.md`` and ``plots/`` from ``out/cells``."""
    out = Path(out)
    rows = collect(out)
    if not rows:
        raise ConfigError(f"no finished cells under {out}/cells; run `polydiff compare GRID --out {out}` first")
    fields = [*CELL_KEYS, "task", "sampler", "nfe", "steps", "metric", "value"]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "measurements.csv", buffer.getvalue())
    atomic_write_text(out / "measurements.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    brows = collect_baselines(out)
    if brows:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=[*CELL_KEYS, "task", "method", "role", "metric", "value"])
        writer.writeheader()
        writer.writerows(brows)
        atomic_write_text(out / "baselines.csv", buffer.getvalue())
    modalities = sorted({r["modality"] for r in rows})
    lines = ["# Comparison report", "", f"{len(rows)} measurements from {out}/cells "
             f"(means over seeds with 95% Student-t intervals). Regenerate with `polydiff report {out}`.", ""]
    ranks: dict[str, dict[tuple[Any, ...], int]] = {}
    for modality in modalities:
        mrows = [r for r in rows if r["modality"] == modality]
        metric = _primary(modality, mrows)
        if metric is None:
            continue
        direction = _direction(metric)
        stats = summarise(mrows, metric, CONFIG_KEYS)
        nll = summarise(mrows, "nll_nats_per_dim", CONFIG_KEYS[:3])
        secs = summarise(mrows, "seconds_per_sample", CONFIG_KEYS)
        order = sorted(stats, key=lambda k: stats[k][0] * (1 if direction == "lower" else -1))
        ranks[modality] = {k: i + 1 for i, k in enumerate(order)}
        lines += [f"## {modality} (dataset {mrows[0]['dataset']}): {metric}, {direction} is better", ""]
        body = [[*(str(x) for x in k), _fmt(*stats[k][:2]), str(stats[k][2]),
                 _fmt(*nll[k[:3]][:2]) if k[:3] in nll else "-",
                 f"{secs[k][0]:.3g}" if k in secs else "-"] for k in order]
        lines += [*_table([*CONFIG_KEYS, metric, "seeds", "NLL (nats/dim)", "s / sample"], body), ""]
        lines += _baseline_section(brows, modality, metric, direction)
    lines += _rank_section(ranks, modalities)
    plots = _plots(rows, modalities, out / "plots")
    lines += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _rank_section(ranks: dict[str, dict[tuple[Any, ...], int]], modalities: list[str]) -> list[str]:
    """Configurations ranked within each modality, then by mean rank; and each factor's mean rank per
    modality, which answers "does X help molecules the way it helps images?"."""
    if not ranks:
        return []
    configs = sorted({k for r in ranks.values() for k in r})
    shown = [m for m in modalities if m in ranks]
    mean_rank = {k: statistics.fmean(ranks[m][k] for m in shown if k in ranks[m]) for k in configs}
    lines = ["## Ranks across modalities (1 = best on the modality's primary metric)", ""]
    body = [[*(str(x) for x in k), *(str(ranks[m].get(k, "-")) for m in shown), f"{mean_rank[k]:.2f}"]
            for k in sorted(configs, key=mean_rank.__getitem__)]
    lines += [*_table([*CONFIG_KEYS, *shown, "mean rank"], body), ""]
    lines += ["### Mean rank of each choice, per modality", ""]
    body = []
    for i, factor in enumerate(CONFIG_KEYS):
        for value in sorted({k[i] for k in configs}, key=str):
            per = [statistics.fmean(r for k, r in ranks[m].items() if k[i] == value) for m in shown]
            body.append([factor, str(value), *(f"{v:.2f}" for v in per)])
    lines += [*_table(["factor", "choice", *shown], body), ""]
    return lines


def _plots(rows: list[dict[str, Any]], modalities: list[str], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(exist_ok=True)
    paths: list[Path] = []
    for modality in modalities:
        mrows = [r for r in rows if r["modality"] == modality]
        metric = _primary(modality, mrows)
        if metric is None:
            continue
        stats = summarise(mrows, metric, CONFIG_KEYS)
        trains = sorted({k[:3] for k in stats})
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for t_key in trains:
            for sampler in sorted({k[3] for k in stats}):
                pts = sorted((k[4], v) for k, v in stats.items() if k[:3] == t_key and k[3] == sampler)
                if pts:
                    axes[0].errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts],
                                     marker="o", capsize=3, label=f"{sampler} / {'/'.join(t_key)}")
        axes[0].set(xscale="log", xlabel="NFE", ylabel=metric, title=f"{modality}: {metric} vs NFE")
        axes[0].legend(fontsize=7)
        for t_key in trains:
            sub = [r for r in mrows if r["metric"].startswith("loss@sigma") and (r["schedule"], r["parameterization"],
                                                                                 r["weighting"]) == t_key]
            losses = defaultdict(list)
            for r in sub:
                losses[r["metric"].removeprefix("loss@sigma")].append(r["value"])
            labels = list(losses)
            axes[1].plot(range(len(labels)), [statistics.fmean(losses[lab]) for lab in labels], marker="o",
                         label="/".join(t_key))
            axes[1].set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        axes[1].set(yscale="log", xlabel="noise level sigma (bin)", ylabel="weighted training loss (per weighting)",
                    title=f"{modality}: loss per noise level")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        paths.append(folder / f"{modality}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


__all__ = ["collect", "collect_baselines", "mean_ci", "summarise", "write_report"]

"""Every number beside its baselines (STYLE principle 14).

A modality declares :class:`~polydiff.plugins.specs.BaselineSpec` s: trivial methods (linear interpolation,
copy-last-frame, a Gaussian fit), floors (random coordinates) and ceilings (real data scored as if it
were samples). :func:`score_samples` and :func:`score_imputation` score the model and each baseline
with the SAME metric functions on the SAME items; imputation baselines are scored on the model's own
``target`` tensor and never see the hidden values. The result, a :class:`Scoreboard`, is one labelled
table (printed by the CLI, stored in ``eval.json`` / ``eval-imputation.json``, read by ``polydiff
report``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.imputation import Imputation
from polydiff.diffusion.state import Batch
from polydiff.exceptions import NotApplicable

if TYPE_CHECKING:  # the plugin contracts sit above this layer; only their attributes are read here
    from polydiff.plugins.specs import BaselineSpec, MetricSpec

RELIABLE_ACCURACY = 0.8
"""A metric computed with a reference classifier is marked unreliable when that classifier's own
held-out accuracy is below this..."""
MIN_CLASSIFIER_ITEMS = 100
"""...or when it was trained on fewer items than this."""


@dataclass(frozen=True)
class BaselineContext:
    """What a baseline may use: the training data (fits, means, real items), the held-out data, the
    number of items ``n`` and the ``seed``; ``sample(denoiser)`` draws ``n`` samples with the run's
    sampler settings (for denoiser baselines such as the exact denoiser of a known mixture; ``None``
    outside a run); ``cond`` / ``padding``: the conditions (e.g. molecular graphs) and sizes the model's
    samples were drawn with, so a baseline answers the same questions (empty outside ``evaluate``)."""

    train: DiffusionDataset
    held_out: DiffusionDataset
    n: int
    seed: int = 0
    sample: Callable[[Callable[..., Tensor]], Tensor] | None = None
    cond: dict[str, Tensor] = field(default_factory=dict)
    padding: Tensor | None = None


@dataclass
class Row:
    """One labelled row: the model or a baseline (``role``), its score per metric (``None``: not
    available), and ``note`` when the whole row is skipped (the reason)."""

    method: str
    role: str
    description: str
    scores: dict[str, float | None] = field(default_factory=dict)
    note: str = ""


@dataclass
class Scoreboard:
    """The model and its baselines scored with the same metrics. ``metrics``: name -> direction
    (``"lower"`` / ``"higher"`` is better); ``notes``: name -> what to know about that metric (the
    reference classifier's accuracy, ``UNRELIABLE: ...``, or why it does not apply)."""

    task: str
    metrics: dict[str, str]
    rows: list[Row]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> dict[str, float | None]:
        return self.rows[0].scores

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task,
                "metrics": {m: {"better": d, **({"note": self.notes[m]} if m in self.notes else {})}
                            for m, d in self.metrics.items()},
                "rows": [{"method": r.method, "role": r.role, "description": r.description, "scores": r.scores,
                          **({"note": r.note} if r.note else {})} for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scoreboard:
        metrics = {m: v["better"] for m, v in data["metrics"].items()}
        notes = {m: v["note"] for m, v in data["metrics"].items() if "note" in v}
        rows = [Row(method=r["method"], role=r["role"], description=r.get("description", ""),
                    scores=dict(r.get("scores", {})), note=r.get("note", "")) for r in data["rows"]]
        return cls(task=data["task"], metrics=metrics, rows=rows, notes=notes)

    def format(self, width: int | None = None) -> str:
        """The table (one row per method, a column per metric with its direction) and the notes."""
        from polydiff.tables import format_table

        columns = ["method", "role", *(f"{m} [{d}]" for m, d in self.metrics.items())]
        body = []
        for r in self.rows:
            row: dict[str, Any] = {"method": r.method, "role": r.role}
            for m, d in self.metrics.items():
                v = r.scores.get(m)
                row[f"{m} [{d}]"] = "-" if v is None else f"{v:.4g}"
            body.append(row)
        lines = [format_table(body, columns, width=width),
                 "[lower] / [higher]: which direction is better; '-': not available for that row"]
        lines += [f"note: {m}: {n}" for m, n in self.notes.items()]
        lines += [f"note: {r.method}: {r.note}" for r in self.rows if r.note]
        lines += [f"  {r.method}: {r.description}" for r in self.rows[1:] if r.description]
        return "\n".join(lines)


def _value(spec: MetricSpec, obj: Any, reference: DiffusionDataset) -> tuple[float | None, str | None]:
    try:
        v = float(spec.fn(obj, reference))
    except NotApplicable as e:
        return None, f"skipped: {e}"
    return (v if math.isfinite(v) else None), None


def _classifier_note(spec: MetricSpec, reference: DiffusionDataset) -> str | None:
    if spec.classifier is None:
        return None
    try:
        info = spec.classifier(reference)
    except NotApplicable as e:
        return f"skipped: {e}"
    said = f"{info.name}: held-out accuracy {info.accuracy:.3f}, trained on {info.n_train} items"
    if not info.accuracy >= RELIABLE_ACCURACY:  # NaN (accuracy unknown) is not reliable either
        return f"UNRELIABLE ({said}; below the {RELIABLE_ACCURACY:.2f} this table asks for)"
    if info.n_train < MIN_CLASSIFIER_ITEMS:
        return f"UNRELIABLE ({said}; fewer than {MIN_CLASSIFIER_ITEMS} training items)"
    return said


def _board(task: str, metric_specs: Sequence[MetricSpec], model: Any, reference: DiffusionDataset,
           baselines: Sequence[tuple[BaselineSpec, Callable[[], Any]]]) -> Scoreboard:
    metrics: dict[str, str] = {s.name: s.direction for s in metric_specs}
    notes: dict[str, str] = {}
    for s in metric_specs:
        note = _classifier_note(s, reference)
        if note is not None:
            notes[s.name] = note
    skipped: dict[str, dict[str, str]] = {m: {} for m in metrics}  # metric -> row -> why it does not apply

    def score(obj: Any, method: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for s in metric_specs:
            if notes.get(s.name, "").startswith("skipped"):
                out[s.name] = None
                continue
            out[s.name], why = _value(s, obj, reference)
            if why is not None:
                skipped[s.name][method] = why
        return out

    rows = [Row(method="model", role="model", description="", scores=score(model, "model"))]
    for spec, make in baselines:
        try:
            obj = make()
        except NotApplicable as e:
            rows.append(Row(method=spec.name, role=spec.role, description=spec.description,
                            scores={m: None for m in metrics}, note=f"skipped: {e}"))
            continue
        rows.append(Row(method=spec.name, role=spec.role, description=spec.description,
                        scores=score(obj, spec.name)))
    scored = [r.method for r in rows if not r.note]
    for m, why in skipped.items():
        if why and set(why) == set(scored) and len(set(why.values())) == 1:
            notes.setdefault(m, next(iter(why.values())))  # no row has it: one note for the metric
        elif why:  # rows sharing a reason are named together: "mean, locf skipped: ..."
            by_reason: dict[str, list[str]] = {}
            for row, reason in why.items():
                by_reason.setdefault(reason, []).append(row)
            notes.setdefault(m, "; ".join(f"{', '.join(r)} {reason}" for reason, r in by_reason.items()))
    return Scoreboard(task=task, metrics=metrics, rows=rows, notes=notes)


def score_samples(samples: Batch, ctx: BaselineContext, *, metrics: Sequence[MetricSpec],
                  baselines: Sequence[BaselineSpec]) -> Scoreboard:
    """The ``task="generate"`` ``metrics`` of ``samples`` and of each ``task="generate"`` baseline's
    ``ctx.n`` samples, all against ``ctx.held_out`` (a modality's: :func:`polydiff.plugins.scoring`)."""
    specs = [s for s in metrics if s.task == "generate"]
    declared = [b for b in baselines if b.task == "generate"]
    return _board("generate", specs, samples, ctx.held_out, [(b, functools.partial(b.fn, ctx)) for b in declared])


def observed_view(imp: Imputation) -> Imputation:
    """What a baseline may see of an imputation: the given entries only (``truth`` and the single
    ``sample`` are zero elsewhere, so hidden targets cannot leak into a baseline)."""
    seen = imp.truth * imp.given
    return Imputation(samples=seen[:, None], truth=seen, given=imp.given, target=imp.target, padding=imp.padding,
                      cond=imp.cond)


def baseline_imputation(spec: BaselineSpec, imp: Imputation, ctx: BaselineContext) -> Imputation:
    """``spec``'s predictions as an :class:`Imputation` of the same items, scored on the SAME
    ``target`` tensor as ``imp`` (given entries kept exact, as in the model's samples)."""
    pred = spec.fn(observed_view(imp), ctx)
    if not isinstance(pred, Tensor):
        raise TypeError(f"baseline {spec.name!r} returned {type(pred).__name__}, not a Tensor of predictions")
    pred = pred.to(imp.truth.dtype)
    if pred.dim() == imp.truth.dim():
        pred = pred[:, None]
    if tuple(pred.shape[2:]) != tuple(imp.truth.shape[1:]) or pred.shape[0] != len(imp):
        raise ValueError(f"baseline {spec.name!r} predicted shape {list(pred.shape)}; expected "
                         f"[{len(imp)}, S, {', '.join(map(str, imp.truth.shape[1:]))}]")
    given = imp.given[:, None].to(torch.bool)
    samples = torch.where(given, imp.truth[:, None], pred)
    return Imputation(samples=samples, truth=imp.truth, given=imp.given, target=imp.target, padding=imp.padding,
                      cond=imp.cond)


def score_imputation(imp: Imputation, ctx: BaselineContext, *, metrics: Sequence[MetricSpec],
                     baselines: Sequence[BaselineSpec]) -> Scoreboard:
    """The ``task="impute"`` ``metrics`` of ``imp`` and of each ``task="impute"`` baseline on the same
    items and target mask (a modality's: :func:`polydiff.plugins.scoring`)."""
    specs = [s for s in metrics if s.task == "impute"]
    declared = [b for b in baselines if b.task == "impute"]
    return _board("impute", specs, imp, ctx.held_out,
                  [(b, functools.partial(baseline_imputation, b, imp, ctx)) for b in declared])


# ---- baselines any modality can declare -----------------------------------------------------------

def training_items(ctx: BaselineContext) -> Batch:
    """``n`` real items of the training split (seeded draw; with replacement only when the split is
    smaller than ``n``): the data's own score, the ceiling of a generative model."""
    g = torch.Generator().manual_seed(ctx.seed)
    m = len(ctx.train)
    idx = torch.randperm(m, generator=g)[:ctx.n] if m >= ctx.n else torch.randint(m, (ctx.n,), generator=g)
    batch = ctx.train.get_batch(idx)
    return Batch(x=batch.x, padding=batch.padding, cond=dict(batch.cond))


def gaussian_fit(ctx: BaselineContext, *, max_fit: int = 20000, max_full_dim: int = 4096) -> Batch:
    """``n`` samples of ONE Gaussian fitted to the training items (full covariance up to
    ``max_full_dim`` dimensions, diagonal above): the baseline a generative model must beat."""
    train = ctx.train.get_batch(torch.arange(min(len(ctx.train), max_fit)))
    if train.padding is not None:
        raise NotApplicable("a Gaussian fit needs fixed-size items (this data is variable-length)")
    flat = train.x.reshape(len(train.x), -1).double()
    mu = flat.mean(0)
    g = torch.Generator().manual_seed(ctx.seed)
    z = torch.randn(ctx.n, flat.shape[1], generator=g, dtype=torch.float64)
    if flat.shape[1] <= max_full_dim and len(flat) > 1:
        cov = torch.cov(flat.T) + 1e-5 * torch.eye(flat.shape[1], dtype=flat.dtype)
        s = mu + z @ torch.linalg.cholesky(cov).T
    else:
        s = mu + z * flat.std(0, unbiased=len(flat) > 1)
    return Batch(x=s.to(train.x.dtype).reshape(ctx.n, *train.x.shape[1:]))


def mean_item_fill(observed: Imputation, ctx: BaselineContext, *, max_fit: int = 20000) -> Tensor:
    """Every hidden entry filled with the training mean of that entry (the mean image, frame...)."""
    x = ctx.train.get_batch(torch.arange(min(len(ctx.train), max_fit))).x
    return x.mean(0, keepdim=True).expand_as(observed.truth).to(observed.truth.dtype)


@dataclass(frozen=True)
class FillBaseline:
    """An imputation baseline from a fill ``fill(x_given, given) -> x`` (the shape of
    ``ModalitySpec.prior_fill``: linear interpolation, copy-last-frame...), applied to what the
    baseline may see."""

    fill: Callable[[Tensor, Tensor], Tensor]

    def __call__(self, observed: Imputation, ctx: BaselineContext) -> Tensor:
        return self.fill(observed.truth, observed.given)


__all__ = ["MIN_CLASSIFIER_ITEMS", "RELIABLE_ACCURACY", "BaselineContext", "FillBaseline", "Row", "Scoreboard",
           "baseline_imputation", "gaussian_fit", "mean_item_fill",
           "observed_view", "score_imputation", "score_samples", "training_items"]

"""Declarative objects that plugin hooks return (datasette's register_* idea).

Each is a frozen, keyword-only dataclass with a readable ``repr``: it *describes* a contribution
(name, options, the callable that builds it); the core owns the registries that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from torch import Tensor, nn

from polydiff.diffusion.contracts import MaskStrategySpec, SamplerSpec
from polydiff.exceptions import NotApplicable
from polydiff.options import FROM_SIGNATURE, signature_options

if TYPE_CHECKING:
    from polydiff.diffusion.data import DiffusionDataset
    from polydiff.diffusion.imputation import Imputation
    from polydiff.diffusion.schedules import Schedule
    from polydiff.diffusion.state import Batch


class DatasetBuilder(Protocol):
    """``build(**options) -> DiffusionDataset``: every option a keyword with a default (mypy checks it)."""

    def __call__(self) -> DiffusionDataset: ...


class BackboneBuilder(Protocol):
    """``build(dataset, **options) -> nn.Module``: the dataset positionally, options keywords with defaults."""

    def __call__(self, dataset: DiffusionDataset, /) -> nn.Module: ...


class MetricFn(Protocol):
    """``fn(samples_or_imputation, reference) -> float``."""

    def __call__(self, scored: Any, reference: DiffusionDataset, /) -> float: ...


@dataclass(frozen=True, kw_only=True)
class ModalitySpec:
    """A kind of data: what its samples look like and how people look at them.

    Args:
        name: registry key, e.g. ``"points"``, ``"image"``.
        description: one line for ``polydiff list modalities``.
        default_dataset, default_backbone: names in the dataset / backbone registries.
        primary_metric: the metric ``polydiff compare`` ranks by (a name in the metric registry).
        plot_samples: ``(samples, reference, path) -> None`` writes a picture of samples (and, when
            given, of reference data beside them).
        plot_trajectory: ``(frames, path) -> None`` pictures the denoising path; ``frames`` is a
            list of batches from noise to data, of ``trajectory_items`` samples each.
        trajectory_items: how many samples' whole denoising paths ``polydiff sample`` keeps for that
            picture (and ``--animate``); every step of each is held in memory, so large states want few.
        save_samples: ``(samples, directory) -> list[Path]`` writes samples in the modality's own
            formats (WAV, SDF, PNG...); ``None``: only the core's safetensors file.
        plot_imputation: ``(imputation, path) -> None`` pictures an
            :class:`~polydiff.diffusion.imputation.Imputation`: what was given, the held-out truth and the
            samples (inpainting before/after, forecast bands...).
        prior_fill: ``(x_given, given_mask) -> fill``, a cheap deterministic guess of every entry
            from the given ones (packed shapes; ``x_given`` is 0 where ``given_mask`` is 0, and the
            fill must not depend on those entries). Linear interpolation along time for series,
            the last given frame for video... Conditional models use it when
            ``model.prior_fill`` is ``"condition"`` or ``"residual"``; ``None``: no fill declared.
        baselines: :class:`BaselineSpec` s (trivial methods, floors, ceilings) that ``polydiff
            evaluate`` / ``impute`` score with the same metrics on the same items and masks as the model.
        save_imputation: ``(imputation, dataset, stem) -> list[Path]`` writes an imputation as media
            people look at or listen to (GIF, WAV, SDF, CSV in data units...), as ``stem`` + suffixes;
            ``dataset`` is the held-out data it came from (feature names, time stamps, scaling).
    """

    name: str
    description: str
    default_dataset: str
    default_backbone: str
    primary_metric: str | None = None
    plot_samples: Callable[[Batch, Batch | None, Path], None] | None = None
    plot_trajectory: Callable[[list[Batch], Path], None] | None = None
    trajectory_items: int = 512
    save_samples: Callable[[Batch, Path], list[Path]] | None = None
    plot_imputation: Callable[[Imputation, Path], None] | None = None
    prior_fill: Callable[[Tensor, Tensor], Tensor] | None = None
    baselines: tuple[BaselineSpec, ...] = ()
    save_imputation: Callable[[Imputation, DiffusionDataset, Path], list[Path]] | None = None


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """A dataset of a modality. ``build(**options)`` returns a :class:`~polydiff.diffusion.data.DiffusionDataset`;
    ``options`` lists the accepted keyword options with their defaults (validated by the config); by
    default they are read from ``build``'s keyword defaults, so they are written once."""

    name: str
    modality: str
    description: str
    build: DatasetBuilder
    options: Mapping[str, Any] = FROM_SIGNATURE

    def __post_init__(self) -> None:
        if self.options is FROM_SIGNATURE and callable(self.build):
            object.__setattr__(self, "options", signature_options(self.build))


@dataclass(frozen=True, kw_only=True)
class BackboneSpec:
    """A network ``F(x_in, c_noise, **cond) -> out`` (out has x_in's packed shape).

    ``build(dataset, **options)`` constructs it for a dataset (it reads ``dataset.spec``,
    ``dataset.sample_shape``, ``dataset.num_classes``). ``modality=None``: works for any modality.
    Conventions every backbone follows: a class label of ``-1`` means "no label" (classifier-free
    guidance); with ``conditional`` training the keywords ``x_cond`` (observed values, 0 elsewhere)
    and ``cond_mask`` (1 = observed) arrive in ``cond``; whenever a batch has a padding mask
    (variable-length states) it arrives as the keyword ``padding`` (packed shape, 1 = real entry),
    and padded entries must not influence real outputs.

    ``self_condition``: ``build`` takes ``self_condition=True`` (``model.self_condition``); the
    backbone then gets the keyword ``self_cond`` (an x0 estimate over sigma_data, packed shape,
    zeros for "none") and sets ``supports_self_condition = True``.
    """

    name: str
    modality: str | None
    description: str
    build: BackboneBuilder
    options: Mapping[str, Any] = FROM_SIGNATURE
    self_condition: bool = False

    def __post_init__(self) -> None:
        if self.options is FROM_SIGNATURE and callable(self.build):  # model.self_condition is its own key
            object.__setattr__(self, "options", signature_options(self.build, exclude=("self_condition",)))


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """A forward process; ``build`` is a :class:`~polydiff.diffusion.schedules.Schedule` dataclass whose
    keyword fields are its options."""

    name: str
    build: type[Schedule]
    description: str


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """A quality metric, for one of two tasks:

    * ``task="generate"``: ``fn(samples, reference) -> float`` scores a :class:`~polydiff.diffusion.state.Batch`
      of samples against the dataset they should match (usually held-out data);
    * ``task="impute"``: ``fn(imputation, reference) -> float`` scores an
      :class:`~polydiff.diffusion.imputation.Imputation` (S samples per item) on its held-out target entries.

    ``direction``: whether lower or higher is better. ``modality=None``: any modality. A metric that
    does not apply to a reference dataset raises :class:`NotApplicable` (the table notes it).
    ``classifier``: ``(reference) -> ClassifierInfo`` for metrics computed with a reference classifier;
    its held-out accuracy is printed beside the metric, which is marked unreliable when it is low.
    """

    name: str
    modality: str | None
    description: str
    fn: MetricFn
    direction: Literal["lower", "higher"] = "lower"
    task: Literal["generate", "impute"] = "generate"
    classifier: Callable[[DiffusionDataset], ClassifierInfo] | None = None


@dataclass(frozen=True, kw_only=True)
class ClassifierInfo:
    """The reference classifier behind a metric: ``accuracy`` on its own held-out items, ``n_train``
    items it was trained on."""

    name: str
    accuracy: float
    n_train: int


@dataclass(frozen=True, kw_only=True)
class BaselineSpec:
    """A method scored beside the model with the model's metrics, on the same items and masks.

    * ``task="generate"``: ``fn(context) -> Batch`` of ``context.n`` samples, scored against the
      held-out data like the model's samples;
    * ``task="impute"``: ``fn(observed, context) -> Tensor`` predictions ``[n, *shape]`` or
      ``[n, S, *shape]`` for the items of ``observed``, an :class:`~polydiff.diffusion.imputation.Imputation`
      whose ``truth`` holds ONLY the given entries (targets are zeroed: a baseline never sees what it
      predicts); the core scores them on the model's ``target`` mask.

    ``context`` is a :class:`polydiff.evaluation.baselines.BaselineContext` (train / held-out data, n, seed, and
    the run's sampler for denoiser baselines). ``role``: ``"baseline"`` (a trivial method),
    ``"floor"`` (what any model must beat) or ``"ceiling"`` (the data's own score). ``fn`` raises
    :class:`NotApplicable` when it does not apply to the data.
    """

    name: str
    description: str
    fn: Callable[..., Any]
    task: Literal["generate", "impute"] = "generate"
    role: Literal["baseline", "floor", "ceiling"] = "baseline"


NAME = re.compile(r"[a-z0-9_\-]+")
"""Valid registry names (and modality references): lower-case letters, digits, ``_`` and ``-``."""

# spec attributes: names, optional names, callables, optional callables
_NAMES = ("name", "default_dataset", "default_backbone")
_OPTIONAL_NAMES = ("modality", "primary_metric")
_CALLABLES = ("build", "fn")  # one rule: build makes an object (a function or a class), fn is a pure function
_OPTIONAL_CALLABLES = ("plot_samples", "plot_trajectory", "save_samples", "plot_imputation", "prior_fill",
                       "save_imputation", "classifier")
_CHOICES = {"direction": ("lower", "higher"), "task": ("generate", "impute"), "role": ("baseline", "floor", "ceiling")}


def spec_problems(spec: object) -> list[str]:
    """What is wrong with a spec, as sentences naming the field (empty when it is valid).

    The host checks every spec a hook returns, before registering it: names match :data:`NAME`,
    descriptions are strings, ``build`` / ``fn`` / ``plot_*`` are callable, ``options`` is a
    mapping of keyword names (they become config keys), ``evals_per_step`` is a positive int, booleans
    are booleans, ``direction`` / ``task`` are one of their values and a schedule's ``build`` is a
    :class:`~polydiff.diffusion.schedules.Schedule` subclass.
    """
    from polydiff.diffusion.schedules import Schedule

    out: list[str] = []
    for attr in _NAMES + _OPTIONAL_NAMES:
        if not hasattr(spec, attr) or (attr in _OPTIONAL_NAMES and getattr(spec, attr) is None):
            continue
        value = getattr(spec, attr)
        if not isinstance(value, str) or not NAME.fullmatch(value):
            out.append(f"{attr} must be a name of lower-case letters, digits, '_' or '-', got {value!r:.80}")
    description = getattr(spec, "description", "")
    if not isinstance(description, str):
        out.append(f"description must be a string, got {type(description).__name__}")
    for attr in _CALLABLES + _OPTIONAL_CALLABLES:
        value = getattr(spec, attr, None)
        required = attr in _CALLABLES and hasattr(spec, attr)
        if (required or value is not None) and not callable(value):
            out.append(f"{attr} must be callable, got {value!r:.80}")
    options = getattr(spec, "options", {})
    if not isinstance(options, Mapping):
        out.append(f"options must be a mapping of option name to default, got {type(options).__name__}")
    else:
        bad = [k for k in options if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            out.append(f"option names must be Python identifiers, got {bad!r:.80}")
    for attr in ("stochastic", "self_condition"):
        if hasattr(spec, attr) and not isinstance(getattr(spec, attr), bool):
            out.append(f"{attr} must be True or False, got {getattr(spec, attr)!r:.80}")
    for attr in ("evals_per_step", "trajectory_items"):
        count = getattr(spec, attr, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            out.append(f"{attr} must be a positive int, got {count!r:.80}")
    for attr, choices in _CHOICES.items():
        if hasattr(spec, attr) and getattr(spec, attr) not in choices:
            out.append(f"{attr} must be one of {', '.join(map(repr, choices))}, got {getattr(spec, attr)!r:.80}")
    for b in getattr(spec, "baselines", ()) if isinstance(spec, ModalitySpec) else ():
        out += [f"baselines: {p}" for p in (spec_problems(b) if isinstance(b, BaselineSpec)
                                            else [f"{b!r:.60} is not a BaselineSpec"])]
    if isinstance(spec, ScheduleSpec) and not (isinstance(spec.build, type) and issubclass(spec.build, Schedule)):
        out.append(f"build must be a subclass of polydiff.diffusion.schedules.Schedule, got {spec.build!r:.80}")
    return out


__all__ = [
    "NAME",
    "BackboneBuilder",
    "BackboneSpec",
    "BaselineSpec",
    "ClassifierInfo",
    "DatasetBuilder",
    "DatasetSpec",
    "MaskStrategySpec",
    "MetricFn",
    "MetricSpec",
    "ModalitySpec",
    "NotApplicable",
    "SamplerSpec",
    "ScheduleSpec",
    "signature_options",
    "spec_problems",
]

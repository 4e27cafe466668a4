"""``polydiff`` command line: plugins, list, train, sample, evaluate, quickstart."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from polydiff import plugins

LISTABLE = ("modalities", "datasets", "backbones", "schedules", "samplers", "metrics", "mask-strategies")


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a text table that fits the terminal (long cells wrap)."""
    from polydiff.tables import format_table

    return format_table(rows, list(columns))


def cmd_plugins(args: argparse.Namespace) -> int:
    infos = [_plugin_row(p, full=args.json) for p in plugins.plugins()]
    columns = ("name", "version", "source", "status", "provides")
    print(json.dumps(infos, indent=2) if args.json else _table(infos, columns))
    return 0


def _plugin_row(info: Any, *, full: bool) -> dict[str, Any]:
    row = info.as_dict() if hasattr(info, "as_dict") else dict(vars(info))
    provides = row.get("provides")
    if isinstance(provides, dict) and not full:  # the table shows counts; --json keeps the names
        row["provides"] = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in provides.items() if v) or "-"
    return row


def cmd_list(args: argparse.Namespace) -> int:
    what = args.what
    if what == "modalities":
        rows = [{"name": m.name, "dataset": m.default_dataset, "backbone": m.default_backbone,
                 "description": m.description} for m in plugins.modalities()]
    elif what == "datasets":
        rows = [{"modality": d.modality, "name": d.name, "description": d.description} for d in plugins.datasets()]
    elif what == "backbones":
        rows = [{"name": b.name, "modality": b.modality or "any", "description": b.description}
                for b in plugins.backbones()]
    elif what == "schedules":
        rows = [{"name": s.name, "options": ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(s.build)
                                                      if f.init and f.default is not dataclasses.MISSING),
                 "description": s.description} for s in plugins.schedules()]
    elif what == "samplers":
        rows = [{"name": s.name, "stochastic": "yes" if s.stochastic else "no", "nfe/step": str(s.evals_per_step),
                 "options": ", ".join(f"{k}={v}" for k, v in s.options.items()) or "-",
                 "description": s.description} for s in plugins.samplers()]
    elif what == "metrics":
        rows = [{"name": m.name, "modality": m.modality or "any", "task": m.task, "better": m.direction,
                 "description": m.description} for m in plugins.metrics()]
    else:
        rows = [{"name": m.name, "options": ", ".join(f"{k}={v!r}" for k, v in m.options.items()) or "-",
                 "description": m.description} for m in plugins.mask_strategies()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows, list(rows[0]) if rows else ["name"]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .workflows import train

    modality, overrides = _modality_and_overrides(args)
    run = train(modality, config_file=args.config, overrides=tuple(overrides), out=args.out,
                resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    print(f"run directory: {run.path}")
    if run.config.train.conditional:  # a masked model imputes; `sample` would refuse it
        print(f"next: polydiff impute {run.path}   (a conditional model; see polydiff impute --help)")
    else:
        print(f"next: polydiff sample {run.path}   then: polydiff evaluate {run.path}")
    return 0


def _modality_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    modality, overrides = args.modality, list(args.overrides)
    if modality is not None and "=" in modality:  # `train --config F k=v`: argparse took k=v for MODALITY
        modality, overrides = None, [modality, *overrides]
    return modality, overrides


def cmd_config(args: argparse.Namespace) -> int:
    from .config import apply_overrides
    from .config import load_file as load_config_file
    from .runs import resolve_config

    modality, overrides = _modality_and_overrides(args)
    raw = load_config_file(args.config) if args.config else {}
    if modality:
        raw["modality"] = modality
    print(json.dumps(resolve_config(apply_overrides(raw, overrides)).to_dict(), indent=2))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .config import parse_options
    from .runs import Run
    from .workflows import sample_run

    options = parse_options(args.sampler_option, "--sampler-option") if args.sampler_option else None
    out = sample_run(Run.open(args.run), sampler=args.sampler, steps=args.steps, n=args.n, seed=args.seed,
                     grid=args.grid, cfg_scale=args.cfg_scale, label=args.label, progress=not args.quiet,
                     animate=args.animate, options=options, weights=args.weights, device=args.device)
    print(f"samples: {out.path}  (NFE {out.nfe}, {out.seconds:.2f} s)")
    for p in out.pictures:
        print(f"{'picture' if p.suffix in ('.png', '.gif') else 'media'}: {p}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .runs import Run
    from .workflows import evaluate_run

    results = evaluate_run(Run.open(args.run), samples=args.samples, imputations=args.imputations,
                           likelihood_n=args.likelihood_n, progress=not args.quiet, weights=args.weights,
                           device=args.device)
    if args.json:
        from .run_model import json_safe

        print(json.dumps(json_safe(results), indent=2))
    else:
        print(_results_text(results))
    return 0


def _results_text(results: dict[str, Any]) -> str:
    """The run facts (file, n, NLL, time...) as a two-column table, then the model beside its
    baselines, floors and ceilings (:class:`polydiff.evaluation.baselines.Scoreboard`)."""
    from polydiff.evaluation.baselines import Scoreboard
    from polydiff.tables import format_table

    board = Scoreboard.from_json(results["table"]) if "table" in results else None
    shown = set(board.metrics) if board is not None else set()
    facts = [{"item": k, "value": f"{v:.5g}" if isinstance(v, float) else "-" if v is None else v}
             for k, v in results.items() if k != "table" and k not in shown]
    text = format_table(facts, ("item", "value"))
    return text if board is None else f"{text}\n\n{board.format()}"


def cmd_impute(args: argparse.Namespace) -> int:
    from .config import parse_options
    from .impute_workflow import evaluate_imputation, impute_run
    from .runs import Run

    options = parse_options(args.mask_option, "--mask-option")
    sampling = parse_options(args.sampler_option, "--sampler-option") if args.sampler_option else None
    run = Run.open(args.run)
    path, pictures = impute_run(run, mask=args.mask, mask_options=options, n=args.n,
                                n_samples=args.n_samples, sampler=args.sampler, steps=args.steps, grid=args.grid,
                                seed=args.seed, progress=not args.quiet, options=sampling, weights=args.weights,
                                device=args.device, calibrate=args.calibrate, sigma_max=args.sigma_max)
    print(f"imputations: {path}")
    for p in pictures:
        print(f"{'picture' if p.suffix == '.png' else 'media'}: {p}")
    print()
    print(_results_text(evaluate_imputation(run, path)))
    print(f"(scores saved in {run.path / 'eval-imputation.json'}; "
          f"again: polydiff evaluate {args.run} --imputations {path})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import load_grid, run_grid, shard, write_report

    if args.list:
        grid = load_grid(args.grid, args.overrides)
        for cell in shard(grid.cells, args.shard):
            print(f"{cell.index}\t{cell.slug}")
        print(f"{len(grid.cells)} training cells x {grid.measurements_per_cell()} (sampler, NFE) measurements each")
        return 0
    out = run_grid(args.grid, args.out, overrides=args.overrides, shard_spec=args.shard, progress=not args.quiet)
    if args.shard is None:  # a shard worker leaves the report to whoever merges the shards
        print(f"report: {write_report(out)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .compare import write_report

    print(f"report: {write_report(args.out)}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .workflows import quickstart

    res = quickstart(args.out, steps=args.steps, progress=not args.quiet, overwrite=args.overwrite)
    m = res["metrics"]
    print(f"\nTrained, sampled and evaluated the 8-Gaussian ring in {res['seconds']:.0f} s.")
    print(f"Run directory: {res['run']}")
    for key in ("sliced_w2", "true_nll", "nll_nats_per_dim"):
        if key in m and m[key] is not None:
            print(f"  {key:18s} {m[key]:.4f}")
    print("  for comparison: the same sampler driven by the exact denoiser, and fresh exact samples")
    for metric in ("sliced_w2", "true_nll"):
        for prefix, label in (("exact_denoiser_", "exact denoiser"), ("data_", "fresh data")):
            if prefix + metric not in m:
                continue
            if prefix + metric + "_sd" in m:  # the data's own score varies between draws: say by how much
                print(f"  {metric:18s} {m[prefix + metric]:.4f}  <- {label}: mean of {m['data_draws']:.0f} draws of "
                      f"{m['data_points']:.0f} points, sd {m[prefix + metric + '_sd']:.4f} (differences below ~2 sd "
                      "are noise)")
            else:
                print(f"  {metric:18s} {m[prefix + metric]:.4f}  <- {label}")
    for p in res["pictures"]:
        print(f"picture: {p}")
    return 0


def _version() -> str:
    from polydiff._version import __version__

    return f"polydiff {__version__}"


def _model_options(s: argparse.ArgumentParser) -> None:
    """--weights and --device, for every command that runs a trained model."""
    s.add_argument("--weights", choices=("ema", "raw"), default="ema",
                   help="the checkpoint's EMA weights (default) or the raw optimiser weights")
    s.add_argument("--device", help="where the model runs, e.g. cpu or cuda:1 (default: the run's train.device)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polydiff", description="Diffusion models for any modality.")
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE", dest="plugin_modules",
                   help="also load this module as a plugin (repeatable; or POLYDIFF_PLUGIN_MODULES=a,b)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-p", "--plugin", action="append", default=argparse.SUPPRESS, metavar="MODULE",
                        dest="plugin_modules_sub", help="also load this module as a plugin (repeatable)")

    def command(name: str, help: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **kw)

    s = command("plugins", "installed plugins, their status and what they provide")
    s.add_argument("--json", action="store_true", help="machine-readable, with every provided name")
    s.set_defaults(fn=cmd_plugins)

    s = command("list", "registered components of one kind")
    s.add_argument("what", choices=LISTABLE, help="which kind of component")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(fn=cmd_list)

    for name, help_text, fn in (("train", "train a model; writes a run directory", cmd_train),
                                ("config", "print the resolved config of a run before training it (JSON)",
                                 cmd_config)):
        s = command(name, help_text)
        s.add_argument("modality", nargs="?", help="e.g. points" + (" (omit with --resume)" if name == "train" else ""))
        s.add_argument("overrides", nargs="*", help="section.key=value anywhere on the line, e.g. train.steps=500 "
                                                    "data.dataset=mixture")
        s.add_argument("--config", help="TOML, YAML or JSON config file")
        s.set_defaults(fn=fn)
        if name == "train":
            s.add_argument("--out", help="run directory (default runs/<modality>-<dataset>-<time>)")
            s.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
            s.add_argument("--overwrite", action="store_true",
                           help="replace --out if it holds a finished polydiff run (never any other directory)")
            s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = command("sample", "sample from a trained run")
    s.add_argument("run", help="run directory")
    s.add_argument("--sampler", help="sampler name (polydiff list samplers; default: sample.sampler)")
    s.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option (repeatable), e.g. sigma_restart=0.2 for restart")
    s.add_argument("--steps", type=int, help="sampler steps (default: sample.steps)")
    s.add_argument("--n", type=int, help="number of samples (default: sample.n)")
    s.add_argument("--seed", type=int, help="base seed; sample i is the same in any batch (default: sample.seed)")
    s.add_argument("--grid", choices=("uniform_t", "karras", "logsnr", "optimized"),
                   help="sigma grid (default: sample.grid); optimized: fitted to this run's model, sampler and "
                        "steps, saved in RUN/grids and reused")
    s.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (class-conditional runs)")
    s.add_argument("--label", type=int, help="class label for every sample")
    s.add_argument("--animate", action="store_true", help="also write a GIF of the denoising, noise to data")
    _model_options(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_sample)

    s = command("evaluate", "metrics of a run's samples and its likelihood on held-out data")
    s.add_argument("run", help="run directory")
    s.add_argument("--samples", help="a samples .safetensors file (default: the newest in RUN/samples)")
    s.add_argument("--imputations", help="an imputation file from `polydiff impute`: score it instead")
    s.add_argument("--likelihood-n", type=int, default=256, metavar="N",
                   help="held-out items for the probability-flow NLL (default 256; 0 skips it)")
    _model_options(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_evaluate)

    s = command("compare", "train and measure a schedule x sampler x weighting x NFE grid across modalities; "
                           "writes measurements and a report")
    s.add_argument("grid", help="grid file (TOML, YAML or JSON), e.g. examples/grids/small.toml")
    s.add_argument("overrides", nargs="*", help="key.path=value anywhere on the line, e.g. train.steps=50 "
                                                "modalities.points.model.width=32")
    s.add_argument("--out", required=True, help="results directory (rerun the same command to resume)")
    s.add_argument("--shard", metavar="I/N", help="run only cells with index %% N == I (one job-array task)")
    s.add_argument("--list", action="store_true", help="list the training cells (of --shard) and exit")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_compare)

    s = command("report", "rebuild a comparison's CSV, Markdown report and plots from its results")
    s.add_argument("out", help="results directory of `polydiff compare`")
    s.set_defaults(fn=cmd_report)

    s = command("impute", "hide entries of held-out data (a mask strategy) and sample them S times")
    s.add_argument("run", help="run directory")
    s.add_argument("--mask", default="random_ratio", help="mask strategy (polydiff list mask-strategies)")
    s.add_argument("--mask-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the mask strategy, e.g. ratio=0.5 (repeatable)")
    s.add_argument("--n", type=int, help="held-out items to impute (default 64)")
    s.add_argument("--n-samples", type=int, default=20,
                   help="samples per item (default 20: a 90%% interval needs 19)")
    s.add_argument("--sampler", help="sampler name (default: sample.sampler)")
    s.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option (repeatable), e.g. sigma_restart=0.2 for restart")
    s.add_argument("--steps", type=int, help="sampler steps (default: sample.steps)")
    s.add_argument("--grid", choices=("uniform_t", "karras", "logsnr", "optimized"),
                   help="sigma grid (default: sample.grid); optimized: fitted to this run's model, sampler, steps "
                        "and mask on training items, saved in RUN/grids")
    s.add_argument("--sigma-max", metavar="SIGMA|Kx",
                   help="start sampling at this noise level (Kx: K times the model's sigma_data) instead of the "
                        "schedule's largest; with --sampler euler --steps 1 each sample is one denoising from there: "
                        "well above sigma_data, close to the model's posterior mean (median for weighting.norm = l1) "
                        "given the observed entries")
    s.add_argument("--seed", type=int, help="seeds the mask and the noise (default: sample.seed)")
    s.add_argument("--calibrate", default="0", metavar="K|given",
                   help="widen the 90%% intervals by split conformal prediction fitted on the last K held-out "
                        "items (never scored), or on 'given': the scored items' own given entries hidden again "
                        "by the mask strategy's calibration task, drawn up to 16 times for 200 values (default 0: raw "
                        "intervals)")
    _model_options(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_impute)

    s = command("quickstart", "train the 2-D toy in about a minute, sample and draw pictures")
    s.add_argument("--out", default="runs/quickstart", help="run directory (default runs/quickstart)")
    s.add_argument("--steps", type=int, help="training steps (default 6000)")
    s.add_argument("--overwrite", action="store_true", help="replace --out if it holds a polydiff run")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_quickstart)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line; ``key=value`` overrides may come anywhere on it, also after options."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        takes_overrides = hasattr(args, "overrides")
        bad = [a for a in extra if not takes_overrides or a.startswith("-") or "=" not in a]
        if bad:
            parser.error(f"unrecognized arguments: {' '.join(bad)}")
        args.overrides = [*args.overrides, *extra]
    args.plugin_modules = [*args.plugin_modules, *getattr(args, "plugin_modules_sub", [])]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if getattr(args, "fn", None) is None:  # bare `polydiff`
        build_parser().print_help()
        return 0
    from .errors import report_error

    try:
        if args.plugin_modules:
            plugins.load_plugin_modules(args.plugin_modules)
        return int(args.fn(args))
    except BaseException as e:  # one message, never a traceback; POLYDIFF_DEBUG=1 shows it
        if os.environ.get("POLYDIFF_DEBUG") or isinstance(e, SystemExit):
            raise
        return report_error(e)


if __name__ == "__main__":
    sys.exit(main())

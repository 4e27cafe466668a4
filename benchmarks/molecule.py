"""Molecule benchmark: unconditional 3D generation (EDM metrics) and conformer generation (COV/MAT).

Part 1 trains the ``e3nn`` backbone on small real molecules (Debian chemical-structures-data, <= 9
heavy atoms, hydrogens explicit) for a CPU time budget, evaluating at three checkpoints: atom and
molecule stability, validity, uniqueness, novelty, distance / bond-length W1, for 2 samplers x 2 NFE
at the last checkpoint, then where validity is lost (training molecules noised to sigma0 and
denoised back, scored with their own or the true atom types). Reference rows: held-out data
(ceiling) and data atom types on random coordinates (floor: the training molecules whose sizes
the samples get). Part 2 trains
``e3nn_conformer`` on ETKDG conformers of the built-in molecules and scores generated conformers of
held-out molecules against ETKDG references (COV-R / MAT-R at 0.5 A, heavy atoms), next to ETKDG's
own self-consistency (another seed against the references).

    python benchmarks/molecule.py --part unconditional --minutes 28 --threads 1   # measured 2026-12-01
    python benchmarks/molecule.py --smoke     # a minute, checks the script end to end
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polydiff import plugins
from polydiff.app.config import parse_options
from polydiff.app.runs import Run, build_denoiser, build_schedule, load_data, resolve_config
from polydiff.app.workflows import load_denoiser
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.samplers import ddpm
from polydiff.diffusion.sampling import sample, with_self_conditioning
from polydiff.diffusion.schedules import sigma_grid
from polydiff.diffusion.state import Batch, projector
from polydiff.training.trainer import Trainer
from polydiff_molecule import metrics as mm
from polydiff_molecule.chem import embed, mol_from_smiles
from polydiff_molecule.conformers import ConformerDataset, generate_conformers
from polydiff_molecule.data import SPEC, embed_smiles
from polydiff_molecule.smiles_list import SMALL_MOLECULES

RESULTS = Path(__file__).parent / "results"
METRICS = ["atom_stability", "molecule_stability", "validity", "uniqueness", "novelty", "distance_w1",
           "bond_length_w1"]


def score(batch: Batch, reference: Any) -> dict[str, float]:
    return {name: getattr(mm, name)(batch, reference) for name in METRICS}


def parse_sampler(text: str) -> tuple[str, dict[str, Any]]:
    """``name[:option=value...]``, e.g. ``restart:solver=ddpm:sigma_restart=0.2``."""
    name, *pairs = text.split(":")
    return name, parse_options(pairs, f"sampler {text!r}")


def random_coordinates(data: Batch, seed: int) -> Batch:
    """Data atom types and sizes on Gaussian coordinates of the data's spread (the floor)."""
    fields = SPEC.unpack(data.x.clone())
    assert data.padding is not None  # molecules are always padded
    mask = SPEC.unpack(data.padding)["pos"]
    std = float(fields["pos"][mask > 0].std())
    fields["pos"] = torch.randn(fields["pos"].shape, generator=torch.Generator().manual_seed(seed)) * std
    return Batch(x=SPEC.project(SPEC.pack(fields), data.padding), padding=data.padding)


def refinement(denoiser: Any, data: Batch, reference: Any, schedule: Any, steps: int = 30) -> list[dict[str, Any]]:
    """Where validity is lost: training molecules noised to sigma0 (every field), then DDPM from
    sigma0 to 0 (SDEdit). Scored as they come out, with their positions put back on the true atom
    types, and with their types on the true positions; beside the noised input's positions on the
    true types (what the noise alone does)."""
    assert data.padding is not None
    project = projector(SPEC, data.padding)

    def plain(x: torch.Tensor, sigma: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        return project(denoiser(x, sigma, padding=data.padding, **cond))

    true = SPEC.unpack(data.x)
    real = SPEC.unpack(data.padding)["pos"][..., 0] > 0
    keep = ["atom_stability", "validity"]
    scored = lambda f: {k: v for k, v in score(Batch(x=project(SPEC.pack(f)), padding=data.padding), reference).items()  # noqa: E731
                        if k in keep}
    rows = []
    for sigma0 in (0.1, 0.2, 0.5):
        noise = NoiseSource(seeds_for(len(data.x), 0), spec=SPEC, padding=data.padding)
        noised = SPEC.unpack(project(data.x + sigma0 * noise(data.x)))
        den = with_self_conditioning(plain) if getattr(denoiser, "self_condition", False) else plain
        with torch.no_grad():
            out = SPEC.unpack(project(ddpm(den, SPEC.pack(noised), sigma_grid(schedule, steps, sigma_max=sigma0),
                                           noise=noise)))
        rows.append({"sigma0": sigma0, "noised_positions": scored({**true, "pos": noised["pos"]}),
                     "refined": scored(out), "refined_positions_true_types": scored({**true, "pos": out["pos"]}),
                     "true_positions_refined_types": scored({**out, "pos": true["pos"]}),
                     "type_accuracy": float((out["atom_types"].argmax(-1) == true["atom_types"].argmax(-1))[real]
                                            .float().mean())})
        print(_fmt(rows[-1]))
    return rows


def unconditional(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    # training noise levels: ln sigma ~ N(p_mean, p_std^2) (EDM); the default centres them where
    # molecules (radius ~2 A) take shape instead of spending half the steps on sigma > 2 A blobs
    raw = {"modality": "molecule", "data": {"dataset": args.dataset, "holdout": 0.1},
           "model": {"backbone": "e3nn", "scalars": args.scalars, "vectors": args.vectors, "layers": args.layers,
                     "width": args.width, "update_positions": args.update_positions, "r_max": args.r_max,
                     "basis": args.basis, "readout": args.readout, "self_condition": args.self_condition,
                     **({"sigma_data": "per_field"} if args.sigma_data == "per_field" else {})},
           "noise_levels": {"kind": "lognormal", "p_mean": args.p_mean, "p_std": args.p_std},
           **({"schedule": {"name": "edm", "sigma_hi": args.sigma_max}} if args.sigma_max else {}),
           "train": {"steps": 10 ** 6, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": 50,
                     "lr_decay_steps": args.lr_decay_steps, "ema_decay": args.ema_decay, "checkpoint_every": 10 ** 6,
                     "log_every": 25, "device": "cpu"}}
    run = Run.create(resolve_config(raw), out / "unconditional")
    train_ds, held = load_data(run.config)
    run.fix_sigma_data(train_ds)
    trainer = Trainer(denoiser=build_denoiser(run.config, train_ds), dataset=train_ds,
                      schedule=build_schedule(run.config), noise_levels=run.config.noise_levels,
                      weighting=run.config.weighting, config=run.config.train, run_dir=run.path)
    print(f"data: {getattr(train_ds, 'dataset', train_ds)!r}: {len(train_ds)} train / {len(held)} held out; sigma_data "
          f"{run.config.model.sigma_data}")
    ref = held.get_batch(torch.arange(len(held)))
    n = args.n
    sizes = train_ds.get_batch(torch.randint(len(train_ds), (n,), generator=torch.Generator().manual_seed(1)))
    # the floor: the very molecules whose sizes the samples get (n of them, not the few held-out
    # ones: 41 molecules gave the floor's validity in steps of 0.024), on random coordinates
    rows: list[dict[str, Any]] = [
        {"checkpoint": "held-out data", **score(ref, held)},
        {"checkpoint": "random coords", **score(random_coordinates(sizes, 0), held)}]
    schedule = build_schedule(run.config)
    budgets = [args.minutes * k / 3 for k in (1, 2, 3)]
    for k, minutes in enumerate(budgets):
        trainer.config = dataclasses.replace(run.config.train, max_minutes=minutes)
        summary = trainer.fit(progress=not args.quiet)
        denoiser = load_denoiser(run, train_ds)
        combos = ([(s, nfe) for s in args.samplers for nfe in args.nfe] if k == len(budgets) - 1
                  else [(args.samplers[0], args.nfe[0])])
        for sampler, nfe in combos:
            name, options = parse_sampler(sampler)
            spec = plugins.get_sampler(name)
            steps = spec.steps_for_nfe(nfe)  # restart: the main grid's; its NFE is in the row
            t0 = time.perf_counter()
            with torch.no_grad():
                res = sample(denoiser, shape=train_ds.sample_shape, n=n, seed=args.seed, sampler=spec,
                             schedule=schedule, steps=steps, spec=SPEC, padding=sizes.padding, batch_size=100,
                             options=options)
            row = {"checkpoint": f"{summary['step']} steps ({summary['seconds'] / 60:.1f} min)", "sampler": sampler,
                   "nfe": res.nfe, "sample_s": round(time.perf_counter() - t0, 1),
                   **score(Batch(x=res.x, padding=sizes.padding), held)}
            rows.append(row)
            print(_fmt(row))
    refined = refinement(denoiser, train_ds.get_batch(torch.arange(min(128, len(train_ds)))), held, schedule)
    return {"rows": rows, "refinement": refined, "train_molecules": len(train_ds), "held_out": len(held),
            "dataset": args.dataset, "model": run.config.model.options}


def conformers(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    small = [s for s in SMALL_MOLECULES if mol_from_smiles(s).GetNumHeavyAtoms() >= 4]
    rng = random.Random(0)
    test = sorted(rng.sample(small, args.test_molecules))
    train = [s for s in SMALL_MOLECULES if s not in test]
    mols = embed_smiles(train, seed=0, n_conformers=args.conformers, progress=not args.quiet)
    dataset = ConformerDataset(mols, max_atoms=max(m.GetNumAtoms() for m in mols) + 4)
    raw = {"modality": "conformer", "data": {"dataset": "conformers", "holdout": 0.0},
           "model": {"backbone": "e3nn_conformer", "scalars": args.scalars, "vectors": args.vectors,
                     "layers": args.layers, "width": args.width},
           "train": {"steps": 10 ** 6, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": 50,
                     "ema_decay": 0.995, "checkpoint_every": 10 ** 6, "log_every": 25, "device": "cpu",
                     "max_minutes": args.conformer_minutes}}
    config = resolve_config(raw)
    model = dataclasses.replace(config.model, sigma_data=1.0)
    config = dataclasses.replace(config, model=model)
    denoiser = build_denoiser(config, dataset)
    trainer = Trainer(denoiser=denoiser, dataset=dataset, schedule=build_schedule(config),
                      noise_levels=config.noise_levels, weighting=config.weighting, config=config.train,
                      run_dir=out / "conformer")
    summary = trainer.fit(progress=not args.quiet)
    denoiser = trainer.apply_ema()
    k = args.conformers
    per: dict[str, list[tuple[float, float]]] = {"e3nn_conformer": [], "ETKDG (other seed)": [], "ETKDG no MMFF": []}
    for i, smi in enumerate(test):
        refs = _confs(embed(mol_from_smiles(smi), seed=1000 + i, n_conformers=k))
        base = embed(mol_from_smiles(smi), seed=5000 + i, n_conformers=2 * k)
        raw_etkdg = embed(mol_from_smiles(smi), seed=9000 + i, n_conformers=2 * k, mmff=False)
        with torch.no_grad():
            gen = generate_conformers(denoiser, base, 2 * k, max_atoms=dataset.max_atoms, seed=i,
                                      sampler="heun", steps=args.conformer_steps, schedule=build_schedule(config))
        per["e3nn_conformer"].append(mm.coverage_matching(_confs(gen), refs, threshold=args.threshold))
        per["ETKDG (other seed)"].append(mm.coverage_matching(_confs(base), refs, threshold=args.threshold))
        per["ETKDG no MMFF"].append(mm.coverage_matching(_confs(raw_etkdg), refs, threshold=args.threshold))
    rows = [{"method": name, "COV-R": float(np.mean([c for c, _ in v])),
             "COV-R median": float(np.median([c for c, _ in v])),
             "MAT-R": float(np.mean([m for _, m in v])), "MAT-R median": float(np.median([m for _, m in v]))}
            for name, v in per.items()]
    for r in rows:
        print(_fmt(r))
    return {"rows": rows, "test_molecules": test, "threshold": args.threshold, "train_steps": summary["step"],
            "train_minutes": round(summary["seconds"] / 60, 2), "conformers_per_reference": k}


def _confs(mol: Any) -> list[Any]:
    from rdkit import Chem

    out = []
    for conf in mol.GetConformers():
        m = Chem.Mol(mol)
        m.RemoveAllConformers()
        m.AddConformer(Chem.Conformer(conf), assignId=True)
        out.append(m)
    return out


def _fmt(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    cols = [k for k in keys if any(k in r for r in rows)]
    cells = [[(f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "-"))) for k in cols] for r in rows]
    width = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, width, strict=True))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(cells_row, width, strict=True)) for cells_row in cells]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=28.0, help="CPU training budget, unconditional model")
    ap.add_argument("--conformer-minutes", type=float, default=5.0, help="CPU training budget, conformer model")
    ap.add_argument("--dataset", default="chemical_structures")
    ap.add_argument("--n", type=int, default=128, help="samples per evaluation")
    ap.add_argument("--samplers", nargs="+", default=["ddpm", "heun"],
                    help="name[:option=value...], e.g. restart:solver=ddpm:sigma_restart=0.2; the first is used at "
                         "every checkpoint")
    ap.add_argument("--nfe", type=int, nargs="+", default=[100, 30])
    ap.add_argument("--p-mean", type=float, default=-0.5, help="training ln sigma mean (lognormal)")
    ap.add_argument("--p-std", type=float, default=1.2, help="training ln sigma std")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-decay-steps", type=int, default=0,
                    help="EDM2 inverse square-root learning-rate decay after this many steps (0: constant)")
    ap.add_argument("--ema-decay", type=float, default=0.995, help="EMA of the unconditional model's weights")
    ap.add_argument("--scalars", type=int, default=16)
    ap.add_argument("--vectors", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded machine)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--sigma-data", choices=["per_field", "shared"], default="per_field",
                    help="EDM preconditioning with each field's own spread (positions ~1.4 A, scaled types ~0.08) "
                         "or one number for the whole state")
    ap.add_argument("--r-max", type=float, default=8.0, help="radial basis range (network input units)")
    ap.add_argument("--basis", type=int, default=24, help="radial basis functions")
    ap.add_argument("--update-positions", action="store_true",
                    help="the unconditional e3nn net moves atoms between layers (EGNN-style refinement)")
    ap.add_argument("--readout", type=int, default=0,
                    help="hidden width of an MLP reading atom types from scalars and vector norms (0: linear)")
    ap.add_argument("--sigma-max", type=float, default=0.0,
                    help="EDM schedule's sigma_max (A) for sampling (0: its default, 80); keep it where the "
                         "lognormal training noise reaches, which a self-conditioned model needs")
    ap.add_argument("--self-condition", action="store_true",
                    help="self-conditioning: the e3nn net also sees its previous x0 estimate (Chen et al. 2022)")
    ap.add_argument("--test-molecules", type=int, default=20)
    ap.add_argument("--conformers", type=int, default=5, help="reference conformers per molecule (generate 2x)")
    ap.add_argument("--conformer-steps", type=int, default=20)
    ap.add_argument("--threshold", type=float, default=0.5, help="COV-R RMSD threshold (A)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/benchmark-molecule")
    ap.add_argument("--part", choices=["all", "unconditional", "conformers"], default="all",
                    help="run one part; its rows replace that part in an existing results file")
    ap.add_argument("--smoke", action="store_true", help="tiny budgets: checks the script, numbers mean nothing")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.minutes, args.conformer_minutes, args.n, args.nfe, args.test_molecules = 0.3, 0.2, 16, [3, 5], 3
        args.dataset = "smiles"
    torch.set_num_threads(args.threads)  # 1: a shared machine stalls multi-threaded ops
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    start = time.perf_counter()
    name = "molecule-smoke.json" if args.smoke else "molecule.json"
    previous = json.loads((RESULTS / name).read_text()) if (RESULTS / name).is_file() and args.part != "all" else {}
    result: dict[str, Any] = {**previous, "torch_threads": torch.get_num_threads()}
    for part, fn in (("unconditional", unconditional), ("conformers", conformers)):
        if args.part in ("all", part):
            result[part] = fn(args, out)
            result[f"{part}_args"] = vars(args)
            result[f"{part}_seconds"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
    if "unconditional" in result:
        print("\nUnconditional generation (" + result["unconditional"]["dataset"] + ")")
        print(table(result["unconditional"]["rows"], ["checkpoint", "sampler", "nfe", *METRICS, "sample_s"]))
        print("\nWhere validity is lost (128 training molecules noised to sigma0, then DDPM 30 steps to 0):")
        print(table([{"sigma0": r["sigma0"], "type_accuracy": r["type_accuracy"],
                      **{f"{k} {m}": r[k][m] for k in ("noised_positions", "refined", "refined_positions_true_types",
                                                       "true_positions_refined_types") for m in ("validity",)}}
                     for r in result["unconditional"].get("refinement", [])],
                    ["sigma0", "type_accuracy", "noised_positions validity", "refined validity",
                     "refined_positions_true_types validity", "true_positions_refined_types validity"]))
    if "conformers" in result:
        c = result["conformers"]
        print(f"\nConformer generation: {len(c['test_molecules'])} held-out molecules, COV-R at {c['threshold']} A")
        print(table(c["rows"], ["method", "COV-R", "COV-R median", "MAT-R", "MAT-R median"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")
    result["seconds"] = sum(v for k, v in result.items() if k.endswith("_seconds"))
    print(f"\nwrote {RESULTS / name} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()

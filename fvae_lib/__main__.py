"""Command line: ``python -m fvae_lib {data,train,evaluate,sweep,demo} ...`` (also ``fvae ...`` once installed).

    data      build or verify dSprites (the real file or the offline replica) and print a summary
    train     train FactorVAE or β-VAE into a run folder, resumable
    evaluate  score a run folder: metrics, the KL decomposition, figures
    sweep     train and score a grid of runs (models x β or γ x seeds) into one folder, with a results table
    release   assignments from the notebooks: a student release and an nbgrader source version
    demo      data, a FactorVAE run and its figures, in runs/demo/

Parses arguments and calls the library; a refused configuration exits with status 2 and one message.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .data import DatasetError, DSprites, default_data_dir
from .config import DEFAULT_GAMMA, MODELS, PRESETS, ConfigError, TrainConfig
from .runs import RunFolder
from .train import Trainer, TrainingDiverged


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=("auto", "real", "replica"), default="auto",
                   help="the real dSprites npz if present (auto), only it (real), or the offline replica")
    p.add_argument("--path", help="the real dSprites npz (default: <data-dir>/dsprites_ndarray_...npz)")
    p.add_argument("--data-dir", help=f"folder for the real file and caches (default: {default_data_dir()})")


def _load(args, verify: bool = False) -> DSprites:
    return DSprites(source=args.source, path=args.path, data_dir=args.data_dir, verify=verify)


def cmd_data(args) -> int:
    t0 = time.perf_counter()
    data = _load(args, verify=True)
    summary = data.summary()
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary, indent=1))
    if args.figure:
        from .plots import factor_samples, save_figure

        print("figure:", save_figure(factor_samples(data), args.figure))
    return 0


def _train(config: TrainConfig, out: Path, resume: bool, progress: bool = True) -> list[Path]:
    from .plots import write_run_figures

    trainer = Trainer(config, out, resume=resume, progress=progress)
    print(f"training {config.model} (preset {config.preset}, gamma {config.gamma}, beta {config.beta}) on {trainer.device} "
          f"({trainer.precision}{', channels_last' if trainer.channels_last else ''}) from step {trainer.step} "
          f"to {config.iterations}; run folder {out}")
    trainer.run()
    folder = trainer.folder
    return [folder / folder.CONFIG, folder / folder.HISTORY, folder / folder.CHECKPOINT,
            *write_run_figures(out, trainer.vae, trainer.data, folder.read_history())]


def cmd_train(args) -> int:
    out = Path(args.out)
    overrides = dict(gamma=args.gamma, beta=args.beta, seed=args.seed, iterations=args.iterations,
                     batch_size=args.batch_size, data_source=args.source, precision=args.precision,
                     channels_last=args.channels_last, threads=args.threads)
    if args.resume and RunFolder(out).exists():
        saved = RunFolder(out).read_config()
        given = {k: v for k, v in overrides.items() if v is not None and not (k == "data_source" and v == "auto")}
        given.update({k: v for k, v in (("model", args.model), ("preset", args.preset)) if v is not None})
        config = TrainConfig.from_dict({**saved.to_dict(), **given, "device": args.device})
    else:
        config = TrainConfig.from_preset(args.preset, model=args.model or "factorvae", device=args.device, **overrides)
    paths = _train(config, out, args.resume, progress=not args.no_progress)
    print("\nresults:\n  " + "\n  ".join(str(p) for p in paths))
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import METRICS, evaluate_run

    run = Path(args.run)
    if not RunFolder(run).exists():
        raise ConfigError(f"{run} is not a run folder (no {RunFolder.CONFIG}); train one with `python -m fvae_lib train`")
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise ConfigError(f"--metrics: unknown {unknown or 'empty list'}; choose from {', '.join(METRICS)}")
    result = evaluate_run(run, settings=args.settings, seed=args.seed, device=args.device, metrics=metrics,
                          decomposition=not args.no_decomposition, progress=not args.no_progress)
    if "grid_encoding_seconds" in result:
        print(f"encoded every image once, for all metrics, in {result['grid_encoding_seconds']} s")
    print(json.dumps(result["metrics"], indent=1))
    print(f"\nwrote {RunFolder(run) / RunFolder.METRICS} and figures: {', '.join(result.get('figures', []))}")
    return 0


def _numbers(text: str, kind=float) -> list:
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, e.g. 1,4,16; got {text!r}") from None


def cmd_sweep(args) -> int:
    from .engines import run_sweep
    from .sweep import SweepSpec

    values = SweepSpec.from_file(args.spec).to_dict() if args.spec else {"grid": {}}
    grid = {m: _numbers(v) for m, v in (("betavae", args.betavae), ("factorvae", args.factorvae)) if v}
    if grid:
        values["grid"] = grid
    given = dict(preset=args.preset, iterations=args.iterations, device=args.device, settings=args.settings,
                 seeds=_numbers(args.seeds, int) if args.seeds else None,
                 metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None)
    values.update({k: v for k, v in given.items() if v is not None})
    spec = SweepSpec.from_dict(values)
    slurm = {}
    for item in args.slurm or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--slurm takes KEY=VALUE (e.g. partition=gpu), got {item!r}")
        slurm[key] = value  # typed and checked by the engine (fvae_lib.engines), with a clear error
    rows = run_sweep(spec, args.out, engine=args.engine, workers=args.workers, threads=args.threads,
                     cluster=args.cluster, slurm=slurm, progress=not args.no_progress, overwrite=args.overwrite_published)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def cmd_release(args) -> int:
    from .release import write_assignments

    paths = write_assignments(args.out, points=args.points, mode=args.mode)
    print(f"wrote {len(paths) // 2} assignments into {args.out}:\n  " + "\n  ".join(str(p) for p in paths))
    print("students get release/; with nbgrader, `nbgrader generate_assignment <name> --force` on source/ and "
          "`nbgrader autograde` grade them (run the grader with FVAE_MODE=smoke: seconds per notebook)")
    return 0


def cmd_demo(args) -> int:
    """Dataset summary and factor figure, then a FactorVAE run (cpu preset; gpu on a GPU) with its figures."""
    from .plots import factor_samples, save_figure

    out = Path(args.out)
    data = _load(args)
    print(json.dumps(data.summary(), indent=1))
    paths = [save_figure(factor_samples(data), out / "dsprites_factors.png")]
    config = TrainConfig.from_preset(args.preset, model="factorvae", data_source=args.source)
    run = out / "factorvae"
    resume = RunFolder(run).exists()  # a second `make demo` reuses (or finishes) the first one's run
    paths += _train(config, run, resume)
    print(f"\nResults are in {out.resolve()}:\n  " + "\n  ".join(str(p) for p in paths))
    return 0


def cmd_book(args) -> int:
    from .book import BookError, build, build_dir, serve

    out = Path(args.out) if args.out else build_dir()
    html = out / "html"
    if not args.serve_only:
        started = time.perf_counter()
        try:
            html = build(out, notebooks=args.notebooks.split(",") if args.notebooks else None, mode=args.mode,
                         quiet=not args.verbose, solutions=not args.no_solutions)
        except BookError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"the book is built ({time.perf_counter() - started:.0f} s): {html / 'index.html'}\n"
              f"read it served (the latent explorer needs http): make book-serve, then open http://127.0.0.1:{args.port}/")
    if args.serve or args.serve_only:
        if not (html / "index.html").is_file():
            print(f"error: no book in {html}; build it first: make book", file=sys.stderr)
            return 2
        try:
            serve(html, port=args.port)
        except BookError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fvae_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="build or verify dSprites (real file or replica) and print a summary")
    _add_data_args(p)
    p.add_argument("--figure", help="also write a figure of sample images per factor to this path")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("train", help="train FactorVAE or beta-VAE into a run folder (resumable)")
    p.add_argument("--model", choices=MODELS, help="default: factorvae")
    p.add_argument("--preset", choices=sorted(PRESETS), help="default: gpu (minutes) on a GPU, cpu elsewhere; paper is the paper's 3e5 iterations")
    p.add_argument("--gamma", type=float, help=f"TC weight (FactorVAE; default {DEFAULT_GAMMA})")
    p.add_argument("--beta", type=float, help="KL weight (default 1 for factorvae, 4 for betavae)")
    p.add_argument("--seed", type=int)
    p.add_argument("--iterations", type=int, help="override the preset's iteration count")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1, ...")
    p.add_argument("--source", choices=("auto", "real", "replica"), help="dSprites source (default auto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="auto (default): bf16 autocast on CPUs with native bf16, else fp32")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: with the CPU fast path)")
    p.add_argument("--threads", type=int, help="CPU threads: 0 (default) uses the cores no other process is busy on, "
                   "re-checked as training goes; N pins N (for bit-for-bit reproducibility on a shared machine)")
    p.add_argument("--out", required=True, help="the run folder, e.g. runs/fvae_g35_s0")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics, KL decomposition and figures of a run, into its folder")
    p.add_argument("run", help="the run folder")
    p.add_argument("--settings", choices=("full", "quick", "smoke"), default="full",
                   help="full: disentanglement_lib's sample counts; quick: small counts; smoke: the fewest, for smoke runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu or cuda")
    p.add_argument("--metrics", default="factor_vae,beta_vae,mig,dci",
                   help="comma-separated, from factor_vae, beta_vae, mig, dci and mig_sampled (Chen's MIG estimator; "
                        "minutes on a CPU: benchmarks/README.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-decomposition", action="store_true",
                   help="skip the KL decomposition (it encodes q(z|x) of every image: a minute or two on a CPU)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sweep", help="train and score a grid of runs into one folder, with a results table (resumable)",
                       description="Train and score a grid of runs. A spec file (TOML; see reference/sweep.toml) or the "
                       "flags give the grid; flags override the file. Finished runs are skipped, interrupted ones resume.")
    p.add_argument("spec", nargs="?", help="a TOML sweep spec, e.g. reference/sweep.toml")
    p.add_argument("--betavae", help="β values for β-VAE runs, e.g. 1,4,16")
    p.add_argument("--factorvae", help="γ values for FactorVAE runs, e.g. 10,35,100")
    p.add_argument("--seeds", help="e.g. 0,1 (default 0)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="default: the spec's, else cpu")
    p.add_argument("--iterations", type=int, help="override the preset's iteration count")
    p.add_argument("--metrics", help="comma-separated (default factor_vae,beta_vae,mig; add dci or mig_sampled)")
    p.add_argument("--settings", choices=("full", "quick", "smoke"), help="metric sample counts (default full)")
    p.add_argument("--device", help="auto (GPU if present), cpu, cuda")
    p.add_argument("--out", help="the sweep folder (default: the spec's out, else runs/sweep); "
                   "runs/<mode> makes the runs visible to the notebooks of that mode")
    p.add_argument("--engine", choices=("local", "submitit"), default="local",
                   help="local: worker processes here; submitit: SLURM jobs (or submitit's local executor off a cluster)")
    p.add_argument("--workers", type=int, default=0, help="runs at once (default: one per core on a CPU, one on a GPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per run (default: the cores divided among the workers)")
    p.add_argument("--cluster", choices=("slurm", "local", "debug"), help="submitit's executor (default: slurm if found, else local)")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE", help="a SLURM parameter for submitit, e.g. partition=gpu, "
                   "gpus_per_node=1, mem_gb=16 (repeat for more). A GPU sweep: --device cuda --slurm gpus_per_node=1")
    p.add_argument("--no-progress", action="store_true", help="log lines only, no progress bar")
    p.add_argument("--overwrite-published", action="store_true", help="let a complete sweep replace the results already "
                   "in its [publish] folder (the shipped reference/, for reference/sweep.toml); without it they are kept")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("release", help="assignments from the notebooks: student release + nbgrader source (solutions)")
    p.add_argument("--out", default="assignments", help="nbgrader course folder to write source/ and release/ into")
    p.add_argument("--points", type=float, default=1.0, help="points per exercise's autograded test (default 1)")
    p.add_argument("--mode", choices=("smoke", "cpu", "gpu", "paper"), help="write this MODE into both versions (students see it too; "
                   "to grade fast without it, run the grader with FVAE_MODE=smoke)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("book", help="the course as a static site (notebooks with outputs, the explorer): make book",
                       description="Build the rendered book into build/book/html (FVAE_BOOK_DIR moves it). The notebooks run "
                       "in the book mode (the shipped reference models, nothing retrained), cached: an unchanged notebook "
                       "is not run again.")
    p.add_argument("--notebooks", help="comma-separated numbers, e.g. 05 or 03,05 (default: all)")
    p.add_argument("--mode", default="book", help="the mode the notebooks run in (default book; smoke: seconds, untrained)")
    p.add_argument("--out", help="the build folder (default build/book)")
    p.add_argument("--no-solutions", action="store_true", help="leave out the solution pages and the links to them "
                   "(to publish while the exercises are graded)")
    p.add_argument("--serve", action="store_true", help="after building, serve it on http://127.0.0.1:PORT")
    p.add_argument("--serve-only", action="store_true", help="serve the last build without building")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--verbose", action="store_true", help="Sphinx's and the notebooks' progress")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("demo", help="the main job of `make demo`")
    _add_data_args(p)
    p.add_argument("--preset", choices=sorted(PRESETS), help="default: gpu (minutes) on a GPU, cpu elsewhere; paper is the paper's 3e5 iterations")
    p.add_argument("--out", default="runs/demo", help="where results go (default: runs/demo)")
    p.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DatasetError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

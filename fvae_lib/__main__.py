"""Command line: ``python -m fvae_lib data|demo ...``. Parses arguments and calls the library."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .data import DatasetError, DSprites, default_data_dir


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


def cmd_demo(args) -> int:
    from .plots import factor_samples, save_figure

    out = Path(args.out)
    data = _load(args)
    print(json.dumps(data.summary(), indent=1))
    fig_path = save_figure(factor_samples(data), out / "dsprites_factors.png")
    print(f"\nResults are in {out.resolve()}:\n  {fig_path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fvae_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="build or verify dSprites (real file or replica) and print a summary")
    _add_data_args(p)
    p.add_argument("--figure", help="also write a figure of sample images per factor to this path")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("demo", help="the main job of `make demo`")
    _add_data_args(p)
    p.add_argument("--out", default="runs/demo", help="where results go (default: runs/demo)")
    p.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

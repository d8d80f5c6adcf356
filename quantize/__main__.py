"""``python -m quantize build RECIPE.toml [--work DIR] [--out DIR] [--resume | --no-resume] [--jobs N]``,
``python -m quantize profile RECIPE.toml [--bundle DIR]`` and
``python -m quantize calibrate RECIPE.toml [--bundle DIR] [--global-only]``.

Why a module entry point as well as ``edge-finer build``: the pipeline needs the heavy training
stack (torch, transformers, optimum) that the runtime never installs, so it is runnable on its
own.  User errors print one line and exit 2; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quantize",
                                     description="Build an edge-finer bundle from a recipe.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="run a recipe: train/distil/export/quantise/evaluate, write the bundle")
    b.add_argument("recipe", type=Path, help="recipe TOML file")
    b.add_argument("--work", type=Path, default=None, help="work folder (default: the recipe's, else .work/NAME)")
    b.add_argument("--out", type=Path, default=None,
                   help="folder the bundle folder is written into (default: the recipe's output, else bundles/)")
    b.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse finished stages whose inputs are unchanged (default); --no-resume starts over")
    b.add_argument("--jobs", type=int, default=None,
                   help="processes that train the teacher's members at once, each with the recipe's threads, "
                        "then the student's threads x N (default: the recipe's jobs, else 1; 0 = the idle cores)")
    pr = sub.add_parser("profile", help="recompute a built bundle's language profile (for routing) from its "
                                      "recipe's training data, without retraining")
    pr.add_argument("recipe", type=Path, help="recipe TOML file the bundle was built from")
    pr.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: the recipe's output/NAME)")
    ca = sub.add_parser("calibrate", help="recalibrate a built bundle's entity-score threshold, and one per "
                                          "entity type, on its recipe's evaluation split, without retraining")
    ca.add_argument("recipe", type=Path, help="recipe TOML file the bundle was built from")
    ca.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: the recipe's output/NAME)")
    ca.add_argument("--global-only", action="store_true", help="one threshold for every type (no per-type ones)")
    args = parser.parse_args(argv)
    from edge_finer.errors import EdgeFinerError

    from . import require_build_dependencies

    try:
        require_build_dependencies()
        if args.command == "calibrate":
            from .build import refresh_calibration

            path = refresh_calibration(args.recipe, args.bundle, per_type=not args.global_only)
        elif args.command == "profile":
            from .build import refresh_profile

            path = refresh_profile(args.recipe, args.bundle)
        else:
            from .build import run_recipe

            path = run_recipe(args.recipe, work_dir=args.work, out_dir=args.out, resume=args.resume,
                              jobs=args.jobs)
    except EdgeFinerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

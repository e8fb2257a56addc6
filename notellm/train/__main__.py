"""`python -m notellm.train --config C --data D --out O --set key=value ...`: the entry point `torchrun -m` and
`accelerate launch -m` start (same options as `notellm train`; argparse only, independent of the CLI package).

Exit codes follow the CLI convention (notellm/cli/common.py): 1 for a bad config or input (a ValueError, e.g. an old
run folder with other settings), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys

from notellm.config import ConfigError
from notellm.train.launch import launch_config, run_training


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m notellm.train", description="Train NoteLLM (GCL + CSFT), "
                                     "resumable; the entry point of torchrun -m / accelerate launch -m.")
    parser.add_argument("--config", "-c", help="YAML with model: and train: sections.")
    parser.add_argument("--data", help="Data folder with notes.parquet and pairs.parquet.")
    parser.add_argument("--out", help="Run folder (checkpoints, model/, metrics.jsonl).")
    parser.add_argument("--reset-schedule", action="store_true", help="Resume a run whose settings or data changed: "
                        "keep its weights, start a fresh LR schedule and data order.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="Config override (dotted keys), repeatable; applied after the file.")
    parser.add_argument("old", nargs="*", help=argparse.SUPPRESS)  # deprecated positional overrides
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.old:
        print(f"warning: positional overrides are deprecated; use --set ({' '.join('--set ' + o for o in args.old)})",
              file=sys.stderr)
    try:
        cfg = launch_config(args.config, args.data, args.out, args.old + args.overrides, args.reset_schedule)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        print(run_training(cfg))
    except ValueError as exc:  # e.g. ResumeConfigError: an old run folder with other settings or data
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""Train a model (teacher or baseline student) with the one training loop.

Usage:
    python -m sekd.bin.train --config conf/teacher.yaml --train_dir data/train \\
        --valid_dir data/valid --out_dir exp/teacher [--resume] [--section.key value ...]

Trailing ``--section.key value`` arguments override the config (values parsed as YAML).
"""

from __future__ import annotations

import argparse
import sys

from sekd.data import DataError
from sekd.data.kaldi_dir import PIPE_NOTE
from sekd.train.config import ConfigError, build_config


def get_parser(description: str = __doc__) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument(
        "--config", action="append", required=True, help="YAML config; repeat to layer several (later files win)"
    )
    parser.add_argument("--train_dir", required=True, help="Kaldi-style training data dir")
    parser.add_argument("--valid_dir", required=True, help="Kaldi-style validation data dir")
    parser.add_argument("--out_dir", required=True, help="experiment dir, e.g. exp/teacher")
    parser.add_argument(
        "--tensorboard_dir", default=None, help="TensorBoard log dir (default: <out_dir>/../tensorboard/<name>)"
    )
    parser.add_argument("--role", default="model", help="what the system is in the report: teacher, student, ...")
    parser.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoints/last.pt if present")
    parser.add_argument("--print_config", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="build model, data, teacher and KD terms, run one batch forward and backward, write nothing, exit",
    )
    parser.add_argument("--progress", choices=["auto", "on", "off"], default="auto", help="tqdm progress bar")
    from sekd.train.checkpoint import add_trust_option

    add_trust_option(parser)
    return parser


def run(
    args: argparse.Namespace,
    overrides: list[str],
    extra_files: list[str] | None = None,
    kd_overrides: dict | None = None,
) -> int:
    from sekd.train.checkpoint import apply_trust_option

    apply_trust_option(args)
    try:
        cfg = build_config(list(args.config) + (extra_files or []), overrides)
        if kd_overrides:
            cfg["kd"].update(kd_overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        from sekd.train.config import dump

        print(dump(cfg), end="")
        return 0
    from sekd.train.trainer import Trainer, TrainingError

    progress = {"auto": None, "on": True, "off": False}[args.progress]
    try:
        trainer = Trainer(
            cfg, args.train_dir, args.valid_dir, args.out_dir, args.tensorboard_dir, role=args.role, progress=progress
        )
        if args.dry_run:
            from sekd.models import count_parameters

            step = trainer.dry_run()
            print(
                f"{cfg['model']['name']}: {count_parameters(trainer.model)} parameters; "
                f"{len(trainer.train_set)} training / {len(trainer.valid_set)} validation utterances; "
                f"one batch: " + " ".join(f"{k} {v:.4f}" for k, v in step.items() if k != "no_grad")
            )
            if step["no_grad"]:
                print(
                    f"warning: no gradient reaches {len(step['no_grad'])} trained parameters: "
                    f"{', '.join(step['no_grad'][:5])}",
                    file=sys.stderr,
                )
            return 0
        trainer.run(resume=args.resume)
    except (DataError, ConfigError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        from sekd.train import distributed

        if "trainer" in locals():
            distributed.teardown(trainer.dist)
    return 0


def main(argv: list[str] | None = None) -> int:
    args, overrides = get_parser().parse_known_args(argv)
    return run(args, overrides)


if __name__ == "__main__":
    sys.exit(main())

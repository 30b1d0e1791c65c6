"""Distil a student from a frozen teacher: the training loop plus KD terms.

Usage:
    python -m sekd.bin.distill --config conf/student.yaml --kd_config conf/kd/output.yaml \\
        --teacher exp/teacher/checkpoints/best.pt --train_dir data/train \\
        --valid_dir data/valid --out_dir exp/student_kd_output [--resume] [--section.key value ...]

The KD config is layered on top of the student config (its ``kd:`` section lists the
terms and their weights, and it may override training settings).
"""

from __future__ import annotations

import sys

from sekd.bin.train import get_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = get_parser(__doc__)
    parser.add_argument("--kd_config", action="append", required=True, help="YAML with a kd: section")
    parser.add_argument("--teacher", required=True, help="teacher checkpoint (e.g. exp/teacher/checkpoints/best.pt)")
    parser.set_defaults(role="kd")
    args, overrides = parser.parse_known_args(argv)
    return run(args, overrides, extra_files=args.kd_config, kd_overrides={"teacher": args.teacher})


if __name__ == "__main__":
    sys.exit(main())

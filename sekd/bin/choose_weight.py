"""Choose a KD method's weight scale on the validation set (``enh.sh --kd_weight_scales``).

Usage:
    python -m sekd.bin.choose_weight --out exp/sweep/student_kd_mtakd.json \\
        --run 0.5=exp/sweep/student_kd_mtakd_seed0_x0.5 --run 1=exp/sweep/student_kd_mtakd_seed0_x1 ...
    python -m sekd.bin.choose_weight --read exp/sweep/student_kd_mtakd.json

Each ``--run scale=dir`` is a finished training run of the method with ``kd.weight_scale``
= scale (every term's weight multiplied by it), on the recipe's first seed. The chosen
scale is the one whose run reached the best validation score (``best_valid_sisnr``, higher
is better; ``best_valid_eer`` for speaker verification, lower is better) in its
``model_info.json``; ties go to the scale closest to 1 (the config's own weight). The
test set is never read. Writes ``--out`` (criterion, every candidate's score, the chosen
scale and why) and prints ``<chosen scale><TAB><why>``, as ``--read`` does for a written file;
the recipe trains every seed of the method with that scale.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def choose(runs: dict[float, Path]) -> dict:
    candidates = []
    for scale, run in sorted(runs.items()):
        info_path = run / "model_info.json"
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{info_path}: not a finished training run ({exc})") from None
        key = "best_valid_eer" if "best_valid_eer" in info else "best_valid_sisnr"
        if key not in info:
            raise ValueError(f"{info_path}: records no best validation score")
        candidates.append({"scale": scale, "run": str(run), "criterion": key, "best_valid": info[key]})
    keys = {c["criterion"] for c in candidates}
    if len(keys) != 1:
        raise ValueError(f"the runs record different validation scores: {sorted(keys)}")
    key = keys.pop()
    sign = -1.0 if key == "best_valid_eer" else 1.0
    finite = [c for c in candidates if c["best_valid"] is not None and math.isfinite(c["best_valid"])]
    if not finite:
        raise ValueError("no run reached a finite validation score (every weight diverged?)")
    best = max(finite, key=lambda c: (sign * c["best_valid"], -abs(math.log(c["scale"]))))
    unit = "% EER" if key == "best_valid_eer" else "dB SI-SNR"
    why = f"best validation score ({best['best_valid']:.3f} {unit}) of weight scales " + ", ".join(
        f"{c['scale']:g}: {c['best_valid']:.3f}" for c in candidates
    )
    return {"criterion": key, "candidates": candidates, "chosen": best["scale"], "why": why}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], help="scale=run_dir (repeat)")
    parser.add_argument("--out", default=None, help="the choice to write")
    parser.add_argument("--read", default=None, help="print the choice of this file")
    args = parser.parse_args(argv)
    if args.read:
        try:
            result = json.loads(Path(args.read).read_text())
            print(f"{result['chosen']:g}\t{result['why']}")
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {args.read}: not a weight choice ({exc})", file=sys.stderr)
            return 1
        return 0
    if not args.run or not args.out:
        parser.error("--run (one or more) and --out are needed, or --read")
    try:
        runs = {}
        for item in args.run:
            scale, sep, run = item.partition("=")
            if not sep or float(scale) <= 0:
                raise ValueError(f"--run {item!r}: expected scale=dir with a scale > 0")
            runs[float(scale)] = Path(run)
        result = choose(runs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from sekd.output_dir import write_atomic

    write_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(f"{result['chosen']:g}\t{result['why']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score speaker verification: EER and minDCF of trial scores against a trials list.

Usage:
    python -m sekd.bin.score_sv --trials data/voxceleb1_test/trials --scores exp/spk/scores/voxceleb1_test \\
        --out_dir exp/spk/scoring/voxceleb1_test

``--trials``: one trial per line, either Kaldi's / WeSpeaker's ``<enroll> <test> target|nontarget``
or VoxCeleb's ``1|0 <enroll> <test>`` (``veri_test2.txt``). ``--scores``: ``<enroll> <test> <score>``
per line (extra columns after the score, such as WeSpeaker's label, are ignored); higher means
"same speaker". Every trial needs a score. Writes ``result.json`` (``num_trials`` and
``metrics``: ``eer`` in %, ``mindcf_0.01``, ``mindcf_0.05``, each ``{"mean": value, ...}`` as the
enhancement scorer writes them) and ``result.md``; the output dir appears only when complete.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from sekd.data import DataError
from sekd.metrics.verification import eer, min_dcf

LABELS = {"target": 1, "nontarget": 0, "1": 1, "0": 0}
P_TARGETS = (0.01, 0.05)


def read_trials(path: str) -> list[tuple[str, str, int]]:
    """``(enroll, test, label)`` per trial, in file order."""
    trials, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 3 and fields[2] in ("target", "nontarget"):
                enroll, test, label = fields[0], fields[1], LABELS[fields[2]]
            elif len(fields) == 3 and fields[0] in ("0", "1"):
                enroll, test, label = fields[1], fields[2], LABELS[fields[0]]
            else:
                raise DataError(f"{path}:{num}", f"expected '<enroll> <test> target|nontarget' or '1|0 <enroll> <test>', got {line.strip()!r}")
            if (enroll, test) in seen:
                raise DataError(f"{path}:{num}", f"trial {enroll} {test} listed twice")
            seen.add((enroll, test))
            trials.append((enroll, test, label))
    if not trials:
        raise DataError(path, "no trials")
    return trials


def read_scores(path: str) -> dict[tuple[str, str], float]:
    scores = {}
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) < 3:
                    raise ValueError
                value = float(fields[2])
            except ValueError:
                raise DataError(f"{path}:{num}", f"expected '<enroll> <test> <score>', got {line.strip()!r}") from None
            if not np.isfinite(value):
                raise DataError(f"{path}:{num}", f"score is {value}")
            scores[(fields[0], fields[1])] = value
    return scores


def evaluate(trials: list[tuple[str, str, int]], scores: dict[tuple[str, str], float], scores_path: str) -> dict:
    missing = [(e, t) for e, t, _ in trials if (e, t) not in scores]
    if missing:
        raise DataError(scores_path, f"no score for {len(missing)} of {len(trials)} trials, e.g. {' '.join(missing[0])}")
    s = np.array([scores[(e, t)] for e, t, _ in trials])
    labels = np.array([lab for _, _, lab in trials])
    try:
        values = {"eer": 100 * eer(s, labels), **{f"mindcf_{p:g}": min_dcf(s, labels, p) for p in P_TARGETS}}
    except ValueError as exc:
        raise DataError(scores_path, str(exc)) from None
    return {"num_trials": len(trials), "num_targets": int(labels.sum()),
            "metrics": {k: {"mean": float(v), "n": len(trials), "failed": 0} for k, v in values.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", required=True)
    parser.add_argument("--scores", required=True)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args(argv)
    try:
        summary = evaluate(read_trials(args.trials), read_scores(args.scores), args.scores)
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    m = summary["metrics"]
    (tmp / "result.md").write_text("| trials | targets | EER (%) | minDCF (0.01) | minDCF (0.05) |\n|---|---|---|---|---|\n"
                                   f"| {summary['num_trials']} | {summary['num_targets']} | {m['eer']['mean']:.3f} | "
                                   f"{m['mindcf_0.01']['mean']:.4f} | {m['mindcf_0.05']['mean']:.4f} |\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    print(f"EER {m['eer']['mean']:.3f} % minDCF(0.01) {m['mindcf_0.01']['mean']:.4f} "
          f"minDCF(0.05) {m['mindcf_0.05']['mean']:.4f} ({summary['num_trials']} trials) -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

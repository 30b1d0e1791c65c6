"""Score speaker verification: EER and minDCF of trial scores against a trials list.

Usage:
    python -m sekd.bin.score_sv --trials data/voxceleb1_test/trials --scores exp/spk/scores/voxceleb1_test \\
        --out_dir exp/spk/scoring/voxceleb1_test
    python -m sekd.bin.score_sv --trials data/test/trials --embeddings exp/teacher/embeddings/test/embeddings.scp \\
        --out_dir exp/teacher/scoring/test \\
        [--cohort exp/teacher/embeddings/train/embeddings.scp --cohort_utt2spk data/train/utt2spk --top_n 300]
        [--subtract_mean]

``--trials``: one trial per line, either Kaldi's / WeSpeaker's ``<enroll> <test> target|nontarget``
or VoxCeleb's ``1|0 <enroll> <test>`` (``veri_test2.txt``). ``--scores``: ``<enroll> <test> <score>``
per line (extra columns after the score, such as WeSpeaker's label, are ignored); higher means
"same speaker". Every trial needs a score.

``--embeddings``: instead of scores, an embeddings scp (``sekd.bin.extract_embeddings``; both
sides of every trial from it, or the test side from ``--test_embeddings``): each trial is scored
with the cosine of the two embeddings (``sekd.sv.scoring``), and with ``--cohort`` (an
embeddings scp; with ``--cohort_utt2spk`` averaged per speaker, WeSpeaker's cohort) adaptive
symmetric score normalisation over the ``--top_n`` closest cohort entries (AS-norm).
``--subtract_mean`` subtracts the mean of the cohort's utterance embeddings from every
embedding first (WeSpeaker's ``mean_vec``). The trial scores are written to ``<out_dir>/scores``.

Writes ``result.json`` (``num_trials`` and ``metrics``: ``eer`` in %, ``mindcf_0.01``,
``mindcf_0.05``, each ``{"mean": value, ...}`` as the enhancement scorer writes them; with
embeddings also ``scoring``: the method) and ``result.md``; the output dir appears only when complete.
An existing ``--out_dir`` is replaced only when it holds nothing but these files; anything else
is refused, as is a second run into the same dir while one is running (``sekd.output_dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sekd.data import DataError
from sekd.metrics.verification import eer, min_dcf
from sekd.output_dir import OutputDir
from sekd.sv.scoring import read_trials  # noqa: F401  (also importable from here)

P_TARGETS = (0.01, 0.05)
OUTPUT_FILES = ("scores", "result.json", "result.md")  # what a scoring dir holds


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
        raise DataError(
            scores_path, f"no score for {len(missing)} of {len(trials)} trials, e.g. {' '.join(missing[0])}"
        )
    s = np.array([scores[(e, t)] for e, t, _ in trials])
    labels = np.array([lab for _, _, lab in trials])
    try:
        values = {"eer": 100 * eer(s, labels), **{f"mindcf_{p:g}": min_dcf(s, labels, p) for p in P_TARGETS}}
    except ValueError as exc:
        raise DataError(scores_path, str(exc)) from None
    return {
        "num_trials": len(trials),
        "num_targets": int(labels.sum()),
        "metrics": {k: {"mean": float(v), "n": len(trials), "failed": 0} for k, v in values.items()},
    }


def score_embeddings(trials: list[tuple[str, str, int]], args: argparse.Namespace) -> tuple[dict, dict]:
    """Cosine (or AS-norm) scores of the trials from embedding scps; ``(scores, scoring description)``."""
    from sekd.data.kaldi_dir import read_scp
    from sekd.sv.embed import read_embeddings, speaker_means
    from sekd.sv.scoring import score_trials

    enroll = read_embeddings(args.embeddings)
    test = read_embeddings(args.test_embeddings) if args.test_embeddings else None
    for side, table, path in (
        ("enrollment", enroll, args.embeddings),
        ("test", test or enroll, args.test_embeddings or args.embeddings),
    ):
        col = 0 if side == "enrollment" else 1
        missing = [t[col] for t in trials if t[col] not in table]
        if missing:
            raise DataError(
                path, f"no embedding for {len(set(missing))} {side} utterance(s) of {args.trials}, e.g. {missing[0]!r}"
            )
    cohort = mean = None
    method = {"method": "cosine"}
    if args.cohort:
        cohort_embs = read_embeddings(args.cohort)
        if args.subtract_mean:
            mean = np.mean(np.stack(list(cohort_embs.values())), axis=0)
        if args.cohort_utt2spk:
            utt2spk = {k: e.value for k, e in read_scp(args.cohort_utt2spk).items()}
            cohort_embs = speaker_means(cohort_embs, utt2spk)
            if not cohort_embs:
                raise DataError(args.cohort_utt2spk, f"no utterance of {args.cohort} has a speaker here")
        cohort = np.stack(list(cohort_embs.values()))
        method = {
            "method": "asnorm",
            "top_n": args.top_n,
            "cohort": len(cohort),
            "subtract_mean": bool(args.subtract_mean),
        }
    elif args.subtract_mean:
        raise DataError(args.embeddings, "--subtract_mean needs --cohort (the mean is the cohort's)")
    values = score_trials(enroll, trials, test, cohort=cohort, top_n=args.top_n, mean=mean)
    return {(e, t): float(v) for (e, t, _), v in zip(trials, values)}, method


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", help="trial scores, '<enroll> <test> <score>' per line")
    source.add_argument("--embeddings", help="embeddings scp (kaldiio) of the trial utterances")
    parser.add_argument(
        "--test_embeddings", default=None, help="embeddings scp of the test side (default: --embeddings)"
    )
    parser.add_argument("--cohort", default=None, help="embeddings scp of the AS-norm cohort (e.g. the training set)")
    parser.add_argument("--cohort_utt2spk", default=None, help="average the cohort per speaker with this utt2spk")
    parser.add_argument("--top_n", type=int, default=300, help="AS-norm: cohort scores kept per side")
    parser.add_argument("--subtract_mean", action="store_true", help="subtract the cohort's mean embedding first")
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    try:
        with OutputDir(out_dir, "sekd-score-sv", OUTPUT_FILES) as staging:
            method = None
            trials = read_trials(args.trials)
            if args.embeddings:
                scores, method = score_embeddings(trials, args)
                where = args.embeddings
            else:
                scores, where = read_scores(args.scores), args.scores
            summary = evaluate(trials, scores, where)
            if method:
                summary["scoring"] = method
                lines = (f"{e} {t} {scores[(e, t)]:.6f} {'target' if lab else 'nontarget'}\n" for e, t, lab in trials)
                (staging.tmp / "scores").write_text("".join(lines))
            write_results(staging.tmp, summary)
            staging.commit()
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    m = summary["metrics"]
    print(
        f"EER {m['eer']['mean']:.3f} % minDCF(0.01) {m['mindcf_0.01']['mean']:.4f} "
        f"minDCF(0.05) {m['mindcf_0.05']['mean']:.4f} ({summary['num_trials']} trials) -> {out_dir}"
    )
    return 0


def write_results(out: Path, summary: dict) -> None:
    (out / "result.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    m = summary["metrics"]
    (out / "result.md").write_text(
        "| trials | targets | EER (%) | minDCF (0.01) | minDCF (0.05) |\n"
        "|---|---|---|---|---|\n"
        f"| {summary['num_trials']} | {summary['num_targets']} | {m['eer']['mean']:.3f} | "
        f"{m['mindcf_0.01']['mean']:.4f} | {m['mindcf_0.05']['mean']:.4f} |\n"
    )


if __name__ == "__main__":
    sys.exit(main())

"""Synthesize the mini corpus (eSpeak NG speech + synthetic noises) as Kaldi data dirs.

Usage:
    python -m sekd.bin.simulate_mini --out_dir data [--seed 0] [--num_train 1000] ...

Writes ``<out_dir>/{train,valid,test}/`` (wav.scp, spk1.scp, noise1.scp, utt2spk,
spk2utt, utt2dur, text, utt2snr, utt2noise) and the audio under ``<out_dir>/wav/``.
Deterministic for a seed; a finished corpus with the same parameters is left alone.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_train", type=int, default=1000)
    parser.add_argument("--num_valid", type=int, default=100)
    parser.add_argument("--num_test", type=int, default=100)
    parser.add_argument("--num_train_speakers", type=int, default=40)
    parser.add_argument("--num_valid_speakers", type=int, default=5)
    parser.add_argument("--num_test_speakers", type=int, default=10)
    parser.add_argument("--snr_low", type=float, default=-5.0)
    parser.add_argument("--snr_high", type=float, default=15.0)
    parser.add_argument("--nj", type=int, default=1, help="worker processes (the output does not depend on it)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, different corpus")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from sekd.data.synth import make_mini_corpus

    try:
        summary = make_mini_corpus(
            args.out_dir, seed=args.seed, num_train=args.num_train, num_valid=args.num_valid,
            num_test=args.num_test, num_train_speakers=args.num_train_speakers,
            num_valid_speakers=args.num_valid_speakers, num_test_speakers=args.num_test_speakers,
            snr_range=(args.snr_low, args.snr_high), nj=args.nj, overwrite=args.overwrite,
            progress=sys.stderr.isatty())
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, s in summary.items():
        print(f"{name}: {s['utterances']} utterances, {s['speakers']} speakers, {s['hours']:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())

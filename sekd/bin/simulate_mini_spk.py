"""Synthesize the mini_spk speaker-verification corpus (eSpeak NG talkers), deterministic for a seed.

Usage: python -m sekd.bin.simulate_mini_spk --out_dir data [--seed 0]
           [--num_train_speakers 100 --num_test_speakers 20]
           [--utts_per_speaker 12 --valid_utts_per_speaker 2 --test_utts_per_speaker 10]
           [--snr_low 10 --snr_high 30 | --clean] [--nj 2] [--overwrite]

Writes <out_dir>/{train,valid,test}/ Kaldi data dirs (wav.scp, utt2spk, spk2utt, utt2dur, text;
valid and test also trials) and the wavs under <out_dir>/wav/ (sekd.data.synth.spk_corpus).
valid = held-out utterances of the training talkers; test = talkers disjoint from training.
A rerun with the same options finds the finished corpus and does nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_train_speakers", type=int, default=100)
    p.add_argument("--num_test_speakers", type=int, default=20)
    p.add_argument("--utts_per_speaker", type=int, default=12, help="training utterances per training talker")
    p.add_argument("--valid_utts_per_speaker", type=int, default=2, help="held-out utterances per training talker")
    p.add_argument("--test_utts_per_speaker", type=int, default=10)
    p.add_argument("--snr_low", type=float, default=10.0, help="dB")
    p.add_argument("--snr_high", type=float, default=30.0, help="dB")
    p.add_argument("--clean", action="store_true", help="no noise")
    p.add_argument("--pitch_jitter", type=int, default=3, help="per-utterance pitch change, +- eSpeak pitch units")
    p.add_argument("--rate_jitter", type=int, default=10, help="per-utterance rate change, +- words per minute")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace an out_dir made with other parameters")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sekd.data.synth.spk_corpus import make_spk_corpus

    start = time.time()
    try:
        summary = make_spk_corpus(
            args.out_dir,
            seed=args.seed,
            num_train_speakers=args.num_train_speakers,
            num_test_speakers=args.num_test_speakers,
            utts_per_speaker=args.utts_per_speaker,
            valid_utts_per_speaker=args.valid_utts_per_speaker,
            test_utts_per_speaker=args.test_utts_per_speaker,
            snr_range=None if args.clean else (args.snr_low, args.snr_high),
            pitch_jitter=args.pitch_jitter,
            rate_jitter=args.rate_jitter,
            nj=args.nj,
            overwrite=args.overwrite,
            progress=sys.stderr.isatty(),
        )
    except (ValueError, FileExistsError) as exc:
        print(f"simulate_mini_spk: error: {exc}", file=sys.stderr)
        return 1
    for name, s in summary.items():
        print(
            f"simulate_mini_spk: {name}: {s['utterances']} utterances, {s['speakers']} speakers, "
            f"{s.get('trials', 0)} trials, {s['hours'] * 60:.1f} min"
        )
    print(f"simulate_mini_spk: done in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

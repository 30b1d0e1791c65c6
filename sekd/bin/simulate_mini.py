"""Synthesize the mini corpus (eSpeak NG speech + synthetic noise), deterministic for a seed.

Usage: python -m sekd.bin.simulate_mini --out_dir data/mini_corpus [--seed 0]
           [--num_train 1000 --num_valid 100 --num_test 100]
           [--num_train_speakers 40 --num_valid_speakers 5 --num_test_speakers 10]
           [--snr_low -5 --snr_high 15] [--nj 1] [--overwrite] [--array foa]

Writes <out_dir>/{train,valid,test}/ Kaldi data dirs (wav.scp noisy, spk1.scp clean,
noise1.scp, utt2spk, spk2utt, utt2dur, text, utt2snr, utt2noise) and the wavs under
<out_dir>/wav/. A rerun with the same options finds the finished corpus and does nothing.

--array foa renders every utterance in a simulated room onto a tetrahedral microphone
converted to first-order Ambisonics (needs pyroomacoustics): wav.scp 4-channel B-format
(ACN order W, Y, Z, X; SN3D), spk1.scp the mono direct-path speech at the array centre,
noise1.scp the 4-channel noise, plus utt2rt60 and utt2distance (sekd.data.synth.room).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

NOISE_TYPES = "white,pink,brown,babble,modulated,hum,clicks"  # sekd.data.synth.noise.NOISE_TYPES


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", required=True, help="corpus directory to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_train", type=int, default=1000)
    p.add_argument("--num_valid", type=int, default=100)
    p.add_argument("--num_test", type=int, default=100)
    p.add_argument("--num_train_speakers", type=int, default=40)
    p.add_argument("--num_valid_speakers", type=int, default=5)
    p.add_argument("--num_test_speakers", type=int, default=10)
    p.add_argument("--num_babble_speakers", type=int, default=12, help="talkers for babble noise (a pool of their own)")
    p.add_argument("--snr_low", type=float, default=-5.0, help="dB")
    p.add_argument("--snr_high", type=float, default=15.0, help="dB")
    p.add_argument("--sample_rate", type=int, default=16000)
    p.add_argument("--noise_types", default=NOISE_TYPES, help=f"comma-separated subset of {NOISE_TYPES}")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (the output does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace an out_dir made with other parameters")
    p.add_argument(
        "--array",
        choices=("mono", "foa"),
        default="mono",
        help="mono wavs, or 4-channel first-order Ambisonics from simulated rooms (foa)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sekd.data.synth.mini_corpus import SETS, make_mini_corpus  # imports torch via sekd.data

    start = time.time()
    try:
        summary = make_mini_corpus(
            args.out_dir,
            seed=args.seed,
            num_train=args.num_train,
            num_valid=args.num_valid,
            num_test=args.num_test,
            num_train_speakers=args.num_train_speakers,
            num_valid_speakers=args.num_valid_speakers,
            num_test_speakers=args.num_test_speakers,
            num_babble_speakers=args.num_babble_speakers,
            snr_range=(args.snr_low, args.snr_high),
            sample_rate=args.sample_rate,
            noise_types=[t for t in args.noise_types.split(",") if t],
            nj=args.nj,
            overwrite=args.overwrite,
            progress=True,
            array=None if args.array == "mono" else args.array,
        )
    except ImportError as e:
        print(
            f"simulate_mini: error: --array {args.array} needs {e.name or 'a missing package'} "
            f"(pip install pyroomacoustics): {e}",
            file=sys.stderr,
        )
        return 1
    except (ValueError, FileExistsError) as e:
        print(f"simulate_mini: error: {e}", file=sys.stderr)
        return 1
    kind = "" if args.array == "mono" else f", {args.array}"
    print(f"mini corpus in {args.out_dir} (seed {args.seed}{kind}, {time.time() - start:.1f} s)")
    print(f"{'set':<6} {'utts':>6} {'spks':>5} {'hours':>7}")
    for name in SETS:
        s = summary.get(name, {"utterances": 0, "speakers": 0, "hours": 0.0})
        print(f"{name:<6} {s['utterances']:>6} {s['speakers']:>5} {s['hours']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

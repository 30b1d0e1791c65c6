#!/usr/bin/env python3
"""DNS Challenge, Interspeech 2020 (Reddy et al. 2020) -> Kaldi data dirs, 16 kHz.

Reads a clone of the challenge repository's ``interspeech2020/master`` branch
(``git clone -b interspeech2020/master https://github.com/microsoft/DNS-Challenge``)::

    datasets/clean/*.wav      read speech (LibriVox), e.g. book_00000_chp_0009_reader_06709_0.wav
    datasets/noise/*.wav      noise clips (AudioSet, Freesound, DEMAND)
    datasets/test_set/synthetic/{no_reverb,with_reverb}/noisy/<...>_fileid_<N>.wav
    datasets/test_set/synthetic/{no_reverb,with_reverb}/clean/clean_fileid_<N>.wav

and writes, under --out_dir:

- ``train``: the clean speech (``wav.scp`` = ``spk1.scp``); training mixes it with noise on
  the fly (``data.noise_scp`` of the configs, sekd.data.MixingDataset) instead of rendering
  hundreds of hours; speakers are the LibriVox readers (``reader_<id>``);
- ``noise_train``: the noise clips training draws from (``wav.scp``, no reference);
- ``valid``: --num_valid mixtures of --valid_seconds, rendered once (wavs under
  ``valid_wav/``) from held-out readers and held-out noise clips (``noise_valid``), with the
  same mixing as training (SNR --snr_low..--snr_high dB, level -35..-15 dBFS), so validation
  never sees a training speaker or noise;
- ``test_no_reverb``, ``test_with_reverb``: the synthetic test sets (150 pairs each), noisy
  paired with ``clean_fileid_<N>.wav`` by file id; utterance id ``fileid_<N>``. A partial
  download gets the test sets it has (a log line names each one that is missing; an error
  only when there is none); ``<out_dir>/test_sets`` lists them for ``--test_sets auto``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from sekd.data import DataError
from sekd.data.prep import Utt, describe_data_dir, find_wavs, write_data_dir

READER = re.compile(r"reader_(\d+)")
FILEID = re.compile(r"fileid_(\d+)$")


def speaker(stem: str) -> str:
    m = READER.search(stem)
    return f"reader_{m.group(1)}" if m else "unknown"


def durations(files: dict[str, Path], rate: int) -> dict[str, float]:
    out = {}
    for key, path in files.items():
        info = sf.info(str(path))
        if info.samplerate != rate:
            raise DataError(str(path), f"sample rate {info.samplerate} Hz, the corpus is {rate} Hz")
        out[key] = info.frames / rate
    return out


def split_readers(utts: list[Utt], num_valid: int, seed: int) -> tuple[list[Utt], list[Utt]]:
    """Hold out whole readers (shuffled with ``seed``) until they have ``num_valid`` files."""
    readers = sorted({u.spk for u in utts})
    np.random.default_rng(seed).shuffle(readers)
    held: set[str] = set()
    count = 0
    for r in readers:
        if count >= num_valid or len(held) == len(readers) - 1:
            break
        held.add(r)
        count += sum(u.spk == r for u in utts)
    return [u for u in utts if u.spk not in held], [u for u in utts if u.spk in held]


def test_set(root: Path, rate: int) -> list[Utt]:
    noisy, clean = find_wavs(root / "noisy"), find_wavs(root / "clean")
    utts = []
    for stem, path in noisy.items():
        m = FILEID.search(stem)
        if not m:
            raise DataError(str(path), "no '_fileid_<N>' at the end of the file name")
        utt = f"fileid_{m.group(1)}"
        ref = clean.get(f"clean_{utt}")
        if ref is None:
            raise DataError(str(path), f"no clean partner clean_{utt}.wav in {root / 'clean'}")
        dur = durations({utt: path}, rate)[utt]
        if sf.info(str(ref)).frames != sf.info(str(path)).frames:
            raise DataError(str(ref), f"length differs from its noisy partner {path}")
        utts.append(Utt(utt, str(path.absolute()), utt, dur, str(ref.absolute())))
    return utts


def render_valid(clean_dir: Path, speakers: dict[str, str], noise_scp: Path, out: Path, args) -> list[Utt]:
    from sekd.data import MixingDataset
    from sekd.data.kaldi_dir import DataDir

    data = DataDir(clean_dir)
    ds = MixingDataset(
        data,
        str(noise_scp),
        args.valid_seconds,
        args.sample_rate,
        seed=args.seed,
        snr_range=(args.snr_low, args.snr_high),
    )
    utts = []
    for i, utt in enumerate(data.utt_ids):
        mix, clean = ds[i]
        paths = {kind: out / kind / f"{utt}.wav" for kind in ("noisy", "clean")}
        for kind, x in (("noisy", mix[0].numpy()), ("clean", clean.numpy())):
            paths[kind].parent.mkdir(parents=True, exist_ok=True)
            sf.write(paths[kind], x, args.sample_rate, subtype="PCM_16")
        utts.append(Utt(utt, str(paths["noisy"]), speakers[utt], len(clean) / args.sample_rate, str(paths["clean"])))
    return utts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="the DNS-Challenge clone (interspeech2020/master)")
    p.add_argument("--out_dir", default="data")
    p.add_argument("--num_valid", type=int, default=200, help="validation mixtures (held-out readers)")
    p.add_argument("--valid_seconds", type=float, default=4.0)
    p.add_argument("--valid_noise_share", type=float, default=0.05, help="share of noise clips held out")
    p.add_argument("--snr_low", type=float, default=0.0)
    p.add_argument("--snr_high", type=float, default=40.0)
    p.add_argument("--sample_rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    db, out = Path(args.db_dir) / "datasets", Path(args.out_dir).absolute()
    try:
        clean = find_wavs(db / "clean", recursive=True)
        noise = find_wavs(db / "noise", recursive=True)
        clean_dur, noise_dur = durations(clean, args.sample_rate), durations(noise, args.sample_rate)
        speech = [
            Utt(f"{speaker(s)}-{s}", str(clean[s].absolute()), speaker(s), clean_dur[s], str(clean[s].absolute()))
            for s in clean
        ]
        train, held = split_readers(speech, args.num_valid, args.seed)
        if not held:
            raise DataError(str(db / "clean"), "too few readers to hold some out for validation")
        held = held[: args.num_valid]
        keys = sorted(noise)
        np.random.default_rng(args.seed).shuffle(keys)
        n_valid = max(1, int(round(len(keys) * args.valid_noise_share)))
        if len(keys) < 2:
            raise DataError(str(db / "noise"), "needs at least 2 noise clips (one held out for validation)")
        noise_sets = {"noise_valid": keys[:n_valid], "noise_train": keys[n_valid:]}
        for name, ks in noise_sets.items():
            write_data_dir(out / name, [Utt(k, str(noise[k].absolute()), k, noise_dur[k]) for k in ks])
        write_data_dir(out / "train", train)
        write_data_dir(out / "valid_clean", held)
        valid = render_valid(
            out / "valid_clean",
            {u.utt_id: u.spk for u in held},
            out / "noise_valid" / "wav.scp",
            out / "valid_wav",
            args,
        )
        write_data_dir(out / "valid", valid)
        made = []
        for rev in ("no_reverb", "with_reverb"):
            root = db / "test_set" / "synthetic" / rev
            if not (root / "noisy").is_dir() and not (root / "clean").is_dir():
                print(f"data_prep.py: test set test_{rev}: {root} is not there (a partial download?): skipped")
                continue
            write_data_dir(out / f"test_{rev}", test_set(root, args.sample_rate))
            made.append(f"test_{rev}")
        if not made:
            raise DataError(
                str(db / "test_set" / "synthetic"),
                "no synthetic test set (no_reverb/ or with_reverb/, each with noisy/ and clean/): nothing to test on",
            )
        (out / "test_sets").write_text(" ".join(made) + "\n")  # what enh.sh --test_sets auto tests on
        for name in ["train", "noise_train", "valid", *made]:
            print(f"data_prep.py: {describe_data_dir(out / name)}")
    except DataError as e:
        print(f"data_prep.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""VoxCeleb1 (Nagrani et al. 2017) -> Kaldi data dirs for speaker verification, 16 kHz.

Reads the unpacked corpus under --db_dir::

    wav/id<NNNNN>/<YouTube id>/<nnnnn>.wav     1,251 speakers, 153,516 utterances, 16 kHz mono
    iden_split.txt                              "<1|2|3> id10001/1zcIwhmdeo4/00001.wav" (identification split)
    veri_test2.txt                              "<1|0> <enroll wav> <test wav>", VoxCeleb1-O (cleaned), 37,611 trials

and writes, under --out_dir:

- ``test``: the utterances of the trial list (its 40 speakers) with ``trials`` in Kaldi form
  (``<enroll utt> <test utt> target|nontarget``);
- ``train``: every utterance of the other speakers (the 1,211 of VoxCeleb1's dev part)
  except those ``iden_split.txt`` marks 2 (its validation files);
- ``valid``: those held-out files of the training speakers, with --num_valid_trials
  trials drawn with --seed (half target, half non-target), so training can be validated
  by EER on speakers it knows but utterances it has not seen.

Utterance ids are ``<speaker>-<video>-<nnnnn>`` (the path with '/' -> '-'), speaker ids
``id<NNNNN>``; ``utt2dur`` comes from the wav headers. A trial naming a file that is not
in wav/ is an error naming the trial file and line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from sekd.data import DataError
from sekd.data.prep import Utt, describe_data_dir, write_data_dir, write_table


def utt_id(rel: str) -> str:
    return rel[:-4].replace("/", "-") if rel.endswith(".wav") else rel.replace("/", "-")


def read_lines(path: Path, fields: int) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise DataError(str(path), "no such file (is the corpus unpacked with its meta files?)")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != fields:
            raise DataError(f"{path}:{n}", f"expected {fields} fields, got {len(parts)}: {line!r}")
        out.append((n, parts))
    return out


def draw_trials(utts: list[Utt], num: int, seed: int) -> list[tuple[str, str, str]]:
    """``num`` trials over ``utts``: half same-speaker pairs, half different-speaker pairs."""
    rng = np.random.default_rng(seed)
    by_spk: dict[str, list[str]] = {}
    for u in utts:
        by_spk.setdefault(u.spk, []).append(u.utt_id)
    multi = sorted(s for s, v in by_spk.items() if len(v) > 1)
    spks = sorted(by_spk)
    if not multi or len(spks) < 2:
        return []
    trials = set()
    for k in range(num * 4):
        if len(trials) >= num:
            break
        if k % 2 == 0:
            s = multi[rng.integers(len(multi))]
            a, b = rng.choice(len(by_spk[s]), 2, replace=False)
            trials.add((by_spk[s][a], by_spk[s][b], "target"))
        else:
            s1, s2 = rng.choice(len(spks), 2, replace=False)
            a, b = by_spk[spks[s1]], by_spk[spks[s2]]
            trials.add((a[rng.integers(len(a))], b[rng.integers(len(b))], "nontarget"))
    return sorted(trials)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True)
    p.add_argument("--out_dir", default="data")
    p.add_argument("--trials", default="veri_test2.txt", help="trial list in --db_dir (VoxCeleb1-O cleaned)")
    p.add_argument("--num_valid_trials", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    db, out = Path(args.db_dir), Path(args.out_dir).absolute()
    try:
        wav_root = db / "wav"
        if not wav_root.is_dir():
            raise DataError(str(wav_root), "no such directory (VoxCeleb1's wav/id*/<video>/*.wav)")
        files = sorted(wav_root.glob("id*/*/*.wav"))
        if not files:
            raise DataError(str(wav_root), "no wav/id*/<video>/*.wav files")
        utts: dict[str, Utt] = {}
        for f in files:
            rel = f.relative_to(wav_root).as_posix()
            info = sf.info(str(f))
            if info.samplerate != 16000:
                raise DataError(str(f), f"sample rate {info.samplerate} Hz, VoxCeleb1 is 16 kHz")
            utts[utt_id(rel)] = Utt(utt_id(rel), str(f.absolute()), rel.split("/")[0], info.frames / 16000)
        trial_file = db / args.trials
        trials = []
        for n, (label, a, b) in read_lines(trial_file, 3):
            if label not in ("0", "1"):
                raise DataError(f"{trial_file}:{n}", f"label {label!r} is not 0 or 1")
            for rel in (a, b):
                if utt_id(rel) not in utts:
                    raise DataError(f"{trial_file}:{n}", f"{rel} is not in {wav_root}")
            trials.append((utt_id(a), utt_id(b), "target" if label == "1" else "nontarget"))
        test_spks = {utts[u].spk for t in trials for u in t[:2]}
        held = set()
        for n, (split, rel) in read_lines(db / "iden_split.txt", 2):
            if split == "2":
                held.add(utt_id(rel))
        train = [u for u in utts.values() if u.spk not in test_spks and u.utt_id not in held]
        valid = [u for u in utts.values() if u.spk not in test_spks and u.utt_id in held]
        test = [u for u in utts.values() if u.spk in test_spks]
        for name, subset in (("train", train), ("valid", valid), ("test", test)):
            if not subset:
                raise DataError(str(db), f"the {name} set is empty")
        write_data_dir(out / "train", train)
        write_data_dir(out / "valid", valid)
        write_table(
            out / "valid" / "trials",
            ((f"{a} {b}", c) for a, b, c in draw_trials(valid, args.num_valid_trials, args.seed)),
        )
        write_data_dir(out / "test", test)
        write_table(out / "test" / "trials", ((f"{a} {b}", c) for a, b, c in trials))
        for name in ("train", "valid", "test"):
            print(f"data_prep.py: {describe_data_dir(out / name)}")
    except DataError as e:
        print(f"data_prep.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

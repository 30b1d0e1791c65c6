#!/usr/bin/env python3
"""L3DAS23 task 1 (3D speech enhancement; Gramaccioni et al. 2023) -> Kaldi data dirs, 16 kHz.

Reads the unpacked task-1 folders under --db_dir::

    L3DAS23_Task1_{train100,train360,dev}/data/<name>_A.wav   4-channel first-order Ambisonics, mic A
    L3DAS23_Task1_{train100,train360,dev}/data/<name>_B.wav   the same scene at the second mic, B
    L3DAS23_Task1_{train100,train360,dev}/labels/<name>.wav   mono dry clean speech (the target)
    L3DAS23_Task1_{train100,train360,dev}/labels/<name>.txt   its transcript (optional)

``<name>`` is a LibriSpeech id (``<speaker>-<chapter>-<utt>``). --mics A gives 4-channel
inputs (``wav.scp`` names the ``_A`` files directly); --mics AB gives 8 channels, A then B,
written once as 8-channel wavs under <out_dir>/wav_ab/ (files already there are kept).

Sets: ``train`` from --train_sets (default train100; "train100 train360" for both), with
the speakers of a --valid_share of it (whole speakers, chosen with --seed) held out as
``valid``; ``test`` is the dev set (the challenge's test labels were not released, so
papers report on dev). Inputs and labels are paired by name; an input without its label
(or a label without its input) is an error naming the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from sekd.data import DataError
from sekd.data.prep import Utt, convert, describe_data_dir, find_wavs, write_data_dir

CHANNELS = {"A": 4, "AB": 8}


def speaker(name: str) -> str:
    return name.split("-")[0] if "-" in name else name


def read_split(folder: Path, mics: str, out: Path, nj: int) -> list[Utt]:
    inputs = find_wavs(folder / "data", "*_A.wav")
    labels = find_wavs(folder / "labels")
    names = {stem[:-2]: path for stem, path in inputs.items()}
    for name, path in names.items():
        if name not in labels:
            raise DataError(str(path), f"no target {name}.wav in {folder / 'labels'}")
    for name, path in labels.items():
        if name not in names:
            raise DataError(str(path), f"no input {name}_A.wav in {folder / 'data'}")
    if mics == "AB":
        jobs = []
        for name, a in names.items():
            b = a.with_name(f"{name}_B.wav")
            if not b.exists():
                raise DataError(str(a), f"--mics AB: no {b.name} beside it")
            jobs.append(((a, b), out / "wav_ab" / folder.name / f"{name}.wav"))
        convert(jobs, None, nj, desc=f"merge A+B {folder.name}")
        inputs_by_name = {name: out / "wav_ab" / folder.name / f"{name}.wav" for name in names}
    else:
        inputs_by_name = names
    utts = []
    for name in sorted(names):
        wav = inputs_by_name[name]
        info, ref_info = sf.info(str(wav)), sf.info(str(labels[name]))
        if info.channels != CHANNELS[mics]:
            raise DataError(str(wav), f"{info.channels} channels, expected {CHANNELS[mics]} (--mics {mics})")
        if ref_info.channels != 1:
            raise DataError(str(labels[name]), f"{ref_info.channels} channels, the target is mono")
        spk = speaker(name)
        txt = labels[name].with_suffix(".txt")
        extra = {"text": " ".join(txt.read_text().split())} if txt.exists() else {}
        # LibriSpeech ids start with the speaker and a '-', so they sort with it as Kaldi needs
        utts.append(
            Utt(
                name, str(Path(wav).absolute()), spk, info.frames / info.samplerate, str(labels[name].absolute()), extra
            )
        )
    return utts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="folder holding the unpacked L3DAS23_Task1_* folders")
    p.add_argument("--out_dir", default="data")
    p.add_argument("--train_sets", default="train100", help="train100, train360, or both space-separated")
    p.add_argument("--mics", choices=sorted(CHANNELS), default="A")
    p.add_argument("--valid_share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args(argv)
    db, out = Path(args.db_dir), Path(args.out_dir).absolute()
    try:
        train: list[Utt] = []
        for name in args.train_sets.split():
            train += read_split(db / f"L3DAS23_Task1_{name}", args.mics, out, args.nj)
        speakers = sorted({u.spk for u in train})
        np.random.default_rng(args.seed).shuffle(speakers)
        held, count = set(), 0
        for spk in speakers:
            if count >= args.valid_share * len(train) or len(held) == len(speakers) - 1:
                break
            held.add(spk)
            count += sum(u.spk == spk for u in train)
        sets = {
            "train": [u for u in train if u.spk not in held],
            "valid": [u for u in train if u.spk in held],
            "test": read_split(db / "L3DAS23_Task1_dev", args.mics, out, args.nj),
        }
        for name, utts in sets.items():
            print(
                f"data_prep.py: {describe_data_dir(write_data_dir(out / name, utts))}, {CHANNELS[args.mics]} channels"
            )
    except DataError as e:
        print(f"data_prep.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""VoiceBank-DEMAND (Valentini-Botinhao et al. 2016) -> Kaldi data dirs at 16 kHz.

Reads the four unpacked DataShare folders under --db_dir (48 kHz mono wavs named
``p<speaker>_<nnn>.wav``)::

    clean_trainset_28spk_wav/  noisy_trainset_28spk_wav/   11,572 pairs, 28 speakers
    clean_testset_wav/         noisy_testset_wav/             824 pairs, p232 and p257

resamples them to 16 kHz once (soxr VHQ, 16-bit, under <out_dir>/wav16k/<folder>/; files
already there are kept) and writes <out_dir>/{train,valid,test}: the speakers of
--valid_speakers (default p282 p287, as MANNER's and CMGAN's recipes) are held out of the
training set as the validation set. Noisy and clean files are paired by name; a file with
no partner is an error naming it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sekd.data import DataError
from sekd.data.prep import Utt, convert, describe_data_dir, find_wavs, pair, write_data_dir

FOLDERS = {
    "train": ("noisy_trainset_28spk_wav", "clean_trainset_28spk_wav"),
    "test": ("noisy_testset_wav", "clean_testset_wav"),
}
EXPECTED = {"train": 11572, "test": 824}  # utterances in the released corpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="folder holding the four unpacked corpus folders")
    p.add_argument("--out_dir", default="data")
    p.add_argument("--valid_speakers", default="p282 p287")
    p.add_argument("--sample_rate", type=int, default=16000)
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args(argv)
    db, out = Path(args.db_dir), Path(args.out_dir).absolute()
    valid_spks = set(args.valid_speakers.split())
    sets: dict[str, list[Utt]] = {"train": [], "valid": [], "test": []}
    try:
        for part, (noisy_name, clean_name) in FOLDERS.items():
            noisy, clean = find_wavs(db / noisy_name), find_wavs(db / clean_name)
            ids = pair(noisy, clean, str(db / noisy_name), str(db / clean_name))
            if len(ids) != EXPECTED[part]:
                print(
                    f"data_prep.py: note: {len(ids)} {part} pairs in {db} (the corpus has {EXPECTED[part]})",
                    file=sys.stderr,
                )
            jobs = [
                ((src[i],), out / "wav16k" / folder / f"{i}.wav")
                for folder, src in ((noisy_name, noisy), (clean_name, clean))
                for i in ids
            ]
            durs = convert(jobs, args.sample_rate, args.nj, desc=f"resample {part}")
            for i in ids:
                spk = i.split("_")[0]
                wav, ref = out / "wav16k" / noisy_name / f"{i}.wav", out / "wav16k" / clean_name / f"{i}.wav"
                subset = "valid" if part == "train" and spk in valid_spks else part
                sets[subset].append(Utt(i, str(wav), spk, durs[str(wav)], str(ref)))
        missing = valid_spks - {u.spk for u in sets["valid"]}
        if missing:
            raise DataError(
                str(db / FOLDERS["train"][0]),
                f"validation speaker(s) {sorted(missing)} not in the training set (--valid_speakers)",
            )
        for name, utts in sets.items():
            print(f"data_prep.py: {describe_data_dir(write_data_dir(out / name, utts))}")
    except DataError as e:
        print(f"data_prep.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

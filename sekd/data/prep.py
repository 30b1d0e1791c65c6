"""Building blocks of a corpus's data preparation (``egs/<corpus>/local/data_prep.py``).

- :func:`find_wavs`: the audio files of a folder by utterance id, with a clear error when
  the folder is missing or empty;
- :func:`pair`: noisy and clean files matched by id, naming what has no partner;
- :func:`convert`: resample (soxr, "VHQ") and/or merge channels into 16-bit wavs, written
  once: each output appears atomically (temp file + rename), a rerun skips those there;
- :func:`write_data_dir`: a Kaldi data dir (``wav.scp``, ``spk1.scp``, ``utt2spk``,
  ``spk2utt``, ``utt2dur``, any extra tables), sorted in C-locale order, written to a
  temporary directory and renamed into place, so a killed prep leaves no half data dir;
- :func:`summarize_data_dir` / :func:`describe_data_dir`: utterances, speakers, hours (and
  trials) of a written data dir, as a dict or as the line a prep script prints.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf

from sekd.data.errors import DataError
from sekd.output_dir import atomic_dir, atomic_file


@dataclass
class Utt:
    """One utterance of a data dir: input (``wav``), clean reference, speaker, duration (s)."""

    utt_id: str
    wav: str
    spk: str
    dur: float
    spk1: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # table name -> value (e.g. "text")


def find_wavs(folder: str | os.PathLike, pattern: str = "*.wav", recursive: bool = False) -> dict[str, Path]:
    """``{stem: path}`` of the audio files in ``folder`` (sorted); errors name the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(str(folder), "no such directory (is the corpus path right? is it unpacked?)")
    files = sorted(folder.rglob(pattern) if recursive else folder.glob(pattern))
    if not files:
        raise DataError(str(folder), f"no files matching {pattern!r}")
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(str(f), f"file name {f.stem!r} appears twice (also {out[f.stem]})")
        out[f.stem] = f
    return out


def pair(noisy: dict[str, Path], clean: dict[str, Path], noisy_dir: str, clean_dir: str) -> list[str]:
    """The ids in both; a file with no partner is an error naming it and the folder it lacks."""
    only_noisy = sorted(set(noisy) - set(clean))
    only_clean = sorted(set(clean) - set(noisy))
    if only_noisy:
        raise DataError(
            str(noisy[only_noisy[0]]), f"no clean partner in {clean_dir} ({len(only_noisy)} noisy file(s) unpaired)"
        )
    if only_clean:
        raise DataError(
            str(clean[only_clean[0]]), f"no noisy partner in {noisy_dir} ({len(only_clean)} clean file(s) unpaired)"
        )
    return sorted(noisy)


def _convert_one(job: tuple[tuple[str, ...], str, int | None]) -> tuple[str, float]:
    sources, dst, rate = job
    if os.path.exists(dst):
        return dst, sf.info(dst).duration
    parts, src_rate = [], None
    for src in sources:
        data, r = sf.read(src, dtype="float32", always_2d=True)
        if src_rate is not None and r != src_rate:
            raise DataError(src, f"sample rate {r} Hz differs from {sources[0]} ({src_rate} Hz)")
        src_rate = r
        parts.append(data)
    if len({p.shape[0] for p in parts}) > 1:
        raise DataError(sources[1], f"{parts[1].shape[0]} samples, {sources[0]} has {parts[0].shape[0]}")
    data = np.concatenate(parts, axis=1)
    if rate is not None and rate != src_rate:
        import soxr

        data = soxr.resample(data, src_rate, rate, quality="VHQ")
    out_rate = rate or src_rate
    with atomic_file(dst) as tmp:
        sf.write(tmp, np.clip(data, -1.0, 32767 / 32768), out_rate, subtype="PCM_16", format="WAV")
    return dst, data.shape[0] / out_rate


def convert(
    jobs: Sequence[tuple[Sequence[str | os.PathLike], str | os.PathLike]],
    rate: int | None = None,
    nj: int = 1,
    desc: str = "convert",
) -> dict[str, float]:
    """Write each ``(sources, dst)``: the sources' channels side by side, resampled to ``rate``.

    Returns ``{dst: duration in s}``. Outputs that exist are kept (a rerun resumes).
    """
    from tqdm import tqdm

    work = [(tuple(str(s) for s in srcs), str(dst), rate) for srcs, dst in jobs]
    for _, dst, _ in work:
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    durations: dict[str, float] = {}
    bar = tqdm(total=len(work), desc=desc, unit="file", mininterval=2.0, disable=len(work) < 100)
    if nj <= 1 or len(work) < 2:
        results = map(_convert_one, work)
        for dst, dur in results:
            durations[dst] = dur
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(min(nj, len(work))) as pool:
            for dst, dur in pool.imap_unordered(_convert_one, work, chunksize=8):
                durations[dst] = dur
                bar.update()
    bar.close()
    return durations


def write_table(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """``key value`` lines sorted by key in C-locale (byte) order, as Kaldi's tools expect."""
    lines = [f"{k} {v}\n" for k, v in sorted(rows, key=lambda kv: kv[0].encode())]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)


def write_data_dir(out_dir: str | os.PathLike, utts: Sequence[Utt]) -> Path:
    """Write a Kaldi data dir of ``utts`` atomically (an existing one is replaced)."""
    out = Path(os.path.abspath(out_dir))
    if not utts:
        raise DataError(str(out), "no utterances to write")
    ids = [u.utt_id for u in utts]
    if len(set(ids)) != len(ids):
        dup = sorted(i for i in set(ids) if ids.count(i) > 1)[0]
        raise DataError(str(out), f"utterance id {dup!r} twice")
    by_id = sorted(utts, key=lambda u: u.utt_id.encode())
    if [u.spk for u in by_id] != sorted((u.spk for u in by_id), key=str.encode):
        raise DataError(
            str(out),
            "utterance ids do not sort with their speaker ids (Kaldi needs the speaker "
            "id as a prefix of the utterance id)",
        )
    with atomic_dir(out) as tmp:
        write_table(tmp / "wav.scp", ((u.utt_id, u.wav) for u in utts))
        if any(u.spk1 for u in utts):
            missing = [u.utt_id for u in utts if not u.spk1]
            if missing:
                raise DataError(str(out), f"utterance {missing[0]!r} has no clean reference, others do")
            write_table(tmp / "spk1.scp", ((u.utt_id, u.spk1) for u in utts))
        write_table(tmp / "utt2spk", ((u.utt_id, u.spk) for u in utts))
        write_table(tmp / "utt2dur", ((u.utt_id, f"{u.dur:.3f}") for u in utts))
        spk2utt: dict[str, list[str]] = {}
        for u in by_id:
            spk2utt.setdefault(u.spk, []).append(u.utt_id)
        write_table(tmp / "spk2utt", ((s, " ".join(v)) for s, v in spk2utt.items()))
        for name in sorted({k for u in utts for k in u.extra}):
            write_table(tmp / name, ((u.utt_id, u.extra[name]) for u in utts if name in u.extra))
    return out


def summarize_data_dir(data_dir: str | os.PathLike) -> dict[str, float]:
    """``{"utterances", "speakers", "hours"}`` of a data dir (read from utt2dur and utt2spk),
    plus ``"trials"`` where it has a trials file."""
    d = Path(data_dir)
    durs = [float(line.split()[1]) for line in (d / "utt2dur").read_text().splitlines()]
    spks = {line.split()[1] for line in (d / "utt2spk").read_text().splitlines()}
    summary = {"utterances": len(durs), "speakers": len(spks), "hours": sum(durs) / 3600.0}
    if (d / "trials").is_file():
        summary["trials"] = len((d / "trials").read_text().splitlines())
    return summary


def describe_data_dir(data_dir: str | os.PathLike) -> str:
    """``<dir>: N utterances, S speakers, H h[, T trials]``."""
    s = summarize_data_dir(data_dir)
    trials = f", {s['trials']} trials" if "trials" in s else ""
    return f"{data_dir}: {s['utterances']} utterances, {s['speakers']} speakers, {s['hours']:.2f} h{trials}"

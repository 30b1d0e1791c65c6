"""Kaldi-style data directories: ``wav.scp``, ``spk1.scp``, ``utt2spk``, ``spk2utt``, ``utt2dur``.

``read_scp`` parses ``<key> <value>`` files keeping line numbers, so every error can
name the file and the line. ``DataDir`` joins the files of one directory and checks
them (non-empty, unique keys, the same utterances in every file); ``check_audio``
also opens every audio header (sample rate, channels, noisy/clean length).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sekd.data.audio import audio_info, is_plain_path, load_audio
from sekd.data.errors import DataError

# What every tool that reads data dirs says in its --help (the Kaldi convention, a security matter).
PIPE_NOTE = (
    "Data lists: a wav.scp (or spk1.scp) entry of the form '<command> |' is run in a shell and its "
    "output read as audio, as in Kaldi; read only data dirs you trust."
)


@dataclass(frozen=True)
class Entry:
    """One scp line: its value and where it came from."""

    value: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def read_scp(path: str | Path, allow_empty: bool = False) -> dict[str, Entry]:
    """Read ``<key> <value>`` lines into ``{key: Entry}``; the value is the rest of the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found")
    entries: dict[str, Entry] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise DataError(f"{path}:{lineno}", f"expected '<key> <value>', got {line!r}")
            key, value = parts
            if key in entries:
                raise DataError(f"{path}:{lineno}", f"duplicate key {key!r} (first on line {entries[key].line})")
            entries[key] = Entry(value, str(path), lineno)
    if not entries and not allow_empty:
        raise DataError(str(path), "empty list: no utterances")
    return entries


class DataDir:
    """A Kaldi-style enhancement data dir.

    Args:
        path: the directory.
        require_ref: whether ``spk1.scp`` (the clean reference) must exist.
    """

    def __init__(self, path: str | Path, require_ref: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(str(self.path), "data directory not found")
        self.wav = read_scp(self.path / "wav.scp")
        ref = self.path / "spk1.scp"
        if ref.exists() or require_ref:
            self.ref: dict[str, Entry] | None = read_scp(ref)
            self._same_keys(self.ref, "spk1.scp")
        else:
            self.ref = None
        self.utt2spk = self._optional("utt2spk")
        dur = self._optional("utt2dur")
        self.utt2dur = {k: self._float(e) for k, e in dur.items()} if dur else None
        self.utt_ids = sorted(self.wav)
        for key in self.utt_ids:
            for entry in [self.wav[key]] + ([self.ref[key]] if self.ref else []):
                if is_plain_path(entry.value) and not Path(entry.value).is_file():
                    raise DataError(entry.where, f"utterance {key!r}: audio file not found: {entry.value}")

    def _optional(self, name: str) -> dict[str, Entry] | None:
        if not (self.path / name).exists():
            return None
        entries = read_scp(self.path / name)
        self._same_keys(entries, name)
        return entries

    def _same_keys(self, other: dict[str, Entry], name: str) -> None:
        missing = sorted(set(self.wav) - set(other))
        if missing:
            raise DataError(
                str(self.path / name),
                f"no entry for utterance {missing[0]!r} of wav.scp "
                f"(line {self.wav[missing[0]].line}); {len(missing)} missing in all",
            )
        extra = sorted(set(other) - set(self.wav))
        if extra:
            raise DataError(other[extra[0]].where, f"utterance {extra[0]!r} is not in wav.scp")

    @staticmethod
    def _float(entry: Entry) -> float:
        try:
            value = float(entry.value)
        except ValueError:
            raise DataError(entry.where, f"not a number: {entry.value!r}") from None
        if value <= 0:
            raise DataError(entry.where, f"duration must be positive, got {value}")
        return value

    def __len__(self) -> int:
        return len(self.utt_ids)

    def check_audio(self, sample_rate: int, channels: int | None = None) -> None:
        """Open every audio header: rate, channel count (``channels``, or else the same in every
        input), readable, not empty, noisy/clean lengths equal."""
        first: tuple[str, int] | None = None  # (where, channels) of the first input
        for key in self.utt_ids:
            noisy = self.wav[key]
            rate, chans, frames = entry_info(noisy, key)
            if rate != sample_rate:
                raise DataError(
                    noisy.where, f"utterance {key!r}: sample rate {rate} Hz, expected {sample_rate} Hz ({noisy.value})"
                )
            if channels is not None and chans != channels:
                raise DataError(
                    noisy.where, f"utterance {key!r}: {chans} channels, expected {channels} ({noisy.value})"
                )
            if first is None:
                first = (noisy.where, chans)
            elif chans != first[1]:
                raise DataError(
                    noisy.where,
                    f"utterance {key!r}: {chans} channel(s), but the first input "
                    f"({first[0]}) has {first[1]}: a data dir holds one channel count ({noisy.value})",
                )
            if frames == 0:
                raise DataError(noisy.where, f"utterance {key!r}: empty audio, 0 samples ({noisy.value})")
            if self.ref is None:
                continue
            ref = self.ref[key]
            ref_rate, _, ref_frames = entry_info(ref, key)
            if ref_rate != rate:
                raise DataError(
                    ref.where,
                    f"utterance {key!r}: sample rate {ref_rate} Hz of the reference differs "
                    f"from {rate} Hz of the input ({ref.value} vs {noisy.value})",
                )
            if ref_frames != frames:
                raise DataError(
                    ref.where,
                    f"utterance {key!r}: reference has {ref_frames} samples, input has "
                    f"{frames} ({ref.value} vs {noisy.value})",
                )


def entry_info(entry: Entry, key: str) -> tuple[int, int, int]:
    """``(rate, channels, frames)`` of an scp entry; unreadable audio is a DataError at its line."""
    try:
        return audio_info(entry.value)
    except Exception as exc:  # soundfile/kaldiio raise many types
        raise DataError(entry.where, f"utterance {key!r}: unreadable audio {entry.value}: {exc}") from None


def read_entry(entry: Entry, key: str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Samples ``[start, stop)`` of an scp entry as float32 ``[C, T]`` and the rate; errors name the line."""
    try:
        return load_audio(entry.value, start, stop)
    except Exception as exc:
        raise DataError(entry.where, f"utterance {key!r}: unreadable audio {entry.value}: {exc}") from None

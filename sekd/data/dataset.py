"""Datasets over a ``DataDir``: random fixed-length crops for training, whole utterances for evaluation.

Crops are a pure function of ``(seed, epoch, index)``, never of global random state,
so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from sekd.data.errors import DataError
from sekd.data.kaldi_dir import DataDir, Entry, entry_info, read_entry


def _read(entry: Entry, key: str, sample_rate: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    data, rate = read_entry(entry, key, start, stop)
    if rate != sample_rate:
        raise DataError(
            entry.where, f"utterance {key!r}: sample rate {rate} Hz, expected {sample_rate} Hz ({entry.value})"
        )
    return data


class _CropSlots:
    """Crop slots of a cropping dataset (``epoch``, ``crop_slots``): which of an utterance's crops
    an epoch uses, and the crop's stable id."""

    epoch: int
    crop_slots: int

    @property
    def slot(self) -> int:
        """``epoch % crop_slots``, or the epoch itself without crop slots (a new crop every epoch)."""
        return self.epoch % self.crop_slots if self.crop_slots else self.epoch

    def crop_id(self, index: int) -> torch.Tensor:
        """The id of item ``index``'s crop in this epoch: ``slot * len(self) + index``."""
        return torch.tensor(self.slot * len(self) + index, dtype=torch.long)


class _Base(Dataset):
    def __init__(self, data: DataDir | str, sample_rate: int, channels: int | None, ref_channel: int) -> None:
        self.data = data if isinstance(data, DataDir) else DataDir(data)
        self.sample_rate, self.channels, self.ref_channel = sample_rate, channels, ref_channel

    def __len__(self) -> int:
        return len(self.data)

    def _pair(self, key: str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        noisy_e = self.data.wav[key]
        noisy = _read(noisy_e, key, self.sample_rate, start, stop)
        if self.channels is not None and noisy.shape[0] != self.channels:
            raise DataError(
                noisy_e.where,
                f"utterance {key!r}: {noisy.shape[0]} channels, expected {self.channels} ({noisy_e.value})",
            )
        if self.data.ref is None:
            return noisy, None
        ref_e = self.data.ref[key]
        ref = _read(ref_e, key, self.sample_rate, start, stop)
        if ref.shape[1] != noisy.shape[1]:
            raise DataError(
                ref_e.where,
                f"utterance {key!r}: reference has {ref.shape[1]} samples, input has "
                f"{noisy.shape[1]} ({ref_e.value} vs {noisy_e.value})",
            )
        return noisy, ref[min(self.ref_channel, ref.shape[0] - 1)]


class CropDataset(_CropSlots, _Base):
    """Random ``segment``-second crops of (noisy ``[C, S]``, clean ``[S]``) pairs.

    Shorter utterances are zero-padded at the end. Call ``set_epoch`` before each epoch. The crop
    of item ``index`` is drawn from ``(seed, slot, index)``, where ``slot`` is the epoch when
    ``crop_slots`` is 0 (a new crop every epoch), else ``epoch % crop_slots``: each utterance then
    has ``crop_slots`` fixed crops, visited in turn, and items are ``(noisy, clean, crop_id)`` with
    ``crop_id = slot * len(self) + index``, so the teacher's targets of a crop can be cached
    (``kd.cache_teacher``).
    """

    def __init__(
        self,
        data: DataDir | str,
        segment: float,
        sample_rate: int = 16000,
        seed: int = 0,
        channels: int | None = None,
        ref_channel: int = 0,
        crop_slots: int = 0,
    ) -> None:
        super().__init__(data, sample_rate, channels, ref_channel)
        self.segment = int(round(segment * sample_rate))
        if crop_slots < 0:
            raise ValueError(f"data.crop_slots must be >= 0 (0: a new crop every epoch), got {crop_slots}")
        self.seed, self.epoch, self.crop_slots = seed, 0, int(crop_slots)
        self._lengths: dict[str, int] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        noisy, ref = self._crop(index)
        return self._with_id(index, noisy, ref)

    def _with_id(self, index: int, noisy: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.crop_slots:
            return noisy, ref
        return noisy, ref, self.crop_id(index)

    def _crop(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.data.utt_ids[index]
        if key not in self._lengths:
            noisy_len = entry_info(self.data.wav[key], key)[2]
            ref_len = entry_info(self.data.ref[key], key)[2]
            if noisy_len != ref_len:
                raise DataError(
                    self.data.ref[key].where,
                    f"utterance {key!r}: reference has {ref_len} samples, "
                    f"input has {noisy_len} ({self.data.ref[key].value} vs {self.data.wav[key].value})",
                )
            self._lengths[key] = noisy_len
        length = self._lengths[key]
        rng = np.random.default_rng([self.seed, self.slot, index])
        start = int(rng.integers(0, length - self.segment + 1)) if length > self.segment else 0
        noisy, ref = self._pair(key, start, start + self.segment)
        pad = self.segment - noisy.shape[1]
        if pad > 0:
            noisy = np.pad(noisy, ((0, 0), (0, pad)))
            ref = np.pad(ref, (0, pad))
        return torch.from_numpy(noisy), torch.from_numpy(ref)


class MixingDataset(CropDataset):
    """On-the-fly noisy mixtures: a crop of clean speech plus a random noise crop at a random SNR.

    The DNS Challenge way of training on hundreds of hours without rendering them: the data
    dir's ``spk1.scp`` is the clean speech (its ``wav.scp`` names the same files), ``noise``
    a ``DataDir``-style scp of noise recordings. For item ``index`` of epoch ``e``, a
    generator seeded with ``(seed, e, index)`` picks, as the challenge's synthesizer
    (``noisyspeech_synthesizer_singleprocess.py``, interspeech2020 branch) does:

    - a noise file and a ``segment``-long crop of it (shorter files are repeated);
    - an SNR uniform in ``snr_range`` dB, the noise scaled so that
      ``10 log10(P_speech / P_noise) = SNR`` with powers over the crop;
    - a level uniform in ``level_range`` dBFS for the mixture's RMS, applied to the mixture
      and the clean target alike, then both scaled down together if the mixture would clip
      (peak above 0.99).

    Returns ``(mixture [1, S], clean [S])`` like ``CropDataset`` (and its ``crop_id`` with
    ``crop_slots``: then ``e`` above is the slot, and each utterance has ``crop_slots`` fixed
    mixtures); a pure function of ``(seed, epoch, index)``, so resumed runs see the same batches.
    """

    def __init__(
        self,
        data: DataDir | str,
        noise_scp: str,
        segment: float,
        sample_rate: int = 16000,
        seed: int = 0,
        snr_range: tuple[float, float] = (0.0, 40.0),
        level_range: tuple[float, float] = (-35.0, -15.0),
        crop_slots: int = 0,
    ) -> None:
        super().__init__(data, segment, sample_rate, seed, channels=None, ref_channel=0, crop_slots=crop_slots)
        from sekd.data.kaldi_dir import read_scp

        self.noise = read_scp(noise_scp)
        self.noise_keys = sorted(self.noise)
        self.snr_range, self.level_range = tuple(map(float, snr_range)), tuple(map(float, level_range))
        self._noise_lengths: dict[str, int] = {}

    def _noise_crop(self, rng: np.random.Generator) -> np.ndarray:
        key = self.noise_keys[int(rng.integers(len(self.noise_keys)))]
        entry = self.noise[key]
        if key not in self._noise_lengths:
            self._noise_lengths[key] = entry_info(entry, key)[2]
        length = self._noise_lengths[key]
        start = int(rng.integers(0, length - self.segment + 1)) if length > self.segment else 0
        noise = _read(entry, key, self.sample_rate, start, start + self.segment)[0]
        if len(noise) < self.segment:
            noise = np.tile(noise, -(-self.segment // max(len(noise), 1)))[: self.segment]
        return noise.astype(np.float64)

    def _crop(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, clean = super()._crop(index)
        clean = clean.numpy().astype(np.float64)
        rng = np.random.default_rng([self.seed, self.slot, index, 1])
        noise = self._noise_crop(rng)
        snr = rng.uniform(*self.snr_range)
        p_speech, p_noise = np.mean(clean**2), np.mean(noise**2)
        if p_speech > 0 and p_noise > 0:
            noise = noise * np.sqrt(p_speech / (p_noise * 10 ** (snr / 10)))
        mix = clean + noise
        rms = np.sqrt(np.mean(mix**2))
        gain = 10 ** (rng.uniform(*self.level_range) / 20) / rms if rms > 0 else 1.0
        peak = np.abs(mix).max() * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        mix, clean = mix * gain, clean * gain
        return torch.from_numpy(mix[None].astype(np.float32)), torch.from_numpy(clean.astype(np.float32))


class UtteranceDataset(_Base):
    """Whole utterances: ``(key, noisy [C, T], clean [T] or None)``; use with batch size 1."""

    def __init__(
        self,
        data: DataDir | str,
        sample_rate: int = 16000,
        channels: int | None = None,
        ref_channel: int = 0,
        require_ref: bool = True,
    ) -> None:
        if not isinstance(data, DataDir):
            data = DataDir(data, require_ref=require_ref)
        super().__init__(data, sample_rate, channels, ref_channel)

    def __getitem__(self, index: int):
        key = self.data.utt_ids[index]
        noisy, ref = self._pair(key)
        return key, torch.from_numpy(noisy), None if ref is None else torch.from_numpy(ref)


def collate_single(batch):
    """Collate for batch size 1 of ``UtteranceDataset``: adds the batch axis."""
    ((key, noisy, ref),) = batch
    return key, noisy[None], None if ref is None else ref[None]


def speaker_list(data: DataDir) -> list[str]:
    """The speakers of a data dir's ``utt2spk``, sorted: speaker ``i`` of the list has class label ``i``."""
    if data.utt2spk is None:
        raise DataError(str(data.path / "utt2spk"), "file not found (speaker verification needs speaker labels)")
    return sorted({e.value for e in data.utt2spk.values()})


class SpeakerCropDataset(_CropSlots, Dataset):
    """Random ``segment``-second crops of ``wav.scp`` with speaker labels, for speaker verification.

    Item ``index``: ``(wav [1, S] float32, label int64, crop_id int64)``. ``label`` is the index
    of the utterance's speaker in :func:`speaker_list` (the sorted ``utt2spk`` speakers);
    ``crop_id = slot * len(self) + index`` names the crop, where ``slot`` is the epoch when
    ``crop_slots`` is 0 (a new crop every epoch), else ``epoch % crop_slots``: each utterance
    then has ``crop_slots`` crops, visited in turn (1: the same crop every epoch), so a KD term
    may cache the teacher's targets for each. The crop start is drawn from ``(seed, slot,
    index)``, never from global random state.
    Utterances shorter than the crop are repeated (wrap padding, as voxceleb_trainer and
    WeSpeaker do), not zero-padded: silence would be a speaker-independent cue.
    Multi-channel input keeps channel 0. ``spk1.scp`` is not needed (and not read).
    """

    def __init__(
        self, data: DataDir | str, segment: float, sample_rate: int = 16000, seed: int = 0, crop_slots: int = 0
    ) -> None:
        self.data = data if isinstance(data, DataDir) else DataDir(data, require_ref=False)
        self.speakers = speaker_list(self.data)
        index = {s: i for i, s in enumerate(self.speakers)}
        self.labels = [index[self.data.utt2spk[k].value] for k in self.data.utt_ids]
        self.segment = int(round(segment * sample_rate))
        if self.segment < 1:
            raise ValueError(f"data.segment must be positive, got {segment}")
        if crop_slots < 0:
            raise ValueError(f"data.crop_slots must be >= 0 (0: a new crop every epoch), got {crop_slots}")
        self.sample_rate, self.seed, self.crop_slots, self.epoch = sample_rate, seed, int(crop_slots), 0
        self._lengths: dict[str, int] = {}

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def crop_start(self, index: int, length: int) -> int:
        rng = np.random.default_rng([self.seed, self.slot, index])
        return int(rng.integers(0, length - self.segment + 1)) if length > self.segment else 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = self.data.utt_ids[index]
        entry = self.data.wav[key]
        if key not in self._lengths:
            self._lengths[key] = entry_info(entry, key)[2]
        length = self._lengths[key]
        start = self.crop_start(index, length)
        wav = _read(entry, key, self.sample_rate, start, start + self.segment)[:1]
        if wav.shape[1] == 0:
            raise DataError(entry.where, f"utterance {key!r} is empty ({entry.value})")
        if wav.shape[1] < self.segment:
            wav = np.tile(wav, (1, -(-self.segment // wav.shape[1])))[:, : self.segment]
        return (
            torch.from_numpy(np.ascontiguousarray(wav)),
            torch.tensor(self.labels[index], dtype=torch.long),
            self.crop_id(index),
        )


class TrialUtteranceDataset(Dataset):
    """The utterances of a data dir's ``trials`` file, whole or their first ``max_seconds``.

    Item ``i``: ``(key, wav [1, T] float32)`` (channel 0), for embedding one at a time.
    ``trials`` lines are ``<enroll> <test> target|nontarget`` (or VoxCeleb's ``1|0 <enroll> <test>``);
    an utterance a trial names that ``wav.scp`` lacks is an error at the trial's line, and the list
    needs target and non-target trials (else no EER).
    """

    def __init__(
        self,
        data: DataDir | str,
        sample_rate: int = 16000,
        max_seconds: float | None = None,
        trials: str | None = None,
        max_trials: int | None = None,
    ) -> None:
        from sekd.sv.scoring import read_trials

        self.data = data if isinstance(data, DataDir) else DataDir(data, require_ref=False)
        path = trials or str(self.data.path / "trials")
        self.trials = read_trials(path)
        if max_trials:
            self.trials = self.trials[: int(max_trials)]
        for num, (enroll, test, _) in enumerate(self.trials, 1):
            for key in (enroll, test):
                if key not in self.data.wav:
                    raise DataError(
                        path, f"trial {num} ({enroll} {test}): utterance {key!r} is not in {self.data.path / 'wav.scp'}"
                    )
        labels = {lab for _, _, lab in self.trials}
        if labels != {0, 1}:
            raise DataError(path, "needs target and non-target trials to compute an EER")
        self.keys = sorted({k for t in self.trials for k in t[:2]})
        self.sample_rate = sample_rate
        self.max_samples = int(round(max_seconds * sample_rate)) if max_seconds else None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        key = self.keys[index]
        wav = _read(self.data.wav[key], key, self.sample_rate, 0, self.max_samples)[:1]
        return key, torch.from_numpy(np.ascontiguousarray(wav))

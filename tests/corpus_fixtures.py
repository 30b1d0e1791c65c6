"""Fixture trees with the real corpora's layouts, file naming, sample rates and channel counts.

A handful of generated files per folder: harmonic "speech" (a distinct fundamental per
utterance, so a test can tell which clean file a noisy file was made from) plus noise.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile as sf


def voiced(name: str, seconds: float, rate: int) -> np.ndarray:
    """A harmonic signal whose fundamental is a function of ``name`` (its fingerprint)."""
    f0 = f0_of(name)
    t = np.arange(int(seconds * rate)) / rate
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5)) * env
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def f0_of(name: str) -> float:
    return 90.0 + (zlib.crc32(name.encode()) % 1500) / 10.0


def dominant_f0(x: np.ndarray, rate: int) -> float:
    """The strongest spectral peak between 80 and 260 Hz (the fundamental of :func:`voiced`)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs >= 80) & (freqs <= 260)
    return float(freqs[band][np.argmax(spec[band])])


def _write(path: Path, x: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.T if x.ndim == 2 else x, rate, subtype="PCM_16")


def _noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    """``clean`` ([T] or [C, T]) plus white noise, same shape."""
    noise = np.random.default_rng(seed).standard_normal(clean.shape).astype(np.float32) * 0.02
    return np.clip(clean + noise, -1, 1)


VOICEBANK_TRAIN_SPEAKERS = ("p226", "p227", "p282", "p287")
VOICEBANK_TEST_SPEAKERS = ("p232", "p257")


def make_voicebank_demand(root: Path, per_speaker: int = 3, seconds: float = 1.2) -> Path:
    """``clean_trainset_28spk_wav/p226_001.wav`` ... at 48 kHz mono, as the unpacked DataShare zips."""
    rate = 48000
    for part, speakers in (("trainset_28spk", VOICEBANK_TRAIN_SPEAKERS), ("testset", VOICEBANK_TEST_SPEAKERS)):
        for spk in speakers:
            for i in range(1, per_speaker + 1):
                utt = f"{spk}_{i:03d}"
                clean = voiced(utt, seconds + 0.1 * i, rate)
                _write(root / f"clean_{part}_wav" / f"{utt}.wav", clean, rate)
                _write(root / f"noisy_{part}_wav" / f"{utt}.wav", _noisy(clean, i), rate)
    return root


def make_dns2020(root: Path, readers: int = 4, per_reader: int = 2, noises: int = 4, tests: int = 3) -> Path:
    """A DNS-Challenge clone (interspeech2020/master): datasets/{clean,noise}, synthetic test sets, 16 kHz."""
    rate = 16000
    ds = root / "datasets"
    for r in range(readers):
        for i in range(per_reader):
            name = f"book_{r:05d}_chp_{i:04d}_reader_{1000 + r:05d}_{i}"
            _write(ds / "clean" / f"{name}.wav", voiced(name, 1.5 + 0.2 * i, rate), rate)
    rng = np.random.default_rng(0)
    for j in range(noises):
        name = ["Door_Freesound_validated_380952_5", "AirConditioner_6", "-0_2i5ePQvvE", "Typing_3"][j % 4] + f"_{j}"
        _write(
            ds / "noise" / f"{name}.wav", (0.05 * rng.standard_normal(int(rate * (0.7 + j)))).astype(np.float32), rate
        )
    for rev in ("no_reverb", "with_reverb"):
        for n in range(tests):
            clean = voiced(f"{rev}{n}", 2.0, rate)
            _write(ds / "test_set" / "synthetic" / rev / "clean" / f"clean_fileid_{n}.wav", clean, rate)
            noisy_name = f"clnsp{n}_{['ac', 'typing', 'babble'][n % 3]}_{n}_snr{5 * n}_tl-25_fileid_{n}.wav"
            _write(ds / "test_set" / "synthetic" / rev / "noisy" / noisy_name, _noisy(clean, n), rate)
    return root


def make_l3das23(root: Path, splits=("train100", "dev"), speakers: int = 4, per_speaker: int = 2) -> Path:
    """``L3DAS23_Task1_<split>/{data/<id>_A.wav, data/<id>_B.wav, labels/<id>.wav, labels/<id>.txt}``:
    4-channel 16 kHz Ambisonics inputs (W, X, Y, Z of the 'speech' plus noise) and mono targets."""
    rate = 16000
    for s, split in enumerate(splits):
        folder = root / f"L3DAS23_Task1_{split}"
        for k in range(speakers if split != "dev" else 2):
            spk = 100 + 37 * k + 1000 * s
            for i in range(per_speaker):
                name = f"{spk}-{5000 + k}-{i:04d}"
                clean = voiced(name, 1.0 + 0.25 * i, rate)
                _write(folder / "labels" / f"{name}.wav", clean, rate)
                (folder / "labels" / f"{name}.txt").write_text(f"WORDS OF {name.upper()}\n")
                for mic, gains in (("A", (1.0, 0.7, 0.2, -0.1)), ("B", (1.0, -0.5, 0.4, 0.1))):
                    foa = np.stack([g * clean for g in gains])
                    _write(folder / "data" / f"{name}_{mic}.wav", _noisy(foa, 2 * i + (mic == "B")), rate)
    return root


def make_voxceleb1(
    root: Path,
    train_speakers=("id10001", "id10002", "id10003"),
    test_speakers=("id10270", "id10271"),
    videos: int = 2,
    per_video: int = 2,
) -> Path:
    """``wav/id<NNNNN>/<video>/<nnnnn>.wav`` (16 kHz mono), ``iden_split.txt``, ``veri_test2.txt``."""
    rate = 16000
    rels = []
    for spk in (*train_speakers, *test_speakers):
        for v in range(videos):
            video = f"{spk[-2:]}Vid{v}xYz_"  # YouTube ids have letters, digits, '-' and '_'
            for i in range(1, per_video + 1):
                rel = f"{spk}/{video}/{i:05d}.wav"
                _write(root / "wav" / rel, voiced(rel, 1.0 + 0.1 * i, rate), rate)
                rels.append(rel)
    # identification split: every speaker's first video is validation (2)
    lines = []
    for rel in rels:
        spk, video, name = rel.split("/")
        split = "2" if video.endswith("0xYz_") else "1"
        lines.append(f"{split} {rel}\n")
    (root / "iden_split.txt").write_text("".join(lines))
    test = [r for r in rels if r.split("/")[0] in test_speakers]
    trials = []
    for a in test:
        for b in test:
            if a < b:
                trials.append(f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}\n")
    (root / "veri_test2.txt").write_text("".join(trials))
    return root

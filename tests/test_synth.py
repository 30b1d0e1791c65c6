"""The mini corpus generator: eSpeak NG speech, noise types, mixing, determinism."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sekd.data.synth import (
    NOISE_TYPES,
    Speaker,
    active_power,
    babble_noise,
    brown_noise,
    click_noise,
    hum_noise,
    make_mini_corpus,
    make_noise,
    make_speaker_pools,
    measure_snr,
    mix_at_snr,
    modulated_noise,
    peak_normalize,
    pink_noise,
    synthesize,
    white_noise,
)

RATE = 16000


def test_tts_speaks():
    speech = synthesize("the quick brown fox jumps over the lazy dog", Speaker("en-us", "m1"))
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert 1.0 < len(speech) / RATE < 5.0
    assert np.sqrt(np.mean(speech**2)) > 1e-3
    # Voiced speech: most energy below 4 kHz.
    spec = np.abs(np.fft.rfft(speech)) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1 / RATE)
    assert spec[freqs < 4000].sum() / spec.sum() > 0.8


def test_voices_and_pitches_differ():
    text = "seven green apples"
    a = synthesize(text, Speaker("en-us", "m1", pitch=30))
    b = synthesize(text, Speaker("en-us", "m1", pitch=80))
    c = synthesize(text, Speaker("en-us", "f3", pitch=30))
    assert np.array_equal(a, synthesize(text, Speaker("en-us", "m1", pitch=30)))  # deterministic
    for x, y in ((a, b), (a, c)):
        n = min(len(x), len(y))
        assert not np.allclose(x[:n], y[:n], atol=1e-3)


def test_tts_is_deterministic_whatever_came_before():
    """eSpeak keeps state in C statics and the Klatt voices use libc rand(); each call must reset both."""
    text = "her family gave a sad lamp along one valley together"
    klatt = Speaker("en-029", "Reed", pitch=60, rate=170, pitch_range=40)
    first = synthesize(text, klatt, seed=5)
    synthesize("something else entirely", Speaker("en-gb-scotland", "f1"), seed=9)
    synthesize("and a whisper of breath", Speaker("en", "klatt6"), seed=1)
    assert np.array_equal(first, synthesize(text, klatt, seed=5))


def test_speaker_ids_are_kaldi_safe():
    pools = make_speaker_pools(0, 40, 5, 10, 12)
    ids = [s.speaker_id for pool in pools.values() for s in pool]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"spk-[A-Za-z0-9_-]+-p\d\d", i) for i in ids)
    assert {s.gender for s in pools["train"]} == {"f", "m"}
    # The other sets do not move when the training set grows.
    bigger = make_speaker_pools(0, 80, 5, 10, 12)
    assert all(pools[k] == bigger[k] for k in ("valid", "test", "babble"))


def test_peak_normalize_keeps_ratios():
    rng = np.random.default_rng(4)
    speech = 0.8 * synthesize("a loud sentence here", Speaker("en-us", "m4")) / 0.5
    noisy, noise = mix_at_snr(speech, white_noise(len(speech), rng), -5.0)
    s2, n2, y2 = peak_normalize(speech, noise, noisy)
    assert max(np.abs(s2).max(), np.abs(n2).max(), np.abs(y2).max()) <= 0.9 + 1e-6
    assert measure_snr(s2, n2) == pytest.approx(-5.0, abs=0.01)
    assert np.allclose(y2, s2 + n2, atol=1e-6)


def test_babble_is_several_talkers():
    rng = np.random.default_rng(5)
    talkers = [
        synthesize(t, Speaker(v, var))
        for t, v, var in (
            ("one green apple fell down", "en-us", "f1"),
            ("the old man sang a song", "en", "m2"),
            ("our small boat crossed the lake", "en-029", "m7"),
            ("she painted a red door", "en-us-nyc", "f4"),
        )
    ]
    x = babble_noise(RATE * 3, rng, talkers)
    assert x.shape == (RATE * 3,) and x.dtype == np.float32
    frames = np.sqrt(np.mean(x.reshape(-1, 800).astype(np.float64) ** 2, axis=1))
    assert frames.min() > 0.05  # talkers overlap: no silent stretches as in one talker


def _slope(x: np.ndarray) -> float:
    """Log-log slope of the Welch PSD between 50 Hz and 4 kHz (dB per decade / 10)."""
    from scipy.signal import welch

    f, p = welch(x, RATE, nperseg=4096)
    band = (f > 50) & (f < 4000)
    return float(np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0])


def test_colored_noise_slopes():
    rng = np.random.default_rng(0)
    n = RATE * 8
    assert _slope(white_noise(n, rng)) == pytest.approx(0.0, abs=0.15)
    assert _slope(pink_noise(n, rng)) == pytest.approx(-1.0, abs=0.15)
    assert _slope(brown_noise(n, rng)) == pytest.approx(-2.0, abs=0.2)


def test_nonstationary_tonal_and_impulsive_noises():
    rng = np.random.default_rng(1)
    n = RATE * 4
    # Modulated noise: the 50 ms frame energy varies much more than for stationary noise.
    frames = lambda x: np.sqrt(np.mean(x[: n - n % 800].reshape(-1, 800) ** 2, axis=1))  # noqa: E731
    mod = frames(modulated_noise(n, rng))
    white = frames(white_noise(n, rng))
    assert mod.std() / mod.mean() > 4 * white.std() / white.mean()
    # Hum: a spectral peak at the fundamental.
    hum = hum_noise(n, rng, fundamental=60.0)
    spec = np.abs(np.fft.rfft(hum))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    peak = spec[np.abs(freqs - 60) < 1].max()
    assert peak > 20 * np.median(spec)
    # Clicks: sparse, heavy-tailed.
    clicks = click_noise(n, rng)
    kurtosis = np.mean(clicks**4) / np.mean(clicks**2) ** 2
    assert kurtosis > 10  # Gaussian noise has 3
    for kind in NOISE_TYPES:
        talkers = [synthesize("one two three four", Speaker("en", "m3"))] * 3 if kind == "babble" else None
        x = make_noise(kind, RATE, rng, babble_talkers=talkers)
        assert x.shape == (RATE,) and np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 15.0])
def test_mix_at_snr_is_exact(snr):
    rng = np.random.default_rng(2)
    speech = synthesize("a short test sentence", Speaker("en-us", "f2"))
    noise = pink_noise(len(speech), rng)
    noisy, scaled = mix_at_snr(speech, noise, snr)
    assert np.allclose(noisy, speech + scaled, atol=1e-6)
    assert measure_snr(speech, scaled) == pytest.approx(snr, abs=0.01)
    assert active_power(speech) > np.mean(speech.astype(np.float64) ** 2)  # pauses do not dilute speech power


def test_speaker_pools_are_disjoint():
    pools = make_speaker_pools(0, 40, 5, 10, 12)
    voices = {name: {(s.voice, s.variant) for s in pool} for name, pool in pools.items()}
    assert [len(pools[k]) for k in ("train", "valid", "test")] == [40, 5, 10]
    names = list(voices)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not voices[a] & voices[b], (a, b)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tiny_corpus_is_deterministic_and_consistent(tmp_path):
    kwargs = dict(
        seed=3, num_train=6, num_valid=2, num_test=3, num_train_speakers=3, num_valid_speakers=1, num_test_speakers=2
    )
    a = make_mini_corpus(tmp_path / "a" / "data", nj=1, **kwargs)
    make_mini_corpus(tmp_path / "b" / "data", nj=2, **kwargs)
    da, db = _digest(tmp_path / "a" / "data" / "wav"), _digest(tmp_path / "b" / "data" / "wav")
    assert da == db and len(da) == 3 * 11  # noisy, clean and noise wavs, byte-identical
    assert a["train"]["utterances"] == 6 and a["test"]["speakers"] == 2
    root = tmp_path / "a" / "data"
    spk = {}
    for name in ("train", "valid", "test"):
        d = root / name
        for f in ("wav.scp", "spk1.scp", "noise1.scp", "utt2spk", "spk2utt", "utt2dur", "text"):
            lines = (d / f).read_text().splitlines()
            keys = [line.split()[0] for line in lines]
            assert keys == sorted(keys), f"{d / f} is not sorted"
        # Same data files (paths differ only by the corpus root).
        for f in sorted(p.name for p in d.iterdir()):
            other = (tmp_path / "b" / "data" / name / f).read_text().replace(str(tmp_path / "b"), str(tmp_path / "a"))
            assert (d / f).read_text() == other, f
        utt2spk = dict(line.split() for line in (d / "utt2spk").read_text().splitlines())
        spk2utt = {line.split()[0]: line.split()[1:] for line in (d / "spk2utt").read_text().splitlines()}
        assert {u: s for s, us in spk2utt.items() for u in us} == utt2spk
        assert all(u.startswith(s + "_" + name + "_") for u, s in utt2spk.items())
        for f in ("wav.scp", "spk1.scp", "noise1.scp"):
            paths = [line.split()[1] for line in (d / f).read_text().splitlines()]
            assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
        noises = [line.split()[1] for line in (d / "utt2noise").read_text().splitlines()]
        counts = [noises.count(t) for t in set(noises)]
        assert set(noises) <= set(NOISE_TYPES) and max(counts) - min(counts) <= 1  # spread evenly
        snrs = dict(line.split() for line in (d / "utt2snr").read_text().splitlines())
        for key, snr in snrs.items():
            assert -5.0 <= float(snr) <= 15.0
            clean, _ = sf.read(root / "wav" / name / "clean" / f"{key}.wav")
            noise, _ = sf.read(root / "wav" / name / "noise" / f"{key}.wav")
            assert measure_snr(clean, noise) == pytest.approx(float(snr), abs=0.02)
        spk[name] = {line.split()[1] for line in (d / "utt2spk").read_text().splitlines()}
        for line in (d / "utt2dur").read_text().splitlines():
            key, dur = line.split()
            noisy = root / "wav" / name / "noisy" / f"{key}.wav"
            info = sf.info(noisy)
            assert info.samplerate == RATE and abs(info.frames / RATE - float(dur)) < 1e-3
            clean, _ = sf.read(root / "wav" / name / "clean" / f"{key}.wav", dtype="int16")
            noise, _ = sf.read(root / "wav" / name / "noise" / f"{key}.wav", dtype="int16")
            mix, _ = sf.read(noisy, dtype="int16")
            assert np.array_equal(mix.astype(int), clean.astype(int) + noise.astype(int))
    assert not spk["train"] & spk["test"] and not spk["train"] & spk["valid"] and not spk["valid"] & spk["test"]
    # A rerun with the same parameters leaves the corpus alone; other parameters are refused.
    before = _digest(root)
    make_mini_corpus(root, nj=1, **kwargs)
    assert _digest(root) == before
    with pytest.raises(FileExistsError):
        make_mini_corpus(root, nj=1, **{**kwargs, "num_train": 7})
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["data"]  # no temp dirs left


def test_cli_fallback_parses_streamed_wav():
    """espeak-ng --stdout writes a WAV whose RIFF and data sizes are placeholders."""
    import struct

    from sekd.data.synth.espeak import _parse_streamed_wav

    samples = np.array([0, 1000, -1000, 32767, -32768], dtype="<i2")
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    rate, x = _parse_streamed_wav(header + samples.tobytes())
    assert rate == 22050 and np.array_equal(x, samples)


def test_cli_noise_types_match_the_library():
    from sekd.bin.simulate_mini import NOISE_TYPES as CLI_TYPES

    assert CLI_TYPES.split(",") == list(NOISE_TYPES)

"""The mini corpus generator: eSpeak NG speech, noise types, mixing, determinism."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sekd.data.synth import (
    NOISE_TYPES, Speaker, active_power, brown_noise, click_noise, hum_noise, make_mini_corpus,
    make_noise, make_speaker_pools, measure_snr, mix_at_snr, modulated_noise, pink_noise, synthesize,
    white_noise,
)

RATE = 16000


def test_tts_speaks():
    speech = synthesize("the quick brown fox jumps over the lazy dog", Speaker("en-us", "m1"))
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert 1.0 < len(speech) / RATE < 5.0
    assert np.sqrt(np.mean(speech ** 2)) > 1e-3
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
    kurtosis = np.mean(clicks ** 4) / np.mean(clicks ** 2) ** 2
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
        for b in names[i + 1:]:
            assert not voices[a] & voices[b], (a, b)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_tiny_corpus_is_deterministic_and_consistent(tmp_path):
    kwargs = dict(seed=3, num_train=6, num_valid=2, num_test=3, num_train_speakers=3, num_valid_speakers=1,
                  num_test_speakers=2)
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
        other = (tmp_path / "b" / "data" / name / "utt2dur").read_text()
        assert (d / "utt2dur").read_text() == other
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
    # A rerun with the same parameters leaves the corpus alone.
    before = _digest(root)
    make_mini_corpus(root, nj=1, **kwargs)
    assert _digest(root) == before

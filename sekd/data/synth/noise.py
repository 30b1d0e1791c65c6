"""Synthetic noises and mixing at a target SNR, for the mini corpus.

Every generator takes ``(num_samples, rng, sample_rate)`` (plus its own options), draws
all of its randomness from the ``numpy.random.Generator`` it is given, and returns
float32 ``[num_samples]`` with unit RMS over the whole signal; the level is set later by
:func:`mix_at_snr`. Types (:data:`NOISE_TYPES`):

- ``white``, ``pink``, ``brown``: Gaussian noise with power spectral density
  ``~ 1/f^a``, ``a`` = 0, 1, 2 (:func:`colored_noise`).
- ``babble``: 3-6 talkers speaking at once (:func:`babble_noise`).
- ``modulated``: coloured noise times a slow envelope of 0.5-4 Hz, sinusoidal or random
  (:func:`modulated_noise`).
- ``hum``: mains hum, 50 or 60 Hz with harmonics, sometimes with a high whine
  (:func:`hum_noise`).
- ``clicks``: sparse decaying impulses, like a keyboard or a ticking machine
  (:func:`click_noise`).

SNR definition used throughout: ``10 log10(P_speech / P_noise)``, where ``P_speech`` is
the *active* speech power (mean power of the 20 ms frames within 30 dB of the loudest
frame, see :func:`active_power`; pauses do not dilute it) and ``P_noise`` the mean power
of the whole noise signal.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.signal import lfilter

NOISE_TYPES: tuple[str, ...] = ("white", "pink", "brown", "babble", "modulated", "hum", "clicks")
"""Noise types, in the order :func:`make_noise` and the corpus spread them."""

SpeechSource = Sequence[np.ndarray] | Callable[[np.random.Generator], np.ndarray]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms == 0.0:
        raise ValueError("noise is all zeros")
    return (x / rms).astype(np.float32)


def _check_length(num_samples: int) -> None:
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")


def colored_noise(
    num_samples: int,
    rng: np.random.Generator,
    exponent: float,
    sample_rate: int = 16000,
    f_min: float = 20.0,
) -> np.ndarray:
    """Gaussian noise with power spectral density ``~ 1/f^exponent`` (0 white, 1 pink, 2 brown).

    White noise is shaped in the frequency domain by ``f^(-exponent/2)``; below ``f_min``
    the gain stays at its ``f_min`` value (so brown noise does not put most of its
    energy into inaudible drift) and the DC bin is zero.
    """
    _check_length(num_samples)
    if exponent == 0:
        return _unit_rms(rng.standard_normal(num_samples))
    n_fft = num_samples + (num_samples % 2)
    spec = np.fft.rfft(rng.standard_normal(n_fft))
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    gain = np.maximum(freqs, f_min) ** (-exponent / 2.0)
    gain[0] = 0.0
    x = np.fft.irfft(spec * gain, n=n_fft)[:num_samples]
    return _unit_rms(x)


def white_noise(num_samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Gaussian white noise, unit RMS."""
    return colored_noise(num_samples, rng, 0.0, sample_rate)


def pink_noise(num_samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Pink noise, PSD ~ 1/f (-3 dB per octave), unit RMS."""
    return colored_noise(num_samples, rng, 1.0, sample_rate)


def brown_noise(num_samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Brown (red) noise, PSD ~ 1/f^2 (-6 dB per octave), unit RMS."""
    return colored_noise(num_samples, rng, 2.0, sample_rate)


def active_power(x: np.ndarray, sample_rate: int = 16000, frame_s: float = 0.02, threshold_db: float = 30.0) -> float:
    """Mean power of the frames within ``threshold_db`` of the loudest (20 ms frames).

    A simple stand-in for ITU-T P.56 active speech level: pauses between words do not
    lower it. Signals shorter than a frame use their overall mean power.
    """
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, int(round(frame_s * sample_rate)))
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x**2)) if len(x) else 0.0
    power = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    active = power[power >= power.max() * 10.0 ** (-threshold_db / 10.0)]
    return float(active.mean())


def _tile(x: np.ndarray, num_samples: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Repeat ``x`` with short random gaps until ``num_samples`` long, from a random start."""
    pieces, total = [], 0
    while total < 2 * num_samples or not pieces:
        gap = np.zeros(int(rng.uniform(0.05, 0.4) * sample_rate), dtype=np.float64)
        pieces += [x, gap]
        total += len(x) + len(gap)
    stream = np.concatenate(pieces)
    start = int(rng.integers(0, len(stream) - num_samples + 1))
    return stream[start : start + num_samples]


def babble_noise(
    num_samples: int,
    rng: np.random.Generator,
    talkers: SpeechSource,
    sample_rate: int = 16000,
    num_talkers: tuple[int, int] = (3, 6),
) -> np.ndarray:
    """Several talkers at once: the sum of ``k`` speech signals, ``k`` uniform in ``num_talkers``.

    ``talkers`` is either a list of speech signals (``k`` distinct ones are drawn; when
    the list is shorter than ``k``, all of them are used) or a callable
    ``rng -> speech`` called ``k`` times. Each signal is scaled to unit active power,
    repeated with short gaps to the requested length from a random offset, then the
    talkers are summed.
    """
    _check_length(num_samples)
    lo, hi = num_talkers
    if not 1 <= lo <= hi:
        raise ValueError(f"num_talkers must satisfy 1 <= low <= high, got {num_talkers}")
    k = int(rng.integers(lo, hi + 1))
    if callable(talkers):
        signals = [np.asarray(talkers(rng)) for _ in range(k)]
    else:
        if len(talkers) == 0:
            raise ValueError("babble needs at least one talker signal")
        idx = rng.permutation(len(talkers))[: min(k, len(talkers))]
        signals = [np.asarray(talkers[i]) for i in idx]
    mix = np.zeros(num_samples, dtype=np.float64)
    for s in signals:
        s = s.astype(np.float64)
        p = active_power(s, sample_rate)
        if p <= 0:
            raise ValueError("a babble talker signal is silent")
        mix += _tile(s / np.sqrt(p), num_samples, rng, sample_rate)
    return _unit_rms(mix)


def _smooth_random_envelope(num_samples: int, rng: np.random.Generator, rate_hz: float, sample_rate: int) -> np.ndarray:
    """Random values in [0, 1] at ``rate_hz`` knots, joined by raised-cosine interpolation."""
    step = sample_rate / rate_hz
    n_knots = int(np.ceil(num_samples / step)) + 2
    knots = rng.random(n_knots)
    pos = np.arange(num_samples) / step + rng.random()
    i = np.floor(pos).astype(int)
    frac = pos - i
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return knots[i] * (1.0 - w) + knots[i + 1] * w


def modulated_noise(
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    mod_hz: tuple[float, float] = (0.5, 4.0),
    depth: tuple[float, float] = (0.6, 0.95),
) -> np.ndarray:
    """Non-stationary noise: coloured noise (PSD ``~1/f^a``, ``a`` in [0, 1.5]) times a slow envelope.

    The envelope is ``1 - d + d * e(t)`` with depth ``d`` in ``depth`` and ``e`` in
    [0, 1] either a sinusoid or a smooth random curve (equally likely), both at a rate
    drawn from ``mod_hz``.
    """
    _check_length(num_samples)
    carrier = colored_noise(num_samples, rng, float(rng.uniform(0.0, 1.5)), sample_rate)
    rate = float(rng.uniform(*mod_hz))
    d = float(rng.uniform(*depth))
    if rng.random() < 0.5:
        t = np.arange(num_samples) / sample_rate
        e = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    else:
        e = _smooth_random_envelope(num_samples, rng, rate, sample_rate)
    return _unit_rms(carrier * (1.0 - d + d * e))


def hum_noise(
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    fundamental: float | None = None,
    num_harmonics: tuple[int, int] = (4, 10),
    whine_probability: float = 0.5,
) -> np.ndarray:
    """Electrical hum: a 50 or 60 Hz fundamental (or ``fundamental``) plus harmonics.

    Harmonic ``h`` has amplitude ``~ h^-b`` (``b`` in [0.5, 1.2], with +-3 dB random
    jitter, never above the fundamental) and a random phase. With probability
    ``whine_probability`` a high whine (one tone at 1-6 kHz, 10-30 % of the
    fundamental's amplitude, slowly wobbling in frequency) is added, and there is a
    faint pink floor 40 dB below the hum.
    """
    _check_length(num_samples)
    f0 = float(fundamental) if fundamental is not None else float(rng.choice([50.0, 60.0]))
    t = np.arange(num_samples) / sample_rate
    n_harm = int(rng.integers(num_harmonics[0], num_harmonics[1] + 1))
    slope = rng.uniform(0.5, 1.2)
    x = np.zeros(num_samples, dtype=np.float64)
    for h in range(1, n_harm + 1):
        if h * f0 >= 0.45 * sample_rate:
            break
        amp = 1.0 if h == 1 else min(1.0, h**-slope * 10 ** (rng.uniform(-3, 3) / 20))
        x += amp * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
    if rng.random() < whine_probability:
        fw = rng.uniform(1000.0, min(6000.0, 0.4 * sample_rate))
        wobble = 0.01 * fw * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t)
        phase = 2 * np.pi * np.cumsum(fw + wobble) / sample_rate
        x += rng.uniform(0.1, 0.3) * np.sin(phase + rng.uniform(0, 2 * np.pi))
    floor = colored_noise(num_samples, rng, 1.0, sample_rate).astype(np.float64)
    x += floor * np.sqrt(np.mean(x**2)) * 10 ** (-40 / 20)
    return _unit_rms(x)


def click_noise(
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    rate_hz: tuple[float, float] = (2.0, 12.0),
) -> np.ndarray:
    """Impulsive noise: sparse clicks at Poisson times (``rate_hz`` clicks per second).

    A click is a 1-6 ms noise burst decaying exponentially (time constant 0.3-2 ms),
    coloured by a resonance at 800-5000 Hz; its amplitude is log-normal (sigma 0.5).
    Half of the clicks (keyboard-like) get a weaker "release" click 60-180 ms later.
    Between clicks the signal is a white floor 60 dB below the mean click peak.
    """
    _check_length(num_samples)
    rate = rng.uniform(*rate_hz)
    n_clicks = max(1, int(rng.poisson(rate * num_samples / sample_rate)))
    times = np.sort(rng.integers(0, num_samples, size=n_clicks))
    x = np.zeros(num_samples, dtype=np.float64)
    for start in times:
        events = [(int(start), 1.0)]
        if rng.random() < 0.5:
            events.append((int(start + rng.uniform(0.06, 0.18) * sample_rate), rng.uniform(0.2, 0.6)))
        for onset, rel in events:
            length = int(rng.uniform(0.001, 0.006) * sample_rate)
            tau = rng.uniform(0.0003, 0.002) * sample_rate
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / tau)
            fc = rng.uniform(800.0, min(5000.0, 0.4 * sample_rate))
            r = 0.97
            a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r]
            burst = lfilter([1.0 - r], a, burst)
            burst *= rel * np.exp(rng.normal(0.0, 0.5)) / (np.max(np.abs(burst)) + 1e-12)
            stop = min(num_samples, onset + length)
            if onset < num_samples:
                x[onset:stop] += burst[: stop - onset]
    x += rng.standard_normal(num_samples) * 10 ** (-60 / 20)
    return _unit_rms(x)


def make_noise(
    kind: str,
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    babble_talkers: SpeechSource | None = None,
) -> np.ndarray:
    """Dispatch to the generator of ``kind`` (one of :data:`NOISE_TYPES`)."""
    if kind == "babble":
        if babble_talkers is None:
            raise ValueError("babble noise needs babble_talkers (signals or a callable)")
        return babble_noise(num_samples, rng, babble_talkers, sample_rate)
    generators = {
        "white": white_noise,
        "pink": pink_noise,
        "brown": brown_noise,
        "modulated": modulated_noise,
        "hum": hum_noise,
        "clicks": click_noise,
    }
    if kind not in generators:
        raise ValueError(f"unknown noise type {kind!r}; known: {', '.join(NOISE_TYPES)}")
    return generators[kind](num_samples, rng, sample_rate)


def measure_snr(speech: np.ndarray, noise: np.ndarray, sample_rate: int = 16000) -> float:
    """SNR in dB by this module's definition: active speech power over mean noise power."""
    return 10.0 * np.log10(active_power(speech, sample_rate) / np.mean(np.square(noise, dtype=np.float64)))


def mix_at_snr(
    speech: np.ndarray, noise: np.ndarray, snr_db: float, sample_rate: int = 16000
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so that ``measure_snr(speech, scaled_noise) == snr_db``; return ``(noisy, scaled_noise)``.

    ``speech`` and ``noise`` are ``[T]`` of equal length; the speech is not changed, so
    ``noisy == speech + scaled_noise``. Both outputs are float32. Use
    :func:`peak_normalize` afterwards to keep the mixture from clipping.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if speech.shape != noise.shape or speech.ndim != 1:
        raise ValueError(f"speech and noise must be 1-D of equal length, got {speech.shape} and {noise.shape}")
    p_speech = active_power(speech, sample_rate)
    p_noise = float(np.mean(noise**2))
    if p_speech <= 0 or p_noise <= 0:
        raise ValueError("speech or noise is silent; SNR is undefined")
    scaled = noise * np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (speech + scaled).astype(np.float32), scaled.astype(np.float32)


def peak_normalize(*signals: np.ndarray, peak: float = 0.9) -> tuple[np.ndarray, ...]:
    """Scale all ``signals`` by one common factor so that none exceeds ``|x| <= peak``.

    Signals already within the limit are returned unchanged (the factor is never above
    1), so ratios between them (SNR, ``noisy = speech + noise``) are kept.
    """
    largest = max(float(np.max(np.abs(s))) if np.size(s) else 0.0 for s in signals)
    factor = peak / largest if largest > peak else 1.0
    return tuple((np.asarray(s, dtype=np.float64) * factor).astype(np.float32) for s in signals)


def sample_snr(rng: np.random.Generator, snr_range: tuple[float, float] = (-5.0, 15.0)) -> float:
    """An SNR drawn uniformly from ``snr_range`` (dB), rounded to 0.01 dB."""
    lo, hi = snr_range
    if lo > hi:
        raise ValueError(f"snr_range low > high: {snr_range}")
    return round(float(rng.uniform(lo, hi)), 2)

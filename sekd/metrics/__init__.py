"""Intrusive quality metrics, per utterance: ``METRICS[name](ref, est, rate) -> float``.

- ``pesq_wb``: PESQ wide-band, ITU-T P.862.2 (``pesq`` package), MOS-LQO 1.04-4.64.
- ``pesq_nb``: PESQ narrow-band, ITU-T P.862 (MOS-LQO), as many older SE papers report.
- ``stoi`` / ``estoi``: (extended) short-time objective intelligibility (``pystoi``).
- ``sisdr``: scale-invariant SDR in dB (Le Roux et al. 2019), means removed.
- ``sdr``: BSS-Eval SDR in dB (Vincent et al. 2006) for one source, as ``mir_eval``'s
  ``bss_eval_sources`` computes it: the estimate is projected onto the reference filtered by
  any 512-tap FIR filter; SDR = energy of that projection / energy of the rest.
- ``segsnr``: segmental SNR in dB as in Loizou's composite.m (``sekd.metrics.composite``,
  which also has LLR, WSS and the composite CSIG/CBAK/COVL).

Not of this form: ``sekd.metrics.dnsmos`` (DNSMOS P.835/P.808, non-intrusive, optional
extra), ``sekd.metrics.l3das23`` (L3DAS23 task-1 metric, needs an ASR model) and
``sekd.metrics.verification`` (EER, minDCF from trial scores).

All enhancement metrics take mono float arrays of equal length at ``rate`` Hz. PESQ needs 8 or 16 kHz.
Where a metric is undefined it raises ``ValueError`` rather than return a number (the scorer
records NaN, counted as a failure): every one for a silent reference (peak below ``SILENCE``;
PESQ finds no utterance), and SI-SDR, SDR and (e)STOI also for a silent estimate (a ratio or
correlation of nothing: 0 dB, -inf dB or 0 would read as scores). segSNR of a silent
estimate is defined (the noise is the reference), PESQ fails on it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

SILENCE = 1e-6  # peak amplitude below which a signal is silent (-120 dBFS, under 16-bit's step)


def require_sound(ref: np.ndarray, est: np.ndarray | None = None) -> None:
    """``ValueError`` when the reference (and, if given, the estimate) is silent: the metric is undefined."""
    for name, x in (("reference", ref), ("estimate", est)):
        if x is not None and not np.max(np.abs(x), initial=0.0) >= SILENCE:
            raise ValueError(f"silent {name}: undefined")


def sisdr(ref: np.ndarray, est: np.ndarray, rate: int = 16000, eps: float = 1e-8) -> float:
    ref = np.asarray(ref, dtype=np.float64) - np.mean(ref)
    est = np.asarray(est, dtype=np.float64) - np.mean(est)
    require_sound(ref, est)
    target = np.dot(est, ref) / (np.dot(ref, ref) + eps) * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def sdr(ref: np.ndarray, est: np.ndarray, rate: int = 16000, taps: int = 512) -> float:
    from scipy.linalg import solve_toeplitz
    from scipy.signal import fftconvolve

    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    require_sound(ref, est)
    # Gram matrix of the reference's shifts (Toeplitz: its autocorrelation at lags 0..taps-1)
    # and their inner products with the estimate; both signals zero-padded by taps - 1.
    auto = fftconvolve(ref, ref[::-1])[len(ref) - 1:len(ref) - 1 + taps]
    cross = fftconvolve(est, ref[::-1])[len(ref) - 1:len(ref) - 1 + taps]
    if auto[0] <= 0:
        raise ValueError("silent reference: undefined")
    auto = auto.copy()
    auto[0] *= 1 + 1e-10  # keeps the solve defined for a periodic or band-limited reference
    coef = solve_toeplitz(auto, cross)
    proj = fftconvolve(ref, coef)  # length len + taps - 1
    resid = -proj
    resid[:len(est)] += est
    return float(10 * np.log10(np.sum(proj ** 2) / max(np.sum(resid ** 2), 1e-20)))


def pesq_wb(ref: np.ndarray, est: np.ndarray, rate: int = 16000) -> float:
    from pesq import pesq

    if rate != 16000:
        raise ValueError(f"PESQ-WB needs 16 kHz audio, got {rate} Hz")
    return float(pesq(rate, ref, est, "wb"))


def pesq_nb(ref: np.ndarray, est: np.ndarray, rate: int = 16000) -> float:
    from pesq import pesq

    if rate not in (8000, 16000):
        raise ValueError(f"PESQ-NB needs 8 or 16 kHz audio, got {rate} Hz")
    return float(pesq(rate, ref, est, "nb"))


def stoi(ref: np.ndarray, est: np.ndarray, rate: int = 16000) -> float:
    from pystoi import stoi as _stoi

    require_sound(ref, est)
    return float(_stoi(ref, est, rate, extended=False))


def estoi(ref: np.ndarray, est: np.ndarray, rate: int = 16000) -> float:
    from pystoi import stoi as _stoi

    require_sound(ref, est)
    return float(_stoi(ref, est, rate, extended=True))


def segsnr(ref: np.ndarray, est: np.ndarray, rate: int = 16000) -> float:
    from sekd.metrics.composite import segsnr as _segsnr

    require_sound(ref)
    return _segsnr(ref, est, rate)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "pesq_wb": pesq_wb,
    "pesq_nb": pesq_nb,
    "stoi": stoi,
    "estoi": estoi,
    "sisdr": sisdr,
    "sdr": sdr,
    "segsnr": segsnr,
}

# How the report names them.
DISPLAY = {"pesq_wb": "PESQ-WB", "pesq_nb": "PESQ-NB", "stoi": "STOI", "estoi": "eSTOI", "sisdr": "SI-SDR",
           "sdr": "SDR", "segsnr": "segSNR",
           "csig": "CSIG", "cbak": "CBAK", "covl": "COVL", "llr": "LLR", "wss": "WSS",
           "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL",
           "dnsmos_p808": "DNSMOS P.808", "wer": "WER", "l3das23": "L3DAS23",
           "eer": "EER (%)", "mindcf_0.01": "minDCF (0.01)", "mindcf_0.05": "minDCF (0.05)"}

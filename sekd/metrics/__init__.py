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

from dataclasses import dataclass
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
    auto = fftconvolve(ref, ref[::-1])[len(ref) - 1 : len(ref) - 1 + taps]
    cross = fftconvolve(est, ref[::-1])[len(ref) - 1 : len(ref) - 1 + taps]
    if auto[0] <= 0:
        raise ValueError("silent reference: undefined")
    auto = auto.copy()
    auto[0] *= 1 + 1e-10  # keeps the solve defined for a periodic or band-limited reference
    coef = solve_toeplitz(auto, cross)
    proj = fftconvolve(ref, coef)  # length len + taps - 1
    resid = -proj
    resid[: len(est)] += est
    return float(10 * np.log10(np.sum(proj**2) / max(np.sum(resid**2), 1e-20)))


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


@dataclass(frozen=True)
class Metric:
    """What the scorer and the report know of a metric: one row of ``TABLE``."""

    name: str
    display: str  # how tables and charts name it
    higher_is_better: bool = True
    digits: int = 3  # decimals in the report
    min_gap: float = 0.02  # a teacher-baseline gap below this is too small to share out (report)
    function: Callable[[np.ndarray, np.ndarray, int], float] | None = None  # per utterance (ref, est, rate)
    group: str | None = None  # computed together with its group by sekd-score (composite, dnsmos, asr)
    task: str = "se"  # "sv": from trial scores (sekd-score-sv), not from audio


TABLE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("pesq_wb", "PESQ-WB", function=pesq_wb),
        Metric("pesq_nb", "PESQ-NB", function=pesq_nb),
        Metric("stoi", "STOI", min_gap=0.005, function=stoi),
        Metric("estoi", "eSTOI", min_gap=0.005, function=estoi),
        Metric("sisdr", "SI-SDR", digits=2, min_gap=0.2, function=sisdr),
        Metric("sdr", "SDR", digits=2, min_gap=0.2, function=sdr),
        Metric("segsnr", "segSNR", digits=2, min_gap=0.2, function=segsnr),
        Metric("csig", "CSIG", group="composite"),
        Metric("cbak", "CBAK", group="composite"),
        Metric("covl", "COVL", group="composite"),
        Metric("llr", "LLR", higher_is_better=False, min_gap=0.01, group="composite"),
        Metric("wss", "WSS", higher_is_better=False, digits=2, min_gap=0.5, group="composite"),
        Metric("dnsmos_sig", "DNSMOS SIG", group="dnsmos"),
        Metric("dnsmos_bak", "DNSMOS BAK", group="dnsmos"),
        Metric("dnsmos_ovrl", "DNSMOS OVRL", group="dnsmos"),
        Metric("dnsmos_p808", "DNSMOS P.808", group="dnsmos"),
        Metric("wer", "WER", higher_is_better=False, min_gap=0.005, group="asr"),
        Metric("l3das23", "L3DAS23", min_gap=0.005, group="asr"),
        Metric("eer", "EER (%)", higher_is_better=False, min_gap=0.1, task="sv"),
        Metric("mindcf_0.01", "minDCF (0.01)", higher_is_better=False, digits=4, min_gap=0.005, task="sv"),
        Metric("mindcf_0.05", "minDCF (0.05)", higher_is_better=False, digits=4, min_gap=0.005, task="sv"),
    )
}


def metric(name: str) -> Metric:
    """The row of ``name``; a name the table does not know (a user's own column) gets the defaults."""
    return TABLE.get(name) or Metric(name, name, min_gap=0.0)


# The per-utterance functions, and the names as tables show them (views of TABLE).
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    n: m.function for n, m in TABLE.items() if m.function is not None
}
DISPLAY: dict[str, str] = {n: m.display for n, m in TABLE.items()}

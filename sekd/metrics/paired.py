"""Paired confidence intervals of a system's gain over another on the same test utterances.

A KD student and its baseline student are scored on the same utterances, once per seed. The
gain of the KD student is the mean of the per-utterance differences ``D[s, u] = KD_s(u) -
base_s(u)`` (seed ``s`` of the KD student paired with seed ``s`` of its baseline: same
initialisation, same batches). Its 95 % interval comes from a two-way bootstrap that
resamples the seeds and the utterances independently, each with replacement::

    gain*_b = sum_{s,u} w_b[s] D[s, u] c_b[u],   w_b ~ Multinomial(S, 1/S) / S,  c_b ~ Multinomial(U, 1/U) / U

and takes the 2.5 and 97.5 percentiles of ``gain*``. Resampling utterances accounts for
what the test set happened to contain; resampling seeds for what a training run happened
to reach (with one seed the interval covers utterance variation only, and says less).
Utterances where either system's metric is undefined (NaN) in any seed are left out of the
pairing. The bootstrap is seeded, so a report is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedGain:
    mean: float  # mean of D over seeds and utterances
    low: float  # bounds of the interval
    high: float
    seeds: int
    utterances: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(diffs: np.ndarray, n_boot: int = 4000, level: float = 0.95, seed: int = 0) -> PairedGain:
    """``diffs [S, U]``: per-seed, per-utterance differences (better minus worse is positive)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"paired_bootstrap needs a non-empty [seeds, utterances] array, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("paired_bootstrap: differences must be finite (drop undefined utterances first)")
    s, u = d.shape
    rng = np.random.default_rng(seed)
    w = rng.multinomial(s, np.full(s, 1.0 / s), size=n_boot) / s  # [B, S]
    c = rng.multinomial(u, np.full(u, 1.0 / u), size=n_boot) / u  # [B, U]
    boot = np.einsum("bs,su,bu->b", w, d, c)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return PairedGain(float(d.mean()), float(low), float(high), s, u)


def paired_differences(kd: list[dict[str, float]], base: list[dict[str, float]], sign: float = 1.0) -> np.ndarray:
    """``[S, U]`` differences ``sign * (kd_s(u) - base_s(u))`` of seed-paired per-utterance scores
    (``{utt: value}`` per seed), over the utterances finite in every run of both systems."""
    if len(kd) != len(base) or not kd:
        raise ValueError(f"paired_differences: {len(kd)} runs against {len(base)}; pair them by seed")
    runs = kd + base
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    keys = [k for k in keys if all(np.isfinite(r[k]) for r in runs)]
    a = np.array([[r[k] for k in keys] for r in kd], dtype=np.float64).reshape(len(kd), len(keys))
    b = np.array([[r[k] for k in keys] for r in base], dtype=np.float64).reshape(len(base), len(keys))
    return sign * (a - b)

"""Speaker-verification metrics from trial scores: EER and minDCF (NIST SRE definitions).

``labels`` are 1 for target trials and 0 for non-target trials; higher scores mean "same
speaker". At threshold ``t`` a trial is accepted when ``score >= t``;
``P_miss(t)`` is the fraction of target trials rejected and ``P_fa(t)`` the fraction of
non-target trials accepted.

- EER: the error rate where ``P_miss == P_fa``, linearly interpolated between the two
  thresholds that bracket the crossing (as Kaldi's ``compute-eer`` and WeSpeaker report it).
- minDCF: ``min_t C_miss P_miss(t) p_target + C_fa P_fa(t) (1 - p_target)`` divided by
  ``min(C_miss p_target, C_fa (1 - p_target))`` (the normalised cost; VoxCeleb reports
  ``p_target`` 0.01 and 0.05 with ``C_miss = C_fa = 1``).
"""

from __future__ import annotations

import numpy as np


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, P_miss, P_fa)`` at every distinct score (plus one above the maximum)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_tar, n_non = int(labels.sum()), int((~labels).sum())
    if n_tar == 0 or n_non == 0:
        raise ValueError(f"need target and non-target trials, got {n_tar} and {n_non}")
    order = np.argsort(scores, kind="mergesort")
    s, lab = scores[order], labels[order]
    # Thresholds at each distinct score: everything strictly below is rejected.
    thresholds, first = np.unique(s, return_index=True)
    tar_below = np.concatenate([[0], np.cumsum(lab)])[first]
    non_below = np.concatenate([[0], np.cumsum(~lab)])[first]
    p_miss = np.append(tar_below / n_tar, 1.0)
    p_fa = np.append(1.0 - non_below / n_non, 0.0)
    return np.append(thresholds, np.inf), p_miss, p_fa


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (a fraction, not a percentage)."""
    _, p_miss, p_fa = error_rates(scores, labels)
    diff = p_miss - p_fa  # rises from <= 0 to >= 0 as the threshold rises
    i = int(np.argmax(diff >= 0))
    if i == 0 or diff[i] == 0:
        return float((p_miss[i] + p_fa[i]) / 2)
    # Interpolate between thresholds i-1 and i where P_miss - P_fa changes sign.
    w = diff[i] / (diff[i] - diff[i - 1])
    return float(w * p_miss[i - 1] + (1 - w) * p_miss[i] + w * p_fa[i - 1] + (1 - w) * p_fa[i]) / 2


def min_dcf(
    scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised minimum detection cost."""
    _, p_miss, p_fa = error_rates(scores, labels)
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))

"""Speaker verification building blocks: AAM-softmax, integrated gradients, trial scoring.

- :class:`~sekd.sv.aam.AAMSoftmax` — additive angular margin (ArcFace) classification loss.
- :func:`~sekd.sv.integrated_gradients.integrated_gradients` — Riemann-sum integrated gradients.
- :mod:`sekd.sv.scoring` — cosine scoring of trials and adaptive score normalisation (AS-norm).

The embedding extractor itself is a model: ``sekd.models.ecapa`` (registry name ``ecapa_tdnn``).
"""
from __future__ import annotations

from sekd.sv.aam import AAMSoftmax
from sekd.sv.integrated_gradients import integrated_gradients
from sekd.sv.scoring import as_norm, cohort_stats, cosine_matrix, cosine_score, score_trials

__all__ = ["AAMSoftmax", "integrated_gradients", "as_norm", "cohort_stats", "cosine_matrix", "cosine_score",
           "score_trials"]

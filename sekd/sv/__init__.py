"""Speaker verification building blocks: AAM-softmax, integrated gradients, trial scoring.

- :class:`~sekd.sv.aam.AAMSoftmax` — additive angular margin (ArcFace) classification loss.
- :func:`~sekd.sv.integrated_gradients.integrated_gradients` — Riemann-sum integrated gradients.
- :mod:`sekd.sv.scoring` — trial lists, cosine scoring of trials and adaptive score normalisation (AS-norm).
- :mod:`sekd.sv.embed` — embedding a data dir's utterances with a model; kaldiio ark/scp I/O.

The embedding extractor itself is a model: ``sekd.models.ecapa`` (registry name ``ecapa_tdnn``).
``AAMSoftmax`` is imported on first use, so the scorer (numpy and kaldiio only) starts without torch.
"""

from __future__ import annotations

from sekd.sv.integrated_gradients import integrated_gradients  # torch is imported inside
from sekd.sv.scoring import as_norm, cohort_stats, cosine_matrix, cosine_score, read_trials, score_trials

__all__ = [
    "AAMSoftmax",
    "integrated_gradients",
    "as_norm",
    "cohort_stats",
    "cosine_matrix",
    "cosine_score",
    "read_trials",
    "score_trials",
]


def __getattr__(name: str):
    if name == "AAMSoftmax":
        from sekd.sv.aam import AAMSoftmax

        return AAMSoftmax
    raise AttributeError(f"module 'sekd.sv' has no attribute {name!r}")

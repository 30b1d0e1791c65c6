"""Knowledge-distillation terms, registered by name, and the feature taps they read.

A KD term is an ``nn.Module`` (``KDTerm``) built from a config entry
``{name: <registry name>, weight: <float>, args: {...}}``. It declares the module
paths it needs from the student and the teacher (``student_taps`` /
``teacher_taps``); the training loop captures those features with forward hooks
(``sekd.distill.taps``) and calls the term with a ``KDContext``. Terms may own
trainable adapters; they train with the student and are not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sekd.registry import Registry


@dataclass
class KDContext:
    """Everything a KD term may read for one batch.

    Enhancement: ``noisy [B, C, T]``, ``clean [B, T]``, ``student_out``/``teacher_out [B, T]``;
    ``student_feats``/``teacher_feats`` map module paths to the captured outputs.

    Speaker verification: ``noisy`` is the input crop ``[B, 1, T]``, ``clean`` is None,
    ``student_out``/``teacher_out`` the embeddings ``[B, D_s]``/``[B, D_t]``; ``labels [B]``
    (speaker indices), ``student_logits [B, N]`` (margin-free AAM cosine logits ``s cos theta``
    of the student's head), ``teacher_logits [B, N]`` (the frozen teacher head's, None when the
    teacher checkpoint has no head for these speakers), ``teacher_model`` (the frozen teacher,
    eval mode, for terms that run it themselves, e.g. integrated gradients) and ``teacher_head``
    (its frozen AAM-softmax head or None), ``student_model`` (the student being trained, for terms
    that run some of its layers again, e.g. on segments), ``crop_ids [B]``
    (stable ids of the crops when ``data.crop_slots`` is set, else None: a term may cache
    teacher targets by them).
    """

    noisy: torch.Tensor
    clean: torch.Tensor | None
    student_out: torch.Tensor
    teacher_out: torch.Tensor
    student_feats: dict[str, Any] = field(default_factory=dict)
    teacher_feats: dict[str, Any] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    student_logits: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    teacher_model: nn.Module | None = None
    student_model: nn.Module | None = None
    teacher_head: nn.Module | None = None
    crop_ids: torch.Tensor | None = None


class KDTerm(nn.Module):
    """Base class of KD terms: ``forward(ctx) -> scalar loss``.

    ``needs_teacher``: False when the term, as configured, reads nothing of a teacher
    (``mtakd`` with ``teacher: false``): an ablation trains with it and no teacher.

    ``uses_teacher_output``: whether the term reads the teacher's forward pass on the batch
    (``teacher_out``, ``teacher_feats``, ``teacher_logits``); a speaker-verification run whose terms
    all run the teacher themselves (``imlkd``) skips that pass (``teacher_out`` is then None).
    """

    uses_teacher_output = True
    # False for a term built to need no teacher at all (an ablation, e.g. mtakd with teacher:
    # false): the trainer then runs it without a teacher checkpoint (teacher_out is None).
    needs_teacher = True

    def student_taps(self) -> list[str]:
        return []

    def teacher_taps(self) -> list[str]:
        return []

    def stats(self) -> dict[str, float]:
        """Running figures the trainer records per epoch (e.g. the cost of a teacher computation)."""
        return {}

    def forward(self, ctx: KDContext) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


KD_TERMS: Registry[type[KDTerm]] = Registry("KD method")
register_kd = KD_TERMS.register


def build_kd_term(name: str, **args: Any) -> KDTerm:
    return KD_TERMS.build(name, **args)


# Each import registers its terms (one file per method).
from sekd.distill import at, atkl, embedding_kd, fitnet, i2srf_tfckd, imlkd, logit_kd, mtakd, mvat, output, tfckd  # noqa: E402,F401

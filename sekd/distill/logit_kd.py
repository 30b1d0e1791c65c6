"""``logit_kd``: Hinton et al.'s knowledge distillation on the speaker-classification logits.

"Distilling the Knowledge in a Neural Network" (Hinton, Vinyals, Dean, 2015, arXiv 1503.02531),
applied to speaker embeddings as label-level KD (Wang et al., ICASSP 2019, "Knowledge
distillation for small foot-print deep speaker embedding")::

    L = T^2 * mean_b KL( softmax(z_t[b] / T) || softmax(z_s[b] / T) )

``z_s``, ``z_t`` are the margin-free AAM-softmax logits ``s cos theta`` (``s = 30``) of the
student's head and of the teacher's frozen head over the same training speakers
(``KDContext.student_logits`` / ``teacher_logits``); ``T^2`` keeps the gradient scale of the
soft targets comparable across temperatures (Hinton et al., Sec. 2).

Choices (the SV papers leave them open):

- the logits are the *margin-free* cosines: the margin is a training device of the classifier,
  not part of what the teacher believes;
- the teacher's head is the one saved in its checkpoint (``head``), frozen; a teacher trained
  on other speakers gives no logits and this term refuses to run;
- ``temperature`` 2 by default: with ``s = 30`` the teacher's posteriors on its training
  speakers are nearly one-hot at ``T = 1``.

Example (``conf/kd/logit_kd.yaml``)::

    kd:
      terms:
        - {name: logit_kd, weight: 1.0, args: {temperature: 2.0}}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sekd.distill import KDContext, KDTerm, register_kd


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * mean_b KL(softmax(t/T) || softmax(s/T))`` for ``[B, N]`` logits."""
    t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return temperature**2 * F.kl_div(s, t, log_target=True, reduction="batchmean")


@register_kd("logit_kd")
class LogitKD(KDTerm):
    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, ctx: KDContext) -> torch.Tensor:
        if ctx.student_logits is None:
            raise ValueError("logit_kd needs the student's speaker logits (a speaker-verification student)")
        if ctx.teacher_logits is None:
            raise ValueError(
                "logit_kd needs the teacher's speaker logits: the teacher checkpoint has no AAM head "
                "trained on this training set's speakers"
            )
        if ctx.student_logits.shape != ctx.teacher_logits.shape:
            raise ValueError(
                f"student logits {tuple(ctx.student_logits.shape)} and teacher logits "
                f"{tuple(ctx.teacher_logits.shape)} differ"
            )
        return hinton_kd(ctx.student_logits, ctx.teacher_logits, self.temperature)

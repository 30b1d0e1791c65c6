"""``at``: attention transfer (Zagoruyko & Komodakis, ICLR 2017, arXiv 1612.03928).

The activation-based spatial attention map of a feature ``A`` (``[B, C, T, F]``) is its
channel-pooled energy, flattened over the time-frequency plane and L2-normalised::

    Q(A) = vec( mean_c A_c^p ) / || vec( mean_c A_c^p ) ||_2          (p = 2)

    L = sum_i mean_{b, k} ( Q(S_i)[b, k] - Q(resize(T_i))[b, k] )^2

which is the official code's ``at_loss`` (szagoruyko/attention-transfer ``utils.py``:
squared difference averaged over batch and map elements); the paper's weight
``beta = 1000`` goes in the config's ``weight``. Maps are channel-free, so teacher and
student may have any channel counts; the teacher's map is interpolated to the student's
frames and bins where they differ (the official code needs equal spatial sizes). No
parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sekd.distill import KDContext, register_kd
from sekd.distill.features import FeatureKD, resize_to


def attention_map(x: torch.Tensor, size=None, p: float = 2.0) -> torch.Tensor:
    """``[B, C, T, F] -> [B, T' F']``: channel-pooled ``|x|^p``, resized to ``size``, L2-normalised."""
    energy = x.abs().pow(p).mean(1, keepdim=True)
    if size is not None:
        energy = resize_to(energy, size)
    return F.normalize(energy.flatten(1), dim=1, eps=1e-12)


@register_kd("at")
class AttentionTransferKD(FeatureKD):
    def __init__(
        self,
        student_layers: list[str],
        teacher_layers: list[str],
        student_layout: str = "BCFT",
        teacher_layout: str | None = None,
        p: float = 2.0,
    ) -> None:
        super().__init__(student_layers, teacher_layers, student_layout, teacher_layout)
        self.p = p

    def forward(self, ctx: KDContext) -> torch.Tensor:
        s_feats, t_feats = self.features(ctx)
        loss = s_feats[0].new_zeros(())
        for s, t in zip(s_feats, t_feats):
            q_s = attention_map(s, p=self.p)
            q_t = attention_map(t, s.shape[-2:], p=self.p)
            loss = loss + (q_s - q_t).pow(2).mean()
        return loss

"""``embedding_kd``: the student's speaker embedding regresses the teacher's.

Embedding-level KD as in Wang et al., ICASSP 2019 ("Knowledge distillation for small foot-print
deep speaker embedding", embedding-level KD with cosine or Euclidean distance) and Mingote et
al. 2020 ("Knowledge distillation and random erasing data augmentation for text-dependent
speaker verification")::

    distance: cosine   L = mean_b ( 1 - cos(A(e_s[b]), e_t[b]) )
    distance: mse      L = mean_b,d ( A(e_s[b])_d - e_t[b]_d )^2

``e_s [B, D_s]``, ``e_t [B, D_t]`` are the embeddings (``KDContext.student_out`` /
``teacher_out``; the teacher's detached). ``A`` is the identity when ``D_s == D_t`` and a
linear adapter ``D_s -> D_t`` (with bias) otherwise, created at the first batch and trained
with the student (dropped from the exported student).

Choices: cosine by default, because verification scores are cosines (the scale of ``e_s`` is
then free); ``adapter: always`` forces the linear map even for equal sizes, ``never`` makes a
size mismatch an error.

Example (``conf/kd/embedding_kd.yaml``)::

    kd:
      terms:
        - {name: embedding_kd, weight: 1.0, args: {distance: cosine}}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sekd.distill import KDContext, KDTerm, register_kd


@register_kd("embedding_kd")
class EmbeddingKD(KDTerm):
    def __init__(self, distance: str = "cosine", adapter: str = "auto") -> None:
        super().__init__()
        if distance not in ("cosine", "mse"):
            raise ValueError(f"distance must be cosine or mse, not {distance!r}")
        if adapter not in ("auto", "always", "never"):
            raise ValueError(f"adapter must be auto, always or never, not {adapter!r}")
        self.distance, self.adapter_mode = distance, adapter
        self.adapters = nn.ModuleDict()

    def _adapt(self, s: torch.Tensor, d_t: int) -> torch.Tensor:
        d_s = s.shape[-1]
        if d_s == d_t and self.adapter_mode != "always":
            return s
        if self.adapter_mode == "never":
            raise ValueError(f"student embeddings have {d_s} dimensions, the teacher's {d_t} (adapter: never)")
        if "linear" not in self.adapters:
            self.adapters["linear"] = nn.Linear(d_s, d_t).to(s.device, s.dtype)
        lin = self.adapters["linear"]
        if (lin.in_features, lin.out_features) != (d_s, d_t):
            raise ValueError(f"adapter made for {lin.in_features} -> {lin.out_features}, asked for {d_s} -> {d_t}")
        return lin(s)

    def forward(self, ctx: KDContext) -> torch.Tensor:
        t = ctx.teacher_out.detach().float()
        if t.dim() != 2 or ctx.student_out.dim() != 2:
            raise ValueError("embedding_kd takes [B, D] embeddings (a speaker-verification model)")
        s = self._adapt(ctx.student_out.float(), t.shape[-1])
        if self.distance == "cosine":
            return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
        return (s - t).pow(2).mean()

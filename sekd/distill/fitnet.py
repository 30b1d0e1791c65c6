"""``fitnet``: feature regression through adapters (Romero et al., ICLR 2015, "FitNets").

For each pair ``i`` of student feature ``S_i`` and teacher feature ``T_i`` (``[B, C, T, F]``
after ``sekd.distill.features``)::

    L = 1/N sum_i mean( (A_i(S_i) - resize(T_i))^2 )

``A_i`` is a 1x1 convolution from the student's channels to the teacher's (the FitNets
"regressor"; the paper uses a convolutional regressor on the guided layer), created at
the first batch and trained with the student; ``resize`` interpolates the teacher's
frames and bins to the student's (bilinear) when the two differ (other hop or FFT size).
The adapters are dropped from the exported student. FitNets' stage-wise pre-training of
the guided layers is not done: the term is added to the task loss from the first step,
as in most SE KD comparisons.

Example (``conf/kd/fitnet.yaml``)::

    kd:
      terms:
        - name: fitnet
          weight: 1.0
          args: {student_layers: [encoder.3, enhance], teacher_layers: [encoder.3, enhance],
                 student_layout: BCFT}
"""

from __future__ import annotations

import torch
from torch import nn

from sekd.distill import KDContext, register_kd
from sekd.distill.features import FeatureKD, resize_to


def lazy_conv1x1(modules: nn.ModuleDict, key: str, c_in: int, c_out: int, like: torch.Tensor) -> nn.Module:
    """The 1x1 conv adapter ``key`` of ``modules``, created on first use (the trainer runs one batch
    before it builds the optimizer, so the adapter trains with the student)."""
    if key not in modules:
        modules[key] = nn.Conv2d(c_in, c_out, 1).to(like.device, like.dtype)
    conv = modules[key]
    if conv.in_channels != c_in or conv.out_channels != c_out:
        raise ValueError(
            f"adapter {key}: made for {conv.in_channels} -> {conv.out_channels} channels, "
            f"now asked for {c_in} -> {c_out}"
        )
    return conv


@register_kd("fitnet")
class FitNetKD(FeatureKD):
    def __init__(
        self,
        student_layers: list[str],
        teacher_layers: list[str],
        student_layout: str = "BCFT",
        teacher_layout: str | None = None,
    ) -> None:
        super().__init__(student_layers, teacher_layers, student_layout, teacher_layout)
        self.adapters = nn.ModuleDict()

    def forward(self, ctx: KDContext) -> torch.Tensor:
        s_feats, t_feats = self.features(ctx)
        loss = s_feats[0].new_zeros(())
        for i, (s, t) in enumerate(zip(s_feats, t_feats)):
            adapter = lazy_conv1x1(self.adapters, str(i), s.shape[1], t.shape[1], s)
            loss = loss + (adapter(s) - resize_to(t, s.shape[-2:])).pow(2).mean()
        return loss / len(s_feats)

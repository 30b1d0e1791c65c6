"""``mtakd``: multi-task adaptive KD (J. Taiyuan Univ. Technol. 55(4):720-726, 2024; seed 003).

The paper (abstract only available) trains the student on several tasks at once -- the
ground truth, the teacher's prediction, and (here, optionally) the teacher's
intermediate features -- with (1) a loss that weights each time-frequency unit
differently and (2) adaptive balancing of the tasks "so that the uncertainty of the
teacher's prediction does not mislead the student". Choices made here:

**TF-unit weighted loss.** On compressed magnitude spectra (STFT 512 / hop 128, Hann,
compression ``c = 0.3``, common in SE losses)::

    l(y_hat, y) = sum_{t,f} w[t, f] (|Y_hat|^c - |Y|^c)^2 / sum_{t,f} w[t, f]
    w[t, f]     = ( |Y_clean[t, f]|^c / mean_{t,f} |Y_clean|^c )^gamma        (gamma = 1)

units that carry speech energy count more than near-silent ones (gamma = 0 gives the plain
MSE); the weights come from the clean reference and are the same for every task.

**Teacher confidence** (``teacher_confidence: true``): in the teacher task each unit is also
weighted by ``exp(-|T^c - Y^c| / mean|Y^c|)`` -- units where the teacher's estimate is far
from the clean speech count less, so an uncertain teacher does not pull the student away
from the ground truth.

**Adaptive balancing** (homoscedastic uncertainty, Kendall, Gal & Cipolla, CVPR 2018), one
learnt log-variance ``s_k`` per task::

    L = sum_k ( 0.5 exp(-s_k) l_k + 0.5 s_k ),   k in {ground truth, teacher, feature}

The tasks' losses are non-negative (as the formula requires). ``s_k`` start at 0 and train
with the student. ``teacher: false`` keeps the ground-truth task alone (one ``s_k``): the
no-teacher ablation (``conf/ablation/mtakd.yaml`` of the mini recipe), which tells what the
TF-unit weighted loss does on its own from what the teacher adds. The feature task
(``feature_layers``) is FitNets' adapter MSE
(``sekd.distill.fitnet``) on the listed layer pairs. The recipe keeps its SI-SNR task loss
next to this term (``task_weight``), as for every other KD method.
"""

from __future__ import annotations

import torch
from torch import nn

from sekd.distill import KDContext, KDTerm, register_kd
from sekd.distill.fitnet import FitNetKD


def compressed_mag(x: torch.Tensor, n_fft: int, hop: int, c: float) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    return (spec.real.pow(2) + spec.imag.pow(2) + 1e-12).pow(c / 2)


@register_kd("mtakd")
class MultiTaskAdaptiveKD(KDTerm):
    def __init__(
        self,
        n_fft: int = 512,
        hop: int = 128,
        compress: float = 0.3,
        gamma: float = 1.0,
        teacher_confidence: bool = True,
        adaptive: bool = True,
        feature_layers: dict | None = None,
        teacher: bool = True,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop, self.compress, self.gamma = n_fft, hop, compress, gamma
        self.teacher_confidence, self.adaptive = teacher_confidence, adaptive
        if not teacher and feature_layers:
            raise ValueError("feature_layers regress the teacher's features: they need teacher: true")
        self.feature = FitNetKD(**feature_layers) if feature_layers else None
        self.needs_teacher = bool(teacher)
        self.tasks = (
            ["ground_truth"] + (["teacher"] if teacher else []) + (["feature"] if self.feature is not None else [])
        )
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def student_taps(self) -> list[str]:
        return self.feature.student_taps() if self.feature is not None else []

    def teacher_taps(self) -> list[str]:
        return self.feature.teacher_taps() if self.feature is not None else []

    def task_losses(self, ctx: KDContext) -> torch.Tensor:
        """``[K]`` the tasks' losses (ground truth, teacher[, feature])."""
        mag = lambda x: compressed_mag(x, self.n_fft, self.hop, self.compress)  # noqa: E731
        est, clean = mag(ctx.student_out), mag(ctx.clean)
        level = clean.mean((1, 2), keepdim=True).clamp_min(1e-5)
        w = (clean / level).pow(self.gamma)
        gt = (w * (est - clean).pow(2)).sum((1, 2)) / w.sum((1, 2))
        losses = [gt.mean()]
        if not self.needs_teacher:  # the ablation: the ground-truth task alone
            return torch.stack(losses)
        teacher = mag(ctx.teacher_out.detach())
        wt = w * torch.exp(-(teacher - clean).abs() / level) if self.teacher_confidence else w
        losses.append(((wt * (est - teacher).pow(2)).sum((1, 2)) / wt.sum((1, 2)).clamp_min(1e-8)).mean())
        if self.feature is not None:
            losses.append(self.feature(ctx))
        return torch.stack(losses)

    def forward(self, ctx: KDContext) -> torch.Tensor:
        losses = self.task_losses(ctx)
        if not self.adaptive:
            return losses.sum()
        return (0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()

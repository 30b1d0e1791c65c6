"""``atkl``: Distil-DCCRN's attention transfer with KL divergence (Han et al., IEEE SPL 31, 2024,
arXiv 2408.04267).

What the paper fixes (abstract, and the authors' overview figure in rdhan3/Distil_DCCRN_demo):
a Uformer teacher (STFT hop 160) and a DCCRN student (hop 100); the six encoder layers
and the six decoder layers of the two networks are paired one to one (12 pairs);
attention maps are taken along the *time* and the *channel* dimension of each pair and
matched with KL divergence; an output-level SI-SNR term towards the teacher's waveform
is added (that is the ``output`` term, listed next to this one in ``conf/kd/atkl.yaml``).

What it leaves open, and the choice made here. For a feature ``A`` (``[B, C, T, F]``)::

    e_time[b, t] = mean_{c, f} A[b, c, t, f]^2        e_chan[b, c] = mean_{t, f} A[b, c, t, f]^2
    P(e) = softmax( sqrt(N) * e / ||e||_2 / tau )    over the N entries of the map

    L = 1/N_pairs sum_i [ KL(P_t^time || P_s^time) + KL(P_t^chan || P_s^chan(adapter)) ] * tau^2

- energy maps as in attention transfer (Zagoruyko & Komodakis), L2-normalised so the
  scale of a layer does not matter, scaled by ``sqrt(N)`` so entries are O(1) before the
  softmax whatever the map length, and a temperature ``tau`` (1.0) as in Hinton KD;
- frames: the teacher's time map is interpolated (linear) to the student's frame count
  (hop 160 vs 100 gives 1.6x more student frames) -- no parameters;
- channels: the student's feature goes through a 1x1 conv adapter to the teacher's channel
  count before its channel map is taken (created at the first batch, trained with the
  student, not exported); equal counts need no adapter;
- KL(teacher || student), summed over the map and averaged over the batch.

Example::

    - name: atkl
      weight: 1.0
      args: {student_layers: [encoder.0, ..., decoder.5], teacher_layers: [...], tau: 1.0}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.distill import KDContext, register_kd
from sekd.distill.features import FeatureKD, resize_1d
from sekd.distill.fitnet import lazy_conv1x1


def log_attention(energy: torch.Tensor, tau: float, length: int | None = None) -> torch.Tensor:
    """``[B, N]`` energies -> log-probabilities of the AT-normalised map at temperature ``tau``."""
    if length is not None:
        energy = resize_1d(energy, length)
    q = F.normalize(energy, dim=1, eps=1e-12) * math.sqrt(energy.shape[1])
    return F.log_softmax(q / tau, dim=1)


def kl_logp(log_p_t: torch.Tensor, log_p_s: torch.Tensor) -> torch.Tensor:
    """``KL(p_t || p_s)`` per map, averaged over the batch (both given as log-probabilities)."""
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()


@register_kd("atkl")
class ATKLKD(FeatureKD):
    def __init__(
        self,
        student_layers: list[str],
        teacher_layers: list[str],
        student_layout: str = "BCFT",
        teacher_layout: str | None = None,
        tau: float = 1.0,
        time: bool = True,
        channel: bool = True,
    ) -> None:
        super().__init__(student_layers, teacher_layers, student_layout, teacher_layout)
        if not (time or channel):
            raise ValueError("atkl needs the time map, the channel map or both")
        self.tau, self.time, self.channel = float(tau), time, channel
        self.adapters = nn.ModuleDict()

    def forward(self, ctx: KDContext) -> torch.Tensor:
        s_feats, t_feats = self.features(ctx)
        loss = s_feats[0].new_zeros(())
        for i, (s, t) in enumerate(zip(s_feats, t_feats)):
            if self.time:
                p_t = log_attention(t.pow(2).mean((1, 3)), self.tau, s.shape[2])
                loss = loss + kl_logp(p_t, log_attention(s.pow(2).mean((1, 3)), self.tau))
            if self.channel:
                if s.shape[1] != t.shape[1]:
                    s = lazy_conv1x1(self.adapters, str(i), s.shape[1], t.shape[1], s)(s)
                p_t = log_attention(t.pow(2).mean((2, 3)), self.tau)
                loss = loss + kl_logp(p_t, log_attention(s.pow(2).mean((2, 3)), self.tau))
        return loss * self.tau**2 / len(s_feats)

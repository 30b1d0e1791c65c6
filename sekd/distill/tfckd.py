"""``tfckd``: time-frequency calibrated KD, the distillation block of I2SRF-TFCKD (Cheng et al.,
arXiv 2506.13127; official demo JMCheng-SEU/I2RF-TFCKD-SE ``I2RF_TFCKD_demo.py``).

Every student layer ``i`` is matched with every teacher layer ``j`` of a set; how much each
pair counts is learnt ("calibration weights"), separately for a time and a frequency stream.

**Similarity distributions** (values). A feature ``A`` (``[B, C, T, F]``) is read as

- time stream: one vector per frame, ``v_t = vec(A[:, :, t, :])`` (C x F values);
- frequency stream: one vector per frequency band, ``u_k = vec(A[:, :, :, k])`` (C x T
  values), after interpolating the bins to ``bands`` (64) bands so that layers of any
  frequency resolution compare (``freq_mode: bins``); or, as the official demo does
  (``freq_mode: batch``), one vector per (frame, utterance), compared across the
  utterances of the batch at each frame;

then, for the rows ``r`` of either stream, ``S[r, r'] = (cos(v_r, v_r') + 1) / 2`` and
``P[r, :] = S[r, :] / sum_r' S[r, r']`` (a distribution per row; the demo's
``cosine_pairwise_similarities_perframe``). Time and frequency similarities do not
depend on the channel count or the bins, so no adapter is needed; a teacher with another
frame rate is interpolated to the student's frames first.

**Calibration weights** (keys and queries). Each row of a layer's ``P`` is interpolated to
``embed`` (32) entries and mapped by a per-layer MLP ``E -> 2E -> D`` (``D = 32``): queries for
the student layers, keys for the teacher layers (the demo embeds rows of raw Gram
matrices of a fixed length; rows of ``P`` of any length are used here, so the term works
for any utterance length). ``alpha[b, r, i, j] = softmax_j( q_i . k_j / sqrt(D) )``, over
the teacher layers (SemCKD's layer association, as in the demo).

**Divergence**: the symmetric (Jeffreys) KL of the demo's ``TF_SemCosineLoss``,
``J(p, q) = sum (p - q)(log p - log q)``, with logs guarded at 1e-8, per row:
``D[b, r, i, j] = J(P_t^j[b, r], P_s^i[b, r])``.

**Weighting** (``weighting``): ``own`` -- as the demo: each stream's divergences weighted by
its own calibration weights, ``L_s = sum_ij mean_{b,r} alpha_s D_s``; ``cross`` (default,
the paper's "dual-stream time-frequency cross-calibration ... performs cross-weighting"):
the time divergences are weighted by the frequency stream's weights and vice versa,
both averaged over rows to per-utterance weights ``abar[b, i, j]``:
``L = sum_ij mean_b ( abar_freq D_time_bar + abar_time D_freq_bar )``.
The block loss is ``(L_time + L_freq) / N_student_layers`` (the demo's normalisation).

Differences from the demo, all for correctness on any input: any batch size (the demo
fixes 8) and any number of frames (the demo fixes 10), logs guarded, MLP outputs
not normalised over the frame axis (a leftover in the demo's ``Normalize``), ``1/sqrt(D)``
scaling of the attention logits, and the frequency stream over frequency bands.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from sekd.distill import KDContext, register_kd
from sekd.distill.features import FeatureKD, resize_1d, resize_to

EPS = 1e-8


def row_similarity(v: torch.Tensor, rel_eps: float = 1e-4) -> torch.Tensor:
    """``[B, R, D]`` row vectors -> ``[B, R, R]``: cosine similarity mapped to [0, 1], rows summing to 1.

    Rows are normalised by ``sqrt(|v|^2 + rel_eps * mean |v|^2)``: a near-silent frame (zero-padded
    crops, pauses) gets a near-zero vector and a bounded gradient instead of ``1 / eps``.
    """
    energy = v.pow(2).sum(-1, keepdim=True)
    floor = rel_eps * energy.mean((1, 2), keepdim=True).detach() + 1e-12
    v = v * torch.rsqrt(energy + floor)
    s = (v @ v.transpose(1, 2) + 1) / 2
    return s / s.sum(-1, keepdim=True).clamp_min(EPS)


def tf_similarities(x: torch.Tensor, bands: int = 64, freq_mode: str = "bins") -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, C, T, F]`` -> (time ``[B, T, T]``, frequency ``[B, bands, bands]`` or ``[B, T, B]``)."""
    b, c, t, f = x.shape
    p_time = row_similarity(x.permute(0, 2, 1, 3).reshape(b, t, c * f))
    if freq_mode == "bins":
        xf = resize_to(x, (t, bands))
        p_freq = row_similarity(xf.permute(0, 3, 1, 2).reshape(b, bands, c * t))
    elif freq_mode == "batch":
        p_freq = row_similarity(x.permute(2, 0, 1, 3).reshape(t, b, c * f)).transpose(0, 1)  # [B, T, B]
    else:
        raise ValueError(f"freq_mode must be bins or batch, not {freq_mode!r}")
    return p_time, p_freq


def jeffreys(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Symmetric KL ``sum (p - q)(log p - log q)`` over the last dim."""
    return ((p - q) * (p.clamp_min(EPS).log() - q.clamp_min(EPS).log())).sum(-1)


class _RowEmbed(nn.Module):
    """Rows of a similarity matrix (any length) -> ``dim``-d embeddings: resize to ``width``, MLP."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, dim))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.mlp(resize_1d(p * p.shape[-1], self.width))  # rescaled so entries are O(1)


class CalibratedSet(nn.Module):
    """All-pairs calibrated distillation between ``n_student`` and ``n_teacher`` features.

    ``forward(s_feats, t_feats)`` takes ``[B, C, T, F]`` lists; teacher features are used
    detached for the distributions (values) and as given for the keys (so that modules
    producing them, e.g. I2SRF's teacher-side fusion, train through the keys as in the demo).
    """

    def __init__(self, n_student: int, n_teacher: int, bands: int = 64, freq_mode: str = "bins",
                 weighting: str = "cross", embed: int = 32, dim: int = 32) -> None:
        super().__init__()
        if weighting not in ("cross", "own"):
            raise ValueError(f"weighting must be cross or own, not {weighting!r}")
        if freq_mode not in ("bins", "batch"):
            raise ValueError(f"freq_mode must be bins or batch, not {freq_mode!r}")
        self.bands, self.freq_mode, self.weighting, self.dim = bands, freq_mode, weighting, dim
        streams = ("time", "freq")
        self.query = nn.ModuleDict({s: nn.ModuleList(_RowEmbed(embed, dim) for _ in range(n_student)) for s in streams})
        self.key = nn.ModuleDict({s: nn.ModuleList(_RowEmbed(embed, dim) for _ in range(n_teacher)) for s in streams})

    def weights_and_divergences(self, s_feats: list[torch.Tensor], t_feats: list[torch.Tensor]
                                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per stream (``time``, ``freq``): calibration weights and divergences, ``[B, R, Ns, Nt]`` each."""
        frames = s_feats[0].shape[2]
        t_feats = [resize_to(t, (frames, t.shape[-1])) for t in t_feats]
        s_sim = [tf_similarities(s, self.bands, self.freq_mode) for s in s_feats]
        t_sim = [tf_similarities(t, self.bands, self.freq_mode) for t in t_feats]
        weights, divergences = {}, {}
        for k, stream in enumerate(("time", "freq")):
            q = torch.stack([m(sim[k]) for m, sim in zip(self.query[stream], s_sim)], 2)  # [B, R, Ns, D]
            key = torch.stack([m(sim[k]) for m, sim in zip(self.key[stream], t_sim)], 2)  # [B, R, Nt, D]
            weights[stream] = torch.softmax(q @ key.transpose(-1, -2) / math.sqrt(self.dim), -1)
            divergences[stream] = torch.stack([torch.stack(
                [jeffreys(ts[k].detach(), ss[k]) for ts in t_sim], -1) for ss in s_sim], -2)
        return weights, divergences

    def forward(self, s_feats: list[torch.Tensor], t_feats: list[torch.Tensor]) -> torch.Tensor:
        weights, divergences = self.weights_and_divergences(s_feats, t_feats)
        if self.weighting == "own":
            loss = sum((weights[s] * divergences[s]).sum((-1, -2)).mean() for s in weights)
        else:
            w = {s: a.mean(1) for s, a in weights.items()}
            d = {s: v.mean(1) for s, v in divergences.items()}
            loss = (w["freq"] * d["time"] + w["time"] * d["freq"]).sum((-1, -2)).mean()
        return loss / len(s_feats)


@register_kd("tfckd")
class TFCKD(FeatureKD):
    """One calibrated set over all listed layers (the TFCKD block without I2SRF's sets and fusion)."""

    pairwise = False

    def __init__(self, student_layers: list[str], teacher_layers: list[str], student_layout: str = "BCTF",
                 teacher_layout: str | None = None, bands: int = 64, freq_mode: str = "bins",
                 weighting: str = "cross", embed: int = 32, dim: int = 32) -> None:
        super().__init__(student_layers, teacher_layers, student_layout, teacher_layout)
        self.block = CalibratedSet(len(student_layers), len(teacher_layers), bands, freq_mode, weighting, embed, dim)

    def forward(self, ctx: KDContext) -> torch.Tensor:
        return self.block(*self.features(ctx))

"""``tfckd``: time-frequency calibrated KD, the distillation block of I2SRF-TFCKD (Cheng et al.,
arXiv 2506.13127; official demo JMCheng-SEU/I2RF-TFCKD-SE ``I2RF_TFCKD_demo.py``, classes
``TF_calibration_block`` and ``TF_SemCosineLoss``).

Every student layer ``i`` is matched with every teacher layer ``j`` of a set; how much each
pair counts is learnt ("calibration weights", SemCKD's layer association), separately for a
"time" and a "frequency" stream. Source of each choice in brackets: [demo] the official demo
code, [paper] the paper's text, [sekd] sekd's own choice, with the reason.

**Rows** of a feature ``A`` (``[B, C, T, F]``), one vector per row ``r``:

- time stream [demo]: per utterance, one vector per frame, ``v_t = vec(A[b, :, t, :])``
  (C x F values); rows ``r = t``, entries over the frames ``t'``: ``[B, T, T]``;
- frequency stream, ``freq_mode: batch`` (default) [demo]: at each frame ``t``, one vector per
  utterance, ``u_b = vec(A[b, :, t, :])``, compared with the same frame of the *other
  utterances of the batch*: rows ``r = t`` of utterance ``b``, entries over the utterances
  ``b'``: ``[B, T, B]``. Despite its name this stream does not look at frequency bands;
  it needs a batch of at least 2 (with one utterance it is 0);
- frequency stream, ``freq_mode: bins`` [paper: "frequency"; sekd's reading of the title]:
  per utterance, one vector per frequency band, ``u_k = vec(A[b, :, :, k])`` (C x T values),
  after interpolating the bins to ``bands`` (64) bands so that layers of any frequency
  resolution compare: ``[B, bands, bands]``.

**Similarity distributions** (values) [demo ``cosine_pairwise_similarities_perframe``]:
``S[r, e] = (cos(v_r, v_e) + 1) / 2`` and ``P[r, :] = S[r, :] / sum_e S[r, e]``. They do not
depend on channel counts or bins, so no adapter is needed; a teacher with another frame
rate is interpolated to the student's frames first [sekd]. Vectors are normalised by
``sqrt(|v|^2 + 1e-4 mean |v|^2)`` [sekd: a near-silent frame gets a bounded gradient
instead of ``1 / eps``].

**Calibration weights** (queries and keys). Each row ``g_r`` of the layer's *raw Gram*
matrix ``G[r, e] = v_r . v_e`` (``calib_input: gram``, default) [demo: ``sim_t``/``sim_t_g``,
unnormalised ``bmm`` of the features] is interpolated to ``embed`` (32) entries [sekd: rows of
any length, the demo fixes them to its 10 frames / batch of 8] and mapped by a per-layer
MLP ``E -> 2E -> D`` (``D = dim = 32``) [demo: ``frame_MLPEmbed``, the same shape with
``E = D = T``; its ``freq_MLPEmbed`` has ``B -> 2B -> 2B``]: queries ``q`` for the student
layers, keys ``k`` for the teacher layers. The MLP outputs are L2-normalised
(``calib_norm``):

- ``rows`` (default) [demo: its ``Normalize`` (SemCKD's) sums over dim 1, which for the
  demo's ``[B, T, D]`` embeddings is the row axis: every embedding coordinate has unit
  norm over the rows of a matrix];
- ``vector``: every row's embedding has unit norm (SemCKD's intent for its 2-D embeddings;
  the logits are then cosines);
- ``none`` (sekd before issue 17): not normalised; the logits then grow with the
  features' scale and the softmax over teacher layers can collapse onto one layer.

``alpha[b, r, i, j] = softmax_j( q_i[b, r] . k_j[b, r] )`` [demo: no ``1/sqrt(D)``;
``scale_logits: true`` divides by ``sqrt(D)`` as sekd did before]. In the batch stream the
entries of a Gram row are sorted (descending) before the MLP [sekd: they are the other
utterances of the batch, in the loader's random order; the demo's ``Linear`` over them reads
that order, sorting makes the weights, and the loss, independent of the batch order].
``calib_input: similarity`` (sekd before issue 17) embeds the rows of ``P`` (times their
length) instead of ``G``. The term reports the mean entropy of ``alpha`` over the teacher
layers, divided by ``log N_teacher`` (1: uniform, 0: all weight on one layer), as
``time_entropy`` / ``freq_entropy`` in ``last_parts`` (logged by the trainer per step and
per epoch), so that collapse shows in the logs.

**Divergence** [demo ``TF_SemCosineLoss``]: the symmetric (Jeffreys) KL
``J(p, q) = sum_e (p - q)(log p - log q)`` per row, ``D[b, r, i, j] = J(P_t^j[b, r], P_s^i[b, r])``
(logs guarded at 1e-8 [sekd]).

**Weighting** (``weighting``):

- ``own`` (default) [demo]: each stream's divergences weighted by its own calibration
  weights, row by row: ``L_s = sum_ij mean_{b,r} alpha_s[b, r, i, j] D_s[b, r, i, j]``;
- ``cross`` [paper: "dual-stream time-frequency cross-calibration ... performs
  cross-weighting"; sekd's default before issue 17]: time divergences weighted by the
  frequency stream's weights and vice versa, both averaged over rows to per-utterance
  weights: ``L = sum_ij mean_b ( abar_freq Dbar_time + abar_time Dbar_freq )``.

The block loss is ``(L_time + L_freq) / N_student`` [demo].

**Stream balance** (``row_reduce``). sekd (``mean``, default) averages each stream over its
rows, as above. The demo sums the weighted divergences over the rows and then averages over
the entries of a row (``torch.mean(torch.sum(loss * w, dim=1), dim=[0, 1])``): the same for the
time stream (T rows of T entries), but T/B times the above for the batch stream (T rows of
B entries), so that the demo's frequency stream outweighs its time stream by T/B: 1.25 in the
demo (10 frames, batch 8), about 30 for 4 s crops at a 16 ms hop and batch 8. sekd's choice:
the balance of the streams should not depend on crop length and batch size.
``row_reduce: demo`` reproduces the demo's factor (loss of stream s times rows / entries).

Not taken from the demo: its fixed batch size (8) and frame count (10), unguarded logs.

Switches for sekd's behaviour before issue 17 (values reproduced exactly, a test checks):
``freq_mode: bins, weighting: cross, calib_input: similarity, calib_norm: none,
scale_logits: true``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.distill import KDContext, register_kd
from sekd.distill.features import FeatureKD, resize_1d, resize_to

EPS = 1e-8
FREQ_MODES = ("batch", "bins")
WEIGHTINGS = ("own", "cross")
CALIB_INPUTS = ("gram", "similarity")
CALIB_NORMS = ("rows", "vector", "none")
ROW_REDUCES = ("mean", "demo")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def row_similarity(v: torch.Tensor, rel_eps: float = 1e-4) -> torch.Tensor:
    """``[N, R, D]`` row vectors -> ``[N, R, R]``: cosine similarity mapped to [0, 1], rows summing to 1.

    Rows are normalised by ``sqrt(|v|^2 + rel_eps * mean |v|^2)``: a near-silent frame (zero-padded
    crops, pauses) gets a near-zero vector and a bounded gradient instead of ``1 / eps``.
    """
    energy = v.pow(2).sum(-1, keepdim=True)
    floor = rel_eps * energy.mean((1, 2), keepdim=True).detach() + 1e-12
    v = v * torch.rsqrt(energy + floor)
    s = (v @ v.transpose(1, 2) + 1) / 2
    return s / s.sum(-1, keepdim=True).clamp_min(EPS)


def stream_rows(x: torch.Tensor, bands: int = 64, freq_mode: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, C, T, F]`` -> the row vectors of the time stream ``[B, T, C*F]`` and of the frequency
    stream: ``[T, B, C*F]`` (``batch``: per frame, one row per utterance) or ``[B, bands, C*T]`` (``bins``)."""
    _check("freq_mode", freq_mode, FREQ_MODES)
    b, c, t, f = x.shape
    time = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
    if freq_mode == "batch":
        return time, time.transpose(0, 1)
    xf = resize_to(x, (t, bands))
    return time, xf.permute(0, 3, 1, 2).reshape(b, bands, c * t)


def _as_rows(m: torch.Tensor, freq_mode: str, stream: int) -> torch.Tensor:
    """A frequency-stream matrix of the batch mode, ``[T, B, B]``, as ``[B, T, B]`` (others unchanged)."""
    return m.transpose(0, 1) if stream == 1 and freq_mode == "batch" else m


def tf_similarities(x: torch.Tensor, bands: int = 64, freq_mode: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, C, T, F]`` -> distributions ``P``: time ``[B, T, T]``, frequency ``[B, T, B]`` (``batch``)
    or ``[B, bands, bands]`` (``bins``)."""
    rows = stream_rows(x, bands, freq_mode)
    return tuple(_as_rows(row_similarity(v), freq_mode, k) for k, v in enumerate(rows))  # type: ignore[return-value]


def gram_rows(x: torch.Tensor, bands: int = 64, freq_mode: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, C, T, F]`` -> raw Gram matrices ``v_r . v_e`` (float32), shaped as ``tf_similarities``;
    the batch stream's rows sorted in descending order (independent of the batch order)."""
    out = []
    for k, v in enumerate(stream_rows(x, bands, freq_mode)):
        v = v.float()
        g = _as_rows(v @ v.transpose(1, 2), freq_mode, k)
        if k == 1 and freq_mode == "batch":
            g = g.sort(-1, descending=True).values
        out.append(g)
    return out[0], out[1]


def jeffreys(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Symmetric KL ``sum (p - q)(log p - log q)`` over the last dim."""
    return ((p - q) * (p.clamp_min(EPS).log() - q.clamp_min(EPS).log())).sum(-1)


def weight_entropy(alpha: torch.Tensor) -> torch.Tensor | None:
    """Mean entropy of calibration weights ``[..., N_teacher]`` over the teacher layers, divided by
    ``log N_teacher`` (1: uniform, 0: one layer takes all); None for a single teacher layer."""
    n = alpha.shape[-1]
    if n < 2:
        return None
    return -(alpha * alpha.clamp_min(EPS).log()).sum(-1).mean() / math.log(n)


class _RowEmbed(nn.Module):
    """Rows of a ``[N, R, E]`` matrix (any ``E``) -> ``[N, R, dim]`` embeddings: resize to ``width``, MLP,
    L2 normalisation (``norm``: ``rows`` over dim 1 as the demo, ``vector`` over dim -1, ``none``)."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, dim))

    def forward(self, m: torch.Tensor, norm: str = "rows") -> torch.Tensor:
        e = self.mlp(resize_1d(m, self.width))
        if norm == "rows":
            return F.normalize(e, dim=1, eps=1e-12)
        if norm == "vector":
            return F.normalize(e, dim=-1, eps=1e-12)
        return e


class CalibratedSet(nn.Module):
    """All-pairs calibrated distillation between ``n_student`` and ``n_teacher`` features.

    ``forward(s_feats, t_feats)`` takes ``[B, C, T, F]`` lists; teacher features are used
    detached for the distributions (values) and as given for the keys (so that modules
    producing them, e.g. I2SRF's teacher-side fusion, train through the keys as in the demo).
    After each call ``last_parts`` holds detached tensors: the two streams' losses (``time``,
    ``freq``: the part whose divergences are of that stream) and the calibration weights'
    normalised entropies (``time_entropy``, ``freq_entropy``; absent with one teacher layer).
    """

    def __init__(
        self,
        n_student: int,
        n_teacher: int,
        bands: int = 64,
        freq_mode: str = "batch",
        weighting: str = "own",
        embed: int = 32,
        dim: int = 32,
        calib_input: str = "gram",
        calib_norm: str = "rows",
        scale_logits: bool = False,
        row_reduce: str = "mean",
    ) -> None:
        super().__init__()
        _check("freq_mode", freq_mode, FREQ_MODES)
        _check("weighting", weighting, WEIGHTINGS)
        _check("calib_input", calib_input, CALIB_INPUTS)
        _check("calib_norm", calib_norm, CALIB_NORMS)
        _check("row_reduce", row_reduce, ROW_REDUCES)
        self.bands, self.freq_mode, self.weighting, self.dim = bands, freq_mode, weighting, dim
        self.calib_input, self.calib_norm, self.scale_logits = calib_input, calib_norm, bool(scale_logits)
        self.row_reduce = row_reduce
        streams = ("time", "freq")
        self.query = nn.ModuleDict({s: nn.ModuleList(_RowEmbed(embed, dim) for _ in range(n_student)) for s in streams})
        self.key = nn.ModuleDict({s: nn.ModuleList(_RowEmbed(embed, dim) for _ in range(n_teacher)) for s in streams})
        self.last_parts: dict[str, torch.Tensor] = {}

    def _calib_inputs(self, x: torch.Tensor, sim: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if self.calib_input == "gram":
            return gram_rows(x, self.bands, self.freq_mode)
        out = [p * p.shape[-1] for p in sim]  # rows of P rescaled so entries are O(1)
        if self.freq_mode == "batch":
            out[1] = out[1].sort(-1, descending=True).values
        return tuple(out)

    def weights_and_divergences(
        self, s_feats: list[torch.Tensor], t_feats: list[torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per stream (``time``, ``freq``): calibration weights and divergences, ``[B, R, Ns, Nt]`` each."""
        frames = s_feats[0].shape[2]
        t_feats = [resize_to(t, (frames, t.shape[-1])) for t in t_feats]
        s_sim = [tf_similarities(s, self.bands, self.freq_mode) for s in s_feats]
        t_sim = [tf_similarities(t, self.bands, self.freq_mode) for t in t_feats]
        s_in = [self._calib_inputs(x, sim) for x, sim in zip(s_feats, s_sim)]
        t_in = [self._calib_inputs(x, sim) for x, sim in zip(t_feats, t_sim)]
        weights, divergences = {}, {}
        for k, stream in enumerate(("time", "freq")):
            q = torch.stack([m(x[k], self.calib_norm) for m, x in zip(self.query[stream], s_in)], 2)  # [B, R, Ns, D]
            key = torch.stack([m(x[k], self.calib_norm) for m, x in zip(self.key[stream], t_in)], 2)  # [B, R, Nt, D]
            logits = q @ key.transpose(-1, -2)
            if self.scale_logits:
                logits = logits / math.sqrt(self.dim)
            weights[stream] = torch.softmax(logits, -1)
            divergences[stream] = torch.stack(
                [torch.stack([jeffreys(ts[k].detach(), ss[k]) for ts in t_sim], -1) for ss in s_sim], -2
            )
        if self.row_reduce == "demo":  # the demo averages over the entries of a row, not over the rows
            rows, entries = s_sim[0][1].shape[-2:]
            divergences["freq"] = divergences["freq"] * (rows / entries)
        return weights, divergences

    def forward(self, s_feats: list[torch.Tensor], t_feats: list[torch.Tensor]) -> torch.Tensor:
        weights, divergences = self.weights_and_divergences(s_feats, t_feats)
        if self.weighting == "own":
            parts = {s: (weights[s] * divergences[s]).sum((-1, -2)).mean() for s in weights}
        else:
            w = {s: a.mean(1) for s, a in weights.items()}
            d = {s: v.mean(1) for s, v in divergences.items()}
            parts = {
                "time": (w["freq"] * d["time"]).sum((-1, -2)).mean(),
                "freq": (w["time"] * d["freq"]).sum((-1, -2)).mean(),
            }
        n = len(s_feats)
        self.last_parts = {s: v.detach() / n for s, v in parts.items()}
        for s, a in weights.items():
            h = weight_entropy(a.detach())
            if h is not None:
                self.last_parts[f"{s}_entropy"] = h
        return (parts["time"] + parts["freq"]) / n


def parts_to_floats(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Detached scalar tensors -> floats, with one device synchronisation."""
    if not parts:
        return {}
    values = torch.stack([v.float() for v in parts.values()]).tolist()
    return dict(zip(parts, values))


@register_kd("tfckd")
class TFCKD(FeatureKD):
    """One calibrated set over all listed layers (the TFCKD block without I2SRF's sets and fusion).

    ``last_parts`` (logged by the trainer as ``kd_tfckd_<part>``): ``time``, ``freq`` (the
    streams' shares of the loss) and ``time_entropy``, ``freq_entropy`` (see the module docstring).
    """

    pairwise = False

    def __init__(
        self,
        student_layers: list[str],
        teacher_layers: list[str],
        student_layout: str = "BCTF",
        teacher_layout: str | None = None,
        bands: int = 64,
        freq_mode: str = "batch",
        weighting: str = "own",
        embed: int = 32,
        dim: int = 32,
        calib_input: str = "gram",
        calib_norm: str = "rows",
        scale_logits: bool = False,
        row_reduce: str = "mean",
    ) -> None:
        super().__init__(student_layers, teacher_layers, student_layout, teacher_layout)
        self.block = CalibratedSet(
            len(student_layers),
            len(teacher_layers),
            bands=bands,
            freq_mode=freq_mode,
            weighting=weighting,
            embed=embed,
            dim=dim,
            calib_input=calib_input,
            calib_norm=calib_norm,
            scale_logits=scale_logits,
            row_reduce=row_reduce,
        )
        self.last_parts: dict[str, float] = {}

    def forward(self, ctx: KDContext) -> torch.Tensor:
        loss = self.block(*self.features(ctx))
        self.last_parts = parts_to_floats(self.block.last_parts)
        return loss

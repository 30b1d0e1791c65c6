"""``i2srf_tfckd``: intra-set and inter-set recursive fusion with TF-calibrated KD (Cheng et al.,
arXiv 2506.13127, seed 000; official demo JMCheng-SEU/I2RF-TFCKD-SE ``I2RF_TFCKD_demo.py``:
``ABF_res``, ``intra_fusion``, ``TF_calibration_block``, ``TF_SemCosineLoss`` and its ``__main__``,
which wires them). Source of each choice in brackets: [demo], [paper], [sekd] (with the reason).

The layers of each network are grouped into correlated *sets* (for DPDCRN: the encoder
layers, the dual-path ("middle") blocks, the decoder layers) [paper, demo]::

    L = sum_sets TFCKD(S_set, T_set)                              intra-set, all pairs in a set
      + TFCKD({R_s(set)}, {R_t(set)})                             inter-set, over the representatives

all with weight 1 [demo: ``KD_loss = (mid_loss + enc_loss + dec_loss) + inter_loss``].
``TFCKD`` is ``sekd.distill.tfckd.CalibratedSet`` (time and frequency streams, learnt
calibration weights, symmetric KL, ``/ N_student``); its options (``freq_mode``,
``weighting``, ``calib_input``, ``calib_norm``, ``scale_logits``, ``row_reduce``, ``bands``)
apply to every block here, with the demo's choices by default (see that module).

**Representatives** by recursive fusion (ReviewKD's attention-based fusion, the demo's
``ABF_res`` chained by ``intra_fusion``), visiting the layers of a set ``A_1 .. A_n`` in the
order listed (``fusion_order: forward``, default)::

    x_k = PReLU(Norm(Conv1x1(A_k)))                    A_k to M = ``fusion_channels`` channels
    y_1 = x_1
    z   = sigmoid(Conv1x1([x_k, up(y_{k-1})]))         two maps, from the 2M channels (the gate)
    y_k = x_k * z_0 + up(y_{k-1}) * z_1                 k = 2 .. n
    R   = PReLU(Norm(Conv3x3(y_n)))                     M channels, at A_n's (T, F)

``up`` resizes to ``x_k``'s (T, F), nearest neighbour [demo; ``fusion_resize: bilinear``
was sekd's before issue 17]. The representative has the resolution of the *last* listed
layer. The demo's order [demo ``__main__``: ``enc_list[::-1]``, ``mid_list[::-1]`` and
``dec_list`` are reversed again inside ``intra_fusion.forward``] visits encoder ``enc0 ->
enc2``, middle ``mid0 -> mid3``, decoder ``dec2 -> dec0``: every representative ends at the
bottleneck resolution (64 bins). So list each set so that its last layer is the one next to
the bottleneck: ``encoder: [encoder.0, encoder.1, encoder.2]``, ``middle: [dual_path.mid.0, ...]``,
``decoder: [decoder.2, decoder.1, decoder.0]`` (the order of a set's layers does not matter
to its intra-set block: all pairs). ``fusion_order: backward`` runs from the last listed layer
to the first (sekd before issue 17: with encoder/decoder listed 0, 1, 2 its encoder
representative ended at ``encoder.0``, 129 bins, and its middle one at ``mid.0``); a set may
override the order with its own ``fusion_order`` key.

Channels [demo: ``mid_channel_stu = mid_channel_tea = 128``]: the fused maps ``x_k``/``y_k``
and so the gate have 128 channels on both sides (the gate reads 256); the demo's output conv
maps back to the channels of the layer where the fusion ends (64 student / 128 teacher).
Here ``fusion_channels`` (default 128, the demo's) is the width of both the fused maps and
the output, the same for student and teacher [sekd: the similarity distributions and Gram
matrices that TFCKD reads do not depend on the output's channel count]. The demo's
``Conv1x1`` before the norm has no bias; here it has one (it is cancelled by the instance
norm; kept so earlier runs reproduce).

Student and teacher each have their own fusion modules (created at the first batch, trained
with the student, dropped at export). As in the demo, the teacher's fusion reads detached
teacher features and trains only through the keys of the inter-set block: its
representatives are used detached as distillation targets (values).

``last_parts`` (logged by the trainer as ``kd_i2srf_tfckd_<part>``): each block's loss
(``<set>``, ``inter``) and its calibration weights' normalised entropies
(``<set>_time_entropy``, ``<set>_freq_entropy``, ``inter_*``; 1 = uniform over the teacher
layers, 0 = collapsed onto one; absent for a set with one teacher layer).

Switches for sekd's behaviour before issue 17: ``fusion_order: backward, fusion_resize:
bilinear, fusion_channels: 32`` and the ``tfckd`` ones (``freq_mode: bins, weighting: cross,
calib_input: similarity, calib_norm: none, scale_logits: true``), with the layer lists used
then (decoder listed 0, 1, 2); a test checks that they reproduce the earlier values.

Example (the sets of ``egs/mini/conf/kd/i2srf_tfckd.yaml``, at the official width)::

    - name: i2srf_tfckd
      weight: 1.0
      args:
        student_layout: BCTF
        fusion_channels: 128
        sets:
          encoder: {student: [encoder.0, encoder.1, encoder.2], teacher: [encoder.0, encoder.1, encoder.2]}
          middle:  {student: [dual_path.mid.0], teacher: [dual_path.mid.0, dual_path.mid.1]}
          decoder: {student: [decoder.2, decoder.1, decoder.0], teacher: [decoder.2, decoder.1, decoder.0]}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sekd.distill import KDContext, KDTerm, register_kd
from sekd.distill.features import check_layouts, resize_to, to_bctf
from sekd.distill.tfckd import CalibratedSet, parts_to_floats

FUSION_ORDERS = ("forward", "backward")
FUSION_RESIZES = ("nearest", "bilinear")


class RecursiveFusion(nn.Module):
    """Attention-based fusion of ``n`` features ``[B, C_k, T, F_k]`` into one ``[B, M, T, F]``: ``F`` is
    that of the last feature visited, the last listed (``order: forward``) or the first (``backward``)."""

    def __init__(self, n: int, channels: int, order: str = "forward", resize: str = "nearest") -> None:
        super().__init__()
        if order not in FUSION_ORDERS:
            raise ValueError(f"fusion_order must be one of {', '.join(FUSION_ORDERS)}, not {order!r}")
        if resize not in FUSION_RESIZES:
            raise ValueError(f"fusion_resize must be one of {', '.join(FUSION_RESIZES)}, not {resize!r}")
        self.order, self.resize = order, resize
        self.reduce = nn.ModuleList(
            nn.Sequential(nn.LazyConv2d(channels, 1), nn.InstanceNorm2d(channels, affine=True), nn.PReLU())
            for _ in range(n)
        )
        self.gate = nn.ModuleList(nn.Conv2d(2 * channels, 2, 1) for _ in range(n - 1))
        self.out = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels, affine=True), nn.PReLU()
        )

    def _up(self, y: torch.Tensor, size: torch.Size) -> torch.Tensor:
        if self.resize == "bilinear":
            return resize_to(y, size)
        return y if tuple(y.shape[-2:]) == tuple(size) else F.interpolate(y, size=tuple(size), mode="nearest")

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        n = len(feats)
        visit = list(range(n)) if self.order == "forward" else list(range(n - 1, -1, -1))
        y = self.reduce[visit[0]](feats[visit[0]])
        for k in visit[1:]:
            x = self.reduce[k](feats[k])
            y = self._up(y, x.shape[-2:])
            gate = self.gate[k - 1] if self.order == "forward" else self.gate[k]
            z = torch.sigmoid(gate(torch.cat([x, y], 1)))
            y = x * z[:, :1] + y * z[:, 1:]
        return self.out(y)


@register_kd("i2srf_tfckd")
class I2SRFTFCKD(KDTerm):
    def __init__(
        self,
        sets: dict[str, dict],
        student_layout: str = "BCTF",
        teacher_layout: str | None = None,
        fusion_channels: int = 128,
        inter_set: bool = True,
        fusion_order: str = "forward",
        fusion_resize: str = "nearest",
        bands: int = 64,
        freq_mode: str = "batch",
        weighting: str = "own",
        calib_input: str = "gram",
        calib_norm: str = "rows",
        scale_logits: bool = False,
        row_reduce: str = "mean",
    ) -> None:
        super().__init__()
        if not sets:
            raise ValueError("i2srf_tfckd needs at least one set of layers")
        for name, spec in sets.items():
            if not spec.get("student") or not spec.get("teacher"):
                raise ValueError(f"i2srf_tfckd set {name!r} needs non-empty 'student' and 'teacher' layer lists")
            unknown = set(spec) - {"student", "teacher", "fusion_order"}
            if unknown:
                raise ValueError(f"i2srf_tfckd set {name!r}: unknown keys {sorted(unknown)}")
        check_layouts(student_layout, teacher_layout or student_layout)
        self.sets = {name: {"student": list(s["student"]), "teacher": list(s["teacher"])} for name, s in sets.items()}
        orders = {name: s.get("fusion_order", fusion_order) for name, s in sets.items()}
        self.student_layout, self.teacher_layout = student_layout, teacher_layout or student_layout
        opts = dict(
            bands=bands,
            freq_mode=freq_mode,
            weighting=weighting,
            calib_input=calib_input,
            calib_norm=calib_norm,
            scale_logits=scale_logits,
            row_reduce=row_reduce,
        )
        self.intra = nn.ModuleDict(
            {n: CalibratedSet(len(s["student"]), len(s["teacher"]), **opts) for n, s in self.sets.items()}
        )
        self.inter_set = inter_set and len(self.sets) > 1
        if self.inter_set:
            self.fuse_student = nn.ModuleDict(
                {
                    n: RecursiveFusion(len(s["student"]), fusion_channels, orders[n], fusion_resize)
                    for n, s in self.sets.items()
                }
            )
            self.fuse_teacher = nn.ModuleDict(
                {
                    n: RecursiveFusion(len(s["teacher"]), fusion_channels, orders[n], fusion_resize)
                    for n, s in self.sets.items()
                }
            )
            self.inter = CalibratedSet(len(self.sets), len(self.sets), **opts)
        self.last_parts: dict[str, float] = {}

    def student_taps(self) -> list[str]:
        return [p for s in self.sets.values() for p in s["student"]]

    def teacher_taps(self) -> list[str]:
        return [p for s in self.sets.values() for p in s["teacher"]]

    def forward(self, ctx: KDContext) -> torch.Tensor:
        loss = ctx.student_out.new_zeros(())
        reps_s, reps_t = [], []
        parts: dict[str, torch.Tensor] = {}
        for name, spec in self.sets.items():
            s = [to_bctf(ctx.student_feats[p], self.student_layout) for p in spec["student"]]
            t = [to_bctf(ctx.teacher_feats[p], self.teacher_layout).detach() for p in spec["teacher"]]
            loss = loss + self.intra[name](s, t)
            parts.update(self._parts(name, self.intra[name]))
            if self.inter_set:
                reps_s.append(self.fuse_student[name](s))
                reps_t.append(self.fuse_teacher[name](t))
        if self.inter_set:
            loss = loss + self.inter(reps_s, reps_t)
            parts.update(self._parts("inter", self.inter))
        self.last_parts = parts_to_floats(parts)
        return loss

    @staticmethod
    def _parts(name: str, block: CalibratedSet) -> dict[str, torch.Tensor]:
        p = block.last_parts
        out = {name: p["time"] + p["freq"]}
        out.update({f"{name}_{k}": v for k, v in p.items() if k.endswith("_entropy")})
        return out

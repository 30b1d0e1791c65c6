"""``i2srf_tfckd``: intra-set and inter-set recursive fusion with TF-calibrated KD (Cheng et al.,
arXiv 2506.13127, seed 000; official demo JMCheng-SEU/I2RF-TFCKD-SE ``I2RF_TFCKD_demo.py``).

The layers of each network are grouped into correlated *sets* (for DPDCRN: the encoder
layers, the dual-path ("middle") blocks, the decoder layers)::

    L = sum_sets TFCKD(S_set, T_set)                              intra-set, all pairs in a set
      + TFCKD({R_s(set)}, {R_t(set)})                             inter-set, over the representatives

``TFCKD`` is ``sekd.distill.tfckd.CalibratedSet`` (time and frequency similarity streams,
learnt calibration weights, symmetric KL). The representative ``R(set)`` of a set is made
by recursive fusion (ReviewKD's attention-based fusion, as in the demo's ``ABF_res``), from
the last listed layer of the set to the first (list the layers shallow to deep and the
fusion runs deep to shallow)::

    x_k = PReLU(Norm(Conv1x1(A_k)))                    (A_k to ``fusion_channels`` channels)
    z   = sigmoid(Conv1x1([x_k, resize(y_{k+1})]))     two maps
    y_k = x_k * z_0 + resize(y_{k+1}) * z_1             (y of the deepest layer is x)
    R   = PReLU(Norm(Conv3x3(y_first)))

Student and teacher each have their own fusion modules (created at the first batch, trained
with the student, dropped at export). As in the demo, the teacher's fusion only trains
through the calibration keys of the inter-set block: its representatives are used
detached as distillation targets. The demo passes its lists in a fixed order and fixes
64 student / 128 teacher fusion channels; ``fusion_channels`` (default 32) is the same for
both sides here, since the similarity distributions do not depend on it.

Example (``conf/kd/i2srf_tfckd.yaml``)::

    - name: i2srf_tfckd
      weight: 1.0
      args:
        student_layout: BCTF
        sets:
          encoder: {student: [encoder.0, encoder.1, encoder.2], teacher: [encoder.0, encoder.1, encoder.2]}
          middle:  {student: [dual_path.mid.0], teacher: [dual_path.mid.0, dual_path.mid.1]}
          decoder: {student: [decoder.0, decoder.1], teacher: [decoder.0, decoder.1]}
"""
from __future__ import annotations

import torch
from torch import nn

from sekd.distill import KDContext, KDTerm, register_kd
from sekd.distill.features import check_layouts, resize_to, to_bctf
from sekd.distill.tfckd import CalibratedSet


class RecursiveFusion(nn.Module):
    """Attention-based fusion of ``n`` features ``[B, C_k, T, F_k]`` into one ``[B, M, T, F_0]``."""

    def __init__(self, n: int, channels: int) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(
            nn.Sequential(nn.LazyConv2d(channels, 1), nn.InstanceNorm2d(channels, affine=True), nn.PReLU())
            for _ in range(n))
        self.gate = nn.ModuleList(nn.Conv2d(2 * channels, 2, 1) for _ in range(n - 1))
        self.out = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels, affine=True),
                                 nn.PReLU())

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        y = self.reduce[-1](feats[-1])
        for k in range(len(feats) - 2, -1, -1):
            x = self.reduce[k](feats[k])
            y = resize_to(y, x.shape[-2:])
            z = torch.sigmoid(self.gate[k](torch.cat([x, y], 1)))
            y = x * z[:, :1] + y * z[:, 1:]
        return self.out(y)


@register_kd("i2srf_tfckd")
class I2SRFTFCKD(KDTerm):
    def __init__(self, sets: dict[str, dict[str, list[str]]], student_layout: str = "BCTF",
                 teacher_layout: str | None = None, fusion_channels: int = 32, inter_set: bool = True,
                 bands: int = 64, freq_mode: str = "bins", weighting: str = "cross") -> None:
        super().__init__()
        if not sets:
            raise ValueError("i2srf_tfckd needs at least one set of layers")
        for name, spec in sets.items():
            if not spec.get("student") or not spec.get("teacher"):
                raise ValueError(f"i2srf_tfckd set {name!r} needs non-empty 'student' and 'teacher' layer lists")
        check_layouts(student_layout, teacher_layout or student_layout)
        self.sets = {name: {"student": list(s["student"]), "teacher": list(s["teacher"])} for name, s in sets.items()}
        self.student_layout, self.teacher_layout = student_layout, teacher_layout or student_layout
        opts = dict(bands=bands, freq_mode=freq_mode, weighting=weighting)
        self.intra = nn.ModuleDict({n: CalibratedSet(len(s["student"]), len(s["teacher"]), **opts)
                                    for n, s in self.sets.items()})
        self.inter_set = inter_set and len(self.sets) > 1
        if self.inter_set:
            self.fuse_student = nn.ModuleDict({n: RecursiveFusion(len(s["student"]), fusion_channels)
                                               for n, s in self.sets.items()})
            self.fuse_teacher = nn.ModuleDict({n: RecursiveFusion(len(s["teacher"]), fusion_channels)
                                               for n, s in self.sets.items()})
            self.inter = CalibratedSet(len(self.sets), len(self.sets), **opts)

    def student_taps(self) -> list[str]:
        return [p for s in self.sets.values() for p in s["student"]]

    def teacher_taps(self) -> list[str]:
        return [p for s in self.sets.values() for p in s["teacher"]]

    def forward(self, ctx: KDContext) -> torch.Tensor:
        loss = ctx.student_out.new_zeros(())
        reps_s, reps_t = [], []
        for name, spec in self.sets.items():
            s = [to_bctf(ctx.student_feats[p], self.student_layout) for p in spec["student"]]
            t = [to_bctf(ctx.teacher_feats[p], self.teacher_layout).detach() for p in spec["teacher"]]
            loss = loss + self.intra[name](s, t)
            if self.inter_set:
                reps_s.append(self.fuse_student[name](s))
                reps_t.append(self.fuse_teacher[name](t))
        if self.inter_set:
            loss = loss + self.inter(reps_s, reps_t)
        return loss

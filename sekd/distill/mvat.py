"""``mvat``: multi-view attention transfer (Shin et al., Interspeech 2022, arXiv 2208.10367).

MV-AT distils a time-domain MANNER teacher into a narrower MANNER student through the
multi-view attention (MA) blocks that both have: each block looks at its input through
three views -- channel attention, global attention across chunks, local attention
within chunks -- and the student learns to attend like the teacher in every view of
every block, "without additional parameters" (the abstract).

The paper's method section is not available in the sources searched; the choices made
here follow the abstract and attention transfer (Zagoruyko & Komodakis 2017), whose map
is width-free, so no adapter is needed between a wide teacher and a narrow student:

- the feature of a view is the output of that branch of the MA block
  (``<block>.branch_out.0`` channel, ``.1`` global, ``.2`` local; ``[B, C/3, T_block]``,
  see ``sekd/models/manner.py``);
- its attention map is the AT map over time, ``Q = vec(mean_c A_c^2) / ||.||_2``;
- ``L = sum_blocks sum_views mean_{b,t} (Q_s - Q_t)^2``, the teacher's map interpolated to
  the student's length when the two differ (equal depth, kernel and stride give equal
  lengths, as in the paper's MANNER-S students).

``transfer: maps`` transfers MANNER's attention maps themselves instead (the global view's
chunk-to-chunk attention and the local view's weights; see :class:`MultiViewATKD`):
``conf/kd/mvat_maps.yaml``. Which of the two the paper does is not known here; both are offered
and measured (issue 17).

Example (``conf/kd/mvat.yaml``)::

    - name: mvat
      weight: 70.0
      args: {student_blocks: [encoder.0.attention, decoder.2.attention], views: [channel, global, local]}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sekd.distill import KDContext, register_kd
from sekd.distill.at import AttentionTransferKD

VIEWS = {"channel": "branch_out.0", "global": "branch_out.1", "local": "branch_out.2"}
# The attention maps themselves (``transfer: maps``), as MANNER exposes them (sekd/models/manner.py).
MAPS = {"global": "global_.map", "local": "local.map"}


def view_paths(blocks: list[str], views: list[str], transfer: str = "features") -> list[str]:
    known = VIEWS if transfer == "features" else MAPS
    unknown = [v for v in views if v not in known]
    if unknown:
        why = (
            " (the channel view's map holds one weight per channel, and teacher and student have different"
            " channels with no correspondence between them: use transfer: features for it)"
            if transfer == "maps" and unknown[0] == "channel"
            else ""
        )
        raise ValueError(f"unknown MV-AT {transfer} view {unknown[0]!r}; known: {', '.join(known)}{why}")
    return [f"{block}.{known[v]}" for block in blocks for v in views]


def _resized(t: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """The teacher's map ``[B, *, P, K]`` at the student's last two sizes (bilinear) where they differ."""
    if t.shape[-2:] == size:
        return t
    lead = t.shape[:-2]
    return F.interpolate(t.reshape(-1, 1, *t.shape[-2:]), size=size, mode="bilinear").reshape(*lead, *size)


@register_kd("mvat")
class MultiViewATKD(AttentionTransferKD):
    """MV-AT on the views' features (``transfer: features``, the default) or on the views'
    attention maps (``transfer: maps``).

    ``maps``: the global view's chunk-to-chunk attention (``[B, m, H, P, P]``, rows summing to
    one) averaged over its ``m`` channels, which makes it width-free, and scaled by ``P`` (a
    uniform row is all ones, so the term does not shrink with the input length); the local
    view's per-frame weights (``[B, 1, P, L]``, sigmoid). ``L = sum_blocks sum_views mean (S -
    T)^2``, the teacher's map resized (bilinear) to the student's where they differ. The channel
    view has no width-free map, so ``maps`` takes ``views: [global, local]``.
    """

    def __init__(
        self,
        student_blocks: list[str],
        teacher_blocks: list[str] | None = None,
        views: tuple[str, ...] | list[str] | None = None,
        transfer: str = "features",
    ) -> None:
        if transfer not in ("features", "maps"):
            raise ValueError(f"mvat transfer must be 'features' or 'maps', not {transfer!r}")
        views = list(views if views is not None else (VIEWS if transfer == "features" else MAPS))
        super().__init__(
            view_paths(student_blocks, views, transfer),
            view_paths(teacher_blocks or student_blocks, views, transfer),
            student_layout="BCT",
        )
        self.transfer = transfer

    def forward(self, ctx: KDContext) -> torch.Tensor:
        if self.transfer == "features":
            return super().forward(ctx)
        loss = ctx.student_out.new_zeros(())
        for s_path, t_path in zip(self.student_layers, self.teacher_layers):
            s, t = ctx.student_feats[s_path], ctx.teacher_feats[t_path].detach()
            if s_path.endswith(MAPS["global"]):  # [B, m, H, P, P] -> width-free [B, H, P, P], x P
                s, t = s.mean(1) * s.shape[-1], t.mean(1) * t.shape[-1]
            loss = loss + (s - _resized(t, s.shape[-2:])).pow(2).mean()
        return loss

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

Example (``conf/kd/mvat.yaml``)::

    - name: mvat
      weight: 70.0
      args: {student_blocks: [encoder.0.attention, decoder.2.attention], views: [channel, global, local]}
"""

from __future__ import annotations

from sekd.distill import register_kd
from sekd.distill.at import AttentionTransferKD

VIEWS = {"channel": "branch_out.0", "global": "branch_out.1", "local": "branch_out.2"}


def view_paths(blocks: list[str], views: list[str]) -> list[str]:
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown MV-AT view {unknown[0]!r}; known: {', '.join(VIEWS)}")
    return [f"{block}.{VIEWS[v]}" for block in blocks for v in views]


@register_kd("mvat")
class MultiViewATKD(AttentionTransferKD):
    def __init__(
        self,
        student_blocks: list[str],
        teacher_blocks: list[str] | None = None,
        views: tuple[str, ...] | list[str] = ("channel", "global", "local"),
    ) -> None:
        views = list(views)
        super().__init__(
            view_paths(student_blocks, views), view_paths(teacher_blocks or student_blocks, views), student_layout="BCT"
        )

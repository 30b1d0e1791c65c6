"""Additive angular margin softmax (AAM-softmax, ArcFace: Deng et al., CVPR 2019, arXiv 1801.07698).

With ``cos(theta_j) = <e / |e|, w_j / |w_j|>`` for class ``j`` and the true class ``y``:

    L = -log( exp(s psi(theta_y)) / (exp(s psi(theta_y)) + sum_{j != y} exp(s cos theta_j)) )

where ``psi(theta) = cos(theta + m)`` (margin ``m``, scale ``s``; the ECAPA-TDNN paper trains with
``m = 0.2``, ``s = 30``).

``cos(theta + m)`` is not monotonic in ``theta`` once ``theta + m > pi`` (it rises again), which would
reward pushing an embedding *away* from its class. Two usual fixes, chosen by ``easy_margin``:

- ``easy_margin=False`` (default; InsightFace, WeSpeaker, SpeechBrain): for ``theta > pi - m``
  (``cos theta < cos(pi - m)``) use ``psi = cos(theta) - m sin(m)`` instead, a linear continuation
  that stays below ``cos(theta + m)`` at the switch and keeps decreasing.
- ``easy_margin=True``: apply the margin only where ``cos theta > 0`` (``theta < pi / 2``), else
  ``psi = cos theta`` (so ``psi`` jumps back up at ``pi / 2``: no penalty for obtuse angles).

``sin theta = sqrt(max(1 - cos^2 theta, eps))``: the clamp keeps the gradient finite at ``cos = +-1``.
The cosines are computed in float32 even under autocast.

Usage::

    aam = AAMSoftmax(192, num_speakers)              # its weight trains with the model
    loss, logits = aam(embeddings, speaker_ids)      # logits = s * cos theta, no margin ([B, N])
    aam.logits(embeddings)                           # the same logits without a loss (eval / logit KD)
    aam.set_margin(0.1)                              # e.g. a margin warm-up schedule
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.registry import Registry

HEADS: Registry[type[nn.Module]] = Registry("head")  # speaker classifiers, named by the SV config's loss.name


@HEADS.register("aam")
class AAMSoftmax(nn.Module):
    """AAM-softmax head: ``[B, embed_dim]`` embeddings and ``[B]`` int labels -> ``(loss, logits [B, N])``.

    Args:
        embed_dim: embedding size.
        num_classes: number of training speakers ``N``.
        margin: additive angular margin ``m`` in radians (0.2).
        scale: logit scale ``s`` (30).
        easy_margin: how ``theta + m > pi`` is handled (see the module docstring).

    ``forward`` returns the mean cross-entropy with the margin on the true class and the *margin-free*
    scaled cosine logits ``s cos theta`` (what logit KD and accuracy should use).
    """

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        margin: float = 0.2,
        scale: float = 30.0,
        easy_margin: bool = False,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_classes = embed_dim, num_classes
        self.scale, self.easy_margin, self.eps = scale, easy_margin, eps
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Change ``m`` (and the constants derived from it)."""
        if not 0 <= margin < math.pi / 2:
            raise ValueError(f"margin must be in [0, pi/2), got {margin}")
        self.margin = float(margin)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.threshold = math.cos(math.pi - margin)  # cos theta below this means theta + m > pi
        self.linear_drop = math.sin(math.pi - margin) * margin  # = m sin m

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """``cos theta``, ``[B, embed_dim] -> [B, N]`` (float32)."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            return F.linear(F.normalize(emb.float(), dim=-1), F.normalize(self.weight.float(), dim=-1))

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """Margin-free logits ``s cos theta``, ``[B, N]``."""
        return self.scale * self.cosine(emb)

    def margin_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        """``psi(theta)`` for every class: ``cos(theta + m)`` with the ``theta + m > pi`` fix."""
        if self.margin == 0:
            return cosine
        sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(min=self.eps))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            return torch.where(cosine > 0, phi, cosine)
        return torch.where(cosine > self.threshold, phi, cosine - self.linear_drop)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cosine = self.cosine(emb)
        one_hot = F.one_hot(labels.long(), self.num_classes).to(cosine.dtype)
        margined = one_hot * self.margin_cosine(cosine) + (1.0 - one_hot) * cosine
        loss = F.cross_entropy(self.scale * margined, labels.long())
        return loss, self.scale * cosine

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_classes={self.num_classes}, margin={self.margin}, "
            f"scale={self.scale}, easy_margin={self.easy_margin}"
        )

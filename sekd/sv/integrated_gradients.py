"""Integrated gradients (Sundararajan et al., ICML 2017, arXiv 1703.01365), Riemann-sum approximation.

For a function ``F`` with one scalar per example, an input ``x`` and a baseline ``x'``:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da

approximated with ``m = steps`` intervals, ``a_k = k / m``:

- ``riemann_right``: ``(x_i - x'_i) (1/m) sum_{k=1..m} g_i(a_k)``  (the paper's Eq. 3)
- ``riemann_left``:  ``(x_i - x'_i) (1/m) sum_{k=0..m-1} g_i(a_k)``
- ``riemann_middle``: ``(x_i - x'_i) (1/m) sum_{k=0..m-1} g_i((k + 1/2) / m)``
- ``riemann_trapezoid`` (default): ``(x_i - x'_i) (1/m) [g_i(0)/2 + sum_{k=1..m-1} g_i(a_k) + g_i(1)/2]``

with ``g(a) = dF/dx`` at ``x' + a (x - x')``. Completeness: ``sum_i IG_i = F(x) - F(x')`` exactly for
the integral; the Riemann error is ``O(1/m)`` for left/right and ``O(1/m^2)`` for middle/trapezoid
(smooth ``F``). Trapezoid costs ``m + 1`` gradient evaluations, the others ``m``.

The interpolated inputs of ``chunk_size`` steps are stacked along the batch axis and evaluated in
one call of ``F`` (``[chunk_size * B, ...]``), so memory grows with ``chunk_size * B``. ``F`` must
treat examples independently: put models with BatchNorm in ``eval()`` mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch is imported where it is used, so ``import sekd.sv`` (the scorer) stays light
    import torch

METHODS = ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def riemann_points(steps: int, method: str = "riemann_trapezoid") -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, weights)`` of the quadrature of ``integral_0^1 g(a) da`` (weights sum to 1)."""
    import torch

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    k = torch.arange(steps, dtype=torch.float64)
    if method == "riemann_left":
        alphas, weights = k / steps, torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    elif method == "riemann_right":
        alphas, weights = (k + 1) / steps, torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    elif method == "riemann_middle":
        alphas, weights = (k + 0.5) / steps, torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    elif method == "riemann_trapezoid":
        alphas = torch.arange(steps + 1, dtype=torch.float64) / steps
        weights = torch.full((steps + 1,), 1.0 / steps, dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / steps
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return alphas, weights


def integrated_gradients(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    method: str = "riemann_trapezoid",
    chunk_size: int | None = 8,
    create_graph: bool = False,
) -> torch.Tensor:
    """Attributions of ``f`` at ``x``, the shape of ``x``.

    Args:
        f: maps a batch ``[N, ...]`` to one scalar per example, ``[N]`` (or ``[N, 1]``); e.g. the
            teacher's cosine logit of the true speaker, or its embedding projected on a direction.
        x: inputs ``[B, ...]`` (waveforms, filterbanks, ...).
        baseline: ``x'``, broadcastable to ``x``; zeros by default.
        steps: number of Riemann intervals ``m``.
        method: one of ``METHODS`` (see the module docstring).
        chunk_size: interpolation points per call of ``f`` (``None``: all at once).
        create_graph: keep the graph so the attributions can be differentiated further (w.r.t. the
            parameters of ``f``, or ``x`` and ``baseline``; double backprop). By default the result
            is detached and no gradient reaches ``f``'s parameters.

    The gradients are taken with ``torch.autograd.grad`` on the interpolated inputs only, so the
    ``.grad`` of ``f``'s parameters is left untouched. Works under ``torch.no_grad()`` callers too
    (gradients are enabled inside).
    """
    import torch

    if baseline is None:
        baseline = torch.zeros_like(x)
    baseline = baseline.to(dtype=x.dtype, device=x.device).expand_as(x)
    alphas, weights = riemann_points(steps, method)
    chunk = len(alphas) if chunk_size is None else max(1, int(chunk_size))
    batch = x.shape[0]
    if not create_graph:
        x, baseline = x.detach(), baseline.detach()
    delta = x - baseline
    total = torch.zeros_like(x)
    with torch.enable_grad():
        for start in range(0, len(alphas), chunk):
            a = alphas[start : start + chunk].to(dtype=x.dtype, device=x.device)
            w = weights[start : start + chunk].to(dtype=x.dtype, device=x.device)
            shape = (len(a),) + (1,) * x.dim()
            points = baseline.unsqueeze(0) + a.view(shape) * delta.unsqueeze(0)  # [k, B, ...]
            points = points.reshape((len(a) * batch,) + tuple(x.shape[1:]))
            if not points.requires_grad:
                points.requires_grad_(True)
            out = f(points)
            if out.dim() > 1:
                out = out.reshape(out.shape[0], -1)
                if out.shape[1] != 1:
                    raise ValueError(f"f must give one scalar per example, got shape {tuple(out.shape)}")
                out = out[:, 0]
            if out.shape[0] != points.shape[0]:
                raise ValueError(f"f gave {out.shape[0]} values for {points.shape[0]} inputs")
            (grads,) = torch.autograd.grad(out.sum(), points, create_graph=create_graph)
            grads = grads.reshape((len(a), batch) + tuple(x.shape[1:]))
            total = total + (w.view(shape) * grads).sum(dim=0)
    attributions = delta * total
    return attributions if create_graph else attributions.detach()

"""MANNER: paper sizes, shapes, attention-map taps, one training step, loss falls."""

from __future__ import annotations

import pytest
import torch

import sekd.models.manner  # noqa: F401  (registers "manner")
from sekd.distill.taps import FeatureTaps
from sekd.models import MODELS, build_model, count_parameters
from sekd.models.manner import CONFIGS, _ConvBN
from sekd.train.losses import SISNRLoss

from conftest import assert_gradients_everywhere, sisnr_steps

# hidden=12: with hidden=6 the 2-unit channel-attention MLPs can start with every ReLU unit
# dead (zero gradient), an artefact of the tiny width.
TINY = dict(hidden=12, depth=2, kernel_size=8, stride=4, segment_len=8)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("manner_base", 24.07e6),  # Park et al. 2022 / official code: 24,068,671 here
        ("manner_small", 21.25e6),  # MA blocks only in the deepest layers: 21,253,921 here
        ("manner_s_8.1gf", 24.07e6 / 15.4),  # MV-AT abstract: 15.4x fewer than base; 1,564,809 here
    ],
)
def test_paper_sizes(name, expected):
    n = count_parameters(build_model("manner", **CONFIGS[name]))
    assert abs(n - expected) / expected < 0.03, (name, n)


def test_registry_and_attributes():
    assert MODELS["manner"] is sekd.models.manner.MANNER
    model = build_model("manner", **TINY)
    assert model.causal is False and model.algorithmic_latency == -1
    assert model.sample_rate == 16000 and model.in_channels == 1
    with pytest.raises(ValueError, match="attention"):
        build_model("manner", attention="some")


@pytest.mark.parametrize("length", [1000, 1024, 1237, 3001])
def test_shapes(length):
    torch.manual_seed(0)
    model = build_model("manner", **TINY).eval()
    assert model.valid_length(length) >= length
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, length)
        assert torch.isfinite(y).all()
        assert torch.equal(model(x[:, 0]), y)  # [B, T] is read as one channel
        # batch items are independent in eval mode (per-utterance input normalisation)
        assert torch.allclose(model(x[1:]), y[1:], atol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paper_configs_run(name):
    model = build_model("manner", **CONFIGS[name]).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 1, 1601))
    assert y.shape == (1, 1601) and torch.isfinite(y).all()


def test_attention_maps_are_tappable():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).eval()
    b, length, seg = 2, 2000, TINY["segment_len"]
    stages = [f"encoder.{i}" for i in range(2)] + [f"decoder.{j}" for j in range(2)]
    paths = [f"{s}.attention.{v}.map" for s in stages for v in ("channel", "global_", "local")]
    paths += [f"{s}.attention.branch_out.{k}" for s in stages for k in range(3)]
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        model(torch.randn(b, 1, length))
    for s in stages:
        block = model.get_submodule(f"{s}.attention")
        m = block.branch_in[0][0].out_channels
        ch = taps.features[f"{s}.attention.channel.map"]
        gl = taps.features[f"{s}.attention.global_.map"]
        lo = taps.features[f"{s}.attention.local.map"]
        assert ch.shape == (b, m, 1) and ((ch > 0) & (ch < 1)).all()
        p = gl.shape[-1]
        assert gl.shape == (b, m, 1, p, p)
        assert torch.allclose(gl.sum(-1), torch.ones(()), atol=1e-5)
        assert lo.shape == (b, 1, p, seg) and ((lo > 0) & (lo < 1)).all()
        frames = taps.features[f"{s}.attention.branch_out.0"].shape[-1]
        assert p == (frames + seg) // (seg // 2) + 1  # one chunk of zero padding at both ends, 50 % overlap
        for k in range(3):
            assert taps.features[f"{s}.attention.branch_out.{k}"].shape == (b, m, frames)


def test_small_has_attention_only_in_deepest_layers():
    model = build_model("manner", **{**TINY, "depth": 3, "attention": "last"})
    assert [layer.attention is not None for layer in model.encoder] == [False, False, True]
    assert [layer.attention is not None for layer in model.decoder] == [True, False, False]


def test_one_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).train()
    clean = torch.randn(2, 1, 2000)
    noisy = clean + 0.5 * torch.randn_like(clean)
    loss = SISNRLoss()(model(noisy), clean[:, 0])
    loss.backward()
    assert_gradients_everywhere(model)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).train()
    t = torch.arange(2000) / 16000
    clean = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 660 * t)])[:, None]
    noisy = clean + 0.3 * torch.randn_like(clean)
    losses = sisnr_steps(model, noisy, clean[:, 0], 15, lr=3e-3)
    assert losses[-1] < losses[0] - 3.0, losses


def test_bn_momentum_sets_how_fast_eval_statistics_follow_training():
    """Official BasicConv BatchNorms keep momentum 0.01; ``bn_momentum`` changes them all.

    After 30 train-mode passes over one batch, a BatchNorm's running mean has moved
    1 - (1 - m)**30 of the way to the batch mean: 96 % with 0.1, 26 % with 0.01.
    """
    x = torch.randn(4, 4000) * 0.05

    def share_followed(momentum):
        torch.manual_seed(0)
        model = build_model("manner", hidden=3, depth=2, segment_len=8, bn_momentum=momentum).train()
        assert {m[1].momentum for m in model.modules() if isinstance(m, _ConvBN)} == {momentum}
        bn = model.encoder[0].attention.merge[1]
        seen = []
        bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean((0, 2))))
        with torch.no_grad():
            for _ in range(30):
                model(x)
        return (bn.running_mean / seen[-1]).mean().item()

    assert build_model("manner", hidden=3, depth=2, segment_len=8).encoder[0].attention.merge[1].momentum == 0.01
    assert share_followed(0.1) == pytest.approx(1 - 0.9**30, abs=0.02)
    assert share_followed(0.01) == pytest.approx(1 - 0.99**30, abs=0.02)


def test_fused_global_attention_equals_the_written_out_map():
    """Untapped, the global view runs the fused SDPA kernel; tapped (MV-AT), it writes the map out.
    Both give the same output and the same gradients (fixed weights, eval and train mode)."""
    torch.manual_seed(0)
    model = build_model("manner", hidden=6, depth=2, segment_len=8, head=2)
    x = torch.randn(2, 6000)
    paths = [name + ".map" for name, m in model.named_modules() if name.endswith("global_")]
    assert paths
    for train in (False, True):
        model.train(train)
        model.zero_grad()
        fused = model(x)
        fused.square().sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        with FeatureTaps(model, paths) as taps:
            written = model(x)
            written.square().sum().backward()
        assert set(taps.features) == set(paths)  # the maps were produced on the tapped run
        assert (fused - written).abs().max() <= 1e-5
        scale = max(g.abs().max().item() for g in grads)  # rounding noise is relative to the largest gradient
        for g, p in zip(grads, model.parameters()):
            assert (g - p.grad).abs().max() <= 1e-5 * scale


@pytest.mark.parametrize("size", [8, 32, 7])
@pytest.mark.parametrize("length", [5, 37, 100, 101])
def test_chunker_equals_unfold_and_overlap_add(size, length):
    """The reshape chunker (even sizes) gives F.unfold's chunks and the identity-kernel overlap-add."""
    import torch.nn.functional as F

    from sekd.models.manner import _Chunker

    x = torch.randn(2, 3, length)
    chunker, hop = _Chunker(size), size // 2
    ref = F.unfold(x.unsqueeze(-1), (size, 1), padding=(size, 0), stride=(hop, 1)).reshape(2, 3, size, -1)
    chunks = chunker.unfold(x)
    assert torch.equal(chunks, ref.transpose(2, 3))
    y = torch.randn_like(chunks)
    eye = torch.eye(size).unsqueeze(1)
    folded = F.conv_transpose1d(y.reshape(6, -1, size).transpose(1, 2), eye, stride=hop)
    expected = folded[:, 0, size : size + length].reshape(2, 3, -1) * (hop / size)
    assert torch.allclose(chunker.fold(y, length), expected, atol=1e-6)


def test_local_view_matmul_equals_the_depthwise_convolution():
    """The local view's banded-matrix depthwise conv equals running its Conv1d on each chunk."""
    from sekd.models.manner import LocalAttention

    torch.manual_seed(0)
    local = LocalAttention(5).eval()
    x = torch.randn(2, 5, 9, 32, requires_grad=True)
    out = local(x)
    b, m, p, n = x.shape
    y = local.depthwise(x.transpose(1, 2).reshape(b * p, m, n))  # the convolution, as before
    y = local.conv(torch.stack([y.amax(1), y.mean(1)], 1))
    ref = x * torch.sigmoid(y).reshape(b, p, 1, n).transpose(1, 2)
    assert (out - ref).abs().max() <= 1e-5
    (g,) = torch.autograd.grad(out.sum(), local.depthwise[0].weight)
    (g_ref,) = torch.autograd.grad(ref.sum(), local.depthwise[0].weight)
    assert torch.allclose(g, g_ref, atol=1e-4, rtol=1e-4)

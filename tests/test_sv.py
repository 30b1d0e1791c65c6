"""Speaker verification foundations: ECAPA-TDNN (sizes, shapes, filterbank), AAM-softmax,
integrated gradients (completeness), cosine scoring and AS-norm, embeddings through kaldiio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sekd.models import MODELS, SV_PRESETS, build_model, count_parameters
from sekd.sv import AAMSoftmax, as_norm, cohort_stats, cosine_score, integrated_gradients, score_trials
from sekd.sv.integrated_gradients import METHODS, riemann_points


def tiny_ecapa(**args) -> nn.Module:
    return build_model(
        "ecapa_tdnn",
        **{**dict(channels=32, mfa_channels=48, se_bottleneck=8, attention_bottleneck=8, embed_dim=16), **args},
    )


# --- ECAPA-TDNN -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset,expected",
    [
        ("ecapa_c1024", 14.65e6),  # WeSpeaker ECAPA_TDNN_GLOB_c1024, 192-d (without the final BN: 384 fewer)
        ("ecapa_c512", 6.19e6),  # WeSpeaker ECAPA_TDNN_GLOB_c512
        ("ecapa_c256", 3.33e6),  # sekd's smaller student (counted by hand from the layer sizes)
    ],
)
def test_paper_sizes(preset, expected):
    name, args = SV_PRESETS[preset]
    model = build_model(name, **args)
    n = count_parameters(model)
    assert abs(n - expected) / expected < 0.02, (preset, n)
    assert model.task == "sv" and model.sample_rate == 16000 and MODELS["ecapa_tdnn"].task == "sv"


def test_embedding_shapes_for_two_durations_and_gradients():
    torch.manual_seed(0)
    name, args = SV_PRESETS["ecapa_c512"]
    model = build_model(name, **args).eval()
    with torch.no_grad():
        for seconds in (2, 3):
            wav = 0.1 * torch.randn(2, seconds * 16000)
            emb = model(wav)
            assert emb.shape == (2, 192) and torch.isfinite(emb).all()
            assert torch.allclose(model(wav[:, None]), emb)  # [B, 1, T] is [B, T]
    tiny = tiny_ecapa().train()
    wav = (0.1 * torch.randn(3, 8000)).requires_grad_()
    feats = tiny.fbank(wav)
    assert feats.shape == (3, 80, tiny.num_frames(8000)) == (3, 80, 51)
    assert tiny.frame_features(feats).shape == (3, 48, 51)
    tiny(wav).pow(2).sum().backward()
    assert wav.grad is not None and all(p.grad is not None for p in tiny.parameters())
    for path in ("frontend", "layer1", "layer2", "layer3", "layer4", "mfa", "pooling", "pool_bn", "embedding"):
        tiny.get_submodule(path)


def _numpy_fbank(x: np.ndarray, mean_norm: bool = True) -> np.ndarray:
    """Independent reference: pre-emphasis, centred reflect-padded frames, periodic Hamming (400 of
    512), power spectrum, 80 HTK-mel triangles over 20-7600 Hz, log(. + 1e-6), mean over time removed."""
    y = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    y = np.pad(y, 256, mode="reflect")
    n_frames = 1 + (len(y) - 512) // 160
    win = np.zeros(512)
    win[56:456] = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([y[i * 160 : i * 160 + 512] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [T', 257]
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    pts = inv(np.linspace(mel(20), mel(7600), 82))
    hz = np.arange(257) * 8000 / 256
    bank = np.zeros((80, 257))
    for k in range(80):
        lo, c, hi = pts[k : k + 3]
        bank[k] = np.maximum(0, np.minimum((hz - lo) / (c - lo), (hi - hz) / (hi - c)))
    out = np.log(power @ bank.T + 1e-6).T  # [80, T']
    return out - out.mean(axis=1, keepdims=True) if mean_norm else out


def test_fbank_matches_numpy_reference_and_puts_1khz_where_the_mel_scale_says():
    from sekd.models.ecapa import Fbank

    t = np.arange(16000) / 16000
    rng = np.random.default_rng(0)
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(16000)
    ours = Fbank()(torch.tensor(x, dtype=torch.float32)[None])[0].numpy()
    assert ours.shape == (80, 101)
    np.testing.assert_allclose(ours, _numpy_fbank(x), atol=2e-3)

    tone = np.sin(2 * np.pi * 1000 * t)
    logmel = Fbank(mean_norm=False)(torch.tensor(tone, dtype=torch.float32)[None])[0].mean(-1).numpy()
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    step = (mel(7600) - mel(20)) / 81
    expected_bin = round((mel(1000) - mel(20)) / step) - 1  # centre k sits at mel(20) + (k + 1) step
    assert int(np.argmax(logmel)) == expected_bin == 27


# --- AAM-softmax --------------------------------------------------------------------------------


def test_aam_without_margin_is_cross_entropy_and_margin_raises_the_loss():
    torch.manual_seed(0)
    emb, labels = torch.randn(6, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    aam = AAMSoftmax(16, 5, margin=0.0, scale=30.0)
    loss0, logits = aam(emb, labels)
    cos = F.normalize(emb) @ F.normalize(aam.weight).T
    assert torch.allclose(logits, 30 * cos, atol=1e-5) and torch.allclose(aam.logits(emb), logits)
    assert torch.allclose(loss0, F.cross_entropy(30 * cos, labels), atol=1e-5)
    aam.set_margin(0.2)
    loss2, logits2 = aam(emb, labels)
    assert loss2 > loss0 + 0.1 and torch.allclose(logits2, logits)  # returned logits carry no margin
    emb.requires_grad_(True)
    aam(emb, labels)[0].backward()
    assert emb.grad.abs().sum() > 0 and aam.weight.grad.abs().sum() > 0


def test_aam_target_logit_past_pi_minus_m():
    """cos(theta + m) rises again for theta > pi - m; the default psi(theta) keeps falling.
    easy_margin applies the margin only for theta < pi/2 (psi jumps back to cos at pi/2)."""
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    assert not (torch.cos(theta + 0.2).diff() <= 0).all()
    psi = AAMSoftmax(4, 2, margin=0.2).margin_cosine(torch.cos(theta))
    assert (psi.diff() <= 1e-12).all() and (psi <= torch.cos(theta) + 1e-12).all()
    assert torch.allclose(psi[-1], torch.tensor(-1 - 0.2 * math.sin(0.2), dtype=torch.float64))
    easy = AAMSoftmax(4, 2, margin=0.2, easy_margin=True).margin_cosine(torch.cos(theta))
    obtuse = theta >= math.pi / 2 + 1e-9
    assert torch.equal(easy[obtuse], torch.cos(theta)[obtuse])
    assert torch.allclose(easy[~obtuse], torch.cos(theta[~obtuse] + 0.2), atol=1e-4)  # sin floored at sqrt(eps)


# --- integrated gradients -------------------------------------------------------------------------


def _tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1), nn.Tanh()).double()


def test_integrated_gradients_completeness_error_shrinks_with_steps():
    f = _tiny_mlp()
    x = torch.randn(4, 5, dtype=torch.float64) * 2
    baseline = 0.3 * torch.ones(5, dtype=torch.float64)
    target = (f(x) - f(baseline.expand_as(x)))[:, 0].detach()

    def gap(steps, method):
        ig = integrated_gradients(lambda z: f(z)[:, 0], x, baseline, steps=steps, method=method)
        assert ig.shape == x.shape
        return (ig.sum(dim=1) - target).abs().max().item()

    for method in METHODS:
        coarse, fine = gap(8, method), gap(64, method)
        assert fine < coarse / 4, (method, coarse, fine)  # O(1/m) or better
    assert gap(64, "riemann_trapezoid") < 1e-3 * target.abs().max()
    assert gap(64, "riemann_trapezoid") < gap(64, "riemann_right") / 10  # O(1/m^2) vs O(1/m)
    for method in METHODS:
        assert abs(riemann_points(7, method)[1].sum().item() - 1) < 1e-12


def test_integrated_gradients_chunking_default_baseline_and_no_grad_to_f():
    f = _tiny_mlp()
    x = torch.randn(3, 5, dtype=torch.float64)
    a = integrated_gradients(lambda z: f(z), x, steps=10, chunk_size=3)  # [N, 1] output accepted
    b = integrated_gradients(lambda z: f(z)[:, 0], x, torch.zeros(3, 5, dtype=torch.float64), steps=10, chunk_size=None)
    assert torch.allclose(a, b)
    assert not a.requires_grad and all(p.grad is None for p in f.parameters())
    with torch.no_grad():  # works from a no_grad caller (a frozen teacher)
        assert torch.allclose(integrated_gradients(lambda z: f(z)[:, 0], x, steps=10), a)
    g = integrated_gradients(lambda z: f(z)[:, 0], x, steps=4, create_graph=True)
    g.sum().backward()  # double backprop: attributions differentiable w.r.t. f's parameters
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in f.parameters())
    with pytest.raises(ValueError, match="one scalar per example"):
        integrated_gradients(lambda z: z, x, steps=2)


def test_integrated_gradients_on_ecapa_filterbank():
    """IG of a (tiny, eval-mode) ECAPA's embedding projected on a direction, w.r.t. its filterbank."""
    torch.manual_seed(0)
    model = tiny_ecapa().eval().double()
    direction = F.normalize(torch.randn(16, dtype=torch.float64), dim=0)
    with torch.no_grad():
        feats = model.fbank(0.1 * torch.randn(2, 4000)).double()
        target = model.embed_fbank(feats) @ direction - model.embed_fbank(torch.zeros_like(feats)) @ direction

    def gap(steps):
        ig = integrated_gradients(lambda z: model.embed_fbank(z) @ direction, feats, steps=steps, chunk_size=33)
        assert ig.shape == feats.shape
        return (ig.sum(dim=(1, 2)) - target).abs().max().item()

    coarse, fine = gap(8), gap(64)
    assert fine < coarse / 4 and fine < 0.02 * target.abs().min().item(), (coarse, fine, target)
    assert all(p.grad is None for p in model.parameters())


# --- scoring ---------------------------------------------------------------------------------------


def test_cosine_scoring_of_hand_made_embeddings():
    emb = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, 2.0])}
    trials = [("a", "c", 0), ("b", "c", 1), ("a", "b", 1), ("a", "a", 1)]
    np.testing.assert_allclose(cosine_score(emb, trials), [0.0, 1 / math.sqrt(2), 1 / math.sqrt(2), 1.0])
    # mean subtraction: a - m = [1, -1], c - m = [0, 1] -> -1/sqrt(2)
    np.testing.assert_allclose(cosine_score(emb, [("a", "c")], mean=np.array([0.0, 1.0])), [-1 / math.sqrt(2)])
    np.testing.assert_allclose(cosine_score(emb, [("a", "x")], test={"x": np.array([-3.0, 0.0])}), [-1.0])
    with pytest.raises(KeyError, match="'zz'"):
        cosine_score(emb, [("a", "zz")])


def test_as_norm_known_values():
    """e = x, t = y; cohort x, y, z, (0.6, 0.8, 0); top 2: e -> {1, 0.6} (mean 0.8, std 0.2),
    t -> {1, 0.8} (mean 0.9, std 0.1); raw score 0 -> ((0 - 0.8)/0.2 + (0 - 0.9)/0.1)/2 = -6.5."""
    emb = {"e": np.array([1.0, 0.0, 0.0]), "t": np.array([0.0, 1.0, 0.0])}
    cohort = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.6, 0.8, 0]])
    mu, sd = cohort_stats(np.stack([emb["e"], emb["t"]]), cohort, top_n=2)
    np.testing.assert_allclose(mu, [0.8, 0.9])
    np.testing.assert_allclose(sd, [0.2, 0.1])
    np.testing.assert_allclose(score_trials(emb, [("e", "t")], cohort=cohort, top_n=2), [-6.5])
    np.testing.assert_allclose(as_norm(np.array([0.5]), 0.8, 0.2, 0.9, 0.1), [0.5 * (-1.5 - 4.0)])
    # top_n beyond the cohort size uses the whole cohort (S-norm)
    full = cohort @ emb["e"]
    mu_all, sd_all = cohort_stats(emb["e"], cohort, top_n=100)
    np.testing.assert_allclose([mu_all[0], sd_all[0]], [full.mean(), full.std()])


def test_as_norm_makes_a_cohort_shifted_speaker_comparable():
    """Speaker B sits in a crowded region of the cohort, so all its scores are high: raw, a B
    non-target outscores A's target; after AS-norm every target outscores every non-target."""
    rng = np.random.default_rng(0)
    d = 16

    def unit(v):
        return v / np.linalg.norm(v)

    u = unit(rng.standard_normal(d))

    def near(spread):
        return unit(u + spread * unit(rng.standard_normal(d)))

    cohort = np.stack([near(0.6) for _ in range(40)] + [unit(rng.standard_normal(d)) for _ in range(160)])
    a1 = unit(rng.standard_normal(d))
    emb = {"a1": a1, "a2": unit(a1 + 1.3 * unit(rng.standard_normal(d))), "b1": near(0.5), "b3": near(0.6)}
    emb["b2"] = unit(emb["b1"] + 0.4 * unit(rng.standard_normal(d)))
    trials = [("a1", "a2", 1), ("b1", "b2", 1), ("b1", "b3", 0), ("a1", "b1", 0), ("a2", "b3", 0)]
    raw = score_trials(emb, trials)
    normed = score_trials(emb, trials, cohort=cohort, top_n=20)
    assert raw[2] > raw[0]  # B's non-target above A's target before normalisation
    assert min(normed[:2]) > max(normed[2:])


def test_embeddings_round_trip_through_kaldiio(tmp_path):
    kaldiio = pytest.importorskip("kaldiio")
    rng = np.random.default_rng(1)
    emb = {f"utt{i}": rng.standard_normal(192).astype(np.float32) for i in range(4)}
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/emb.ark,{tmp_path}/emb.scp") as writer:
        for k, v in emb.items():
            writer(k, v)
    back = dict(kaldiio.load_scp(str(tmp_path / "emb.scp")))
    trials = [("utt0", "utt1"), ("utt2", "utt3"), ("utt0", "utt3")]
    np.testing.assert_allclose(cosine_score(back, trials), cosine_score(emb, trials), rtol=1e-6)

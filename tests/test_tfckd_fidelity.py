"""``tfckd`` / ``i2srf_tfckd`` against the official demo (JMCheng-SEU/I2RF-TFCKD-SE,
``I2RF_TFCKD_demo.py``): the batch-wise "frequency" stream on a batch worked out by hand, the
demo's loss written out element by element, the fusion order (every representative at the
bottleneck resolution in the shipped configs), the gate width, the calibration weights' L2
normalisation (no collapse on scaled features), the entropies in ``last_parts``, the total
(intra + inter, weight 1), and the switches giving sekd's values from before issue 17."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from sekd.distill import KDContext, build_kd_term
from sekd.distill.features import to_bctf
from sekd.distill.i2srf_tfckd import RecursiveFusion
from sekd.distill.taps import FeatureTaps
from sekd.distill.tfckd import CalibratedSet, gram_rows, tf_similarities, weight_entropy
from sekd.models import build_model

ROOT = Path(__file__).resolve().parents[1]
OLD = dict(freq_mode="bins", weighting="cross", calib_input="similarity", calib_norm="none", scale_logits=True)


def _hand_batch() -> torch.Tensor:
    """B = 3 utterances, C = 1, T = 2 frames, F = 2 bins."""
    x = torch.zeros(3, 1, 2, 2)
    x[0, 0, 0], x[0, 0, 1] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    x[1, 0, 0], x[1, 0, 1] = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    x[2, 0, 0], x[2, 0, 1] = torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 0.0])
    return x


def test_batch_stream_compares_utterances_frame_by_frame():
    """Demo: P_freq[b, t, b'] = (cos(A[b, :, t], A[b', :, t]) + 1) / 2, normalised over b'.
    Frame 0: u0 = u1 = [1, 0], u2 = [0, 1]; frame 1: u0 = [0, 1], u1 = [1, 0], u2 = [-1, 0]."""
    p_time, p_freq = tf_similarities(_hand_batch())  # default freq_mode: batch
    expected = torch.tensor(
        [
            [[0.4, 0.4, 0.2], [0.5, 0.25, 0.25]],
            [[0.4, 0.4, 0.2], [1 / 3, 2 / 3, 0.0]],
            [[0.25, 0.25, 0.5], [1 / 3, 0.0, 2 / 3]],
        ]
    )
    assert p_freq.shape == (3, 2, 3)  # [B, T, B]
    torch.testing.assert_close(p_freq, expected, atol=1e-4, rtol=0)
    # the time stream of utterance 0: orthogonal frames
    torch.testing.assert_close(p_time[0], torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]), atol=1e-4, rtol=0)
    # the calibration input: raw Gram rows (dot products), sorted in the batch stream
    g_time, g_freq = gram_rows(_hand_batch())
    torch.testing.assert_close(g_freq[1, 1], torch.tensor([1.0, 0.0, -1.0]))  # u1 . (u0, u1, u2) at frame 1
    torch.testing.assert_close(g_time[2], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # the bins reading (the paper's title) stays available: band x band
    assert tf_similarities(_hand_batch(), bands=4, freq_mode="bins")[1].shape == (3, 4, 4)


def _feats(seed: int = 0, b: int = 3, t: int = 7):
    g = torch.Generator().manual_seed(seed)
    s = [torch.randn(b, 4, t, 16, generator=g), torch.randn(b, 6, t, 8, generator=g)]
    te = [
        torch.randn(b, 5, t, 16, generator=g),
        torch.randn(b, 4, t, 12, generator=g),
        torch.randn(b, 2, t, 8, generator=g),
    ]
    return s, te


def _demo_loss(block: CalibratedSet, s, t) -> torch.Tensor:
    """``TF_SemCosineLoss`` written out as in the demo: per pair, the element-wise Jeffreys terms
    weighted by the row's own weight, summed over the rows, averaged over utterances and entries."""
    weights, _ = block.weights_and_divergences(s, t)
    total = 0.0
    for k, stream in enumerate(("time", "freq")):
        for i, si in enumerate(s):
            for j, tj in enumerate(t):
                ps, pt = tf_similarities(si)[k], tf_similarities(tj)[k]
                elem = (pt - ps) * (pt.clamp_min(1e-8).log() - ps.clamp_min(1e-8).log())  # [B, R, E]
                w = weights[stream][:, :, i, j].unsqueeze(2)
                total = total + (elem * w).sum(1).mean()
    return total / len(s)


def test_default_weighting_is_own_and_demo_reduction_is_available():
    torch.manual_seed(0)
    s, t = _feats()
    demo = CalibratedSet(2, 3, row_reduce="demo")
    torch.testing.assert_close(demo(s, t), _demo_loss(demo, s, t), rtol=1e-5, atol=1e-7)
    # default (row_reduce: mean): the same time stream, the batch stream B/T times the demo's
    torch.manual_seed(0)
    mean = CalibratedSet(2, 3)
    assert mean.weighting == "own" and mean.freq_mode == "batch"
    loss = mean(s, t)
    b, frames = s[0].shape[0], s[0].shape[2]
    torch.testing.assert_close(mean.last_parts["time"], demo.last_parts["time"])
    torch.testing.assert_close(mean.last_parts["freq"] * frames / b, demo.last_parts["freq"])
    # own weighting: each stream's divergences by its own weights, row by row
    w, d = mean.weights_and_divergences(s, t)
    own = sum((w[k] * d[k]).mean((0, 1)).sum() for k in w) / 2
    cross = (
        (w["freq"].mean(1) * d["time"].mean(1)).sum((-1, -2)).mean()
        + (w["time"].mean(1) * d["freq"].mean(1)).sum((-1, -2)).mean()
    ) / 2
    torch.testing.assert_close(loss, own)
    assert abs(loss.item() - cross.item()) > 1e-3 * loss.item()


def test_fusion_runs_in_the_listed_order_and_ends_at_the_last_layer():
    f129, f64 = torch.randn(2, 4, 5, 129), torch.randn(2, 6, 5, 64)
    assert RecursiveFusion(2, 8)([f129, f64]).shape == (2, 8, 5, 64)  # default: forward
    assert RecursiveFusion(2, 8, order="backward")([f129, f64]).shape == (2, 8, 5, 129)  # sekd before
    # the demo's gate: 2 x 128 channels in, on both sides
    term = build_kd_term(
        "i2srf_tfckd",
        sets={"a": {"student": ["x", "y"], "teacher": ["x", "y"]}, "b": {"student": ["z"], "teacher": ["z"]}},
    )
    for fuse in (term.fuse_student["a"], term.fuse_teacher["a"]):
        assert fuse.gate[0].in_channels == 256 and fuse.order == "forward" and fuse.resize == "nearest"
    with pytest.raises(ValueError, match="fusion_order"):
        RecursiveFusion(2, 8, order="sideways")
    with pytest.raises(ValueError, match="unknown keys"):
        build_kd_term("i2srf_tfckd", sets={"a": {"student": ["x"], "teacher": ["x"], "order": "forward"}})


CONFIGS = [
    "egs/l3das23/conf/kd/i2srf_tfckd.yaml",
    "egs/mini/conf/kd/i2srf_tfckd.yaml",
    "egs/mini_foa/conf/kd/i2srf_tfckd.yaml",
]


@pytest.mark.parametrize("config", CONFIGS)
def test_shipped_configs_fuse_to_the_bottleneck(config):
    """Demo order: encoder enc0 -> enc2, middle mid0 -> midN, decoder dec2 -> dec0: every
    representative at DPDCRN's bottleneck (64 bins), on both sides."""
    args = yaml.safe_load((ROOT / config).read_text())["kd"]["terms"][0]["args"]
    assert args["fusion_channels"] == (128 if "l3das23" in config else 16)
    term = build_kd_term("i2srf_tfckd", **args)
    blocks = {
        side: 1 + max(int(p.rsplit(".", 1)[1]) for p in args["sets"]["middle"][side]) for side in ("student", "teacher")
    }
    noisy = torch.randn(2, 1, 4000)
    for side, fuse in (("student", term.fuse_student), ("teacher", term.fuse_teacher)):
        torch.manual_seed(0)
        model = build_model("dpdcrn", channels=8, num_blocks=blocks[side]).eval()
        with torch.no_grad(), FeatureTaps(model, [p for s in args["sets"].values() for p in s[side]]) as taps:
            model(noisy)
            for name, spec in args["sets"].items():
                feats = [to_bctf(taps.features[p], "BCTF") for p in spec[side]]
                rep = fuse[name](feats)
                assert rep.shape[-1] == 64, (config, side, name, rep.shape)
                assert rep.shape[-2:] == feats[-1].shape[-2:]
        assert args["sets"]["decoder"][side][-1] == "decoder.0" and args["sets"]["encoder"][side][-1] == "encoder.2"


def test_calibration_weights_do_not_collapse_on_scaled_inputs():
    """Raw Gram rows grow with the square of the features' scale; L2-normalising the MLP outputs
    (the demo's ``Normalize``) keeps the softmax over teacher layers from collapsing onto one."""
    g = torch.Generator().manual_seed(3)
    s = [torch.randn(4, 4, 9, 8, generator=g)]
    t = [
        torch.randn(4, 4, 9, 8, generator=g),
        torch.randn(4, 6, 9, 8, generator=g).relu(),
        torch.randn(4, 2, 9, 16, generator=g) + 1,
    ]

    def entropies(norm: str, scale: float) -> list[float]:
        torch.manual_seed(0)
        w, _ = CalibratedSet(1, 3, calib_norm=norm).weights_and_divergences(
            [x * scale for x in s], [x * scale for x in t]
        )
        return [weight_entropy(w[k]).item() for k in ("time", "freq")]

    for norm in ("rows", "vector"):  # rows: the default (demo)
        low, high = entropies(norm, 1e2), entropies(norm, 1e4)
        assert min(high) > 0.5, (norm, high)
        assert max(abs(a - b) for a, b in zip(low, high)) < 0.02, (norm, low, high)
    assert max(entropies("none", 1e2)) < 0.1  # unnormalised: collapsed


def test_entropies_and_parts_are_reported():
    s, t = _feats()
    block = CalibratedSet(2, 3)
    with torch.no_grad():  # zero embeddings: uniform weights, entropy 1
        for m in list(block.query.values()) + list(block.key.values()):
            for e in m:
                e.mlp[-1].weight.zero_()
                e.mlp[-1].bias.zero_()
    block(s, t)
    for k in ("time_entropy", "freq_entropy"):
        assert abs(block.last_parts[k].item() - 1) < 1e-6
    assert weight_entropy(torch.tensor([[1.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert weight_entropy(torch.ones(2, 1)) is None  # one teacher layer: nothing to calibrate

    term = build_kd_term("tfckd", student_layers=["a", "b"], teacher_layers=["c", "d", "e"])
    out = torch.zeros(3, 10)
    loss = term(KDContext(out, out, out, out, dict(zip("ab", s)), dict(zip("cde", t))))
    assert set(term.last_parts) == {"time", "freq", "time_entropy", "freq_entropy"}
    assert term.last_parts["time"] + term.last_parts["freq"] == pytest.approx(loss.item(), rel=1e-5)


def _i2srf_inputs(seed: int = 2):
    sets = {
        "encoder": {"student": ["e0", "e1"], "teacher": ["E0", "E1", "E2"]},
        "middle": {"student": ["m0"], "teacher": ["M0", "M1"]},
    }
    g = torch.Generator().manual_seed(seed)
    sf = {
        "e0": torch.randn(3, 4, 7, 16, generator=g),
        "e1": torch.randn(3, 4, 7, 8, generator=g),
        "m0": torch.randn(3, 4, 7, 8, generator=g),
    }
    tf = {
        "E0": torch.randn(3, 6, 7, 16, generator=g),
        "E1": torch.randn(3, 6, 7, 8, generator=g),
        "E2": torch.randn(3, 6, 7, 8, generator=g),
        "M0": torch.randn(3, 6, 7, 8, generator=g),
        "M1": torch.randn(3, 6, 7, 8, generator=g),
    }
    out = torch.zeros(3, 10)
    return sets, KDContext(out, out, out, out, sf, tf)


def test_total_is_intra_plus_inter_with_weight_one():
    sets, ctx = _i2srf_inputs()
    torch.manual_seed(0)
    term = build_kd_term("i2srf_tfckd", sets=sets, fusion_channels=8, bands=8)
    loss = term(ctx).item()
    parts = term.last_parts
    assert loss == pytest.approx(parts["encoder"] + parts["middle"] + parts["inter"], rel=1e-5)
    assert {"encoder_time_entropy", "middle_freq_entropy", "inter_time_entropy"} <= set(parts)


def test_switches_give_the_values_of_sekd_before_issue_17():
    """Golden values computed with sekd's code before issue 17 (defaults bins / cross / similarity
    rows / no normalisation / 1/sqrt(D) / backward bilinear fusion) on these seeded inputs."""
    torch.manual_seed(0)
    block = CalibratedSet(2, 3, bands=8, **OLD)
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(3, 4, 7, 16, generator=g), torch.randn(3, 6, 7, 8, generator=g)]
    t = [
        torch.randn(3, 5, 7, 16, generator=g),
        torch.randn(3, 4, 7, 12, generator=g),
        torch.randn(3, 2, 7, 8, generator=g),
    ]
    assert block(s, t).item() == pytest.approx(0.09001298993825912, rel=1e-5)

    sets, ctx = _i2srf_inputs()
    torch.manual_seed(0)
    old = build_kd_term(
        "i2srf_tfckd", sets=sets, fusion_channels=8, bands=8, fusion_order="backward", fusion_resize="bilinear", **OLD
    )
    assert old(ctx).item() == pytest.approx(0.1727612018585205, rel=1e-5)
    torch.manual_seed(0)
    new = build_kd_term("i2srf_tfckd", sets=sets, fusion_channels=8, bands=8)
    assert abs(new(ctx).item() - 0.1727612018585205) > 1e-3  # the defaults did change

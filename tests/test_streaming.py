"""Frame-by-frame DCCRN inference equals offline inference; sekd-enhance --streaming uses it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.infer import Enhancer
from sekd.models import build_model
from sekd.models.streaming import StreamingDCCRN

CONFIGS = [
    dict(channels=[4, 8, 8], rnn_units=16, rnn_layers=1, win_len=256, hop=128, n_fft=256),  # DCCRN-E
    dict(channels=[4, 8, 8], rnn_units=16, rnn_layers=2, complex_lstm=True, masking_mode="C"),  # -CL, win 400
    dict(channels=[4, 8, 8], rnn_units=16, rnn_layers=1, win_len=300, hop=120, n_fft=512, masking_mode="R"),
]


def _model(args: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("dccrn", **args).eval()
    for mod in model.modules():  # batch norm with statistics that are not the identity
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("args", CONFIGS)
def test_streaming_equals_offline(args):
    model = _model(args)
    x = 0.1 * torch.randn(2, 16000 + 37, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        offline = model(x)
    stream = StreamingDCCRN(model)
    assert (stream.process(x) - offline).abs().max().item() <= 1e-5
    # One step at a time: every call returns hop samples, lagging the input by win - hop.
    stream.reset(2)
    hop, lag = stream.hop, stream.left
    out = torch.cat([stream.step(x[:, i : i + hop]) for i in range(0, 10 * hop, hop)], -1)
    assert (out[:, lag:] - offline[:, : 10 * hop - lag]).abs().max().item() <= 1e-5
    assert stream.algorithmic_latency == model.algorithmic_latency == model.stft.win_len


def test_offline_output_depends_on_at_most_one_window_ahead():
    model = _model(CONFIGS[1])
    x = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 5000:] += 0.3
    with torch.no_grad():
        a, b = model(x), model(y)
    cut = 5000 - model.algorithmic_latency
    assert torch.equal(a[:, :cut], b[:, :cut]) and not torch.equal(a[:, :5000], b[:, :5000])


def test_non_causal_dccrn_does_not_stream():
    with pytest.raises(ValueError, match="cannot stream"):
        StreamingDCCRN(build_model("dccrn", channels=[4, 8], rnn_units=8, rnn_layers=1, causal=False))


def test_enhance_file_streaming_matches_offline(tmp_path):
    model = _model(CONFIGS[0])
    x = (0.1 * np.random.default_rng(3).standard_normal(12_345)).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    offline = Enhancer(model, 16000, 1)
    streaming = Enhancer(model, 16000, 1, streaming=True)
    streaming.enhance_file(tmp_path / "x.wav", tmp_path / "s.wav", block_seconds=0.07)  # blocks unlike hops
    got = sf.read(tmp_path / "s.wav", dtype="float32")[0]
    np.testing.assert_allclose(got, offline(x), atol=1e-5)


DPDCRN_CONFIGS = [dict(channels=16, num_blocks=2), dict(channels=8, num_blocks=1, in_channels=4)]


def _dpdcrn(args: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("dpdcrn", **args).eval()
    with torch.no_grad():  # mask scales away from 1 so every path matters
        model.dual_path.k1.fill_(0.7)
        model.dual_path.k2.fill_(1.3)
    return model


@pytest.mark.parametrize("args", DPDCRN_CONFIGS, ids=["mono-2blocks", "foa-1block"])
def test_dpdcrn_streaming_equals_offline(args):
    from sekd.models.streaming import StreamingDPDCRN, streamer

    model = _dpdcrn(args)
    c = args.get("in_channels", 1)
    # long enough that the dilated dense caches (up to 8 frames back) and the KV cache are exercised
    x = 0.1 * torch.randn(2, c, 16 * 256 + 99, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        offline = model(x)
    stream = streamer(model)
    assert isinstance(stream, StreamingDPDCRN)
    assert (stream.process(x) - offline).abs().max().item() <= 1e-4
    stream.reset(2)
    hop, lag = stream.hop, stream.left
    out = torch.cat([stream.step(x[..., i : i + hop]) for i in range(0, 12 * hop, hop)], -1)
    assert (out[:, lag:] - offline[:, : 12 * hop - lag]).abs().max().item() <= 1e-4
    assert stream.algorithmic_latency == model.algorithmic_latency == 512
    with pytest.raises(ValueError, match=r"a step takes \[B, " + str(c)):
        stream.step(x[:, :, :100])


def test_non_causal_dpdcrn_does_not_stream():
    from sekd.models.streaming import streamer

    with pytest.raises(ValueError, match="cannot stream"):
        streamer(build_model("dpdcrn", channels=8, num_blocks=1, causal=False))
    with pytest.raises(TypeError, match="no frame-by-frame streaming"):
        streamer(build_model("manner", hidden=4, depth=2, kernel_size=8, stride=4, head=1, segment_len=8))


def test_enhance_file_streaming_multichannel_dpdcrn(tmp_path):
    model = _dpdcrn(DPDCRN_CONFIGS[1])
    x = (0.1 * np.random.default_rng(5).standard_normal((9_000, 4))).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    offline = Enhancer(model, 16000, 4)
    streaming = Enhancer(model, 16000, 4, streaming=True)
    streaming.enhance_file(tmp_path / "x.wav", tmp_path / "s.wav", block_seconds=0.05)
    got = sf.read(tmp_path / "s.wav", dtype="float32")[0]
    np.testing.assert_allclose(got, offline(x.T), atol=1e-4)


@pytest.mark.parametrize("frames", [2, 3, 5])
def test_several_frames_per_step_equal_offline(frames):
    """A step of ``frames`` hops (DCCRN-E, DCCRN-CL and DPDCRN, whose dense caches reach 8 frames
    back and whose KV cache masks the step's later frames) equals offline; the latency grows by
    ``frames - 1`` hops."""
    from sekd.models.streaming import streamer

    models = [_model(CONFIGS[0]), _model(CONFIGS[1]), _dpdcrn(DPDCRN_CONFIGS[0])]
    for model in models:
        stream = streamer(model, frames)
        c = int(getattr(model, "in_channels", 1))
        x = 0.1 * torch.randn(2, c, 20 * stream.hop + 37, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            offline = model(x)
        assert (stream.process(x) - offline).abs().max().item() <= 1e-4
        assert stream.block == frames * stream.hop
        assert stream.algorithmic_latency == model.stft.win_len + (frames - 1) * stream.hop
        stream.reset(2)
        out = torch.cat(
            [stream.step(x[..., i : i + stream.block]) for i in range(0, 4 * stream.block, stream.block)], -1
        )
        n = 4 * stream.block - stream.left
        assert (out[:, stream.left :] - offline[:, :n]).abs().max().item() <= 1e-4


def test_enhance_streaming_several_frames_matches_offline(tmp_path):
    model = _model(CONFIGS[0])
    x = 0.1 * np.random.default_rng(0).standard_normal(9_001).astype(np.float32)
    offline = Enhancer(model, 16000, 1)(x)
    np.testing.assert_allclose(Enhancer(model, 16000, 1, streaming=4)(x), offline, atol=1e-5)


def test_streaming_benchmark_runs(tmp_path):
    """egs/mini/local/bench_streaming.py (part of make bench) on a tiny causal DCCRN: one row per
    frames-per-step setting, each equal to offline."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("onnx", reason="sekd[export] not installed")
    conf = tmp_path / "tiny.yaml"
    conf.write_text("model:\n  name: dccrn\n  args: {channels: [4, 8], rnn_units: 16, rnn_layers: 1}\n")
    mini = Path(__file__).resolve().parents[1] / "egs" / "mini"
    cmd = [sys.executable, "local/bench_streaming.py", "--config", str(conf), "--seconds", "0.5", "--repeats", "1"]
    proc = subprocess.run([*cmd, "--frames", "1", "3"], cwd=mini, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("streaming")]
    assert [re.search(r"(\d+) frame\(s\)", r).group(1) for r in rows] == ["1", "3"]
    assert all(float(re.search(r"max \|streaming - offline\| ([0-9.e+-]+)\)", r).group(1)) < 1e-4 for r in rows)

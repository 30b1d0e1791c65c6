"""The profiler: MAC counts that include recurrent and attention layers, checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sekd.models import PRESETS, build_model
from sekd.models.profile import count_macs, profile_model


def test_lstm_hand_count():
    # 2-layer LSTM, I=64, H=128, T=100, B=3: per step 4H(I+H) then 4H(H+H).
    lstm = nn.LSTM(64, 128, num_layers=2)
    expected = 100 * 3 * (4 * 128 * (64 + 128) + 4 * 128 * (128 + 128))
    assert count_macs(lstm, torch.randn(100, 3, 64)) == expected


def test_bidirectional_gru_hand_count():
    gru = nn.GRU(40, 32, batch_first=True, bidirectional=True)
    expected = 5 * 50 * 2 * 3 * 32 * (40 + 32)
    assert count_macs(gru, torch.randn(5, 50, 40)) == expected


def test_conv_hand_counts():
    conv = nn.Conv2d(4, 8, (5, 2), stride=(2, 1))
    # Output [1, 8, 8, 9]: each output value costs Cin * 5 * 2 MACs.
    assert count_macs(conv, torch.randn(1, 4, 20, 10)) == 8 * 8 * 9 * 4 * 5 * 2
    conv1d = nn.Conv1d(16, 32, 8, stride=4, groups=2)
    out = (1000 - 8) // 4 + 1
    assert count_macs(conv1d, torch.randn(2, 16, 1000)) == 2 * 32 * out * (16 // 2) * 8


def test_attention_counted_on_both_paths():
    mha = nn.MultiheadAttention(32, 4, batch_first=True)
    x = torch.randn(2, 50, 32)
    expected = 2 * (50 * 32 * 32 * 3 + 2 * 50 * 50 * 32 + 50 * 32 * 32)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    model = SelfAttention()
    assert count_macs(model.eval(), x) == expected  # fused inference path
    assert count_macs(model.train(), x) == expected  # matmul path


def test_fused_scaled_dot_product_attention_is_counted():
    """F.scaled_dot_product_attention's CPU kernel (DPDCRN's path attention): q k^T and the
    weighted sum of v, as the explicit matmuls; DPDCRN counts the same on both of its paths."""
    q, k, v = torch.randn(3, 2, 40, 8), torch.randn(3, 2, 40, 8), torch.randn(3, 2, 40, 8)

    class Fused(nn.Module):
        def forward(self, q):
            return nn.functional.scaled_dot_product_attention(q, k, v)

    assert count_macs(Fused(), q) == 2 * 3 * 2 * 40 * 40 * 8
    model = build_model("dpdcrn", channels=8, num_blocks=1, causal=False).eval()
    x = torch.randn(1, 1, 8000)
    fused = count_macs(model, x)
    explicit = torch.onnx.is_in_onnx_export
    try:
        torch.onnx.is_in_onnx_export = lambda: True  # the written-out path that ONNX export takes
        assert count_macs(model, x) == fused
    finally:
        torch.onnx.is_in_onnx_export = explicit


def test_dccrn_lstm_is_not_skipped():
    """Removing the LSTM's count would make the total smaller: the recurrent layer is counted."""
    model = build_model("dccrn", channels=[8, 16, 16], rnn_units=32, win_len=256, hop=128, n_fft=256).eval()
    x = torch.randn(1, 1, 16000)
    frames = model.stft.num_frames(16000)
    dim = model.bottleneck_bins * 16
    lstm_macs = frames * (4 * 32 * (dim + 32) * 1 + 4 * 32 * (32 + 32))
    total = count_macs(model, x)
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert total == counter.get_total_flops() // 2 + lstm_macs


def test_profile_model_fields():
    row = profile_model("dccrn", PRESETS["dccrn_e"][1], seconds=1.0, threads=2, memory=False)
    assert row["params"] == pytest.approx(3.74e6, rel=0.01)
    assert 3e9 < row["macs_per_s"] < 5e9
    assert row["rtf_1thread"] > 0 and row["causal"] and row["latency_ms"] == 25.0


def test_mac_bound_rtf_and_ratio_follow_the_sgemm_rate():
    """The MAC-bound RTF is 2 x MACs/s over the given sgemm rate; the ratio is RTF / that bound;
    the training step is timed. A rate twice as high halves the bound and doubles the ratio."""
    from sekd.models.profile import sgemm_gflops

    args = dict(channels=[4, 8], rnn_units=16, rnn_layers=1)
    rows = [
        profile_model("dccrn", args, seconds=0.5, threads=1, memory=False, sgemm=rate, train_step=(0.25, 2), repeats=1)
        for rate in (50.0, 100.0)
    ]
    for row, rate in zip(rows, (50.0, 100.0)):
        assert row["mac_bound_rtf"] == pytest.approx(2 * row["macs_per_s"] / (rate * 1e9))
        assert row["limit_ratio"] == pytest.approx(row["rtf_1thread"] / row["mac_bound_rtf"])
        assert row["train_step_s"] > 0
    assert rows[1]["mac_bound_rtf"] == pytest.approx(rows[0]["mac_bound_rtf"] / 2)
    assert 1.0 < sgemm_gflops(1, size=256, repeats=3) < 1e5  # a plausible GFLOP/s, measured


def test_profile_cli_prints_one_row_per_length(tmp_path, capsys):
    from sekd.bin.profile import main

    conf = tmp_path / "m.yaml"
    conf.write_text("model:\n  name: dccrn\n  args: {channels: [4, 8], rnn_units: 16, rnn_layers: 1}\n")
    md = tmp_path / "t.md"
    assert main(["--config", str(conf), "--seconds", "0.5", "1", "--sgemm", "--no_memory", "--repeats", "1",
                 "--threads", "1", "--md", str(md)]) == 0  # fmt: skip
    rows = [line for line in md.read_text().splitlines() if line.startswith(f"| {conf}")]
    assert [r.split("|")[4].strip() for r in rows] == ["0.5", "1"]
    assert all(r.split("|")[9].strip().endswith("x") for r in rows)  # the ratio column is filled
    assert "GFLOP/s on 1 thread(s)" in md.read_text()

"""sekd-enhance on files, folders and scp lists at any rate, chunked; sekd-pack and load_pretrained."""

from __future__ import annotations

import json
import tracemalloc
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

import sekd
from sekd.bin.enhance import main as enhance_main
from sekd.bin.pack import main as pack_main
from sekd.infer import Enhancer
from sekd.models import build_model

from conftest import ROOT, TINY_MODEL


class Identity(torch.nn.Module):
    """Returns channel 0: the chunking and resampling must then give back the input."""

    sample_rate, in_channels = 16000, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


def save_checkpoint(path, model_cfg: dict, channels: int = 1):
    torch.manual_seed(0)
    model = build_model(model_cfg["name"], **model_cfg["args"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model_name": model_cfg["name"],
            "model_args": model_cfg["args"],
            "state_dict": model.state_dict(),
            "config": {"model": model_cfg, "data": {"sample_rate": 16000, "channels": channels}},
            "seed": 0,
            "role": "student",
            "num_params": sum(p.numel() for p in model.parameters()),
            "git_commit": None,
        },
        path,
    )
    return path


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "exp" / "student" / "checkpoints" / "best.pt", TINY_MODEL)


def _tone(seconds: float, rate: int, channels: int = 1, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * (440 + 100 * seed) * t) + noise * rng.standard_normal(len(t))
    return np.stack([x * (c + 1) / channels for c in range(channels)]).astype(np.float32)


def test_overlap_add_of_chunks_is_exact():
    enh = Enhancer(Identity(), 16000, 1)
    x = np.random.default_rng(0).standard_normal((1, 23_456)).astype(np.float32)
    blocks = [x[:, i : i + 777] for i in range(0, x.shape[1], 777)]  # blocks unrelated to the chunks
    for chunk, overlap in ((4000, 1000), (4000, 0), (50_000, 1000)):
        out = np.concatenate(list(enh.stream(blocks, chunk, overlap)))
        assert out.shape == (x.shape[1],)
        np.testing.assert_allclose(out, x[0], atol=1e-6)


def test_long_file_streams_in_flat_memory_at_another_rate(tmp_path):
    enh = Enhancer(Identity(), 16000, 1)
    src = tmp_path / "long.wav"
    seconds, rate = 240, 22050
    with sf.SoundFile(str(src), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for i in range(seconds // 10):
            f.write(_tone(10, rate, seed=i, noise=0.0)[0])  # tones below 8 kHz
    tracemalloc.start()
    enh.enhance_file(src, tmp_path / "out.wav", chunk_seconds=5, overlap_seconds=0.5, block_seconds=2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # 240 s at 22.05 kHz is 21 MB as float32; the streaming path holds a few seconds at a time.
    assert peak < 4e6, peak
    out, out_rate = sf.read(tmp_path / "out.wav", dtype="float32")
    ref, _ = sf.read(src, dtype="float32")
    assert out_rate == rate and out.shape == ref.shape
    # Identity model: the 22.05 -> 16 -> 22.05 kHz round trip keeps everything below 8 kHz.
    err = out[rate:-rate] - ref[rate:-rate]
    assert 10 * np.log10(np.sum(ref[rate:-rate] ** 2) / np.sum(err**2)) > 25


def test_enhance_files_folders_and_scp(tmp_path, checkpoint, capsys):
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    sf.write(folder / "a.wav", _tone(1.5, 16000)[0], 16000)
    sf.write(tmp_path / "in" / "b.flac", _tone(2.0, 44100)[0], 44100)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, _tone(1.0, 8000, channels=2).T, 8000)
    # Next to the input by default.
    assert enhance_main(["--checkpoint", str(checkpoint), str(folder / "a.wav")]) == 0
    assert sf.info(str(folder / "a_enhanced.wav")).frames == 24000
    # A folder (recursive) into -o, rates and formats kept.
    assert enhance_main(["-m", str(checkpoint), "-o", str(tmp_path / "out"), str(tmp_path / "in")]) == 0
    info = sf.info(str(tmp_path / "out" / "in" / "b.flac"))
    assert (info.samplerate, info.frames, info.channels) == (44100, 88200, 1)
    assert (tmp_path / "out" / "in" / "sub" / "a.wav").exists()
    # A stereo file needs --channel for a mono model; the error names the file; others still run.
    assert enhance_main(["-m", str(checkpoint), "-o", str(tmp_path / "o2"), str(stereo), str(folder / "a.wav")]) == 1
    err = capsys.readouterr().err
    assert f"{stereo}: 2 channel(s), the model takes 1 (pick one with --channel)" in err
    assert (tmp_path / "o2" / "a.wav").exists() and not list((tmp_path / "o2").glob(".*tmp*"))
    assert enhance_main(["-m", str(checkpoint), "-o", str(tmp_path / "o3"), "--channel", "1", str(stereo)]) == 0
    assert sf.info(str(tmp_path / "o3" / "stereo.wav")).samplerate == 8000
    # A wav.scp.
    (tmp_path / "wav.scp").write_text(f"utt1 {folder / 'a.wav'}\nutt2 {tmp_path / 'missing.wav'}\n")
    assert enhance_main(["-m", str(checkpoint), "-o", str(tmp_path / "o4"), str(tmp_path / "wav.scp")]) == 1
    assert (tmp_path / "o4" / "utt1.wav").exists() and "missing.wav" in capsys.readouterr().err


def test_file_and_array_paths_agree_with_the_model(tmp_path, checkpoint):
    enh = Enhancer.from_path(checkpoint)
    x = _tone(1.2, 16000)
    direct = enh.model(torch.from_numpy(x)[None]).detach().numpy()[0]
    np.testing.assert_allclose(enh(x, 16000), direct, atol=1e-5)
    sf.write(tmp_path / "x.wav", x[0], 16000, subtype="FLOAT")
    enh.enhance_file(tmp_path / "x.wav", tmp_path / "y.wav")
    np.testing.assert_allclose(sf.read(tmp_path / "y.wav", dtype="float32")[0], direct, atol=1e-5)


def test_pack_then_load_pretrained_and_enhance(tmp_path, checkpoint):
    exp = checkpoint.parents[2]
    (exp / "RESULTS.csv").write_text("set,system,role,pesq_wb\ntest,student,student,1.234\n")
    out = tmp_path / "student.zip"
    assert pack_main(["--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        assert set(z.namelist()) == {"model.pt", "config.yaml", "meta.json", "README.md"}
        meta = json.loads(z.read("meta.json"))
        text = z.read("README.md").decode()
    assert meta["results"]["pesq_wb"] == "1.234" and meta["costs"]["macs_per_s"] > 0
    assert "| role | pesq_wb |" in text and "| student | 1.234 |" in text and "GMAC per second" in text
    enh = sekd.load_pretrained(out)
    x = _tone(1.0, 16000)
    np.testing.assert_allclose(enh(x), Enhancer.from_path(checkpoint)(x), atol=1e-6)
    sf.write(tmp_path / "n.wav", x[0], 16000)
    assert enhance_main(["-m", str(out), str(tmp_path / "n.wav")]) == 0
    assert (tmp_path / "n_enhanced.wav").exists()
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(ValueError, match="not a sekd packed model"):
        sekd.load_pretrained(bad)


@pytest.mark.parametrize("conf", ["student.yaml", "student_dpdcrn.yaml", "student_manner.yaml", "teacher_uformer.yaml"])
def test_torchscript_export_matches_pytorch(tmp_path, conf):
    from sekd.bin.export import main as export_main
    from sekd.train.config import build_config

    cfg = build_config([ROOT / "egs" / "mini" / "conf" / conf])
    ckpt = save_checkpoint(tmp_path / "best.pt", cfg["model"], cfg["data"]["channels"] or 1)
    assert export_main(["--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "model.ts")]) == 0
    exported, original = Enhancer.from_path(tmp_path / "model.ts"), Enhancer.from_path(ckpt)
    assert exported.info["model_name"] == cfg["model"]["name"] and exported.sample_rate == 16000
    x = torch.from_numpy(_tone(5.3, 16000, channels=original.channels))[None]  # real length, not the traced one
    with torch.no_grad():
        assert (exported.model(x) - original.model(x)).abs().max().item() <= 1e-4
    np.testing.assert_allclose(exported(x[0].numpy()), original(x[0].numpy()), atol=1e-4)


@pytest.mark.parametrize("conf", ["student.yaml", "student_manner.yaml", "student_dpdcrn.yaml"])
def test_onnx_export_matches_pytorch_and_enhances(tmp_path, conf):
    pytest.importorskip("onnx", reason="sekd[export] not installed")
    from sekd.bin.export import main as export_main
    from sekd.train.config import build_config

    cfg = build_config([ROOT / "egs" / "mini" / "conf" / conf])
    ckpt = save_checkpoint(tmp_path / "best.pt", cfg["model"])
    assert export_main(["--checkpoint", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    exported, original = Enhancer.from_path(tmp_path / "m.onnx"), Enhancer.from_path(ckpt)
    assert exported.info["model_name"] == cfg["model"]["name"] and exported.info["format"] == "onnx"
    x = _tone(5.3, 16000)  # a length the export never saw, batch of one
    np.testing.assert_allclose(exported(x), original(x), atol=1e-4)
    sf.write(tmp_path / "n.wav", x[0], 16000)
    assert enhance_main(["-m", str(tmp_path / "m.onnx"), str(tmp_path / "n.wav")]) == 0
    assert sf.info(str(tmp_path / "n_enhanced.wav")).frames == x.shape[1]


def test_real_arithmetic_dpdcrn_equals_the_model():
    from sekd.models.onnx_export import RealDPDCRN

    torch.manual_seed(0)
    model = build_model("dpdcrn", channels=8, num_blocks=1, in_channels=4).eval()
    x = 0.1 * torch.randn(2, 4, 12_345)
    with torch.no_grad():
        assert (RealDPDCRN(model)(x) - model(x)).abs().max().item() <= 1e-5


def test_onnx_export_refuses_complex_models_clearly(tmp_path, capsys):
    from sekd.bin.export import main as export_main
    from sekd.train.config import build_config

    cfg = build_config([ROOT / "egs" / "mini" / "conf" / "teacher_uformer.yaml"])
    ckpt = save_checkpoint(tmp_path / "best.pt", cfg["model"])
    assert export_main(["--checkpoint", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 1
    assert "use --format torchscript" in capsys.readouterr().err and not list(tmp_path.glob("*.onnx"))


def test_int8_onnx_export_is_quantized_close_to_float_and_checked(tmp_path, capsys):
    """--int8 stores int8 weights, records its output SNR against float, and refuses (writing
    nothing) when that SNR is under --min_snr."""
    onnx = pytest.importorskip("onnx", reason="sekd[export] not installed")
    from sekd.bin.export import main as export_main
    from sekd.train.config import build_config

    cfg = build_config([ROOT / "egs" / "mini" / "conf" / "student.yaml"])
    ckpt = save_checkpoint(tmp_path / "best.pt", cfg["model"])
    out = tmp_path / "m8.onnx"
    assert export_main(["--checkpoint", str(ckpt), "--out", str(out), "--int8", "--int8_ops", "MatMul,Conv"]) == 0
    int8 = [t for t in onnx.load(str(out)).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8  # weights really are int8
    exported, original = Enhancer.from_path(out), Enhancer.from_path(ckpt)
    assert exported.info["quantization"] == "int8-dynamic" and exported.info["snr_db_vs_float"] >= 20
    x = _tone(3.1, 16000)
    ref, est = original(x), exported(x)
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2))
    assert 20 <= snr < 60, snr  # close to float, yet not float
    assert (
        export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "no.onnx"), "--int8", "--min_snr", "300"]) == 1
    )
    assert "--min_snr" in capsys.readouterr().err and not list(tmp_path.glob("*no.onnx*"))
    with pytest.raises(SystemExit):
        export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "m.ts"), "--format", "torchscript", "--int8"])


def test_onnx_rtf_benchmark_times_models_side_by_side(tmp_path):
    """tools/bench/onnx_rtf.py: one row per model, the first at ratio 1.00."""
    import subprocess
    import sys

    pytest.importorskip("onnx", reason="sekd[export] not installed")
    from sekd.bin.export import main as export_main
    from sekd.train.config import build_config

    cfg = build_config([ROOT / "egs" / "mini" / "conf" / "student.yaml"])
    ckpt = save_checkpoint(tmp_path / "best.pt", cfg["model"])
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a.onnx")]) == 0
    cmd = [sys.executable, str(ROOT / "tools" / "bench" / "onnx_rtf.py"), f"a={tmp_path / 'a.onnx'}"]
    proc = subprocess.run([*cmd, f"b={tmp_path / 'a.onnx'}", "--seconds", "0.5", "--repeats", "1"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith(("| a ", "| b "))]
    assert [r[1].strip() for r in rows] == ["a", "b"] and rows[0][3].strip() == "1.00"

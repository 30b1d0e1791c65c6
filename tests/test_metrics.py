"""Metrics: SI-SDR known values; PESQ/STOI on real recordings against published reference values."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED_DATA, make_data_dir
from sekd.metrics import METRICS, sisdr

REAL = SHARED_DATA / "real_pairs"
# ../shared/data/README.md: pesq 0.0.4 and pystoi 0.4.1 on the pysepm example pair.
REFERENCE = {
    "1_noisySpeech_16000_Hz.wav": {"pesq_wb": 1.1624, "pesq_nb": 1.4720, "stoi": 0.8389, "estoi": 0.6381},
    "1_processed_16000_Hz.wav": {"pesq_wb": 1.0595, "pesq_nb": 1.1378, "stoi": 0.6612, "estoi": 0.4694},
}


def test_sisdr_known_values():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(16000)
    noise = rng.standard_normal(16000)
    noise -= noise.mean() + np.dot(noise - noise.mean(), ref - ref.mean()) / np.dot(ref - ref.mean(), ref - ref.mean()) * (ref - ref.mean())
    for snr in (-5.0, 0.0, 12.5):
        scaled = noise * np.sqrt(np.sum((ref - ref.mean()) ** 2) / np.sum(noise ** 2) / 10 ** (snr / 10))
        assert sisdr(ref, ref + scaled) == pytest.approx(snr, abs=1e-6)
    # Invariant to the estimate's scale and offset.
    est = ref + 0.3 * noise
    assert sisdr(ref, 3.7 * est + 0.2) == pytest.approx(sisdr(ref, est), abs=1e-9)


def test_torch_sisnr_matches_numpy():
    import torch

    from sekd.train.losses import si_snr

    rng = np.random.default_rng(1)
    ref, est = rng.standard_normal((2, 8000))
    value = si_snr(torch.tensor(est[None]), torch.tensor(ref[None])).item()
    assert value == pytest.approx(sisdr(ref, est), abs=1e-6)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_pairs is absent (only on the dev machines)")
@pytest.mark.parametrize("degraded", sorted(REFERENCE))
def test_real_pairs_match_reference_values(degraded):
    ref, rate = sf.read(REAL / "1_speech_16000_Hz.wav")
    est, _ = sf.read(REAL / degraded)
    for name, expected in REFERENCE[degraded].items():
        assert METRICS[name](ref, est, rate) == pytest.approx(expected, abs=5e-4), name


# ../shared/data/README.md: pysepm's composite() (a port of Loizou's composite.m), PESQ-WB term.
COMPOSITE_REFERENCE = {
    "1_noisySpeech_16000_Hz.wav": {"csig": 2.0380, "cbak": 1.8631, "covl": 1.5433, "segsnr": -0.2169,
                                   "llr": 1.3155, "wss": 44.6986},
    "1_processed_16000_Hz.wav": {"csig": 1.0000, "cbak": 1.5970, "covl": 1.0000, "segsnr": -1.2034,
                                 "llr": 2.0801, "wss": 66.7955},
}


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_pairs is absent (only on the dev machines)")
@pytest.mark.parametrize("degraded", sorted(COMPOSITE_REFERENCE))
def test_composite_matches_loizou_port(degraded):
    """Tolerance 5e-4: the reference values are printed to 4 decimals."""
    from sekd.metrics.composite import composite

    ref, rate = sf.read(REAL / "1_speech_16000_Hz.wav")
    est, _ = sf.read(REAL / degraded)
    values = composite(ref, est, rate)
    for name, expected in COMPOSITE_REFERENCE[degraded].items():
        assert values[name] == pytest.approx(expected, abs=5e-4), name


def test_composite_terms_behave():
    """Identical signals: no distortion; more noise: every term gets worse."""
    from sekd.metrics.composite import llr, segsnr, wss

    rng = np.random.default_rng(3)
    t = np.arange(32000) / 16000
    ref = np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(32000)
    assert llr(ref, ref) == pytest.approx(0.0, abs=1e-9) and wss(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert segsnr(ref, ref) == 35.0
    a, b = ref + 0.05 * rng.standard_normal(32000), ref + 0.5 * rng.standard_normal(32000)
    assert llr(ref, a) < llr(ref, b) and wss(ref, a) < wss(ref, b) and segsnr(ref, a) > segsnr(ref, b)


def test_score_entrypoint_records_nan_and_goes_on(tmp_path):
    from sekd.bin.score import main

    d = make_data_dir(tmp_path / "d", num_utts=3, seconds=1.0)
    # Silence as the "estimate" of one utterance: PESQ cannot score it.
    lines = (d / "wav.scp").read_text().splitlines()
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    lines[1] = f"{lines[1].split()[0]} {silent}"
    (d / "est.scp").write_text("\n".join(lines) + "\n")
    out = tmp_path / "scoring"
    assert main(["--ref_scp", str(d / "spk1.scp"), "--est_scp", str(d / "est.scp"), "--out_dir", str(out),
                 "--metrics", "pesq_wb,sisdr", "--nj", "2"]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["num_utts"] == 3
    assert summary["metrics"]["pesq_wb"]["failed"] == 1 and summary["metrics"]["pesq_wb"]["n"] == 2
    values = dict(line.split() for line in (out / "pesq_wb.scp").read_text().splitlines())
    assert math.isnan(float(values[lines[1].split()[0]]))
    assert not (tmp_path / "scoring.tmp").exists()
    # Composite measures come with the intrusive metrics and fail alone where PESQ fails.
    assert main(["--ref_scp", str(d / "spk1.scp"), "--est_scp", str(d / "est.scp"), "--out_dir",
                 str(tmp_path / "c"), "--metrics", "pesq_wb,csig,cbak,covl,segsnr"]) == 0
    comp = json.loads((tmp_path / "c" / "result.json").read_text())["metrics"]
    assert comp["csig"]["n"] == 2 and comp["segsnr"]["n"] == 3
    assert all(1.0 <= comp[m]["mean"] <= 5.0 for m in ("csig", "cbak", "covl"))
    # --nj 1 and --nj 2 agree.
    assert main(["--ref_scp", str(d / "spk1.scp"), "--est_scp", str(d / "est.scp"), "--out_dir",
                 str(tmp_path / "s1"), "--metrics", "pesq_wb,sisdr"]) == 0
    assert (tmp_path / "s1" / "sisdr.scp").read_text() == (out / "sisdr.scp").read_text()


def test_score_length_mismatch_names_file(tmp_path, capsys):
    from sekd.bin.score import main

    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=1.0)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(8000, dtype=np.float32), 16000)
    key = (d / "wav.scp").read_text().split()[0]
    (d / "est.scp").write_text(f"{key} {short}\n")
    assert main(["--ref_scp", str(d / "spk1.scp"), "--est_scp", str(d / "est.scp"),
                 "--out_dir", str(tmp_path / "o")]) == 1
    assert f"{d / 'est.scp'}:1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

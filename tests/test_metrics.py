"""Metrics: SI-SDR known values; PESQ/STOI on real recordings against published reference values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from sekd.metrics import METRICS, sisdr

from conftest import SHARED_DATA, make_data_dir

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
    noise -= noise.mean() + np.dot(noise - noise.mean(), ref - ref.mean()) / np.dot(
        ref - ref.mean(), ref - ref.mean()
    ) * (ref - ref.mean())
    for snr in (-5.0, 0.0, 12.5):
        scaled = noise * np.sqrt(np.sum((ref - ref.mean()) ** 2) / np.sum(noise**2) / 10 ** (snr / 10))
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
    "1_noisySpeech_16000_Hz.wav": {
        "csig": 2.0380,
        "cbak": 1.8631,
        "covl": 1.5433,
        "segsnr": -0.2169,
        "llr": 1.3155,
        "wss": 44.6986,
    },
    "1_processed_16000_Hz.wav": {
        "csig": 1.0000,
        "cbak": 1.5970,
        "covl": 1.0000,
        "segsnr": -1.2034,
        "llr": 2.0801,
        "wss": 66.7955,
    },
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
    assert (
        main(
            [
                "--ref_scp",
                str(d / "spk1.scp"),
                "--est_scp",
                str(d / "est.scp"),
                "--out_dir",
                str(out),
                "--metrics",
                "pesq_wb,sisdr",
                "--nj",
                "2",
            ]
        )
        == 0
    )
    summary = json.loads((out / "result.json").read_text())
    assert summary["num_utts"] == 3
    assert summary["metrics"]["pesq_wb"]["failed"] == 1 and summary["metrics"]["pesq_wb"]["n"] == 2
    values = dict(line.split() for line in (out / "pesq_wb.scp").read_text().splitlines())
    assert math.isnan(float(values[lines[1].split()[0]]))
    assert not (tmp_path / "scoring.tmp").exists()
    # Composite measures come with the intrusive metrics and fail alone where PESQ fails.
    assert (
        main(
            [
                "--ref_scp",
                str(d / "spk1.scp"),
                "--est_scp",
                str(d / "est.scp"),
                "--out_dir",
                str(tmp_path / "c"),
                "--metrics",
                "pesq_wb,csig,cbak,covl,segsnr",
            ]
        )
        == 0
    )
    comp = json.loads((tmp_path / "c" / "result.json").read_text())["metrics"]
    assert comp["csig"]["n"] == 2 and comp["segsnr"]["n"] == 3
    assert all(1.0 <= comp[m]["mean"] <= 5.0 for m in ("csig", "cbak", "covl"))
    # --nj 1 and --nj 2 agree.
    assert (
        main(
            [
                "--ref_scp",
                str(d / "spk1.scp"),
                "--est_scp",
                str(d / "est.scp"),
                "--out_dir",
                str(tmp_path / "s1"),
                "--metrics",
                "pesq_wb,sisdr",
            ]
        )
        == 0
    )
    assert (tmp_path / "s1" / "sisdr.scp").read_text() == (out / "sisdr.scp").read_text()


def test_score_length_mismatch_names_file(tmp_path, capsys):
    from sekd.bin.score import main

    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=1.0)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(8000, dtype=np.float32), 16000)
    key = (d / "wav.scp").read_text().split()[0]
    (d / "est.scp").write_text(f"{key} {short}\n")
    assert (
        main(
            [
                "--ref_scp",
                str(d / "spk1.scp"),
                "--est_scp",
                str(d / "est.scp"),
                "--out_dir",
                str(tmp_path / "o"),
                "--allow_missing",
            ]
        )
        == 1
    )  # one estimate of two references
    assert f"{d / 'est.scp'}:1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# mir_eval 0.8.2 bss_eval_sources on the pysepm example pair (clean reference).
SDR_REFERENCE = {"1_noisySpeech_16000_Hz.wav": 5.0437, "1_processed_16000_Hz.wav": -0.0472}


def test_sdr_known_values_and_filter_invariance():
    from scipy.signal import lfilter

    from sekd.metrics import sdr

    rng = np.random.default_rng(3)
    ref = lfilter([1.0], [1.0, -0.9], rng.standard_normal(32000))  # coloured, speech-like spectrum
    noise = rng.standard_normal(32000)
    for snr in (0.0, 10.0):
        scaled = noise * np.sqrt(np.sum(ref**2) / np.sum(noise**2) / 10 ** (snr / 10))
        # White noise is almost orthogonal to 512 shifts of the reference: SDR ~ SNR.
        assert sdr(ref, ref + scaled) == pytest.approx(snr, abs=0.15)
    # An FIR filter shorter than 512 taps (here a 40-sample delay and an echo) is no distortion
    # for BSS-Eval SDR, but is for SI-SDR.
    taps = np.zeros(100)
    taps[[40, 90]] = 1.0, 0.5
    filtered = lfilter(taps, [1.0], ref)
    assert sdr(ref, filtered) > 25 and sisdr(ref, filtered) < 0  # 25 dB: the echo tail cut at the end
    assert sdr(ref, 0.1 * (ref + 0.3 * noise)) == pytest.approx(sdr(ref, ref + 0.3 * noise), abs=1e-6)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_pairs absent")
@pytest.mark.parametrize("degraded", sorted(SDR_REFERENCE))
def test_sdr_matches_mir_eval(degraded):
    from sekd.metrics import sdr

    clean, rate = sf.read(REAL / "1_speech_16000_Hz.wav", dtype="float64")
    est, _ = sf.read(REAL / degraded, dtype="float64")
    assert sdr(clean, est, rate) == pytest.approx(SDR_REFERENCE[degraded], abs=1e-3)


def test_word_error_rate_hand_counted():
    from sekd.metrics.l3das23 import wer, word_errors

    assert word_errors("the cat sat on the mat", "the cat sat on the mat") == (0, 6)
    # "sat" -> "sit" (substitution), "on" deleted, "big" inserted: 3 errors in 6 words.
    assert word_errors("the cat sat on the mat", "the cat sit the big mat") == (3, 6)
    assert wer("a b", "") == 1.0 and wer("a", "a b c d") == 3.0  # deletions; insertions past 100 %
    assert math.isnan(wer("", "a"))


def test_l3das23_metric_with_known_transcripts():
    from sekd.metrics.l3das23 import task1_metric

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(16000)
    est = ref + 0.5 * rng.standard_normal(16000)
    transcripts = {id(ref): "one two three four", id(est): "one too three"}  # 1 sub + 1 del: WER 0.5
    got = task1_metric(ref, est, 16000, lambda x, rate: transcripts[id(x)])
    stoi = METRICS["stoi"](ref, est, 16000)
    assert got["wer"] == 0.5 and got["l3das23"] == pytest.approx((stoi + 0.5) / 2)
    transcripts[id(est)] = "a b c d e f g h i"  # WER 2.25 is clipped to 1
    assert task1_metric(ref, est, 16000, lambda x, rate: transcripts[id(x)])["wer"] == 1.0
    with pytest.raises(ValueError, match="no words"):
        task1_metric(ref, est, 16000, lambda x, rate: "")


def _tiny_wav2vec2(path):
    """A randomly initialised wav2vec 2.0 CTC checkpoint in the Hugging Face layout."""
    transformers = pytest.importorskip("transformers", reason="sekd[asr] not installed")
    path.mkdir()
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tok = transformers.Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    fe = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    )
    transformers.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(path)
    transformers.set_seed(0)
    cfg = transformers.Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    transformers.Wav2Vec2ForCTC(cfg).save_pretrained(path)
    return path


def test_scorer_l3das23_with_asr_model_and_unavailable_without(tmp_path, capsys):
    from sekd.bin.score import main
    from sekd.metrics.l3das23 import Wav2Vec2Transcriber

    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=1.0)
    args = ["--ref_scp", str(d / "spk1.scp"), "--metrics", "stoi,l3das23,wer"]
    # Without an ASR model: reported as unavailable, never as a number; the rest is scored.
    assert main(args + ["--est_scp", str(d / "wav.scp"), "--out_dir", str(tmp_path / "none")]) == 0
    summary = json.loads((tmp_path / "none" / "result.json").read_text())["metrics"]
    assert summary["l3das23"]["mean"] is None and "ASR model" in summary["l3das23"]["unavailable"]
    assert summary["stoi"]["n"] == 2 and not (tmp_path / "none" / "l3das23.scp").exists()
    assert "| L3DAS23 | unavailable |" in (tmp_path / "none" / "result.md").read_text()
    assert "l3das23 unavailable" in capsys.readouterr().err
    # With a (tiny, random) wav2vec 2.0 model: clean scored against itself has WER 0 and metric 1.
    model = _tiny_wav2vec2(tmp_path / "w2v")
    transcript = Wav2Vec2Transcriber(str(model))(np.random.default_rng(0).standard_normal(16000), 16000)
    assert transcript.split()  # the random model does emit words, so WER is defined
    assert (
        main(args + ["--est_scp", str(d / "spk1.scp"), "--out_dir", str(tmp_path / "w"), "--asr_model", str(model)])
        == 0
    )
    summary = json.loads((tmp_path / "w" / "result.json").read_text())["metrics"]
    assert summary["wer"]["mean"] == 0.0 and summary["l3das23"]["mean"] == pytest.approx(1.0)


def test_scorer_dnsmos_unavailable_says_how(tmp_path, monkeypatch):
    from sekd.bin.score import main
    from sekd.metrics import dnsmos

    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=1.0)
    monkeypatch.setattr(dnsmos, "available", lambda: dnsmos.INSTALL_HINT)
    assert (
        main(
            [
                "--ref_scp",
                str(d / "spk1.scp"),
                "--est_scp",
                str(d / "wav.scp"),
                "--out_dir",
                str(tmp_path / "o"),
                "--metrics",
                "sisdr,dnsmos_ovrl",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "o" / "result.json").read_text())["metrics"]
    assert "sekd[dnsmos]" in summary["dnsmos_ovrl"]["unavailable"] and summary["sisdr"]["n"] == 2


def test_sign_aware_sisnr_and_snr_losses():
    import torch

    from sekd.train.losses import build_loss, si_snr, snr

    rng = np.random.default_rng(2)
    ref = torch.tensor(rng.standard_normal((1, 8000)))
    est = ref + 0.3 * torch.tensor(rng.standard_normal((1, 8000)))
    # Positively correlated: the same as SI-SNR. Inverted: SI-SNR cannot tell, sign-aware scores it
    # as badly as silence.
    assert si_snr(est, ref, sign_aware=True).item() == pytest.approx(si_snr(est, ref).item())
    assert si_snr(-ref, ref).item() > 60
    assert si_snr(-ref, ref, sign_aware=True).item() < -60
    assert snr(0.5 * ref, ref).item() == pytest.approx(6.0206, abs=1e-3)  # level counts
    # Gradient descent on a gain that starts inverted: plain SI-SNR leaves it there, sign-aware flips it.
    for sign_aware, expect_positive in ((False, False), (True, True)):
        gain = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
        loss_fn = build_loss("sisnr", sign_aware=sign_aware)
        opt = torch.optim.SGD([gain], lr=0.05)
        for _ in range(200):
            opt.zero_grad()
            loss_fn(gain * ref + 0.3 * (est - ref), ref).backward()
            opt.step()
        assert (gain.item() > 0) == expect_positive, (sign_aware, gain.item())


def test_l1_mrstft_loss_known_value():
    import torch

    from sekd.train.losses import build_loss

    loss = build_loss("l1_mrstft", noise_weighted=False)
    ref = torch.tensor(np.random.default_rng(4).standard_normal((2, 16000)), dtype=torch.float32)
    assert loss(ref, ref).item() == pytest.approx(0.0, abs=1e-6)
    # Half the level: L1 = mean|r| / 2, SC = 0.5 and |log 0.5| at every resolution (loud signal, no floor).
    expect = 0.5 * ref.abs().mean().item() + 0.5 * 0.5 + 0.5 * np.log(2)
    assert loss(0.5 * ref, ref).item() == pytest.approx(expect, rel=1e-4)
    assert loss(-ref, ref).item() > 1.0  # polarity counts (through the L1 term)
    est = (0.3 * ref).requires_grad_()
    loss(est, ref).backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0


def test_l1_mrstft_noise_weighted_is_the_official_manner_loss_on_known_signals():
    """MANNER's train.py: the loss of the speech estimate and of the noise estimate x - e against
    x - r, mixed per item by a = sum r^2 / (sum r^2 + sum n^2)."""
    import torch

    from sekd.train.losses import build_loss

    loss = build_loss("l1_mrstft")  # noise_weighted is the default, as the official training
    ref = torch.tensor(np.random.default_rng(5).standard_normal((1, 16000)), dtype=torch.float32)
    m = ref.abs().mean().item()
    noisy = (ref + 3 * ref).unsqueeze(1)  # noise n = 3 r: a = 1 / (1 + 9) = 0.1
    # est = r / 2: speech loss 0.5 m + 0.5 * 0.5 + 0.5 log 2; noise estimate 3.5 r against 3 r:
    # L1 0.5 m, SC 0.5 / 3, LogMag log(3.5 / 3)
    speech = 0.5 * m + 0.5 * 0.5 + 0.5 * np.log(2)
    noise = 0.5 * m + 0.5 * (0.5 / 3) + 0.5 * np.log(3.5 / 3)
    assert loss(0.5 * ref, ref, noisy).item() == pytest.approx(0.1 * speech + 0.9 * noise, rel=1e-4)
    assert loss(ref, ref, noisy).item() == pytest.approx(0.0, abs=1e-5)  # a perfect estimate: both parts 0
    with pytest.raises(ValueError, match="noisy input"):
        loss(0.5 * ref, ref)

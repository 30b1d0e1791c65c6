"""Shared fixtures: tiny Kaldi-style data dirs made of synthetic signals (no TTS needed)."""

from __future__ import annotations

import os
import sys

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in one worker process per core (pytest -n): each worker, and the
    # recipes and trainings it starts, computes on one thread, so that the workers together use the
    # cores instead of oversubscribing them. Set before numpy or torch is imported (they read it then).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PYTHON = sys.executable


def recipe_env() -> dict:
    """The environment a recipe's run.sh needs in a test: this interpreter's venv first on PATH."""
    import os

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def make_data_dir(
    path: Path, num_utts: int = 8, seconds: float = 1.0, rate: int = 16000, seed: int = 0, channels: int = 1
) -> Path:
    """A data dir of harmonic 'voiced' signals with a syllable-rate envelope, plus white noise at 0 dB."""
    rng = np.random.default_rng(seed)
    wav_dir = path / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    lines: dict[str, list[str]] = {"wav.scp": [], "spk1.scp": [], "utt2spk": [], "utt2dur": []}
    spk2utt: dict[str, list[str]] = {}
    for i in range(num_utts):
        spk = f"spk{i % 2}"
        utt = f"{spk}_utt{i:03d}"
        f0 = rng.uniform(100, 220)
        env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 5) * t))
        clean = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6)) * env
        clean = 0.3 * clean / np.abs(clean).max()
        noise = rng.standard_normal((channels, n)) * clean.std()
        noisy = clean[None] + noise
        sf.write(wav_dir / f"{utt}_clean.wav", clean.astype(np.float32), rate)
        sf.write(wav_dir / f"{utt}_noisy.wav", noisy.T.astype(np.float32), rate)
        lines["wav.scp"].append(f"{utt} {wav_dir / f'{utt}_noisy.wav'}")
        lines["spk1.scp"].append(f"{utt} {wav_dir / f'{utt}_clean.wav'}")
        lines["utt2spk"].append(f"{utt} {spk}")
        lines["utt2dur"].append(f"{utt} {seconds:.3f}")
        spk2utt.setdefault(spk, []).append(utt)
    for name, rows in lines.items():
        (path / name).write_text("\n".join(sorted(rows)) + "\n")
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(sorted(u))}\n" for s, u in sorted(spk2utt.items())))
    return path


@pytest.fixture
def tiny_data(tmp_path: Path) -> tuple[Path, Path]:
    """(train, valid) data dirs."""
    return (make_data_dir(tmp_path / "train", 8, 1.0, seed=1), make_data_dir(tmp_path / "valid", 2, 1.0, seed=2))


TINY_MODEL = {
    "name": "dccrn",
    "args": {"channels": [4, 8, 8], "rnn_units": 16, "rnn_layers": 1, "win_len": 256, "hop": 128, "n_fft": 256},
}


def write_config(path: Path, **sections) -> Path:
    import copy

    import yaml

    cfg = {
        "model": copy.deepcopy(TINY_MODEL),
        "data": {"segment": 0.5, "batch_size": 2},  # a copy: tests may update it
        "train": {"max_epochs": 2, "save_every_steps": 1, "log_every_steps": 1, "num_audio_examples": 1},
    }
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path.write_text(yaml.safe_dump(cfg))
    return path


def sisnr_steps(model, noisy, clean, steps: int, lr: float = 3e-3) -> list[float]:
    """Adam steps of the SI-SNR loss on one fixed batch; the loss of each step (dB, negated)."""
    import torch

    from sekd.train.losses import SISNRLoss

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = SISNRLoss()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(noisy), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def assert_gradients_everywhere(model) -> None:
    """After a backward pass: every parameter has a finite, non-zero gradient."""
    import torch

    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, zero


def make_sv_data_dir(
    path: Path,
    num_speakers: int = 4,
    per_speaker: int = 3,
    seconds: float = 1.0,
    rate: int = 16000,
    seed: int = 0,
    trials: bool = True,
) -> Path:
    """A speaker-verification data dir (wav.scp, utt2spk, spk2utt, utt2dur, trials): speaker ``k`` is a
    harmonic voice at f0 = 90 + 17 k Hz (+-3 % per utterance) with a syllable-rate envelope; every pair of
    utterances is a trial (target when the speakers match)."""
    rng = np.random.default_rng(seed)
    (path / "wav").mkdir(parents=True, exist_ok=True)
    utts = []
    for k in range(num_speakers):
        spk = f"spk{k:02d}"
        for i in range(per_speaker):
            n = int(seconds * rate * rng.uniform(0.8, 1.2))
            t = np.arange(n) / rate
            f0 = (90 + 17 * k) * rng.uniform(0.97, 1.03)
            x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 6))
            x = 0.3 * x * (0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 5) * t))) / np.abs(x).max()
            x = x + 0.01 * rng.standard_normal(n)
            utt = f"{spk}-u{i:02d}"
            sf.write(path / "wav" / f"{utt}.wav", x.astype(np.float32), rate)
            utts.append((utt, spk, n / rate))
    utts.sort()
    (path / "wav.scp").write_text("".join(f"{u} {path / 'wav' / (u + '.wav')}\n" for u, _, _ in utts))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in utts))
    (path / "utt2dur").write_text("".join(f"{u} {d:.3f}\n" for u, _, d in utts))
    spk2utt: dict[str, list[str]] = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(v)}\n" for s, v in sorted(spk2utt.items())))
    if trials:
        lines = [
            f"{a} {b} {'target' if sa == sb else 'nontarget'}\n"
            for i, (a, sa, _) in enumerate(utts)
            for b, sb, _ in utts[i + 1 :]
        ]
        (path / "trials").write_text("".join(lines))
    return path


TINY_ECAPA = {
    "name": "ecapa_tdnn",
    "args": {"channels": 16, "mfa_channels": 24, "se_bottleneck": 8, "attention_bottleneck": 8, "embed_dim": 12},
}

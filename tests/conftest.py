"""Shared fixtures: tiny Kaldi-style data dirs made of synthetic signals (no TTS needed)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PYTHON = sys.executable


def make_data_dir(path: Path, num_utts: int = 8, seconds: float = 1.0, rate: int = 16000, seed: int = 0,
                  channels: int = 1) -> Path:
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


TINY_MODEL = {"name": "dccrn", "args": {"channels": [4, 8, 8], "rnn_units": 16, "rnn_layers": 1,
                                         "win_len": 256, "hop": 128, "n_fft": 256}}


def write_config(path: Path, **sections) -> Path:
    import yaml

    import copy

    cfg = {"model": copy.deepcopy(TINY_MODEL), "data": {"segment": 0.5, "batch_size": 2},  # a copy: tests may update it
           "train": {"max_epochs": 2, "save_every_steps": 1, "log_every_steps": 1, "num_audio_examples": 1}}
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

"""Plots of the report: KD gains over the baseline student, and a spectrogram panel.

Used by ``sekd.bin.report``; PNGs go to ``<exp_dir>/plots/`` and RESULTS.md shows them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sekd.metrics import DISPLAY


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kd_gain_chart(rows: list[dict], out: Path) -> Path | None:
    """Bars: each KD student's (and the teacher's) metric minus the baseline student's."""
    base = next((r for r in rows if r["role"] == "student"), None)
    others = [r for r in rows if r["role"] in ("kd", "teacher")]
    if base is None or not others:
        return None
    metrics = [m for m in base["metrics"] if base["metrics"][m] is not None]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        names = [r["system"] for r in others]
        gains = [(r["metrics"].get(m) or np.nan) - base["metrics"][m] for r in others]
        colors = ["tab:gray" if r["role"] == "teacher" else ("tab:green" if g >= 0 else "tab:red")
                  for r, g in zip(others, gains)]
        ax.bar(range(len(names)), gains, color=colors)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{DISPLAY.get(m, m)} vs {base['system']}", fontsize=9)
    fig.suptitle("Gain over the baseline student (grey: teacher; green/red: KD students)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def spectrogram_panel(signals: list[tuple[str, np.ndarray]], rate: int, out: Path, title: str) -> Path:
    """Log-magnitude spectrograms (512-point STFT, hop 128) of one utterance, one row each."""
    from scipy.signal import stft

    plt = _pyplot()
    fig, axes = plt.subplots(len(signals), 1, figsize=(9, 1.9 * len(signals)), sharex=True, squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], signals):
        f, t, z = stft(x, rate, nperseg=512, noverlap=384)
        db = 20 * np.log10(np.abs(z) + 1e-8)
        ax.pcolormesh(t, f / 1000, db, vmin=db.max() - 80, vmax=db.max(), shading="auto", cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

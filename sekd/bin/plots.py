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
    """Bars: each KD student's metric minus its own baseline student's (``sekd.bin.report.gains``)."""
    from sekd.bin.report import gains

    kd_rows = [r for r in rows if r["role"] == "kd" and r.get("baseline")]
    if not kd_rows:
        return None
    metrics = list(dict.fromkeys(m for r in kd_rows for m in r["metrics"] if r["metrics"][m] is not None))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    names = [r["system"].replace("student_kd_", "") for r in kd_rows]
    for ax, m in zip(axes[0], metrics):
        values = [gains(r, rows, m)[0] for r in kd_rows]
        values = [np.nan if v is None else v for v in values]
        spread = [r.get("spread", {}).get(m) or 0.0 for r in kd_rows]
        ax.bar(range(len(names)), values, yerr=spread if any(spread) else None, capsize=2,
               color=["tab:green" if v >= 0 else "tab:red" for v in values])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{DISPLAY.get(m, m)} gain (> 0: better)", fontsize=9)
    fig.suptitle("Each KD student minus its own baseline student (green: KD helped; bars: seed spread)",
                 fontsize=10)
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

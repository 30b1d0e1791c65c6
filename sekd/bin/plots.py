"""Plots of the report: KD gains over the baseline student, learning curves, and a spectrogram panel.

Used by ``sekd.bin.report``; PNGs go to ``<exp_dir>/plots/`` and RESULTS.md shows them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sekd.metrics import metric as metric_info


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kd_gain_chart(rows: list[dict], out: Path) -> Path | None:
    """Each KD student's gain over its own baseline student, one panel per metric, on a zero-centred
    scale that also holds the teacher's gap (dashed: teacher minus baseline), so a difference is
    seen against what there was to gain. Bars: the paired mean; error bars: the paired 95 %
    interval (``sekd.bin.report.paired_gain``); green/red where the interval excludes zero, grey
    where it does not."""
    from sekd.bin.report_rows import gains, paired_gain, teacher_gap

    kd_rows = [r for r in rows if r["role"] == "kd" and r.get("baseline")]
    if not kd_rows:
        return None
    metrics = list(dict.fromkeys(m for r in kd_rows for m in r["metrics"] if r["metrics"][m] is not None))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.8), squeeze=False)
    names = [r["system"].replace("student_kd_", "") for r in kd_rows]
    x = np.arange(len(names))
    for ax, m in zip(axes[0], metrics):
        cis = [paired_gain(r, rows, m) for r in kd_rows]
        values = np.array(
            [c.mean if c is not None else (gains(r, rows, m)[0] or np.nan) for c, r in zip(cis, kd_rows)], dtype=float
        )
        low = np.array([c.low if c is not None else np.nan for c in cis], dtype=float)
        high = np.array([c.high if c is not None else np.nan for c in cis], dtype=float)
        gaps = np.array([teacher_gap(r, rows, m) or np.nan for r in kd_rows], dtype=float)
        colors = [
            "tab:green" if c is not None and c.low > 0 else "tab:red" if c is not None and c.high < 0 else "0.6"
            for c in cis
        ]
        yerr = np.clip(np.vstack([values - low, high - values]), 0, None)  # rounding: never below 0
        ax.bar(x, values, color=colors, yerr=np.where(np.isfinite(yerr), yerr, 0), capsize=3)
        for i, g in enumerate(gaps):
            if np.isfinite(g):
                ax.hlines(g, i - 0.42, i + 0.42, colors="black", linestyles="dashed", linewidth=1)
        reach = np.nanmax(np.abs(np.concatenate([values, low, high, gaps, [metric_info(m).min_gap]])))
        reach = 1.15 * float(reach) if np.isfinite(reach) and reach > 0 else 1.0
        ax.set_ylim(-reach, reach)  # symmetric: a tiny difference stays small
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{metric_info(m).display} gain (> 0: better)", fontsize=9)
    fig.suptitle(
        "KD student minus its own baseline (bars: paired 95 % CI; green/red: excludes zero; "
        "dashed: teacher minus baseline)",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def learning_curves(rows: list[dict], out: Path) -> Path | None:
    """Validation SI-SNR (or EER) per epoch of every trained system (the first seed of each): shows
    whether the teachers had converged before they were distilled from."""
    curves = []
    for r in rows:
        hist = r.get("history") or []
        key = (
            "valid_sisnr"
            if hist and "valid_sisnr" in hist[0]
            else "valid_eer"
            if hist and "valid_eer" in hist[0]
            else None
        )
        if key:
            curves.append((f"{r['system']} ({r['role']})", [h["epoch"] for h in hist], [h[key] for h in hist], key))
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, epochs, vals, _ in curves:
        ax.plot(
            epochs,
            vals,
            marker="o",
            markersize=2.5,
            linewidth=1.2,
            label=name,
            linestyle="-" if "(teacher)" in name else "--",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation SI-SNR (dB)" if curves[0][3] == "valid_sisnr" else "validation EER (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Learning curves (validation set; a pretrained teacher: its recorded curve)", fontsize=9)
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

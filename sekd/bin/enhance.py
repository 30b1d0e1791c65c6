"""Enhance a data dir (or wav files) with a trained model; write wavs and a ``wav.scp``.

Usage:
    python -m sekd.bin.enhance --checkpoint exp/teacher/checkpoints/best.pt \\
        --data_dir data/test --out_dir exp/teacher/enhanced/test
    python -m sekd.bin.enhance --checkpoint best.pt --out_dir out/ a.wav b.wav

Whole utterances are processed one at a time. Output is written to ``<out_dir>.tmp``
and renamed into place when every utterance is done, so an interrupted run leaves no
``out_dir`` that looks finished.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sekd.data import DataError, UtteranceDataset, collate_single
from sekd.data.audio import write_wav
from sekd.train.checkpoint import load_model


def _wav_inputs(paths: list[str], tmp: Path) -> Path:
    """Make a throw-away data dir for loose wav files."""
    tmp.mkdir(parents=True, exist_ok=True)
    lines = []
    for p in paths:
        path = Path(p).resolve()
        if not path.is_file():
            raise DataError(p, "file not found")
        lines.append(f"{path.stem} {path}")
    (tmp / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    return tmp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data_dir", help="Kaldi-style data dir (reads wav.scp)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument("inputs", nargs="*", help="wav files (instead of --data_dir)")
    args = parser.parse_args(argv)
    if bool(args.data_dir) == bool(args.inputs):
        parser.error("give either --data_dir or wav files")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    torch.set_flush_denormal(True)
    out_dir = Path(args.out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model, ckpt = load_model(args.checkpoint)
        rate = ckpt["config"]["data"]["sample_rate"]
        data_dir = args.data_dir or _wav_inputs(args.inputs, tmp / "input")
        dataset = UtteranceDataset(data_dir, rate, channels=ckpt["config"]["data"]["channels"], require_ref=False)
        lines = []
        audio_seconds, start = 0.0, time.time()
        with torch.no_grad():
            for i in tqdm(range(len(dataset)), desc=f"enhance {out_dir}", disable=not sys.stderr.isatty()):
                key, noisy, _ = collate_single([dataset[i]])
                est = model(noisy)[0].numpy()
                path = (tmp / "wav" / f"{key}.wav")
                write_wav(path, est, rate)
                lines.append(f"{key} {(out_dir / 'wav' / f'{key}.wav').resolve()}")
                audio_seconds += noisy.shape[-1] / rate
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    shutil.rmtree(tmp / "input", ignore_errors=True)
    (tmp / "wav.scp").write_text("\n".join(lines) + "\n")
    rtf = (time.time() - start) / max(audio_seconds, 1e-9)
    (tmp / "rtf").write_text(f"{rtf:.4f}\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    print(f"enhanced {len(lines)} utterances ({audio_seconds:.1f} s of audio, RTF {rtf:.3f}) into {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Enhance audio with a trained model (a checkpoint or a packed model).

Usage:
    sekd-enhance --checkpoint student.zip noisy.wav                 # -> noisy_enhanced.wav beside it
    sekd-enhance --checkpoint best.pt -o out/ recordings/ talk.flac  # folders (recursive), files
    sekd-enhance --checkpoint best.pt -o out/ data/test/wav.scp       # a Kaldi wav.scp: out/<utt>.wav
    python -m sekd.bin.enhance --checkpoint exp/teacher/checkpoints/best.pt \\
        --data_dir data/test --out_dir exp/teacher/enhanced/test      # recipe stage 6

Any sample rate (resampled to the model's and back with soxr); mono models take one
channel of a multi-channel file with ``--channel``; files of any length are streamed in
overlapping chunks (``--chunk_seconds``, ``--overlap_seconds``), so memory stays flat;
``--streaming`` runs a causal DCCRN or DPDCRN frame by frame instead (state carried, no chunks).
Each output is written to a temporary name and renamed when complete. In recipe mode
(``--data_dir``) the outputs go to ``<out_dir>/wav/<utt>.wav`` with a ``wav.scp`` and the
real-time factor in ``rtf``; ``<out_dir>`` appears only when every utterance is done.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sekd.data import DataError, read_scp
from sekd.data.audio import is_plain_path, write_wav
from sekd.data.kaldi_dir import read_entry
from sekd.infer import Enhancer

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def collect_inputs(inputs: list[str], out_dir: Path | None) -> list[tuple[str, str, Path]]:
    """``(name, source, destination)`` for every file named by ``inputs`` (files, folders, scp)."""
    jobs = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                raise DataError(item, "folder holds no .wav/.flac/.ogg files")
            for f in files:
                rel = f.relative_to(path)
                dst = (out_dir / path.name / rel) if out_dir else f.with_name(f"{f.stem}_enhanced{f.suffix}")
                jobs.append((str(rel), str(f), dst))
        elif path.suffix == ".scp":
            if out_dir is None:
                raise DataError(item, "a wav.scp needs -o/--out_dir")
            for key, entry in read_scp(item).items():
                if not is_plain_path(entry.value):
                    raise DataError(entry.where, "sekd-enhance reads files; pipes and ark entries need --data_dir mode")
                jobs.append((key, entry.value, out_dir / f"{key}.wav"))
        elif path.is_file():
            dst = (out_dir / path.name) if out_dir else path.with_name(f"{path.stem}_enhanced{path.suffix}")
            jobs.append((path.name, str(path), dst))
        else:
            raise DataError(item, "no such file or folder")
    return jobs


def _recipe_mode(enhancer: Enhancer, data_dir: str, out_dir: Path, args: argparse.Namespace) -> int:
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lines, audio_seconds, start = [], 0.0, time.time()
    try:
        entries = read_scp(str(Path(data_dir) / "wav.scp"))
        for key, entry in tqdm(entries.items(), desc=f"enhance {out_dir}", disable=not sys.stderr.isatty()):
            noisy, rate = read_entry(entry, key)
            if args.channel is not None:
                noisy = noisy[args.channel:args.channel + 1]
            try:
                est = enhancer(noisy, rate, args.chunk_seconds, args.overlap_seconds)
            except DataError as exc:
                raise DataError(entry.where, exc.what) from None
            write_wav(tmp / "wav" / f"{key}.wav", est, rate)
            lines.append(f"{key} {(out_dir / 'wav' / f'{key}.wav').resolve()}")
            audio_seconds += noisy.shape[-1] / rate
    except (DataError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    (tmp / "wav.scp").write_text("\n".join(lines) + "\n")
    rtf = (time.time() - start) / max(audio_seconds, 1e-9)
    (tmp / "rtf").write_text(f"{rtf:.4f}\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    print(f"enhanced {len(lines)} utterances ({audio_seconds:.1f} s of audio, RTF {rtf:.3f}) into {out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", "-m", required=True, help="checkpoint (.pt) or packed model (.zip)")
    parser.add_argument("--data_dir", help="recipe mode: a Kaldi data dir (reads wav.scp)")
    parser.add_argument("--out_dir", "-o", default=None,
                        help="output folder (default: <name>_enhanced.<ext> beside each input)")
    parser.add_argument("--channel", type=int, default=None, help="the input channel a mono model enhances")
    parser.add_argument("--chunk_seconds", type=float, default=30.0)
    parser.add_argument("--overlap_seconds", type=float, default=1.0)
    parser.add_argument("--streaming", action="store_true",
                        help="frame-by-frame inference with carried state (causal DCCRN and DPDCRN models)")
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument("inputs", nargs="*", help="audio files, folders, or wav.scp files")
    args = parser.parse_args(argv)
    if bool(args.data_dir) == bool(args.inputs):
        parser.error("give either --data_dir or inputs")
    if args.data_dir and not args.out_dir:
        parser.error("--data_dir needs --out_dir")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    torch.set_flush_denormal(True)
    try:
        enhancer = Enhancer.from_path(args.checkpoint, streaming=args.streaming)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.data_dir:
        return _recipe_mode(enhancer, args.data_dir, Path(args.out_dir), args)
    try:
        jobs = collect_inputs(args.inputs, Path(args.out_dir) if args.out_dir else None)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed, seconds, start = 0, 0.0, time.time()
    for name, src, dst in tqdm(jobs, desc="enhance", unit="file", disable=not sys.stderr.isatty()):
        try:
            seconds += enhancer.enhance_file(src, dst, args.channel, args.chunk_seconds, args.overlap_seconds)
        except (DataError, OSError, RuntimeError) as exc:  # one bad file does not stop the others
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    rtf = (time.time() - start) / max(seconds, 1e-9)
    print(f"enhanced {len(jobs) - failed} of {len(jobs)} files ({seconds:.1f} s of audio, RTF {rtf:.3f})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

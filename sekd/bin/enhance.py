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
Each output is written to a temporary name and renamed when complete; an output that would
be one of the inputs (``-o`` naming the input's folder, or the parent of an input folder) is
refused. Input with NaN or Inf samples is refused (the error names the file, and in recipe
mode the utterance), as is a model that is not for speech enhancement (a speaker-verification
ECAPA-TDNN: use ``sekd.bin.extract_embeddings``).

In recipe mode (``--data_dir``) the outputs go to ``<out_dir>/wav/<utt>.wav`` with a ``wav.scp``
and the real-time factor in ``rtf``; ``<out_dir>`` appears only when every utterance is done
(written beside it, then renamed). An existing ``<out_dir>`` is replaced only when it holds
nothing but such an output; anything else is refused, as is a second run into the same
``<out_dir>`` while one is running, and an ``<out_dir>`` that holds the inputs
(``sekd.output_dir``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sekd.data import DataError, read_scp
from sekd.data.audio import check_finite, is_plain_path, write_wav
from sekd.data.kaldi_dir import PIPE_NOTE, read_entry
from sekd.infer import Enhancer
from sekd.output_dir import OutputDir
from sekd.train.checkpoint import add_trust_option, apply_trust_option

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
OUTPUT_FILES = ("wav/*.wav", "wav.scp", "rtf")  # what a recipe-mode output dir holds


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
    inputs_by_path = {Path(src).resolve(): src for _, src, _ in jobs}
    for _, src, dst in jobs:
        if dst.resolve() in inputs_by_path:
            raise DataError(
                str(dst),
                f"the output would overwrite the input {inputs_by_path[dst.resolve()]}; choose another -o/--out_dir",
            )
    return jobs


def rtf_text(elapsed: float, audio_seconds: float) -> str:
    """``RTF 0.123`` (compute time / audio duration), ``RTF n/a`` when no audio was processed."""
    return f"RTF {elapsed / audio_seconds:.3f}" if audio_seconds > 0 else "RTF n/a"


def _recipe_mode(enhancer: Enhancer, data_dir: str, out_dir: Path, args: argparse.Namespace) -> int:
    lines, audio_seconds, start = [], 0.0, time.time()
    try:
        with OutputDir(out_dir, "sekd-enhance", OUTPUT_FILES) as staging:
            scp = Path(data_dir) / "wav.scp"
            entries = read_scp(str(scp))
            inside = [
                str(p)
                for p in [scp] + [Path(e.value) for e in entries.values() if is_plain_path(e.value)]
                if p.resolve().is_relative_to(out_dir.resolve())
            ]
            if inside:
                raise DataError(str(out_dir), f"holds the input {inside[0]}; choose another --out_dir")
            for key, entry in tqdm(entries.items(), desc=f"enhance {out_dir}", disable=not sys.stderr.isatty()):
                noisy, rate = read_entry(entry, key)
                check_finite(noisy, entry.where, f"utterance {key!r} ({entry.value}): ")
                if args.channel is not None:
                    noisy = noisy[args.channel : args.channel + 1]
                try:
                    est = enhancer(noisy, rate, args.chunk_seconds, args.overlap_seconds)
                except DataError as exc:
                    raise DataError(entry.where, exc.what) from None
                write_wav(staging.tmp / "wav" / f"{key}.wav", est, rate)
                lines.append(f"{key} {(out_dir / 'wav' / f'{key}.wav').resolve()}")
                audio_seconds += noisy.shape[-1] / rate
            (staging.tmp / "wav.scp").write_text("\n".join(lines) + "\n")
            elapsed = time.time() - start
            (staging.tmp / "rtf").write_text(f"{elapsed / max(audio_seconds, 1e-9):.4f}\n")
            staging.commit()
    except (DataError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"enhanced {len(lines)} utterances ({audio_seconds:.1f} s of audio, {rtf_text(elapsed, audio_seconds)}) "
        f"into {out_dir}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument("--checkpoint", "-m", required=True, help="checkpoint (.pt) or packed model (.zip)")
    parser.add_argument("--data_dir", help="recipe mode: a Kaldi data dir (reads wav.scp)")
    parser.add_argument(
        "--out_dir", "-o", default=None, help="output folder (default: <name>_enhanced.<ext> beside each input)"
    )
    parser.add_argument("--channel", type=int, default=None, help="the input channel a mono model enhances")
    parser.add_argument("--chunk_seconds", type=float, default=30.0)
    parser.add_argument("--overlap_seconds", type=float, default=1.0)
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="frame-by-frame inference with carried state (causal DCCRN and DPDCRN models)",
    )
    parser.add_argument(
        "--stream_frames",
        type=int,
        default=1,
        help="--streaming: STFT frames per step (latency grows by a hop per extra frame; the per-step "
        "overhead is shared by them)",
    )
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument("inputs", nargs="*", help="audio files, folders, or wav.scp files")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)
    if bool(args.data_dir) == bool(args.inputs):
        parser.error("give either --data_dir or inputs")
    if args.data_dir and not args.out_dir:
        parser.error("--data_dir needs --out_dir")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    torch.set_flush_denormal(True)
    try:
        enhancer = Enhancer.from_path(args.checkpoint, streaming=args.stream_frames if args.streaming else 0)
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
    print(
        f"enhanced {len(jobs) - failed} of {len(jobs)} files ({seconds:.1f} s of audio, "
        f"{rtf_text(time.time() - start, seconds)})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

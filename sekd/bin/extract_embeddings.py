"""Extract speaker embeddings of a data dir with a speaker-verification checkpoint.

Usage:
    python -m sekd.bin.extract_embeddings --checkpoint exp/teacher/checkpoints/best.pt \\
        --data_dir data/test --out_dir exp/teacher/embeddings/test [--max_seconds 0] [--num_threads 1]

Every utterance of ``wav.scp`` (channel 0, whole, or its first ``--max_seconds``) is embedded
on its own, in eval mode (as WeSpeaker's and ESPnet's ``spk1`` recipes embed VoxCeleb1 test
utterances). Writes ``<out_dir>/embeddings.ark`` and ``embeddings.scp`` (Kaldi float vectors,
read them with ``kaldiio.load_scp``; ``embeddings.scp`` appears last, so when it exists the
extraction is complete) and ``<out_dir>/rtf`` (compute time / audio duration).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sekd.data.kaldi_dir import PIPE_NOTE
from sekd.output_dir import write_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument("--checkpoint", required=True, help="a sekd checkpoint of a speaker-verification model")
    parser.add_argument("--data_dir", required=True, help="Kaldi-style data dir (wav.scp)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--max_seconds", type=float, default=0.0, help="embed only the first seconds (0: whole)")
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    from sekd.train.checkpoint import add_trust_option, apply_trust_option

    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)

    import torch

    from sekd.data import DataDir, DataError
    from sekd.data.kaldi_dir import read_entry
    from sekd.sv.embed import embed_utterances, write_embeddings
    from sekd.train.checkpoint import load_model

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    try:
        model, _ = load_model(args.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if getattr(model, "task", "enh") != "sv":
        print(
            f"error: {args.checkpoint}: {type(model).__name__} is not a speaker-verification model "
            f"(no task = 'sv'); use sekd.bin.enhance",
            file=sys.stderr,
        )
        return 1
    rate = int(getattr(model, "sample_rate", 16000))
    model.to(args.device)
    try:
        data = DataDir(args.data_dir, require_ref=False)
        limit = int(round(args.max_seconds * rate)) if args.max_seconds else None
        audio = 0.0  # seconds embedded

        def items():
            nonlocal audio
            for key in data.utt_ids:
                samples, sr = read_entry(data.wav[key], key)
                if sr != rate:
                    raise DataError(
                        data.wav[key].where, f"utterance {key!r}: sample rate {sr} Hz, the model takes {rate} Hz"
                    )
                audio += min(samples.shape[1], limit or samples.shape[1]) / rate
                yield key, torch.from_numpy(samples[0])

        start = time.perf_counter()
        embeddings = embed_utterances(model, items(), args.device, args.max_seconds or None, rate)
        seconds = time.perf_counter() - start
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "rtf", f"{seconds / max(audio, 1e-9):.6f}\n")
    scp = write_embeddings(embeddings, out)
    print(
        f"extract_embeddings: {len(embeddings)} embeddings of {next(iter(embeddings.values())).shape[0]} "
        f"dimensions, {audio:.1f} s of audio in {seconds:.1f} s (RTF {seconds / max(audio, 1e-9):.4f}) -> {scp}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check Kaldi-style data dirs down to the audio headers.

Usage: python -m sekd.bin.check_data [--sample_rate 16000] [--channels N] [--no_ref] data/train data/test ...

Complements utils/validate_data_dir.sh (which checks the text files): every audio file
must exist and be readable, have the expected sample rate (and channel count), and the
clean reference must be as long as the input. Errors name the scp file and line.
"""

from __future__ import annotations

import argparse
import sys

from sekd.data import DataDir, DataError
from sekd.data.kaldi_dir import PIPE_NOTE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument("data_dirs", nargs="+")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--no_ref", action="store_true", help="spk1.scp is not required")
    args = parser.parse_args(argv)
    for path in args.data_dirs:
        try:
            data = DataDir(path, require_ref=not args.no_ref)
            data.check_audio(args.sample_rate, args.channels)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"check_data: {path}: {len(data)} utterances OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

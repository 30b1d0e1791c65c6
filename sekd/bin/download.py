"""Download corpus archives (resumable, checksum-verified) and unpack them.

Usage:
    sekd-download --out_dir downloads [--unpack_dir db] URL[#CHECKSUM] ...

Each URL is saved as ``<out_dir>/<file name>``; ``#md5hex``, ``#sha256:hex`` after the URL
is its checksum. An interrupted run leaves ``<file>.part`` and the next run resumes it;
a file already there is only verified. With ``--unpack_dir`` each zip is extracted there
(atomically, once: see sekd.data.download).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

from tqdm import tqdm

from sekd.data.download import DownloadError, download, unpack_zip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", nargs="+", metavar="URL[#CHECKSUM]")
    parser.add_argument("--out_dir", required=True, help="where the archives go")
    parser.add_argument("--unpack_dir", default=None, help="extract each zip here")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up")
    args = parser.parse_args(argv)
    for spec in args.urls:
        url, _, checksum = spec.partition("#")
        name = Path(urllib.parse.urlparse(url).path).name
        if not name:
            print(f"sekd-download: error: {url}: no file name in the URL", file=sys.stderr)
            return 2
        dest = Path(args.out_dir) / name
        bar = tqdm(desc=name, unit="B", unit_scale=True, disable=not sys.stderr.isatty())

        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            download(url, dest, checksum or None, args.timeout, progress)
            bar.close()
            print(f"sekd-download: {dest} OK" + (" (checksum verified)" if checksum else ""))
            if args.unpack_dir:
                unpack_zip(dest, args.unpack_dir)
                print(f"sekd-download: unpacked {dest} into {args.unpack_dir}")
        except (DownloadError, ValueError) as e:
            bar.close()
            print(f"sekd-download: error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

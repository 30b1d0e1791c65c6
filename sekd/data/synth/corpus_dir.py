"""What the corpus generators (mini_corpus, spk_corpus) share about their output directory.

A finished corpus holds ``.params.json``, the generator's parameters. A rerun with the same
parameters does nothing; other contents are refused unless ``overwrite`` is given. A corpus
is built in a temporary sibling directory and renamed into place at the end, so a killed run
leaves nothing that looks finished. Utterances are rendered in spawned worker processes
(no inherited threads or eSpeak state), so the output does not depend on the number of jobs.
"""

from __future__ import annotations

import json
import multiprocessing
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from sekd.output_dir import atomic_dir

PARAMS_FILE = ".params.json"


def read_params(out_dir: Path) -> dict | None:
    """The parameters of the corpus in ``out_dir``, or None where there is no finished one."""
    try:
        return json.loads((Path(out_dir) / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_built(out: Path, params: dict, sets: Sequence[str]) -> bool:
    """Whether ``out`` holds a finished corpus made with ``params`` (every set's wav.scp)."""
    return read_params(out) == params and all((out / s / "wav.scp").is_file() for s in sets)


def clear_for_build(out: Path, overwrite: bool, why: Callable[[dict | None], str]) -> None:
    """Make way for a new corpus in ``out``: an empty directory is removed; anything else
    raises FileExistsError (with ``why(old params)``) unless ``overwrite``."""
    if not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    elif not overwrite:
        raise FileExistsError(
            f"{out} exists and {why(read_params(out))}; remove it or pass overwrite=True (--overwrite)"
        )


@contextmanager
def building(out: Path, params: dict) -> Iterator[Path]:
    """Yield a temporary sibling directory of ``out`` to fill; on success write the params
    file into it and rename it to ``out`` (an old ``out`` is swapped out, then deleted); on
    any error delete it."""
    with atomic_dir(out) as tmp:
        yield tmp
        (tmp / PARAMS_FILE).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")


def render_all(fn: Callable, jobs: list, nj: int, progress: bool, desc: str, chunksize: int = 4) -> Iterator:
    """``fn(job)`` for every job, in this process (``nj <= 1``) or in ``nj`` spawned workers
    (results in completion order), with a tqdm bar when ``progress``."""
    from tqdm import tqdm

    with tqdm(total=len(jobs), desc=desc, unit="utt", disable=not progress, mininterval=1.0) as bar:
        if nj <= 1 or len(jobs) < 2:
            for job in jobs:
                yield fn(job)
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(min(nj, len(jobs))) as pool:
                for result in pool.imap_unordered(fn, jobs, chunksize=chunksize):
                    yield result
                    bar.update()

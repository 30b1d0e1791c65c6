"""Outputs that appear complete or not at all: files (``atomic_file``), directories
(``atomic_dir``), and whole tool output directories that never replace what is not theirs
(``OutputDir``). Every writer in sekd that must not leave a partial result goes through these.

``atomic_file(path)`` yields a temporary path beside ``path`` (same suffix, so writers that
choose a format by it work); leaving the block normally renames it onto ``path``, an error
deletes it. ``atomic_dir(out)`` does the same for a directory: a fresh temporary sibling to
fill, swapped in for ``out`` at the end (an old ``out`` is moved aside, then deleted).

``OutputDir(out, tool, patterns)`` is used as a context manager by the tools that write a
whole directory (``sekd-score``, ``sekd-score-sv``, ``sekd-enhance --data_dir``):

- on entry it takes an exclusive lock, ``.<name>.lock`` beside ``out`` (``fcntl.flock``, so a
  killed run leaves no stale lock); a second run into the same ``out`` fails at once with
  ``OutputDirError`` instead of racing the first;
- an existing ``out`` is replaced only when it is recognisably this tool's output: every file
  in it matches one of ``patterns`` (the files the tool writes, plus the recipes' ``.done``).
  Anything else (a system dir with checkpoints, a data dir) is refused with ``OutputDirError``
  naming the directory and a file that is not the tool's;
- ``.tmp`` is a fresh temporary directory beside ``out`` to write into; ``commit()`` renames it
  into place (the old ``out`` is moved aside first, then deleted). Leaving the block without
  ``commit()`` (an error, an early return) deletes it and leaves ``out`` as it was.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path

RECIPE_FILES = (".done",)  # what egs/TEMPLATE/lib.sh adds to a finished output


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends
    normally, deleted when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; the partial file after an error


def write_atomic(path: str | Path, text: str) -> None:
    """``path.write_text(text)`` through :func:`atomic_file`."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished directory ``tmp`` to ``out``; an old ``out`` is moved aside first,
    then deleted, so ``out`` is at every moment the old or the new one, never a mixture."""
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, trash / "old")
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """A fresh temporary sibling directory of ``out`` to fill; swapped in for ``out``
    (:func:`swap_in`) when the block ends normally, deleted when it raises."""
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class OutputDirError(OSError):
    """The output directory cannot be written: not the tool's own, or another run holds it."""


def foreign_file(path: Path, patterns: tuple[str, ...]) -> str | None:
    """The first file under ``path`` (relative, posix) that matches none of ``patterns``
    (matched on the whole relative path, ``*`` not crossing ``/``); None when all match."""
    for f in sorted(p for p in path.rglob("*") if not p.is_dir()):
        rel = f.relative_to(path).as_posix()
        if not any(rel.count("/") == pat.count("/") and fnmatch(rel, pat) for pat in patterns + RECIPE_FILES):
            return rel
    return None


class OutputDir:
    def __init__(self, out: str | Path, tool: str, patterns: tuple[str, ...]) -> None:
        self.out, self.tool, self.patterns = Path(os.path.abspath(out)), tool, patterns  # "." has no name
        self.lock_path = self.out.with_name(f".{self.out.name}.lock")
        self.tmp: Path | None = None
        self._lock: int | None = None

    def check(self) -> None:
        """Raise ``OutputDirError`` unless ``out`` is absent or this tool's output."""
        out = self.out
        if not out.exists() and not out.is_symlink():
            return
        if out.is_symlink() or not out.is_dir():
            raise OutputDirError(
                f"{out}: exists and is not a directory; {self.tool} replaces only its own "
                "output directory (remove it or choose another output dir)"
            )
        stray = foreign_file(out, self.patterns)
        if stray is not None:
            raise OutputDirError(
                f"{out}: exists and is not an output of {self.tool} (it holds {stray!r}); "
                "not replacing it (remove it or choose another output dir)"
            )

    def __enter__(self) -> "OutputDir":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self.check()
            prefix = f".{self.out.name}.tmp-"
            for stale in self.out.parent.glob(prefix + "*"):  # left by a killed run (we hold the lock)
                if stale.is_dir() and foreign_file(stale, self.patterns) is None:
                    shutil.rmtree(stale, ignore_errors=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out.parent))
        except BaseException:
            self._release()
            raise
        return self

    def commit(self) -> None:
        """Rename the finished temporary dir to ``out``, replacing an old output of the tool."""
        assert self.tmp is not None, "commit() outside the with block"
        self.check()
        swap_in(self.tmp, self.out)
        self.tmp = None

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self._release()

    def _acquire(self) -> None:
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputDirError(
                    f"{self.out}: another {self.tool} run is writing it (it holds the lock "
                    f"{self.lock_path}); wait for it or choose another output dir"
                ) from None
            try:  # the lock file may have been removed by the run that held it before: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock = fd
                return
            os.close(fd)

    def _release(self) -> None:
        if self._lock is not None:
            try:
                os.unlink(self.lock_path)  # while still locked, so no one locks a file about to vanish
            except FileNotFoundError:
                pass
            os.close(self._lock)
            self._lock = None

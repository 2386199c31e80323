"""Atomic outputs: write beside the destination, then rename over it in one step.

A failed or interrupted run leaves the destination as it was: absent, or the previous good file.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ._signals import raise_if_interrupted


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def commit(tmp: Path, dst: Path) -> None:
    """Move a finished temp file or folder onto ``dst``, replacing what was there."""
    raise_if_interrupted()  # an interrupt swallowed by the writer still means "write nothing"
    if tmp.is_dir() and dst.exists():
        # os.replace cannot swap a folder onto a non-empty one: park the old one aside first so
        # that at every instant either the old or the new artifact is in place.
        parked = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, parked)
        try:
            os.replace(tmp, dst)
        except BaseException:
            os.replace(parked, dst)
            raise
        _remove(parked)
    else:
        os.replace(tmp, dst)


@contextlib.contextmanager
def staging_path(dst: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``dst``'s folder, removed on exit; the caller may :func:`commit` it.

    The temp keeps ``dst``'s name because some writers (ONNX, Keras) choose a format by suffix.
    """
    dst = Path(dst)
    parent = dst.parent if str(dst.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=parent))
    except OSError as exc:  # read-only or missing mount, a file in the way, no permission
        from .errors import UsageError
        raise UsageError(f"cannot write {str(dst)!r}: {exc.strerror or exc} ({str(parent)!r})",
                         hint="choose a destination in a folder you can write to") from exc
    try:
        yield tmp / dst.name if not directory else tmp / "out"
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path; when the block succeeds it replaces ``dst`` in one rename.

    On any exception, KeyboardInterrupt included, the temp is removed and ``dst`` is untouched.
    """
    with staging_path(dst, directory=directory) as target:
        yield target
        commit(target, Path(dst))

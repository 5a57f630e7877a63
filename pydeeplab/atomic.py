"""Atomic file writing: a file appears complete under its name, or not at all.

Data are written to a temporary file in the destination's own folder (a rename
is only atomic within one file system), flushed to disk, and renamed over the
destination with :func:`os.replace`. If anything fails on the way, the
temporary file is removed and an existing destination is left untouched, so an
interrupted run never leaves a truncated PNG or model behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh, hidden temporary name next to ``path`` (``.<name>.<random>.tmp``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary file to write that replaces ``path`` only when the block ends without error.

    The temporary file is created with mode 0o666 minus the umask (what ``open``
    would give the destination), not the 0o600 of :mod:`tempfile`.
    """
    dest = Path(path)
    while True:
        tmp = temp_path_for(dest)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # a name clash of 32 random bits: draw again
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically make ``path`` hold exactly ``data``."""
    with atomic_write(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically make ``path`` hold ``text`` encoded as UTF-8."""
    write_bytes(path, text.encode("utf-8"))

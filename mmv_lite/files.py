"""Writing files atomically: a reader sees the old file or the complete new one, never a partial write.

    >>> atomic_write("runs/a/result.json", json.dumps(result))          # text or bytes
    >>> atomic_write("runs/a/checkpoint.pt", lambda f: torch.save(state, f), durable=True)
    >>> with atomic_path("word_vectors.bin") as tmp:                      # for writers that want a file name
    ...     vectors.save_word2vec_format(str(tmp), binary=True)

The new content goes to a temporary file in the same folder (named ``.<name>.<random>.tmp``, so a crash leaves
nothing that looks like a finished file), which is then renamed over the target with ``os.replace``, an atomic step
on POSIX and Windows. On any error, ``KeyboardInterrupt`` included, the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def _default_mode() -> int:
    """The permissions ``open()`` would give a new file (mkstemp makes it owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """A temporary path next to ``path``: write it in the block; it replaces ``path`` when the block succeeds.

    ``durable``: also flush the new file and the rename to disk (``fsync``), so that a power cut cannot lose them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if hasattr(os, "chmod"):
            os.chmod(tmp, _default_mode())
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)  # make the rename itself durable


def atomic_write(
    path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], durable: bool = False
) -> Path:
    """Write ``data`` (bytes, UTF-8 text, or a function that writes into a binary file) to ``path`` atomically.

    Returns the path. ``durable``: as in :func:`atomic_path`.
    """
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files that writes of ``path`` left behind when their process was killed mid-write."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"))

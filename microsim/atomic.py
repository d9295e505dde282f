"""Writing files so that a reader never sees half of one."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the extension of ``path`` (writers such as tifffile
    and h5py look at it). On any exception, KeyboardInterrupt included, the
    temporary file is removed and ``path`` is left untouched.

    >>> with atomic_path("/tmp/example.txt") as tmp:
    ...     _ = open(tmp, "w").write("complete")
    """
    path = Path(path)
    if str(path.parent) and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)  # a missing output folder is made, as `mkdir -p` would
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file private (0600); give it the permissions a plain open() would
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)

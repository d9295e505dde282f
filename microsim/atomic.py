"""Writing files so that a reader never sees half of one."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .safety import DiskFullError, disk_full_error, is_disk_full, temp_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name (``.NAME.msim-PID-RANDOM.part.EXT``, at most 255 bytes) keeps
    the extension of ``path`` (writers such as tifffile and h5py look at it) and the
    process id, so that a later run can remove it if this process is killed. On any
    exception, KeyboardInterrupt included, the temporary (file or folder) is removed
    and ``path`` is left untouched; a full disk becomes a one-line
    :class:`~microsim.safety.DiskFullError` naming ``path`` and the free space.

    >>> with atomic_path("/tmp/example.txt") as tmp:
    ...     _ = open(tmp, "w").write("complete")
    """
    path = Path(path)
    if path.is_symlink():
        # the commands refuse output links unless asked to write through them: then do so
        path = Path(os.path.realpath(path))
    if str(path.parent) and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)  # a missing output folder is made, as `mkdir -p` would
    suffix = path.suffix if suffix is None else suffix
    try:
        tmp = temp_path(path, "part", suffix)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path, exc) from None
        raise
    try:
        yield tmp
        # temporaries are created private (0600); give the result the permissions a plain
        # open() or mkdir() would (folders need the search bit)
        mode = 0o777 if tmp.is_dir() else 0o666
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        # a full disk met by a companion file written inside this block is reported for this path
        full = isinstance(exc, DiskFullError) or is_disk_full(exc, path.parent if str(path.parent) else Path("."))
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if full:
            raise disk_full_error(path, exc) from None
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)

"""Errors of the readers and writers; each message is one line that names the file."""
from __future__ import annotations


class VolumeReadError(ValueError):
    """A file could not be read as a volume; the message names the file, the problem and the fix."""


class VolumeWriteError(ValueError):
    """A volume could not be written; the message names the file, the problem and the fix."""


def one_line(exc: BaseException) -> str:
    """``TypeName: message`` of a library exception, squeezed onto one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

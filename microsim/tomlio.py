"""Reading TOML files with one-line errors that name the file and the fix."""
from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_toml(path: str | Path, what: str, error: type[Exception] = ValueError, hint: str = "check the path") -> dict:
    """Parse the TOML file ``path``; every failure raises ``error`` with one line.

    Parameters
    ----------
    path : file name
    what : what the file is, for the messages ('phase table', 'recipe', ...)
    error : exception class to raise (a ValueError subclass of the caller's module)
    hint : the fix suggested when the file does not exist

    Example
    -------
    >>> read_toml("missing.toml", "recipe")  # doctest: +SKIP
    ValueError: missing.toml: recipe file not found; check the path
    """
    path = Path(path)
    from .safety import check_input
    try:
        check_input(path, what)
    except ValueError as exc:
        raise error(str(exc)) from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
                    f"save the {what} as UTF-8") from None
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found; {hint}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; give the {what} TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc}); fix the syntax") from None

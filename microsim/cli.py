"""Command-line entry point: ``microsim COMMAND ...``.

Each command lives in ``microsim/commands/NAME.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func`` to the function that runs it.
Errors the user can fix (bad input, missing files) end the program with one
line on stderr and exit code 2; a solve that does not converge exits with 3.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("demo", "conductivity", "info", "segment", "convert", "randomwalk", "run", "sweep", "analyze", "bruggeman", "generate")


class CommandError(Exception):
    """An error to report as one line with an exit code."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="microsim",
        description="Transport in 3D voxel volumes of battery electrodes: effective conductivity, "
                    "tortuosity factor, percolation.")
    parser.add_argument("--version", action="version", version=f"microsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"microsim.commands.{name}").register(sub)
    from .commands._guard import add_symlink_option
    for name in COMMANDS:
        if name != "demo":
            add_symlink_option(sub.choices[name])
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from . import warmup
    warmup.quiet = bool(getattr(args, "quiet", False))  # the compile notice is progress output too
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): not an error of ours
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CommandError as exc:
        print(f"microsim {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except (ValueError, OSError) as exc:  # our validation errors are ValueErrors with a fix in the message
        print(f"microsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"microsim {args.command}: error: out of memory; read less of the input (--crop, --stride, "
              "--downsample) or ask for less (fewer walkers, a smaller --shape)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"microsim {args.command}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    finally:
        warmup.quiet = False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Guards that every command applies before it does any work.

No command may destroy one of its inputs, block on a special file, run out of
memory or disk half-way, or leave half-written files behind. The checks live
here, in one place, and the commands call them with their inputs and outputs:

* :func:`check_input` - an input is a regular file or a folder (never a FIFO,
  a device or a socket, which would block or never end);
* :func:`check_outputs` - no output is the same file as an input (same inode,
  through hard or symbolic links and ``..``), no output folder that would be
  replaced contains an input, the folder of every output exists and is
  writable, no output is a symbolic link unless allowed, every name fits the
  file system; stale temporaries of dead processes are removed on the way;
* :func:`check_memory` and :func:`check_disk` - refuse before reading or
  allocating when the estimate exceeds what is available;
* :func:`temp_path` - names of temporaries: ``.NAME.msim-PID-RANDOM.part``,
  within 255 bytes, recognisable by :func:`remove_stale_temporaries`;
* :class:`OutputLock` - one writer per output folder for the whole run;
* :func:`rename_noreplace` - a final rename that never replaces what appeared
  meanwhile.

All errors are :class:`SafetyError` (a ValueError), reported by the command
line as one line with exit code 2.
"""
from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path
from typing import Iterable

from .solve.memory import available_memory_bytes

#: the longest file name most file systems allow, in bytes
NAME_MAX = 255
#: marker in the names of microsim's temporaries: ``.NAME.msim-PID-RANDOM.part...``
TEMP_TAG = "msim"
_TEMP_RE = re.compile(r"^\..*\." + TEMP_TAG + r"-(\d+)-[0-9a-f]{8}\.(part|partial|old)(\..*)?$")
#: environment variable that allows writing through output symbolic links
ALLOW_SYMLINK_ENV = "MICROSIM_ALLOW_SYMLINK_OUTPUT"


class SafetyError(ValueError):
    """A command was refused before it did any work; the message says why and what helps."""


class DiskFullError(SafetyError):
    """The file system has no room for an output; nothing partial was kept."""

    errno = errno.ENOSPC


# ---------------------------------------------------------------------------
# sizes


def size_text(nbytes: float) -> str:
    """'1.50 GiB', '12.0 MiB', ... (binary units)."""
    nbytes = float(nbytes)
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def check_memory(need_bytes: float, what: str, hint: str, limit: float | None = None) -> None:
    """Refuse when ``need_bytes`` exceeds ``limit`` (default: the memory available now).

    ``what`` says what needs the memory ('reading a.h5 (10 x 10 x 10 voxels)'),
    ``hint`` which option would help ('crop it with --crop or thin it with --stride').
    A ``limit`` of 0 disables the check.
    """
    if limit is None:
        limit = available_memory_bytes()
    if not limit or need_bytes <= limit:
        return
    raise SafetyError(f"{what} needs about {size_text(need_bytes)} of memory but only {size_text(limit)} is "
                      f"available; {hint}")


def count(shape) -> int:
    return math.prod(int(s) for s in shape)


# ---------------------------------------------------------------------------
# inputs


def _kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def check_input(path, what: str = "input") -> None:
    """Refuse ``path`` if it is a FIFO, a device or a socket (reading one blocks or never ends).

    Missing paths pass (the reader reports them with its own message); a folder
    is checked entry by entry, without descending.
    """
    text = os.fspath(path)
    try:
        st = os.stat(text)
    except OSError:
        return
    kind = _kind(st.st_mode)
    if kind:
        raise SafetyError(f"{text}: is {kind}, not a file; give a regular {what} file")
    if stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError), os.scandir(text) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    k = _kind(entry.stat().st_mode)
                    if k:
                        raise SafetyError(f"{entry.path}: is {k} inside the {what} folder {text}; "
                                          "a folder of slices may hold regular files only")


# ---------------------------------------------------------------------------
# outputs


def _absolute(path) -> Path:
    """Absolute path with '..' removed lexically (a symlink is not followed)."""
    return Path(os.path.normpath(os.path.abspath(os.fspath(path))))


def _inside(child: Path, folder: Path) -> bool:
    return child == folder or folder in child.parents


def _same(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def allow_symlink_output(args=None) -> bool:
    """Whether the user asked to write through output symbolic links (option or environment)."""
    if args is not None and getattr(args, "allow_symlink_output", False):
        return True
    return os.environ.get(ALLOW_SYMLINK_ENV, "") not in ("", "0")


def check_name_length(path, extra: Iterable[str] = ()) -> None:
    """Refuse an output whose name (or a sidecar's name, ``extra`` suffixes) is too long for the file system."""
    p = Path(os.fspath(path))
    name = p.name
    for suffix in ("", *extra):
        n = len((name + suffix).encode("utf-8", "surrogateescape"))
        if n > NAME_MAX:
            also = f" (its companion file {name}{suffix})" if suffix else ""
            raise SafetyError(f"{p}: the name{also} is {n} bytes but file names may have at most {NAME_MAX}; "
                              "choose a shorter name")


def check_outputs(inputs: Iterable, outputs: Iterable, *, folders: Iterable = (), replace_folders: Iterable = (),
                  allow_symlink: bool = False, clean: bool = True, progress=None) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    Parameters
    ----------
    inputs : paths (files or folders) that must stay unchanged; missing ones are ignored
    outputs : files to be written (sidecars included by the caller)
    folders : folders to be created or written into (e.g. ``--plots``); they may hold inputs,
        but may not be an input or lie inside an input folder
    replace_folders : folders that will be replaced as a whole (``run --overwrite``): no input
        may lie inside
    allow_symlink : write through an output that is a symbolic link
    clean : remove stale temporaries of dead processes in the output folders
    """
    ins = []
    for i in inputs:
        if i is None:
            continue
        text = os.fspath(i)
        if not text or not os.path.exists(text):
            continue
        ins.append((text, _absolute(text), Path(os.path.realpath(text))))
    targets = [(o, "file") for o in outputs if o] + [(o, "folder") for o in folders if o] + \
        [(o, "replace") for o in replace_folders if o]
    cleaned = set()
    for out, kind in targets:
        text = os.fspath(out).rstrip("/\\") or os.fspath(out)
        absolute, real = _absolute(text), Path(os.path.realpath(text))
        if os.path.islink(text) and not allow_symlink:
            raise SafetyError(f"{text}: the output is a symbolic link (to {os.readlink(text)}); writing would go "
                              f"through it. Give the real path, or pass --allow-symlink-output "
                              f"(or set {ALLOW_SYMLINK_ENV}=1) to write there anyway")
        with contextlib.suppress(OSError):
            k = _kind(os.stat(text).st_mode)
            if k:
                raise SafetyError(f"{text}: the output is {k}; give a regular file name")
        for name, iabs, ireal in ins:
            if _same(text, name) or real == ireal:
                raise SafetyError(f"{text}: this output is the input {name} (the same file); writing it would "
                                  "destroy the input. Choose another output name")
            # a folder written into may hold inputs (its files have other names); one that is replaced may not
            if kind == "replace" and (_inside(iabs, absolute) or _inside(ireal, real)):
                raise SafetyError(f"{text}: the output folder contains the input {name}; replacing the folder "
                                  "would delete it. Choose another output folder")
            if os.path.isdir(name) and (_inside(absolute, iabs) or _inside(real, ireal)):
                raise SafetyError(f"{text}: the output lies inside the input folder {name}, which must stay "
                                  "unchanged; write it elsewhere")
        if kind == "file" and os.path.isdir(text):
            raise SafetyError(f"{text}: is a folder; give a file name for this output")
        parent = absolute.parent
        # missing output folders are made (as `mkdir -p` would): what must be writable is the
        # nearest folder that exists, and nothing on the way may be a file
        existing = parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise SafetyError(f"{text}: {existing} is not a folder; choose another output path")
        probe = absolute if (kind != "file" and absolute.is_dir()) else existing
        if not _writable(probe):
            raise SafetyError(f"{text}: cannot write in {probe} (no permission or a read-only file system); "
                              "choose another output folder")
        check_name_length(absolute)
        if clean and parent.is_dir() and parent not in cleaned:
            cleaned.add(parent)
            remove_stale_temporaries(parent, progress)


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (also for root on a read-only mount)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return True
    return not (st.f_flag & os.ST_RDONLY)


def sidecars_of(path) -> list[str]:
    """The companion files a volume output writes besides itself (``.xdmf``, ``.npy.json`` ...)."""
    text = os.fspath(path)
    ext = Path(text).suffix.lower()
    if ext in (".h5", ".hdf5"):
        return [str(Path(text).with_suffix(".xdmf"))]
    if ext in (".npy", ".raw", ".bin"):
        return [text + ".json"]
    return []


def volume_inputs(path) -> list[str]:
    """An input volume and the sidecar files that describe it (all must stay unchanged)."""
    if path is None:
        return []
    text = os.fspath(path)
    out = [text]
    for side in sidecars_of(text):
        if os.path.exists(side):
            out.append(side)
    return out


# ---------------------------------------------------------------------------
# disk space


def free_bytes(path) -> int | None:
    p = _absolute(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def check_disk(path, need_bytes: float, what: str = "the output") -> None:
    """Refuse when the file system of ``path`` has less free space than ``need_bytes`` (+5 %)."""
    free = free_bytes(path)
    if free is None or need_bytes * 1.05 <= free:
        return
    raise DiskFullError(f"{os.fspath(path)}: {what} needs about {size_text(need_bytes)} but only "
                        f"{size_text(free)} is free there; free some space or choose another output folder")


def is_disk_full(exc: BaseException, folder=None) -> bool:
    """Whether ``exc`` comes from a full file system (by its errno, its text, or no room left in ``folder``)."""
    if isinstance(exc, DiskFullError) or not isinstance(exc, Exception):
        return False
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc)
    if "No space left" in text or "errno = 28" in text or "Disk quota exceeded" in text:
        return True
    if folder is not None and isinstance(exc, (OSError, ValueError)):
        # some writers report a short write in their own words ('N requested and M written')
        free = free_bytes(folder)
        return free is not None and free < FULL_BELOW_BYTES
    return False


#: a file system with less free space than this after a failed write is taken as full
FULL_BELOW_BYTES = 1 << 16


def disk_full_error(path, exc: BaseException) -> DiskFullError:
    free = free_bytes(path)
    room = "" if free is None else f" ({size_text(free)} free)"
    return DiskFullError(f"{os.fspath(path)}: the file system is full{room}; nothing was kept. "
                         "Free some space or choose another output folder")


# ---------------------------------------------------------------------------
# temporaries


def temp_name(name: str, kind: str = "part", suffix: str = "") -> str:
    """A hidden temporary name for ``name``: ``.NAME.msim-PID-RANDOM.KIND[SUFFIX]`` within 255 bytes.

    A long ``name`` is shortened (its start is kept), so a file of 250 characters
    can still be written through a temporary.
    """
    tail = f".{TEMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}.{kind}{suffix}"
    room = NAME_MAX - 1 - len(tail.encode())
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > room:
        raw = raw[:max(room, 1)]
        short = raw.decode("utf-8", "ignore")
    else:
        short = name
    return "." + short + tail


def temp_path(path, kind: str = "part", suffix: str | None = None, folder: bool = False) -> Path:
    """Create (exclusively) a temporary file or folder next to ``path`` and return its path."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    suffix = path.suffix if suffix is None else suffix
    for _ in range(100):
        tmp = parent / temp_name(path.name, kind, suffix)
        try:
            if folder:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise SafetyError(f"{path}: cannot create a temporary name next to it")


def temp_pid(name: str) -> int | None:
    """The process id in a microsim temporary name, or None for any other name."""
    m = _TEMP_RE.match(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temporaries(folder, progress=None) -> list[Path]:
    """Remove microsim temporaries in ``folder`` whose process is no longer running; say so on stderr."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        pid = temp_pid(entry.name)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
        # a notice, not progress: shown with --quiet too
        print(f"microsim: removed {path}, a temporary left by process {pid}, which is no longer running",
              file=sys.stderr)
    return removed


def end_with_parent(parent_pid: int, sig: int | None = None) -> None:
    """Ask the kernel to send ``sig`` (default SIGTERM) to this process when its parent ends (Linux).

    A worker whose parent is killed with SIGKILL then stops too (and cleans up
    as on SIGTERM) instead of writing on alone. Elsewhere this does nothing.
    """
    import signal
    sig = signal.SIGTERM if sig is None else sig
    if sys.platform.startswith("linux"):
        import ctypes
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent ended before the request was made
        os.kill(os.getpid(), sig)


# ---------------------------------------------------------------------------
# renames and locks


def rename_noreplace(src, dst) -> None:
    """Rename ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists (never replacing it)."""
    src, dst = os.fspath(src), os.fspath(dst)
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2
        except (OSError, AttributeError):
            fn = None
        if fn is not None:
            fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
            at_fdcwd, noreplace = -100, 1
            if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), noreplace) == 0:
                return
            err = ctypes.get_errno()
            if err == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "exists", dst)
            if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), dst)
    # fallback: only microsim writers hold the folder's lock, so check-then-rename is enough for them
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "exists", dst)
    os.rename(src, dst)


def identity(path) -> tuple[int, int, int, int] | None:
    """(device, inode, mtime, ctime) of ``path`` without following a final link, or None if it does not exist.

    A folder removed and made again may get the same inode number; its times differ.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns


class OutputLock:
    """An exclusive lock on an output path for as long as a command writes it.

    The lock is ``flock`` on ``.NAME.msim-lock`` next to the output, so it ends with
    the process, however the process ends. A second writer is refused at once with
    the process id of the first.

    >>> with OutputLock("runs/electrode"):  # doctest: +SKIP
    ...     pass
    """

    def __init__(self, path, what: str = "output folder"):
        path = _absolute(path)
        self.target = path
        self.what = what
        self.path = path.parent / ("." + temp_name_base(path.name) + f".{TEMP_TAG}-lock")
        self.fd = None

    def __enter__(self):
        import fcntl
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    pid = os.pread(fd, 32, 0).decode(errors="ignore").strip()
                finally:
                    os.close(fd)
                who = f" (process {pid})" if pid else ""
                raise SafetyError(f"{self.target}: another microsim{who} is writing this {self.what}; wait for it "
                                  "to finish or choose another --out") from None
            # the file may have been removed by the previous holder between open and lock
            now = identity(self.path)
            if now is None or now[:2] != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self.fd = fd
            return self
        raise SafetyError(f"{self.target}: cannot take the lock {self.path}")

    def __exit__(self, *exc):
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None


def temp_name_base(name: str) -> str:
    """``name`` shortened so that a lock or temporary name built on it fits in 255 bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    room = NAME_MAX - 40
    return raw[:room].decode("utf-8", "ignore") if len(raw) > room else name

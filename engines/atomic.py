"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or Ctrl-C mid-write leaves the old file (or nothing), never half a file; a
destination that cannot be written is a one-line error before any work.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engines.errors import KdcamError


def why(err: OSError) -> str:
    """The short reason of an OS error, for a one-line message ("Permission denied")."""
    return err.strerror or type(err).__name__


def disk_full(folder: str | os.PathLike) -> bool:
    """True when ``folder``'s file system has (almost) no room left."""
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def check_writable(path: str | os.PathLike, *, what: str = "output") -> Path:
    """Raise a one-line KdcamError now if ``path`` can never be written as a file: it is a
    folder, or its folder cannot be created (a file stands in the way, a read-only or
    virtual file system). Creates the folder."""
    target = Path(path)
    if target.is_dir():
        raise KdcamError(f"cannot write the {what} {target}: it is a folder; give a file name")
    kind = _special_kind(target)
    if kind is not None:  # replacing a device node, a FIFO or a socket with a regular file is never what was meant
        raise KdcamError(f"cannot write the {what} {target}: it is {kind}, not a file; give a file name")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise KdcamError(f"cannot write the {what} {target}: {blocker} is a file, not a folder; choose another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KdcamError(
            f"cannot write the {what} {target}: cannot create its folder ({why(err)}); choose another path"
        ) from None
    try:  # a virtual or read-only file system, or no permission: find out now, not after the work
        with tempfile.NamedTemporaryFile(prefix=f".{target.name}.probe-", dir=target.parent):
            pass
    except OSError as err:
        raise KdcamError(f"cannot write the {what} {target} ({why(err)}); choose another path") from None
    return target


#: what a path that is not a regular file is, by its mode (for one-line messages)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file ("a folder", "a FIFO (named pipe)", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISDIR(mode) else special_kind(mode)


def _kept_name(target: Path, when: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    for n in range(100):
        candidate = target.with_name(f"{target.stem}.kept-{stamp}{f'-{n}' if n else ''}{target.suffix}")
        if not candidate.exists():
            return candidate
    return target.with_name(f"{target.stem}.kept-{stamp}-{os.getpid()}{target.suffix}")


def _keep(tmp: Path, target: Path, when: float | None = None) -> Path:
    """Rename the temporary file ``tmp`` of ``target`` to a visible kept name beside it."""
    kept = _kept_name(target, when)
    _plain_permissions(tmp)
    os.replace(tmp, kept)
    return kept


def _partial_prefix(target: Path) -> str:
    """How the temporary files of ``target`` begin (hidden, and named after it)."""
    return f".{target.name}.partial-"


def _plain_permissions(path: Path) -> None:
    """mkstemp makes 0600 files (and some writers recreate the file): give the result the
    permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike,
    *,
    suffix: str | None = None,
    what: str = "output",
    keep_on_failure: bool | Callable[[], bool] = False,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    ``suffix`` defaults to the target's own suffix, so writers that pick a format from
    the file name (OpenCV, matplotlib) still see the right one. A destination that cannot
    be written fails here, before the caller does any work, with a one-line KdcamError.
    On an exception the temporary file is removed. If the final rename fails, the result is
    removed too, or with ``keep_on_failure`` (for what cannot be made again, like a
    recording) kept under a visible name beside the target that the error names; so is what
    was written before an error (a recording the disk had no room for): a KdcamError then
    names the kept file. ``keep_on_failure`` may be a callable, asked at the time of the
    failure (a recording with no frames yet is not worth keeping). On an error the target
    is never replaced. ``mode``: the permissions the result gets (default: a plain open()'s).
    """
    target = check_writable(path, what=what)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=_partial_prefix(target), suffix=target.suffix if suffix is None else suffix, dir=target.parent
        )
    except OSError as err:
        raise KdcamError(f"cannot write the {what} {target} ({why(err)}); choose another path") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except BaseException as err:
            keep = keep_on_failure() if callable(keep_on_failure) else keep_on_failure
            if keep and tmp.exists() and tmp.stat().st_size > 0:
                kept = _keep(tmp, target)
                if isinstance(err, KdcamError):
                    raise KdcamError(f"{err}; what was written is kept as {kept}") from None
            raise
        if mode is None:
            _plain_permissions(tmp)
        else:
            os.chmod(tmp, mode)
        try:
            os.replace(tmp, target)
        except OSError as err:
            if not keep_on_failure:
                raise KdcamError(f"cannot write the {what} {target} ({why(err)})") from None
            raise KdcamError(
                f"cannot put the {what} at {target} ({why(err)}); it is kept as {_keep(tmp, target)}"
            ) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically; ``mode``: the permissions it gets (default: a plain open()'s)."""
    with atomic_path(path, mode=mode) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, *, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def recover_partials(target: str | os.PathLike, *, keep: bool, idle_s: float = 60.0) -> list[Path]:
    """Temporary files of ``target`` that a killed writer left (SIGKILL, a power cut: no
    ``finally`` ran), untouched for ``idle_s`` so no live writer owns them. With ``keep``
    (what cannot be made again, like a recording) each is renamed to a visible kept name
    beside the target, else deleted; returns the kept names, or the deleted files."""
    target = Path(target)
    done = []
    for tmp in sorted(target.parent.glob(glob.escape(_partial_prefix(target)) + "*")):
        try:
            if time.time() - tmp.stat().st_mtime < idle_s:
                continue
            if keep:
                done.append(_keep(tmp, target, tmp.stat().st_mtime))
            else:
                tmp.unlink()
                done.append(tmp)
        except OSError:
            continue  # gone meanwhile, or not ours to move: leave it
    return done


def remove_stale_partials(folder: Path) -> int:
    """Delete the temporary files that a killed writer left in ``folder``; returns how many.

    Call it only while no other process writes there.
    """
    removed = 0
    for tmp in Path(folder).glob(".*.partial-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

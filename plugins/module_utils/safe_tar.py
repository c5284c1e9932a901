"""Safe tar extraction on every Python the managed hosts run (3.9, 3.10, 3.11.2, 3.12+).

``tarfile.data_filter`` (PEP 706) only exists from 3.12 and the 3.11.4 / 3.10.12 / 3.9.17 security
releases; Debian 12 ships 3.11.2 without it, where ``extractall(filter="data")`` is a TypeError.
:func:`extractall` uses ``data_filter`` when the interpreter has it and otherwise walks the members
itself with the same rules:

- refused: absolute member names, ``..`` components (also refused on the native path, where
  ``data_filter`` would strip a leading ``/``), anything that would land outside the destination,
  symbolic links to an absolute path, symbolic or hard links whose target resolves outside the
  destination, device nodes and FIFOs;
- modes: setuid/setgid/sticky and group/other write bits are stripped; regular files the owner
  cannot execute lose every execute bit and are always owner read/write;
- ownership in the archive is ignored (files belong to whoever extracts).

A refusal raises :class:`UnsafeArchiveError` (a ``tarfile.TarError``) naming the archive member.
Standard library only.
"""

from __future__ import annotations

import copy
import os
import tarfile

# Modes data_filter keeps: no setuid/setgid/sticky, no group/other write.
_KEEP_MODE = 0o755
_SPECIAL = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "FIFO"}


class UnsafeArchiveError(tarfile.TarError):
    """An archive member that must not be extracted; the message names the member."""

    def __init__(self, member: str, reason: str, archive: str | None = None):
        self.member = member
        self.reason = reason
        where = f"{archive}: " if archive else ""
        super().__init__(f"{where}archive member {member!r} refused: {reason}")


def has_data_filter() -> bool:
    """True when this interpreter's tarfile has PEP 706's ``data_filter``."""
    return hasattr(tarfile, "data_filter")


def _inside(path: str, dest: str) -> bool:
    return os.path.commonpath([path, dest]) == dest


def check_member(member: tarfile.TarInfo, dest: str, archive: str | None = None) -> None:
    """Raise :class:`UnsafeArchiveError` unless ``member`` is safe to extract into ``dest`` (a
    real path: symbolic links already extracted there are followed)."""

    def refuse(reason: str):
        raise UnsafeArchiveError(member.name, reason, archive)

    name = member.name
    if not name or "\0" in name:
        refuse("empty name or NUL in the name")
    if name.startswith(("/", os.sep)) or os.path.isabs(name):
        refuse("absolute path")
    if ".." in name.replace(os.sep, "/").split("/"):
        refuse("'..' path component")
    target = os.path.realpath(os.path.join(dest, name))
    if not _inside(target, dest):
        refuse(f"would be extracted to {target}, outside the destination {dest}")
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        if os.path.isabs(member.linkname):
            refuse(f"{kind} to an absolute path ({member.linkname})")
        if member.issym():
            link_target = os.path.join(dest, os.path.dirname(name), member.linkname)
        else:
            link_target = os.path.join(dest, member.linkname)
        link_target = os.path.realpath(link_target)
        if not _inside(link_target, dest):
            refuse(f"{kind} to {member.linkname} ({link_target}), outside the destination {dest}")
    elif not (member.isreg() or member.isdir()):
        refuse(f"special file ({_SPECIAL.get(member.type, 'type ' + repr(member.type))})")


def sanitised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of a checked ``member`` with data_filter's modes and without its ownership."""
    clean = copy.copy(member)
    mode = member.mode & _KEEP_MODE
    if member.isreg() or member.islnk():
        if not mode & 0o100:
            mode &= ~0o111
        mode |= 0o600
    elif member.isdir():
        mode |= 0o700  # data_filter leaves directories at the default mode: usable by the owner
    clean.mode = mode
    # The extracting user owns everything (tarfile looks the names up first: "" finds nobody).
    clean.uid, clean.gid = os.geteuid(), os.getegid()
    clean.uname = clean.gname = ""
    return clean


def _walk(tar: tarfile.TarFile, dest: str, archive: str | None):
    """The members, each checked just before it is extracted (so links extracted earlier count)."""
    for member in tar:
        check_member(member, dest, archive)
        yield sanitised(member)


def extractall(tar: tarfile.TarFile, dest: str, native: bool | None = None) -> None:
    """Extract every member of the open ``tar`` into ``dest`` (created when missing), or raise
    :class:`UnsafeArchiveError` at the first unsafe member (members before it stay extracted).

    ``native`` chooses ``tarfile.data_filter`` (True) or the checked member walk (False); the
    default is the filter when this Python has it. Tests force the walk with ``native=False``."""
    use_native = has_data_filter() if native is None else native
    os.makedirs(dest, exist_ok=True)
    dest = os.path.realpath(dest)
    archive = tar.name if isinstance(tar.name, str) else None
    if use_native:

        def data_filter(member, path):
            check_member(member, dest, archive)
            try:
                return tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                raise UnsafeArchiveError(member.name, str(exc), archive) from None

        tar.extractall(dest, filter=data_filter)  # noqa: S202 - data_filter and check_member
        return
    # The members are sanitised already; 3.12+ would otherwise warn (3.14: filter again).
    kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    tar.extractall(dest, members=_walk(tar, dest, archive), **kwargs)  # noqa: S202 - checked walk


def extract_file(path: str, dest: str, mode: str = "r:*", native: bool | None = None) -> None:
    """Open the archive at ``path`` and :func:`extractall` it into ``dest``."""
    with tarfile.open(path, mode) as tar:
        extractall(tar, dest, native=native)

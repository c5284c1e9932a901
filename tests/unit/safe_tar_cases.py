"""Hostile and benign tar archives for plugins/module_utils/safe_tar.py, standard library only.

Shared by tests/unit/test_safe_tar.py (pytest, the venv's Python) and host_python_check.py (the
managed hosts' Pythons, which have no pytest). Every check takes ``extract(archive, dest)`` so the
same checks prove that a plain ``TarFile.extractall`` fails them.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile


def write_tar(path: str, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, body in entries:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _info(name: str, kind=tarfile.REGTYPE, mode: int = 0o644, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, linkname
    info.uid = info.gid = 4242
    info.uname = info.gname = "nobody-in-particular"
    return info


# id -> (member name, the archive's entries for a tmp folder, what must not exist afterwards).
def hostile_cases(tmp: str) -> dict:
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, "secret.txt"), "w") as handle:
        handle.write("secret\n")
    absolute = os.path.join(outside, "absolute.txt")
    device = _info("dev/null", tarfile.CHRTYPE, 0o666)
    device.devmajor, device.devminor = 1, 3
    return {
        "absolute path": (absolute, [(_info(absolute), b"x\n")], [absolute]),
        "dot-dot traversal": (
            "sub/../../outside/escaped.txt",
            [(_info("sub", tarfile.DIRTYPE, 0o755), None), (_info("sub/../../outside/escaped.txt"), b"x\n")],
            [os.path.join(outside, "escaped.txt")],
        ),
        "symlink out": (
            "data/link",
            [
                (_info("data", tarfile.DIRTYPE, 0o755), None),
                (_info("data/link", tarfile.SYMTYPE, 0o777, "../../outside"), None),
            ],
            [],
        ),
        "absolute symlink": ("etc-link", [(_info("etc-link", tarfile.SYMTYPE, 0o777, outside), None)], []),
        "hard link out": (
            "stolen",
            [(_info("stolen", tarfile.LNKTYPE, 0o644, "../outside/secret.txt"), None)],
            [],
        ),
        "character device": ("dev/null", [(_info("dev", tarfile.DIRTYPE, 0o755), None), (device, None)], []),
        "fifo": ("pipe", [(_info("pipe", tarfile.FIFOTYPE, 0o644), None)], []),
    }


def check_hostile(case: str, tmp: str, extract, error=Exception) -> None:
    """The archive of ``case`` is refused with an ``error`` naming its member and nothing leaves
    the destination; AssertionError otherwise."""
    member, entries, must_not_exist = hostile_cases(tmp)[case]
    archive = write_tar(os.path.join(tmp, case.replace(" ", "-") + ".tar.gz"), entries)
    dest = os.path.join(tmp, "dest")
    os.makedirs(dest, exist_ok=True)
    try:
        extract(archive, dest)
    except error as exc:
        assert repr(member) in str(exc) or member in str(exc), f"{case}: {exc!r} does not name {member!r}"
    else:
        raise AssertionError(f"{case}: {archive} was extracted, not refused")
    for path in must_not_exist:
        assert not os.path.lexists(path), f"{case}: {path} was written outside the destination"
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            assert not stat.S_ISLNK(mode) or "link" not in case, f"{case}: {path} is a link"
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode), (
                f"{case}: {path} is special"
            )
            assert os.lstat(path).st_nlink == 1 or stat.S_ISDIR(mode), f"{case}: {path} is hard-linked"


HOSTILE = (
    "absolute path",
    "dot-dot traversal",
    "symlink out",
    "absolute symlink",
    "hard link out",
    "character device",
    "fifo",
)

# member -> (mode in the archive, mode after extraction)
MODES = {
    "setuid": (0o4755, 0o755),
    "setgid-sticky": (0o3775, 0o755),
    "world-writable": (0o666, 0o644),
    "group-writable-exec": (0o775, 0o755),
    "unreadable": (0o000, 0o600),
    "no-owner-exec": (0o055, 0o644),
}


def check_modes(tmp: str, extract) -> None:
    """High bits and group/other write are stripped, owner read/write added (data_filter's rules)."""
    entries = [(_info(name, mode=mode), name.encode()) for name, (mode, _) in MODES.items()]
    archive = write_tar(os.path.join(tmp, "modes.tar.gz"), entries)
    dest = os.path.join(tmp, "dest-modes")
    extract(archive, dest)
    for name, (_, want) in MODES.items():
        got = stat.S_IMODE(os.stat(os.path.join(dest, name)).st_mode)
        assert got == want, f"{name}: mode {got:o}, expected {want:o}"


def check_benign(tmp: str, extract) -> None:
    """Folders, files, a relative symlink and a hard link inside the archive come out intact."""
    entries = [
        (_info("site", tarfile.DIRTYPE, 0o755), None),
        (_info("site/filedir", tarfile.DIRTYPE, 0o700), None),
        (_info("site/filedir/ab.txt"), b"hello\n"),
        (_info("site/run.sh", mode=0o755), b"#!/bin/sh\n"),
        (_info("site/latest", tarfile.SYMTYPE, 0o777, "filedir/ab.txt"), None),
        (_info("site/twin.txt", tarfile.LNKTYPE, 0o644, "site/filedir/ab.txt"), None),
        (_info("site/dots..in..name.txt"), b"dots\n"),
    ]
    archive = write_tar(os.path.join(tmp, "benign.tar.gz"), entries)
    dest = os.path.join(tmp, "dest-benign")
    extract(archive, dest)
    site = os.path.join(dest, "site")
    with open(os.path.join(site, "filedir", "ab.txt")) as handle:
        assert handle.read() == "hello\n"
    assert os.readlink(os.path.join(site, "latest")) == "filedir/ab.txt"
    with open(os.path.join(site, "latest")) as handle:
        assert handle.read() == "hello\n"
    assert os.path.samefile(os.path.join(site, "twin.txt"), os.path.join(site, "filedir", "ab.txt"))
    assert stat.S_IMODE(os.stat(os.path.join(site, "run.sh")).st_mode) == 0o755
    with open(os.path.join(site, "dots..in..name.txt")) as handle:
        assert handle.read() == "dots\n"
    owner = os.stat(os.path.join(site, "filedir", "ab.txt"))
    assert (owner.st_uid, owner.st_gid) == (os.geteuid(), os.getegid()), "archive ownership was applied"


def plain_extract(archive: str, dest: str) -> None:
    """What the hostile checks must catch: ``extractall`` trusting the archive."""
    kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    with tarfile.open(archive) as tar:
        tar.extractall(dest, **kwargs)  # noqa: S202 - the unsafe baseline the checks must reject

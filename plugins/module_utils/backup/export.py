# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running proof-of-concept site handed over as the files an adoption takes (docs/onboarding.md):
its database dumped with its own credentials and its dataroot archived, into a private folder on
its host, read only. The PoC runs outside the estate; an export reads as root, so a PoC whose code,
dataroot or database is (or holds) an estate site's is refused before anything is read (DESIGN rule
10: one customer's data never reaches another's sites)."""

from __future__ import annotations

import gzip
import os
import pwd
import shutil

try:
    from ansible.module_utils.moodle_cli import MoodleSite
except ImportError:  # tests: siblings on sys.path
    from moodle_cli import MoodleSite

from .create import DUMP_ARGS, dataroot_tar, dump_command, dump_reader
from .format import DATAROOT_EXCLUDED, BackupError
from .site_config import db_env, read_site_config

#: Options of lms_poc_export besides the site's (path, web_user, php, timeout).
EXPORT_ARGS = {
    "dest": {"type": "path", "required": True},
    "estate_sites": {"type": "list", "elements": "dict", "default": []},
    "pg_dump": DUMP_ARGS["pg_dump"],
    "mysqldump": DUMP_ARGS["mysqldump"],
}

#: What an adoption takes of the dataroot: the files (filedir) too, not what Moodle rebuilds.
EXPORT_EXCLUDED = DATAROOT_EXCLUDED - {"filedir"}

#: The file the lms role puts in every release it unpacks (roles/lms/tasks/unpack.yml).
RELEASE_MARKER = ".three-instance-release"

#: An estate site's folders (its record's keys) a PoC must keep clear of.
SITE_FOLDERS = (("code", "code_dir"), ("dataroot", "dataroot"))

CHUNK = 1024 * 1024


def _overlap(one: str, other: str) -> bool:
    """One folder is the other or holds it."""
    one, other = one.rstrip("/") + "/", other.rstrip("/") + "/"
    return one.startswith(other) or other.startswith(one)


def estate_conflicts(poc: dict, sites: list[dict]) -> list[str]:
    """What of the PoC (``path`` of its code, ``dataroot``: real paths; ``dbname``; the last two left out
    before its config.php is read) is, holds or lies in an estate site's code folder or dataroot, or is an
    estate site's database, and a code folder that is a release the estate deployed, whatever ``sites``
    says: each named."""
    found = []
    if os.path.exists(os.path.join(poc["path"], RELEASE_MARKER)):
        found.append(f"its code {poc['path']} is a release three-instance deployed (it has {RELEASE_MARKER})")
    for site in sites:
        name = site.get("name") or "an estate site"
        theirs = [
            (kind, os.path.realpath(site[kind_key])) for kind, kind_key in SITE_FOLDERS if site.get(kind_key)
        ]
        for what, mine in (("code", poc["path"]), ("dataroot", poc.get("dataroot"))):
            found += [
                f"its {what} {mine} overlaps {name}'s {kind} {path}"
                for kind, path in theirs
                if mine and _overlap(mine, path)
            ]
        if site.get("db_name") and poc.get("dbname") == site["db_name"]:
            found.append(f"its database {poc['dbname']} is {name}'s")
    return found


def _refuse(path: str, conflicts: list[str]) -> None:
    if conflicts:
        raise BackupError(
            f"refused: the PoC at {path} is not outside the estate: {'; '.join(conflicts)}. A PoC is a site "
            "of its own (its code, dataroot and database); nothing was read"
        )


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def export(params: dict) -> dict:
    """Dump the PoC's database and archive its dataroot into ``dest`` (0700, emptied first); return
    what was written and the PoC's address and version. Nothing of the PoC is changed."""
    site = MoodleSite.from_params(params)
    path = os.path.realpath(site.path)
    # The code folder first: an estate site's config.php is not the export's to read.
    _refuse(site.path, estate_conflicts({"path": path}, params["estate_sites"]))
    cfg = read_site_config(site)
    poc = {"path": path, "dataroot": os.path.realpath(cfg["dataroot"]), "dbname": cfg["dbname"]}
    _refuse(site.path, estate_conflicts(poc, params["estate_sites"]))
    owner = pwd.getpwuid(os.stat(poc["dataroot"]).st_uid).pw_name
    if owner != params["web_user"]:
        raise BackupError(
            f"refused: the PoC's dataroot {poc['dataroot']} belongs to {owner}, not to its web user "
            f"{params['web_user']} (the user its PHP runs as writes its dataroot); nothing was read"
        )
    code = site.code_version()
    dest = params["dest"]
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, mode=0o700)
    cmd, name, fmt = dump_command(cfg, params)
    with (
        open(os.path.join(dest, name), "wb", opener=_private) as out,
        dump_reader(cmd, db_env(cfg)[1], fmt) as dump,
    ):
        shutil.copyfileobj(dump, out, CHUNK)
    archive = os.path.join(dest, "dataroot.tar.gz")
    with (
        open(archive, "wb", opener=_private) as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as out,
    ):
        dataroot_tar(poc["dataroot"], out, EXPORT_EXCLUDED)
    return {
        "changed": False,
        "dest": dest,
        "dump": name,
        "files": {item: os.path.getsize(os.path.join(dest, item)) for item in (name, "dataroot.tar.gz")},
        "wwwroot": cfg["wwwroot"],
        "dbtype": cfg["dbtype"],
        "version": code.get("version"),
        "release": code.get("release"),
    }

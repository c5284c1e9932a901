# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a proof-of-concept site: its database dump and dataroot archive become a site of the
estate (docs/onboarding.md). The PoC is first loaded into a scratch site that runs the target's
code and read there (version, plugins); only when the target's code can run it is the target
changed, with the restore's own steps (load, dataroot swap, wwwroot rewrite, new identity)."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import time

try:
    from ansible.module_utils.digest import sha256_file
    from ansible.module_utils.moodle_cli import MoodleError, MoodleSite, run_command
    from ansible.module_utils.php.adopt_inspect import INSPECT_POC_PHP
except ImportError:  # tests: siblings on sys.path
    from digest import sha256_file
    from moodle_cli import MoodleError, MoodleSite, run_command
    from php.adopt_inspect import INSPECT_POC_PHP

from .format import DATAROOT_EXCLUDED, BackupError
from .restore import (
    DB_CLIENT_ARGS,
    carry_grants,
    extract_dataroot,
    load_database,
    new_identity,
    rewrite_wwwroot,
    swap_dataroot,
)
from .site_config import MYSQL_TYPES, db_env, php_answer, read_site_config
from .verify import SCRATCH_ARGS, scratch_site

#: Options of lms_adopt besides the site's.
ADOPT_ARGS = {
    "dump": {"type": "path", "required": True},
    "dataroot_archive": {"type": "path", "required": True},
    "source_wwwroot": {"type": "str", "required": True},
    "force": {"type": "bool", "default": False},
    **SCRATCH_ARGS,
    **DB_CLIENT_ARGS,
}

#: Where the adopted PoC is recorded in the target (config_plugins), so the same one is not loaded twice.
MARKER = ("adopted_from", "three_instance")


def dump_format(path: str, dbtype: str) -> str:
    """The dump's format, from its first bytes, checked against the target's database type."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise BackupError(f"cannot read the dump {path}: {exc.strerror}") from exc
    fmt = "pg_dump-custom" if head == b"PGDMP" else "mysqldump-gzip" if head[:2] == b"\x1f\x8b" else None
    wanted = "pg_dump-custom" if dbtype == "pgsql" else "mysqldump-gzip" if dbtype in MYSQL_TYPES else None
    if fmt is None or fmt != wanted:
        raise BackupError(
            f"the dump {path} is {fmt or 'neither a pg_dump custom archive nor gzip'}; the target's "
            f"database ({dbtype}) takes "
            + ("pg_dump --format=custom" if dbtype == "pgsql" else "mysqldump output compressed with gzip")
        )
    return fmt


def dataroot_root(unpacked: str) -> str:
    """The dataroot inside an unpacked archive: the top itself when it holds ``filedir``, or its one
    folder (an archive of the folder rather than of its content)."""
    if os.path.isdir(os.path.join(unpacked, "filedir")):
        return unpacked
    entries = os.listdir(unpacked)
    if len(entries) == 1 and os.path.isdir(os.path.join(unpacked, entries[0], "filedir")):
        return os.path.join(unpacked, entries[0])
    raise BackupError(
        "the dataroot archive has no filedir/ (at its top or in its one folder): it is not a Moodle dataroot"
    )


def poc_prefix(cfg: dict, params: dict) -> str | None:
    """The table prefix of the database named in ``cfg`` (the one whose ``config_plugins`` table is
    there), or None when it holds no Moodle database."""
    args, env = db_env(cfg)
    if cfg["dbtype"] == "pgsql":
        sql = (
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename LIKE '%config_plugins'"
        )
        cmd = [params["psql"], "-X", "-A", "-t", "-c", sql]
    else:
        cmd = [params["mysql"], *args, "-N", "-B", "-e", "SHOW TABLES LIKE '%config_plugins'", cfg["dbname"]]
    result = run_command(cmd, env=env)
    if result.rc != 0:
        raise BackupError(f"cannot list the tables of the loaded dump: {result.stderr.strip()[-500:]}")
    names = sorted(line.strip() for line in result.stdout.splitlines() if line.strip())
    return names[0][: -len("config_plugins")] if names else None


def inspect(site: MoodleSite, cfg: dict, params: dict, fmt: str) -> dict:
    """Load the dump into a scratch site running the target's code and read it there."""
    with scratch_site(site, cfg, params, "adopt") as (scratch_params, scratch_cfg):
        load_database(scratch_cfg, params["dump"], fmt, params)
        prefix = poc_prefix(scratch_cfg, params)
        if prefix is None:
            raise BackupError(f"the dump {params['dump']} holds no Moodle database (no config_plugins table)")
        if prefix != cfg["prefix"]:
            raise BackupError(
                f"the dump's tables use the prefix '{prefix}', the target's config.php '{cfg['prefix']}': "
                "adopt it into a site configured with the PoC's prefix"
            )
        scratch = MoodleSite.from_params(scratch_params)
        return php_answer(scratch, INSPECT_POC_PHP, "@@LMS-POC@@", scratch.config_php)


def stage_dataroot(archive: str, staging: str, owner) -> str:
    """Unpack the PoC's dataroot archive into ``staging`` (safely: safe_tar), without what Moodle
    rebuilds (caches, sessions, temp, locks, the PoC's cache configuration); returns its path."""
    unpacked = os.path.join(staging, "unpacked")
    extract_dataroot(archive, unpacked, owner)
    new_dataroot = os.path.join(staging, "dataroot")
    os.rename(dataroot_root(unpacked), new_dataroot)
    for name in DATAROOT_EXCLUDED - {"filedir"}:
        path = os.path.join(new_dataroot, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    os.chown(new_dataroot, *owner)
    os.chmod(new_dataroot, 0o2770)  # noqa: S103 - Moodle's directorypermissions: the site user's group
    return new_dataroot


def adopt(params: dict, check_mode: bool = False) -> dict:
    """Adopt the PoC (``dump``, ``dataroot_archive``, its address ``source_wwwroot``) into the site at
    ``path``: inspect it in a scratch site, refuse what the target's code cannot run, then replace the
    target's database and dataroot, upgrade to the target's code, rewrite the address, give it an
    identity of its own. Nothing of the PoC's files is changed."""
    started = time.monotonic()
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    for option in ("dump", "dataroot_archive"):
        if not os.path.isfile(params[option]):
            raise BackupError(f"{option} {params[option]} is not a file")
    fmt = dump_format(params["dump"], cfg["dbtype"])
    digest = hashlib.sha256(
        (sha256_file(params["dump"]) + sha256_file(params["dataroot_archive"])).encode()
    ).hexdigest()
    marker = f"poc-{digest[:20]}"
    result = {
        "changed": True,
        "adopted": marker,
        "already_adopted": False,
        "wwwroot_from": params["source_wwwroot"],
        "wwwroot_to": cfg["wwwroot"],
    }
    try:
        previous = site.cfg_get(*MARKER) if site.has_config() else None
    except MoodleError:
        previous = None  # an empty database
    if previous == marker and not params["force"]:
        return {
            **result,
            "changed": False,
            "already_adopted": True,
            "msg": f"{marker} is adopted here already",
        }
    poc = inspect(site, cfg, params, fmt)
    code_version = site.code_version()["version"]
    result.update(
        poc_version=poc["version"],
        poc_release=poc["release"],
        target_version=code_version,
        nonstandard_plugins=poc["nonstandard_plugins"],
        rows=poc["rows"],
        upgraded=float(poc["version"]) < float(code_version),
    )
    if poc["missing_plugins"]:
        raise BackupError(
            "the PoC uses plugins the target's release does not carry: "
            + ", ".join(f"{p['component']} ({p['version']})" for p in poc["missing_plugins"])
            + ". Add them to the release (its manifest's plugins), or uninstall them in the PoC. "
            "Nothing was changed"
        )
    if float(poc["version"]) > float(code_version):
        raise BackupError(
            f"the PoC runs Moodle {poc['release']} ({poc['version']}), newer than the target's code "
            f"{code_version}: deploy a release of that branch or newer first. Nothing was changed"
        )
    if check_mode:
        return result
    changed = [False]
    try:
        _adopt_into(site, cfg, params, fmt, result["upgraded"], marker, changed)
    except Exception as exc:
        # Whether the target had started to change: before, it still holds its own content.
        exc.target_changed = changed[0]
        raise
    return {**result, "seconds": round(time.monotonic() - started, 2)}


def _adopt_into(site, cfg, params, fmt, upgrade, marker, changed) -> None:
    """The changing part of :func:`adopt`; sets ``changed[0]`` once the target starts to change."""
    user = pwd.getpwnam(site.web_user)
    owner = (user.pw_uid, user.pw_gid)
    dataroot = cfg["dataroot"].rstrip("/")
    staging = dataroot + ".adopting"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging, mode=0o700)
    try:
        new_dataroot = stage_dataroot(params["dataroot_archive"], staging, owner)
        carry_grants(dataroot, new_dataroot)
        # Everything is checked and staged: from here on the target changes.
        changed[0] = True
        load_database(cfg, params["dump"], fmt, params)
        swap_dataroot(dataroot, new_dataroot, staging, owner)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if upgrade:
        # The PoC's schema first becomes the code's, so that what follows runs on the schema it knows.
        run = site.upgrade(maintenance=True)
        site.require_upgraded(run.stdout)
    rewrite_wwwroot(site, params["source_wwwroot"].rstrip("/"), cfg["wwwroot"].rstrip("/"))
    new_identity(site, cfg)
    site.cfg_set(MARKER[0], marker, MARKER[1])
    site.cli("purge_caches.php")

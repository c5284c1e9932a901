# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifying a backup by restoring it into a scratch site (a hard-linked copy of the site's code, a
scratch database and dataroot), checking it through Moodle and removing the scratch site."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import time

try:
    from ansible.module_utils.moodle_cli import MoodleSite, run_command
    from ansible.module_utils.php.scratch_config import SCRATCH_CONFIG
    from ansible.module_utils.php.verify_check import CHECK_PHP
    from ansible.module_utils.s3_store import MIB, connect
except ImportError:  # benchmarks, tests: siblings on sys.path
    from moodle_cli import MoodleSite, run_command
    from php.scratch_config import SCRATCH_CONFIG
    from php.verify_check import CHECK_PHP
    from s3_store import MIB, connect

from .format import BackupError, check_objects, load_manifest, site_keys
from .restore import DB_CLIENT_ARGS, restore
from .site_config import php_answer, read_site_config

#: Options of the scratch site (:func:`scratch_site`; doc fragment lms_scratch_site).
SCRATCH_ARGS = {
    "scratch_dir": {"type": "path", "default": "/var/lib/lms-verify"},
    "db_admin_user": {"type": "str"},
    "db_admin_socket": {"type": "str"},
}

#: Options of lms_backup_verify besides the site's and the bucket's.
VERIFY_ARGS = {
    "backup_id": {"type": "str"},
    **SCRATCH_ARGS,
    "samples": {"type": "int", "default": 20},
    **DB_CLIENT_ARGS,
}

SQL_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,60}\Z")


def php_literal(value) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def admin_sql(cfg: dict, params: dict, sql: str) -> None:
    """SQL as the database server's administrator over the local socket (PostgreSQL: the
    ``postgres`` OS user by peer authentication; MariaDB: root by unix socket authentication)."""
    if cfg["dbtype"] == "pgsql":
        socket = params.get("db_admin_socket") or (cfg["dbsocket"] if cfg["dbsocket"].startswith("/") else "")
        cmd = ["runuser", "-u", params.get("db_admin_user") or "postgres", "--", params["psql"], "-X", "-q"]
        cmd += ["-h", socket or "/var/run/postgresql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql]
        if cfg["dbport"]:
            cmd += ["-p", cfg["dbport"]]
    else:
        socket = params.get("db_admin_socket") or cfg["dbsocket"] or "/run/mysqld/mysqld.sock"
        cmd = [
            params["mysql"],
            "--no-defaults",
            f"--socket={socket}",
            "-u",
            params.get("db_admin_user") or "root",
        ]
        cmd += ["-N", "-B", "-e", sql]
    result = run_command(cmd, timeout=600)
    if result.rc != 0:
        raise BackupError(
            f"database administration failed ({sql.split()[0]} ...): {result.stderr.strip()[-500:]}"
        )
    return result.stdout


def verify_plan(params: dict) -> dict:
    """Check mode of :func:`verify_backup`: the backup that would be restored, and whether every
    object its manifest lists is in the bucket (a listing, nothing is downloaded or restored)."""
    store = connect(params["store"])
    keys = site_keys(params)
    manifest = load_manifest(store, keys, params["backup_id"])
    problems = check_objects(store, keys, manifest)
    return {
        "changed": False,
        "backup_id": manifest["id"],
        "ok": not problems,
        "problems": problems,
        "version": manifest["moodle"]["version"],
    }


@contextlib.contextmanager
def scratch_site(site: MoodleSite, cfg: dict, params: dict, purpose: str):
    """A scratch copy of ``site`` for ``purpose`` (``verify``, ``adopt``): a hard-linked copy of its
    code under ``<scratch_dir>/<site>.<purpose>`` with its own config.php, an empty scratch database
    ``<dbname>_<purpose>`` owned by the site's database user, and an empty dataroot. Yields the
    scratch site's params (``path`` is the copy) and its cfg; removed afterwards, also on failure.
    The site itself is not touched."""
    scratch = os.path.join(params["scratch_dir"], f"{params['site']}.{purpose}")
    scratch_db = f"{cfg['dbname']}_{purpose}"[:63]
    for value in (cfg["dbname"], cfg["dbuser"]):
        if not SQL_NAME.match(value):  # they go into administrative SQL as names
            raise BackupError(
                f"database or user name {value!r} has characters a scratch site does not handle"
            )
    code = os.path.join(scratch, "code")
    dataroot = os.path.join(scratch, "data")
    user = pwd.getpwnam(site.web_user)
    drop = (
        f'DROP DATABASE IF EXISTS "{scratch_db}"'
        if cfg["dbtype"] == "pgsql"
        else f"DROP DATABASE IF EXISTS `{scratch_db}`"
    )
    cleanup = []
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch, mode=0o755)
        cleanup.append(scratch)
        os.chmod(scratch, 0o755)  # noqa: S103 - the web user walks to the code and the dataroot
        copy = run_command(["cp", "-al", os.path.realpath(site.path), code])
        if copy.rc != 0:
            raise BackupError(f"cannot copy the code to {code}: {copy.stderr.strip()}")
        os.makedirs(dataroot, mode=0o2770)
        os.chown(dataroot, user.pw_uid, user.pw_gid)
        admin_sql(cfg, params, drop)
        cleanup.append("db")
        if cfg["dbtype"] == "pgsql":
            admin_sql(
                cfg, params, f'CREATE DATABASE "{scratch_db}" OWNER "{cfg["dbuser"]}" TEMPLATE template0'
            )
        else:
            admin_sql(cfg, params, f"CREATE DATABASE `{scratch_db}` DEFAULT CHARACTER SET utf8mb4")
            hosts = admin_sql(
                cfg,
                params,
                f"SELECT Host FROM mysql.user WHERE User = '{cfg['dbuser']}'",  # noqa: S608 - checked
            ).split()
            for host in hosts:
                admin_sql(
                    cfg, params, f"GRANT ALL PRIVILEGES ON `{scratch_db}`.* TO '{cfg['dbuser']}'@'{host}'"
                )
        config = os.path.join(code, "config.php")
        if os.path.lexists(config):
            os.unlink(config)  # a hard link (or a symlink) to the site's own config
        setup = "server/lib/setup.php" if site.layout.name == "server" else "lib/setup.php"
        wwwroot = cfg["wwwroot"].rstrip("/") + f"/lms-{purpose}"
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(
                SCRATCH_CONFIG.replace("{site}", params["site"]).format(
                    **{k: php_literal(cfg[k]) for k in ("dbtype", "dbhost", "dbuser", "dbpass", "prefix")},
                    dbname=php_literal(scratch_db),
                    dbport=php_literal(cfg["dbport"]),
                    dbsocket=php_literal(cfg["dbsocket"]),
                    wwwroot=php_literal(wwwroot),
                    dataroot=php_literal(dataroot),
                    setup=setup,
                )
            )
        os.chown(config, 0, user.pw_gid)
        os.chmod(config, 0o640)
        yield (
            {**params, "path": code},
            {**cfg, "dbname": scratch_db, "dataroot": dataroot, "wwwroot": wwwroot},
        )
    finally:
        if "db" in cleanup:
            admin_sql(cfg, params, drop)
        if cleanup:
            shutil.rmtree(scratch, ignore_errors=True)


def verify_backup(params: dict) -> dict:
    """Restore a backup (the latest by default) into a scratch site - a hard-linked copy of the
    site's code, a scratch database and dataroot - check it and remove the scratch site."""
    started = time.monotonic()
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    with scratch_site(site, cfg, params, "verify") as (scratch_params, scratch_cfg):
        scratch_params = {**scratch_params, "source_site": params["site"], "force": True, "settings": {}}
        restored = restore(scratch_params)
        restored_site = MoodleSite.from_params(scratch_params)
        checked = php_answer(restored_site, CHECK_PHP, "@@LMS-CHECK@@", restored_site.config_php)
        keys = site_keys(params)
        manifest = load_manifest(connect(params["store"]), keys, restored["backup_id"])
        samples = sorted(manifest["filedir"])[
            :: max(1, len(manifest["filedir"]) // max(1, params["samples"]))
        ]
        bad_samples = [
            sha1
            for sha1 in samples[: params["samples"]]
            if file_sha1(os.path.join(scratch_cfg["dataroot"], "filedir", sha1[:2], sha1[2:4], sha1)) != sha1
        ]
    problems = []
    if checked["version"] != manifest["moodle"]["version"]:
        problems.append(f"restored version {checked['version']} != backup's {manifest['moodle']['version']}")
    if checked["missing_files"]:
        problems.append(
            f"{len(checked['missing_files'])} files the database refers to are not in the filedir"
        )
    if bad_samples:
        problems.append(f"sample files differ from their SHA-1: {', '.join(bad_samples[:5])}")
    if not checked["rows"]["user"] or not checked["rows"]["config"]:
        problems.append("the restored database has no users or no config")
    return {
        "changed": False,
        "backup_id": restored["backup_id"],
        "ok": not problems,
        "problems": problems,
        "version": checked["version"],
        "release": checked["release"],
        "rows": checked["rows"],
        "files_referenced_missing": len(checked["missing_files"]),
        "samples_checked": len(samples[: params["samples"]]),
        "restore_seconds": restored["seconds"],
        "seconds": round(time.monotonic() - started, 2),
    }


def file_sha1(path: str) -> str | None:
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(MIB), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()

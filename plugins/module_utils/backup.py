# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a Moodle/Totara site to S3, and restores from them (the logic of ``lms_backup*`` and
``lms_restore``; docs/backups.md explains the design and the bucket layout).

Bucket layout, under ``<prefix>/<customer>/``::

    content/<sha1[:2]>/<sha1>             filedir files above PACK_MAX_FILE, one object each
    packs/<sha256>.pack                   small filedir files, concatenated (about PACK_TARGET each)
    packs/<sha256>.json                   the pack's index (sha1 -> offset, size), written after it
    sites/<site>/data/<id>/database.*     the dump (pg_dump -Fc, or mysqldump gzipped)
    sites/<site>/data/<id>/dataroot.tar.gz  the dataroot without filedir and caches
    sites/<site>/data/<id>/config.php     the site's config.php
    sites/<site>/manifests/<id>.json      written last: the commit point

Content objects and packs are shared by every backup of the customer. A backup exists iff its
manifest exists; a pack exists iff its index does. Consistency without downtime: the database is dumped first
(one snapshot), then the files. Moodle's filedir is content-addressed and never rewritten in place,
and files are deleted only by a cron task after their last database reference went, so every file
the dump refers to is still there when the files are read afterwards.

Runs inside Ansible modules and as a plain script (``python3 backup.py create --config file.json``,
which the systemd timer of ``roles/backup`` uses): the same code either way.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

try:
    from ansible.module_utils.moodle_cli import (
        COMMON_ARGS,
        MoodleError,
        MoodleSite,
        read_deployment_record,
        run_command,
    )
    from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, MIB, StoreError, connect, store_defaults
except ImportError:  # run as a script (roles/backup) or in unit tests: siblings on sys.path
    from moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, read_deployment_record, run_command
    from s3_store import BACKUP_STORE_ARGS, MIB, StoreError, connect, store_defaults

FORMAT = 2
#: Manifests this code reads: format 1 has every filedir file as a loose object (no "packs").
READABLE_FORMATS = (1, 2)
#: Filedir files up to this size go into packs: most of a filedir's files are small, and a store
#: pays per request (moto serves ~200 small PUTs a second here; docs/backups.md, benchmark).
PACK_MAX_FILE = 256 * 1024
#: A pack is closed when the next file would take it past this size.
PACK_TARGET = 16 * 1024 * 1024
#: The site's own cache configuration (MUC): it names the site's Redis and holds its password, so
#: it belongs to the site, never to a backup; a restore keeps the target's (older backups carry one:
#: it is dropped on unpacking).
MUC_DIR = "muc"
#: Top-level dataroot entries a backup leaves out: filedir goes by content, the rest is rebuilt.
DATAROOT_EXCLUDED = frozenset(
    {"filedir", "cache", "localcache", "sessions", "temp", "trashdir", "lock", "climaintenance.html", MUC_DIR}
)
BACKUP_ID = re.compile(r"\A[0-9A-Za-z][0-9A-Za-z._-]{0,63}\Z")
SHA1_NAME = re.compile(r"\A[0-9a-f]{40}\Z")
MYSQL_TYPES = ("mysqli", "mariadb", "auroramysql")
SQL_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,60}\Z")

#: Where backups are in the bucket unless the store's prefix says otherwise.
BACKUP_PREFIX = "lms-backups"

#: The site whose backups a module handles (with BACKUP_STORE_ARGS; moodle_cli.COMMON_ARGS if it runs PHP).
SITE_ARGS = {
    "site": {"type": "str", "required": True},
    "customer": {"type": "str", "required": True},
}

#: Options of lms_backup (and the timer's script) for the dump and the uploads.
DUMP_ARGS = {
    "pg_dump": {"type": "str", "default": "pg_dump"},
    "mysqldump": {"type": "str", "default": "mysqldump"},
    "part_size_mb": {"type": "int", "default": 16},
}


#: Retention policy options (lms_backup_prune, and the timer's prune run).
PRUNE_ARGS = {
    "keep_daily": {"type": "int", "default": 7},
    "keep_weekly": {"type": "int", "default": 4},
    "keep_monthly": {"type": "int", "default": 6},
    "grace_hours": {"type": "int", "default": 24},
}

#: The database clients a restore loads the dump with (doc fragment lms_db_clients).
DB_CLIENT_ARGS = {
    "pg_restore": {"type": "str", "default": "pg_restore"},
    "psql": {"type": "str", "default": "psql"},
    "mysql": {"type": "str", "default": "mysql"},
}

#: Options of lms_restore besides the site's and the bucket's.
RESTORE_ARGS = {
    "source_site": {"type": "str"},
    "backup_id": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "settings": {"type": "dict", "default": {}},
    **DB_CLIENT_ARGS,
}


class BackupError(Exception):
    """A backup or restore cannot go on; ``str()`` says what and what to do."""


def now_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def id_time(backup_id: str, manifest: dict | None = None) -> dt.datetime:
    """When a backup was taken: its manifest's ``created``, else its id (``YYYYmmddTHHMMSSZ``)."""
    if manifest and manifest.get("created"):
        return dt.datetime.fromisoformat(manifest["created"])
    return dt.datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------------------------------------
# Keys.


def site_keys(params: dict, site: str | None = None) -> Keys:
    """The keys of ``site`` (default the module's own) in the module's store."""
    prefix = params["store"].get("prefix")
    return Keys(BACKUP_PREFIX if prefix is None else prefix, params["customer"], site or params["site"])


class Keys:
    def __init__(self, prefix: str, customer: str, site: str):
        for label, value in (("customer", customer), ("site", site)):
            if not BACKUP_ID.match(value or ""):
                raise BackupError(f"{label} '{value}' is not a valid name (letters, digits, . _ -)")
        base = f"{prefix.strip('/')}/{customer}/" if prefix.strip("/") else f"{customer}/"
        self.customer_prefix = base
        self.content_prefix = base + "content/"
        self.pack_prefix = base + "packs/"
        self.sites_prefix = base + "sites/"
        self.site_prefix = f"{base}sites/{site}/"
        self.manifest_prefix = self.site_prefix + "manifests/"
        self.data_prefix = self.site_prefix + "data/"

    def content(self, sha1: str) -> str:
        return f"{self.content_prefix}{sha1[:2]}/{sha1}"

    def pack(self, pack_id: str) -> str:
        return f"{self.pack_prefix}{pack_id}.pack"

    def pack_index(self, pack_id: str) -> str:
        return f"{self.pack_prefix}{pack_id}.json"

    def manifest(self, backup_id: str) -> str:
        return f"{self.manifest_prefix}{backup_id}.json"

    def data(self, backup_id: str, name: str) -> str:
        return f"{self.data_prefix}{backup_id}/{name}"


# --------------------------------------------------------------------------------------------------------
# The site: its config through Moodle, its database tools.

READ_CONFIG_PHP = r"""<?php
// Reads config.php without connecting to anything and prints the $CFG fields a backup needs.
define('CLI_SCRIPT', true);
define('ABORT_AFTER_CONFIG', true);
require($argv[1]);
$o = isset($CFG->dboptions) ? $CFG->dboptions : [];
echo "\n@@LMS-CONFIG@@" . json_encode([
    'dbtype' => $CFG->dbtype, 'dbhost' => $CFG->dbhost, 'dbname' => $CFG->dbname,
    'dbuser' => $CFG->dbuser, 'dbpass' => $CFG->dbpass, 'prefix' => $CFG->prefix,
    'dbport' => isset($o['dbport']) ? (string)$o['dbport'] : '',
    'dbsocket' => isset($o['dbsocket']) ? (string)$o['dbsocket'] : '',
    'wwwroot' => $CFG->wwwroot, 'dataroot' => $CFG->dataroot,
    // Settings config.php forces: cfg.php cannot change them (a restore checks its settings early).
    'forced' => array_keys((array)$CFG),
    'forced_plugin_settings' => isset($CFG->forced_plugin_settings) ? $CFG->forced_plugin_settings : [],
]) . "\n";
"""


def read_site_config(site: MoodleSite) -> dict:
    """``$CFG`` database fields, wwwroot and dataroot, read by PHP as the web user (the password
    travels on the PHP process's stdout only)."""
    site.require_config()
    try:
        return run_php(site, READ_CONFIG_PHP, "@@LMS-CONFIG@@", site.config_php)
    except BackupError as exc:
        raise BackupError(f"cannot read {site.config_php}: {exc}") from exc


def db_env(cfg: dict) -> tuple[list[str], dict]:
    """Connection arguments and environment for the database client tools; the password goes in
    the environment (``PGPASSWORD`` / ``MYSQL_PWD``), never on a command line."""
    env = dict(os.environ)
    if cfg["dbtype"] == "pgsql":
        host = cfg["dbsocket"] if cfg["dbsocket"].startswith("/") else cfg["dbhost"]
        env.update(
            PGHOST=host, PGUSER=cfg["dbuser"], PGDATABASE=cfg["dbname"], PGPASSWORD=cfg["dbpass"] or ""
        )
        if cfg["dbport"]:
            env["PGPORT"] = cfg["dbport"]
        return [], env
    if cfg["dbtype"] in MYSQL_TYPES:
        env["MYSQL_PWD"] = cfg["dbpass"] or ""
        args = [f"--user={cfg['dbuser']}"]
        if cfg["dbsocket"].startswith("/") and cfg["dbhost"] in ("localhost", ""):
            args.append(f"--socket={cfg['dbsocket']}")
        else:
            args.append(f"--host={cfg['dbhost']}")
            if cfg["dbport"]:
                args.append(f"--port={cfg['dbport']}")
        return args, env
    raise BackupError(f"database type '{cfg['dbtype']}' is not supported (pgsql, mariadb, mysqli)")


class ProcessReader:
    """Reads a producer's output (a process or a thread writing into a pipe); at its end checks that
    the producer succeeded and raises otherwise, which aborts the upload reading from it."""

    def __init__(self, stream, finish, compress: bool = False):
        self.stream = stream
        self.finish = finish
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        self.done = False

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        while True:
            data = self.stream.read(size)
            if not data:
                self.done = True
                self.finish()
                return self.compressor.flush() if self.compressor else b""
            if not self.compressor:
                return data
            packed = self.compressor.compress(data)
            if packed:
                return packed


def dump_command(cfg: dict, params: dict) -> tuple[list[str], str, str]:
    """(argv, object name, format) of the database dump."""
    if cfg["dbtype"] == "pgsql":
        return (
            [params["pg_dump"], "--format=custom", "--no-owner", "--no-acl"],
            "database.pgdump",
            "pg_dump-custom",
        )
    args, _env = db_env(cfg)
    return (
        [params["mysqldump"], *args, "--single-transaction", "--quick", "--no-tablespaces", cfg["dbname"]],
        "database.sql.gz",
        "mysqldump-gzip",
    )


# --------------------------------------------------------------------------------------------------------
# Manifests.


def seal(manifest: dict) -> bytes:
    """The manifest as stored: canonical JSON with its own sha256 inside (``sha256`` of the rest)."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return json.dumps({**body, "sha256": digest}, sort_keys=True, separators=(",", ":")).encode()


def unseal(raw: bytes, where: str) -> dict:
    """Parse and check a stored manifest or pack index; :class:`BackupError` when it is corrupt."""
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BackupError(f"manifest {where} is corrupt (not JSON): refusing to use this backup") from exc
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise BackupError(f"manifest {where} is corrupt (no checksum): refusing to use this backup")
    if json.loads(seal(manifest))["sha256"] != manifest["sha256"]:
        raise BackupError(f"manifest {where} is corrupt (checksum mismatch): refusing to use this backup")
    if manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(
            f"manifest {where} has format {manifest.get('format')}, this code reads {READABLE_FORMATS}"
        )
    return manifest


def list_backups(store, keys: Keys) -> list[str]:
    """Ids of the site's backups (those with a manifest), oldest first."""
    ids = [
        key[len(keys.manifest_prefix) : -5]
        for key in store.list(keys.manifest_prefix)
        if key.endswith(".json")
    ]
    return sorted(ids)


def load_manifest(store, keys: Keys, backup_id: str | None = None) -> dict:
    """The manifest of ``backup_id`` (the latest when None), checked."""
    if backup_id is None:
        ids = list_backups(store, keys)
        if not ids:
            raise BackupError(f"no backup of {keys.site_prefix} in bucket '{store.bucket}'")
        backup_id = ids[-1]
    key = keys.manifest(backup_id)
    if store.head_size(key) is None:
        raise BackupError(
            f"backup '{backup_id}' has no manifest s3://{store.bucket}/{key}: it does not exist or is "
            "incomplete (an interrupted backup); refusing it"
        )
    return unseal(store.get(key), f"s3://{store.bucket}/{key}")


class Content:
    """Where the customer's filedir content is in the bucket: loose objects (``content/``) and packs
    (``packs/``). A pack counts only with its index, whose size matches the pack's."""

    def __init__(self, loose: dict[str, int], packs: dict[str, dict], problems: list[str]):
        self.loose = loose  # sha1 -> size
        self.packs = packs  # pack id -> index {"size": n, "files": {sha1: [offset, size]}}
        self.problems = problems  # indexes that could not be read
        self.packed = {}  # sha1 -> (pack id, offset, size)
        for pack_id in sorted(packs):
            self.add_pack(pack_id, packs[pack_id])

    def add_pack(self, pack_id: str, index: dict) -> None:
        self.packs[pack_id] = index
        for sha1, (offset, size) in index["files"].items():
            self.packed.setdefault(sha1, (pack_id, offset, size))

    @classmethod
    def load(cls, store, keys: Keys, pack_ids=None) -> Content:
        """The catalogue; with ``pack_ids`` only those packs' indexes are read (a restore needs the
        packs its manifest names, a backup all of them)."""
        loose = {key.rsplit("/", 1)[1]: size for key, size in store.list_sharded(keys.content_prefix).items()}
        listing = store.list(keys.pack_prefix)
        sizes = {
            key[len(keys.pack_prefix) : -5]: size for key, size in listing.items() if key.endswith(".pack")
        }
        ids = [key[len(keys.pack_prefix) : -5] for key in listing if key.endswith(".json")]
        ids = [i for i in ids if i in sizes and (pack_ids is None or i in pack_ids)]
        packs, problems = {}, []

        def read(pack_id):
            try:
                return pack_id, unseal(store.get(keys.pack_index(pack_id)), keys.pack_index(pack_id))
            except (BackupError, StoreError) as exc:
                problems.append(str(exc))
                return pack_id, None

        with ThreadPoolExecutor(store.threads) as pool:
            for pack_id, index in pool.map(read, ids):
                if index is not None and index.get("size") == sizes[pack_id]:
                    packs[pack_id] = index
        return cls(loose, packs, problems)

    def locate(self, sha1: str, size: int, pack_ids=None):
        """``("loose", None)``, ``(pack id, offset)`` or None when the bucket lacks the file."""
        if self.loose.get(sha1) == size:
            return ("loose", None)
        found = self.packed.get(sha1)
        if found and found[2] == size and (pack_ids is None or found[0] in pack_ids):
            return found[:2]
        if pack_ids is not None:  # another pack of the manifest's may hold it too
            for pack_id in pack_ids:
                entry = self.packs.get(pack_id, {}).get("files", {}).get(sha1)
                if entry and entry[1] == size:
                    return (pack_id, entry[0])
        return None


# --------------------------------------------------------------------------------------------------------
# Creating a backup.


def scan_filedir(dataroot: str) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """``{sha1: (path, size)}`` of Moodle's filedir (``filedir/ab/cd/<sha1>``), and names that do not
    belong there (reported, not backed up)."""
    found, strange = {}, []
    top = os.path.join(dataroot, "filedir")
    if not os.path.isdir(top):
        return found, strange
    for level1 in os.scandir(top):
        if not level1.is_dir(follow_symlinks=False):
            if level1.name != "warning.txt":
                strange.append(level1.path)
            continue
        for level2 in os.scandir(level1.path):
            if not level2.is_dir(follow_symlinks=False):
                strange.append(level2.path)
                continue
            for entry in os.scandir(level2.path):
                if SHA1_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    found[entry.name] = (entry.path, entry.stat(follow_symlinks=False).st_size)
                else:
                    strange.append(entry.path)
    return found, strange


def dataroot_tar(dataroot: str, fileobj) -> None:
    """The dataroot without :data:`DATAROOT_EXCLUDED` as a tar stream into ``fileobj``. Files that
    vanish while it runs (Moodle deletes temp files any time) are skipped."""
    with tarfile.open(fileobj=fileobj, mode="w|") as tar:
        for root, dirs, files in os.walk(dataroot):
            rel = os.path.relpath(root, dataroot)
            if rel == ".":
                dirs[:] = sorted(d for d in dirs if d not in DATAROOT_EXCLUDED)
                files = [f for f in files if f not in DATAROOT_EXCLUDED]
            else:
                dirs.sort()
                with contextlib.suppress(FileNotFoundError):
                    tar.add(root, arcname=rel, recursive=False)
            for name in sorted(files):
                path = os.path.join(root, name)
                if os.path.islink(path) or os.path.isfile(path):
                    with contextlib.suppress(FileNotFoundError):
                        tar.add(path, arcname=os.path.normpath(os.path.join(rel, name)), recursive=False)


def threaded_pipe(writer):
    """A readable stream of what ``writer(fileobj)`` writes in a thread, gzipped (level 6: tarfile's
    own gzip stream is level 9, several times slower); errors surface at its end."""
    read_fd, write_fd = os.pipe()
    errors = []

    def run():
        try:
            with os.fdopen(write_fd, "wb") as out:
                writer(out)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stream = os.fdopen(read_fd, "rb")

    def finish():
        thread.join()
        stream.close()
        if errors:
            raise BackupError(f"reading the dataroot failed: {errors[0]}") from errors[0]

    return ProcessReader(stream, finish, compress=True)


class Uploader:
    """Uploads the parts of one backup and records them for the manifest."""

    def __init__(self, store, keys: Keys, backup_id: str, part_size: int):
        self.store = store
        self.keys = keys
        self.backup_id = backup_id
        self.part_size = part_size
        self.objects = {}

    def stream(self, role: str, name: str, source, **extra) -> dict:
        digest = hashlib.sha256()
        key = self.keys.data(self.backup_id, name)
        start = time.monotonic()
        size = self.store.stream_upload(key, source, self.part_size, on_chunk=digest.update)
        self.objects[role] = {
            "key": key,
            "size": size,
            "sha256": digest.hexdigest(),
            "seconds": round(time.monotonic() - start, 3),
            **extra,
        }
        return self.objects[role]


def dump_database(uploader: Uploader, cmd: list[str], env: dict, name: str, fmt: str) -> dict:
    """Stream the output of the dump command ``cmd`` into the backup (gzipped for plain SQL)."""
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=errors, env=env, start_new_session=True
            )
        except OSError as exc:
            raise BackupError(f"cannot run {cmd[0]}: {exc}") from exc

        def finish():
            if proc.wait() != 0:
                errors.seek(0)
                raise BackupError(f"{cmd[0]} failed (rc={proc.returncode}): {errors.read().decode()[-2000:]}")

        try:
            return uploader.stream(
                "database", name, ProcessReader(proc.stdout, finish, fmt == "mysqldump-gzip"), format=fmt
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def pack_batches(sha1s: list[str], wanted: dict[str, tuple[str, int]]) -> list[list[str]]:
    """Small files in packs of about :data:`PACK_TARGET` bytes, in path order (files of one
    filedir folder end up together)."""
    batches, current, total = [], [], 0
    for sha1 in sorted(sha1s, key=lambda s: wanted[s][0]):
        size = wanted[sha1][1]
        if current and total + size > PACK_TARGET:
            batches.append(current)
            current, total = [], 0
        current.append(sha1)
        total += size
    return [*batches, current] if current else batches


def upload_content(store, keys: Keys, wanted: dict[str, tuple[str, int]], part_size: int) -> dict:
    """Upload the filedir files the bucket lacks: large ones as loose objects, small ones in packs,
    each pack followed by its index. Each file's SHA-1 is checked against its name while it is read:
    a file that does not match is left out and reported (a damaged filedir), so the bucket never
    holds content under a wrong name."""
    content = Content.load(store, keys)
    missing = [sha1 for sha1, (_path, size) in wanted.items() if content.locate(sha1, size) is None]
    damaged = []

    def upload_loose(sha1):
        path, size = wanted[sha1]
        key = keys.content(sha1)
        if size <= part_size:
            with open(path, "rb") as handle:
                body = handle.read()
            if hashlib.sha1(body, usedforsecurity=False).hexdigest() != sha1:
                damaged.append(path)
                return
            store.put(key, body)
            return
        digest = hashlib.sha1(usedforsecurity=False)
        with open(path, "rb") as handle:
            stored = store.stream_upload(
                key, handle, part_size, on_chunk=digest.update, accept=lambda: digest.hexdigest() == sha1
            )
        if stored < 0:
            damaged.append(path)

    def upload_pack(batch):
        body, files = bytearray(), {}
        for sha1 in batch:
            path, size = wanted[sha1]
            with open(path, "rb") as handle:
                data = handle.read()
            if len(data) != size or hashlib.sha1(data, usedforsecurity=False).hexdigest() != sha1:
                damaged.append(path)
                continue
            files[sha1] = [len(body), size]
            body += data
        if not files:
            return None
        pack_id = hashlib.sha256(body).hexdigest()
        store.put(keys.pack(pack_id), bytes(body))
        index = {"format": FORMAT, "pack": pack_id, "size": len(body), "files": files}
        store.put(keys.pack_index(pack_id), seal(index), "application/json")  # the pack's commit point
        return pack_id, index

    large = [sha1 for sha1 in missing if wanted[sha1][1] > PACK_MAX_FILE]
    small = [sha1 for sha1 in missing if wanted[sha1][1] <= PACK_MAX_FILE]
    with ThreadPoolExecutor(store.threads) as pool:
        list(pool.map(upload_loose, large))
        new_packs = [done for done in pool.map(upload_pack, pack_batches(small, wanted)) if done]
    damaged_names = {os.path.basename(path) for path in damaged}
    content.loose.update({sha1: wanted[sha1][1] for sha1 in large if sha1 not in damaged_names})
    for pack_id, index in new_packs:
        content.add_pack(pack_id, index)
    return {
        "uploaded": len(missing) - len(damaged),
        "uploaded_bytes": sum(wanted[s][1] for s in missing) - sum(os.path.getsize(p) for p in damaged),
        "present": len(wanted) - len(missing),
        "packs_uploaded": len(new_packs),
        "damaged": damaged,
        "content": content,
    }


def plan_backup(params: dict) -> dict:
    """What a backup would upload (check mode): filedir objects missing in the bucket."""
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    keys = site_keys(params)
    store = connect(params["store"])
    wanted, _links = scan_filedir(cfg["dataroot"])
    content = Content.load(store, keys)
    missing = [sha1 for sha1, (_path, size) in wanted.items() if content.locate(sha1, size) is None]
    return {
        "filedir_files": len(wanted),
        "filedir_to_upload": len(missing),
        "filedir_bytes_to_upload": sum(wanted[s][1] for s in missing),
        "dbtype": cfg["dbtype"],
    }


def create_backup(params: dict) -> dict:
    """One backup of the site in ``params`` (module options); returns the module result."""
    started = time.monotonic()
    backup_id = params.get("backup_id") or now_id()
    if not BACKUP_ID.match(backup_id):
        raise BackupError(f"backup_id '{backup_id}' is not valid (letters, digits, . _ -; at most 64)")
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    keys = site_keys(params)
    store = connect(params["store"])
    version = {"version": site.cfg_get("version"), "release": site.cfg_get("release")}
    record = params.get("deployment_record") or os.path.join(os.path.dirname(site.path), "deployment.json")
    cmd, name, fmt = dump_command(cfg, params)
    result = write_backup(
        store,
        keys,
        backup_id,
        part_size=max(5, params["part_size_mb"]) * MIB,
        dump=(cmd, db_env(cfg)[1], name, fmt),
        dataroot=cfg["dataroot"],
        config_path=shared_config(site.path),
        fields={
            "customer": params["customer"],
            "site": params["site"],
            "tier": params.get("tier"),
            "moodle": version,
            "release_id": read_deployment_record(record, site.path)["release_id"],
            "dbtype": cfg["dbtype"],
            "dbprefix": cfg["prefix"],
            "wwwroot": cfg["wwwroot"],
        },
    )
    result.update(
        release_id=result.pop("fields")["release_id"],
        moodle_version=version["version"],
        seconds=round(time.monotonic() - started, 2),
    )
    return result


def write_backup(
    store, keys: Keys, backup_id: str, part_size: int, dump, dataroot, config_path, fields
) -> dict:
    """The backup's objects, then its manifest (``fields`` + the objects). ``dump`` is
    ``(argv, env, object name, format)`` of the database dump command."""
    if store.head_size(keys.manifest(backup_id)) is not None:
        raise BackupError(f"backup '{backup_id}' of {fields['site']} exists already; backups are immutable")
    uploader = Uploader(store, keys, backup_id, part_size)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    # 1. The database first: its snapshot is the point in time of the backup.
    database = dump_database(uploader, *dump)
    # 2. Then the files: filedir content is never rewritten, so every file the dump names exists.
    wanted, strange = scan_filedir(dataroot)
    content = upload_content(store, keys, wanted, uploader.part_size)
    for path in content["damaged"]:
        del wanted[os.path.basename(path)]
    uploader.stream("dataroot", "dataroot.tar.gz", threaded_pipe(lambda out: dataroot_tar(dataroot, out)))
    with open(config_path, "rb") as handle:
        config_body = handle.read()
    store.put(keys.data(backup_id, "config.php"), config_body, "text/plain")
    uploader.objects["config"] = {
        "key": keys.data(backup_id, "config.php"),
        "size": len(config_body),
        "sha256": hashlib.sha256(config_body).hexdigest(),
        "source": config_path,
    }
    # 3. Every object the manifest will name must exist (a prune may have run meanwhile).
    located = {sha1: content["content"].locate(sha1, size) for sha1, (_path, size) in wanted.items()}
    packs = sorted({where[0] for where in located.values() if where and where[0] != "loose"})
    have = {key.rsplit("/", 1)[1]: size for key, size in store.list_sharded(keys.content_prefix).items()}
    have_packs = set(store.list(keys.pack_prefix))
    lost = [
        sha1
        for sha1, where in located.items()
        if where is None
        or (where[0] == "loose" and have.get(sha1) != wanted[sha1][1])
        or (where[0] != "loose" and not {keys.pack(where[0]), keys.pack_index(where[0])} <= have_packs)
    ]
    if lost:
        raise BackupError(
            f"{len(lost)} filedir objects vanished from the bucket during the backup; run it again"
        )
    # 4. The manifest, last: from now on the backup exists.
    manifest = {
        "format": FORMAT,
        "id": backup_id,
        "created": created,
        **fields,
        "objects": uploader.objects,
        "filedir": {sha1: size for sha1, (_path, size) in sorted(wanted.items())},
        "packs": packs,
    }
    manifest_key = keys.manifest(backup_id)
    store.put(manifest_key, seal(manifest), "application/json")
    return {
        "changed": True,
        "backup_id": backup_id,
        "manifest": f"s3://{store.bucket}/{manifest_key}",
        "fields": fields,
        "database": {k: v for k, v in database.items() if k != "key"},
        "filedir": {
            "files": len(wanted),
            "bytes": sum(size for _path, size in wanted.values()),
            "uploaded": content["uploaded"],
            "uploaded_bytes": content["uploaded_bytes"],
            "already_stored": content["present"],
            "packs_uploaded": content["packs_uploaded"],
            "packs": len(packs),
        },
        "dataroot_tar_bytes": uploader.objects["dataroot"]["size"],
        "bytes_uploaded": store.bytes_uploaded,
        "warnings": [f"filedir file does not match its name, not backed up: {p}" for p in content["damaged"]]
        + [f"unexpected entry in filedir, not backed up: {p}" for p in strange[:20]],
    }


def shared_config(code_root: str) -> str:
    """The site's real config: ``<site>/shared/config.php`` when the deployment layout has one (the
    release's config.php only loads it), else ``<code_root>/config.php``."""
    shared = os.path.join(os.path.dirname(os.path.abspath(code_root)), "shared", "config.php")
    return shared if os.path.isfile(shared) else os.path.join(code_root, "config.php")


# --------------------------------------------------------------------------------------------------------
# Retention.


def retained(backups: dict[str, dt.datetime], daily: int, weekly: int, monthly: int) -> dict[str, list[str]]:
    """Which backups a daily/weekly/monthly policy keeps: for each of the ``daily`` most recent days
    (weeks, months) that have backups, the newest backup of that day (week, month). The newest
    backup is always kept. Returns ``{id: [reasons]}`` of the kept ones."""
    order = sorted(backups, key=lambda b: backups[b], reverse=True)
    keep: dict[str, list[str]] = {}
    buckets = (
        ("daily", daily, lambda t: t.date()),
        ("weekly", weekly, lambda t: tuple(t.isocalendar())[:2]),
        ("monthly", monthly, lambda t: (t.year, t.month)),
    )
    for reason, count, period in buckets:
        seen = []
        for backup_id in order:
            slot = period(backups[backup_id])
            if slot in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(slot)
            keep.setdefault(backup_id, []).append(reason)
    if order:
        keep.setdefault(order[0], []).append("latest")
    return keep


def prune(params: dict, check_mode: bool = False) -> dict:
    """Apply the retention policy to the site's backups: delete expired manifests first (the backup
    ceases to exist), then their data objects, then the content objects no remaining manifest of any
    of the customer's sites references. Objects younger than ``grace_hours`` are never deleted:
    they may belong to a backup that is running (its manifest comes last)."""
    keys = site_keys(params)
    store = connect(params["store"])
    manifests = {}
    for backup_id in list_backups(store, keys):
        manifests[backup_id] = unseal(store.get(keys.manifest(backup_id)), keys.manifest(backup_id))
    times = {b: id_time(b, m) for b, m in manifests.items()}
    keep = retained(times, params["keep_daily"], params["keep_weekly"], params["keep_monthly"])
    expired = sorted(set(manifests) - set(keep))
    result = {
        "changed": bool(expired),
        "kept": {b: keep[b] for b in sorted(keep)},
        "expired": expired,
        "deleted_objects": 0,
        "deleted_content": 0,
        "deleted_packs": 0,
    }
    grace = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=params["grace_hours"])
    if check_mode:
        return result
    # 1. Manifests: the commit points go first, so no half-deleted backup is ever listed.
    store.delete([keys.manifest(b) for b in expired])
    # 2. Data of expired backups, and of interrupted ones (no manifest) older than the grace period.
    stale = []
    for key, (_size, modified) in store.list_times(keys.data_prefix).items():
        backup_id = key[len(keys.data_prefix) :].split("/", 1)[0]
        if backup_id in expired or (backup_id not in keep and modified < grace):
            stale.append(key)
    store.delete(stale)
    # 3. Content and packs that no manifest of any site of the customer references (a pack goes
    # only when none of its files is referenced; packs of interrupted backups after the grace period).
    referenced, referenced_packs = set(), set()
    for key in store.list(keys.sites_prefix):
        if "/manifests/" in key and key.endswith(".json"):
            manifest = unseal(store.get(key), key)
            referenced.update(manifest["filedir"])
            referenced_packs.update(manifest.get("packs", ()))
    orphans = [
        key
        for key, (_size, modified) in store.list_times(keys.content_prefix).items()
        if key.rsplit("/", 1)[1] not in referenced and modified < grace
    ]
    orphan_packs = [
        key
        for key, (_size, modified) in store.list_times(keys.pack_prefix).items()
        if key[len(keys.pack_prefix) :].rsplit(".", 1)[0] not in referenced_packs and modified < grace
    ]
    store.delete(orphans + orphan_packs)
    result.update(
        changed=bool(expired or stale or orphans or orphan_packs),
        deleted_objects=len(stale),
        deleted_content=len(orphans),
        deleted_packs=len({key.rsplit(".", 1)[0] for key in orphan_packs}),
    )
    return result


# --------------------------------------------------------------------------------------------------------
# Verifying and restoring.


def check_objects(store, keys: Keys, manifest: dict, content: Content | None = None) -> list[str]:
    """Problems with a backup's objects found by listing (missing or wrong size) and by the indexes
    of its packs: cheap, no content is downloaded."""
    problems = []
    for role, info in manifest["objects"].items():
        size = store.head_size(info["key"])
        if size is None:
            problems.append(f"{role} object {info['key']} is missing")
        elif size != info["size"]:
            problems.append(f"{role} object {info['key']} has {size} bytes, the manifest says {info['size']}")
    packs = set(manifest.get("packs", ()))
    content = content or Content.load(store, keys, packs)
    problems += content.problems
    absent = sorted(packs - set(content.packs))
    problems += [f"pack {pack_id} (or its index) is missing" for pack_id in absent]
    for sha1, size in manifest["filedir"].items():
        if content.locate(sha1, size, packs) is None:
            problems.append(f"filedir object {sha1} is missing (or of the wrong size)")
    return problems


def download_verified(store, key: str, dest: str, sha256: str) -> None:
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        body = store.get_stream(key)
        for chunk in iter(lambda: body.read(MIB), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise BackupError(
            f"object {key} is corrupt (sha256 {digest.hexdigest()}, manifest {sha256}); refusing it"
        )


class _FiledirReader:
    """The target's own filedir, for hard links to content it already has. The site's user writes
    it, so nothing is followed: each level is opened with O_NOFOLLOW and held by its descriptor,
    a file is linked only if it is a regular file of the expected size that the site's user owns,
    and the link itself is made relative to the held folder (no path is resolved twice)."""

    FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW

    def __init__(self, filedir: str):
        self.filedir = filedir
        self.fds: dict[str, int] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for fd in self.fds.values():
            if fd >= 0:
                os.close(fd)

    def _folder(self, rel: str) -> int | None:
        if rel not in self.fds:
            parent, name = (None, self.filedir) if not rel else (self._folder(rel[:-3]), rel[-2:])
            if rel and parent is None:
                return None
            try:
                self.fds[rel] = os.open(name, self.FLAGS, dir_fd=parent)
            except OSError:
                self.fds[rel] = -1
        return None if self.fds[rel] < 0 else self.fds[rel]

    def link(self, sha1: str, size: int, uid: int, dest: str) -> bool:
        folder = self._folder(f"{sha1[:2]}/{sha1[2:4]}")
        if folder is None:
            return False
        try:
            st = os.stat(sha1, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size or st.st_uid != uid:
                return False
            os.link(sha1, dest, src_dir_fd=folder, follow_symlinks=False)
        except OSError:
            return False
        return True


def stage_filedir(
    store, keys: Keys, manifest: dict, dest: str, local: str, owner: tuple[int, int], content: Content
) -> dict:
    """Build ``dest`` (a new filedir): files the target already has (same name and size) are hard
    links, the others are downloaded (loose objects one by one, packs whole or by range when little
    of a pack is needed) and their SHA-1 checked. Returns counts."""
    counts = {"linked": 0, "downloaded": 0, "downloaded_bytes": 0}
    lock = threading.Lock()
    packs = set(manifest.get("packs", ()))

    def target(sha1):
        sub = os.path.join(dest, sha1[:2], sha1[2:4])
        os.makedirs(sub, mode=0o2770, exist_ok=True)
        return os.path.join(sub, sha1)

    def write(sha1, body, size):
        if len(body) != size or hashlib.sha1(body, usedforsecurity=False).hexdigest() != sha1:
            raise BackupError(f"filedir object {sha1} is corrupt in the bucket; refusing this backup")
        path = target(sha1)
        with open(path, "wb") as out:
            out.write(body)
        os.chown(path, *owner)
        os.chmod(path, 0o660)
        with lock:
            counts["downloaded"] += 1
            counts["downloaded_bytes"] += size

    fetch_loose, fetch_packed = [], {}
    with _FiledirReader(local) as existing:
        for sha1, size in manifest["filedir"].items():
            if existing.link(sha1, size, owner[0], target(sha1)):
                counts["linked"] += 1
                continue
            where = content.locate(sha1, size, packs)
            if where is None:
                raise BackupError(f"filedir object {sha1} is missing in the bucket; refusing this backup")
            if where[0] == "loose":
                fetch_loose.append((sha1, size))
            else:
                fetch_packed.setdefault(where[0], []).append((sha1, where[1], size))

    def get_loose(item):
        write(item[0], store.get(keys.content(item[0])), item[1])

    def get_pack(item):
        pack_id, files = item
        if sum(size for _name, _offset, size in files) * 4 < content.packs[pack_id]["size"]:
            for sha1, offset, size in files:  # a few files of a big pack: ranges
                write(sha1, store.get_range(keys.pack(pack_id), offset, size), size)
            return
        body = store.get(keys.pack(pack_id))
        for sha1, offset, size in files:
            write(sha1, body[offset : offset + size], size)

    with ThreadPoolExecutor(store.threads) as pool:
        list(pool.map(get_loose, fetch_loose))
        list(pool.map(get_pack, fetch_packed.items()))
    for root, _dirs, _files in os.walk(dest):
        os.chown(root, *owner)
        os.chmod(root, 0o2770)  # noqa: S103 - Moodle's directorypermissions: the site user's group
    return counts


def extract_dataroot(tar_path: str, dest: str, owner: tuple[int, int]) -> None:
    # Imported here: the backup timer runs this file as a script beside s3_store and moodle_cli
    # only (roles/backup), and it never restores.
    try:
        from ansible.module_utils.safe_tar import extract_file
    except ImportError:  # unit tests: siblings on sys.path
        from safe_tar import extract_file
    try:
        extract_file(tar_path, dest, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot unpack the dataroot archive {tar_path}: {exc}") from exc
    # The source's cache configuration (its Redis, with the password) never reaches another site.
    muc = os.path.join(dest, MUC_DIR)
    if os.path.islink(muc) or os.path.isfile(muc):
        os.unlink(muc)
    else:
        shutil.rmtree(muc, ignore_errors=True)
    for root, dirs, files in os.walk(dest):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), *owner)
    os.chown(dest, *owner)
    os.chmod(dest, 0o2770)  # noqa: S103 - Moodle's directorypermissions: the site user's group


def load_database(cfg: dict, dump: str, fmt: str, params: dict) -> None:
    """Replace the target database's tables by the dump's. PostgreSQL: one transaction (drop the
    old tables, load the new) so a failure leaves the old database; MariaDB: tables dropped, then
    the dump loaded (MariaDB has no transactional DDL)."""
    args, env = db_env(cfg)
    if fmt == "pg_dump-custom":
        drop = (
            "DO $$DECLARE r record; BEGIN "
            "FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP "
            "EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE'; END LOOP; "
            "FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP "
            "EXECUTE 'DROP SEQUENCE IF EXISTS ' || quote_ident(r.sequencename) || ' CASCADE'; "
            "END LOOP; END$$;"
        )
        producer = [params["pg_restore"], "--no-owner", "--no-acl", "--file=-", dump]
        consumer = [
            params["psql"],
            "-X",
            "-q",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            drop,
            "-f",
            "-",
        ]
        pipe_commands(producer, consumer, env)
        return
    tables = run_command([params["mysql"], *args, "-N", "-B", "-e", "SHOW TABLES", cfg["dbname"]], env=env)
    if tables.rc != 0:
        raise BackupError(f"cannot list the tables of {cfg['dbname']}: {tables.stderr.strip()}")
    names = [line for line in tables.stdout.split() if line]
    if names:
        drop = "SET FOREIGN_KEY_CHECKS=0; DROP TABLE " + ", ".join(f"`{n}`" for n in names) + ";"
        result = run_command([params["mysql"], *args, "-e", drop, cfg["dbname"]], env=env)
        if result.rc != 0:
            raise BackupError(f"cannot empty {cfg['dbname']}: {result.stderr.strip()}")
    pipe_commands(["gzip", "-dc", dump], [params["mysql"], *args, cfg["dbname"]], env)


def pipe_commands(producer: list[str], consumer: list[str], env: dict) -> None:
    with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
        first = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=err1, env=env)
        second = subprocess.Popen(
            consumer, stdin=first.stdout, stdout=subprocess.DEVNULL, stderr=err2, env=env
        )
        first.stdout.close()
        rc2 = second.wait()
        rc1 = first.wait()
        if rc1 or rc2:
            err1.seek(0)
            err2.seek(0)
            raise BackupError(
                f"loading the database failed ({producer[0]} rc={rc1}, {consumer[0]} rc={rc2}): "
                f"{(err1.read() + err2.read()).decode()[-2000:]}"
            )


def fetch_backup(
    store, keys: Keys, manifest: dict, staging: str, new_dataroot: str, local_filedir: str, owner, content
):
    """Download a backup into ``staging`` and check every checksum: the dump and config files, the
    dataroot unpacked into ``new_dataroot``, its filedir (files ``local_filedir`` already has are
    hard links). Returns ``{database, config, filedir}`` (paths and the filedir counts)."""
    objects = manifest["objects"]
    paths = {}
    for role in ("database", "dataroot", "config"):
        paths[role] = os.path.join(staging, os.path.basename(objects[role]["key"]))
        download_verified(store, objects[role]["key"], paths[role], objects[role]["sha256"])
    extract_dataroot(paths.pop("dataroot"), new_dataroot, owner)
    filedir = os.path.join(new_dataroot, "filedir")
    os.makedirs(filedir, mode=0o2770, exist_ok=True)  # also for a site without files
    paths["filedir"] = stage_filedir(store, keys, manifest, filedir, local_filedir, owner, content)
    return paths


def restore(params: dict, check_mode: bool = False) -> dict:
    """Restore a backup of ``source_site`` (latest or ``backup_id``) into the site at ``path``.

    Everything is downloaded and checked into a staging folder beside the target's dataroot before
    the target is touched; then the database is replaced, the staged dataroot swapped in, wwwroot
    rewritten (``replace.php``), settings applied and caches purged."""
    started = time.monotonic()
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    source = params.get("source_site") or params["site"]
    keys = site_keys(params, source)
    store = connect(params["store"])
    manifest = load_manifest(store, keys, params.get("backup_id"))
    marker = f"{source}/{manifest['id']}"
    if manifest["customer"] != params["customer"]:
        raise BackupError(
            f"backup {marker} belongs to customer '{manifest['customer']}', not '{params['customer']}'"
        )
    if manifest["dbtype"] != cfg["dbtype"] and not {manifest["dbtype"], cfg["dbtype"]} <= set(MYSQL_TYPES):
        raise BackupError(
            f"backup {marker} is a {manifest['dbtype']} database; the target uses {cfg['dbtype']}"
        )
    if manifest["dbprefix"] != cfg["prefix"]:
        raise BackupError(
            f"backup {marker} uses table prefix '{manifest['dbprefix']}', the target '{cfg['prefix']}'"
        )
    code_version = site.code_version()["version"]
    if float(manifest["moodle"]["version"]) > float(code_version):
        raise BackupError(
            f"backup {marker} is of Moodle {manifest['moodle']['version']}, newer than the target's code "
            f"{code_version}: deploy that release on the target first"
        )
    content = Content.load(store, keys, set(manifest.get("packs", ())))
    problems = check_objects(store, keys, manifest, content)
    if problems:
        raise BackupError(f"backup {marker} is incomplete, refusing it: " + "; ".join(problems[:10]))
    settings = [(*name.rpartition("/")[::2], value) for name, value in (params.get("settings") or {}).items()]
    forced = [
        f"{component}/{name}" if component else name
        for component, name, _value in settings
        if (
            name in cfg["forced"]
            if not component
            else name in (cfg["forced_plugin_settings"] or {}).get(component, {})
        )
    ]
    if forced:
        raise BackupError(
            "settings forced in the target's config.php cannot be set by a restore: "
            + ", ".join(forced)
            + " (set them in config.php's template, or drop them from 'settings')"
        )
    result = {
        "changed": True,
        "backup_id": manifest["id"],
        "source_site": source,
        "release_id": manifest["release_id"],
        "moodle_version": manifest["moodle"]["version"],
        "wwwroot_from": manifest["wwwroot"],
        "wwwroot_to": cfg["wwwroot"],
        "already_restored": False,
    }
    installed = site.has_config() and cfg_marker(site) == marker
    if installed and not params.get("force"):
        already = {"changed": False, "already_restored": True, "msg": f"{marker} is already restored here"}
        return {**result, **already}
    if check_mode:
        return result
    # A failure says whether the target had changed (exc.target_changed): before that, the site
    # still holds its own content and may serve again; after it, it holds part of the backup.
    changed = [False]
    try:
        files = _restore_into(site, cfg, manifest, marker, store, keys, content, settings, params, changed)
    except Exception as exc:
        exc.target_changed = changed[0]
        raise
    return {**result, "filedir": files, "seconds": round(time.monotonic() - started, 2)}


def _read_regular_file(path: str, limit: int = 1 << 20, parent: str | None = None):
    """The bytes of ``path`` if it is a regular file (never through a symlink), else None. With
    ``parent`` (a folder the site's user may write), ``path`` is a name in it, and ``parent``
    itself must not be a link either."""
    dir_fd = None
    try:
        if parent is not None:
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except OSError:
        return None  # absent, or a symlink (ELOOP, ENOTDIR)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _write_new_file(path: str, data: bytes, owner) -> None:
    """Create ``path`` (never through a link, never over an existing file), write, chown its fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    try:
        os.write(fd, data)
        os.fchown(fd, *owner)
    finally:
        os.close(fd)


def inherited_grants(getfacl_output: str) -> list[str]:
    """The grants a folder passes on to new files (its named ``default:`` entries in ``getfacl``
    output) as ``setfacl --modify`` entries that give a copied tree the same: read on files, read and
    search on folders (``x`` becomes ``X``), and the default entries so its new files inherit them."""
    specs = []
    for line in getfacl_output.splitlines():
        fields = line.split("#", 1)[0].strip().split(":")
        if len(fields) != 4 or fields[0] != "default" or fields[1] not in ("user", "group") or not fields[2]:
            continue
        etype, name, perms = fields[1:]
        access = perms.replace("-", "").replace("x", "X") or "-"
        specs += [f"{etype[0]}:{name}:{access}", f"d:{etype[0]}:{name}:{perms}"]
    return specs


def _carry_grants(source: str, tree: str) -> None:
    """Give ``tree`` (a staged dataroot, in a folder only root reaches, so no link planted by the
    site's user is walked) the grants ``source`` passes on: the web server reads a restored dataroot
    for X-Accel-Redirect as it read the one it replaces (roles/lms). Nothing to carry where the
    host has no ACL tools (then the dataroot has no ACL either)."""
    getfacl, setfacl = shutil.which("getfacl"), shutil.which("setfacl")
    if not (getfacl and setfacl and os.path.isdir(source)):
        return
    shown = run_command([getfacl, "--absolute-names", "--omit-header", source])
    if shown.rc != 0:
        raise BackupError(f"cannot read the ACL of {source}: {shown.stderr.strip()}")
    specs = inherited_grants(shown.stdout)
    if specs:
        result = run_command([setfacl, "--recursive", "--physical", "--modify", ",".join(specs), tree])
        if result.rc != 0:
            raise BackupError(f"cannot give the restored dataroot {source}'s ACL: {result.stderr.strip()}")


def _restore_into(site, cfg, manifest, marker, store, keys, content, settings, params, changed) -> int:
    """The changing part of :func:`restore`; sets ``changed[0]`` once the target starts to change."""
    dataroot = cfg["dataroot"].rstrip("/")
    user = pwd.getpwnam(site.web_user)
    owner = (user.pw_uid, user.pw_gid)
    staging = dataroot + ".restoring"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging, mode=0o700)
    try:
        objects = manifest["objects"]
        new_dataroot = os.path.join(staging, "dataroot")
        fetched = fetch_backup(
            store, keys, manifest, staging, new_dataroot, os.path.join(dataroot, "filedir"), owner, content
        )
        files = fetched.pop("filedir")
        _carry_grants(dataroot, new_dataroot)
        # Everything is verified: from here on the target changes.
        changed[0] = True
        load_database(cfg, fetched["database"], objects["database"]["format"], params)
        old = staging + "/previous"
        # A site in maintenance stays in it across the swap. The flag is in a folder the site's user
        # writes: read it without following a link, and only a regular file (else root would copy
        # whatever the link points at into a file the site user owns).
        flag = _read_regular_file(os.path.join(dataroot, "climaintenance.html"))
        if flag is not None:
            _write_new_file(os.path.join(new_dataroot, "climaintenance.html"), flag, owner)
        # So does the target's own cache configuration (its Redis; the backup carries none).
        muc = _read_regular_file("config.php", parent=os.path.join(dataroot, MUC_DIR))
        if muc is not None:
            new_muc = os.path.join(new_dataroot, MUC_DIR)
            os.mkdir(new_muc, 0o700)
            os.chown(new_muc, *owner)
            os.chmod(new_muc, 0o2770)  # noqa: S103 - Moodle's directorypermissions, as the dataroot's
            _write_new_file(os.path.join(new_muc, "config.php"), muc, owner)
        if os.path.isdir(dataroot):
            os.rename(dataroot, old)
        os.rename(new_dataroot, dataroot)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if manifest["wwwroot"] != cfg["wwwroot"]:
        # --shorten: a longer wwwroot is refused without it; values that would no longer fit their
        # column are cut (URLs in short columns are rare; Moodle's own documented way to move a site).
        site.cli(
            "admin/tool/replace/cli/replace.php",
            f"--search={manifest['wwwroot']}",
            f"--replace={cfg['wwwroot']}",
            "--non-interactive",
            "--shorten",
        )
    for component, name, value in settings:
        site.cfg_set(name, None if value is None else str(value), component or None)
    site.cfg_set("restored_backup", marker, "three_instance")
    site.cli("purge_caches.php")
    return files


def cfg_marker(site: MoodleSite) -> str | None:
    """Which backup was restored last into this site (``<site>/<id>``); None when unknown."""
    try:
        return site.cfg_get("restored_backup", "three_instance")
    except MoodleError:
        return None  # an empty database: nothing restored yet


def info(params: dict) -> dict:
    """The site's backups, newest last, with the latest manifest's summary."""
    keys = site_keys(params)
    store = connect(params["store"])
    ids = list_backups(store, keys)
    out = {"changed": False, "backups": ids, "latest": ids[-1] if ids else None}
    if ids and params.get("verify"):
        manifest = load_manifest(store, keys, params.get("backup_id"))
        problems = check_objects(store, keys, manifest)
        out.update(
            checked=manifest["id"],
            complete=not problems,
            problems=problems,
            manifest={k: v for k, v in manifest.items() if k != "filedir"},
            filedir_files=len(manifest["filedir"]),
        )
    return out


# --------------------------------------------------------------------------------------------------------
# Verifying a backup by restoring it into a scratch site.

#: Options of lms_backup_verify besides the site's and the bucket's.
VERIFY_ARGS = {
    "backup_id": {"type": "str"},
    "scratch_dir": {"type": "path", "default": "/var/lib/lms-verify"},
    "db_admin_user": {"type": "str"},
    "db_admin_socket": {"type": "str"},
    "samples": {"type": "int", "default": 20},
    **DB_CLIENT_ARGS,
}

SCRATCH_CONFIG = """<?php  // Scratch copy of {site} for a restore test (lms_backup_verify); removed after it.
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype = {dbtype};
$CFG->dblibrary = 'native';
$CFG->dbhost = {dbhost};
$CFG->dbname = {dbname};
$CFG->dbuser = {dbuser};
$CFG->dbpass = {dbpass};
$CFG->prefix = {prefix};
$CFG->dboptions = ['dbpersist' => 0, 'dbport' => {dbport}, 'dbsocket' => {dbsocket}];
$CFG->wwwroot = {wwwroot};
$CFG->dataroot = {dataroot};
$CFG->admin = 'admin';
$CFG->directorypermissions = 02770;
$CFG->noemailever = true;
require_once(__DIR__ . '/{setup}');
"""

CHECK_PHP = r"""<?php
// The restored site as Moodle sees it: version, rows of the main tables, and whether every file the
// database refers to is in the filedir (the backup's consistency promise).
define('CLI_SCRIPT', true);
require($argv[1]);
$missing = [];
$rs = $DB->get_recordset_sql("SELECT DISTINCT contenthash FROM {files} WHERE filename <> '.'");
foreach ($rs as $r) {
    $h = $r->contenthash;
    if (!is_readable("$CFG->dataroot/filedir/" . substr($h, 0, 2) . '/' . substr($h, 2, 2) . "/$h")) {
        $missing[] = $h;
    }
}
$rs->close();
$rows = [];
$tables = ['user', 'course', 'course_modules', 'files', 'config', 'role_assignments', 'user_enrolments'];
foreach ($tables as $t) {
    $rows[$t] = $DB->count_records($t);
}
echo "\n@@LMS-CHECK@@" . json_encode(['version' => (string)$CFG->version, 'release' => $CFG->release,
    'rows' => $rows, 'missing_files' => $missing]) . "\n";
"""


def php_literal(value) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_php(site: MoodleSite, code: str, marker: str, *args: str) -> dict:
    """Run a PHP script as the web user and return the JSON it prints after ``marker``."""
    fd, script = tempfile.mkstemp(prefix="lms-backup-", suffix=".php")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(code)
        os.chmod(script, 0o644)
        result = site.runner(
            [*site.user_prefix(), site.php, script, *args], cwd=site.layout.cli_root, timeout=site.timeout
        )
    finally:
        os.unlink(script)
    index = result.stdout.rfind(marker)
    if result.rc != 0 or index < 0:
        raise BackupError(f"PHP failed (rc={result.rc}): {(result.stderr or result.stdout).strip()[-500:]}")
    return json.loads(result.stdout[index + len(marker) :].splitlines()[0])


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


def verify_backup(params: dict) -> dict:
    """Restore a backup (the latest by default) into a scratch site - a hard-linked copy of the
    site's code, a scratch database and dataroot - check it and remove the scratch site."""
    started = time.monotonic()
    site = MoodleSite.from_params(params)
    cfg = read_site_config(site)
    scratch = os.path.join(params["scratch_dir"], params["site"])
    scratch_db = f"{cfg['dbname']}_verify"[:63]
    for value in (cfg["dbname"], cfg["dbuser"]):
        if not SQL_NAME.match(value):  # they go into administrative SQL as names
            raise BackupError(
                f"database or user name {value!r} has characters a restore test does not handle"
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
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(
                SCRATCH_CONFIG.replace("{site}", params["site"]).format(
                    **{k: php_literal(cfg[k]) for k in ("dbtype", "dbhost", "dbuser", "dbpass", "prefix")},
                    dbname=php_literal(scratch_db),
                    dbport=php_literal(cfg["dbport"]),
                    dbsocket=php_literal(cfg["dbsocket"]),
                    wwwroot=php_literal(cfg["wwwroot"].rstrip("/") + "/lms-verify"),
                    dataroot=php_literal(dataroot),
                    setup=setup,
                )
            )
        os.chown(config, 0, user.pw_gid)
        os.chmod(config, 0o640)
        scratch_params = {
            **params,
            "path": code,
            "source_site": params["site"],
            "force": True,
            "settings": {},
        }
        restored = restore(scratch_params)
        scratch_site = MoodleSite.from_params(scratch_params)
        checked = run_php(scratch_site, CHECK_PHP, "@@LMS-CHECK@@", config)
        keys = site_keys(params)
        manifest = load_manifest(connect(params["store"]), keys, restored["backup_id"])
        samples = sorted(manifest["filedir"])[
            :: max(1, len(manifest["filedir"]) // max(1, params["samples"]))
        ]
        bad_samples = [
            sha1
            for sha1 in samples[: params["samples"]]
            if file_sha1(os.path.join(dataroot, "filedir", sha1[:2], sha1[2:4], sha1)) != sha1
        ]
    finally:
        if "db" in cleanup:
            admin_sql(cfg, params, drop)
        if cleanup:
            shutil.rmtree(scratch, ignore_errors=True)
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


# --------------------------------------------------------------------------------------------------------
# Script entry point (the systemd timer of roles/backup runs this, with the same options as lms_backup).


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Back up a Moodle site to S3 (the code of lms_backup).")
    parser.add_argument("action", choices=["create", "prune"])
    parser.add_argument("--config", required=True, help="JSON file with lms_backup's options (mode 0600)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        options = json.load(handle)

    params = {}
    for spec in (COMMON_ARGS, SITE_ARGS, DUMP_ARGS, PRUNE_ARGS):
        params.update({name: opts.get("default") for name, opts in spec.items()})
    params.update(options)
    try:
        params["store"] = store_defaults(BACKUP_STORE_ARGS["store"], options.get("store") or {})
        result = create_backup(params) if args.action == "create" else prune(params)
    except (BackupError, StoreError, MoodleError) as exc:
        print(f"{args.action} failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

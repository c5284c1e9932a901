# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Creating a backup: the dump, the filedir content the bucket lacks (loose or in packs), the
dataroot and config.php, then the manifest.

Consistency without downtime: the database is dumped first (one snapshot), then the files. Moodle's
filedir is content-addressed and never rewritten in place, and files are deleted only by a cron task
after their last database reference went, so every file the dump refers to is still there when the
files are read afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

try:
    from ansible.module_utils.moodle_cli import MoodleSite, read_deployment_record
    from ansible.module_utils.s3_store import MIB, connect
except ImportError:  # the timer's copy on a host, tests: siblings on sys.path
    from moodle_cli import MoodleSite, read_deployment_record
    from s3_store import MIB, connect

from .format import BACKUP_ID, DATAROOT_EXCLUDED, FORMAT, BackupError, Content, Keys, now_id, seal, site_keys
from .site_config import db_env, read_site_config

#: Filedir files up to this size go into packs: most of a filedir's files are small, and a store
#: pays per request (moto serves ~200 small PUTs a second here; docs/backups.md, benchmark).
PACK_MAX_FILE = 256 * 1024

#: A pack is closed when the next file would take it past this size.
PACK_TARGET = 16 * 1024 * 1024

SHA1_NAME = re.compile(r"\A[0-9a-f]{40}\Z")

#: Options of lms_backup (and the timer) for the dump and the uploads.
DUMP_ARGS = {
    "pg_dump": {"type": "str", "default": "pg_dump"},
    "mysqldump": {"type": "str", "default": "mysqldump"},
    "part_size_mb": {"type": "int", "default": 16},
}


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


def dataroot_tar(dataroot: str, fileobj, excluded: frozenset = DATAROOT_EXCLUDED) -> None:
    """The dataroot without its top-level ``excluded`` entries as a tar stream into ``fileobj``.
    Files that vanish while it runs (Moodle deletes temp files any time) are skipped."""
    with tarfile.open(fileobj=fileobj, mode="w|") as tar:
        for root, dirs, files in os.walk(dataroot):
            rel = os.path.relpath(root, dataroot)
            if rel == ".":
                dirs[:] = sorted(d for d in dirs if d not in excluded)
                files = [f for f in files if f not in excluded]
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


@contextlib.contextmanager
def dump_reader(cmd: list[str], env: dict, fmt: str):
    """The output of the dump command ``cmd`` as a :class:`ProcessReader` (gzipped for plain SQL);
    the process is stopped when the reader is left before its end."""
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
            yield ProcessReader(proc.stdout, finish, fmt == "mysqldump-gzip")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def dump_database(uploader: Uploader, cmd: list[str], env: dict, name: str, fmt: str) -> dict:
    """Stream the output of the dump command ``cmd`` into the backup (gzipped for plain SQL)."""
    with dump_reader(cmd, env, fmt) as reader:
        return uploader.stream("database", name, reader, format=fmt)


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

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup into a site: everything is downloaded and checked beside the target before
the target changes; then its database is replaced and the staged dataroot swapped in."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

try:
    from ansible.module_utils.moodle_cli import MoodleError, MoodleSite, run_command
    from ansible.module_utils.s3_store import MIB, connect
    from ansible.module_utils.safe_tar import extract_file
    from ansible.module_utils.sanitise import sanitise
except ImportError:  # benchmarks, tests: siblings on sys.path
    from moodle_cli import MoodleError, MoodleSite, run_command
    from s3_store import MIB, connect
    from safe_tar import extract_file
    from sanitise import sanitise

from .format import MUC_DIR, BackupError, Content, Keys, check_objects, load_manifest, site_keys
from .site_config import MYSQL_TYPES, db_env, read_site_config

#: The database clients a restore loads the dump with (doc fragment lms_db_clients).
DB_CLIENT_ARGS = {
    "pg_restore": {"type": "str", "default": "pg_restore"},
    "psql": {"type": "str", "default": "psql"},
    "mysql": {"type": "str", "default": "mysql"},
}

#: Options of lms_restore besides the site's and the bucket's.
#: ``three_instance/first_build`` while a first build has loaded the database but not yet removed its people.
FIRST_BUILD_PENDING = "pending "

RESTORE_ARGS = {
    "source_site": {"type": "str"},
    "backup_id": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "first_build": {"type": "bool", "default": False},
    "settings": {"type": "dict", "default": {}},
    **DB_CLIENT_ARGS,
}


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
    built = require_never_served(site, params["site"], source) if params.get("first_build") else None
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
    if params.get("first_build"):
        installed = installed and built == marker  # (an interrupted first build of it is done again)
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
        if params.get("first_build"):
            result["first_build"] = remove_people(site, params["site"])
            site.cfg_set("first_build", marker, "three_instance")
    except Exception as exc:
        exc.target_changed = changed[0]
        raise
    return {**result, "filedir": files, "seconds": round(time.monotonic() - started, 2)}


def require_never_served(site: MoodleSite, name: str, source: str) -> str | None:
    """A first build (``first_build``) takes another site's design into a site that never served:
    read from the target's own database, no user but the guest and its administrators, no course,
    nothing restored or adopted into it before. Else it is refused, naming what it holds. Returns
    the backup of the first build the site holds (``<source>/<id>``), if any."""
    if source == name:
        raise BackupError(f"first_build builds {name} from another site's backup, not from its own")
    people = site.helper("people")
    if str(people["first_build"] or "").startswith(FIRST_BUILD_PENDING):
        # A first build that stopped after the database was loaded: the people in it are the
        # source's, not yet removed (the site stayed in maintenance). It is done again.
        return None
    held = []
    if people["users"]:
        held.append(f"{people['users']} users besides its administrators ({', '.join(people['usernames'])})")
    # What a first build brought (the source's courses, its marker) does not count: a site built so
    # and never opened to users may be built again from a newer backup (a re-run, a later design).
    if not people["first_build"]:
        if people["courses"]:
            held.append(f"{people['courses']} courses")
        for key in ("restored_backup", "adopted_from"):
            if people[key]:
                held.append(f"{key} {people[key]}")
    if held:
        raise BackupError(
            f"first_build refuses {name}: it has served or holds content ("
            + "; ".join(held)
            + "). A first build only fills a site that never served; restore it from its own backups. "
            "Nothing was changed"
        )
    return people["first_build"]


def remove_people(site: MoodleSite, name: str) -> dict:
    """After a first build's restore: the source's people go - every user but the guest and the
    site administrators is anonymised and deleted (the sanitiser's ``delete``: enrolments, role
    assignments, logs, messages, files), the site's mail settings left as its tier set them. Checked
    after: the site holds its administrators only."""
    admins = site.helper("people")["admins"]
    plan = {"keep_usernames": admins, "action": "delete", "mail": {"mode": "unchanged"}}
    report = sanitise(site, {**plan, "email_domain": "invalid"})
    left = site.helper("people")
    if left["users"]:
        raise BackupError(
            f"first build of {name}: {left['users']} users besides the administrators are still there "
            f"({', '.join(left['usernames'])}); the site stays as it is for a look"
        )
    return {"admins_kept": admins, "users_removed": report["counts"]["user"]}


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


def carry_grants(source: str, tree: str) -> None:
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
        carry_grants(dataroot, new_dataroot)
        # Everything is verified: from here on the target changes.
        changed[0] = True
        load_database(cfg, fetched["database"], objects["database"]["format"], params)
        if params.get("first_build"):
            # until its people are removed (remove_people), a re-run may build it again
            site.cfg_set("first_build", FIRST_BUILD_PENDING + marker, "three_instance")
        swap_dataroot(dataroot, new_dataroot, staging, owner)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rewrite_wwwroot(site, manifest["wwwroot"], cfg["wwwroot"])
    if (params.get("source_site") or params["site"]) != params["site"]:
        new_identity(site, cfg)
    for component, name, value in settings:
        site.cfg_set(name, None if value is None else str(value), component or None)
    site.cfg_set("restored_backup", marker, "three_instance")
    site.cli("purge_caches.php")
    return files


def swap_dataroot(dataroot: str, new_dataroot: str, staging: str, owner) -> None:
    """Put the staged ``new_dataroot`` in the place of ``dataroot`` (the old one goes into
    ``staging``, removed with it)."""
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


def rewrite_wwwroot(site: MoodleSite, old: str, new: str) -> None:
    """The source's address becomes the target's in the database content."""
    if old == new:
        return
    # --shorten: a longer wwwroot is refused without it; values that would no longer fit their
    # column are cut (URLs in short columns are rare; Moodle's own documented way to move a site).
    site.cli(
        "admin/tool/replace/cli/replace.php",
        f"--search={old}",
        f"--replace={new}",
        "--non-interactive",
        "--shorten",
    )


#: Settings a plugin writes for the site it runs on and registers with an outside service under
#: that site's address: a copy of another site starts without them, so that it registers its own
#: instead of answering as the original (plagiarism_turnitinsim: the webhook Turnitin calls back,
#: and the secret that signs its calls; the plugin's cron creates new ones when they are missing).
CLONE_UNSET = (
    ("plagiarism_turnitinsim", "turnitin_webhook_id"),
    ("plagiarism_turnitinsim", "turnitin_webhook_secret"),
)


def new_identity(site: MoodleSite, cfg: dict) -> None:
    """A copy of another site (QA refilled from Live) gets an identity of its own."""
    # Moodle keys caches, sessions and registrations (the mobile app, plagiarism services) on
    # siteidentifier, which would otherwise be Live's. Moodle's own form: 32 random characters and
    # the host.
    site.cfg_set("siteidentifier", secrets.token_hex(16) + (urlsplit(cfg["wwwroot"]).hostname or ""))
    forced = cfg.get("forced_plugin_settings") or {}
    for component, name in CLONE_UNSET:
        # (unsetting what is not there changes nothing; a value config.php forces is the target's own)
        if name not in (forced.get(component) or {}):
            site.cfg_set(name, None, component)
    # Moodle reads siteidentifier from its bootstrap.php caches before the database, and a purge
    # rewrites them with the value it started with: drop them, so the purge that follows the
    # restore starts from the database and writes the new one. (Another web host of the site keeps
    # its own local copy until its local cache is cleared: docs/backups.md.)
    for folder in (cfg["cachedir"], cfg["localcachedir"]):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, "bootstrap.php"))


def cfg_marker(site: MoodleSite) -> str | None:
    """Which backup was restored last into this site (``<site>/<id>``); None when unknown."""
    try:
        return site.cfg_get("restored_backup", "three_instance")
    except MoodleError:
        return None  # an empty database: nothing restored yet

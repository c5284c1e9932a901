# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup is in the bucket: its keys, its id, its sealed manifest, and the customer's
filedir content that backups share.

Bucket layout, under ``<prefix>/<customer>/`` (the pack sizes are create.py's)::

    content/<sha1[:2]>/<sha1>             filedir files above PACK_MAX_FILE, one object each
    packs/<sha256>.pack                   small filedir files, concatenated (about PACK_TARGET each)
    packs/<sha256>.json                   the pack's index (sha1 -> offset, size), written after it
    sites/<site>/data/<id>/database.*     the dump (pg_dump -Fc, or mysqldump gzipped)
    sites/<site>/data/<id>/dataroot.tar.gz  the dataroot without filedir and caches
    sites/<site>/data/<id>/config.php     the site's config.php
    sites/<site>/manifests/<id>.json      written last: the commit point

Content objects and packs are shared by every backup of the customer. A backup exists iff its
manifest exists; a pack exists iff its index does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor

try:
    from ansible.module_utils.s3_store import StoreError
except ImportError:  # the timer's copy on a host, tests: siblings on sys.path
    from s3_store import StoreError

FORMAT = 2
#: Manifests this code reads: format 1 has every filedir file as a loose object (no "packs").
READABLE_FORMATS = (1, 2)

#: The site's own cache configuration (MUC): it names the site's Redis and holds its password, so
#: it belongs to the site, never to a backup; a restore keeps the target's (older backups carry one:
#: it is dropped on unpacking).
MUC_DIR = "muc"

#: Top-level dataroot entries a backup leaves out: filedir goes by content, the rest is rebuilt.
DATAROOT_EXCLUDED = frozenset(
    {"filedir", "cache", "localcache", "sessions", "temp", "trashdir", "lock", "climaintenance.html", MUC_DIR}
)

BACKUP_ID = re.compile(r"\A[0-9A-Za-z][0-9A-Za-z._-]{0,63}\Z")

#: Where backups are in the bucket unless the store's prefix says otherwise.
BACKUP_PREFIX = "lms-backups"

#: The site whose backups a module handles (with BACKUP_STORE_ARGS; moodle_cli.COMMON_ARGS if it runs PHP).
SITE_ARGS = {
    "site": {"type": "str", "required": True},
    "customer": {"type": "str", "required": True},
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

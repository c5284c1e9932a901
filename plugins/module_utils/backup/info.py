# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What backups a site has, and whether one is complete (a listing: nothing is downloaded)."""

from __future__ import annotations

try:
    from ansible.module_utils.s3_store import connect
except ImportError:  # benchmarks, tests: siblings on sys.path
    from s3_store import connect

from .format import BackupError, check_objects, id_time, list_backups, load_manifest, site_keys


def summary(manifest: dict) -> dict:
    """One backup as the estate report charts it: when, which release, how big. ``bytes`` is its
    logical size - the objects it names (dump, dataroot archive, config) and the filedir files it
    names, which backups of the customer share in the bucket."""
    objects = manifest.get("objects") or {}
    filedir = manifest.get("filedir") or {}
    return {
        "id": manifest["id"],
        "created": id_time(manifest["id"], manifest).isoformat(),
        "release_id": manifest.get("release_id"),
        "bytes": sum(int(o.get("size") or 0) for o in objects.values())
        + sum(int(s) for s in filedir.values()),
        "files": len(filedir),
    }


def history(store, keys, ids: list[str], last: int) -> list[dict]:
    """The summaries of the newest ``last`` backups, oldest first; a manifest that cannot be read is
    an entry with its ``error``."""
    out = []
    for backup_id in ids[-last:] if last > 0 else []:
        try:
            out.append(summary(load_manifest(store, keys, backup_id)))
        except (BackupError, ValueError, KeyError) as exc:
            out.append({"id": backup_id, "error": str(exc)[:200]})
    return out


def info(params: dict) -> dict:
    """The site's backups, newest last, with the latest manifest's summary."""
    keys = site_keys(params)
    store = connect(params["store"])
    ids = list_backups(store, keys)
    out = {"changed": False, "backups": ids, "latest": ids[-1] if ids else None}
    if params.get("history"):
        out["history"] = history(store, keys, ids, params["history"])
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

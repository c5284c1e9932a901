# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What backups a site has, and whether one is complete (a listing: nothing is downloaded)."""

from __future__ import annotations

try:
    from ansible.module_utils.s3_store import connect
except ImportError:  # benchmarks, tests: siblings on sys.path
    from s3_store import connect

from .format import check_objects, list_backups, load_manifest, site_keys


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

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention: which backups a daily/weekly/monthly policy keeps, and deleting the others and the
content no backup of the customer references any more."""

from __future__ import annotations

import datetime as dt

try:
    from ansible.module_utils.s3_store import connect
except ImportError:  # the timer's copy on a host, tests: siblings on sys.path
    from s3_store import connect

from .format import id_time, list_backups, site_keys, unseal

#: Retention policy options (lms_backup_prune, and the timer's prune run).
PRUNE_ARGS = {
    "keep_daily": {"type": "int", "default": 7},
    "keep_weekly": {"type": "int", "default": 4},
    "keep_monthly": {"type": "int", "default": 6},
    "grace_hours": {"type": "int", "default": 24},
}


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

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_restore
short_description: Restore a site backup from S3 into a site of the same customer
description:
  - Restores a backup made by M(lms_backup) - the latest of I(source_site), or I(backup_id) - into
    the site whose code root is I(path) (the same site, or another site of the same customer, for
    example Live into QA).
  - Refuses a backup that is incomplete or corrupt before the target is touched. The manifest's own
    checksum is checked; every object is checked by listing (present, right size), then downloaded
    into a staging folder beside the target's dataroot and its sha256 (dump, tar, config) or SHA-1
    (filedir) checked. Filedir files the target already has are hard-linked, not downloaded.
  - Only then is the target changed. The database tables are replaced (PostgreSQL in one
    transaction), the staged dataroot is swapped in, owned by I(web_user); the target keeps its own
    C(config.php) (its database, wwwroot and tier settings).
  - Rewrites what differs between tiers. The source's wwwroot becomes the target's in the
    database content, with Moodle's C(admin/tool/replace/cli/replace.php). I(settings) are applied
    with C(cfg.php), and caches are purged.
  - Refuses a backup of a newer Moodle than the target's code, or with another database type or
    table prefix.
  - Records C(<source_site>/<backup_id>) in the target (C(three_instance/restored_backup)), so the
    same backup is not restored twice unless I(force).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
  - lms_backup_site
  - lms_store
  - lms_db_clients
options:
  site:
    description:
      - The target site's name (the backup's site too when I(source_site) is unset).
  source_site:
    description: The site whose backup is restored, for example C(acme-live); default I(site).
    type: str
  backup_id:
    description: The backup to restore; the latest complete backup of I(source_site) when unset.
    type: str
  force:
    description: Restore even when this backup is the one restored last into the target.
    type: bool
    default: false
  settings:
    description:
      - Settings applied after the restore, C(name) or C(component/name) to a value (null unsets), for
        the target tier's policy (for example C(noemailever), C(theme_boost/brandcolor)).
    type: dict
    default: {}
  allow_live:
    description:
      - Restore into a Live site. Without it the module refuses (also in check mode) when the target
        is Live - its code root is in a site folder C(<customer>-live) (C(<code_dir>/acme-live/current)),
        its deployment record there (C(deployment.json)) names a Live site, or I(site) or I(web_user)
        is a Live site's name - before the backup store is read.
      - Even with it, Live is restored only from its own backups (I(source_site) unset or the Live
        site itself), except for a first build (I(first_build)) from the customer's QA.
    type: bool
    default: false
  first_build:
    description:
      - Build a site that never served from another site's design - a new customer's Dev or Live
        from its QA (docs/onboarding.md). Refused, before the backup store is read and also in check
        mode, unless the target's own database says it never served - no user but the guest and its
        site administrators, no course, nothing restored or adopted into it - or it was only ever
        first-built and has had no users since, or its first build stopped before its people were
        removed (it is built again).
      - After the restore every user but the guest and the site administrators of the backup is
        anonymised and deleted (enrolments, role assignments, logs, messages, their files; the
        sanitiser's C(delete)), with the target's mail settings left as its tier set them; then the
        module checks that no other user is left. Courses, settings and the theme stay.
      - A Live target needs I(allow_live) with a reason, and I(source_site) the customer's QA site.
    type: bool
    default: false
  allow_live_reason:
    description:
      - Why Live is restored (for example the incident or change ticket); required, not blank and at
        most 500 characters with I(allow_live=true). It is returned (RV(live_override)) and warned,
        so it stays in the job's log.
    type: str
notes:
  - Check mode checks the manifest and lists the objects (the backup is complete), without downloading.
  - The staging folder C(<dataroot>.restoring) needs room for the dump, the dataroot tar and the
    filedir objects the target lacks.
seealso:
  - module: lms_backup
"""

EXAMPLES = r"""
- name: Build initech's new Live from its QA's design (no learners come along)
  lms_restore:
    path: /srv/lms/initech-live/current
    web_user: initech-live
    site: initech-live
    source_site: initech-qa
    customer: initech
    store: "{{ backup_store }}"
    first_build: true
    allow_live: true
    allow_live_reason: "CHG-12: initech goes live, built from QA's approved design"

- name: Refill acme's QA from the latest backup of acme's Live
  lms_restore:
    path: /srv/lms/acme-qa/current
    web_user: acme-qa
    site: acme-qa
    source_site: acme-live
    customer: acme
    store: "{{ backup_store }}" # {bucket: acme-backups, region: eu-west-2, ...}
    settings:
      noemailever: 1
"""

RETURN = r"""
target_changed:
  description: >-
    On failure only: whether the target had started to change (its database replaced). Until then
    everything is downloaded and checked into a staging folder, so a failure leaves the target as
    it was and it may serve again; after it, the target holds part of the backup.
  returned: failure
  type: bool
already_restored:
  description: >-
    The target holds this backup already (it was restored here last; I(force) restores it again),
    so nothing was done. The target then holds the source's data, whatever ran after that restore.
  returned: always
  type: bool
backup_id:
  description: The backup restored (or that would be).
  returned: always
  type: str
source_site:
  description: The site the backup was taken of.
  returned: always
  type: str
release_id:
  description: The release the source ran when the backup was taken; deploy it on the target if it differs.
  returned: always
  type: str
moodle_version:
  description: The Moodle version of the backup's database.
  returned: always
  type: str
wwwroot_from:
  description: The source's wwwroot (replaced in the database content).
  returned: always
  type: str
wwwroot_to:
  description: The target's wwwroot.
  returned: always
  type: str
filedir:
  description: Filedir objects hard-linked from the target and downloaded (count and bytes).
  returned: changed
  type: dict
seconds:
  description: Wall time.
  returned: changed
  type: float
first_build:
  description: With I(first_build), the administrators kept and how many other users were removed.
  returned: changed, with I(first_build)
  type: dict
  sample: {"admins_kept": ["admin"], "users_removed": 14}
live_override:
  description: The Live site restored into with I(allow_live), and the reason given.
  returned: when the target is a Live site
  type: dict
  sample: {"site": "acme-live", "reason": "INC-7: database lost, restore last night's backup"}
"""

from ansible.module_utils.backup.format import SITE_ARGS, BackupError
from ansible.module_utils.backup.restore import RESTORE_ARGS, restore
from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.moodle_cli import COMMON_ARGS, LIVE_GUARD_ARGS, MoodleError, live_guard
from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, HAS_BOTO3, StoreError


def main():
    module = AnsibleModule(
        argument_spec={**COMMON_ARGS, **BACKUP_STORE_ARGS, **SITE_ARGS, **RESTORE_ARGS, **LIVE_GUARD_ARGS},
        supports_check_mode=True,
    )
    try:
        override = live_guard(module.params, "lms_restore", "restore a backup into")
    except MoodleError as exc:
        module.fail_json(msg=str(exc))
    if override:
        source = module.params["source_site"] or module.params["site"]
        qa = override["site"].rpartition("-")[0] + "-qa"
        if source != override["site"] and not (module.params["first_build"] and source == qa):
            module.fail_json(
                msg=f"lms_restore refuses to restore {source[:80]}'s backup into the Live site "
                f"{override['site']}: Live is restored only from its own backup "
                f"(source_site={override['site']}), allow_live or not; a Live that never served is "
                f"built from its QA with first_build (source_site={qa}). Nothing was changed"
            )
        module.warn(
            f"restoring into the Live site {override['site']} (allow_live), reason: {override['reason']}"
        )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        result = restore(module.params, module.check_mode)
    except (BackupError, StoreError, MoodleError) as exc:
        module.fail_json(msg=str(exc), target_changed=getattr(exc, "target_changed", False))
    if override:
        result["live_override"] = override
    module.exit_json(**result)


if __name__ == "__main__":
    main()

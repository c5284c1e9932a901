#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_backup_prune
short_description: Apply a retention policy to a site's backups in S3
description:
  - Keeps, for each of the I(keep_daily) most recent days (I(keep_weekly) ISO weeks,
    I(keep_monthly) months) that have backups, the newest backup of that day (week, month); the
    newest backup is always kept. The others expire.
  - Deletes the expired manifests first (the backups cease to exist), then their data objects,
    then the filedir content objects and packs that no remaining manifest of any site of the
    customer references (a pack goes when no manifest names it).
  - Objects younger than I(grace_hours) are never deleted unless a manifest says they expired, since they may
    belong to a backup that is running (its manifest comes last). Data of interrupted backups
    (no manifest) older than that is deleted.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_backup_site
  - lms_store
options:
  keep_daily:
    description: Days to keep one backup of.
    type: int
    default: 7
  keep_weekly:
    description: ISO weeks to keep one backup of.
    type: int
    default: 4
  keep_monthly:
    description: Months to keep one backup of.
    type: int
    default: 6
  grace_hours:
    description: Age below which unreferenced objects are left alone.
    type: int
    default: 24
notes:
  - Check mode reports which backups would expire.
"""

EXAMPLES = r"""
- name: Keep 7 daily, 4 weekly and 12 monthly backups of acme's Live
  lms_backup_prune:
    site: acme-live
    customer: acme
    store: "{{ backup_store }}" # {bucket: acme-backups, region: eu-west-2, ...}
    keep_monthly: 12
"""

RETURN = r"""
kept:
  description: Backups kept, each with why (daily, weekly, monthly, latest).
  returned: always
  type: dict
expired:
  description: Backups deleted (or that would be).
  returned: always
  type: list
  elements: str
deleted_objects:
  description: Data objects deleted (of expired and of interrupted backups).
  returned: always
  type: int
deleted_content:
  description: Filedir content objects deleted (referenced by no remaining manifest).
  returned: always
  type: int
deleted_packs:
  description: Packs of small filedir files deleted, with their index (named by no remaining manifest).
  returned: always
  type: int
"""

from ansible.module_utils.backup.format import BackupError
from ansible.module_utils.backup.prune import PRUNE_ARGS, prune
from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, HAS_BOTO3, StoreError


def main():
    module = AnsibleModule(
        argument_spec={
            **BACKUP_STORE_ARGS,
            **PRUNE_ARGS,
            "site": {"type": "str", "required": True},
            "customer": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    for name in PRUNE_ARGS:
        if module.params[name] < 0:
            module.fail_json(msg=f"{name} must be 0 or more, got {module.params[name]}")
    try:
        module.exit_json(**prune(module.params, module.check_mode))
    except (BackupError, StoreError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()

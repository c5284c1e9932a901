#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_backup_info
short_description: List a site's backups in S3 and check one
description:
  - Lists the backups of a site (those with a manifest), oldest first.
  - With I(verify), reads the manifest of I(backup_id) (default the latest), checks its own
    checksum and that every object it names exists with the right size; small filedir files are
    found through the indexes of the packs the manifest names (no content is downloaded).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_backup_site
  - lms_store
options:
  verify:
    description: Check the manifest and its objects.
    type: bool
    default: false
  backup_id:
    description: The backup to check; the latest when unset.
    type: str
  history:
    description:
      - How many of the newest backups to summarise (0 - none) - when each was taken, its release and
        its size, read from their manifests (one small read each; no object is downloaded). The estate
        report (playbooks/report.yml) charts them.
    type: int
    default: 0
notes:
  - Read-only; supports check mode.
"""

EXAMPLES = r"""
- name: Is the latest backup of acme's Live complete?
  lms_backup_info:
    site: acme-live
    customer: acme
    store: "{{ backup_store }}" # {bucket: acme-backups, region: eu-west-2, ...}
    verify: true
  register: backups
  failed_when: not backups.complete
"""

RETURN = r"""
backups:
  description: Ids of the site's backups, oldest first.
  returned: always
  type: list
  elements: str
latest:
  description: The newest backup's id (null when there is none).
  returned: always
  type: str
checked:
  description: The backup checked.
  returned: verify
  type: str
complete:
  description: Whether every object of the checked backup exists with the right size.
  returned: verify
  type: bool
problems:
  description: What is missing or wrong.
  returned: verify
  type: list
  elements: str
manifest:
  description: The checked manifest without its filedir list.
  returned: verify
  type: dict
history:
  description:
    - The newest O(history) backups, oldest first - C(id), C(created) (ISO 8601), C(release_id),
      C(bytes) (the objects and filedir files the manifest names), C(files) (filedir files); a
      manifest that cannot be read gives C(id) and C(error).
  returned: when O(history) > 0
  type: list
  elements: dict
  sample:
    - {"id": "20261122T021500Z", "created": "2026-11-22T02:15:00+00:00", "release_id": "moodle-5.1-r3",
       "bytes": 73400320, "files": 412}
"""

from ansible.module_utils.backup.format import BackupError
from ansible.module_utils.backup.info import info
from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, HAS_BOTO3, StoreError


def main():
    module = AnsibleModule(
        argument_spec={
            **BACKUP_STORE_ARGS,
            "site": {"type": "str", "required": True},
            "customer": {"type": "str", "required": True},
            "verify": {"type": "bool", "default": False},
            "backup_id": {"type": "str"},
            "history": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        module.exit_json(**info(module.params))
    except (BackupError, StoreError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()

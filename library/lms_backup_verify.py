#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_backup_verify
short_description: Prove a site's backup restores, in a scratch site
description:
  - Restores a backup of I(site) (the latest, or I(backup_id)) with M(lms_restore)'s code into a
    scratch site on this host. The scratch site is a hard-linked copy of the site's code under
    I(scratch_dir), a scratch database (C(<dbname>_verify), owned by the site's database user) and
    a scratch dataroot. The live site is not touched.
  - Checks the result as Moodle sees it. The restored version must be the backup's. The rows of
    the main tables are reported and users and config must exist. Every file the database refers
    to must be in the filedir (the backup's consistency promise). Sample filedir files are hashed
    again from disk.
  - Removes the scratch database and folder afterwards, also when something failed.
  - The scratch database is created by the database server's administrator over the local socket.
    PostgreSQL uses the C(postgres) OS user (peer authentication); MariaDB uses C(root) (unix
    socket authentication).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
  - lms_backup_site
  - lms_store
  - lms_scratch_site
  - lms_db_clients
options:
  backup_id:
    description: The backup to check; the latest when unset.
    type: str
  samples:
    description: Filedir files hashed again after the restore.
    type: int
    default: 20
notes:
  - Changes nothing that outlives the task; reports C(changed=false). In check mode nothing is
    restored; the backup's manifest is read and every object it lists is looked up in the bucket.
"""

EXAMPLES = r"""
- name: Prove that acme's latest Live backup restores
  lms_backup_verify:
    path: /srv/lms/acme-live/current
    web_user: acme-live
    site: acme-live
    customer: acme
    store: "{{ backup_store }}" # {bucket: acme-backups, region: eu-west-2, ...}
  register: proof
  failed_when: not proof.ok
"""

RETURN = r"""
backup_id:
  description: The backup restored.
  returned: success
  type: str
ok:
  description: Whether every check passed.
  returned: success
  type: bool
problems:
  description: What failed.
  returned: success
  type: list
  elements: str
version:
  description: The restored database's Moodle version.
  returned: success
  type: str
rows:
  description: Rows of the main tables of the restored database.
  returned: success
  type: dict
files_referenced_missing:
  description: Files the restored database refers to that are not in the restored filedir.
  returned: success
  type: int
restore_seconds:
  description: Time the restore took.
  returned: success
  type: float
"""

from ansible.module_utils.backup.format import SITE_ARGS, BackupError
from ansible.module_utils.backup.verify import VERIFY_ARGS, verify_backup, verify_plan
from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError
from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, HAS_BOTO3, StoreError


def main():
    module = AnsibleModule(
        argument_spec={**COMMON_ARGS, **BACKUP_STORE_ARGS, **SITE_ARGS, **VERIFY_ARGS},
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        result = (verify_plan if module.check_mode else verify_backup)(module.params)
    except (BackupError, StoreError, MoodleError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

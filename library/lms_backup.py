#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_backup
short_description: Back up one Moodle or Totara site to S3
description:
  - Takes one backup of a site into an S3 bucket, committed by a manifest written last; a backup
    exists whole (its manifest exists) or not at all.
  - The database first, streamed (C(pg_dump -Fc), or C(mysqldump --single-transaction) gzipped)
    into a multipart upload with its sha256, never staged on disk.
  - Then the dataroot. Moodle's C(filedir) is content-addressed (files named by their SHA-1); each
    file is uploaded once per customer and only when the bucket lacks it, in parallel, files over
    256 KiB as their own object and smaller ones in packs of about 16 MiB with an index. The rest
    of the dataroot, without C(cache), C(localcache), C(sessions), C(temp), C(trashdir) and
    C(lock), is one gzipped tar stream.
  - Then the site's C(config.php) and the deployed release id, then the manifest listing every
    object with its size and checksum.
  - Consistency without downtime. The dump is one database snapshot, taken before the files are
    read; filedir content is never rewritten in place and is deleted only after its last database
    reference went, so every file the dump refers to is present when the files are read.
  - The database credentials are read from the site's C(config.php) by PHP running as I(web_user)
    and passed to the dump tools in their environment, never on a command line.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
  - lms_backup_site
  - lms_store
options:
  tier:
    description: The site's tier, recorded in the manifest.
    type: str
  backup_id:
    description:
      - Id of the new backup; the UTC time (C(20261126T031500Z)) when unset. An existing id is refused
        (backups are immutable).
    type: str
  deployment_record:
    description:
      - The deployment record whose C(release) is recorded as the release id; default
        C(deployment.json) beside I(path). Without it, the C(releases/<id>) folder I(path) points at.
    type: path
  pg_dump:
    description: The C(pg_dump) binary (PostgreSQL sites).
    type: str
    default: pg_dump
  mysqldump:
    description: The C(mysqldump) binary (MariaDB/MySQL sites).
    type: str
    default: mysqldump
  part_size_mb:
    description:
      - Multipart part size (MiB, at least 5); memory use is about I(part_size_mb) x (O(store.threads) + 1).
    type: int
    default: 16
notes:
  - Check mode lists the site's filedir and the bucket and reports what would be uploaded.
  - Run as root (C(become)); PHP runs as I(web_user).
seealso:
  - module: lms_backup_info
  - module: lms_backup_prune
  - module: lms_restore
"""

EXAMPLES = r"""
- name: Back up acme's Live site
  lms_backup:
    path: /srv/lms/acme-live/current
    web_user: acme-live
    site: acme-live
    customer: acme
    tier: live
    store:
      bucket: acme-backups
      encryption: aws:kms
      kms_key_id: alias/lms-backups
  register: backup
"""

RETURN = r"""
backup_id:
  description: Id of the backup made.
  returned: changed
  type: str
  sample: 20261126T031500Z
manifest:
  description: The manifest's S3 URL (the backup's commit point).
  returned: changed
  type: str
release_id:
  description: The deployed release recorded in the manifest.
  returned: changed
  type: str
moodle_version:
  description: The database's Moodle version.
  returned: changed
  type: str
database:
  description: The dump object (size, sha256, format, seconds).
  returned: changed
  type: dict
filedir:
  description:
    - Filedir files and bytes, how many were uploaded and how many the bucket already had.
    - C(packs_uploaded) new packs of small files, C(packs) the packs the backup refers to.
  returned: changed
  type: dict
bytes_uploaded:
  description: Bytes sent to S3 by this backup (dump, new filedir objects, dataroot tar, config, manifest).
  returned: changed
  type: int
filedir_to_upload:
  description: Check mode only, filedir objects the bucket lacks.
  returned: check_mode
  type: int
warnings:
  description: Filedir files that do not match their name (not backed up) and unexpected entries.
  returned: changed
  type: list
  elements: str
seconds:
  description: Wall time.
  returned: changed
  type: float
"""

from ansible.module_utils.backup.create import DUMP_ARGS, create_backup, plan_backup
from ansible.module_utils.backup.format import SITE_ARGS, BackupError
from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError
from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, HAS_BOTO3, StoreError


def main():
    module = AnsibleModule(
        argument_spec={
            **COMMON_ARGS,
            **BACKUP_STORE_ARGS,
            **SITE_ARGS,
            **DUMP_ARGS,
            "tier": {"type": "str"},
            "backup_id": {"type": "str"},
            "deployment_record": {"type": "path"},
        },
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        if module.check_mode:
            module.exit_json(changed=True, **plan_backup(module.params))
        result = create_backup(module.params)
    except (BackupError, StoreError, MoodleError) as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

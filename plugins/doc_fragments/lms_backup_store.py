# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options of the backup modules that name the bucket and the site (module_utils.s3_store.S3_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  site:
    description:
      - The site whose backups these are, C(<customer>-<tier>), for example C(acme-live).
    type: str
    required: true
  customer:
    description:
      - The customer the site belongs to. Filedir content is stored once per customer and shared
        by the backups of all its sites; a restore only takes backups of the same customer.
    type: str
    required: true
  bucket:
    description: The S3 bucket (playbooks/backup_bucket.yml creates it).
    type: str
    required: true
  prefix:
    description: Key prefix of all backups in the bucket (docs/backups.md shows the layout).
    type: str
    default: lms-backups
  endpoint_url:
    description: S3 API endpoint, for S3-compatible stores (MinIO, moto); AWS when unset.
    type: str
  region:
    description: The bucket's region; from the environment or the AWS config when unset.
    type: str
  access_key:
    description: Access key id; from the environment, the AWS config or the instance profile when unset.
    type: str
  secret_key:
    description: Secret access key (never logged).
    type: str
  session_token:
    description: Session token of temporary credentials (never logged).
    type: str
  encryption:
    description:
      - Server-side encryption of every object written. C(aws:kms) needs I(kms_key_id).
    type: str
    choices: [none, AES256, "aws:kms"]
    default: AES256
  kms_key_id:
    description: KMS key id or ARN for C(encryption=aws:kms).
    type: str
  storage_class:
    description: Storage class of the objects written (C(STANDARD), C(STANDARD_IA), ...).
    type: str
    default: STANDARD
  threads:
    description: Parallel S3 requests (uploads of filedir objects and of dump parts, listings).
    type: int
    default: 8
requirements:
  - boto3
"""

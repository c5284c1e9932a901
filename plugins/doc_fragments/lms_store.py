# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one store option of every module that talks to a store (module_utils.s3_store.store_arg):
the backup modules and the release modules take the same dict."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  store:
    description:
      - Where the backups or the releases are - the same dict for every module, so a playbook passes
        its C(backup_store) or C(release_store) variable whole (docs/backups.md, docs/releases.md).
      - "Credentials: O(store.access_key)/O(store.secret_key) (and O(store.session_token) for temporary
        ones), else boto3's chain (environment, AWS config, instance profile). They are never logged."
    type: dict
    required: true
    suboptions:
      type:
        description:
          - V(s3) (a bucket in AWS S3 or an S3 API such as MinIO or moto) or V(dir) (a folder; the
            release modules only).
        type: str
        choices: [s3, dir]
        default: s3
      path:
        description: The folder (O(store.type=dir)).
        type: path
      bucket:
        description: The bucket (O(store.type=s3)); playbooks/backup_bucket.yml creates the backup bucket.
        type: str
      prefix:
        description:
          - Key prefix in the bucket. Unset, V(lms-backups) for the backup modules (docs/backups.md shows
            the layout) and V(releases/) for the release modules; V("") for none.
        type: str
      endpoint_url:
        description: S3 API endpoint, for S3-compatible stores (MinIO, moto); AWS when unset.
        type: str
      region:
        description: The bucket's region; from the environment or the AWS config when unset.
        type: str
      access_key:
        description: Access key id.
        type: str
      secret_key:
        description: Secret access key.
        type: str
      session_token:
        description: Session token of temporary credentials.
        type: str
      ca_bundle:
        description: CA certificates (PEM) of the endpoint, for an S3 API behind a private CA.
        type: path
      encryption:
        description: Server-side encryption of every object written. V(aws:kms) needs O(store.kms_key_id).
        type: str
        choices: [none, AES256, "aws:kms"]
        default: AES256
      kms_key_id:
        description: KMS key id or ARN for O(store.encryption=aws:kms).
        type: str
      storage_class:
        description: Storage class of the objects written (V(STANDARD), V(STANDARD_IA), ...).
        type: str
        default: STANDARD
      threads:
        description: Parallel S3 requests (uploads, listings).
        type: int
        default: 8
requirements:
  - boto3 (O(store.type=s3))
"""

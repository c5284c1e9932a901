# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The artifact store option of the release modules (module_utils.release.STORE_ARG)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  store:
    description: The artifact store that holds the releases.
    type: dict
    required: true
    suboptions:
      type:
        description: C(dir) (a folder) or C(s3) (a bucket).
        type: str
        choices: [dir, s3]
        required: true
      path:
        description: The folder (C(type=dir)).
        type: path
      bucket:
        description: The bucket (C(type=s3)).
        type: str
      prefix:
        description: Key prefix in the bucket.
        type: str
        default: releases/
      endpoint_url:
        description: S3 API endpoint (moto, MinIO); AWS when unset.
        type: str
      region:
        description: The bucket's region.
        type: str
      access_key:
        description: Access key id; boto3's credential chain when unset.
        type: str
      secret_key:
        description: Secret access key.
        type: str
"""

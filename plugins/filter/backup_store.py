# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the backup store's principals (docs/backups.md, "Who holds which key").

With ``backup_store.principals`` set, each customer has its own principal, scoped to its own prefix
and without delete, and only that customer's key ever reaches its hosts; deletion (retention) belongs
to ``backup_store.pruner``, used on the controller only. Without it, the store's single key serves
every job (an estate of one customer, or instance profiles).

Pure Python: tests/unit/test_backup_store_filter.py uses the same functions.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

#: What a customer's hosts may do: write and read its own backups (a restore, a QA refresh and the
#: backup's own check read them back). No delete: a compromised host cannot destroy history.
SITE_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
#: What retention needs: read manifests, delete expired backups and unreferenced content.
PRUNE_ACTIONS = ["s3:GetObject", "s3:DeleteObject"]
LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
CREDENTIAL_KEYS = ("access_key", "secret_key")
NAME = re.compile(r"[a-z][a-z0-9]*")


def _credentials(where: str, principal) -> dict:
    if not isinstance(principal, dict) or not all(str(principal.get(k) or "") for k in CREDENTIAL_KEYS):
        raise AnsibleFilterError(f"{where} needs access_key and secret_key")
    return {k: principal[k] for k in CREDENTIAL_KEYS}


def _without_principals(store: dict) -> dict:
    return {k: v for k, v in store.items() if k not in ("principals", "pruner", *CREDENTIAL_KEYS)}


def backup_store_for(store: dict, customer: str) -> dict:
    """The store as one customer's hosts see it: its own principal's key, nobody else's."""
    if not isinstance(store, dict):
        raise AnsibleFilterError("backup_store must be a mapping (docs/backups.md)")
    if "principals" not in store:
        return dict(store)
    principals = store["principals"]
    if not isinstance(principals, dict) or customer not in principals:
        known = ", ".join(sorted(principals)) if isinstance(principals, dict) else "none"
        raise AnsibleFilterError(
            f"backup_store.principals has no key for customer '{customer}' (it has: {known}); "
            "playbooks/backup_principals.yml makes one; no other customer's key is used instead"
        )
    return {
        **_without_principals(store),
        **_credentials(f"backup_store.principals.{customer}", principals[customer]),
    }


def backup_store_pruner(store: dict) -> dict:
    """The store as the controller's retention job sees it: the pruner's key."""
    if "principals" not in store:
        return dict(store)
    if "pruner" not in store:
        raise AnsibleFilterError(
            "backup_store.principals is set, so retention needs backup_store.pruner (the only key that may "
            "delete backups; playbooks/backup_principals.yml makes it)"
        )
    return {**_without_principals(store), **_credentials("backup_store.pruner", store["pruner"])}


def backup_prune_on_controller(store: dict) -> bool:
    """Whether retention runs on the controller (customer keys cannot delete) or on the site's host."""
    return isinstance(store, dict) and "principals" in store


def backup_policies(
    customers, bucket: str, prefix: str = "lms-backups", name_prefix: str = "three-instance", kms_key=None
) -> dict:
    """IAM policy documents: one per customer (its own prefix, no delete) and the pruner's. With
    ``kms_key`` (the ARN of the bucket's KMS key, encryption aws:kms) each may use that key too."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", str(bucket or "")):
        raise AnsibleFilterError(f"bucket must be an S3 bucket name, got {bucket!r}")
    prefix = str(prefix).strip("/")
    bad = [c for c in customers if not NAME.fullmatch(str(c))]
    if bad or not customers:
        raise AnsibleFilterError(
            f"customers must be estate customer names (got {sorted(map(str, customers))})"
        )
    bucket_arn = f"arn:aws:s3:::{bucket}"

    def policy(name: str, under: str, sid: str, actions: list[str]) -> None:
        """List the bucket under `under`, and `actions` on the objects there."""
        policies[f"{name_prefix}-backup-{name}"] = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListItsOwnBackups",
                    "Effect": "Allow",
                    "Action": LIST_ACTIONS,
                    "Resource": bucket_arn,
                    "Condition": {"StringLike": {"s3:prefix": [f"{under}/*"]}},
                },
                {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": f"{bucket_arn}/{under}/*"},
            ],
        }

    policies = {}
    for customer in sorted(set(customers)):
        policy(customer, f"{prefix}/{customer}", "WriteAndReadItsOwnBackups", SITE_ACTIONS)
    policy("pruner", prefix, "ApplyRetention", PRUNE_ACTIONS)
    if kms_key:
        for policy in policies.values():
            policy["Statement"].append(
                {
                    "Sid": "UseTheBackupKey",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": kms_key,
                }
            )
    return policies


class FilterModule:
    def filters(self):
        return {
            "backup_store_for": backup_store_for,
            "backup_store_pruner": backup_store_pruner,
            "backup_prune_on_controller": backup_prune_on_controller,
            "backup_policies": backup_policies,
        }

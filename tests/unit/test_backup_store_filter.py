"""plugins/filter/backup_store.py: which key reaches which host, and the policies of the principals
(the moto test, tests/integration/test_backup_principals.py, shows them enforced)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import backup_store as bs

SHARED = {"bucket": "lms-backups", "endpoint_url": "http://s3", "access_key": "one", "secret_key": "for-all"}
ISOLATED = {
    "bucket": "lms-backups",
    "prefix": "lms-backups",
    "principals": {
        "acme": {"access_key": "A", "secret_key": "a-secret"},
        "globex": {"access_key": "G", "secret_key": "g"},
    },
    "pruner": {"access_key": "P", "secret_key": "p-secret"},
}


def test_a_customers_hosts_get_its_key_and_no_other():
    store = bs.backup_store_for(ISOLATED, "acme")
    assert store["access_key"] == "A" and store["secret_key"] == "a-secret"
    assert "principals" not in store and "pruner" not in store
    assert "g" not in str(store) and "p-secret" not in str(store)
    assert bs.backup_prune_on_controller(ISOLATED)


def test_a_customer_without_a_key_is_refused_never_given_another():
    with pytest.raises(AnsibleFilterError, match=r"no key for customer 'initech'.*acme, globex"):
        bs.backup_store_for(ISOLATED, "initech")
    broken = {**ISOLATED, "principals": {"acme": {"access_key": "A"}}}
    with pytest.raises(AnsibleFilterError, match=r"principals\.acme needs access_key and secret_key"):
        bs.backup_store_for(broken, "acme")


def test_only_the_pruner_store_carries_the_pruners_key():
    assert bs.backup_store_pruner(ISOLATED)["access_key"] == "P"
    without = {k: v for k, v in ISOLATED.items() if k != "pruner"}
    with pytest.raises(AnsibleFilterError, match=r"needs backup_store\.pruner"):
        bs.backup_store_pruner(without)


def test_one_shared_key_stays_as_it_was():
    assert bs.backup_store_for(SHARED, "acme") == SHARED
    assert bs.backup_store_pruner(SHARED) == SHARED
    assert not bs.backup_prune_on_controller(SHARED)


def test_policies_scope_each_customer_to_its_prefix_and_only_the_pruner_deletes():
    policies = bs.backup_policies(["globex", "acme", "acme"], "ti-backups", "lms-backups/")
    assert sorted(policies) == [
        "three-instance-backup-acme",
        "three-instance-backup-globex",
        "three-instance-backup-pruner",
    ]
    for customer in ("acme", "globex"):
        statements = policies[f"three-instance-backup-{customer}"]["Statement"]
        actions = {a for s in statements for a in s["Action"]}
        assert not any("Delete" in a for a in actions)
        resources = {s["Resource"] for s in statements}
        assert resources == {"arn:aws:s3:::ti-backups", f"arn:aws:s3:::ti-backups/lms-backups/{customer}/*"}
        listing = statements[0]["Condition"]["StringLike"]["s3:prefix"]
        assert listing == [f"lms-backups/{customer}/*"]
    pruner = policies["three-instance-backup-pruner"]["Statement"]
    assert "s3:DeleteObject" in pruner[1]["Action"] and "s3:PutObject" not in pruner[1]["Action"]


def test_kms_key_use_is_granted_when_the_bucket_uses_kms():
    arn = "arn:aws:kms:eu-west-1:123456789012:key/abc"
    policies = bs.backup_policies(["acme"], "ti-backups", kms_key=arn)
    assert all(p["Statement"][-1]["Resource"] == arn for p in policies.values())


@pytest.mark.parametrize(
    ("customers", "bucket", "match"),
    [
        ([], "ti-backups", "customers"),
        (["Acme; rm"], "ti-backups", "customers"),
        (["acme"], "Bad_Bucket", "bucket"),
    ],
)
def test_bad_policy_input_is_refused_by_name(customers, bucket, match):
    with pytest.raises(AnsibleFilterError, match=match):
        bs.backup_policies(customers, bucket)

"""The one `store` option (plugins/module_utils/s3_store.store_arg): the same dict for the backup
and the release modules, checked before any connection is made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

import release as rel
import s3_store
from backup.format import site_keys

pytest.importorskip("boto3")


def test_backup_and_release_modules_take_the_same_store_option():
    assert s3_store.BACKUP_STORE_ARGS["store"] == rel.STORE_ARG == s3_store.store_arg()
    assert s3_store.store_arg()["options"]["secret_key"]["no_log"] is True


def test_the_timer_script_fills_the_defaults_and_refuses_unknown_keys():
    spec = s3_store.BACKUP_STORE_ARGS["store"]
    filled = s3_store.store_defaults(spec, {"bucket": "b", "threads": 2})
    assert (filled["bucket"], filled["threads"], filled["encryption"], filled["prefix"]) == (
        "b",
        2,
        "AES256",
        None,
    )
    with pytest.raises(s3_store.StoreError, match="unknown keys principals"):
        s3_store.store_defaults(spec, {"bucket": "b", "principals": {}})


def test_each_family_has_its_own_prefix_when_the_store_names_none():
    keys = site_keys({"store": {"prefix": None}, "customer": "acme", "site": "acme-live"})
    assert keys.manifest_prefix == "lms-backups/acme/sites/acme-live/manifests/"
    assert site_keys({"store": {"prefix": ""}, "customer": "acme", "site": "acme-qa"}).site_prefix == (
        "acme/sites/acme-qa/"
    )


def test_backups_refuse_a_folder_store_before_connecting():
    with pytest.raises(s3_store.StoreError, match="must be an S3 bucket"):
        s3_store.connect({"type": "dir", "path": "/srv/releases", "bucket": None})

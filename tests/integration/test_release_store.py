"""build_release.yml and lms_release_fetch through real Ansible against a real S3 API (moto over
HTTP): publishing, the same bytes twice, refusing other bytes under an id, a missing release, a
bad checksum and an unreachable bucket. A small fake core keeps it fast (~15 s); the real Moodle
tree is built in the Molecule scenario and in tests/unit/test_release.py's determinism test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from ansible_cli import BIN, PYTHON, ansible_env, ansible_module, ansible_playbook, module_result

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "tests" / "fixtures" / "plugins"
BUCKET = "release-store-test"


@pytest.fixture(scope="module")
def store(s3_endpoint) -> dict:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"])
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": s3_endpoint["region"]})
    return {
        "type": "s3",
        "bucket": BUCKET,
        "prefix": "releases/",
        "endpoint_url": s3_endpoint["endpoint_url"],
        "region": s3_endpoint["region"],
        "access_key": s3_endpoint["access_key"],
        "secret_key": s3_endpoint["secret_key"],
    }


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("core")
    (root / "lib").mkdir()
    (root / "lib" / "components.json").write_text(json.dumps({"plugintypes": {"local": "public/local"}}))
    (root / "public").mkdir()
    (root / "public" / "version.php").write_text("<?php\n$version = 2025100600.02;\n$release = '5.1+';\n")
    return root


def manifest(tmp_path: Path, core: Path, plugin: str) -> Path:
    path = tmp_path / "release.yml"
    path.write_text(
        f"release: store-r1\nflavour: moodle\ncore:\n  dir: {core}\n"
        f"plugins:\n  - component: local_tidemo\n    dir: {PLUGINS / plugin}\n"
    )
    return path


def playbook(*args: str, extra: dict) -> subprocess.CompletedProcess:
    env = ansible_env(PATH=f"{BIN}:{os.environ['PATH']}")
    return ansible_playbook("-i", "localhost,", *args, "-e", json.dumps(extra), "-e", PYTHON, env=env)


def fetch(store: dict, release: str, dest: Path, sha256: str | None = None) -> dict:
    args = {"release": release, "store": store, "dest": str(dest)}
    if sha256:
        args["sha256"] = sha256
    return module_result(ansible_module("lms_release_fetch", args))


def test_publish_is_deterministic_and_immutable(tmp_path, store, core, s3_endpoint):
    build = str(REPO / "playbooks" / "build_release.yml")
    first = playbook(
        build,
        extra={
            "manifest": str(manifest(tmp_path, core, "local_tidemo-1.0")),
            "release_store": store,
            "release_cache_dir": str(tmp_path / "a"),
        },
    )
    assert first.returncode == 0, first.stdout[-3000:]
    assert "published to s3://release-store-test/releases/" in first.stdout
    second = playbook(
        build,
        extra={
            "manifest": str(manifest(tmp_path, core, "local_tidemo-1.0")),
            "release_store": store,
            "release_cache_dir": str(tmp_path / "b"),
        },
    )
    assert second.returncode == 0 and "already in s3://" in second.stdout, second.stdout[-3000:]
    assert (tmp_path / "a" / "bundles" / "store-r1.tar.gz").read_bytes() == (
        tmp_path / "b" / "bundles" / "store-r1.tar.gz"
    ).read_bytes()

    other = playbook(
        build,
        extra={
            "manifest": str(manifest(tmp_path, core, "local_tidemo-1.0.1")),
            "release_store": store,
            "release_cache_dir": str(tmp_path / "c"),
        },
    )
    assert other.returncode != 0
    assert "release store-r1 already exists in s3://release-store-test/releases/ with sha256" in other.stdout

    s3 = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["releases/store-r1.json", "releases/store-r1.sha256", "releases/store-r1.tar.gz"]

    got = fetch(store, "store-r1", tmp_path / "fetched")
    assert not got.get("failed"), got
    assert got["manifest"]["plugins"][0]["path"] == "public/local/tidemo"
    assert (
        got["sha256"]
        == s3.get_object(Bucket=BUCKET, Key="releases/store-r1.sha256")["Body"].read().split()[0].decode()
    )

    missing = fetch(store, "store-r9", tmp_path / "fetched")
    assert missing["failed"] and "release store-r9 is not in the release store s3://" in missing["msg"]
    wrong = fetch(store, "store-r1", tmp_path / "fetched", "0" * 64)
    assert wrong["failed"] and "expected 0000" in wrong["msg"]

    s3.put_object(Bucket=BUCKET, Key="releases/store-r1.tar.gz", Body=b"tampered")
    tampered = fetch(store, "store-r1", tmp_path / "fresh")
    assert tampered["failed"] and "bad checksum" in tampered["msg"]
    assert not list((tmp_path / "fresh").glob("*.tar.gz"))

    nowhere = fetch(dict(store, bucket="no-such-bucket"), "store-r1", tmp_path / "fresh")
    assert nowhere["failed"] and "bucket 'no-such-bucket'" in nowhere["msg"], nowhere["msg"]
    assert "cannot be reached" in nowhere["msg"] and "build_release.yml" in nowhere["msg"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

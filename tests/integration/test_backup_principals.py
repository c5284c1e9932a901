"""Customers isolated in the backup bucket, where the policy is enforced: a moto server of its own
with IAM authentication switched on. playbooks/backup_principals.yml creates, from the local
estate (acme, globex), one user per customer and the pruner; then every call is made with the keys
it wrote, through the backup code's own store (plugins/module_utils/s3_store.py).

moto evaluates each statement's Action and Resource, not its Condition, and does not authorise
listing (docs/backups.md): the isolation shown here is the per-object one (read, write, delete).
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import urllib.request

import boto3
import local_s3
import pytest
import s3_store
import yaml
from ansible_cli import REPO, ansible_playbook
from backup.create import upload_content
from backup.format import Keys
from botocore.exceptions import ClientError

BUCKET = "ti-principals"
REGION = "eu-west-1"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def principals(tmp_path_factory):
    state = tmp_path_factory.mktemp("moto-auth")
    info = local_s3.start(free_port(), state)
    try:
        admin = boto3.client(
            "s3", endpoint_url=info["endpoint_url"], region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        admin.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        admin.put_object(Bucket=BUCKET, Key="lms-backups/globex/globex-live/manifests/1.json", Body=b"{}")
        admin.put_object(Bucket=BUCKET, Key="lms-backups/acme/acme-live/manifests/1.json", Body=b"{}")
        keys_dir = state / "keys"
        store = {
            "bucket": BUCKET,
            "prefix": "lms-backups",
            "endpoint_url": info["endpoint_url"],
            "region": REGION,
        }
        extra = {"backup_store": store, "backup_principals_keys_dir": str(keys_dir),
                 "backup_principals_admin": {"access_key": "testing", "secret_key": "testing"}}  # fmt: skip
        first = ansible_playbook(
            "-i", "inventories/local", "playbooks/backup_principals.yml", "-e", json.dumps(extra)
        )
        assert first.returncode == 0, first.stdout[-3000:]
        again = ansible_playbook(
            "-i", "inventories/local", "playbooks/backup_principals.yml", "-e", json.dumps(extra)
        )
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
        written = {path.stem: json.loads(path.read_text()) for path in keys_dir.glob("*.json")}
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in keys_dir.glob("*.json")}
        # Authentication on from here: only the keys the playbook made work.
        request = urllib.request.Request(  # noqa: S310 - the local moto server
            f"{info['endpoint_url']}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 - the local moto server
        yield {"info": info, "keys": written, "modes": modes, "outputs": first.stdout + again.stdout}
    finally:
        local_s3.stop(state)


def store_of(principals, user: str) -> s3_store.S3Store:
    """The backup code's store, with that user's key."""
    key = principals["keys"][user]
    client = boto3.client(
        "s3", endpoint_url=principals["info"]["endpoint_url"], region_name=REGION,
        aws_access_key_id=key["access_key"], aws_secret_access_key=key["secret_key"],
    )  # fmt: skip
    return s3_store.S3Store(client, BUCKET, encryption="AES256")


def denied(call) -> bool:
    try:
        call()
    except (ClientError, s3_store.StoreError) as exc:
        return "AccessDenied" in str(exc) or "Access Denied" in str(exc)
    return False


def test_the_playbook_makes_one_principal_per_customer_and_a_pruner_keys_only_in_files(principals):
    assert set(principals["keys"]) == {
        "three-instance-backup-acme", "three-instance-backup-globex", "three-instance-backup-pruner"
    }  # fmt: skip
    assert set(principals["modes"].values()) == {0o600}
    for key in principals["keys"].values():
        assert key["secret_key"] not in principals["outputs"]


def test_a_customers_key_writes_and_reads_only_its_own_backups(principals):
    acme = store_of(principals, "three-instance-backup-acme")
    client = acme.client
    own = "lms-backups/acme/acme-live/content/aa/x"
    acme.put(own, b"acme's")
    assert client.get_object(Bucket=BUCKET, Key=own)["Body"].read() == b"acme's"
    # A multipart upload (the dump's way), 11 MiB in 5 MiB parts.
    data = os.urandom(11 * MIB)
    assert acme.stream_upload("lms-backups/acme/acme-live/data/dump", io.BytesIO(data), 5 * MIB) == len(data)
    theirs = "lms-backups/globex/globex-live/manifests/1.json"
    assert denied(lambda: client.get_object(Bucket=BUCKET, Key=theirs))
    assert denied(lambda: client.put_object(Bucket=BUCKET, Key="lms-backups/globex/globex-live/x", Body=b"1"))
    assert denied(lambda: client.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"1"))
    globex = store_of(principals, "three-instance-backup-globex").client
    assert denied(lambda: globex.get_object(Bucket=BUCKET, Key=own))


def test_no_customer_key_deletes_only_the_pruner_does(principals):
    """Single-object deletes: moto authorises a batch delete (DeleteObjects, which the prune sends)
    as s3:DeleteObject on the bucket itself, where AWS checks each key, so a batch proves nothing."""
    acme = store_of(principals, "three-instance-backup-acme").client
    key = "lms-backups/acme/acme-live/manifests/1.json"
    assert denied(lambda: acme.delete_object(Bucket=BUCKET, Key=key))
    assert acme.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"{}"
    pruner = store_of(principals, "three-instance-backup-pruner").client
    assert denied(lambda: pruner.put_object(Bucket=BUCKET, Key="lms-backups/acme/x", Body=b"1"))
    assert denied(lambda: pruner.delete_object(Bucket=BUCKET, Key="elsewhere/x"))
    pruner.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(ClientError, match="NoSuchKey"):
        acme.get_object(Bucket=BUCKET, Key=key)


def test_a_damaged_file_leaves_no_object_without_any_delete(principals, tmp_path):
    """A file that changes while it is uploaded does not match its name: the multipart upload is
    aborted before it completes, so a key that may not delete never leaves a wrong object."""
    acme = store_of(principals, "three-instance-backup-acme")
    path = tmp_path / "video"
    path.write_bytes(os.urandom(6 * MIB))
    wrong_sha1 = "0" * 40
    keys = Keys("lms-backups", "acme", "acme-live")
    result = upload_content(acme, keys, {wrong_sha1: (str(path), 6 * MIB)}, 5 * MIB)
    assert result["damaged"] == [str(path)] and result["uploaded"] == 0
    pruner = store_of(principals, "three-instance-backup-pruner").client
    assert pruner.list_objects_v2(Bucket=BUCKET, Prefix=keys.content(wrong_sha1)).get("KeyCount") == 0
    assert pruner.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def rendered(tmp_path, store: dict) -> dict:
    """roles/backup's unit and options file for acme-live, rendered by Ansible with `store`."""
    site = {
        "name": "acme-live",
        "customer": "acme",
        "tier": "live",
        "web_hosts": ["live1"],
        "site_user": "acme-live",
        "code_dir": "/srv/lms/acme-live",
        "vars": {},
    }
    defaults = yaml.safe_load((REPO / "roles/backup/defaults/main.yml").read_text())
    variables = {**defaults, "backup_site": site, "backup_store": store, "ansible_managed": "test"}
    task = {
        "ansible.builtin.copy": {
            "dest": str(tmp_path / "{{ item }}"),
            "content": "{{ lookup('ansible.builtin.template', '"
            + str(REPO / "roles/backup/templates")
            + "/' ~ item ~ '.j2',"
            " template_vars={'backup__store': backup_store | backup_store_for('acme')}) }}",
            "mode": "0600",
        },
        "loop": ["backup.service", "backup.json"],
    }
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": variables,
            "tasks": [task],
        }
    ]
    tmp_path.mkdir()
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    run = ansible_playbook(str(tmp_path / "play.yml"))
    assert run.returncode == 0, run.stdout[-3000:]
    return {name: (tmp_path / name).read_text() for name in ("backup.service", "backup.json")}


def test_a_live_host_gets_its_customers_key_and_no_retention(tmp_path):
    store = {"bucket": BUCKET, "principals": {"acme": {"access_key": "AK", "secret_key": "acme-secret"},
             "globex": {"access_key": "GK", "secret_key": "globex-secret"}},
             "pruner": {"access_key": "PK", "secret_key": "pruner-secret"}}  # fmt: skip
    files = rendered(tmp_path / "isolated", store)
    options = json.loads(files["backup.json"])
    assert (options["store"]["access_key"], options["store"]["secret_key"]) == ("AK", "acme-secret")
    assert "globex-secret" not in files["backup.json"] and "pruner-secret" not in files["backup.json"]
    unit = files["backup.service"]
    assert "-m backup.timer create" in unit and "backup.timer prune" not in unit
    shared = rendered(tmp_path / "shared", {"bucket": BUCKET, "access_key": "one", "secret_key": "for-all"})
    assert "backup.timer prune" in shared["backup.service"]


def test_the_backup_bucket_with_object_lock_keeps_every_version(s3_endpoint):
    """backup_bucket.yml with Object Lock (GOVERNANCE, 30 days): a delete only hides an object (a
    delete marker); deleting the version itself is refused, whoever asks. A bad lock is refused."""
    name = f"ti-locked-{os.getpid()}"
    store = {"bucket": name, "endpoint_url": s3_endpoint["endpoint_url"], "region": REGION}
    extra = {"backup_store": store, "backup_bucket_object_lock": {"mode": "GOVERNANCE", "days": 30}}
    run = ansible_playbook("playbooks/backup_bucket.yml", "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout[-3000:]
    # Run again: no error. (Not "changed=0": moto answers the retention with "Years": 0 beside
    # "Days", which AWS does not, so amazon.aws.s3_bucket rewrites it each time.)
    again = ansible_playbook("playbooks/backup_bucket.yml", "-e", json.dumps(extra))
    assert again.returncode == 0, again.stdout[-3000:]
    client = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=REGION)
    lock = client.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 30)
    assert client.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    version = client.put_object(Bucket=name, Key="lms-backups/acme/x", Body=b"1")["VersionId"]
    client.delete_object(Bucket=name, Key="lms-backups/acme/x")
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=name, Key="lms-backups/acme/x", VersionId=version)
    bad = {**extra, "backup_bucket_object_lock": {"mode": "FOREVER", "days": 30}}
    refused = ansible_playbook("playbooks/backup_bucket.yml", "-e", json.dumps(bad))
    assert (
        refused.returncode != 0
        and "backup_bucket_object_lock" in refused.stdout
        and "FOREVER" in refused.stdout
    )

"""playbooks/report.yml on the local estate with every host unreachable (TEST-NET-1 addresses over
ssh, as in test_bad_input.py) and a real S3 API (moto) holding acme-live's backups, one customer
key each: the job succeeds, every row says its host is unreachable, the backups are still read from
the store with each customer's own key, Live's two-day-old newest backup is flagged stale, the JSON
validates against files/estate-report.schema.json, the keys appear nowhere in -v output, and check
mode writes the report all the same. The report on the real hosts: molecule/stack/tests/test_report.py.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys

import boto3
import jsonschema
import pytest
import yaml
from ansible_cli import REPO, ansible_playbook

sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
from backup import format as backup_format

SCHEMA = json.loads((REPO / "files" / "estate-report.schema.json").read_text())
BUCKET = "report-backups"
ACME_SECRET = "acme-secret-canary-7f3a"
GLOBEX_SECRET = "globex-secret-canary-91c2"


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("estate")
    shutil.copytree(REPO / "inventories" / "local", folder, dirs_exist_ok=True)
    data = yaml.safe_load((folder / "estate.yml").read_text())
    for number, host in enumerate(data["hosts"]):
        data["hosts"][host] = {
            "ansible_connection": "ssh",
            "ansible_host": f"192.0.2.{number + 1}",
            "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
        }
    (folder / "estate.yml").write_text(yaml.safe_dump(data))
    return str(folder)


@pytest.fixture(scope="module")
def store(s3_endpoint) -> dict:
    """Two backups of acme-live, the newer 50 hours old; none of any other site."""
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint["endpoint_url"],
        region_name=s3_endpoint["region"],
        aws_access_key_id=s3_endpoint["access_key"],
        aws_secret_access_key=s3_endpoint["secret_key"],
    )
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": s3_endpoint["region"]})
    keys = backup_format.Keys("lms-backups", "acme", "acme-live")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for hours, size in ((74, 1_000_000), (50, 1_500_000)):
        created = now - dt.timedelta(hours=hours)
        backup_id = created.strftime("%Y%m%dT%H%M%SZ")
        manifest = {
            "format": 2,
            "id": backup_id,
            "created": created.isoformat(),
            "site": "acme-live",
            "release_id": "moodle-5.1-r3",
            "objects": {"database": {"key": "k", "size": size, "sha256": "0" * 64}},
            "filedir": {},
            "packs": [],
        }
        s3.put_object(Bucket=BUCKET, Key=keys.manifest(backup_id), Body=backup_format.seal(manifest))
    principal = {"access_key": "testing", "secret_key": ACME_SECRET}
    return {
        "bucket": BUCKET,
        "prefix": "lms-backups",
        "endpoint_url": s3_endpoint["endpoint_url"],
        "region": s3_endpoint["region"],
        "principals": {"acme": principal, "globex": {"access_key": "testing", "secret_key": GLOBEX_SECRET}},
        "pruner": {"access_key": "testing", "secret_key": "pruner-secret-canary"},
    }


def report(estate: str, folder, *options: str, **extra):
    out = ansible_playbook(
        "-i", estate, "playbooks/report.yml", "-e", json.dumps({"report_dir": str(folder), **extra}), *options
    )
    assert out.returncode == 0, out.tail
    return out


def test_the_report_of_an_unreachable_estate(estate, store, tmp_path):
    out = report(estate, tmp_path / "r", "-v", backup_store=store)
    document = json.loads((tmp_path / "r" / "estate-report.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    rows = {r["site"]: r for r in document["sites"]}
    assert list(rows) == ["acme-dev", "acme-qa", "acme-live", "globex-dev", "globex-qa"]
    assert document["summary"]["unreachable"] == 5
    assert all(r["reachable"] is False and r["release"] is None for r in rows.values())
    live = rows["acme-live"]["backup"]
    assert live["count"] == 2 and [p["bytes"] for p in live["history"]] == [1_000_000, 1_500_000]
    assert 49.9 < live["latest"]["age_hours"] < 50.5
    assert {f["kind"] for f in rows["acme-live"]["flags"] if f["column"] == "backup"} == {"stale"}
    assert rows["globex-qa"]["backup"] == {
        "max_age_hours": None, "count": 0, "latest": None, "history": [], "error": None,
    }  # fmt: skip
    assert rows["acme-live"]["window"]["windows"] == ["* 00:00-24:00 Europe/London"]
    page = (tmp_path / "r" / "estate-report.html").read_text()
    assert page.count("data-site=") == 5 and 'data-flag="stale"' in page
    for secret in (ACME_SECRET, GLOBEX_SECRET, "pruner-secret-canary"):
        assert secret not in out.stdout + out.stderr + page + json.dumps(document)


def test_a_customer_without_a_key_of_its_own_is_not_read_with_anothers(estate, store, tmp_path):
    only_acme = {**store, "principals": {"acme": store["principals"]["acme"]}}
    report(estate, tmp_path / "r", backup_store=only_acme)
    rows = {r["site"]: r for r in json.loads((tmp_path / "r" / "estate-report.json").read_text())["sites"]}
    assert rows["acme-live"]["backup"]["count"] == 2
    assert "no key of its own" in rows["globex-qa"]["backup"]["error"]


def test_one_customer_in_check_mode_and_a_threshold(estate, store, tmp_path):
    report(
        estate,
        tmp_path / "r",
        "--check",
        customer="acme",
        backup_store=store,
        report_backup_max_age_hours={"live": 72},
    )
    document = json.loads((tmp_path / "r" / "estate-report.json").read_text())
    assert document["customer"] == "acme" and [r["site"] for r in document["sites"]] == [
        "acme-dev",
        "acme-qa",
        "acme-live",
    ]
    live = document["sites"][2]
    assert live["backup"]["max_age_hours"] == 72 and not [f for f in live["flags"] if f["column"] == "backup"]

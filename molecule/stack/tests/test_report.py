"""The estate report (playbooks/report.yml, docs/report.md) on the stack scenario's converged hosts:
acme-dev and globex-dev on dev1, acme-qa and globex-qa on qa1, acme-live on live1.

A real backup of acme-live is taken into a prefix of the molecule backup bucket that only this test
uses (backup.yml on live1); the report then finds it fresh. The test then makes it stale the way a
store says so: the manifest is rewritten 50 hours older (id and `created`, sealed again with the
backup code's own `seal`) and the fresh one removed, so that the store's newest backup of acme-live
is two days old; the next report flags it (Live's threshold: 26 h). The JSON must validate against
files/estate-report.schema.json, the table must have one row per site, and the page opened in
headless Chromium must give a screenshot of the window's size that is not one flat colour. A last
run with live1 unreachable (an inventory copy that sends it to a TEST-NET address over ssh) must
still succeed, with acme-live's cells saying "unreachable". The prefix is removed at the end.

Run (containers up, after converge and side_effect):
  .venv/bin/pytest -p no:cacheprovider molecule/stack/tests/test_report.py
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from stack_hosts import (
    INVENTORY,
    REPO,
    S3_ENDPOINT_FILE,
    SITES,
    ansible,
    installed,
    s3_client,
    s3_store,
    vars_file,
)

sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
import headless_browser as browser
from backup import format as backup_format

pytestmark = pytest.mark.skipif(
    not installed(SITES),
    reason="the stack scenario's containers (dev1, qa1, live1 with Moodle installed) are not up",
)

SCHEMA = json.loads((REPO / "files" / "estate-report.schema.json").read_text())
BUCKET = "molecule-backups"  # test_release.py's backup bucket (side_effect.yml creates it)
PREFIX = "lms-report-test"  # this test's own: nothing else reads or writes here
STALE_HOURS = 50


@pytest.fixture(scope="module")
def s3():
    if not S3_ENDPOINT_FILE.is_file():
        pytest.skip(f"no local S3 API ({S3_ENDPOINT_FILE} is missing: the stack scenario starts it)")
    client = s3_client()
    yield client
    # This test's prefix goes, whatever happened.
    listing = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    for page in listing:
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def report(folder: Path, *options: str, inventory=INVENTORY) -> dict:
    """report.yml on the estate; the backups are read on the controller, so it gets the store's
    controller address (report_backup_store). Returns the JSON document, checked against the schema."""
    data = {"report_dir": str(folder), "report_backup_store": s3_store(BUCKET, prefix=PREFIX)}
    extra = vars_file(folder.parent / f"{folder.name}.json", data)
    run = ansible("ansible-playbook", "playbooks/report.yml", "-e", extra, *options, inventory=inventory)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    document = json.loads((folder / "estate-report.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert (folder / "estate-report.html").is_file()
    return document


def rows(document: dict) -> dict[str, dict]:
    return {r["site"]: r for r in document["sites"]}


def backup_flags(row: dict) -> set[str]:
    return {f["kind"] for f in row["flags"] if f["column"] == "backup"}


def live_manifests(s3) -> list[str]:
    prefix = f"{PREFIX}/acme/sites/acme-live/manifests/"
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def make_stale(s3, key: str, hours: int) -> str:
    """The manifest at ``key`` rewritten ``hours`` older under the id of that time, sealed again;
    the original removed. Returns the new id."""
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    created = dt.datetime.fromisoformat(manifest["created"]) - dt.timedelta(hours=hours)
    manifest["created"] = created.isoformat(timespec="seconds")
    manifest["id"] = created.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    body = backup_format.seal({k: v for k, v in manifest.items() if k != "sha256"})
    new_key = key.rsplit("/", 1)[0] + f"/{manifest['id']}.json"
    s3.put_object(Bucket=BUCKET, Key=new_key, Body=body, ContentType="application/json")
    s3.delete_object(Bucket=BUCKET, Key=key)
    return manifest["id"]


def test_the_report_of_the_estate_flags_a_backup_made_stale(s3, tmp_path):
    # A real backup of acme-live into the test's prefix, taken on live1.
    store = s3_store(BUCKET, from_containers=True, prefix=PREFIX)
    store = vars_file(tmp_path / "store.json", {"backup_store": store})
    backup = ansible("ansible-playbook", "playbooks/backup.yml", "-e", "customer=acme", "-e", store)
    assert backup.returncode == 0, backup.stdout[-4000:] + backup.stderr[-2000:]
    [fresh_key] = live_manifests(s3)

    fresh = report(tmp_path / "fresh")
    by_site = rows(fresh)
    assert list(by_site) == ["acme-dev", "acme-qa", "acme-live", "globex-dev", "globex-qa"]
    assert fresh["summary"]["unreachable"] == 0
    for name, row in by_site.items():
        assert row["reachable"] is True and row["host"] == SITES[name], row
        assert row["moodle"] and row["moodle"]["installed"] and row["moodle"]["branch"], row
        assert row["maintenance"] in (True, False) and row["upgrade_pending"] in (True, False), row
        assert row["policy"]["checked"] and row["policy"]["settings"] > 0, row
    live = by_site["acme-live"]
    assert live["backup"]["count"] == 1 and live["backup"]["latest"]["age_hours"] < 1, live["backup"]
    assert live["backup"]["latest"]["bytes"] > 0
    assert backup_flags(live) == set()
    # Dev and QA have no backup duty by default; the other sites have no backups in this prefix.
    assert by_site["acme-qa"]["backup"]["count"] == 0 and backup_flags(by_site["acme-qa"]) == set()

    # The store now says acme-live's newest backup is two days old.
    stale_id = make_stale(s3, fresh_key, STALE_HOURS)
    stale = report(tmp_path / "stale")
    live = rows(stale)["acme-live"]
    assert live["backup"]["latest"]["id"] == stale_id
    assert STALE_HOURS <= live["backup"]["latest"]["age_hours"] < STALE_HOURS + 1
    assert backup_flags(live) == {"stale"}, live["flags"]

    # The page in headless Chromium: one row per site, the stale cell flagged, a real screenshot.
    if not browser.available():
        pytest.skip(browser.SKIP_REASON)
    page = tmp_path / "stale" / "estate-report.html"
    dom = browser.dump_dom(page.as_uri())
    assert dom.count("<tr class=") == 5
    assert 'data-site="acme-live"' in dom and 'data-flag="stale"' in dom
    png = tmp_path / "report.png"
    browser.screenshot(page.as_uri(), png, 1400, 900)
    width, height, pixels = browser.read_png(png)
    assert (width, height) == (1400, 900)
    assert len(browser.colours(pixels, len(pixels[0]) // width)) > 20


def test_the_report_with_a_host_unreachable(s3, tmp_path):
    """live1 behind an address nothing answers (an inventory copy): the job succeeds, its site's
    cells say unreachable, the other hosts' sites are read."""
    folder = tmp_path / "estate"
    shutil.copytree(INVENTORY, folder)
    estate = yaml.safe_load((folder / "estate.yml").read_text())
    estate["hosts"]["live1"] = {
        "ansible_connection": "ssh",
        "ansible_host": "192.0.2.3",
        "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
    }
    (folder / "estate.yml").write_text(yaml.safe_dump(estate))
    document = report(tmp_path / "report", "-e", "customer=acme", inventory=folder)
    by_site = rows(document)
    assert list(by_site) == ["acme-dev", "acme-qa", "acme-live"]
    assert by_site["acme-live"]["reachable"] is False and by_site["acme-live"]["release"] is None
    assert by_site["acme-qa"]["reachable"] is True and by_site["acme-qa"]["moodle"]
    assert document["summary"]["unreachable"] == 1
    page = (tmp_path / "report" / "estate-report.html").read_text()
    assert 'class="col-release unreachable"' in page

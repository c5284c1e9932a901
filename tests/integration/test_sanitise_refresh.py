"""playbooks/refresh_qa.yml end to end on this machine: a real Live site (a copy of the session's
Moodle, seeded with learners) is backed up to the local S3 API with lms_backup, then refreshed into a
real QA site (another copy, served by ``php -S``) through ansible-playbook with a two-host estate
(both hosts local). Afterwards no learner's data is left, the three test accounts log in over HTTP
with their roles, learners cannot, Moodle's schema check passes, QA's deployment record names Live's
release, and maintenance is off. Refusals (customer missing or unknown) change nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import moodle_site as ms
import pytest
import yaml
from ansible_cli import ansible_env, ansible_playbook
from test_qa_accounts import PASSWORDS, accounts
from test_sanitise import (
    LEARNER_PASSWORD,
    STAFF,
    WebServer,
    clone_site,
    other_users,
    remove_clone,
    seed,
    snapshot,
)

REPO = Path(__file__).resolve().parents[2]
RELEASE = "moodle-5.1-r20261126"
LEARNERS = 300


@pytest.fixture(scope="module")
def estate(moodle_site, s3_endpoint, lms):
    """Live and QA sites of customer acme under <tmp>/srv, a bucket with Live's backup, an inventory."""
    name = f"ti-refresh-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"]
    ).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s3_endpoint["region"]})
    store = {key: s3_endpoint[key] for key in ("endpoint_url", "region", "access_key", "secret_key")}
    store["bucket"] = name
    web = WebServer(ms.free_port())
    live = clone_site(moodle_site, "ti_refresh_live")
    qa = clone_site(moodle_site, "ti_refresh_qa", wwwroot=web.url)
    work = ms.private_tmpdir("ti-refresh-")  # the web user must reach srv/<site>/current
    srv = work / "srv"
    try:
        live.other_users = other_users(live)
        seed(live, LEARNERS)
        # Live's own Turnitin Integrity webhook and BigBlueButton on: a QA copy has neither (the
        # restore unsets the webhook; QA's tier policy switches BigBlueButton off, its default).
        live.php_eval(
            "set_config('turnitin_webhook_id', 'live-hook', 'plagiarism_turnitinsim');"
            "set_config('turnitin_webhook_secret', 'live-hook-secret', 'plagiarism_turnitinsim');"
            "core\\plugininfo\\mod::enable_plugin('bigbluebuttonbn', 1);"
        )
        # A file in filedir, as every real site has (lms_restore fails on a backup without any).
        live.php_eval(
            "get_file_storage()->create_file_from_string(['contextid' => context_system::instance()->id,"
            " 'component' => 'local_ti', 'filearea' => 'refresh', 'itemid' => 0, 'filepath' => '/',"
            " 'filename' => 'live.txt'], 'content of Live');"
        )
        for site, code in (("acme-live", live.code), ("acme-qa", qa.code)):
            (srv / site).mkdir(parents=True)
            (srv / site / "current").symlink_to(code)
            record = {"site": site, "release": RELEASE, "verified": True}
            (srv / site / "deployment.json").write_text(json.dumps(record))
        backup = type(lms)(live)(
            "lms_backup",
            path=str(srv / "acme-live" / "current"),
            site="acme-live",
            customer="acme",
            store=store,
        )
        assert backup.get("changed"), backup.get("msg")
        web.start(qa)
        yield {"live": live, "qa": qa, "web": web, "srv": srv, "work": work, "store": store, "backup": backup}
    finally:
        web.stop()
        remove_clone(live)
        remove_clone(qa)
        shutil.rmtree(work, ignore_errors=True)


def site_entry(name: str, tier: str, host: str, srv: Path, **site_vars) -> dict:
    return {
        "name": name,
        "customer": "acme",
        "tier": tier,
        "flavour": "moodle",
        "host_roles": ["web", "db"],
        "web_hosts": [host],
        "db_hosts": [host],
        "site_user": ms.WEB_USER,
        "code_dir": str(srv / name),
        "vars": site_vars,
    }


def refresh(estate, *args: str, **extra_vars) -> subprocess.CompletedProcess:
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
    }
    qa_vars = {
        "qa_accounts_passwords": PASSWORDS,
        "qa_named_staff": [STAFF],
        "qa_mail": {"mode": "divert", "divert_to": "qa-mail@provider.example"},
    }
    inventory = {
        "all": {
            "hosts": {
                "live1": {**host, "estate_sites": [site_entry("acme-live", "live", "live1", estate["srv"])]},
                "qa1": {
                    **host,
                    "estate_sites": [site_entry("acme-qa", "qa", "qa1", estate["srv"], **qa_vars)],
                },
            },
            "children": {"web": {"hosts": {"live1": {}, "qa1": {}}}},
        }
    }
    work = estate["work"]
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    variables = {
        "refresh_qa_php": "php",
        "refresh_qa_store": estate["store"],
        **extra_vars,
    }
    (work / "vars.json").write_text(json.dumps(variables))
    inventory, variables = str(work / "inventory.yml"), f"@{work / 'vars.json'}"
    return ansible_playbook(
        "-i",
        inventory,
        "-e",
        variables,
        *args,
        str(REPO / "playbooks" / "refresh_qa.yml"),
        env=ansible_env(estate["qa"].env()),
        timeout=1800,
    )


def qa_state(estate) -> dict:
    qa = estate["qa"]
    record = estate["srv"] / "acme-qa" / "deployment.json"
    return {
        "users": snapshot(qa)["users"],
        "maintenance": (qa.dataroot / "climaintenance.html").exists(),
        "record": json.loads(record.read_text()),
    }


def test_refusals_change_nothing(estate):
    before = qa_state(estate)
    missing = refresh(estate)
    assert missing.returncode != 0 and "refresh_qa takes -e customer=<name>" in missing.stdout
    unknown = refresh(estate, "-e", "customer=nobody")
    assert unknown.returncode != 0 and "unknown customer nobody: the estate has acme" in unknown.stdout
    nostore = refresh(estate, "-e", "customer=acme", refresh_qa_store={})
    assert nostore.returncode != 0 and "no backup store" in nostore.stdout
    assert qa_state(estate) == before


def test_check_mode_stops_after_checking_the_backup(estate):
    before = qa_state(estate)
    dry = refresh(estate, "-e", "customer=acme", "--check")
    assert dry.returncode == 0, dry.stdout[-4000:]
    assert "Check mode stops here" in dry.stdout
    assert qa_state(estate) == before


def test_refresh_from_live(estate):
    run = refresh(estate, "-e", "customer=acme")
    assert run.returncode == 0, run.stdout[-6000:]
    for password in PASSWORDS.values():
        assert password not in run.stdout + run.stderr
    qa, web = estate["qa"], estate["web"]

    after = snapshot(qa)
    assert after["learners"] == 0 and after["hits"] == {}, after["hits"]  # no learner data left anywhere
    assert {"SAN101", "SAN102", "SAN103"} <= set(after["content"]["courses"])  # Live's courses came over
    assert after["kept"][STAFF]["user"]["email"] == f"{STAFF}@provider.example"  # named staff untouched

    roles = accounts(qa)
    assert roles["tutor"]["roles"] == sorted(["QA-SANDBOX:editingteacher"])
    assert roles["student"]["roles"] == ["QA-SANDBOX:student"]
    assert roles["acme-admin"] is None  # this estate keeps the default names
    browsers = {key: web.login(key, password) for key, password in PASSWORDS.items()}
    assert all(browsers.values()), browsers
    assert web.can_open(browsers["admin"], "/admin/search.php")
    assert not web.can_open(browsers["student"], "/admin/search.php")
    learner = json.loads(
        qa.php_eval(
            "echo json_encode($DB->get_field_sql("
            "\"SELECT MIN(id) FROM {user} WHERE firstname = 'Anonymous'\"));"
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert web.login(f"user{learner}", LEARNER_PASSWORD) is None

    schema = qa.cli("check_database_schema.php", check=False)
    assert schema.returncode == 0, schema.stdout[-2000:]
    # Both sites are copies of one site, and QA now holds Live's database: its identity is its own.
    identity = "echo $CFG->siteidentifier;"
    live_id, qa_id = (s.php_eval(identity).stdout.strip().splitlines()[-1] for s in (estate["live"], qa))
    assert qa_id != live_id and qa_id.endswith("127.0.0.1"), (qa_id, live_id)
    tools = (
        "echo json_encode([get_config('plagiarism_turnitinsim', 'turnitin_webhook_id'),"
        " get_config('plagiarism_turnitinsim', 'turnitin_webhook_secret'),"
        " core_plugin_manager::instance()->get_plugin_info('mod_bigbluebuttonbn')->is_enabled()]);"
    )
    live_tools, qa_tools = (
        json.loads(s.php_eval(tools).stdout.strip().splitlines()[-1]) for s in (estate["live"], qa)
    )
    assert live_tools == ["live-hook", "live-hook-secret", True]
    assert qa_tools == [False, False, False]
    state = qa_state(estate)
    assert state["maintenance"] is False
    record = state["record"]
    assert record["release"] == RELEASE and record["site"] == "acme-qa" and record["verified"] is True
    assert record["refreshed_from"]["site"] == "acme-live"
    assert record["refreshed_from"]["backup_id"] == estate["backup"]["backup_id"]
    assert record["refreshed_from"]["users_anonymised"] == LEARNERS + estate["live"].other_users
    history = (estate["srv"] / "acme-qa" / "deployments.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["refreshed_from"]["backup_id"] == estate["backup"]["backup_id"]


def test_refresh_from_a_fresh_backup(estate):
    """-e fresh_backup=true backs Live up first and restores that backup (not the older one)."""
    run = refresh(estate, "-e", "customer=acme", "-e", "fresh_backup=true")
    assert run.returncode == 0, run.stdout[-6000:]
    record = qa_state(estate)["record"]
    assert record["refreshed_from"]["backup_id"] != estate["backup"]["backup_id"]
    assert record["refreshed_from"]["users_anonymised"] == LEARNERS + estate["live"].other_users
    assert snapshot(estate["qa"])["hits"] == {}
    history = (estate["srv"] / "acme-qa" / "deployments.jsonl").read_text().splitlines()
    assert len(history) == 2

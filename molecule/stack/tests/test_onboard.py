"""onboard.yml on the stack's hosts: a proof-of-concept site becomes the QA site of a new customer,
then its Dev is first-built from that QA (docs/onboarding.md).

The PoC is globex-dev (dev1) as its owner would hand it over: a course of its own (added by the
test, its summary linking to the PoC's address), its database dumped with pg_dump and its dataroot
archived with tar, copied to the controller. The new customer, initech, is a copy of the estate
with initech added (its QA site on qa1, its Dev on dev1); its sites are converged with site.yml
first, as a new customer's would be - narrowed to initech's sites (THREE_INSTANCE_SITES), so the
other sites of dev1 and qa1 are not touched. Then onboard.yml: check mode changes nothing; the
adoption puts the PoC's content on initech-qa under initech-qa's address, with its own identity,
the shared test accounts, the checks passed, the deployment record saying so; again, nothing is
adopted twice. Then QA is backed up and initech-dev, installed and never used, is first-built from
it with restore.yml: the PoC's course, no user but the guest and the administrators. The PoC's
course is removed from globex-dev at the end; initech-qa and initech-dev stay on qa1 and dev1 (the
estate the other tests use does not list them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from stack_hosts import INVENTORY, PHP, REPO, ansible, installed, output_of, run_in, sql

POC, POC_HOST, POC_URL = "globex-dev", "dev1", "http://globex-dev.local"
QA_SITE, QA = "initech-qa", "qa1"
DEV_SITE, DEV = "initech-dev", "dev1"
# Molecule's secrets (the scenario's converge made them; the estate fixture converges initech-qa with them).
_EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
SECRETS = Path(_EPHEMERAL) / "secrets" if _EPHEMERAL else REPO / ".secrets"
pytestmark = pytest.mark.skipif(
    not installed({POC: POC_HOST, "globex-qa": QA}),
    reason="the stack scenario's containers (dev1, qa1 with Moodle installed) are not up",
)


def initech_estate(folder: Path) -> Path:
    """The estate with a new customer, initech: a Dev site on the Dev server, a QA site on the QA
    server, no Live host."""
    estate = yaml.safe_load((INVENTORY / "estate.yml").read_text())
    estate["customers"]["initech"] = {
        "flavour": "moodle",
        "vars": {"lms_fullname": "Initech University"},
        "tiers": {
            "dev": {},
            "qa": {},
            "live": {"hosts": {}, "maintenance_windows": ["sun 02:00-04:00 Europe/London"]},
        },
    }
    (folder / "estate.yml").write_text(yaml.safe_dump(estate))
    (folder / "group_vars").symlink_to(INVENTORY / "group_vars")
    return folder


def lms_course(host: str, site: str, **args) -> None:
    args = {"path": f"/srv/lms/{site}/current", "web_user": site, "php": f"/usr/bin/{PHP}", **args}
    run = ansible("ansible", host, "-b", "-m", "lms_course", "-a", json.dumps(args), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def handed_over(folder: Path) -> Path:
    """The PoC's dump and dataroot archive, made on its host and copied to the controller."""
    work = "/root/poc-handover"
    run_in(POC_HOST, "rm", "-rf", work)
    run_in(POC_HOST, "mkdir", "-p", work)
    run_in(
        POC_HOST,
        "sh",
        "-c",
        f"runuser -u postgres -- pg_dump --format=custom --no-owner --no-acl {POC.replace('-', '_')}"
        f" > {work}/database.pgdump && tar -czf {work}/dataroot.tar.gz -C /var/lib/lms {POC}",
    )
    for name in ("database.pgdump", "dataroot.tar.gz"):
        copy = ansible("ansible", POC_HOST, "-m", "ansible.builtin.fetch",
                       "-a", f"src={work}/{name} dest={folder}/{name} flat=true", timeout=600)  # fmt: skip
        assert copy.returncode == 0, copy.stdout + copy.stderr
    run_in(POC_HOST, "rm", "-rf", work)
    return folder


@pytest.fixture(scope="module")
def poc(tmp_path_factory):
    lms_course(
        POC_HOST,
        POC,
        shortname="POC1",
        fullname="PoC course design",
        summary=f'<a href="{POC_URL}/course/index.php">the first design</a>',
    )
    try:
        yield handed_over(tmp_path_factory.mktemp("poc"))
    finally:
        lms_course(POC_HOST, POC, shortname="POC1", state="absent")


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """initech's Dev and QA sites converged as the scenario's converge does (demo.yml: this
    machine's Moodle source; Molecule's secrets), narrowed to initech's sites: the other sites on
    dev1 and qa1 are not touched (their pg_hba.conf lines stay: roles/database)."""
    folder = initech_estate(tmp_path_factory.mktemp("initech-estate"))
    converge_vars = {
        "lms_source_cache_dir": str(REPO / ".cache" / "releases"),
        "three_instance_secrets_dir": str(SECRETS),
    }
    limit = f"{DEV},{QA},localhost"
    converge = ansible(
        "ansible-playbook", "playbooks/demo.yml", "--limit", limit, "-e", json.dumps(converge_vars),
        inventory=folder, timeout=2400, env={"THREE_INSTANCE_SITES": "initech-*"},
    )  # fmt: skip
    assert converge.returncode == 0, converge.stdout[-6000:] + converge.stderr[-2000:]
    return folder


def onboard(estate: Path, poc: Path, *extra: str):
    return ansible(
        "ansible-playbook",
        "playbooks/onboard.yml",
        "-e",
        # Molecule's secrets, as the converge had them: the test accounts' passwords come from there
        json.dumps(
            {
                "customer": "initech",
                "from": str(poc),
                "from_wwwroot": POC_URL,
                "three_instance_secrets_dir": str(SECRETS),
            }
        ),
        *extra,
        inventory=estate,
    )


def site_state(host: str, site: str) -> dict:
    return {
        "fullname": sql(host, site, "SELECT fullname FROM mdl_course WHERE id = 1"),
        "courses": sql(host, site, "SELECT shortname FROM mdl_course WHERE id <> 1 ORDER BY shortname"),
        "summary": sql(host, site, "SELECT summary FROM mdl_course WHERE shortname = 'POC1'"),
        "users": sql(host, site, "SELECT username FROM mdl_user WHERE deleted = 0 ORDER BY username"),
        "files": sql(host, site, "SELECT count(*) FROM mdl_files WHERE filename <> '.'"),
        "siteidentifier": sql(host, site, "SELECT value FROM mdl_config WHERE name = 'siteidentifier'"),
    }


def test_a_poc_is_adopted_as_the_new_customers_qa(estate, poc):
    before = site_state(QA, QA_SITE)
    assert before["fullname"] == "Initech University" and "POC1" not in before["courses"]
    the_poc = site_state(POC_HOST, POC)

    dry = onboard(estate, poc, "--check")
    assert dry.returncode == 0, dry.stdout[-6000:]
    assert site_state(QA, QA_SITE) == before  # check mode read the PoC in a scratch site only

    run = onboard(estate, poc, "-v")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert f"{QA_SITE} holds the PoC poc-" in run.stdout
    # -v shows every task's result: none of QA's secrets (database, Redis, test accounts, admin) is in it.
    secrets = {p.name: p.read_text().strip() for p in (SECRETS / QA_SITE).glob("*") if p.is_file()}
    assert len(secrets) >= 3, sorted(secrets)  # the database's, the admin's, the test accounts'
    leaked = [name for name, value in secrets.items() if value in run.stdout + run.stderr]
    assert not leaked, f"secrets in onboard.yml -v output: {leaked}"
    after = site_state(QA, QA_SITE)
    # The PoC's content and accounts, under QA's address, with an identity of its own.
    assert after["fullname"] == the_poc["fullname"] and "POC1" in after["courses"].split()
    assert after["summary"] == '<a href="http://initech-qa.local/course/index.php">the first design</a>'
    assert set(the_poc["users"].split()) <= set(after["users"].split())
    assert {"tutor", "student"} <= set(after["users"].split())  # the shared test accounts
    assert after["files"] == the_poc["files"]
    assert after["siteidentifier"] not in (the_poc["siteidentifier"], before["siteidentifier"])
    # Serving: the login page through nginx, out of maintenance.
    page = output_of(QA, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                     "initech-qa.local:80:127.0.0.1", "http://initech-qa.local/login/index.php")  # fmt: skip
    assert page == "200"
    record = json.loads(output_of(QA, "cat", f"/srv/lms/{QA_SITE}/deployment.json"))
    assert record["outcome"] == "adopted" and record["verified"] is True
    assert record["adopted_from"]["wwwroot"] == POC_URL and record["adopted_from"]["poc"].startswith("poc-")
    # The PoC's copies are gone from QA's host; the PoC itself did not change.
    assert run_in(QA, "test", "-e", f"/var/lib/lms-verify/{QA_SITE}.poc", check=False).returncode == 1
    assert site_state(POC_HOST, POC) == the_poc

    again = onboard(estate, poc)
    assert again.returncode == 0, again.stdout[-6000:]
    assert "already: the same PoC was adopted before" in again.stdout
    assert site_state(QA, QA_SITE)["siteidentifier"] == after["siteidentifier"]


def test_dev_is_first_built_from_the_adopted_qa(estate, poc):
    """QA's design (the adopted PoC) taken once and first-built into initech-dev, installed by the
    converge and never used: the PoC's course, no user but the guest and the administrators."""
    endpoint = json.loads((REPO / ".cache" / "s3" / "endpoint.json").read_text())
    store = {"bucket": "molecule-backups", "prefix": "onboard-backups", "region": endpoint["region"],
             "endpoint_url": endpoint["container_endpoint_url"], "access_key": endpoint["access_key"],
             "secret_key": endpoint["secret_key"]}  # fmt: skip
    extra = ("-e", json.dumps({"backup_store": store}))
    assert "POC1" not in site_state(DEV, DEV_SITE)["courses"]
    backup = ansible(
        "ansible-playbook", "playbooks/backup.yml", "-e", f"site={QA_SITE}", *extra, inventory=estate
    )
    assert backup.returncode == 0, backup.stdout[-4000:]

    build = ("playbooks/restore.yml", "-e", f"site={DEV_SITE}", "-e", f"source_site={QA_SITE}",
             "-e", "first_build=true", *extra)  # fmt: skip
    built = ansible("ansible-playbook", *build, inventory=estate)
    assert built.returncode == 0, built.stdout[-6000:]
    assert f"{DEV_SITE}: restored {QA_SITE}/" in built.stdout
    dev = site_state(DEV, DEV_SITE)
    assert "POC1" in dev["courses"].split()
    assert dev["summary"] == '<a href="http://initech-dev.local/course/index.php">the first design</a>'
    assert dev["users"].split() == ["admin", "guest"]
    assert dev["siteidentifier"] != site_state(QA, QA_SITE)["siteidentifier"]
    login = "http://initech-dev.local/login/index.php"
    page = output_of(DEV, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                     "initech-dev.local:80:127.0.0.1", login)  # fmt: skip
    assert page == "200"

    again = ansible("ansible-playbook", *build, inventory=estate)
    assert again.returncode == 0 and re.search(rf"{DEV}\s+: ok=\d+\s+changed=0 ", again.stdout), again.stdout[
        -3000:
    ]

"""Bad input to the operator playbooks, as an operator's mistake or a tenant's attack would give it:
each case is refused on the controller before any host is touched, with a message that names what
is wrong, and without echoing a huge value back whole.

The estate is the local one with every host made unreachable (TEST-NET-1 addresses over ssh): a
play that reached a host would show it as unreachable in the recap, so "only localhost ran, and
changed nothing" proves that no site's `current`, record or data can have changed. Refusals that
need the hosts' own facts (what runs on the tier below, a forged promotion, a source never
deployed) are tested on the containers: molecule/stack/tests/test_release.py (REFUSALS,
RESTORE_REFUSALS, OUTSIDE_THE_WINDOW). The table of these cases is in docs/trust.md, and
test_the_docs_table_lists_every_case keeps the two the same.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml
from ansible_cli import REPO, ansible_playbook

HUGE = "a" * 5000
MONDAY_NOON = "2026-11-23T12:00:00Z"
BAD_STORE = {"bucket": "Bad_Bucket!", "prefix": "lms-backups"}
FORGED_JOB = {"site": {"name": "acme-live", "tier": "live"}, "step": "first"}
POC_FILES = "tests/fixtures/poc-files"
POC_URL = "http://poc.example.invalid"

# case: (playbook, extra vars, what the refusal must say)
CASES = {
    # deploy.yml
    "deploy: no release": ("deploy.yml", {"site": "acme-dev"}, "give the release to deploy"),
    "deploy: release with shell metacharacters": (
        "deploy.yml",
        {"site": "acme-dev", "release": "r1;rm -rf /"},
        "give the release to deploy",
    ),
    "deploy: release with traversal": (
        "deploy.yml",
        {"site": "acme-dev", "release": "../../etc/passwd"},
        "give the release to deploy",
    ),
    "deploy: empty release": (
        "deploy.yml",
        {"site": "acme-dev", "release": ""},
        "give the release to deploy",
    ),
    "deploy: 5,000-character release": (
        "deploy.yml",
        {"site": "acme-dev", "release": HUGE},
        "give the release to deploy",
    ),
    "deploy: unknown site": (
        "deploy.yml",
        {"site": "acme-staging", "release": "r1"},
        "unknown site acme-staging",
    ),
    "deploy: site with traversal": ("deploy.yml", {"site": "../acme-dev", "release": "r1"}, "unknown site"),
    "deploy: site and customer both": (
        "deploy.yml",
        {"site": "acme-dev", "customer": "acme", "release": "r1"},
        "not both",
    ),
    "deploy: 5,000-character site": ("deploy.yml", {"site": HUGE, "release": "r1"}, "unknown site"),
    "deploy: a site with no host here": (
        "deploy.yml",
        {"site": "globex-live", "release": "r1"},
        "the sites with hosts in this inventory are",
    ),
    # promote.yml
    "promote: unknown tier": ("promote.yml", {"customer": "acme", "to": "staging"}, "unknown tier"),
    "promote: to dev": ("promote.yml", {"customer": "acme", "to": "dev"}, "dev is never a promotion target"),
    "promote: unknown customer": (
        "promote.yml",
        {"customer": "initech", "to": "qa"},
        "unknown customer initech",
    ),
    "promote: customer with shell metacharacters": (
        "promote.yml",
        {"customer": "acme$(id)", "to": "qa"},
        "unknown customer",
    ),
    "promote: 5,000-character customer": ("promote.yml", {"customer": HUGE, "to": "qa"}, "unknown customer"),
    "promote: a release named": (
        "promote.yml",
        {"customer": "acme", "to": "qa", "release": "r1"},
        "release/site/tier are not accepted",
    ),
    "promote: skip a tier": (
        "promote.yml",
        {"customer": "acme", "to": "live", "from_tier": "dev"},
        "no tier may be skipped",
    ),
    "promote: no customer": ("promote.yml", {"to": "qa"}, "promote takes -e customer"),
    "promote: a live site with no host here": (
        "promote.yml",
        {"customer": "globex", "to": "live"},
        "has no live site with a host",
    ),
    # rollback.yml
    "rollback: unknown site": ("rollback.yml", {"site": "acme-prod"}, "unknown site acme-prod"),
    "rollback: unknown tier": (
        "rollback.yml",
        {"customer": "acme", "tier": "prod"},
        "unknown site acme-prod",
    ),
    "rollback: live outside its window": (
        "rollback.yml",
        {"site": "acme-live", "release_at": MONDAY_NOON},
        "outside",
    ),
    "rollback: blank override reason": (
        "rollback.yml",
        {"site": "acme-live", "release_at": MONDAY_NOON, "override_window_reason": "   "},
        "outside",
    ),
    # restore.yml
    "restore: a QA backup over Live": (
        "restore.yml",
        {"site": "acme-live", "source_site": "acme-qa"},
        "restored only from its own backups",
    ),
    "restore: a Dev backup over Live": (
        "restore.yml",
        {"customer": "acme", "source_site": "acme-dev"},
        "restored only from its own backups",
    ),
    "restore: a first build of Live from Dev": (
        "restore.yml",
        {"site": "acme-live", "source_site": "acme-dev", "first_build": True},
        "built from its QA with -e first_build=true",
    ),
    "restore: a first build from the site's own backup": (
        "restore.yml",
        {"site": "acme-dev", "first_build": True},
        "from another site's backup",
    ),
    "restore: another customer's backup": (
        "restore.yml",
        {"site": "acme-qa", "source_site": "globex-live"},
        "must be a site of customer acme",
    ),
    "restore: backup id with traversal": (
        "restore.yml",
        {"site": "acme-qa", "source_site": "acme-live", "backup_id": "../x"},
        "backup_id a backup id",
    ),
    "restore: 5,000-character backup id": (
        "restore.yml",
        {"site": "acme-qa", "source_site": "acme-live", "backup_id": HUGE},
        "backup_id a backup id",
    ),
    "restore: source with a command substitution": (
        "restore.yml",
        {"site": "acme-qa", "source_site": "acme-live$(id)"},
        "must be a site of customer acme",
    ),
    "restore: live outside its window": (
        "restore.yml",
        {"customer": "acme", "restore_at": MONDAY_NOON},
        "outside",
    ),
    "restore: site and customer both": ("restore.yml", {"site": "acme-qa", "customer": "acme"}, "not both"),
    "restore: a QA backup over Live named by tier": (
        "restore.yml",
        {"customer": "acme", "tier": "live", "source_site": "acme-qa"},
        "restored only from its own backups",
    ),
    "restore: no backup store": ("restore.yml", {"site": "acme-qa", "backup_store": {}}, "set backup_store"),
    # backup.yml
    "backup: unknown customer": ("backup.yml", {"customer": "nobody"}, "site nobody-live is unknown"),
    "backup: site with a semicolon": ("backup.yml", {"site": "acme-dev;id"}, "give either -e site"),
    "backup: customer in capitals": ("backup.yml", {"customer": "ACME"}, "give either -e site"),
    "backup: 5,000-character site": ("backup.yml", {"site": HUGE}, "give either -e site"),
    "backup: unknown tier": ("backup.yml", {"customer": "acme", "tier": "staging"}, "unknown tier staging"),
    "backup: a site and a tier": ("backup.yml", {"site": "acme-qa", "tier": "live"}, "give either -e site"),
    "backup: a tier with no host here": (
        "backup.yml",
        {"customer": "globex", "tier": "live"},
        "has no web host",
    ),
    # verify_backup.yml
    "verify_backup: backup id with a space": (
        "verify_backup.yml",
        {"customer": "acme", "backup_id": "x y"},
        "is not a backup id",
    ),
    "verify_backup: empty customer": ("verify_backup.yml", {"customer": ""}, "give either -e site"),
    # refresh_qa.yml
    "refresh_qa: no customer": ("refresh_qa.yml", {}, "refresh_qa takes -e customer"),
    "refresh_qa: unknown customer": ("refresh_qa.yml", {"customer": "initech"}, "unknown customer initech"),
    "refresh_qa: a site instead of a customer": (
        "refresh_qa.yml",
        {"customer": "acme", "site": "acme-live"},
        "refresh_qa takes -e customer",
    ),
    "refresh_qa: no backup store": (
        "refresh_qa.yml",
        {"customer": "acme", "refresh_qa_store": {}},
        "no backup store",
    ),
    # promote_courses.yml
    "promote_courses: unknown customer": (
        "promote_courses.yml",
        {"customer": "initech", "courses": ["C101"]},
        "initech",
    ),
    "promote_courses: the same course twice": (
        "promote_courses.yml",
        {"customer": "acme", "courses": ["C101", "C101"]},
        "distinct course short names",
    ),
    "promote_courses: 5,000-character course": (
        "promote_courses.yml",
        {"customer": "acme", "courses": [HUGE]},
        "distinct course short names",
    ),
    "promote_courses: no courses": ("promote_courses.yml", {"customer": "acme", "courses": []}, "courses"),
    # build_release.yml
    "build_release: no manifest": ("build_release.yml", {}, "give the release manifest"),
    # build_courseware.yml
    "build_courseware: no customer": ("build_courseware.yml", {}, "build_courseware takes -e customer"),
    "build_courseware: unknown customer": (
        "build_courseware.yml",
        {"customer": "initech"},
        "unknown customer initech",
    ),
    "build_courseware: customer with shell metacharacters": (
        "build_courseware.yml",
        {"customer": "acme$(id)"},
        "build_courseware takes -e customer",
    ),
    "build_courseware: course with traversal": (
        "build_courseware.yml",
        {"customer": "acme", "course": "../../etc"},
        "is not a course name",
    ),
    "build_courseware: 5,000-character course": (
        "build_courseware.yml",
        {"customer": "acme", "course": HUGE},
        "is not a course name",
    ),
    "build_courseware: unknown course": (
        "build_courseware.yml",
        {"customer": "acme", "course": "nosuch"},
        "unknown course 'nosuch'",
    ),
    # publish_courseware.yml
    "publish_courseware: unknown site": (
        "publish_courseware.yml",
        {"site": "acme-staging"},
        "unknown site acme-staging",
    ),
    "publish_courseware: course with traversal": (
        "publish_courseware.yml",
        {"site": "acme-qa", "course": "../../etc"},
        "publish_courseware takes -e site=",
    ),
    "publish_courseware: a version for Live": (
        "publish_courseware.yml",
        {"site": "acme-live", "course": "safety-basics", "version": "0123456789ab"},
        "Live takes only what QA runs",
    ),
    "publish_courseware: unknown course": (
        "publish_courseware.yml",
        {"site": "acme-qa", "course": "nosuch"},
        "unknown course 'nosuch'",
    ),
    "publish_courseware: forged job data": (
        "publish_courseware.yml",
        {"site": "acme-qa", "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    # patch.yml
    "patch: unknown site": ("patch.yml", {"site": "acme-prod"}, "unknown site acme-prod"),
    "patch: unknown scope": (
        "patch.yml",
        {"site": "acme-dev", "patch_scope": "everything"},
        "patch_scope must be security or all",
    ),
    "patch: reboot neither true nor false": (
        "patch.yml",
        {"site": "acme-dev", "patch_reboot": "sometimes"},
        "patch_reboot true or false",
    ),
    "patch: live outside its window": (
        "patch.yml",
        {"site": "acme-live", "patch_at": MONDAY_NOON},
        "outside",
    ),
    "patch: forged job data": (
        "patch.yml",
        {"site": "acme-qa", "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    # backup_bucket.yml, backup_principals.yml
    "backup_bucket: bad bucket name": ("backup_bucket.yml", {"backup_store": BAD_STORE}, "Bad_Bucket!"),
    "backup_bucket: unknown object lock mode": (
        "backup_bucket.yml",
        {
            "backup_store": {"bucket": "ti-backups"},
            "backup_bucket_object_lock": {"mode": "FOREVER", "days": 1},
        },
        "FOREVER",
    ),
    "backup_principals: no bucket": ("backup_principals.yml", {"backup_store": {}}, "backup_store.bucket"),
    # audit.yml
    "audit: unknown site": ("audit.yml", {"site": "acme-staging"}, "give -e site="),
    "audit: a site with no host here": ("audit.yml", {"site": "globex-live"}, "unknown site globex-live"),
    "audit: unknown customer": ("audit.yml", {"customer": "initech"}, "unknown customer initech"),
    "audit: customer with shell metacharacters": ("audit.yml", {"customer": "acme$(id)"}, "give -e site="),
    "audit: site and customer both": ("audit.yml", {"site": "acme-dev", "customer": "acme"}, "not both"),
    "audit: 5,000-character site": ("audit.yml", {"site": HUGE}, "give -e site="),
    "audit: forged site list": (
        "audit.yml",
        {"site_job": {"step": "first", "sites": [FORGED_JOB["site"]]}},
        "cannot be given with -e",
    ),
    # report.yml
    "report: unknown customer": ("report.yml", {"customer": "initech"}, "unknown customer initech"),
    "report: customer with shell metacharacters": ("report.yml", {"customer": "acme$(id)"}, "report takes"),
    "report: 5,000-character customer": ("report.yml", {"customer": HUGE}, "unknown customer"),
    "report: a stale-backup threshold that is not hours": (
        "report.yml",
        {"report_backup_max_age_hours": {"live": "soon"}},
        "report takes",
    ),
    "report: an unknown tier's threshold": (
        "report.yml",
        {"report_backup_max_age_hours": {"prod": 26}},
        "report takes",
    ),
    "report: forged site list": (
        "report.yml",
        {"site_job": {"step": "first", "sites": [FORGED_JOB["site"]]}},
        "cannot be given with -e",
    ),
    # a job's data forged with -e (extra vars win over the hand-over on every host)
    "deploy: forged job data": (
        "deploy.yml",
        {"site": "acme-dev", "release": "r1", "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    "restore: forged job data": (
        "restore.yml",
        {"site": "acme-live", "backup_store": {"bucket": "ti-backups"}, "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    "refresh_qa: forged job data": (
        "refresh_qa.yml",
        {"customer": "acme", "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    # onboard.yml (tests/fixtures/poc-files: a dump and a dataroot archive in name only)
    "onboard: no PoC folder": ("onboard.yml", {"customer": "acme"}, "onboard.yml takes -e from="),
    "onboard: PoC address not a URL": (
        "onboard.yml",
        {"customer": "acme", "from": POC_FILES, "from_wwwroot": "javascript:alert(1)"},
        "onboard.yml takes -e from=",
    ),
    "onboard: folder without the PoC's files": (
        "onboard.yml",
        {"customer": "acme", "from": "playbooks", "from_wwwroot": POC_URL},
        "must hold one database dump (database.pgdump or database.sql.gz) and dataroot.tar.gz",
    ),
    "onboard: a bucket's name that is not one": (
        "onboard.yml",
        {"customer": "acme", "from": "s3://Bad_Bucket!/initech", "from_wwwroot": POC_URL},
        "is not s3://<bucket>/<prefix>",
    ),
    "onboard: a bucket's prefix with a step up": (
        "onboard.yml",
        {"customer": "acme", "from": "s3://poc-handover/initech/../globex", "from_wwwroot": POC_URL},
        "is not s3://<bucket>/<prefix>",
    ),
    "onboard: a running PoC on a host not in the inventory": (
        "onboard.yml",
        {"customer": "acme", "from": "host://poc.example.invalid/var/www/moodle", "from_wwwroot": POC_URL},
        "is not host://<a host of this inventory>/",
    ),
    "onboard: a running PoC's folder with a step up": (
        "onboard.yml",
        {"customer": "acme", "from": "host://dev1/srv/poc/../lms/globex-dev", "from_wwwroot": POC_URL},
        "is not host://<a host of this inventory>/",
    ),
    "onboard: unknown customer": (
        "onboard.yml",
        {"customer": "initech", "from": POC_FILES, "from_wwwroot": POC_URL},
        "unknown customer initech",
    ),
    "onboard: a site instead of a customer": (
        "onboard.yml",
        {"customer": "acme", "site": "acme-live", "from": POC_FILES, "from_wwwroot": POC_URL},
        "onboard takes -e customer",
    ),
    "onboard: forged job data": (
        "onboard.yml",
        {"customer": "acme", "from": POC_FILES, "from_wwwroot": POC_URL, "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
    # establish.yml
    "establish: no customer": ("establish.yml", {}, "establish takes -e customer"),
    "establish: a site instead of a customer": (
        "establish.yml",
        {"customer": "acme", "site": "acme-live"},
        "establish takes -e customer",
    ),
    "establish: a release named": ("establish.yml", {"customer": "acme", "release": "r1"}, "establish takes"),
    "establish: a backup named": ("establish.yml", {"customer": "acme", "backup_id": "x"}, "establish takes"),
    "establish: a first release that is no release id": (
        "establish.yml",
        {"customer": "acme", "first_release": "../moodle-5.1-r1"},
        "-e first_release=<a release id of the store>",
    ),
    "establish: a PoC without its address": (
        "establish.yml",
        {"customer": "acme", "from": POC_FILES},
        "establish takes",
    ),
    "establish: unknown customer": ("establish.yml", {"customer": "initech"}, "unknown customer initech"),
    "establish: forged job data": (
        "establish.yml",
        {"customer": "acme", "site_job": FORGED_JOB},
        "cannot be given with -e",
    ),
}


@pytest.fixture(scope="module")
def unreachable_estate(tmp_path_factory) -> str:
    """The local estate, its hosts behind addresses nothing answers, acme's Live window closed on
    Monday noon."""
    folder = tmp_path_factory.mktemp("estate")
    shutil.copytree(REPO / "inventories" / "local", folder, dirs_exist_ok=True)
    estate = yaml.safe_load((folder / "estate.yml").read_text())
    for number, host in enumerate(estate["hosts"]):
        estate["hosts"][host] = {
            "ansible_connection": "ssh",
            "ansible_host": f"192.0.2.{number + 1}",
            "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
        }
    estate["customers"]["acme"]["tiers"]["live"]["maintenance_windows"] = ["sun 02:00-04:00 Europe/London"]
    (folder / "estate.yml").write_text(yaml.safe_dump(estate))
    return str(folder)


def recap_rows(out: str) -> dict[str, str]:
    recap = out[out.index("PLAY RECAP") :].split("TASKS RECAP")[0]
    return dict(re.findall(r"^(\S+)\s+: (ok=.*)$", recap, re.M))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_on_the_controller(unreachable_estate, case):
    playbook, extra, message = CASES[case]
    out = ansible_playbook(
        "-i", unreachable_estate, f"playbooks/{playbook}", "-e", json.dumps(extra), timeout=300
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert message in text, text[-3000:]
    rows = recap_rows(out.stdout)
    assert set(rows) == {"localhost"}, rows  # no host was contacted
    assert re.match(r"ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", rows["localhost"]), rows
    assert HUGE[:300] not in text, "a 5,000-character value is echoed back whole"


def test_the_docs_table_lists_every_case():
    docs = (REPO / "docs" / "trust.md").read_text()
    table = docs[docs.index("### Refused on the controller") :]
    listed = re.findall(r"^\| ([^|]+?) \| `", table, re.M)
    assert listed == list(CASES), set(listed) ^ set(CASES)
    assert len(CASES) >= 40

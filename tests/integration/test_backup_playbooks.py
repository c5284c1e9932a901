"""The backup playbooks end to end on this machine: an estate whose acme-live and acme-qa sites are
the real Moodle test sites (localhost, local connection), the moto S3 server as the store.

backup.yml (-e customer) -> restore.yml (Live's backup into QA) -> verify_backup.yml; bad input is
refused by the first play with a message naming it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import moodle_site as ms
import pytest
import yaml
from ansible_cli import ansible_env, ansible_playbook
from test_backup import CUSTOMER, bucket, make_target  # noqa: F401 - bucket is a fixture

REPO = Path(__file__).resolve().parents[2]
TIERS = ("dev", "qa", "live")


@pytest.fixture(scope="module")
def estate(moodle_site, moodle_src, bucket):  # noqa: F811 - the fixture imported above
    """An estate file, the /srv/lms-like code folder (links to the test sites) and the extra vars."""
    base = ms.private_tmpdir("ti-pb-")
    qa = make_target(moodle_site, moodle_src, "qa")
    # A new customer, initech: its QA is acme-qa's site (the same code and database: a site is a
    # path), its Live converged and never installed.
    new_live = make_target(moodle_site, moodle_src, "live")
    code = base / "srv"
    sites = (("acme-live", moodle_site), ("acme-qa", qa), ("initech-qa", qa), ("initech-live", new_live))
    for name, site in sites:
        (code / name).mkdir(parents=True)
        (code / name / "current").symlink_to(site.code)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become_method": "su",
    }
    site_vars = {"site_user": moodle_site.web_user}
    tiers = {
        "dev": {"hosts": {}},
        "qa": {"hosts": {"qa0": ["web", "db"]}, "vars": site_vars},
        "live": {
            "hosts": {"live0": ["web", "db"]},
            "vars": site_vars,
            "maintenance_windows": ["* 00:00-24:00 UTC"],
        },
    }
    new_tiers = dict(tiers, live=dict(tiers["live"], hosts={"live1": ["web", "db"]}))
    (base / "estate.yml").write_text(
        yaml.safe_dump(
            {
                "plugin": "three_instance",
                "name": "backup-test",
                "code_root": str(code),
                # all this machine (a Live host serves one customer's Live only)
                "hosts": {"live0": host, "qa0": host, "live1": host},
                "tiers": {
                    tier: {"wwwroot": f"http://{{customer}}-{tier}.local"} for tier in ("dev", "qa", "live")
                },
                "customers": {
                    CUSTOMER: {"flavour": "moodle", "tiers": tiers},
                    "initech": {"flavour": "moodle", "tiers": new_tiers},
                },
            }
        )
    )
    info = bucket["endpoint"]
    extra = {
        "backup_php": "php",
        "backup_verify_scratch_dir": str(base / "verify"),
        "backup_store": {
            "bucket": bucket["name"],
            "prefix": "pb-backups",
            "endpoint_url": info["endpoint_url"],
            "region": info["region"],
            "access_key": info["access_key"],
            "secret_key": info["secret_key"],
        },
    }
    (base / "extra.json").write_text(json.dumps(extra))
    yield {"base": base, "qa": qa, "new_live": new_live, "live": moodle_site}
    shutil.rmtree(qa.base, ignore_errors=True)
    shutil.rmtree(new_live.base, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def playbook(estate, name: str, *args: str) -> subprocess.CompletedProcess:
    env = ansible_env(
        ANSIBLE_CACHE_PLUGIN="memory",
        ANSIBLE_INVENTORY_CACHE="false",
        PHP_INI_SCAN_DIR=estate["live"].env()["PHP_INI_SCAN_DIR"],
    )
    extra = f"@{estate['base'] / 'extra.json'}"
    return ansible_playbook(
        "-i", str(estate["base"] / "estate.yml"), f"playbooks/{name}", "-e", extra, *args, env=env
    )


def test_backup_restore_verify_playbooks(estate):
    backup = playbook(estate, "backup.yml", "-e", f"customer={CUSTOMER}", "-e", "backup_prune=true")
    assert backup.returncode == 0, backup.tail
    assert "acme-live: backup " in backup.stdout

    restore = playbook(estate, "restore.yml", "-e", "site=acme-qa", "-e", "source_site=acme-live")
    assert restore.returncode == 0, restore.tail
    assert "acme-qa: restored acme-live/" in restore.stdout
    again = playbook(estate, "restore.yml", "-e", "site=acme-qa", "-e", "source_site=acme-live")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.tail

    verify = playbook(estate, "verify_backup.yml", "-e", f"customer={CUSTOMER}")
    assert verify.returncode == 0, verify.tail
    assert "restores (Moodle 20" in verify.stdout


def test_first_build_from_qa(estate):
    """A new customer's Live built from QA's design (docs/onboarding.md; QA holds Live's content,
    restored by the test above): acme's Live, which has served (a learner of its own), is refused
    by the module on its host before anything changes, and serves on; initech's Live, converged and
    never installed, takes its QA's backup inside its window, without its people (no snapshot: its
    database is empty)."""
    live = estate["live"]
    live.php_eval(
        "require_once($CFG->dirroot . '/user/lib.php');"
        "user_create_user(['username' => 'livelearner', 'firstname' => 'L', 'lastname' => 'L',"
        " 'email' => 'l@example.invalid', 'mnethostid' => 1, 'confirmed' => 1], false);"
    )
    users = "echo $DB->count_records('user');"
    try:
        qa_backup = playbook(estate, "backup.yml", "-e", "site=acme-qa")
        assert qa_backup.returncode == 0, qa_backup.tail
        before = live.php_eval(users).stdout.strip()
        args = ("restore.yml", "-e", "site=acme-live", "-e", "source_site=acme-qa", "-e", "first_build=true")
        refused = playbook(estate, *args)
        assert refused.returncode != 0, refused.tail
        assert "first_build refuses acme-live: it has served" in refused.stdout, refused.tail
        assert "livelearner" in refused.stdout
        assert "Dump the database" not in refused.stdout  # refused by the check, before Live's snapshot
        assert live.php_eval(users).stdout.strip() == before
        assert not (live.dataroot / "climaintenance.html").exists()
    finally:
        live.php_eval("delete_user($DB->get_record('user', ['username' => 'livelearner']));")

    new_backup = playbook(estate, "backup.yml", "-e", "site=initech-qa")
    assert new_backup.returncode == 0, new_backup.tail
    args = (
        "restore.yml",
        "-e",
        "site=initech-live",
        "-e",
        "source_site=initech-qa",
        "-e",
        "first_build=true",
    )
    built = playbook(estate, *args)
    assert built.returncode == 0, built.tail
    assert "initech-live: restored initech-qa/" in built.stdout
    assert "snapshotted first" not in built.stdout  # an empty database has nothing to keep
    assert "first built from initech-qa, inside its window" in built.stdout + built.stderr  # the reason
    new_live = estate["new_live"]
    active = new_live.php_eval(
        "echo implode(' ', $DB->get_fieldset_sql("
        "'SELECT username FROM {user} WHERE deleted = 0 ORDER BY username'));"
    )
    assert active.stdout.strip().splitlines()[-1].split() == ["admin", "guest"], active.stdout
    assert not (new_live.dataroot / "climaintenance.html").exists()
    again = playbook(estate, *args)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.tail


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("backup.yml", ["-e", "customer=nobody"], "site nobody-live is unknown or has no web host"),
        ("backup.yml", ["-e", "customer=acme", "-e", "site=acme-qa"], "not both"),
        ("backup.yml", ["-e", "site=acme-dev"], "site acme-dev is unknown or has no web host"),
        (
            "restore.yml",
            ["-e", "site=acme-qa", "-e", "source_site=globex-live"],
            "must be a site of customer acme",
        ),
        ("verify_backup.yml", ["-e", "customer=acme", "-e", "backup_id=../x"], "is not a backup id"),
        ("backup.yml", ["-e", "customer=acme", "-e", '{"backup_store": {}}'], "set backup_store"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(estate, name, args, message):
    result = playbook(estate, name, *args)
    assert result.returncode != 0
    assert message in result.stdout, result.tail
    assert "Back up the database" not in result.stdout and "Restore the backup" not in result.stdout

"""The qa_accounts role against a real Moodle (a copy of the session's site, served by ``php -S``):
the three accounts with their roles, per-customer names, idempotent, passwords never in the output,
logins over HTTP, and the refusals (Live) before anything changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import moodle_site as ms
import pytest
import yaml
from ansible_cli import ansible_env, ansible_playbook
from test_sanitise import WebServer, clone_site, remove_clone

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"admin": "Qa-admin-pass-1!", "tutor": "Qa-tutor-pass-1!", "student": "Qa-student-pass-1!"}
NAMES = {"admin": "acme-admin"}  # a customer that renames one account
EXTRA_COURSE = "QAX101"


@pytest.fixture(scope="module")
def qa_site(moodle_site):
    web = WebServer(ms.free_port())
    clone = clone_site(moodle_site, "ti_qa_accounts", wwwroot=web.url)
    clone.php_eval(
        "require_once($CFG->dirroot . '/course/lib.php');"
        f"create_course((object)['fullname' => 'Extra', 'shortname' => '{EXTRA_COURSE}', 'category' => 1]);"
    )
    # The role finds a site's code at its record's <code_dir>/current.
    (clone.base / "srv" / "acme-qa").mkdir(parents=True)
    (clone.base / "srv" / "acme-qa" / "current").symlink_to(clone.code)
    try:
        web.start(clone)
        yield clone, web
    finally:
        web.stop()
        remove_clone(clone)


def play(site, tmp_path, sites, **extra) -> subprocess.CompletedProcess:
    """Run the role on localhost through ansible-playbook with the given sites."""
    variables = {
        # every site here is the clone, at <base>/srv/acme-qa (the record's code_dir)
        "qa_accounts_sites": [{"code_dir": str(site.base / "srv" / "acme-qa"), **s} for s in sites],
        "qa_accounts_php": site.php,
        "ansible_python_interpreter": sys.executable,
        **extra,
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [{"name": "QA accounts", "hosts": "localhost", "gather_facts": False, "roles": ["qa_accounts"]}]
        )
    )
    env = ansible_env(site.env(), ANSIBLE_ROLES_PATH=str(REPO / "roles"))
    return ansible_playbook(
        "-i", "localhost,", "-c", "local", "-e", f"@{tmp_path / 'vars.json'}", "-v", str(playbook), env=env
    )


def qa(tier="qa", **site_vars) -> dict:
    return {
        "name": "acme-qa",
        "customer": "acme",
        "tier": tier,
        "host_roles": ["web", "db"],
        "site_user": ms.WEB_USER,
        "vars": {
            "qa_accounts_passwords": PASSWORDS,
            "qa_accounts_usernames": NAMES,
            **site_vars,
        },
    }


def recap(proc) -> dict:
    line = next(line for line in proc.stdout.splitlines() if line.startswith("localhost "))
    return {k: int(v) for k, v in (part.split("=") for part in line.split()[2:])}


ROLES_PHP = """
$out = [];
foreach (%s as $username) {
    $u = $DB->get_record('user', ['username' => $username, 'deleted' => 0]);
    if (!$u) { $out[$username] = null; continue; }
    $roles = [];
    foreach ($DB->get_records_sql("SELECT ra.id, r.shortname, c.shortname AS course FROM {role_assignments} ra
            JOIN {role} r ON r.id = ra.roleid JOIN {context} x ON x.id = ra.contextid AND x.contextlevel = 50
            JOIN {course} c ON c.id = x.instanceid WHERE ra.userid = ?", [$u->id]) as $ra) {
        $roles[] = $ra->course . ':' . $ra->shortname;
    }
    sort($roles, SORT_STRING);
    $out[$username] = ['admin' => is_siteadmin($u), 'roles' => $roles, 'email' => $u->email,
                       'suspended' => (int)$u->suspended, 'auth' => $u->auth];
}
echo json_encode($out);
"""


def accounts(site) -> dict:
    usernames = json.dumps(["acme-admin", "tutor", "student"])
    return json.loads(site.php_eval(ROLES_PHP % usernames).stdout.strip().splitlines()[-1])


def test_refuses_live_before_any_change(qa_site, tmp_path):
    site, _ = qa_site
    before = accounts(site)
    live = play(site, tmp_path, [qa(), {**qa("live"), "name": "acme-live"}])
    assert live.returncode != 0
    assert "refusing to create shared test accounts on Live (acme-live)" in live.stdout
    asked = play(site, tmp_path, [qa()], qa_accounts_tiers=["qa", "live"])
    assert asked.returncode != 0 and "qa_accounts_tiers contains live" in asked.stdout
    bad = play(site, tmp_path, [qa(qa_accounts_usernames={"admin": "Acme Admin"})])
    assert bad.returncode != 0 and "lower-case usernames" in bad.stdout
    assert accounts(site) == before


def test_accounts_with_roles_idempotent_and_secret(qa_site, tmp_path):
    site, web = qa_site
    first = play(site, tmp_path, [qa(qa_accounts_courses=[EXTRA_COURSE])])
    assert first.returncode == 0, first.stdout[-3000:]
    assert recap(first)["changed"] >= 2
    for password in PASSWORDS.values():
        assert password not in first.stdout + first.stderr
    got = accounts(site)
    assert got["acme-admin"]["admin"] is True and got["acme-admin"]["roles"] == []
    assert got["tutor"] == {
        "admin": False,
        "roles": sorted([f"{EXTRA_COURSE}:editingteacher", "QA-SANDBOX:editingteacher"]),
        "email": "tutor@example.invalid",
        "suspended": 0,
        "auth": "manual",
    }
    assert got["student"]["roles"] == sorted([f"{EXTRA_COURSE}:student", "QA-SANDBOX:student"])
    assert got["student"]["admin"] is False

    second = play(site, tmp_path, [qa(qa_accounts_courses=[EXTRA_COURSE])])
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout[-3000:]

    # Over HTTP: all three log in; only the admin reaches site administration.
    browsers = {key: web.login(NAMES.get(key, key), password) for key, password in PASSWORDS.items()}
    assert all(browsers.values()), browsers
    assert web.can_open(browsers["admin"], "/admin/search.php")
    assert not web.can_open(browsers["student"], "/admin/search.php")
    assert web.login("student", "wrong-password") is None


def test_dev_only_when_asked_and_all_courses(qa_site, tmp_path):
    site, _ = qa_site
    dev = {**qa("dev", qa_accounts_courses="all"), "name": "acme-qa"}  # the dev tier, same code folder
    skipped = play(site, tmp_path, [dev])
    assert skipped.returncode == 0 and recap(skipped)["changed"] == 0
    assert "not in qa_accounts_tiers" in skipped.stdout
    asked = play(site, tmp_path, [dev], qa_accounts_tiers=["dev", "qa"])
    assert asked.returncode == 0, asked.stdout[-3000:]
    courses = json.loads(
        site.php_eval(
            "echo json_encode(array_values($DB->get_fieldset_select('course', 'shortname', 'id <> 1')));"
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert sorted(accounts(site)["student"]["roles"]) == sorted(f"{course}:student" for course in courses)

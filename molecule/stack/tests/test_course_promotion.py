"""Course promotion QA -> Live (playbooks/promote_courses.yml) on the stack scenario's hosts.

Runs the real playbook (subprocess ansible-playbook on the estate inventory) against the
converged containers qa1 (acme-qa) and live1 (acme-live) with real Moodle on PostgreSQL, and
checks Live's database directly. The test adds its own course (Moodle's test-course generator,
a unique short name) and deletes it from both sites at the end; the append-only promotion record
keeps its lines.

Outside-the-window cases use a copy of the estate whose acme Live window is closed now (a real
window on another weekday), so the guard rail itself is exercised, not a flag.

Run (containers up): .venv/bin/pytest -p no:cacheprovider molecule/stack/tests/test_course_promotion.py
"""

# ruff: noqa: S608 - SQL here is built from the test's own short names, not from user input
# ruff: noqa: S108 - /var/tmp on the hosts is only searched for the playbook's leftovers

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from stack_hosts import INVENTORY, PHP, ansible, closed_window_estate, installed, output_of, sql

QA, LIVE = "qa1", "live1"
QA_SITE, LIVE_SITE = "acme-qa", "acme-live"
RECORD = f"/srv/lms/{LIVE_SITE}/course-promotions.jsonl"
pytestmark = pytest.mark.skipif(
    not installed({QA_SITE: QA, LIVE_SITE: LIVE}),
    reason="the stack scenario's containers (qa1, live1 with Moodle installed) are not up",
)


def promote(*extra: str, inventory: Path = INVENTORY) -> subprocess.CompletedProcess:
    return ansible("ansible-playbook", "playbooks/promote_courses.yml", *extra, inventory=inventory)


def lms_course(host: str, site: str, **args) -> None:
    """One lms_course call on a site (set-up and clean-up of the test's own course)."""
    args = {"path": f"/srv/lms/{site}/current", "web_user": site, "php": f"/usr/bin/{PHP}", **args}
    run = ansible("ansible", host, "-m", "lms_course", "-a", json.dumps(args), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def live_state(shortname: str) -> dict:
    """What the refusals must not change: Live's courses, this course, the promotion record."""
    return {
        "courses": sql(LIVE, LIVE_SITE, "SELECT count(*) FROM mdl_course"),
        "this": sql(LIVE, LIVE_SITE, f"SELECT count(*) FROM mdl_course WHERE shortname = '{shortname}'"),
        "records": output_of(LIVE, "sh", "-c", f"cat {RECORD} 2>/dev/null | wc -l").strip(),
    }


def modules(host: str, site: str, shortname: str) -> int:
    return int(
        sql(
            host,
            site,
            "SELECT count(*) FROM mdl_course_modules cm JOIN mdl_course c ON c.id = cm.course "
            f"WHERE c.shortname = '{shortname}'",
        )
    )


def last_record() -> dict:
    return json.loads(output_of(LIVE, "tail", "-n", "1", RECORD))


def output(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


def make_course(name: str) -> None:
    """A course with content on acme-qa: Moodle's own test-course generator, size XS."""
    output_of(
        QA,
        "runuser",
        "-u",
        QA_SITE,
        "--",
        PHP,
        f"/srv/lms/{QA_SITE}/current/public/admin/tool/generator/cli/maketestcourse.php",
        f"--shortname={name}",
        f"--fullname=Promotion test {name}",
        "--size=XS",
        "--bypasscheck",
        "--quiet",
    )


@pytest.fixture(scope="module")
def shortname():
    """A course with content on acme-qa (Moodle's own generator, size XS), removed at the end."""
    name = f"TIPROMO{int(time.time())}"
    make_course(name)
    assert modules(QA, QA_SITE, name) > 0
    yield name
    try:
        lms_course(LIVE, LIVE_SITE, shortname=name, state="absent")
    finally:
        lms_course(QA, QA_SITE, shortname=name, state="absent")


@pytest.fixture(scope="module")
def closed_window_inventory(tmp_path_factory) -> Path:
    return closed_window_estate(tmp_path_factory.mktemp("closed-window"))


def test_refusals_change_nothing_on_live(shortname, closed_window_inventory):
    before = live_state(shortname)

    run = promote("-e", "customer=nobody", "-e", f"courses={shortname}")
    assert run.returncode != 0 and "customer=nobody: not a customer of this estate" in output(run)

    run = promote("-e", "customer=acme", "-e", f"courses={shortname},NOSUCHCOURSE")
    assert run.returncode != 0
    assert "courses: NOSUCHCOURSE not found on acme-qa" in output(run)

    run = promote("-e", "customer=acme", "-e", f"courses={shortname}", inventory=closed_window_inventory)
    assert run.returncode != 0
    assert "acme-live is outside its maintenance windows" in output(run)
    assert "override_window_reason" in output(run)

    assert live_state(shortname) == before
    assert before["this"] == "0"


def test_promotion_creates_then_replaces_the_course(shortname):
    qa_modules = modules(QA, QA_SITE, shortname)

    run = promote("-e", "customer=acme", "-e", json.dumps({"courses": [shortname]}))
    assert run.returncode == 0, output(run)
    where = f"shortname = '{shortname}'"
    live_id = sql(LIVE, LIVE_SITE, f"SELECT id FROM mdl_course WHERE {where}")
    assert live_id and modules(LIVE, LIVE_SITE, shortname) == qa_modules
    assert (
        sql(LIVE, LIVE_SITE, f"SELECT fullname FROM mdl_course WHERE {where}")
        == f"Promotion test {shortname}"
    )
    record = last_record()
    assert record["courses"][0]["shortname"] == shortname and record["courses"][0]["action"] == "created"
    assert record["from_site"] == QA_SITE and record["to_site"] == LIVE_SITE
    assert record["window_open"] is True and record["override_window_reason"] is None
    assert record["safety_copies"] is None and record["by"]
    # no user data reached Live: nobody is enrolled in the new course
    enrolled = sql(
        LIVE,
        LIVE_SITE,
        "SELECT count(*) FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid "
        f"WHERE e.courseid = {live_id}",
    )
    assert enrolled == "0"

    # change the content on QA: add the course's own content to it once more (twice the modules)
    output_of(QA, "mkdir", "-p", "/root/promotion-test")
    mbz = f"/root/promotion-test/{shortname}.mbz"
    lms_course(QA, QA_SITE, shortname=shortname, state="backup", backup_file=mbz, force=True)
    lms_course(QA, QA_SITE, shortname=shortname, state="restored", backup_file=mbz, restore_mode="add")
    output_of(QA, "rm", "-rf", "/root/promotion-test")
    assert modules(QA, QA_SITE, shortname) == 2 * qa_modules

    run = promote("-e", "customer=acme", "-e", f"courses={shortname}")
    assert run.returncode == 0, output(run)
    # the same Live course, its content replaced (not added to, not a second course)
    assert sql(LIVE, LIVE_SITE, f"SELECT string_agg(id::text, ',') FROM mdl_course WHERE {where}") == live_id
    assert modules(LIVE, LIVE_SITE, shortname) == 2 * qa_modules
    record = last_record()
    assert record["courses"][0]["action"] == "replaced"
    # the safety copy of the replaced course is kept on Live; the temporary files are gone
    safety = output_of(LIVE, "find", record["safety_copies"], "-name", "*.mbz").split()
    assert len(safety) == 1 and safety[0].endswith(f"-{shortname}.mbz")
    for host in (LIVE, QA):
        assert output_of(host, "find", "/var/tmp", "-maxdepth", "1", "-name", "course-promotion-*") == ""

    run = promote("-e", "customer=acme", "-e", f"courses={shortname}", "-e", "course_mode=new")
    assert run.returncode != 0 and "already exist(s) on acme-live" in output(run)


def test_override_outside_the_window_is_recorded(shortname, closed_window_inventory):
    run = promote(
        "-e",
        "customer=acme",
        "-e",
        f"courses={shortname}",
        "-e",
        json.dumps({"override_window_reason": "urgent fix agreed with ACME"}),
        inventory=closed_window_inventory,
    )
    assert run.returncode == 0, output(run)
    record = last_record()
    assert record["window_open"] is False
    assert record["override_window_reason"] == "urgent fix agreed with ACME"
    assert record["courses"][0]["action"] == "replaced"


# A PHP wrapper for fault injection: the second course restore of a run fails (the helper's
# operation is its last argument); everything else runs the real PHP.
FAULTY_PHP = "/usr/local/bin/ti-php-second-restore-fails"
FAULTY_PHP_SCRIPT = f"""#!/bin/sh
for last; do :; done
if [ "$last" = course_restore ] && [ -f /var/tmp/ti-restore-count ]; then
    n=$(($(cat /var/tmp/ti-restore-count) + 1)); echo $n > /var/tmp/ti-restore-count
    [ $n -eq 2 ] && {{ echo "injected failure of restore $n" >&2; exit 1; }}
fi
exec /usr/bin/{PHP} "$@"
"""


@pytest.fixture
def faulty_php():
    for host in (QA, LIVE):
        output_of(
            host,
            "sh",
            "-c",
            f"cat > {FAULTY_PHP} && chmod 0755 {FAULTY_PHP}",
            check=True,
            stdin=FAULTY_PHP_SCRIPT,
        )
    output_of(
        LIVE, "sh", "-c", f"echo 0 > /var/tmp/ti-restore-count && chown {LIVE_SITE} /var/tmp/ti-restore-count"
    )
    yield FAULTY_PHP
    for host in (QA, LIVE):
        output_of(host, "rm", "-f", FAULTY_PHP, "/var/tmp/ti-restore-count")


def test_failed_restore_puts_every_course_back(shortname, faulty_php):
    """Two courses: the first replaces a Live course, the second (new) fails to restore. Both are
    put back: the replaced one from its safety copy, the new one is not left on Live."""
    second = f"{shortname}B"
    make_course(second)
    try:
        where = f"shortname = '{shortname}'"
        live_id = sql(LIVE, LIVE_SITE, f"SELECT id FROM mdl_course WHERE {where}")
        live_modules = modules(LIVE, LIVE_SITE, shortname)
        # make the QA course differ from Live, so that a replaced content would show
        lms_course(QA, QA_SITE, shortname=shortname, state="absent")
        make_course(shortname)
        assert modules(QA, QA_SITE, shortname) != live_modules
        before = live_state(second)

        run = promote(
            "-e", "customer=acme", "-e", f"courses={shortname},{second}", "-e", f"lms_php={faulty_php}"
        )
        assert run.returncode != 0
        assert "injected failure of restore 2" in output(run)
        assert "every course was put back as it was; nothing was recorded" in output(run)

        assert live_state(second) == before  # the new course is not on Live; nothing recorded
        assert sql(LIVE, LIVE_SITE, f"SELECT id FROM mdl_course WHERE {where}") == live_id
        assert modules(LIVE, LIVE_SITE, shortname) == live_modules
    finally:
        lms_course(QA, QA_SITE, shortname=second, state="absent")

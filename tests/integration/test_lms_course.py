"""lms_course against a real Moodle: create (plain and from a template), update, back up,
restore into a new and an existing course (QA -> Live promotion), delete; check mode; errors."""

from __future__ import annotations

import json
import re
import tarfile

import pytest


def course_row(site, shortname):
    proc = site.php_eval(f"echo json_encode($DB->get_record('course', ['shortname' => '{shortname}']));")
    return json.loads(proc.stdout.strip() or "false")


def add_page(site, shortname, name):
    """Some content: a page activity, made with Moodle's data generator."""
    site.php_eval(
        f"""
require_once($CFG->libdir . '/testing/generator/lib.php');
$course = $DB->get_record('course', ['shortname' => '{shortname}'], '*', MUST_EXIST);
\\core\\session\\manager::set_user(get_admin());
(new testing_data_generator())->create_module('page', ['course' => $course->id, 'name' => '{name}']);
"""
    )


def module_names(site, shortname):
    proc = site.php_eval(
        f"$c = $DB->get_record('course', ['shortname' => '{shortname}'], '*', MUST_EXIST);"
        "echo json_encode(array_values($DB->get_fieldset_select('page', 'name', 'course = ?', [$c->id])));"
    )
    return sorted(json.loads(proc.stdout.strip()))


@pytest.fixture(scope="module")
def backups(moodle_site):
    folder = moodle_site.base / "backups"
    folder.mkdir(exist_ok=True)
    return folder


def test_create_update_idempotent(lms, moodle_site):
    lms("lms_course", shortname="TIC101", state="absent")
    args = {"shortname": "TIC101", "fullname": "Course one", "summary": "First", "visible": True}
    dry = lms("lms_course", check=True, **args)
    assert not dry.get("failed"), dry
    assert dry["changed"] is True and dry["changes"] == ["created"]
    assert course_row(moodle_site, "TIC101") is False

    made = lms("lms_course", **args)
    assert made["changed"] is True, made
    assert made["summary"]["courses_created"] == 1 and made["summary"]["courses_errors"] == 0
    assert made["course"]["fullname"] == "Course one"
    assert lms("lms_course", **args)["changed"] is False
    assert lms("lms_course", check=True, **args)["changed"] is False

    renamed = lms("lms_course", **{**args, "fullname": "Course one (v2)", "visible": False})
    assert sorted(renamed["changes"]) == ["fullname updated", "visible updated"], renamed
    assert renamed["course"]["fullname"] == "Course one (v2)" and renamed["course"]["visible"] is False
    assert lms("lms_course", **{**args, "fullname": "Course one (v2)", "visible": False})["changed"] is False


def test_from_template(lms, moodle_site):
    lms("lms_course", shortname="TIC-COPY", state="absent")
    add_page(moodle_site, "TIC101", "Template page")
    made = lms("lms_course", shortname="TIC-COPY", fullname="Copy", template="TIC101")
    assert made["changed"] is True, made
    assert module_names(moodle_site, "TIC-COPY") == ["Template page"]
    assert lms("lms_course", shortname="TIC-COPY", fullname="Copy", template="TIC101")["changed"] is False


def backup_setting(mbz, name: str) -> str:
    """A root setting of a course backup, from its moodle_backup.xml."""
    with tarfile.open(mbz) as tar:
        xml = tar.extractfile("moodle_backup.xml").read().decode()
    match = re.search(
        rf"<setting>\s*<level>root</level>\s*<name>{name}</name>\s*<value>(.*?)</value>", xml, re.DOTALL
    )
    assert match, f"no root setting {name} in {mbz}"
    return match.group(1)


def test_backup_and_restore_promotion(lms, moodle_site, backups):
    dest = backups / "TIC101.mbz"
    if dest.exists():
        dest.unlink()
    dry = lms("lms_course", check=True, shortname="TIC101", state="backup", backup_file=str(dest))
    assert dry["changed"] is True and not dest.exists()
    saved = lms("lms_course", shortname="TIC101", state="backup", backup_file=str(dest))
    assert saved["changed"] is True, saved
    assert dest.stat().st_size > 0 and len(saved["sha256"]) == 64
    kept = lms("lms_course", shortname="TIC101", state="backup", backup_file=str(dest))
    assert kept["changed"] is False and kept["sha256"] == saved["sha256"]
    assert backup_setting(dest, "users") == "0"  # no user data unless asked

    with_users = backups / "TIC101-users.mbz"
    lms("lms_course", shortname="TIC101", state="backup", backup_file=str(with_users), include_users=True)
    assert backup_setting(with_users, "users") == "1"

    # Restore into a new course ("Live" gets the course for the first time).
    lms("lms_course", shortname="TIC-LIVE", state="absent")
    dry = lms(
        "lms_course",
        check=True,
        shortname="TIC-LIVE",
        fullname="Live copy",
        state="restored",
        backup_file=str(dest),
    )
    assert dry["changed"] is True and course_row(moodle_site, "TIC-LIVE") is False
    new = lms(
        "lms_course", shortname="TIC-LIVE", fullname="Live copy", state="restored", backup_file=str(dest)
    )
    assert new["changed"] is True, new
    assert new["course"]["shortname"] == "TIC-LIVE" and new["course"]["fullname"] == "Live copy"
    assert module_names(moodle_site, "TIC-LIVE") == ["Template page"]
    again = lms(
        "lms_course", shortname="TIC-LIVE", fullname="Live copy", state="restored", backup_file=str(dest)
    )
    assert again["changed"] is False  # the same backup is not restored twice

    # QA changes the course; the new backup replaces Live's content.
    add_page(moodle_site, "TIC101", "Second page")
    dest2 = backups / "TIC101-v2.mbz"
    lms("lms_course", shortname="TIC101", state="backup", backup_file=str(dest2), force=True)
    replaced = lms("lms_course", shortname="TIC-LIVE", state="restored", backup_file=str(dest2))
    assert replaced["changed"] is True and replaced["changes"][0].startswith("content replaced"), replaced
    assert module_names(moodle_site, "TIC-LIVE") == ["Second page", "Template page"]
    assert course_row(moodle_site, "TIC-LIVE")["shortname"] == "TIC-LIVE"
    assert (
        lms("lms_course", shortname="TIC-LIVE", state="restored", backup_file=str(dest2))["changed"] is False
    )


def test_delete(lms, moodle_site):
    dry = lms("lms_course", check=True, shortname="TIC-COPY", state="absent")
    assert dry["changed"] is True and course_row(moodle_site, "TIC-COPY")
    gone = lms("lms_course", shortname="TIC-COPY", state="absent")
    assert gone["changed"] is True and course_row(moodle_site, "TIC-COPY") is False
    assert lms("lms_course", shortname="TIC-COPY", state="absent")["changed"] is False


def test_errors_say_what_to_do(lms, backups):
    nofull = lms("lms_course", shortname="TIC-NEW")
    assert nofull["failed"] and "give 'fullname' to create it" in nofull["msg"]
    nocat = lms("lms_course", shortname="TIC-NEW", fullname="x", category="no-such-category")
    assert nocat["failed"] and "category 'no-such-category' does not exist" in nocat["msg"]
    notemplate = lms("lms_course", shortname="TIC-NEW", fullname="x", template="NOPE")
    assert notemplate["failed"] and "template course 'NOPE' does not exist" in notemplate["msg"]
    nofile = lms("lms_course", shortname="TIC101", state="restored", backup_file=str(backups / "none.mbz"))
    assert nofile["failed"] and "does not exist" in nofile["msg"]
    needfile = lms("lms_course", shortname="TIC101", state="backup")
    assert needfile["failed"] and "backup_file" in needfile["msg"]
    nocourse = lms("lms_course", shortname="NOPE", state="backup", backup_file=str(backups / "x.mbz"))
    assert nocourse["failed"] and "nothing to back up" in nocourse["msg"]

"""Unit tests of plugins/module_utils/course.py (lms_course's logic): the dispatch, each state's
decisions in check mode and not, what the upload tool and the PHP helper are asked, and what a
failure leaves in the result (a fake site answers; the real thing is tests/integration/test_lms_course.py)."""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
import tempfile

import course as cs
import pytest
from moodle_cli import CliResult, MoodleError

WEB_USER = pwd.getpwuid(os.getuid()).pw_name
COURSE = {
    "id": 7,
    "shortname": "C1",
    "fullname": "One",
    "idnumber": "",
    "summary": "",
    "visible": True,
    "format": "topics",
    "category_id": 1,
    "category": "Misc",
    "modules": 0,
    "restored_sha256": None,
}
AFTER = {**COURSE, "fullname": "after"}
UPLOADED = "Courses total: 1\nCourses created: 1\nCourses updated: 0\nCourses errors: 0\n"


class FakeSite:
    """Answers course_info (the course, the template, the course after), course_delete/backup/restore
    and uploadcourse.php; records every call (a CSV upload with the file's content at the time)."""

    def __init__(self, course=None, category=True, template=True, upload_out=UPLOADED, backup=b"new"):
        self.course, self.category, self.template = course, category, template
        self.upload_out, self.backup = upload_out, backup
        self.calls = []

    def ops(self):
        """The helper operations and CLI scripts run, in order."""
        return [call[1] for call in self.calls]

    def helper(self, op, params=None):
        self.calls.append(("helper", op, dict(params or {})))
        if op == "course_info":
            if params["shortname"] == "TPL":
                return {"course": {"id": 3} if self.template else None}
            if "category" not in params:  # read again after a change
                return {"course": AFTER}
            category = {"id": 5} if params["category"] and self.category else None
            return {"course": self.course, "category": category, "default_category": 1}
        if op == "course_delete":
            return {"changed": True, "seconds": 1.5}
        if op == "course_backup":
            if self.backup is not None:
                with open(params["file"], "wb") as out:
                    out.write(self.backup)
            return {"changed": True, "_seconds": 2.5}
        if op == "course_restore":
            with open(params["file"], "rb") as handle:  # the copy must be there while Moodle reads it
                self.calls[-1][2]["content"] = handle.read()
            return {"changed": True, "courseid": 8, "seconds": 3.5}
        raise AssertionError(f"unexpected helper op {op}")

    def cli(self, script, *args):
        csv_file = next(arg for arg in args if arg.startswith("--file="))[len("--file=") :]
        with open(csv_file) as handle:
            self.calls.append(("cli", script, args, handle.read()))
        return CliResult(0, self.upload_out, "", 4.5, [script])


def params(**overrides) -> dict:
    base = {
        "path": "/srv/x",
        "web_user": WEB_USER,
        "shortname": "C1",
        "state": "present",
        "category": None,
        "template": None,
        "backup_file": None,
        "restore_mode": "replace",
        "include_users": False,
        "force": False,
        **{key: None for key in cs.UPDATABLE},
    }
    base.update(overrides)
    return base


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """Work folders go to a folder of the test's own; none may be left behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


def mbz(tmp_path, data=b"backup-bytes"):
    path = tmp_path / "c.mbz"
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


# ----- pure helpers -------------------------------------------------------------------------------------


def test_fields_and_differences():
    wanted = cs.wanted_fields(params(fullname="Demo", visible=False))
    assert wanted == {"fullname": "Demo", "visible": "0"}
    course = {"fullname": "Demo", "idnumber": "", "summary": "", "visible": True, "format": "topics"}
    course["category_id"] = 1
    assert cs.differing(course, wanted, None) == {"visible": "0"}
    assert cs.differing(course, wanted, 3) == {"visible": "0", "category": "3"}
    assert cs.differing({**course, "visible": False}, wanted, 1) == {}
    text = cs.csv_text({"shortname": "C,1", "fullname": 'Say "hi"'})
    assert text == 'shortname,fullname\n"C,1","Say ""hi"""\n'


def test_scratch_folder_never_follows_what_the_web_user_wrote(tmp_path):
    """The web user writes only in out/; a link it plants there (to a file only root may read) is
    refused, not copied; the input files are in a folder it cannot write."""
    work = cs.Work(WEB_USER)
    try:
        assert stat.S_IMODE(os.stat(work.path).st_mode) == 0o711 and os.stat(work.out).st_uid == os.getuid()
        secret = tmp_path / "root-only"
        secret.write_text("secret")
        os.symlink(secret, os.path.join(work.out, "course.mbz"))
        with pytest.raises(MoodleError, match=r"course\.mbz"):
            work.copy_out("course.mbz", str(tmp_path / "copy"))
        assert not (tmp_path / "copy").exists()
        os.unlink(os.path.join(work.out, "course.mbz"))
        with open(os.path.join(work.out, "course.mbz"), "wb") as out:
            out.write(b"mbz")
        work.copy_out("course.mbz", str(tmp_path / "copy"))
        assert (tmp_path / "copy").read_bytes() == b"mbz"
        assert stat.S_IMODE(os.stat(work.write("course.csv", "a,b")).st_mode) == 0o644
    finally:
        work.close()
    assert not os.path.exists(work.path)


# ----- the look-up and the dispatch ---------------------------------------------------------------------


@pytest.mark.parametrize("state", list(cs.STATES))
def test_ensure_runs_the_states_function_only(state, monkeypatch):
    seen = []

    def fake(name):
        def run(site, p, check_mode, found, result):
            seen.append((name, check_mode, found))
            result["changes"].append(f"{name} ran")
            return result

        return run

    for name in cs.STATES:
        monkeypatch.setitem(cs.STATES, name, fake(name))
    site = FakeSite(course=COURSE)
    result = cs.ensure(site, params(state=state, category="cat"), True)
    assert seen == [(state, True, cs.Found(COURSE, 5, 1))]
    assert result["changed"] is True and result["changes"] == [f"{state} ran"]
    assert result["diff"] == {"before": f"{COURSE}\n", "after": f"{{'planned changes': ['{state} ran']}}\n"}


def test_a_named_category_that_does_not_exist_fails_with_the_course_in_the_result():
    result = cs.new_result()
    with pytest.raises(MoodleError, match=r"course category 'nope' does not exist \(give its idnumber"):
        cs.ensure(FakeSite(course=COURSE, category=False), params(category="nope"), False, result)
    assert result == {"changes": [], "seconds": 0.0, "course": COURSE}


def test_no_named_category_is_no_category():
    site = FakeSite(course=COURSE, category=False)
    found = cs.look_up(site, params(), cs.new_result())
    assert found == cs.Found(COURSE, None, 1)
    assert site.calls == [("helper", "course_info", {"shortname": "C1", "category": None})]


# ----- absent -------------------------------------------------------------------------------------------


def test_absent_when_missing_is_unchanged():
    site = FakeSite(course=None)
    result = cs.ensure(site, params(state="absent"), False)
    assert result["changed"] is False and result["changes"] == [] and result["course"] is None
    assert site.ops() == ["course_info"]


def test_absent_in_check_mode_deletes_nothing():
    site = FakeSite(course=COURSE)
    result = cs.ensure(site, params(state="absent"), True)
    assert result["changed"] is True and result["changes"] == ["deleted"]
    assert result["course"] == COURSE and site.ops() == ["course_info"]


def test_absent_deletes_by_id():
    site = FakeSite(course=COURSE)
    result = cs.ensure(site, params(state="absent"), False)
    assert site.calls[-1] == ("helper", "course_delete", {"courseid": 7})
    assert result["course"] is None and result["seconds"] == 1.5
    assert result["diff"] == {"before": f"{COURSE}\n", "after": "None\n"}


# ----- present ------------------------------------------------------------------------------------------


def test_present_in_check_mode_plans_the_creation_without_creating():
    site = FakeSite(course=None)
    result = cs.ensure(site, params(fullname="One"), True)
    assert result["changed"] is True and result["changes"] == ["created"]
    assert site.ops() == ["course_info"] and result["course"] is None
    assert result["diff"]["after"] == "{'planned changes': ['created']}\n"


def test_present_needs_a_fullname_to_create():
    result = cs.new_result()
    with pytest.raises(MoodleError, match="course C1 does not exist: give 'fullname' to create it"):
        cs.ensure(FakeSite(course=None), params(), False, result)
    assert result["changes"] == []


def test_present_creates_with_uploadcourse_and_reads_the_course_again():
    site = FakeSite(course=None)
    result = cs.ensure(site, params(fullname="One", visible=False, category="cat"), False)
    kind, script, args, row = site.calls[1]
    assert (kind, script) == ("cli", "admin/tool/uploadcourse/cli/uploadcourse.php")
    assert args[0] == "--mode=createnew" and args[2:] == ("--delimiter=comma",)
    assert row == "shortname,fullname,visible,category\nC1,One,0,5\n"
    assert site.calls[2] == ("helper", "course_info", {"shortname": "C1"})
    assert result["summary"]["courses_created"] == 1 and result["seconds"] == 4.5
    assert result["course"] == AFTER and result["changes"] == ["created"]


def test_present_creates_in_the_default_category_from_a_template():
    site = FakeSite(course=None)
    result = cs.ensure(site, params(fullname="One", template="TPL"), False)
    assert site.calls[1] == ("helper", "course_info", {"shortname": "TPL"})
    args, row = site.calls[2][2], site.calls[2][3]
    assert "--templatecourse=TPL" in args and row.endswith("C1,One,1\n")
    assert result["changes"] == ["created from template TPL"]


def test_present_refuses_a_missing_template_even_in_check_mode():
    site = FakeSite(course=None, template=False)
    with pytest.raises(MoodleError, match="template course 'TPL' does not exist on this site"):
        cs.ensure(site, params(fullname="One", template="TPL"), True)
    assert "cli" not in [call[0] for call in site.calls]


def test_present_from_a_backup_file_hands_over_a_copy(tmp_path):
    src, _ = mbz(tmp_path)
    site = FakeSite(course=None)
    assert cs.ensure(site, params(fullname="One", backup_file=src), True)["changes"] == [
        f"created from {src}"
    ]
    result = cs.ensure(site, params(fullname="One", backup_file=src), False)
    restore = next(arg for arg in site.calls[-2][2] if arg.startswith("--restorefile="))
    assert restore != f"--restorefile={src}" and restore.endswith("/restore.mbz")
    assert result["changes"] == [f"created from {src}"]
    with pytest.raises(MoodleError, match=r"backup file /nowhere/c\.mbz does not exist"):
        cs.ensure(site, params(fullname="One", backup_file="/nowhere/c.mbz"), False)


def test_present_unchanged_course_runs_nothing():
    site = FakeSite(course=COURSE)
    result = cs.ensure(site, params(fullname="One", visible=True, format="topics"), False)
    assert result["changed"] is False and site.ops() == ["course_info"] and "summary" not in result


def test_present_updates_only_what_differs():
    site = FakeSite(course=COURSE)
    p = params(fullname="Two", visible=True, category="cat")
    planned = cs.ensure(site, p, True)
    assert planned["changes"] == ["fullname updated", "category updated"] and site.ops() == ["course_info"]
    result = cs.ensure(site, p, False)
    args, row = site.calls[2][2], site.calls[2][3]
    assert args[0] == "--mode=update" and args[-1] == "--updatemode=dataonly"
    assert row == "shortname,fullname,category\nC1,Two,5\n"
    assert result["course"] == AFTER


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "line 2: shortname taken\nCourses total: 1\nCourses errors: 1\n",
            "could not update course C1: line 2",
        ),
        ("Usage: uploadcourse.php ...\n", "printed no summary"),
    ],
)
def test_present_reads_the_upload_summary_not_the_exit_code(output, message):
    site = FakeSite(course=COURSE, upload_out=output)
    result = cs.new_result()
    with pytest.raises(MoodleError, match=message):
        cs.ensure(site, params(fullname="Two"), False, result)
    assert result["changes"] == ["fullname updated"] and "summary" not in result
    assert site.ops() == ["course_info", "admin/tool/uploadcourse/cli/uploadcourse.php"]  # not read again


# ----- backup -------------------------------------------------------------------------------------------


def test_backup_of_a_missing_course_fails():
    with pytest.raises(MoodleError, match="course C1 does not exist: nothing to back up"):
        cs.ensure(FakeSite(course=None), params(state="backup", backup_file="/tmp/x.mbz"), True)


def test_backup_needs_its_folder():
    result = cs.new_result()
    with pytest.raises(MoodleError, match=r"the folder of /nowhere/x\.mbz does not exist; create it first"):
        cs.ensure(
            FakeSite(course=COURSE), params(state="backup", backup_file="/nowhere/x.mbz"), False, result
        )
    assert result["backup_file"] == "/nowhere/x.mbz"


def test_backup_keeps_an_existing_file_unless_forced(tmp_path):
    dest, digest = mbz(tmp_path, b"old")
    site = FakeSite(course=COURSE)
    kept = cs.ensure(site, params(state="backup", backup_file=dest), False)
    assert kept["changed"] is False and kept["sha256"] == digest and site.ops() == ["course_info"]
    planned = cs.ensure(site, params(state="backup", backup_file=dest, force=True), True)
    assert planned["changes"] == [f"backed up to {dest}"] and "course_backup" not in site.ops()
    assert "sha256" not in planned and (tmp_path / "c.mbz").read_bytes() == b"old"


def test_backup_writes_the_file_the_web_user_wrote(tmp_path):
    dest = str(tmp_path / "new.mbz")
    site = FakeSite(course=COURSE, backup=b"fresh")
    result = cs.ensure(site, params(state="backup", backup_file=dest, include_users=True), False)
    request = site.calls[-1][2]
    assert (
        request["courseid"] == 7 and request["users"] is True and request["file"].endswith("/out/course.mbz")
    )
    assert (tmp_path / "new.mbz").read_bytes() == b"fresh"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640 and not os.path.exists(dest + ".partial")
    assert result["sha256"] == hashlib.sha256(b"fresh").hexdigest() and result["seconds"] == 2.5


def test_backup_that_wrote_nothing_fails_and_leaves_the_old_file(tmp_path):
    dest, _ = mbz(tmp_path, b"old")
    with pytest.raises(MoodleError, match=r"the backup did not write course\.mbz"):
        cs.ensure(
            FakeSite(course=COURSE, backup=None), params(state="backup", backup_file=dest, force=True), False
        )
    assert (tmp_path / "c.mbz").read_bytes() == b"old"


# ----- restored -----------------------------------------------------------------------------------------


def test_restored_needs_the_file():
    result = cs.new_result()
    with pytest.raises(MoodleError, match=r"backup file /nowhere/c\.mbz does not exist"):
        cs.ensure(
            FakeSite(course=COURSE), params(state="restored", backup_file="/nowhere/c.mbz"), False, result
        )
    assert result["backup_file"] == "/nowhere/c.mbz" and "sha256" not in result


def test_restored_skips_a_backup_restored_already_unless_forced(tmp_path):
    src, digest = mbz(tmp_path)
    site = FakeSite(course={**COURSE, "restored_sha256": digest})
    same = cs.ensure(site, params(state="restored", backup_file=src), False)
    assert same["changed"] is False and same["sha256"] == digest and site.ops() == ["course_info"]
    again = cs.ensure(site, params(state="restored", backup_file=src, force=True), True)
    assert again["changes"] == [f"content replaced from {src}"] and "course_restore" not in site.ops()


@pytest.mark.parametrize(("mode", "verb"), [("replace", "content replaced"), ("add", "content added")])
def test_restored_into_an_existing_course(tmp_path, mode, verb):
    src, digest = mbz(tmp_path)
    site = FakeSite(course=COURSE)
    result = cs.ensure(site, params(state="restored", backup_file=src, restore_mode=mode), False)
    request = site.calls[1][2]
    assert request.pop("file") != src and request.pop("content") == b"backup-bytes"
    assert request == {
        "sha256": digest,
        "include_users": False,
        "courseid": 7,
        "mode": mode,
        "fullname": None,
    }
    assert result["changes"] == [f"{verb} from {src}"] and result["seconds"] == 3.5
    assert result["course"] == AFTER


def test_restored_creates_a_missing_course(tmp_path):
    src, digest = mbz(tmp_path)
    site = FakeSite(course=None)
    planned = cs.ensure(site, params(state="restored", backup_file=src), True)
    assert planned["changes"] == [f"created from {src}"] and site.ops() == ["course_info"]
    cs.ensure(site, params(state="restored", backup_file=src, include_users=True), False)
    request = site.calls[-2][2]
    assert {
        key: request[key] for key in ("shortname", "fullname", "categoryid", "include_users", "sha256")
    } == {
        "sha256": digest,
        "shortname": "C1",
        "fullname": "C1",
        "categoryid": 1,
        "include_users": True,
    }
    assert "courseid" not in request and "mode" not in request

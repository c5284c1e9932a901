# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lms_course's logic: one function per state, and :func:`ensure`, which looks the course up and
dispatches to the state's function.

A state function takes the site, the module's params, check mode, what :func:`look_up` found and
the task's result so far; it adds to that result and returns it, or raises :class:`MoodleError`
(the module's ``fail_json``, which reports the result so far with the message). Its changes are
``result["changes"]``; ``changed`` and the diff are :func:`ensure`'s.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shutil
import stat
import tempfile
from typing import NamedTuple

from ansible.module_utils.digest import sha256_file
from ansible.module_utils.moodle_cli import MoodleError, MoodleSite, parse_upload_summary, upload_errors

#: The fields of a course that state=present sets (and compares).
UPDATABLE = ("fullname", "idnumber", "summary", "visible", "format")


def csv_text(row: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return out.getvalue()


def wanted_fields(params: dict) -> dict:
    out = {}
    for key in UPDATABLE:
        if params[key] is not None:
            out[key] = ("1" if params[key] else "0") if key == "visible" else str(params[key])
    return out


def differing(course: dict, wanted: dict, category_id: int | None) -> dict:
    have = {
        "fullname": course["fullname"],
        "idnumber": course["idnumber"],
        "summary": course["summary"],
        "visible": "1" if course["visible"] else "0",
        "format": course["format"],
    }
    diff = {key: value for key, value in wanted.items() if have[key] != value}
    if category_id is not None and category_id != course["category_id"]:
        diff["category"] = str(category_id)
    return diff


class Work:
    """A scratch folder for the web user's CSV input and backup output. The module (root) owns it
    and writes the input (0644, for the web user to read); the web user writes only in ``out/``,
    and what it writes there is read without following links (it could plant one to a file only
    root may read)."""

    def __init__(self, web_user: str):
        self.path = tempfile.mkdtemp(prefix="lms-course-")
        os.chmod(self.path, 0o711)  # noqa: S103 - the web user reaches its files, lists nothing
        self.out = os.path.join(self.path, "out")
        os.mkdir(self.out, 0o700)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(web_user)
            os.chown(self.out, entry.pw_uid, entry.pw_gid)

    def write(self, name: str, data) -> str:
        """File ``name`` in the folder only root writes (text or bytes), readable by the web user."""
        path = os.path.join(self.path, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(path, 0o644)
        return path

    def copy_in(self, src: str, name: str) -> str:
        """A copy of ``src`` (a root-owned place) as ``name``, readable by the web user."""
        path = self.write(name, b"")
        shutil.copyfile(src, path)
        return path

    def copy_out(self, name: str, dest: str) -> None:
        """Copy the web user's output ``out/<name>`` to ``dest``: a regular file, never a link."""
        try:
            fd = os.open(os.path.join(self.out, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise MoodleError(f"the backup did not write {name} ({exc.strerror})") from exc
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise MoodleError(f"{name} written by the backup is not a regular file; refusing it")
            with open(dest, "wb") as target:
                shutil.copyfileobj(source, target)

    def close(self):
        shutil.rmtree(self.path, ignore_errors=True)


def upload(site: MoodleSite, work: Work, mode: str, row: dict, extra: list[str]) -> dict:
    """Run uploadcourse.php on one CSV row; its exit code says nothing, so read its summary."""
    path = work.write("course.csv", csv_text(row))
    args = [f"--mode={mode}", f"--file={path}", "--delimiter=comma", *extra]
    if mode in ("update", "createorupdate"):
        args.append("--updatemode=dataonly")
    run = site.cli("admin/tool/uploadcourse/cli/uploadcourse.php", *args)
    summary = parse_upload_summary(run.stdout)
    if not summary:
        raise MoodleError(
            "uploadcourse.php printed no summary (bad options or a different site language?)",
            stdout=run.stdout,
            stderr=run.stderr,
        )
    if upload_errors(summary):
        lines = [line for line in run.stdout.splitlines() if line.strip()][-12:]
        raise MoodleError(
            f"uploadcourse.php could not {mode} course {row['shortname']}: " + " | ".join(lines),
            stdout=run.stdout,
        )
    summary["seconds"] = run.seconds
    return summary


# --------------------------------------------------------------------------------------------------------
# The course as it is, and one function per state.


class Found(NamedTuple):
    """What :func:`look_up` found: the course (None when missing), the id of the category the task
    names (None when it names none) and the site's default category for new courses."""

    course: dict | None
    category_id: int | None
    default_category: int


def new_result() -> dict:
    """The result of a task that has done nothing yet."""
    return {"changes": [], "seconds": 0.0}


def look_up(site: MoodleSite, params: dict, result: dict) -> Found:
    """The course and the category the task names; ``result["course"]`` is the course as it is.
    A category that was named and does not exist is an error."""
    info = site.helper("course_info", {"shortname": params["shortname"], "category": params["category"]})
    result["course"] = info["course"]
    if params["category"] and info["category"] is None:
        raise MoodleError(
            f"course category '{params['category']}' does not exist (give its idnumber, id or name)"
        )
    category_id = info["category"]["id"] if info["category"] else None
    return Found(info["course"], category_id, info["default_category"])


def reread(site: MoodleSite, shortname: str) -> dict | None:
    """The course as Moodle has it now."""
    return site.helper("course_info", {"shortname": shortname})["course"]


def course_absent(site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict) -> dict:
    """Delete the course when it exists."""
    if found.course:
        result["changes"].append("deleted")
        if not check_mode:
            answer = site.helper("course_delete", {"courseid": found.course["id"]})
            result["seconds"] = answer["seconds"]
            result["course"] = None
    return result


def _create(
    site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict, work: Work | None
) -> None:
    """state=present of a missing course: create it (from a template course or a backup file)."""
    if not params["fullname"]:
        raise MoodleError(f"course {params['shortname']} does not exist: give 'fullname' to create it")
    template = params["template"]
    result["changes"].append("created" + (f" from template {template}" if template else ""))
    if params["backup_file"]:
        if not os.path.isfile(params["backup_file"]):
            raise MoodleError(f"backup file {params['backup_file']} does not exist")
        result["changes"][-1] = f"created from {params['backup_file']}"
    if template and site.helper("course_info", {"shortname": template})["course"] is None:
        raise MoodleError(f"template course '{template}' does not exist on this site")
    if check_mode:
        return
    row = {
        "shortname": params["shortname"],
        **wanted_fields(params),
        "category": str(found.category_id or found.default_category),
    }
    extra = []
    if template:
        extra.append(f"--templatecourse={template}")
    if params["backup_file"]:
        readable = work.copy_in(params["backup_file"], "restore.mbz")
        extra.append(f"--restorefile={readable}")
    result["summary"] = upload(site, work, "createnew", row, extra)
    result["seconds"] = result["summary"]["seconds"]


def _update(
    site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict, work: Work | None
) -> None:
    """state=present of an existing course: set the given fields that differ."""
    diff = differing(found.course, wanted_fields(params), found.category_id)
    result["changes"] += [f"{key} updated" for key in diff]
    if diff and not check_mode:
        result["summary"] = upload(site, work, "update", {"shortname": params["shortname"], **diff}, [])
        result["seconds"] = result["summary"]["seconds"]


def course_present(site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict) -> dict:
    """Create the course when it is missing, else update the given fields that differ."""
    work = Work(params["web_user"]) if not check_mode else None
    try:
        if found.course is None:
            _create(site, params, check_mode, found, result, work)
        else:
            _update(site, params, check_mode, found, result, work)
        if result["changes"] and not check_mode:
            result["course"] = reread(site, params["shortname"])
    finally:
        if work is not None:
            work.close()
    return result


def course_backup(site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict) -> dict:
    """Write a backup of the course to ``backup_file``, unless that file exists (and not ``force``)."""
    if found.course is None:
        raise MoodleError(f"course {params['shortname']} does not exist: nothing to back up")
    dest = params["backup_file"]
    result["backup_file"] = dest
    if not os.path.isdir(os.path.dirname(dest) or "."):
        raise MoodleError(f"the folder of {dest} does not exist; create it first")
    if os.path.exists(dest) and not params["force"]:
        result["sha256"] = sha256_file(dest)
        return result
    result["changes"].append(f"backed up to {dest}")
    if check_mode:
        return result
    work = Work(params["web_user"])
    try:
        written = os.path.join(work.out, "course.mbz")
        run = site.helper(
            "course_backup",
            {"courseid": found.course["id"], "file": written, "users": params["include_users"]},
        )
        tmp = dest + ".partial"
        work.copy_out("course.mbz", tmp)
        os.chmod(tmp, 0o640)
        os.replace(tmp, dest)
        result["sha256"] = sha256_file(dest)
        result["seconds"] = run["_seconds"]
    finally:
        work.close()
    return result


def course_restored(site: MoodleSite, params: dict, check_mode: bool, found: Found, result: dict) -> dict:
    """Restore ``backup_file`` into the course (a new one when missing), unless this very backup
    was restored into it already (and not ``force``)."""
    course = found.course
    src = params["backup_file"]
    result["backup_file"] = src
    if not os.path.isfile(src):
        raise MoodleError(f"backup file {src} does not exist")
    digest = sha256_file(src)
    result["sha256"] = digest
    if course is not None and course.get("restored_sha256") == digest and not params["force"]:
        return result  # this backup is in this course already
    if course is None:
        result["changes"].append(f"created from {src}")
    else:
        verb = "content replaced" if params["restore_mode"] == "replace" else "content added"
        result["changes"].append(f"{verb} from {src}")
    if check_mode:
        return result
    work = Work(params["web_user"])
    try:
        readable = work.copy_in(src, "restore.mbz")
        request = {"file": readable, "sha256": digest, "include_users": params["include_users"]}
        if course is None:
            request.update(
                shortname=params["shortname"],
                fullname=params["fullname"] or params["shortname"],
                categoryid=found.category_id or found.default_category,
            )
        else:
            request.update(courseid=course["id"], mode=params["restore_mode"], fullname=params["fullname"])
        answer = site.helper("course_restore", request)
        result["seconds"] = answer["seconds"]
        result["course"] = reread(site, params["shortname"])
    finally:
        work.close()
    return result


#: state -> its function (the module's choices of ``state``, in this order).
STATES = {
    "present": course_present,
    "absent": course_absent,
    "backup": course_backup,
    "restored": course_restored,
}


def ensure(site: MoodleSite, params: dict, check_mode: bool, result: dict | None = None) -> dict:
    """Look the course up and run the state's function; returns the task's result with ``changed``
    and the diff. ``result`` (from :func:`new_result`) is filled as the task goes, so that when a
    :class:`MoodleError` is raised it holds what was found and done before."""
    result = new_result() if result is None else result
    found = look_up(site, params, result)
    STATES[params["state"]](site, params, check_mode, found, result)
    after = result["course"] if not check_mode else {"planned changes": result["changes"]}
    result["diff"] = {"before": f"{found.course}\n", "after": f"{after}\n"}
    result["changed"] = bool(result["changes"])
    return result

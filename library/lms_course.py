#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_course
short_description: Create, update, delete, back up and restore Moodle/Totara courses
description:
  - C(present) creates the course when it is missing (with C(uploadcourse.php), optionally from a
    I(template) course or a I(backup_file)) and updates the given fields when they differ. The
    upload tool exits 0 even when a line fails, so its summary (C(Courses errors)) is read.
  - C(absent) deletes the course with Moodle's C(delete_course()), without the recycle bin (what
    C(delete_course.php --disablerecyclebin) does; that CLI fails half-way in Moodle 5.1).
  - C(backup) writes a course backup (Moodle's backup controller, as C(backup.php) runs it) to
    I(backup_file), without user data unless I(include_users=true); an existing file is kept
    unless I(force=true).
  - C(restored) restores I(backup_file) into the course I(shortname). A missing course is created
    in I(category); an existing one has its content replaced (I(restore_mode=replace), the default,
    keeping enrolments and groups) or added to (C(add)). User data in the backup is not restored
    unless I(include_users=true). The backup's sha256 is remembered per course, so the same
    backup is not restored twice (I(force=true) restores again). This is how a course is promoted
    from QA to Live.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  timeout:
    description:
      - Seconds after which a Moodle CLI call is stopped and the task fails (course backups and
        restores take a while).
    type: int
    default: 1800
  shortname:
    description: The course's short name (its key).
    type: str
    required: true
  state:
    description: What to ensure (see the description).
    type: str
    choices: [present, absent, backup, restored]
    default: present
  fullname:
    description:
      - Full name. Needed to create a course; defaults to I(shortname) for a restore into a new course.
    type: str
  category:
    description:
      - Course category, by idnumber, id or (unique) name.
      - New courses default to the site's first top-level category.
    type: str
  idnumber:
    description: The course's ID number.
    type: str
  summary:
    description: The course summary (HTML).
    type: str
  visible:
    description: Whether students can see the course.
    type: bool
  format:
    description: Course format, for example C(topics), C(weeks), C(singleactivity).
    type: str
  template:
    description: With I(state=present), the short name of a course whose content a new course gets.
    type: str
  backup_file:
    description:
      - With I(state=present), a C(.mbz) whose content a new course gets.
      - With I(state=backup), where to write the backup.
      - With I(state=restored), the backup to restore. It must be readable by I(web_user).
    type: path
  restore_mode:
    description: With I(state=restored) into an existing course, replace its content or add to it.
    type: str
    choices: [replace, add]
    default: replace
  include_users:
    description:
      - With I(state=backup), include user data (enrolments, user content, logs) in the backup.
      - With I(state=restored), also restore user data that the backup holds.
    type: bool
    default: false
  force:
    description: Overwrite an existing backup file; restore a backup that was restored already.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
seealso:
  - module: lms_user
"""

EXAMPLES = r"""
- name: A demo course from a template course
  lms_course:
    path: /srv/acme-qa/current
    shortname: DEMO101
    fullname: Demo course
    category: demo
    template: TEMPLATE-TOPICS

- name: Back up the approved course on QA
  lms_course:
    path: /srv/acme-qa/current
    shortname: DEMO101
    state: backup
    backup_file: /var/backups/lms/acme/DEMO101-r42.mbz
    force: true

- name: Promote it to Live (replaces the content, keeps enrolments)
  lms_course:
    path: /srv/acme-live/current
    shortname: DEMO101
    fullname: Demo course
    category: demo
    state: restored
    backup_file: /var/backups/lms/acme/DEMO101-r42.mbz
"""

RETURN = r"""
course:
  description: The course after the task (null when absent; in check mode the course before).
  returned: always
  type: dict
  sample: {"id": 2, "shortname": "DEMO101", "fullname": "Demo course", "category": "Demo", "visible": true,
           "format": "topics", "modules": 3, "restored_sha256": null}
changes:
  description: What changed (or would change in check mode).
  returned: always
  type: list
  elements: str
backup_file:
  description: The backup file written or restored.
  returned: when I(state) is C(backup) or C(restored)
  type: str
sha256:
  description: The backup file's sha256.
  returned: when I(state) is C(backup) or C(restored) and the file exists
  type: str
seconds:
  description: How long the Moodle operation ran.
  returned: always
  type: float
summary:
  description: The upload tool's summary when it ran (C(courses_created), C(courses_errors), ...).
  returned: when C(uploadcourse.php) ran
  type: dict
"""

import csv
import hashlib
import io
import os
import pwd
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import (
    COMMON_ARGS,
    MoodleError,
    MoodleSite,
    fail_module,
    parse_upload_summary,
    upload_errors,
)

UPDATABLE = ("fullname", "idnumber", "summary", "visible", "format")


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            timeout={"type": "int", "default": 1800},
            shortname={"type": "str", "required": True},
            state={
                "type": "str",
                "choices": ["present", "absent", "backup", "restored"],
                "default": "present",
            },
            fullname={"type": "str"},
            category={"type": "str"},
            idnumber={"type": "str"},
            summary={"type": "str"},
            visible={"type": "bool"},
            format={"type": "str"},
            template={"type": "str"},
            backup_file={"type": "path"},
            restore_mode={"type": "str", "choices": ["replace", "add"], "default": "replace"},
            include_users={"type": "bool", "default": False},
            force={"type": "bool", "default": False},
        ),
        mutually_exclusive=[("template", "backup_file")],
        required_if=[("state", "backup", ["backup_file"]), ("state", "restored", ["backup_file"])],
        supports_check_mode=True,
    )
    p = module.params
    result = {"changes": [], "seconds": 0.0}
    work = None
    try:
        site = MoodleSite.from_params(p)
        info = site.helper("course_info", {"shortname": p["shortname"], "category": p["category"]})
        course = info["course"]
        result["course"] = course
        if p["category"] and info["category"] is None:
            raise MoodleError(
                f"course category '{p['category']}' does not exist (give its idnumber, id or name)"
            )
        category_id = info["category"]["id"] if info["category"] else None
        before = course
        state = p["state"]

        if state == "absent":
            if course:
                result["changes"].append("deleted")
                if not module.check_mode:
                    answer = site.helper("course_delete", {"courseid": course["id"]})
                    result["seconds"] = answer["seconds"]
                    result["course"] = None

        elif state == "present":
            work = Work(p["web_user"]) if not module.check_mode else None
            wanted = wanted_fields(p)
            if course is None:
                if not p["fullname"]:
                    raise MoodleError(f"course {p['shortname']} does not exist: give 'fullname' to create it")
                result["changes"].append(
                    "created" + (f" from template {p['template']}" if p["template"] else "")
                )
                if p["backup_file"]:
                    if not os.path.isfile(p["backup_file"]):
                        raise MoodleError(f"backup file {p['backup_file']} does not exist")
                    result["changes"][-1] = f"created from {p['backup_file']}"
                if p["template"]:
                    tinfo = site.helper("course_info", {"shortname": p["template"]})
                    if tinfo["course"] is None:
                        raise MoodleError(f"template course '{p['template']}' does not exist on this site")
                if not module.check_mode:
                    row = {
                        "shortname": p["shortname"],
                        **wanted,
                        "category": str(category_id or info["default_category"]),
                    }
                    extra = []
                    if p["template"]:
                        extra.append(f"--templatecourse={p['template']}")
                    if p["backup_file"]:
                        readable = work.copy_in(p["backup_file"], "restore.mbz")
                        extra.append(f"--restorefile={readable}")
                    result["summary"] = upload(site, work, "createnew", row, extra)
                    result["seconds"] = result["summary"]["seconds"]
            else:
                diff = differing(course, wanted, category_id)
                result["changes"] += [f"{key} updated" for key in diff]
                if diff and not module.check_mode:
                    result["summary"] = upload(
                        site, work, "update", {"shortname": p["shortname"], **diff}, []
                    )
                    result["seconds"] = result["summary"]["seconds"]
            if result["changes"] and not module.check_mode:
                result["course"] = site.helper("course_info", {"shortname": p["shortname"]})["course"]

        elif state == "backup":
            if course is None:
                raise MoodleError(f"course {p['shortname']} does not exist: nothing to back up")
            dest = p["backup_file"]
            result["backup_file"] = dest
            if not os.path.isdir(os.path.dirname(dest) or "."):
                raise MoodleError(f"the folder of {dest} does not exist; create it first")
            if os.path.exists(dest) and not p["force"]:
                result["sha256"] = sha256(dest)
            else:
                result["changes"].append(f"backed up to {dest}")
                if not module.check_mode:
                    work = Work(p["web_user"])
                    written = os.path.join(work.out, "course.mbz")
                    run = site.helper(
                        "course_backup",
                        {"courseid": course["id"], "file": written, "users": p["include_users"]},
                    )
                    tmp = dest + ".partial"
                    work.copy_out("course.mbz", tmp)
                    os.chmod(tmp, 0o640)
                    os.replace(tmp, dest)
                    result["sha256"] = sha256(dest)
                    result["seconds"] = run["_seconds"]

        elif state == "restored":
            src = p["backup_file"]
            result["backup_file"] = src
            if not os.path.isfile(src):
                raise MoodleError(f"backup file {src} does not exist")
            digest = sha256(src)
            result["sha256"] = digest
            if course is not None and course.get("restored_sha256") == digest and not p["force"]:
                pass  # this backup is in this course already
            else:
                if course is None:
                    result["changes"].append(f"created from {src}")
                else:
                    verb = "content replaced" if p["restore_mode"] == "replace" else "content added"
                    result["changes"].append(f"{verb} from {src}")
                if not module.check_mode:
                    work = Work(p["web_user"])
                    readable = work.copy_in(src, "restore.mbz")
                    request = {"file": readable, "sha256": digest, "include_users": p["include_users"]}
                    if course is None:
                        request.update(
                            shortname=p["shortname"],
                            fullname=p["fullname"] or p["shortname"],
                            categoryid=category_id or info["default_category"],
                        )
                    else:
                        request.update(courseid=course["id"], mode=p["restore_mode"], fullname=p["fullname"])
                    answer = site.helper("course_restore", request)
                    result["seconds"] = answer["seconds"]
                    result["course"] = site.helper("course_info", {"shortname": p["shortname"]})["course"]
    except MoodleError as exc:
        fail_module(module, exc, **result)
    finally:
        if work is not None:
            work.close()

    changed = bool(result["changes"])
    after = result["course"] if not module.check_mode else {"planned changes": result["changes"]}
    result["diff"] = {"before": f"{before}\n", "after": f"{after}\n"}
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()

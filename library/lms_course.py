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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.course import STATES, ensure, new_result
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            timeout={"type": "int", "default": 1800},
            shortname={"type": "str", "required": True},
            state={"type": "str", "choices": list(STATES), "default": "present"},
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
    result = new_result()
    try:
        ensure(MoodleSite.from_params(module.params), module.params, module.check_mode, result)
    except MoodleError as exc:
        fail_module(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

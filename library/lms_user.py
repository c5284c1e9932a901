#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_user
short_description: Ensure a Moodle/Totara user is present, absent or suspended, with enrolments
description:
  - Works through Moodle's own APIs (C(user_create_user), C(user_update_user), C(delete_user),
    manual enrolment), run as the web user; parameters travel to PHP on stdin, never on the
    command line.
  - Only what differs is changed. The password is checked against the stored hash with Moodle's
    own C(validate_internal_user_password) (peppers included), so it is set only when it differs,
    never on every run.
  - I(site_admin) adds the user to or removes it from C($CFG->siteadmins); the last site
    administrator is never removed, suspended or deleted.
  - I(enrolments) ensures manual enrolments with a role in courses given by short name.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  username:
    description: The user's login name (Moodle usernames are lower case).
    type: str
    required: true
  state:
    description:
      - C(present) creates or updates the user (and unsuspends it); C(suspended) does the same and
        suspends it (its sessions are ended); C(absent) deletes it (Moodle's delete keeps the record,
        anonymised and marked deleted).
    type: str
    choices: [present, absent, suspended]
    default: present
  auth:
    description:
      - Authentication plugin, for example C(manual), C(nologin), C(oauth2).
      - New users default to C(manual).
    type: str
  firstname:
    description: First name (needed to create the user).
    type: str
  lastname:
    description: Last name (needed to create the user).
    type: str
  email:
    description: Email address (needed to create the user).
    type: str
  idnumber:
    description: ID number (for example the key of an external system).
    type: str
  password:
    description:
      - The password. Never logged. Set when the user is created and, with I(update_password=always),
        whenever it does not match the stored one.
    type: str
  update_password:
    description: C(always) keeps the password equal to I(password); C(on_create) sets it only for a new user.
    type: str
    choices: [always, on_create]
    default: always
  enforce_password_policy:
    description: Refuse a password that does not meet the site's password policy.
    type: bool
    default: false
  site_admin:
    description: Whether the user is a site administrator. Omit to leave it as it is.
    type: bool
  enrolments:
    description:
      - Manual enrolments to ensure. Enrolments not listed, and other roles the user has in a listed
        course, are left alone.
    type: list
    elements: dict
    default: []
    suboptions:
      course:
        description: The course's short name.
        type: str
        required: true
      role:
        description: The role's short name (C(student), C(editingteacher), C(teacher), C(manager), ...).
        type: str
        default: student
      state:
        description: C(present) enrols (and assigns the role); C(absent) unenrols from the manual enrolment.
        type: str
        choices: [present, absent]
        default: present
notes:
  - Supports check mode and diff mode (the password is never shown; a change of it is reported
    as C(password)).
seealso:
  - module: lms_course
"""

EXAMPLES = r"""
- name: The shared QA test accounts
  lms_user:
    path: /srv/acme-qa/current
    username: "{{ item.username }}"
    firstname: "{{ item.firstname }}"
    lastname: Test
    email: "{{ item.username }}@example.invalid"
    password: "{{ item.password }}"
    site_admin: "{{ item.username == 'admin' }}"
    enrolments: "{{ item.enrolments }}"
  loop:
    - {username: tutor, firstname: Tutor, password: "{{ vault_tutor_password }}",
       enrolments: [{course: DEMO101, role: editingteacher}]}
    - {username: student, firstname: Student, password: "{{ vault_student_password }}",
       enrolments: [{course: DEMO101, role: student}]}
  loop_control:
    label: "{{ item.username }}"

- name: A leaver keeps the account but cannot log in
  lms_user:
    path: /srv/acme-live/current
    username: jdoe
    state: suspended
"""

RETURN = r"""
user:
  description: The user after the task (null when absent; in check mode the user before).
  returned: always
  type: dict
  sample: {"id": 3, "username": "tutor", "auth": "manual", "firstname": "Tutor", "lastname": "Test",
           "email": "tutor@example.invalid", "idnumber": "", "suspended": false, "site_admin": false}
changes:
  description: What changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: ["created", "enrolled in DEMO101 as editingteacher"]
enrolments:
  description: The user's enrolments after the task (course, method, active, roles).
  returned: always
  type: list
  elements: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module

FIELDS = ("auth", "firstname", "lastname", "email", "idnumber")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            username={"type": "str", "required": True},
            state={"type": "str", "choices": ["present", "absent", "suspended"], "default": "present"},
            auth={"type": "str"},
            firstname={"type": "str"},
            lastname={"type": "str"},
            email={"type": "str"},
            idnumber={"type": "str"},
            password={"type": "str", "no_log": True},
            update_password={"type": "str", "choices": ["always", "on_create"], "default": "always"},
            enforce_password_policy={"type": "bool", "default": False},
            site_admin={"type": "bool"},
            enrolments={
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "course": {"type": "str", "required": True},
                    "role": {"type": "str", "default": "student"},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                },
            },
        ),
        supports_check_mode=True,
    )
    p = module.params
    request = {
        key: p[key]
        for key in ("username", "state", "update_password", "enforce_password_policy", "site_admin")
    }
    request.update({key: p[key] for key in FIELDS if p[key] is not None})
    if p["password"] is not None:
        request["password"] = p["password"]
    request["enrolments"] = p["enrolments"]
    request["check_mode"] = module.check_mode
    try:
        site = MoodleSite.from_params(p)
        answer = site.helper("user", request)
    except MoodleError as exc:
        fail_module(module, exc)
    for warning in answer.get("warnings") or []:
        module.warn(warning)
    user = answer["after"] if not module.check_mode else answer["before"]
    enrolments = (
        answer["enrolments_after"]
        if answer.get("enrolments_after") is not None
        else answer.get("enrolments_before", [])
    )
    before = {"user": answer["before"], "enrolments": answer.get("enrolments_before") or []}
    after = {"user": answer["after"], "enrolments": answer.get("enrolments_after") or []}
    if module.check_mode:
        after = {"planned changes": answer["changes"]}
    diff = {
        "before": json.dumps(before, indent=2, sort_keys=True) + "\n",
        "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
    }
    module.exit_json(
        changed=answer["changed"],
        user=user,
        changes=answer["changes"],
        enrolments=enrolments or [],
        diff=diff,
    )


if __name__ == "__main__":
    main()

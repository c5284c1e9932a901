#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_courseware_info
short_description: What a Moodle site has of a course's courseware
description:
  - Reads, as the web user, the Book activity C(courseware-<course>) and the File resource
    C(courseware-<course>-pdf) of the course I(shortname), the version the site records for them
    (M(lms_courseware) writes it) and the current values of I(settings).
  - The courseware promotion to Live reads QA's version with it; it changes nothing.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  course:
    description: The courseware course's name (its C(courseware/<course>/) folder).
    type: str
    required: true
  shortname:
    description: The Moodle course's short name.
    type: str
    required: true
  settings:
    description: Theme settings (C(theme_<name>/<setting>)) whose current values to return.
    type: dict
    default: {}
seealso:
  - module: lms_courseware
"""

EXAMPLES = r"""
- name: What acme's QA runs of the safety course
  lms_courseware_info:
    path: /srv/acme-qa/current
    web_user: acme-qa
    course: safety-basics
    shortname: SAFE101
  register: qa_courseware
"""

RETURN = r"""
course:
  description: The Moodle course (C(id), C(shortname), C(fullname)), or null when it does not exist.
  returned: always
  type: dict
book:
  description: >-
    The Book activity (C(cmid), C(name), C(revision), C(chapters) with C(id), C(pagenum), C(title),
    C(subchapter), C(text), C(files)), or null.
  returned: always
  type: dict
pdf:
  description: The File resource (C(cmid), C(filename), C(sha1)), or null.
  returned: always
  type: dict
published:
  description: >-
    The version the site records (C(version), C(sha256), C(published_at), C(by)), or null when
    none was published.
  returned: always
  type: dict
settings:
  description: The current value of each of I(settings) (null when unset).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.courseware_site import VIEW, info
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            course={"type": "str", "required": True},
            shortname={"type": "str", "required": True},
            settings={"type": "dict", "default": {}},
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        answer = info(
            MoodleSite.from_params(params), params["course"], params["shortname"], params["settings"]
        )
    except MoodleError as exc:
        fail_module(module, exc)
    module.exit_json(changed=False, **{key: answer[key] for key in VIEW})


if __name__ == "__main__":
    main()

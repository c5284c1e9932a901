#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_courseware_fetch
short_description: Fetch a customer's courseware bundles from the release store and verify them
description:
  - For each course (I(courses), or every course of I(courseware_dir) whose C(course.yml) names
    I(customer)), takes the version of I(versions) - what the tier below runs, which is all Live
    takes; a course the tier below does not run is refused - or else the version the course's last
    build made (the store's C(latest)), downloads its bundle into I(dest) unless there already,
    and checks it against the store's C(.sha256) and, with I(versions), the sha256 the tier below
    runs.
  - With I(resolve_only), only names the courses and their Moodle short names (to read the tier
    below), downloading nothing.
  - Runs on the controller (C(playbooks/publish_courseware.yml)); the playbook then copies the bundles
    to the site's host for M(lms_courseware).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_store
options:
  customer:
    description: The customer.
    type: str
    required: true
  courses:
    description: Course names (C(courseware/<course>/) folders); default every course of the customer.
    type: list
    elements: str
  courseware_dir:
    description: The courseware folder (the courses' C(course.yml) give their Moodle short names).
    type: path
    required: true
  versions:
    description:
      - The versions to take (what the tier below runs), by course name, each a dict with C(version)
        and C(sha256).
      - Without it each course's last build.
    type: dict
  dest:
    description: Controller folder that keeps fetched bundles.
    type: path
    required: true
  resolve_only:
    description: Only name the courses and their short names.
    type: bool
    default: false
notes:
  - Check mode also downloads and verifies (into I(dest) on the controller); it changes no host.
"""

EXAMPLES = r"""
- name: The last build of every acme course
  lms_courseware_fetch:
    customer: acme
    courseware_dir: "{{ playbook_dir }}/../courseware"
    store: {type: dir, path: /srv/release-store}
    dest: .cache/courseware
  register: fetched
"""

RETURN = r"""
courses:
  description: >-
    One entry per course - C(course), C(shortname), C(title) and, unless I(resolve_only), C(version),
    C(sha256), C(bundle) (on the controller) and C(downloaded).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.courseware import CoursewareError, fetch_bundles
from ansible.module_utils.release import STORE_ARG, ReleaseError


def main():
    module = AnsibleModule(
        argument_spec={
            "customer": {"type": "str", "required": True},
            "courses": {"type": "list", "elements": "str"},
            "courseware_dir": {"type": "path", "required": True},
            "versions": {"type": "dict"},
            "store": STORE_ARG,
            "dest": {"type": "path", "required": True},
            "resolve_only": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        courses = fetch_bundles(
            params["store"],
            params["customer"],
            params["courseware_dir"],
            params["courses"],
            params["versions"],
            params["dest"],
            resolve_only=params["resolve_only"],
        )
    except (CoursewareError, ReleaseError) as exc:
        module.fail_json(msg=str(exc))
    # Downloading to the controller's cache changes no managed host.
    module.exit_json(changed=False, courses=courses)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_courseware
short_description: Load a courseware bundle into a Moodle course - its book, its PDF and its theme colours
description:
  - Takes a bundle built by M(lms_courseware_build) (C(playbooks/build_courseware.yml)) and copied to
    the host, checks every member against the sha256 its manifest lists and that it is courseware of
    I(customer), then, as the web user, through Moodle's own APIs and in one database transaction
    (nothing is half-applied).
  - The Moodle book goes into the Book activity whose course module ID number is C(courseware-<course>)
    in the course of the manifest's short name; the activity is created in the course's first
    section when missing. Moodle's HTML import (C(booktool_importhtml)) appends chapters on every
    import, so the package is imported with Moodle's own import code and each imported chapter then
    moves into the chapter at its place - title, content, images - keeping that chapter's id (links to
    it, its read log), the activity's id and its completion; chapters beyond the new count are deleted.
  - The PDF becomes (or replaces the file of) the File resource C(courseware-<course>-pdf).
  - The style's theme settings (C(theme_<name>/<setting>) only) are set and the theme caches purged.
  - What a site has is remembered in C(config_plugins) (C(three_instance), C(courseware_<idnumber>));
    the same bundle again changes nothing, unless the book's chapter titles were changed by hand or
    I(force=true).
  - The course must exist (M(lms_course) creates it).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  bundle:
    description: The bundle (C(<course>-<version>.tar.gz)) on the host; root may own it.
    type: path
    required: true
  customer:
    description: The site's customer; a bundle built for another customer is refused.
    type: str
    required: true
  sha256:
    description: The sha256 the bundle must have (the store's); refused otherwise.
    type: str
  force:
    description: Replace the chapters even when the site has this bundle already.
    type: bool
    default: false
  by:
    description: Who publishes, recorded with the version.
    type: str
    default: ""
  tmp_dir:
    description: Where the bundle is unpacked for the load (removed after).
    type: path
    default: /var/tmp
notes:
  - Supports check mode - the bundle is unpacked and checked, the site only read.
seealso:
  - module: lms_courseware_info
  - module: lms_courseware_build
"""

EXAMPLES = r"""
- name: Publish the safety course to acme's QA site
  lms_courseware:
    path: /srv/acme-qa/current
    web_user: acme-qa
    bundle: /var/lib/three-instance/courseware/safety-basics-1c0e2f4a5b6c.tar.gz
    sha256: "{{ fetched.sha256 }}"
    customer: acme
    by: jdoe
"""

RETURN = r"""
changes:
  description: What changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: ["chapters replaced in place (4 -> 4) from version 1c0e2f4a5b6c"]
version:
  description: The bundle's version.
  returned: always
  type: str
sha256:
  description: The bundle's sha256.
  returned: always
  type: str
course:
  description: The courseware course's name.
  returned: always
  type: str
book:
  description: >-
    The Book activity after the task (in check mode before): C(cmid), C(name), C(revision) and its
    C(chapters) (C(id), C(pagenum), C(title), C(subchapter), C(text), C(files)).
  returned: always
  type: dict
pdf:
  description: The File resource (C(cmid), C(filename), C(sha1)), or null.
  returned: always
  type: dict
published:
  description: What the site has by its own record (C(version), C(sha256), C(published_at), C(by)).
  returned: always
  type: dict
settings:
  description: The style's theme settings and their values on the site after the task (in check mode before).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.courseware_site import VIEW, publish
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            bundle={"type": "path", "required": True},
            customer={"type": "str", "required": True},
            sha256={"type": "str"},
            force={"type": "bool", "default": False},
            by={"type": "str", "default": ""},
            tmp_dir={"type": "path", "default": "/var/tmp"},  # noqa: S108 - root-only folder made by mkdtemp
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        answer = publish(
            MoodleSite.from_params(params),
            params["bundle"],
            params["customer"],
            params["sha256"],
            module.check_mode,
            force=params["force"],
            by=params["by"],
            tmp_dir=params["tmp_dir"],
        )
    except MoodleError as exc:
        fail_module(module, exc)
    keys = ("changed", "changes", "version", "sha256", *VIEW)
    module.exit_json(**{key: answer[key] for key in keys})


if __name__ == "__main__":
    main()

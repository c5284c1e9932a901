#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_courseware_build
short_description: Build a customer's courseware (DocBook 5 books) into bundles in the release store
description:
  - Checks the customer's style (C(courseware/styles/<customer>/) - C(style.yml), C(fop.xconf)
    declaring every font family of the style, the logo) and refuses before anything is built.
  - For each course (every course whose C(course.yml) names the customer, or those given), reads
    the DocBook 5 book with its XIncludes (files of the course folder only), validates it against
    the DocBook 5 RELAX NG schema - each error names the source file and line - and builds the
    formats of its C(course.yml) - a PDF (docbook-xsl-ns FO and Apache FOP, the style's fonts
    checked embedded), a Moodle Book import package (one C(.html) per chapter in name order, the
    customer's CSS, the images), a web page.
  - Writes a deterministic tar.gz per course - its C(courseware.json) manifest holds the source and style
    hashes, the tool versions, the chapters - named by the hash of its inputs (the version), and
    publishes it to C(courseware/<customer>/<course>/<version>.tar.gz) (with C(.json), and last
    C(.sha256)) in the release store. The same inputs give the same version and the same bytes;
    already there is no change; other bytes under a version are refused.
  - Courses build side by side; a course that fails is reported with its reason and the others
    still build. The module fails when any course failed, returning every course's result.
  - Runs on the controller (C(delegate_to) C(localhost)).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_store
options:
  customer:
    description: The customer whose style applies and whose courses are built.
    type: str
    required: true
  courses:
    description: Course folder names to build; all of the customer's when unset.
    type: list
    elements: str
  courseware_dir:
    description: The courseware folder (C(<course>/) folders, C(styles/), C(xsl/)).
    type: path
    required: true
  build_dir:
    description: Controller folder the bundles are written to before they are published.
    type: path
    required: true
  docbook_xsl:
    description: Debian's docbook-xsl-ns stylesheets.
    type: path
    default: /usr/share/xml/docbook/stylesheet/docbook-xsl-ns
  schema:
    description: The DocBook 5 RELAX NG schema (Debian docbook5-xml).
    type: path
    default: /usr/share/xml/docbook/schema/rng/5.0/docbook.rng
  fop:
    description: The Apache FOP command.
    type: str
    default: fop
  jobs:
    description: Courses built at once; V(0) is one per CPU.
    type: int
    default: 0
notes:
  - Check mode validates the style and every course's book (schema, XIncludes, images); it builds nothing.
requirements:
  - lxml
  - Apache FOP, docbook-xsl-ns, docbook5-xml (Debian packages)
  - boto3 and botocore for C(store.type=s3)
"""

EXAMPLES = r"""
- name: Build and publish acme's courseware
  lms_courseware_build:
    customer: acme
    courseware_dir: courseware
    build_dir: .cache/release-build/courseware
    store: {type: dir, path: .cache/release-store}
  delegate_to: localhost
"""

RETURN = r"""
courses:
  description: One entry per course, in order.
  returned: always
  type: list
  elements: dict
  contains:
    course:
      description: The course folder's name.
      type: str
    failed:
      description: Whether this course failed (its C(msg) says why, naming file and line).
      type: bool
    msg:
      description: Why the course failed.
      type: str
    version:
      description: The bundle's version (the hash of its inputs).
      type: str
    sha256:
      description: The bundle's sha256.
      type: str
    bundle:
      description: The bundle on the controller.
      type: str
    published:
      description: Whether it was uploaded now (false when the store already had these bytes).
      type: bool
    store:
      description: Where the course's bundles are kept.
      type: str
    seconds:
      description: How long the course took to build.
      type: float
    manifest:
      description: The bundle's manifest (chapters, hashes, tool versions, embedded fonts).
      type: dict
built:
  description: The courses that built.
  returned: always
  type: list
  elements: str
failed_courses:
  description: The courses that failed.
  returned: always
  type: list
  elements: str
tools:
  description: The tool versions (libxml2, libxslt, docbook-xsl-ns, fop).
  returned: unless check mode
  type: dict
seconds:
  description: Wall time of the batch.
  returned: always
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.courseware import (
    HAS_LXML,
    CoursewareError,
    build_batch,
    check_tools,
    courses_of,
    load_course,
    load_schema,
    load_style,
    read_book,
)
from ansible.module_utils.release import STORE_ARG, ReleaseError


def check(params: dict) -> dict:
    started = time.monotonic()
    style = load_style(os.path.join(params["courseware_dir"], "styles"), params["customer"])
    check_tools(params["docbook_xsl"], params["schema"], params["fop"], {"fop": "?"})
    schema = load_schema(params["schema"])
    results = []
    for course in params["courses"] or courses_of(params["courseware_dir"], style["customer"]):
        try:
            loaded = load_course(os.path.join(params["courseware_dir"], course), style["customer"])
            read_book(loaded, schema)
            results.append({"course": course, "failed": False})
        except CoursewareError as exc:
            results.append({"course": course, "failed": True, "msg": str(exc)})
    return {
        "courses": results,
        "built": [],
        "failed": [r["course"] for r in results if r["failed"]],
        "seconds": round(time.monotonic() - started, 2),
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "customer": {"type": "str", "required": True},
            "courses": {"type": "list", "elements": "str"},
            "courseware_dir": {"type": "path", "required": True},
            "build_dir": {"type": "path", "required": True},
            "store": STORE_ARG,
            "docbook_xsl": {"type": "path", "default": "/usr/share/xml/docbook/stylesheet/docbook-xsl-ns"},
            "schema": {"type": "path", "default": "/usr/share/xml/docbook/schema/rng/5.0/docbook.rng"},
            "fop": {"type": "str", "default": "fop"},
            "jobs": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    if not HAS_LXML:
        module.fail_json(msg=missing_required_lib("lxml"))
    params = module.params
    try:
        if module.check_mode:
            result = check(params)
        else:
            result = build_batch(
                params["courseware_dir"],
                params["customer"],
                params["courses"],
                params["store"],
                params["build_dir"],
                os.path.join(params["courseware_dir"], "xsl"),
                docbook_xsl=params["docbook_xsl"],
                schema=params["schema"],
                fop=params["fop"],
                jobs=params["jobs"],
            )
    except (CoursewareError, ReleaseError) as exc:
        module.fail_json(msg=str(exc), courses=[], built=[], failed_courses=[], seconds=0.0)
    failed = result.pop("failed")
    result["failed_courses"] = failed
    changed = any(course.get("published") for course in result["courses"])
    if failed:
        module.fail_json(
            msg=f"{len(failed)} of {len(result['courses'])} courses failed: {', '.join(failed)}",
            changed=changed,
            **result,
        )
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()

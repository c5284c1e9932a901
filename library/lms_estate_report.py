#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_estate_report
short_description: Write the estate report (HTML and JSON) from what a play gathered
description:
  - Builds the estate report of playbooks/report.yml (docs/report.md) - one row per site with its
    release, Moodle version and branch support, pending upgrade, maintenance, last deploy, last
    backup, last QA refresh, drift between the tiers, policy conformance and next change window -
    and writes it into O(dest) as C(estate-report.json) (files/estate-report.schema.json) and
    C(estate-report.html) (one self-contained page - inline CSS and SVG, no script, nothing
    fetched).
  - Runs on the controller. Reads nothing on the hosts itself; what they said comes in O(hosts),
    the backups in O(backups).
version_added: "1.4.0"
author: three-instance contributors
options:
  sites:
    description:
      - The sites to report, one row each - C(name), C(customer), C(tier), C(flavour), C(web_hosts),
        C(maintenance_windows) of their estate records. Give only these keys (a record's C(vars)
        may hold secrets).
    type: list
    elements: dict
    required: true
  hosts:
    description:
      - Per web host, what the play registered there - C(ping), C(code) (stat loop), C(records)
        (M(lms_deployment_info) loop), C(facts) (M(lms_facts) loop), C(audit_rows) and C(audited)
        (the policy audit) - or null when the host registered nothing.
    type: dict
    default: {}
  backups:
    description:
      - Per site, what M(lms_backup_info) (with C(history)) answered; null when no backup store
        was given (every backup cell then says so).
    type: dict
  lifecycle:
    description: The support dates of each Moodle branch (the content of files/moodle-lifecycle.yml).
    type: dict
    required: true
  backup_max_age_hours:
    description:
      - Per tier, how old the newest backup may be before it is flagged (hours; null - never). Tiers
        not given keep their default - live 26, qa and dev null.
    type: dict
  support_warning_days:
    description: A branch whose security support ends within this many days is flagged.
    type: int
    default: 180
  now:
    description: The report's "now" (ISO 8601); default the controller's clock. For tests.
    type: str
  estate:
    description: The estate's name, for the title.
    type: str
  customer:
    description: The customer the report is limited to, for the title (null - the whole estate).
    type: str
  dest:
    description: The folder to write the two files into; created if missing.
    type: path
    required: true
notes:
  - Supports check mode - it then writes nothing and returns the summary. playbooks/report.yml runs
    it with C(check_mode=false), so the report is written in check mode too (it changes no host).
seealso:
  - module: lms_deployment_info
  - module: lms_facts
  - module: lms_backup_info
"""

EXAMPLES = r"""
- name: Write the report
  lms_estate_report:
    sites: "{{ report__rows }}"
    hosts: "{{ report__gathered }}"
    backups: "{{ report__backups }}"
    lifecycle: "{{ lookup('ansible.builtin.file', 'files/moodle-lifecycle.yml') | from_yaml }}"
    dest: reports/
  delegate_to: localhost
"""

RETURN = r"""
html:
  description: The path of the HTML page.
  returned: always
  type: str
json:
  description: The path of the JSON document.
  returned: always
  type: str
summary:
  description: C(sites), C(flagged) (rows with a flag), C(unreachable).
  returned: always
  type: dict
flags:
  description: "One line per flag: C(<site> <column>: <message>)."
  returned: always
  type: list
  elements: str
"""

import datetime as dt
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.estate_report import ReportError, build_report, parse_time, render_html, to_json

NAMES = ("estate-report.json", "estate-report.html")


def write(path: str, text: str) -> None:
    """Write whole, then rename over the old file: a reader never sees half a report."""
    fd, temp = tempfile.mkstemp(prefix=".estate-report.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def main():
    module = AnsibleModule(
        argument_spec={
            "sites": {"type": "list", "elements": "dict", "required": True},
            "hosts": {"type": "dict", "default": {}},
            "backups": {"type": "dict"},
            "lifecycle": {"type": "dict", "required": True},
            "backup_max_age_hours": {"type": "dict"},
            "support_warning_days": {"type": "int", "default": 180},
            "now": {"type": "str"},
            "estate": {"type": "str"},
            "customer": {"type": "str"},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    now = parse_time(p["now"]) if p["now"] else dt.datetime.now(dt.timezone.utc)
    if now is None:
        module.fail_json(msg=f"now: {p['now'][:80]!r} is not an ISO-8601 time")
    try:
        report = build_report(
            p["sites"],
            p["hosts"],
            p["backups"],
            p["lifecycle"],
            now=now,
            backup_max_age_hours=p["backup_max_age_hours"],
            support_warning_days=p["support_warning_days"],
            estate=p["estate"],
            customer=p["customer"],
        )
    except (ReportError, KeyError, TypeError) as exc:
        module.fail_json(msg=f"the report cannot be built: {exc}")
    paths = [os.path.join(p["dest"], name) for name in NAMES]
    if not module.check_mode:
        os.makedirs(p["dest"], exist_ok=True)
        write(paths[0], to_json(report))
        write(paths[1], render_html(report))
    module.exit_json(
        changed=not module.check_mode,
        json=paths[0],
        html=paths[1],
        summary=report["summary"],
        flags=[
            f"{row['site']} {f['column']}: {f['message']}" for row in report["sites"] for f in row["flags"]
        ],
    )


if __name__ == "__main__":
    main()

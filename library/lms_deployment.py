#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_deployment
short_description: Write a site's deployment record - what runs now, and a line of its history
description:
  - The one writer of the deployment record on a web host (its reader is M(lms_deployment_info)).
    C(<code_dir>/<site>/deployment.json) is what the site runs now, written whole and atomically
    (0644, read by operators and by the promotion); C(deployments.jsonl) beside it is the append-only
    history, one JSON object per line.
  - A record whose C(outcome) is C(failed) goes into the history only; the site still runs what
    C(deployment.json) says.
  - A history line that is there already is not added again, so a task that is run twice with the
    same record changes nothing.
  - The record is checked before anything is written - its C(site) must be the folder's, it must
    have C(site), C(release), C(deployed_at), C(deployed_by), C(verified) (a boolean) and an
    C(outcome) of C(deployed), C(failed), C(rolled-back), C(refreshed) or C(adopted).
version_added: "1.2.0"
author: three-instance contributors
options:
  path:
    description: The site's code folder (C(<code_dir>/<site>)), which holds the record.
    type: path
    required: true
  record:
    description: >-
      The record. M(lms_deployment_info)'s RV(lms_deployment_info#module:records) documents its keys.
    type: dict
    required: true
notes:
  - Supports check mode - it says what would be written.
seealso:
  - module: lms_deployment_info
"""

EXAMPLES = r"""
- name: Record the deploy of acme-qa
  lms_deployment:
    path: /srv/lms/acme-qa
    record:
      site: acme-qa
      release: moodle-5.1-r3
      sha256: "{{ release.sha256 }}"
      deployed_at: "{{ now(utc=true).strftime('%Y-%m-%dT%H:%M:%SZ') }}"
      deployed_by: alice
      verified: true
      outcome: deployed
"""

RETURN = r"""
record:
  description: The record written.
  returned: always
  type: dict
record_changed:
  description: Whether C(deployment.json) was (or would be) replaced.
  returned: always
  type: bool
history_appended:
  description: Whether a line was (or would be) added to C(deployments.jsonl).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.deployment import DeploymentError, write


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "record": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    record = module.params["record"]
    if str(record.get("verified")).lower() in ("true", "false"):  # a templated boolean come out as text
        record["verified"] = str(record["verified"]).lower() == "true"
    try:
        result = write(module.params["path"], record, check_mode=module.check_mode)
    except (DeploymentError, OSError) as exc:
        module.fail_json(msg=f"{exc}; nothing was written")
    module.exit_json(changed=result["record_changed"] or result["history_appended"], record=record, **result)


if __name__ == "__main__":
    main()

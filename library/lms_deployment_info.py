#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_deployment_info
short_description: Read the deployment records of the sites on a web host - what runs where
description:
  - Reads C(<code_dir>/<site>/deployment.json) (what the site runs now) and, when asked, the last
    lines of C(deployments.jsonl) (its history) for one site, a list of sites, or every site that
    has a code folder on the host. The records on the hosts are the truth about what runs where;
    M(lms_deployment) writes them.
  - Files are read without following links; a record that is not a JSON object fails the task,
    naming the file.
version_added: "1.2.0"
author: three-instance contributors
options:
  code_dir:
    description: The folder that holds the sites' code folders.
    type: path
    default: /srv/lms
  sites:
    description: The sites to read; omitted, every site with a code folder under O(code_dir).
    type: list
    elements: str
  history:
    description: How many of the newest history entries to return per site (0 - none).
    type: int
    default: 0
notes:
  - Read-only; supports check mode.
seealso:
  - module: lms_deployment
"""

EXAMPLES = r"""
- name: What acme-live runs on its first web host
  lms_deployment_info:
    sites: [acme-live]
  register: live
  delegate_to: "{{ site.web_hosts[0] }}"

- name: Its release
  ansible.builtin.debug:
    msg: "{{ live.records['acme-live'].release | default('no release') }}"
"""

RETURN = r"""
records:
  description:
    - Per site, its record, or null when it has none (a site whose code converge installs).
    - A record's keys - C(site); C(release) (the release id); C(sha256) (of the bundle); C(flavour);
      C(lms_version) (Moodle's or Totara's version after the change); C(previous_release);
      C(deployed_at) (UTC, ISO 8601); C(deployed_by); C(upgraded) (whether upgrade.php ran);
      C(maintenance_seconds), C(outage_seconds), C(upgrade_seconds); C(maintenance_since),
      C(switched_at) (host clock, epoch seconds); C(checks) (smoke check name - passed);
      C(verified) (every check passed); C(override_window_reason); C(snapshot) (the pre-change
      database snapshot); C(backup) (the backup taken before the change); C(outcome) (C(deployed),
      C(failed), C(rolled-back), C(refreshed)); on a failed attempt C(error) and
      C(database_restored_from); on a QA refresh C(refreshed_from) (C(site), C(backup_id),
      C(users_anonymised)).
  returned: always
  type: dict
  sample:
    acme-qa: {"site": "acme-qa", "release": "moodle-5.1-r3", "verified": true, "outcome": "deployed"}
history:
  description: Per site, its newest O(history) history entries, oldest first.
  returned: when O(history) > 0
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.deployment import SITE_NAME, DeploymentError, read_history, read_record, sites_in


def main():
    module = AnsibleModule(
        argument_spec={
            "code_dir": {"type": "path", "default": "/srv/lms"},
            "sites": {"type": "list", "elements": "str"},
            "history": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    code_dir, sites = module.params["code_dir"], module.params["sites"]
    if sites is None:
        sites = sites_in(code_dir)
    bad = [name for name in sites if not SITE_NAME.fullmatch(name)]
    if bad:
        module.fail_json(msg=f"not a site name: {bad[0][:80]!r} (lower-case letters, digits and '-')")
    records, history = {}, {}
    try:
        for name in sites:
            records[name] = read_record(os.path.join(code_dir, name))
            if module.params["history"] > 0:
                history[name] = read_history(os.path.join(code_dir, name), module.params["history"])
    except (DeploymentError, OSError) as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": False, "records": records}
    if module.params["history"] > 0:
        result["history"] = history
    module.exit_json(**result)


if __name__ == "__main__":
    main()

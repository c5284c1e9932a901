#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_upgrade
short_description: Run Moodle's/Totara's database upgrade when one is pending
description:
  - Asks C(admin/cli/upgrade.php --is-maintenance-required) whether an upgrade is pending; when
    none is, nothing runs and the task is unchanged.
  - Otherwise runs C(upgrade.php --non-interactive) as the web user and reports what was upgraded
    (core from/to, each plugin installed, upgraded or removed) and how long it took.
  - With I(allow_without_maintenance=true) and when Moodle says the upgrade can run without
    maintenance (only version bumps, no C(db/) change, exit code 3), it runs with
    C(--maintenance=false) and purges the caches afterwards, as Moodle requires. Otherwise
    C(upgrade.php) runs its normal upgrade (the site is unavailable while it runs).
  - Does not switch maintenance mode on or off around the upgrade; use M(lms_maintenance) for a
    change window. A failed upgrade fails the task with Moodle's output.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  timeout:
    description:
      - Seconds after which the upgrade is stopped and the task fails. A major upgrade takes minutes
        on a big site; raise it there.
    type: int
    default: 3600
  allow_without_maintenance:
    description: Run without maintenance mode when Moodle says the upgrade allows it.
    type: bool
    default: false
  allow_unstable:
    description: Pass C(--allow-unstable) (code whose maturity is below stable, such as a beta).
    type: bool
    default: false
notes:
  - Supports check mode (reports what would be upgraded) and diff mode (versions before and after).
seealso:
  - module: lms_facts
  - module: lms_maintenance
"""

EXAMPLES = r"""
- name: Upgrade the database after deploying a new release
  lms_upgrade:
    path: /srv/acme-live/current
  register: upgrade

- name: Patch-level release on QA without an outage when possible
  lms_upgrade:
    path: /srv/acme-qa/current
    allow_without_maintenance: true
"""

RETURN = r"""
pending:
  description: Whether an upgrade was pending before the task.
  returned: always
  type: bool
maintenance_required:
  description: Whether Moodle said the pending upgrade needs maintenance.
  returned: always
  type: bool
with_maintenance:
  description: Whether the upgrade ran in Moodle's normal (maintenance) mode; null when nothing ran.
  returned: always
  type: bool
core:
  description: Core version before and after.
  returned: always
  type: dict
  sample: {"from": "2025100600.00", "to": "2025100600.02", "release": "5.1+ (Build: 20251017)"}
plugins:
  description: Plugins the upgrade installed, upgraded or removed (C(from) null means newly installed).
  returned: always
  type: list
  elements: dict
  sample: [{"component": "local_hello", "from": null, "to": "2025010100", "status": "new"}]
seconds:
  description: How long C(upgrade.php) ran (0 when nothing ran).
  returned: always
  type: float
stdout_lines:
  description: The last lines of C(upgrade.php)'s output.
  returned: when the upgrade ran
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            timeout={"type": "int", "default": 3600},
            allow_without_maintenance={"type": "bool", "default": False},
            allow_unstable={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    result = {
        "pending": False,
        "maintenance_required": False,
        "with_maintenance": None,
        "plugins": [],
        "seconds": 0.0,
    }
    try:
        site = MoodleSite.from_params(module.params)
        before = site.helper("facts")
        if not before["installed"]:
            raise MoodleError(
                f"the site at {site.path} is not installed: install its database first "
                "(admin/cli/install_database.php), then upgrade"
            )
        status = site.upgrade_status()
        code = site.code_version()
        result.update(pending=status["pending"], maintenance_required=status["maintenance_required"])
        result["core"] = {
            "from": before["db_version"],
            "to": before["db_version"],
            "release": before["db_release"],
        }
        if not status["pending"]:
            module.exit_json(changed=False, **result)

        planned = [
            {"component": p["component"], "from": p["db_version"], "to": p["version"], "status": p["status"]}
            for p in before["plugins_to_upgrade"]
        ]
        without = module.params["allow_without_maintenance"] and not status["maintenance_required"]
        result["with_maintenance"] = not without
        if module.check_mode:
            result["core"].update(to=code["version"], release=code["release"])
            result["plugins"] = planned
            module.exit_json(changed=True, diff=version_diff(result["core"]), **result)

        run = site.upgrade(maintenance=not without, allow_unstable=module.params["allow_unstable"])
        result["seconds"] = run.seconds
        result["stdout_lines"] = run.stdout.strip().splitlines()[-40:]

        after = site.helper("facts")
        site.require_upgraded(run.stdout)
        result["core"] = {
            "from": before["db_version"],
            "to": after["db_version"],
            "release": after["db_release"],
        }
        result["plugins"] = planned
    except MoodleError as exc:
        fail_module(module, exc, **result)
    module.exit_json(changed=True, diff=version_diff(result["core"]), **result)


def version_diff(core: dict) -> dict:
    return {"before": f"version: {core['from']}\n", "after": f"version: {core['to']}\n"}


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_maintenance
short_description: Put a Moodle/Totara site into maintenance mode, take it out, or schedule it
description:
  - C(enabled) switches on CLI maintenance (C(admin/cli/maintenance.php --enable)); the web then answers
    503 with the maintenance page (C(climaintenance.html) in the dataroot).
  - C(disabled) switches off every maintenance mode (CLI, web and a scheduled one).
  - C(scheduled) announces maintenance in I(minutes) (C(--enablelater)); Moodle shows a countdown
    and switches itself into maintenance at that time. A site that is already scheduled or in
    maintenance is left as it is.
  - I(notice) sets the maintenance message (C($CFG->maintenance_message)); when the site is
    already in maintenance the page shown is rewritten with it.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  state:
    description: The wanted maintenance state.
    type: str
    choices: [enabled, disabled, scheduled]
    required: true
  minutes:
    description: With I(state=scheduled), in how many minutes maintenance starts.
    type: int
  notice:
    description:
      - The maintenance message (HTML allowed). An empty string removes it (Moodle's default text is shown).
      - Omit it to leave the message as it is.
    type: str
notes:
  - Supports check mode and diff mode.
seealso:
  - module: lms_upgrade
  - module: lms_facts
"""

EXAMPLES = r"""
- name: Announce the change window
  lms_maintenance:
    path: /srv/acme-live/current
    state: scheduled
    minutes: 15
    notice: "Scheduled maintenance: back at 22:30 UTC."

- name: Maintenance on
  lms_maintenance:
    path: /srv/acme-live/current
    state: enabled

- name: Maintenance off (always, also after a failed change)
  lms_maintenance:
    path: /srv/acme-live/current
    state: disabled
"""

RETURN = r"""
before:
  description: The state before the task (C(enabled), C(disabled) or C(scheduled)).
  returned: always
  type: str
  sample: disabled
after:
  description: The state after the task (in check mode, the state it would have).
  returned: always
  type: str
  sample: enabled
message:
  description: The maintenance message after the task.
  returned: always
  type: str
scheduled_at:
  description: Epoch seconds when scheduled maintenance starts (null unless C(after) is C(scheduled)).
  returned: always
  type: int
changed_at:
  description:
    - Epoch seconds on the host just after the state was changed (null when nothing changed, and in
      check mode). With C(maintenance_since) of M(lms_release_switch) it times a window.
  returned: always
  type: float
  sample: 1795600012.5
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            state={"type": "str", "choices": ["enabled", "disabled", "scheduled"], "required": True},
            minutes={"type": "int"},
            notice={"type": "str"},
        ),
        required_if=[("state", "scheduled", ["minutes"])],
        supports_check_mode=True,
    )
    state, minutes, notice = module.params["state"], module.params["minutes"], module.params["notice"]
    if minutes is not None and (state != "scheduled" or minutes < 1):
        module.fail_json(msg="minutes is for state=scheduled and must be 1 or more")
    changed = False
    changed_at = None
    try:
        site = MoodleSite.from_params(module.params)
        status = site.maintenance_status()
        before = status["state"]
        msg_result = None
        if notice is not None:
            msg_result = site.helper(
                "maintenance_message", {"message": notice, "check_mode": module.check_mode}
            )
            changed = msg_result["changed"]
        current_message = msg_result["after"] if msg_result else status["message"]
        after = before
        if state == "enabled" and before != "enabled":
            after, changed = "enabled", True
            if not module.check_mode:
                site.cli("maintenance.php", "--enable")
                changed_at = round(time.time(), 3)
        elif state == "disabled" and before != "disabled":
            after, changed = "disabled", True
            if not module.check_mode:
                site.cli("maintenance.php", "--disable")
                changed_at = round(time.time(), 3)
        elif state == "scheduled" and before == "disabled":
            after, changed = "scheduled", True
            if not module.check_mode:
                site.cli("maintenance.php", f"--enablelater={minutes}")
                changed_at = round(time.time(), 3)
        elif state == "scheduled" and before == "enabled":
            module.warn("the site is already in maintenance mode; nothing was scheduled")
        if not module.check_mode:
            status = site.maintenance_status()
            after = status["state"]
            if after != state and not (state == "scheduled" and after == "enabled"):
                raise MoodleError(
                    f"maintenance.php did not switch the site to '{state}' (it reports '{after}'); "
                    "check that the web user can write to the dataroot"
                )
    except MoodleError as exc:
        fail_module(module, exc)
    diff = {"before": f"maintenance: {before}\n", "after": f"maintenance: {after}\n"}
    if msg_result and msg_result["changed"]:
        diff["before"] += f"message: {msg_result['before']}\n"
        diff["after"] += f"message: {msg_result['after']}\n"
    module.exit_json(
        changed=changed,
        before=before,
        after=after,
        message=current_message,
        scheduled_at=status["scheduled_at"] if after == "scheduled" else None,
        changed_at=changed_at,
        diff=diff,
    )


if __name__ == "__main__":
    main()

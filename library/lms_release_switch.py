#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_release_switch
short_description: Switch a site's current release, with its upgrade and maintenance window, in one step
description:
  - Points the site's C(current) symlink (I(path)) at C(releases/<release>) beside it with an atomic
    rename, so every request sees either the old or the new release.
  - With I(upgrade), runs C(admin/cli/upgrade.php --non-interactive) on the new code after the switch.
  - With I(maintenance), the window is maintenance on (C(maintenance.php --enable), by the running
    code) -> switch -> upgrade -> maintenance off, run back to back in one process on the host and
    timed there (C(maintenance_seconds)). Without it the upgrade runs with C(--maintenance=false)
    (Moodle 4.4+ upgrades that change no schema) and the caches are purged after it.
  - Ask Moodle before the window whether an upgrade is pending and whether it needs maintenance
    (M(lms_facts) on the unpacked release, or M(lms_upgrade) in check mode); this module does not
    ask again inside the window.
  - When C(current) already points at the release, nothing is switched, and I(upgrade) runs only if
    Moodle says one is pending, so a second run reports no change.
  - A failure fails the task with C(switched), C(upgrade_started) and C(maintenance_enabled), so
    that the caller knows what to put back (the C(lms) role's put-back restores the database
    snapshot when the upgrade had started). Maintenance stays on after a failed upgrade.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  release:
    description:
      - The release id. Its folder C(releases/<release>) beside I(path) must hold the unpacked
        release with its C(config.php) linked.
    type: str
    required: true
  upgrade:
    description: Run the database upgrade after the switch (the caller found one pending).
    type: bool
    default: false
  maintenance:
    description: Hold the site in CLI maintenance mode from before the switch until after the upgrade.
    type: bool
    default: false
  allow_unstable:
    description: Pass C(--allow-unstable) to C(upgrade.php) (development releases).
    type: bool
    default: false
  end_maintenance:
    description:
      - Turn maintenance off at the end of the window. C(false) leaves it on after a successful
        upgrade, for a site with several web hosts whose others switch inside the same window (the
        flag lives in the shared dataroot); M(lms_maintenance) ends it, and C(maintenance_since)
        times the whole window.
    type: bool
    default: true
notes:
  - Supports check mode (reports what it would do, changes nothing) and diff mode.
  - I(timeout) (default 600) applies to each CLI call; give big upgrades more.
seealso:
  - module: lms_upgrade
  - module: lms_maintenance
  - module: lms_facts
"""

EXAMPLES = r"""
- name: Switch to a release that needs no upgrade (no maintenance at all)
  lms_release_switch:
    path: /srv/lms/acme-live/current
    web_user: acme-live
    release: "2026.11.2"

- name: Switch and upgrade inside one maintenance window
  lms_release_switch:
    path: /srv/lms/acme-live/current
    web_user: acme-live
    php: php8.2
    release: "2026.11.3"
    upgrade: true
    maintenance: true
    timeout: 3600
  register: switched

- name: Seconds Live spent in maintenance
  ansible.builtin.debug:
    var: switched.maintenance_seconds
"""

RETURN = r"""
before:
  description: Where C(current) pointed before (null when there was no link).
  returned: always
  type: str
  sample: releases/2026.11.2
after:
  description: Where C(current) points after the task (in check mode, would point).
  returned: always
  type: str
  sample: releases/2026.11.3
switched:
  description: Whether C(current) was switched (in check mode, would be).
  returned: always
  type: bool
switched_at:
  description: Epoch seconds on the host when C(current) was switched (null when it was not).
  returned: always
  type: float
upgrade_started:
  description: Whether C(upgrade.php) was started; on failure, whether the database may have changed.
  returned: always
  type: bool
upgraded:
  description: Whether the upgrade completed and nothing is left pending.
  returned: always
  type: bool
maintenance_enabled:
  description: Whether the site is left in maintenance (after a failure, or with I(end_maintenance=false)).
  returned: always
  type: bool
maintenance_since:
  description: Epoch seconds on the host when maintenance was turned on (null without maintenance).
  returned: always
  type: float
  sample: 1795600000.123
maintenance_seconds:
  description: Seconds from maintenance on to maintenance off, measured on the host (0 without maintenance).
  returned: always
  type: float
  sample: 11.2
upgrade_seconds:
  description: Seconds C(upgrade.php) ran.
  returned: always
  type: float
upgrade_stdout_lines:
  description: The last 40 lines of C(upgrade.php)'s output.
  returned: when the upgrade ran
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module
from ansible.module_utils.release_switch import ReleaseWindow


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            release={"type": "str", "required": True},
            upgrade={"type": "bool", "default": False},
            maintenance={"type": "bool", "default": False},
            allow_unstable={"type": "bool", "default": False},
            end_maintenance={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    params = module.params
    if "/" in params["release"] or params["release"] in ("", ".", ".."):
        module.fail_json(msg=f"release must be a release id, not a path: {params['release']!r}")

    def site_at(path):
        return MoodleSite(path, params["web_user"], params["php"], params["timeout"])

    window = ReleaseWindow(params["path"], params["release"], site_at)
    try:
        plan = window.plan(params["upgrade"])
        changed = plan["switch"] or plan["upgrade"]
        if module.check_mode or not changed:
            window.state.update(switched=plan["switch"], upgrade_started=plan["upgrade"])
            if not plan["switch"]:
                window.state["after"] = window.state["before"]
        else:
            window.run(plan, params["maintenance"], params["allow_unstable"], params["end_maintenance"])
    except (MoodleError, OSError) as exc:
        if isinstance(exc, OSError):
            exc = MoodleError(f"switching {params['path']} failed: {exc}")
        fail_module(module, exc, **window.state)
    diff = {"before": f"current: {window.state['before']}\n", "after": f"current: {window.state['after']}\n"}
    module.exit_json(changed=changed, diff=diff, **window.state)


if __name__ == "__main__":
    main()

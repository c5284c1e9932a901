#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_plugin
short_description: Enable or disable Moodle/Totara plugins with Moodle's plugin manager, or read their state
description:
  - Some plugins are switched on and off in the database, not by a setting that C(config.php) can
    force - an activity module's visibility (the C(modules) table, for example C(mod_bigbluebuttonbn)),
    the enabled enrolment methods (C(enrol_plugins_enabled)), the authentication plugins (C(auth)).
    This module sets that state the way the admin UI does, through the plugin type's own
    C(enable_plugin()) (which also hides or shows the plugin's course modules and records the change
    in Moodle's config log), and reads it back with the plugin manager's C(is_enabled()).
  - Every plugin is checked before any is changed. A plugin that is not installed on the site counts
    as disabled; enabling it fails. Plugin types whose state is a setting of their own (plagiarism
    plugins' C(enabled), for example) are refused - set those with M(lms_config) or force them in
    C(config.php).
  - I(read) only reads (the tier policy audit, C(playbooks/audit.yml), uses it).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  plugins:
    description: The plugins and the state each must have.
    type: list
    elements: dict
    suboptions:
      component:
        description: The plugin's component, for example C(mod_bigbluebuttonbn), C(enrol_database).
        type: str
        required: true
      enabled:
        description: Whether the plugin must be enabled.
        type: bool
        required: true
  read:
    description: Components whose state is only read; nothing is written.
    type: list
    elements: str
notes:
  - Supports check mode and diff mode.
seealso:
  - module: lms_config
  - module: lms_facts
"""

EXAMPLES = r"""
- name: BigBlueButton on, external database enrolment off
  lms_plugin:
    path: /srv/acme-qa/current
    plugins:
      - {component: mod_bigbluebuttonbn, enabled: true}
      - {component: enrol_database, enabled: false}

- name: Read whether they are enabled (no change)
  lms_plugin:
    path: /srv/acme-qa/current
    read: [mod_bigbluebuttonbn, enrol_database]
  register: found
"""

RETURN = r"""
plugins:
  description:
    - Each plugin with its state before and after the task (null when it is not installed).
  returned: always
  type: list
  elements: dict
  sample:
    - {component: mod_bigbluebuttonbn, installed: true, before: false, after: true, changed: true}
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module

COMPONENT = re.compile(r"^[a-z][a-z0-9]*_[a-z0-9_]+$")


def wanted_plugins(params) -> list[dict]:
    if params.get("read") is not None:
        items = [{"component": component, "enabled": None} for component in params["read"]]
    else:
        items = [{"component": p["component"], "enabled": p["enabled"]} for p in params["plugins"]]
    for item in items:
        if not COMPONENT.match(item["component"] or ""):
            raise MoodleError(
                f"{item['component']!r} is not a plugin component (type_name, e.g. mod_bigbluebuttonbn)"
            )
    seen = set()
    for item in items:
        if item["component"] in seen:
            raise MoodleError(f"{item['component']} is listed twice")
        seen.add(item["component"])
    return items


def _state(value) -> str:
    return "not installed" if value is None else "enabled" if value else "disabled"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            plugins={
                "type": "list",
                "elements": "dict",
                "options": {
                    "component": {"type": "str", "required": True},
                    "enabled": {"type": "bool", "required": True},
                },
            },
            read={"type": "list", "elements": "str"},
        ),
        mutually_exclusive=[("plugins", "read")],
        required_one_of=[("plugins", "read")],
        supports_check_mode=True,
    )
    try:
        wanted = wanted_plugins(module.params)
        site = MoodleSite.from_params(module.params)
        result = site.helper("plugin_state", {"plugins": wanted, "check_mode": module.check_mode})
        plugins = result["plugins"]
        if len(plugins) != len(wanted):
            raise MoodleError(f"plugin_state returned {len(plugins)} plugins for the {len(wanted)} asked for")
    except MoodleError as exc:
        fail_module(module, exc)
    changed = [p for p in plugins if p["changed"]]
    diff = {
        "before": "".join(f"{p['component']}: {_state(p['before'])}\n" for p in changed),
        "after": "".join(f"{p['component']}: {_state(p['after'])}\n" for p in changed),
    }
    module.exit_json(changed=bool(changed), plugins=plugins, diff=diff)


if __name__ == "__main__":
    main()

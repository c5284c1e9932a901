#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_config
short_description: Get and set Moodle/Totara core and plugin settings, idempotently
description:
  - Reads the current values first (one PHP run for all settings) and writes only those that
    differ, with C(admin/cli/cfg.php --set) / C(--unset) run as the web user (which also records
    the change in Moodle's config log).
  - Settings forced in C(config.php) (C($CFG->name) or C($CFG->forced_plugin_settings)) cannot be
    changed from the database; the module refuses them with a message that says so. When the forced
    value already equals the wanted one the task is unchanged and warns.
  - Reports C(changed) and, with C(--diff), the before and after values.
  - With only I(name) (no I(value), I(state=present)) nothing is written and the value is returned
    (a read). I(read) reads several settings in one PHP run and never writes (the tier policy audit,
    C(playbooks/audit.yml), uses it).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  name:
    description: One setting's name (C($CFG->name) for core, or the plugin's setting name).
    type: str
  component:
    description: The setting's component, for example C(tool_recyclebin) or C(auth_manual); C(core) for core.
    type: str
    default: core
  value:
    description:
      - The wanted value. Moodle stores settings as strings; booleans become C(1)/C(0), numbers their text.
      - Omit it (with I(state=present)) to only read the setting.
    type: raw
  state:
    description: C(present) sets I(value); C(absent) removes the setting from the database.
    type: str
    choices: [present, absent]
    default: present
  settings:
    description: Several settings at once; each item takes I(name), I(component), I(value), I(state).
    type: list
    elements: dict
    suboptions:
      name:
        description: The setting's name.
        type: str
        required: true
      component:
        description: The setting's component.
        type: str
        default: core
      value:
        description: The wanted value (required with I(state=present)).
        type: raw
      state:
        description: C(present) or C(absent).
        type: str
        choices: [present, absent]
        default: present
  read:
    description:
      - Settings to read only (each item takes I(name) and I(component)); nothing is written. Each comes
        back in I(settings) with its value and whether C(config.php) forces it.
    type: list
    elements: dict
    suboptions:
      name:
        description: The setting's name.
        type: str
        required: true
      component:
        description: The setting's component.
        type: str
        default: core
notes:
  - Supports check mode and diff mode.
  - Values of settings whose names look like secrets (C(pass), C(secret), C(token), C(key)) are
    masked in the diff and the result (an empty value is shown as it is). The task's arguments
    still hold the value, so set the task keyword C(no_log) on tasks that set secrets.
seealso:
  - module: lms_facts
"""

EXAMPLES = r"""
- name: Turn the recycle bin off and set the theme
  lms_config:
    path: /srv/acme-qa/current
    settings:
      - {name: theme, value: boost}
      - {name: coursebinenable, component: tool_recyclebin, value: false}

- name: Read one setting
  lms_config:
    path: /srv/acme-qa/current
    name: release
  register: release

- name: Read settings and whether config.php forces them (no change)
  lms_config:
    path: /srv/acme-qa/current
    read:
      - {name: noemailever}
      - {name: coursebinenable, component: tool_recyclebin}
  register: found

- name: Remove a setting
  lms_config:
    path: /srv/acme-qa/current
    name: customscripts
    state: absent
"""

RETURN = r"""
settings:
  description: Each setting with its value before and after.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: theme, component: core, before: classic, after: boost, changed: true, forced: false}
value:
  description: The setting's value after the task, when a single I(name) was given (null when not set).
  returned: when I(name) is given
  type: str
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import (
    COMMON_ARGS,
    MoodleError,
    MoodleSite,
    fail_module,
    forced_message,
    setting_label,
    to_setting,
)

SECRET = re.compile(r"pass|secret|token|key$|apikey", re.IGNORECASE)


def wanted_settings(params) -> list[dict]:
    if params.get("read") is not None:
        items = [
            {"name": i["name"], "component": i.get("component"), "value": None, "state": "present"}
            for i in params["read"]
        ]
    elif params["settings"] is not None:
        items = params["settings"]
    else:
        items = [
            {
                "name": params["name"],
                "component": params["component"],
                "value": params["value"],
                "state": params["state"],
            }
        ]
    out = []
    for item in items:
        component = item.get("component") or "core"
        read_only = item["state"] == "present" and item.get("value") is None
        if read_only and params["settings"] is not None:
            raise MoodleError(
                f"setting {setting_label(item['name'], component)} has no value: give one, or state: absent"
            )
        out.append(
            {
                "name": item["name"],
                "component": component,
                "state": item["state"],
                "value": None if item["state"] == "absent" else to_setting(item.get("value")),
                "read_only": read_only,
            }
        )
    return out


def main():
    setting_spec = {
        "name": {"type": "str", "required": True},
        "component": {"type": "str", "default": "core"},
        "value": {"type": "raw"},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    }
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            name={"type": "str"},
            component={"type": "str", "default": "core"},
            value={"type": "raw"},
            state={"type": "str", "choices": ["present", "absent"], "default": "present"},
            settings={"type": "list", "elements": "dict", "options": setting_spec},
            read={
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str", "required": True},
                    "component": {"type": "str", "default": "core"},
                },
            },
        ),
        mutually_exclusive=[("name", "settings", "read")],
        required_one_of=[("name", "settings", "read")],
        supports_check_mode=True,
    )
    try:
        wanted = wanted_settings(module.params)
        site = MoodleSite.from_params(module.params)
        current = site.helper(
            "config_get", {"settings": [{"name": w["name"], "component": w["component"]} for w in wanted]}
        )
        results, warnings = [], []
        if len(current["settings"]) != len(wanted):
            raise MoodleError(
                f"config_get returned {len(current['settings'])} settings for the {len(wanted)} asked for"
            )
        for want, have in zip(wanted, current["settings"]):
            before = have["value"]
            after = before if want["read_only"] else want["value"]
            differs = before != after
            label = setting_label(want["name"], want["component"])
            if have["forced"]:
                if differs:
                    raise MoodleError(forced_message(want["name"], want["component"]))
                if not want["read_only"]:
                    warnings.append(
                        f"{label} is forced in config.php (to the wanted value); this task cannot change it"
                    )
            results.append(
                {
                    "name": want["name"],
                    "component": want["component"],
                    "before": before,
                    "after": after,
                    "changed": differs,
                    "forced": have["forced"],
                }
            )
        if not module.check_mode:
            for item in results:
                if item["changed"]:
                    site.cfg_set(item["name"], item["after"], item["component"])
    except MoodleError as exc:
        fail_module(module, exc)

    changed = any(item["changed"] for item in results)
    for item in results:
        if SECRET.search(item["name"]):
            for key in ("before", "after"):
                # (an empty value reveals nothing: a tool whose credentials are forced empty shows '')
                item[key] = item[key] if item[key] in (None, "") else "********"
    diff = {
        "before": "".join(
            f"{setting_label(i['name'], i['component'])} = {i['before']!r}\n" for i in results if i["changed"]
        ),
        "after": "".join(
            f"{setting_label(i['name'], i['component'])} = {i['after']!r}\n" for i in results if i["changed"]
        ),
    }
    for warning in warnings:
        module.warn(warning)
    extra = {"value": results[0]["after"]} if module.params["name"] else {}
    module.exit_json(changed=changed, settings=results, diff=diff, **extra)


if __name__ == "__main__":
    main()

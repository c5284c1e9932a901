#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_change_window
short_description: Refuse a change to a site outside its maintenance windows unless overridden
description:
  - The guard rail of DESIGN rule 2 (Live changes only inside the customer's maintenance window,
    unless an explicit override with a reason is given). Run it on the controller
    (C(delegate_to=localhost) or a C(localhost) play) before a play changes a site.
  - Passes when one of the site's I(windows) is open at I(at), or when an I(override_reason) is
    given (the result says C(overridden=true) and carries the reason, for the caller to record).
  - Fails otherwise, with a message naming the site, its windows and the next opening. A Live site
    with no windows at all is always closed (only an override lets a change through); on dev and
    qa no windows means no constraint.
  - Windows are evaluated in their own time zone by the local wall clock; start inclusive, end
    exclusive; an end at or before the start runs past midnight; C(days) are the days a window
    starts on. On a daylight-saving change a window is open while the clock reads a time inside
    it. Changes nothing, so check mode gives the same result.
version_added: "1.0.0"
author: three-instance contributors
options:
  site:
    description: The site's name (C(<customer>-<tier>)), for messages and the default I(tier).
    type: str
    required: true
  windows:
    description:
      - The site's maintenance windows, as the inventory gives them
        (C(estate_sites[].maintenance_windows)), or as written in an estate
        (C("sun 02:00-04:00 Europe/London"), C({days, start, end, timezone})).
      - An empty list is valid input (see the description).
    type: list
    elements: raw
    required: true
  at:
    description:
      - The moment to check, ISO-8601 (C(2026-11-29T02:30:00+00:00), C(...Z)); without an offset
        it is UTC. Default now. For tests and for planning a change.
    type: str
  override_reason:
    description:
      - Why the change must happen outside the window. Empty or blank is not a reason.
      - Used only when no window is open; the caller records it with the change.
    type: str
    default: ""
  tier:
    description: The site's tier; default the suffix of I(site) (C(acme-live) -> C(live)), else C(live).
    type: str
    choices: [dev, qa, live]
  timezone:
    description: Time zone of written windows that name none (inventory windows always name one).
    type: str
    default: UTC
notes:
  - Supports check mode (it only reads the clock).
seealso:
  - module: lms_maintenance
"""

EXAMPLES = r"""
- name: Live must be in its maintenance window (or overridden with a reason)
  lms_change_window:
    site: "{{ site.name }}"
    windows: "{{ site.maintenance_windows }}"
    override_reason: "{{ override_window_reason | default('') }}"
  delegate_to: localhost
  register: change_window

- name: Would Sunday 02:30 London time be inside the window?
  lms_change_window:
    site: globex-live
    windows: ["sun 02:00-04:00 Europe/London"]
    at: "2026-11-29T02:30:00+00:00"
"""

RETURN = r"""
allowed:
  description: Whether the change may go ahead (C(open) or C(overridden)); false only in a failed result.
  returned: always
  type: bool
open:
  description: Whether a window is open at I(at).
  returned: always
  type: bool
overridden:
  description: True when no window is open and I(override_reason) lets the change through.
  returned: always
  type: bool
reason:
  description: The override reason (stripped) when it was used, else null. Record it.
  returned: always
  type: str
window:
  description: The open window (normalised), else null.
  returned: always
  type: dict
  sample: {"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "Europe/London"}
next_open:
  description:
    - When a window next opens, ISO-8601 in UTC; I(at) itself when one is open.
    - Null when none ever opens (no windows).
  returned: always
  type: str
  sample: "2026-11-29T02:00:00+00:00"
open_until:
  description:
    - When the open period ends (touching windows count as one), ISO-8601 in UTC.
    - Null when closed, or when the windows never close.
  returned: always
  type: str
at:
  description: The moment checked, ISO-8601 in UTC.
  returned: always
  type: str
windows:
  description: The site's windows, normalised.
  returned: always
  type: list
  elements: dict
tier:
  description: The tier the decision was made for.
  returned: always
  type: str
msg:
  description: One sentence saying why the change may or may not go ahead.
  returned: always
  type: str
  sample: >-
    globex-live: maintenance window sun 02:00-04:00 Europe/London is open
    (until Sun 2026-11-29 04:00 Europe/London)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.change_window import ChangeWindowError, check


def main():
    module = AnsibleModule(
        argument_spec={
            "site": {"type": "str", "required": True},
            "windows": {"type": "list", "elements": "raw", "required": True},
            "at": {"type": "str"},
            "override_reason": {"type": "str", "default": ""},
            "tier": {"type": "str", "choices": ["dev", "qa", "live"]},
            "timezone": {"type": "str", "default": "UTC"},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = check(p["site"], p["windows"], p["at"], p["override_reason"], p["tier"], p["timezone"])
    except ChangeWindowError as exc:
        module.fail_json(msg=str(exc))
    if not result["allowed"]:
        module.fail_json(**result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_sanitise
short_description: Remove real learners' personal data from a Moodle/Totara copy (QA refreshed from Live)
description:
  - Keeps the allowed users (I(keep_usernames), I(keep_emails), the guest user and optionally the
    main administrator) and anonymises every other user in bulk - username C(user<id>), email
    C(user<id>@<email_domain>), names, ID number, phones, address, institution, department,
    description, picture, last IP, phonetic/middle/alternate names - and suspends them (auth
    C(nologin)), or with I(action=delete) also marks them deleted and removes their enrolments,
    role assignments, group and cohort memberships.
  - Deletes what identifies them elsewhere - custom profile fields, preferences, password history
    and reset tokens, private keys, web service tokens, linked logins, devices, personal messages,
    conversations, notifications, contacts, standard and legacy logs, blogs and notes, personal
    calendar events, their private files - and clears the author of course files they uploaded.
    Courses and their content stay.
  - Diverts or disables outgoing mail (I(mail)) and applies I(settings) (third-party integrations
    off or to their sandboxes).
  - All of it is set-based SQL run through Moodle's own C($DB) (PostgreSQL and MariaDB/MySQL, the
    table prefix from C(config.php)) in one delegated transaction; then every session is killed and
    all caches are purged through Moodle's APIs. Nothing is half-applied.
  - With I(state=verified) it changes nothing and fails when a user that is not allowed is active,
    holds an email outside I(email_domain), or when mail can reach real people.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  state:
    description:
      - C(sanitised) sanitises, then verifies (and fails when verification finds a problem).
      - C(verified) only verifies; it never changes anything.
    type: str
    choices: [sanitised, verified]
    default: sanitised
  keep_usernames:
    description: Usernames that are kept as they are (the test accounts, named staff).
    type: list
    elements: str
    default: []
  keep_emails:
    description: Users with these email addresses (case-insensitive) are kept as they are.
    type: list
    elements: str
    default: []
  keep_guest:
    description: Keep the guest user.
    type: bool
    default: true
  keep_main_admin:
    description: Keep the main administrator (the first of C($CFG->siteadmins)) even when not listed.
    type: bool
    default: false
  email_domain:
    description: Anonymised users get the address C(user<id>@<email_domain>); verification accepts only these.
    type: str
    default: invalid
  action:
    description: C(suspend) keeps anonymised users (with their grades and submissions) suspended;
      C(delete) also marks them deleted and removes their enrolments and role assignments.
    type: str
    choices: [suspend, delete]
    default: suspend
  mail:
    description: How the copy keeps mail from real people.
    type: dict
    default: {}
    suboptions:
      mode:
        description: C(disabled) sets C(noemailever); C(divert) sends all mail to I(divert_to).
        type: str
        choices: [disabled, divert]
        default: disabled
      divert_to:
        description: The mailbox that receives all mail with I(mode=divert) (C(divertallemailsto)).
        type: str
  settings:
    description:
      - Settings written in the same transaction, for example third-party integrations switched off
        or to their sandbox. A setting forced in C(config.php) to another value fails the task
        before anything changes.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The setting's name.
        type: str
        required: true
      plugin:
        description: The plugin (component) of the setting; omit or C(core) for core settings.
        type: str
      value:
        description: The value; null unsets the setting.
        type: raw
  purge:
    description: Kill all sessions and purge all caches after a change.
    type: bool
    default: true
  allow_live:
    description:
      - Sanitise a Live site. Without it the module refuses (also in check mode) when the site is
        Live - its code root is in a site folder C(<customer>-live) (C(<code_dir>/acme-live/current)),
        its deployment record there (C(deployment.json)) names a Live site, or I(web_user) is a Live
        site's name - before anything is read or changed.
      - I(state=verified) changes nothing and is not refused.
    type: bool
    default: false
  allow_live_reason:
    description:
      - Why a Live site is sanitised (for example the incident or change ticket); required, not blank
        and at most 500 characters with I(allow_live=true). It is returned (RV(live_override)) and
        warned, so it stays in the job's log.
    type: str
notes:
  - Supports check mode - it reports how many rows each step would change.
  - Run it with the site in maintenance mode (see the C(refresh_qa.yml) playbook).
seealso:
  - module: lms_user
  - module: lms_maintenance
"""

EXAMPLES = r"""
- name: Sanitise QA after the restore from Live
  lms_sanitise:
    path: /srv/lms/acme-qa/current
    keep_usernames: [admin, tutor, student, jane.designer]
    keep_emails: [integrator@acme.example]
    mail: {mode: divert, divert_to: qa-mail@provider.example}
    settings:
      - {plugin: mod_bigbluebuttonbn, name: server_url, value: "https://test-install.blindsidenetworks.com/bigbluebutton/"}
      - {name: enablewebservices, value: 0}

- name: Fail the play when QA holds an active real learner or could mail one
  lms_sanitise:
    path: /srv/lms/acme-qa/current
    state: verified
    keep_usernames: [admin, tutor, student, jane.designer]
"""

RETURN = r"""
counts:
  description: Rows changed (in check mode, that would change) per table; C(user) is the users anonymised.
  returned: state=sanitised
  type: dict
  sample: {"user": 10000, "user_info_data": 20000, "messages": 5000, "logstore_standard_log": 120000}
settings_changed:
  description: Settings that changed, with the values before and after.
  returned: state=sanitised
  type: list
  elements: dict
kept_users:
  description: Usernames of the users that were kept.
  returned: always
  type: list
  elements: str
keep_usernames_missing:
  description: Names of I(keep_usernames) that are not on the site (the accounts role creates them later).
  returned: always
  type: list
  elements: str
tables_missing:
  description: Tables of the plan that this site lacks (plugins not installed); they were skipped.
  returned: state=sanitised
  type: list
  elements: str
seconds:
  description: Time spent counting, in the transaction, and purging.
  returned: state=sanitised
  type: dict
slowest_steps:
  description: The five slowest statements of the transaction (table, seconds).
  returned: state=sanitised
  type: dict
verification:
  description: What verification found (active users that are not allowed, real emails, mail settings).
  returned: always
  type: dict
live_override:
  description: The Live site sanitised with I(allow_live), and the reason given.
  returned: when a Live site was sanitised with I(allow_live)
  type: dict
  sample: {"site": "acme-live", "reason": "INC-42: scrub leaked test data"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import (
    COMMON_ARGS,
    LIVE_GUARD_ARGS,
    MoodleError,
    MoodleSite,
    fail_module,
    live_guard,
)
from ansible.module_utils.sanitise import sanitise, verify


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            state={"type": "str", "choices": ["sanitised", "verified"], "default": "sanitised"},
            keep_usernames={"type": "list", "elements": "str", "default": []},
            keep_emails={"type": "list", "elements": "str", "default": []},
            keep_guest={"type": "bool", "default": True},
            keep_main_admin={"type": "bool", "default": False},
            email_domain={"type": "str", "default": "invalid"},
            action={"type": "str", "choices": ["suspend", "delete"], "default": "suspend"},
            mail={
                "type": "dict",
                "default": {},
                "options": {
                    "mode": {"type": "str", "choices": ["disabled", "divert"], "default": "disabled"},
                    "divert_to": {"type": "str"},
                },
            },
            settings={
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "plugin": {"type": "str"},
                    "value": {"type": "raw"},
                },
            },
            purge={"type": "bool", "default": True},
            **LIVE_GUARD_ARGS,
        ),
        supports_check_mode=True,
    )
    params = dict(module.params, check_mode=module.check_mode)
    result = {"changed": False}
    try:
        if params["state"] == "sanitised":
            override = live_guard(params, "lms_sanitise", "sanitise (anonymise every real user of)")
            if override:
                result["live_override"] = override
                module.warn(
                    f"sanitising the Live site {override['site']} (allow_live), reason: {override['reason']}"
                )
        site = MoodleSite.from_params(module.params)
        if params["state"] == "sanitised":
            report = sanitise(site, params)
            result.update(
                changed=report["changed"],
                counts=report["counts"],
                settings_changed=report["settings_changed"],
                tables_missing=report["tables_missing"],
                seconds=report["seconds"],
                slowest_steps=report["slowest_steps"],
            )
        if module.check_mode and params["state"] == "sanitised":
            result.update(
                kept_users=report["kept_users"], keep_usernames_missing=report["keep_usernames_missing"]
            )
            module.exit_json(**result)
        check = verify(site, params)
    except MoodleError as exc:
        fail_module(module, exc, **result)
    result.update(
        kept_users=check["kept_users"],
        keep_usernames_missing=check["keep_usernames_missing"],
        verification=check,
    )
    if check["problems"]:
        module.fail_json(msg="QA still holds real people's data: " + "; ".join(check["problems"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

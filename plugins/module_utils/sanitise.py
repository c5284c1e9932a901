# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sanitise a Moodle site's personal data in bulk: the QA copy of a Live site keeps no real learners.

The plan (which rows go, which user fields are overwritten) is data in this file; a small PHP script
(``php/sanitise.py``) runs it through Moodle's own ``$DB`` (so the table prefix, the driver and the
connection come from the site's ``config.php``, PostgreSQL and MariaDB alike) as **set-based SQL in
one delegated transaction**: one ``UPDATE`` for every user, one ``DELETE`` per table, never one call
per user. Either everything is sanitised or nothing is. After the commit the script purges Moodle's
caches and kills every session through Moodle's APIs (sessions may live in Redis, not the database).

Who is kept ("allowed users"): users whose username is in ``keep_usernames`` or whose email is in
``keep_emails`` (the test accounts and the customer's named staff), the guest user, and optionally
the main administrator. Everyone else is anonymised (``user<id>``, ``user<id>@<email_domain>``) and
suspended (auth ``nologin``), or also marked deleted with their enrolments and role assignments gone.

Like ``moodle_cli`` it needs only the standard library (and ``moodle_cli``, ``php/sanitise.py``), so
it is unit-tested without Ansible.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.moodle_cli import MoodleError, MoodleSite, parse_helper_output
from ansible.module_utils.php.sanitise import SANITISE_PHP

#: In step conditions, this token becomes ``NOT IN (<ids of the allowed users>)``.
NOT_KEPT = "@NOT_KEPT@"

ANONYMOUS_FIRSTNAME = "Anonymous"

#: The user fields overwritten for every user who is not allowed. Values are SQL expressions:
#: ``@NAME@`` is ``'user' || id`` (portable through Moodle's ``sql_concat``), ``@EMAIL@`` is
#: ``'user' || id || '@' || <email_domain>``. Text fields that may identify a person are emptied.
USER_FIELDS = {
    "username": "@NAME@",
    "email": "@EMAIL@",
    "firstname": f"'{ANONYMOUS_FIRSTNAME}'",
    "lastname": "@NAME@",
    "auth": "'nologin'",
    "suspended": "1",
    "picture": "0",
    "emailstop": "1",
}
USER_FIELDS_EMPTIED = (
    "idnumber",
    "phone1",
    "phone2",
    "institution",
    "department",
    "address",
    "city",
    "country",
    "lastip",
    "secret",
    "description",
    "imagealt",
    "firstnamephonetic",
    "lastnamephonetic",
    "middlename",
    "alternatename",
    "moodlenetprofile",
)

_IN_CONVERSATION_OF_NOT_KEPT = (
    "conversationid IN (SELECT conversationid FROM {message_conversation_members} WHERE userid @NOT_KEPT@)"
)

#: Rows deleted, in this order (messages before the conversations and members they are found by).
#: ``table``: the table (skipped when the site lacks it: plugin tables); ``where``: the condition.
DELETE_STEPS = (
    # Profile fields, preferences, secrets of the user.
    {"table": "user_info_data", "where": "userid @NOT_KEPT@"},
    {"table": "user_preferences", "where": "userid @NOT_KEPT@"},
    {"table": "user_password_history", "where": "userid @NOT_KEPT@"},
    {"table": "user_password_resets", "where": "userid @NOT_KEPT@"},
    {"table": "user_private_key", "where": "userid @NOT_KEPT@"},
    {"table": "external_tokens", "where": "userid @NOT_KEPT@"},
    {"table": "auth_oauth2_linked_login", "where": "userid @NOT_KEPT@"},
    {"table": "badge_backpack", "where": "userid @NOT_KEPT@"},
    {"table": "user_devices", "where": "userid @NOT_KEPT@"},
    {
        "table": "message_airnotifier_devices",
        "where": "NOT EXISTS (SELECT 1 FROM {user_devices} d WHERE d.id = userdeviceid)",
    },
    # Messaging: personal messages and conversations, notifications, contacts.
    {"table": "messages", "where": f"useridfrom @NOT_KEPT@ OR {_IN_CONVERSATION_OF_NOT_KEPT}"},
    {
        "table": "message_conversation_actions",
        "where": f"userid @NOT_KEPT@ OR {_IN_CONVERSATION_OF_NOT_KEPT}",
    },
    {"table": "message_email_messages", "where": f"useridto @NOT_KEPT@ OR {_IN_CONVERSATION_OF_NOT_KEPT}"},
    {
        # Individual and self conversations (type 1, 3) of learners; group conversations (type 2)
        # belong to course groups and stay, without the learners' messages and memberships.
        "table": "message_conversations",
        "where": "type <> 2 AND id IN (SELECT conversationid FROM {message_conversation_members} "
        "WHERE userid @NOT_KEPT@)",
    },
    {
        "table": "message_conversation_members",
        "where": "userid @NOT_KEPT@ OR NOT EXISTS (SELECT 1 FROM {message_conversations} c "
        "WHERE c.id = conversationid)",
    },
    {
        "table": "message_user_actions",
        "where": "userid @NOT_KEPT@ OR NOT EXISTS (SELECT 1 FROM {messages} m WHERE m.id = messageid)",
    },
    {"table": "notifications", "where": "useridto @NOT_KEPT@ OR useridfrom @NOT_KEPT@"},
    {
        "table": "message_popup_notifications",
        "where": "NOT EXISTS (SELECT 1 FROM {notifications} n WHERE n.id = notificationid)",
    },
    {"table": "message", "where": "useridto @NOT_KEPT@ OR useridfrom @NOT_KEPT@"},
    {"table": "message_read", "where": "useridto @NOT_KEPT@ OR useridfrom @NOT_KEPT@"},
    {"table": "message_contacts", "where": "userid @NOT_KEPT@ OR contactid @NOT_KEPT@"},
    {"table": "message_contact_requests", "where": "userid @NOT_KEPT@ OR requesteduserid @NOT_KEPT@"},
    {"table": "message_users_blocked", "where": "userid @NOT_KEPT@ OR blockeduserid @NOT_KEPT@"},
    {"table": "sms_messages", "where": "recipientuserid @NOT_KEPT@"},
    # Logs that identify people (rows of not-logged-in users, userid 0, go too: failed logins
    # carry the username that was tried).
    {
        "table": "logstore_standard_log",
        "where": "userid @NOT_KEPT@ OR relateduserid @NOT_KEPT@ OR realuserid @NOT_KEPT@",
    },
    {"table": "log", "where": "userid @NOT_KEPT@"},
    {"table": "mnet_log", "where": "userid @NOT_KEPT@"},
    {"table": "portfolio_log", "where": "userid @NOT_KEPT@"},
    {"table": "mnet_session", "where": "userid @NOT_KEPT@"},
    {"table": "tool_dataprivacy_request", "where": "userid @NOT_KEPT@ OR requestedby @NOT_KEPT@"},
    # The user's own writing outside courses: blogs, notes about them, personal calendar events.
    {"table": "post", "where": "userid @NOT_KEPT@"},
    {"table": "blog_external", "where": "userid @NOT_KEPT@"},
    {"table": "event", "where": "eventtype = 'user' AND userid @NOT_KEPT@"},
    # Their private files, drafts and pictures (course files stay; their author is cleared below).
    {"table": "files", "where": "component = 'user' AND userid @NOT_KEPT@"},
    {"table": "task_adhoc", "where": "userid @NOT_KEPT@"},
)

#: Extra rows deleted with ``action: delete`` (the users are marked deleted, like Moodle's delete_user).
DELETE_USER_STEPS = (
    {"table": "user_enrolments", "where": "userid @NOT_KEPT@"},
    {"table": "role_assignments", "where": "userid @NOT_KEPT@"},
    {"table": "groups_members", "where": "userid @NOT_KEPT@"},
    {"table": "cohort_members", "where": "userid @NOT_KEPT@"},
)

#: Columns overwritten outside the user table: (table, column, value expression, condition).
UPDATE_STEPS = (
    {"table": "files", "set": {"author": "NULL"}, "where": "userid @NOT_KEPT@ AND author IS NOT NULL"},
)

#: ``unchanged`` is not an option of lms_sanitise: a first build (lms_restore) removes people from a
#: site whose own tier policy sets its mail, Live's delivering.
MAIL_MODES = ("disabled", "divert", "unchanged")


class SanitiseError(MoodleError):
    """Bad input or a site state that makes sanitising unsafe; nothing was changed."""


def user_update_step(action: str) -> dict:
    """The one ``UPDATE`` of the user table: every field of :data:`USER_FIELDS`, emptied fields, and
    ``deleted`` for ``action: delete``. Its condition skips users that are anonymised already, so a
    second run updates nothing."""
    fields = dict(USER_FIELDS)
    for name in USER_FIELDS_EMPTIED:
        fields[name] = "''"
    if action == "delete":
        fields["deleted"] = "1"
    return {"table": "user", "set": fields, "where": "id @NOT_KEPT@"}


def build_plan(params: dict) -> dict:
    """Validate the options and turn them into the JSON request the PHP script runs."""
    action = params.get("action", "suspend")
    if action not in ("suspend", "delete"):
        raise SanitiseError(f"action must be 'suspend' or 'delete', not {action!r}")
    domain = (params.get("email_domain") or "").strip().lstrip("@")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", domain):
        raise SanitiseError(
            f"email_domain {params.get('email_domain')!r} is not a domain name (e.g. 'invalid')"
        )
    mail = dict(params.get("mail") or {})
    mode = mail.get("mode", "disabled")
    if mode not in MAIL_MODES:
        raise SanitiseError(f"mail.mode must be one of {', '.join(MAIL_MODES)}, not {mode!r}")
    divert_to = mail.get("divert_to") or ""
    if mode == "divert" and "@" not in divert_to:
        raise SanitiseError("mail.mode 'divert' needs mail.divert_to, the mailbox that receives all mail")
    usernames = sorted({str(u).strip() for u in params.get("keep_usernames") or [] if str(u).strip()})
    bad = [u for u in usernames if u != u.lower()]
    if bad:
        raise SanitiseError(f"keep_usernames must be lower case (Moodle usernames are): {', '.join(bad)}")
    emails = sorted({str(e).strip().lower() for e in params.get("keep_emails") or [] if str(e).strip()})
    bad = [e for e in emails if "@" not in e]
    if bad:
        raise SanitiseError(f"keep_emails holds something that is not an email address: {', '.join(bad)}")
    settings = []
    for item in params.get("settings") or []:
        if not item.get("name"):
            raise SanitiseError(f"every entry of settings needs a name: {item!r}")
        plugin = item.get("plugin") or None
        settings.append(
            {
                "name": item["name"],
                "plugin": None if plugin == "core" else plugin,
                "value": _setting_value(item.get("value")),
            }
        )
    settings += mail_settings(mode, divert_to)
    steps = list(DELETE_STEPS) + (list(DELETE_USER_STEPS) if action == "delete" else [])
    return {
        "keep_usernames": usernames,
        "keep_emails": emails,
        "keep_guest": bool(params.get("keep_guest", True)),
        "keep_main_admin": bool(params.get("keep_main_admin", False)),
        "email_domain": domain,
        "action": action,
        "user_update": user_update_step(action),
        "delete_steps": steps,
        "update_steps": list(UPDATE_STEPS),
        "settings": settings,
        "purge": bool(params.get("purge", True)),
        "check_mode": bool(params.get("check_mode", False)),
    }


def _setting_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, dict)):
        raise SanitiseError(f"setting values are strings or numbers, not {type(value).__name__}: {value!r}")
    return str(value)


def mail_settings(mode: str, divert_to: str) -> list[dict]:
    """Moodle settings that keep a QA copy from mailing real people (``noemailever``, ``divertallemailsto``).

    Diverting unsets ``noemailever``, unless ``config.php`` forces it (``optional``): no mail at all is
    stricter than diverted mail, so a QA site whose config.php disables mail keeps it disabled."""
    if mode == "unchanged":
        return []
    if mode == "disabled":
        return [{"name": "noemailever", "plugin": None, "value": "1"}]
    return [
        {"name": "noemailever", "plugin": None, "value": None, "optional": True},
        {"name": "divertallemailsto", "plugin": None, "value": divert_to},
        {"name": "divertallemailsexcept", "plugin": None, "value": ""},
    ]


def verification_problems(report: dict) -> list[str]:
    """What the verification found wrong (empty: the site holds no active or addressable real users,
    and mail cannot reach real people)."""
    problems = []
    if report["active_not_allowed"]:
        problems.append(
            f"{report['active_not_allowed']} users that are not allowed are still active "
            f"(for example: {', '.join(report['active_samples'])})"
        )
    if report["real_emails"]:
        problems.append(
            f"{report['real_emails']} users that are not allowed still have an email address outside "
            f"@{report['email_domain']} (user ids: {', '.join(map(str, report['real_email_samples']))})"
        )
    mail = report["mail"]
    if not mail["noemailever"]:
        if not mail["divertallemailsto"]:
            problems.append("mail is neither disabled (noemailever) nor diverted (divertallemailsto)")
        elif mail["divertallemailsexcept"]:
            problems.append(
                "divertallemailsexcept is set: mail to addresses matching it would reach real people"
            )
    return problems


# --------------------------------------------------------------------------------------------------------
# Running the PHP sanitiser as the web user (MoodleSite.run_php, which runs the helper too).


def run_operation(site: MoodleSite, op: str, request: dict, timeout=None) -> dict:
    """Run one operation (``sanitise`` or ``verify``) of the PHP sanitiser on ``site``."""
    site.require_config()
    result = site.run_php(
        "sanitise", SANITISE_PHP, site.config_php, op, stdin=json.dumps(request), timeout=timeout
    )
    try:
        data = parse_helper_output(result.stdout)
    except MoodleError as exc:
        raise MoodleError(
            f"Moodle failed while running '{op}' (rc={result.rc})",
            rc=result.rc,
            stdout=result.stdout,
            stderr=result.stderr,
        ) from exc
    if data.get("failed"):
        raise SanitiseError(data.get("msg", f"'{op}' failed"), rc=result.rc)
    return data


def sanitise(site: MoodleSite, params: dict) -> dict:
    """Sanitise (or with ``check_mode`` count what would change). Returns the script's report."""
    return run_operation(site, "sanitise", build_plan(params))


def verify(site: MoodleSite, params: dict) -> dict:
    """Read-only verification; ``problems`` lists what is wrong."""
    plan = build_plan(dict(params, check_mode=True))
    report = run_operation(site, "verify", plan)
    report["problems"] = verification_problems(report)
    return report

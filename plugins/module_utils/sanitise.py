# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sanitise a Moodle site's personal data in bulk: the QA copy of a Live site keeps no real learners.

The plan (which rows go, which user fields are overwritten) is data in this file; a small PHP script
(:data:`SANITISE_PHP`) runs it through Moodle's own ``$DB`` (so the table prefix, the driver and the
connection come from the site's ``config.php``, PostgreSQL and MariaDB alike) as **set-based SQL in
one delegated transaction**: one ``UPDATE`` for every user, one ``DELETE`` per table, never one call
per user. Either everything is sanitised or nothing is. After the commit the script purges Moodle's
caches and kills every session through Moodle's APIs (sessions may live in Redis, not the database).

Who is kept ("allowed users"): users whose username is in ``keep_usernames`` or whose email is in
``keep_emails`` (the test accounts and the customer's named staff), the guest user, and optionally
the main administrator. Everyone else is anonymised (``user<id>``, ``user<id>@<email_domain>``) and
suspended (auth ``nologin``), or also marked deleted with their enrolments and role assignments gone.

Like ``moodle_cli`` it needs only the standard library (and ``moodle_cli``), so it is unit-tested
without Ansible.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from ansible.module_utils.moodle_cli import MoodleError, MoodleSite, parse_helper_output

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

MAIL_MODES = ("disabled", "divert")


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
# Running the PHP script as the web user, the way MoodleSite.helper runs its helper.


def run_script(site: MoodleSite, op: str, request: dict, timeout=None) -> dict:
    """Run one operation (``sanitise`` or ``verify``) of :data:`SANITISE_PHP` on ``site``."""
    site.require_config()
    fd, script = tempfile.mkstemp(prefix="lms-sanitise-", suffix=".php")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(SANITISE_PHP)
        os.chmod(script, 0o644)  # read by the web user; holds no secrets
        cmd = [*site.user_prefix(), site.php, script, site.config_php, op]
        result = site.runner(
            cmd, cwd=site.layout.cli_root, stdin=json.dumps(request), timeout=timeout or site.timeout
        )
    finally:
        os.unlink(script)
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
    return run_script(site, "sanitise", build_plan(params))


def verify(site: MoodleSite, params: dict) -> dict:
    """Read-only verification; ``problems`` lists what is wrong."""
    plan = build_plan(dict(params, check_mode=True))
    report = run_script(site, "verify", plan)
    report["problems"] = verification_problems(report)
    return report


SANITISE_PHP = r"""<?php
// three-instance sanitiser: set-based SQL through Moodle's $DB in one delegated transaction.
// argv: sanitise.php <config.php> <sanitise|verify>; the plan as JSON on stdin.
define('CLI_SCRIPT', true);
$lmsop = isset($argv[2]) ? $argv[2] : '';
$plan = json_decode(stream_get_contents(STDIN), true);

function lms_emit($data) {
    echo "\n@@LMS-RESULT@@" . json_encode($data, JSON_PARTIAL_OUTPUT_ON_ERROR) . "\n";
    exit(0);
}

function lms_fail($msg) {
    lms_emit(['failed' => true, 'msg' => $msg]);
}

require($argv[1]);

// The allowed users: ids (integers only, so they go into the SQL literally).
function lms_kept_users($plan) {
    global $CFG, $DB;
    $kept = [];
    $notfound = [];
    foreach ($plan['keep_usernames'] as $username) {
        $id = $DB->get_field('user', 'id', ['username' => $username, 'mnethostid' => $CFG->mnet_localhost_id,
                                            'deleted' => 0]);
        if ($id) {
            $kept[(int)$id] = $username;
        } else {
            $notfound[] = $username;
        }
    }
    if ($plan['keep_emails']) {
        list($insql, $params) = $DB->get_in_or_equal($plan['keep_emails'], SQL_PARAMS_NAMED, 'em');
        $rs = $DB->get_recordset_select('user', 'deleted = 0 AND LOWER(email) ' . $insql, $params, '',
            'id, username');
        foreach ($rs as $u) {
            $kept[(int)$u->id] = $u->username;
        }
        $rs->close();
    }
    if ($plan['keep_guest'] && !empty($CFG->siteguest)) {
        $kept[(int)$CFG->siteguest] = 'guest';
    }
    if ($plan['keep_main_admin']) {
        $admin = get_admin();
        if ($admin) {
            $kept[(int)$admin->id] = $admin->username;
        }
    }
    ksort($kept);
    return [$kept, $notfound];
}

function lms_sql($sql, $keptids) {
    $list = $keptids ? implode(',', array_map('intval', $keptids)) : '0';
    return str_replace('@NOT_KEPT@', "NOT IN ($list)", $sql);
}

function lms_user_update_sql($step, $keptids, $domain) {
    global $DB;
    $exprs = [
        '@NAME@' => $DB->sql_concat("'user'", 'id'),
        '@EMAIL@' => $DB->sql_concat("'user'", 'id', "'@'", ':domain'),
    ];
    $set = [];
    $differs = [];
    $params = [];
    $n = 0;
    foreach ($step['set'] as $field => $value) {
        $expr = strtr($value, $exprs);
        $set[] = "$field = $expr";
        // The same expression in the condition needs its own parameter name.
        $cond = $expr;
        if (strpos($cond, ':domain') !== false) {
            $n++;
            $cond = str_replace(':domain', ":domain$n", $cond);
            $params["domain$n"] = $domain;
        }
        // Integer fields compare as numbers; text fields may be NULL.
        $differs[] = ctype_digit($cond) ? "$field <> $cond" : "COALESCE($field, '') <> $cond";
    }
    $where = lms_sql($step['where'], $keptids) . ' AND (' . implode(' OR ', $differs) . ')';
    $params['domain'] = $domain;
    return ['UPDATE {user} SET ' . implode(', ', $set) . ' WHERE ' . $where, $where, $params];
}

function lms_table_exists($table) {
    global $DB;
    static $tables = null;
    if ($tables === null) {
        $tables = $DB->get_tables(false);
    }
    return isset($tables[$table]);
}

// A setting as the site sees it, and whether config.php forces it.
function lms_setting_state($s) {
    global $CFG;
    if ($s['plugin'] === null) {
        $forced = array_key_exists($s['name'], $CFG->config_php_settings);
        $current = get_config('core', $s['name']);
    } else {
        $forced = isset($CFG->forced_plugin_settings[$s['plugin']])
            && array_key_exists($s['name'], $CFG->forced_plugin_settings[$s['plugin']]);
        $current = get_config($s['plugin'], $s['name']);
    }
    return [$current === false ? null : (string)$current, $forced];
}

// Runs the statements; returns the seconds each took (the slow ones show where time goes).
function lms_apply($usersql, $userparams, $users, $steps, $settings) {
    global $DB;
    $took = [];
    $t = microtime(true);
    if ($users) {
        $DB->execute($usersql, $userparams);
        $took['user'] = round(microtime(true) - $t, 3);
    }
    foreach ($steps as list($step, $where)) {
        $t = microtime(true);
        if (isset($step['set'])) {
            $assign = [];
            foreach ($step['set'] as $f => $v) {
                $assign[] = "$f = $v";
            }
            $DB->execute("UPDATE {{$step['table']}} SET " . implode(', ', $assign) . " WHERE $where");
        } else {
            $DB->delete_records_select($step['table'], $where);
        }
        $took[$step['table'] . (isset($step['set']) ? ' (update)' : '')] = round(microtime(true) - $t, 3);
    }
    foreach ($settings as $s) {
        set_config($s['name'], $s['value'], $s['plugin']);
    }
    arsort($took);
    return array_slice($took, 0, 5, true);
}

function lms_op_sanitise($plan) {
    global $CFG, $DB;
    $start = microtime(true);
    $check = !empty($plan['check_mode']);
    list($kept, $notfound) = lms_kept_users($plan);
    $keptids = array_keys($kept);

    // Settings first: a setting that config.php forces to another value fails before any change.
    $settings = [];
    foreach ($plan['settings'] as $s) {
        list($current, $forced) = lms_setting_state($s);
        $want = $s['value'];
        $same = (string)$current === (string)$want; // unset and empty are the same to Moodle
        if ($forced) {
            if (!$same && empty($s['optional'])) {
                $label = $s['plugin'] ? "{$s['plugin']}/{$s['name']}" : $s['name'];
                lms_fail("$label is forced in config.php to '" . (string)$current . "', not '"
                    . (string)$want . "': change config.php's template or drop it from the settings");
            }
            continue;
        }
        if (!$same) {
            $settings[] = $s + ['before' => $current];
        }
    }

    list($usersql, $userwhere, $userparams) = lms_user_update_sql($plan['user_update'], $keptids,
        $plan['email_domain']);
    $countparams = $userparams;
    unset($countparams['domain']);
    $counts = ['user' => $DB->count_records_select('user', $userwhere, $countparams)];
    $skipped = [];
    $steps = [];
    foreach (array_merge($plan['delete_steps'], $plan['update_steps']) as $step) {
        if (!lms_table_exists($step['table'])) {
            $skipped[] = $step['table'];
            continue;
        }
        $where = lms_sql($step['where'], $keptids);
        $label = isset($step['set']) ? $step['table'] . ' (' . implode(', ', array_keys($step['set'])) . ')'
                                     : $step['table'];
        $count = $DB->count_records_select($step['table'], $where);
        $counts[$label] = ($counts[$label] ?? 0) + $count;
        // Orphan steps (NOT EXISTS) find rows only after the steps before them: they always run.
        if ($count || strpos($step['where'], 'NOT EXISTS') !== false) {
            $steps[] = [$step, $where];
        }
    }
    $counted = microtime(true);

    $changed = array_sum($counts) > 0 || !empty($settings);
    $slowest = [];
    if (!$check && $changed) {
        $transaction = $DB->start_delegated_transaction();
        try {
            $slowest = lms_apply($usersql, $userparams, $counts['user'], $steps, $settings);
        } catch (Throwable $e) {
            $DB->force_transaction_rollback();
            throw $e;
        }
        $transaction->allow_commit();
    }
    $committed = microtime(true);
    $purged = false;
    if (!$check && $changed && $plan['purge']) {
        \core\session\manager::kill_all_sessions();
        purge_all_caches();
        $purged = true;
    }
    return [
        'changed' => $changed,
        'counts' => $counts,
        'settings_changed' => array_map(function($s) {
            return ['name' => $s['name'], 'plugin' => $s['plugin'], 'before' => $s['before'],
                    'after' => $s['value']];
        }, $settings),
        'kept_users' => array_values($kept),
        'keep_usernames_missing' => $notfound,
        'tables_missing' => $skipped,
        'dbtype' => $CFG->dbtype,
        'seconds' => [
            'count' => round($counted - $start, 3),
            'transaction' => round($committed - $counted, 3),
            'purge' => round(microtime(true) - $committed, 3),
            'total' => round(microtime(true) - $start, 3),
        ],
        'purged' => $purged,
        'slowest_steps' => (object)$slowest,
    ];
}

function lms_op_verify($plan) {
    global $CFG, $DB;
    list($kept, $notfound) = lms_kept_users($plan);
    $keptids = array_keys($kept);
    $active = lms_sql('id @NOT_KEPT@ AND deleted = 0 AND suspended = 0', $keptids);
    $domain = $plan['email_domain'];
    $notdomain = $DB->sql_like('email', ':domain', false, false, true);
    $real = lms_sql("id @NOT_KEPT@ AND email LIKE '%@%' AND $notdomain", $keptids);
    $params = ['domain' => '%@' . $DB->sql_like_escape($domain)];
    return [
        'kept_users' => array_values($kept),
        'keep_usernames_missing' => $notfound,
        'active_not_allowed' => $DB->count_records_select('user', $active),
        'active_samples' => array_values(array_map(function($u) {
            return $u->username;
        }, $DB->get_records_select('user', $active, [], 'id', 'id, username', 0, 5))),
        'real_emails' => $DB->count_records_select('user', $real, $params),
        'real_email_samples' => array_map('intval',
            array_keys($DB->get_records_select('user', $real, $params, 'id', 'id', 0, 5))),
        'email_domain' => $domain,
        'mail' => [
            'noemailever' => !empty($CFG->noemailever),
            'divertallemailsto' => empty($CFG->divertallemailsto) ? '' : $CFG->divertallemailsto,
            'divertallemailsexcept' => empty($CFG->divertallemailsexcept) ? '' : $CFG->divertallemailsexcept,
        ],
    ];
}

$lmsfn = 'lms_op_' . $lmsop;
if (!function_exists($lmsfn) || !is_array($plan)) {
    lms_fail("unknown operation '$lmsop' or no plan on stdin");
}
try {
    lms_emit($lmsfn($plan));
} catch (Throwable $e) {
    $info = isset($e->debuginfo) ? ' (' . $e->debuginfo . ')' : '';
    lms_fail('nothing was changed (the transaction was rolled back): ' . get_class($e) . ': '
        . $e->getMessage() . $info);
}
"""

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sanitiser (module_utils sanitise): the plan, as JSON on stdin, run as set-based SQL through
Moodle's ``$DB`` in one delegated transaction (operation ``sanitise``), or checked read-only
(``verify``); the report as JSON after the ``@@LMS-RESULT@@`` marker."""

try:
    from ansible.module_utils.php import ANSWER_PHP
except ImportError:  # unit tests, tools/ and the backup timer's copy on a host: siblings on sys.path
    from php import ANSWER_PHP

SANITISE_PHP = (
    r"""<?php
// three-instance sanitiser: set-based SQL through Moodle's $DB in one delegated transaction.
// argv: sanitise.php <config.php> <sanitise|verify>; the plan as JSON on stdin.
define('CLI_SCRIPT', true);
$lmsop = isset($argv[2]) ? $argv[2] : '';
$plan = json_decode(stream_get_contents(STDIN), true);

"""
    + ANSWER_PHP
    + r"""
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
)

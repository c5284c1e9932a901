# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PHP helper (``MoodleSite.helper`` in moodle_cli): one operation through Moodle's own APIs
per run (facts, settings, maintenance, users, courses), its parameters as JSON on stdin, its answer
as JSON after the ``@@LMS-RESULT@@`` marker."""

try:
    from ansible.module_utils.php import ANSWER_PHP
except ImportError:  # unit tests, tools/ and the backup timer's copy on a host: siblings on sys.path
    from php import ANSWER_PHP

HELPER_PHP = (
    r"""<?php
// three-instance helper: one operation through Moodle's own APIs; answers JSON after a marker line.
// argv: helper.php <config.php> <operation>; parameters as JSON on stdin (secrets never on argv).
define('CLI_SCRIPT', true);
$lmsop = isset($argv[2]) ? $argv[2] : '';
if (in_array($lmsop, ['facts', 'people'])) {
    define('CACHE_DISABLE_ALL', true); // fresh plugin list even when new code is not upgraded yet
}
$lmsin = json_decode(stream_get_contents(STDIN), true);
if (!is_array($lmsin)) {
    $lmsin = [];
}

"""
    + ANSWER_PHP
    + r"""
require($argv[1]);

function lms_op_facts($in) {
    global $CFG, $DB;
    $r = [
        'installed' => !empty($CFG->version),
        'db_version' => isset($CFG->version) ? (string)$CFG->version : null,
        'db_release' => isset($CFG->release) ? $CFG->release : null,
        'db_branch' => isset($CFG->branch) ? (string)$CFG->branch : null,
        'wwwroot' => $CFG->wwwroot,
        'dataroot' => $CFG->dataroot,
        'dirroot' => $CFG->dirroot,
        'dbtype' => $CFG->dbtype,
        'database_tables' => count($DB->get_tables(false)),
        // what the host offers, for the new code's environment.xml (environment.py)
        'php_version' => PHP_VERSION,
        'php_extensions' => get_loaded_extensions(),
        'db_family' => $DB->get_dbfamily(),
        'db_server_version' => (string)($DB->get_server_info()['version'] ?? ''),
        'cli_maintenance' => file_exists("$CFG->dataroot/climaintenance.html"),
        'web_maintenance' => !empty($CFG->maintenance_enabled),
        'maintenance_later' => isset($CFG->maintenance_later) ? (int)$CFG->maintenance_later : null,
        'maintenance_message' => isset($CFG->maintenance_message) ? (string)$CFG->maintenance_message : '',
        'nonstandard_plugins' => [],
        'missing_plugins' => [],
        'plugins_to_upgrade' => [],
    ];
    if (!$r['installed']) {
        return $r;
    }
    $pm = core_plugin_manager::instance();
    foreach ($pm->get_plugins() as $type => $plugins) {
        foreach ($plugins as $name => $plugin) {
            $status = $plugin->get_status();
            $info = [
                'component' => $plugin->component,
                'version' => $plugin->versiondisk === null ? null : (string)$plugin->versiondisk,
                'db_version' => $plugin->versiondb === null ? null : (string)$plugin->versiondb,
                'release' => isset($plugin->release) ? $plugin->release : null,
                'status' => $status,
            ];
            if ($status === core_plugin_manager::PLUGIN_STATUS_MISSING) {
                $r['missing_plugins'][] = $info;
            } else if (!$plugin->is_standard()) {
                $r['nonstandard_plugins'][] = $info;
            }
            if (in_array($status, ['new', 'upgrade', 'downgrade', 'delete'])) {
                $r['plugins_to_upgrade'][] = $info;
            }
        }
    }
    return $r;
}

function lms_op_config_get($in) {
    global $CFG;
    $out = [];
    foreach ($in['settings'] as $s) {
        $component = empty($s['component']) || $s['component'] === 'core' ? null : $s['component'];
        $name = $s['name'];
        if ($component === null) {
            $forced = array_key_exists($name, $CFG->config_php_settings);
            $value = get_config('core', $name);
        } else {
            $forced = isset($CFG->forced_plugin_settings[$component])
                && array_key_exists($name, $CFG->forced_plugin_settings[$component]);
            $value = get_config($component, $name);
        }
        $out[] = [
            'name' => $name,
            'component' => $component === null ? 'core' : $component,
            'value' => $value === false ? null : (is_scalar($value) ? (string)$value : json_encode($value)),
            'forced' => $forced,
        ];
    }
    return ['settings' => $out];
}

// Plugins' enabled state as Moodle's plugin manager keeps it (modules.visible, enrol_plugins_enabled,
// auth, ...: in the database, not in config.php). Every plugin is checked before any is changed.
function lms_op_plugin_state($in) {
    $types = core_component::get_plugin_types();
    $pm = core_plugin_manager::instance();
    $plan = [];
    foreach ($in['plugins'] as $p) {
        $component = (string)$p['component'];
        list($type, $name) = core_component::normalize_component($component);
        if ($type === 'core' || !isset($types[$type])) {
            lms_fail("$component is not a plugin component (no plugin type '$type')");
        }
        $info = $pm->get_plugin_info($component);
        $installed = $info !== null && !empty($info->rootdir) && $info->versiondb !== null;
        $before = $installed ? $info->is_enabled() === true : null;
        $want = isset($p['enabled']) ? (bool)$p['enabled'] : null;
        $class = core_plugin_manager::resolve_plugininfo_class($type);
        if ($want !== null && $installed && $before !== $want && !method_exists($class, 'enable_plugin')) {
            // (Moodle < 3.11 and Totara: no enable_plugin() for scripts; the admin UI switches it)
            lms_fail("this site's code cannot enable or disable $component from a script (its plugin manager"
                . " has no enable_plugin()): switch it in the admin UI (nothing was changed)");
        }
        if ($want !== null && $installed && method_exists($class, 'plugintype_supports_disabling')
                && !$class::plugintype_supports_disabling()) {
            lms_fail("plugins of type $type are not enabled or disabled through Moodle's plugin manager"
                . " ($component: its own settings say whether it is on)");
        }
        if ($want === true && !$installed) {
            lms_fail("$component is not installed on this site, so it cannot be enabled: add it to the"
                . " release (nothing was changed)");
        }
        $plan[] = [$component, $type, $name, $installed, $before, $want, $class];
    }
    $out = [];
    foreach ($plan as list($component, $type, $name, $installed, $before, $want, $class)) {
        $after = $want === null || !$installed ? $before : $want;
        if ($installed && $want !== null && $before !== $want && empty($in['check_mode'])) {
            $class::enable_plugin($name, $want ? 1 : 0);
            core_plugin_manager::reset_caches();
            $pm = core_plugin_manager::instance();
            $after = $pm->get_plugin_info($component)->is_enabled() === true;
            if ($after !== $want) {
                lms_fail("Moodle's plugin manager did not " . ($want ? 'enable' : 'disable') . " $component");
            }
        }
        $out[] = ['component' => $component, 'installed' => $installed, 'before' => $before,
                  'after' => $after, 'changed' => $installed && $want !== null && $before !== $want];
    }
    return ['plugins' => $out];
}

function lms_op_maintenance_status($in) {
    global $CFG;
    return [
        'cli_maintenance' => file_exists("$CFG->dataroot/climaintenance.html"),
        'web_maintenance' => !empty($CFG->maintenance_enabled),
        'maintenance_later' => isset($CFG->maintenance_later) ? (int)$CFG->maintenance_later : null,
        'maintenance_message' => isset($CFG->maintenance_message) ? (string)$CFG->maintenance_message : '',
    ];
}

function lms_op_maintenance_message($in) {
    global $CFG;
    require_once($CFG->libdir . '/adminlib.php');
    $message = (string)$in['message'];
    $current = isset($CFG->maintenance_message) ? (string)$CFG->maintenance_message : '';
    $changed = $current !== $message;
    if ($changed && empty($in['check_mode'])) {
        set_config('maintenance_message', $message);
        if (file_exists("$CFG->dataroot/climaintenance.html")) {
            enable_cli_maintenance_mode(); // rewrite the page that is shown now
        }
    }
    return ['changed' => $changed, 'before' => $current, 'after' => $message];
}

function lms_user_view($user) {
    global $CFG;
    if (!$user) {
        return null;
    }
    $admins = array_filter(explode(',', $CFG->siteadmins));
    return [
        'id' => (int)$user->id,
        'username' => $user->username,
        'auth' => $user->auth,
        'firstname' => $user->firstname,
        'lastname' => $user->lastname,
        'email' => $user->email,
        'idnumber' => $user->idnumber,
        'suspended' => (bool)$user->suspended,
        'site_admin' => in_array((string)$user->id, $admins, true),
    ];
}

function lms_enrolments_view($userid) {
    global $DB;
    if (!$userid) {
        return [];
    }
    $sql = "SELECT ue.id, c.shortname AS course, e.enrol, ue.status, ctx.id AS contextid
              FROM {user_enrolments} ue
              JOIN {enrol} e ON e.id = ue.enrolid
              JOIN {course} c ON c.id = e.courseid
              JOIN {context} ctx ON ctx.instanceid = c.id AND ctx.contextlevel = :level
             WHERE ue.userid = :userid
          ORDER BY c.shortname, e.enrol";
    $out = [];
    foreach ($DB->get_records_sql($sql, ['userid' => $userid, 'level' => CONTEXT_COURSE]) as $row) {
        $roles = $DB->get_fieldset_sql(
            "SELECT r.shortname FROM {role_assignments} ra JOIN {role} r ON r.id = ra.roleid
              WHERE ra.userid = ? AND ra.contextid = ? ORDER BY r.shortname",
            [$userid, $row->contextid]
        );
        $out[] = ['course' => $row->course, 'method' => $row->enrol, 'active' => (int)$row->status === 0,
                  'roles' => $roles];
    }
    return $out;
}

function lms_manual_instance($courseid) {
    foreach (enrol_get_instances($courseid, false) as $instance) {
        if ($instance->enrol === 'manual') {
            return $instance;
        }
    }
    return null;
}

function lms_op_user($in) {
    global $CFG, $DB;
    require_once($CFG->dirroot . '/user/lib.php');
    require_once($CFG->libdir . '/enrollib.php');
    $check = !empty($in['check_mode']);
    $changes = [];
    $warnings = [];
    $username = $in['username'];
    if (clean_param($username, PARAM_USERNAME) !== $username) {
        lms_fail("'$username' is not a valid Moodle username: "
            . "use lower case letters, digits and _ - . @ only");
    }
    $params = ['username' => $username, 'mnethostid' => $CFG->mnet_localhost_id, 'deleted' => 0];
    $user = $DB->get_record('user', $params);
    $before = lms_user_view($user);
    $beforeenrol = lms_enrolments_view($user ? $user->id : 0);
    $state = $in['state'];
    $admins = array_values(array_filter(explode(',', $CFG->siteadmins)));

    if ($user && ($user->id == $CFG->siteguest)) {
        lms_fail("'$username' is the guest account; it cannot be managed with this module");
    }

    if ($state === 'absent') {
        if (!$user) {
            return ['changed' => false, 'changes' => [], 'before' => null, 'after' => null];
        }
        if (in_array((string)$user->id, $admins, true) && count($admins) === 1) {
            lms_fail("refusing to delete '$username': it is the only site administrator");
        }
        if (!$check) {
            if (in_array((string)$user->id, $admins, true)) {
                set_config('siteadmins', implode(',', array_diff($admins, [(string)$user->id])));
            }
            delete_user($user);
        }
        return ['changed' => true, 'changes' => ['deleted'], 'before' => $before, 'after' => null,
                'enrolments_before' => $beforeenrol, 'enrolments_after' => []];
    }

    // Resolve every course and role before changing anything: bad input changes nothing.
    $wanted = [];
    foreach (isset($in['enrolments']) ? $in['enrolments'] : [] as $e) {
        $course = $DB->get_record('course', ['shortname' => $e['course']]);
        if (!$course || $course->id == SITEID) {
            lms_fail("course '{$e['course']}' does not exist on this site; create it first (lms_course)");
        }
        $role = $DB->get_record('role', ['shortname' => $e['role']]);
        if (!$role) {
            lms_fail("role '{$e['role']}' does not exist on this site "
                . "(roles are shortnames: student, editingteacher, teacher, manager)");
        }
        $wanted[] = [$e, $course, $role];
    }
    $manual = enrol_get_plugin('manual');
    if (!$manual && $wanted) {
        lms_fail("the manual enrolment plugin is not enabled on this site; enable it to enrol users");
    }

    $password = isset($in['password']) ? $in['password'] : null;
    if ($user && $password !== null && $in['update_password'] === 'always'
            && !empty($in['enforce_password_policy'])
            && !validate_internal_user_password(clone $user, $password)) {
        $errmsg = '';
        if (!check_password_policy($password, $errmsg, $user)) {
            lms_fail("the password for '$username' does not meet the site's password policy: "
                . strip_tags($errmsg));
        }
    }
    if ($user && isset($in['site_admin']) && $in['site_admin'] === false && count($admins) === 1
            && in_array((string)$user->id, $admins, true)) {
        lms_fail("refusing to drop site_admin from '$username': it is the only site administrator");
    }

    $suspended = $state === 'suspended' ? 1 : 0;
    $fields = ['auth', 'firstname', 'lastname', 'email', 'idnumber'];
    $userid = $user ? (int)$user->id : 0;

    if (!$user) {
        $missing = [];
        foreach (['firstname', 'lastname', 'email'] as $f) {
            if (!isset($in[$f]) || $in[$f] === '') {
                $missing[] = $f;
            }
        }
        if ($missing) {
            lms_fail("cannot create user '$username': give " . implode(', ', $missing));
        }
        $new = (object)[
            'username' => $username,
            'auth' => isset($in['auth']) ? $in['auth'] : 'manual',
            'confirmed' => 1,
            'mnethostid' => $CFG->mnet_localhost_id,
            'suspended' => $suspended,
        ];
        foreach ($fields as $f) {
            if (isset($in[$f])) {
                $new->$f = $in[$f];
            }
        }
        if (!exists_auth_plugin($new->auth)) {
            lms_fail("auth plugin '{$new->auth}' does not exist on this site");
        }
        if ($password !== null && !empty($in['enforce_password_policy'])) {
            $errmsg = '';
            if (!check_password_policy($password, $errmsg)) {
                lms_fail("the password for '$username' does not meet the site's password policy: "
                . strip_tags($errmsg));
            }
        }
        $changes[] = 'created';
        if (!$check) {
            // user_create_user() applies the site's password policy to any password it is given;
            // the policy was checked above when asked for, so the password is set on its own.
            $new->password = '';
            $userid = user_create_user($new, false, false);
            $user = $DB->get_record('user', ['id' => $userid]);
            if ($password !== null) {
                update_internal_user_password($user, $password);
                $user = $DB->get_record('user', ['id' => $userid]);
            }
        }
    } else {
        $update = (object)['id' => $user->id];
        foreach ($fields as $f) {
            if (isset($in[$f]) && (string)$user->$f !== (string)$in[$f]) {
                if ($f === 'auth' && !exists_auth_plugin($in[$f])) {
                    lms_fail("auth plugin '{$in[$f]}' does not exist on this site");
                }
                $update->$f = $in[$f];
                $changes[] = $f;
            }
        }
        if ((int)$user->suspended !== $suspended) {
            if ($suspended && in_array((string)$user->id, $admins, true)) {
                lms_fail("refusing to suspend '$username': it is a site administrator "
                    . "(drop site_admin first)");
            }
            $update->suspended = $suspended;
            $changes[] = $suspended ? 'suspended' : 'unsuspended';
        }
        if (count((array)$update) > 1 && !$check) {
            user_update_user($update, false, false);
            if ($suspended) {
                \core\session\manager::destroy_user_sessions($user->id);
            }
            $user = $DB->get_record('user', ['id' => $user->id]);
        }
        if ($password !== null && $in['update_password'] === 'always') {
            $auth = get_auth_plugin(isset($update->auth) ? $update->auth : $user->auth);
            if ($auth->prevent_local_passwords()) {
                $warnings[] = "password not set: auth '{$auth->authtype}' keeps no local passwords";
            } else if (!validate_internal_user_password(clone $user, $password)) {
                $changes[] = 'password';
                if (!$check) {
                    update_internal_user_password($user, $password);
                }
            }
        }
    }

    if (isset($in['site_admin']) && $in['site_admin'] !== null) {
        $isadmin = $userid && in_array((string)$userid, $admins, true);
        if ((bool)$in['site_admin'] !== $isadmin) {
            if (!$in['site_admin'] && count($admins) === 1) {
                lms_fail("refusing to drop site_admin from '$username': it is the only site administrator");
            }
            $changes[] = $in['site_admin'] ? 'site_admin added' : 'site_admin removed';
            if (!$check) {
                $admins = $in['site_admin'] ? array_merge($admins, [(string)$userid])
                                            : array_values(array_diff($admins, [(string)$userid]));
                set_config('siteadmins', implode(',', $admins));
            }
        }
    }

    foreach ($wanted as list($e, $course, $role)) {
        $context = context_course::instance($course->id);
        $instance = lms_manual_instance($course->id);
        $ue = ($instance && $userid)
            ? $DB->get_record('user_enrolments', ['enrolid' => $instance->id, 'userid' => $userid]) : null;
        $label = "{$e['course']} as {$e['role']}";
        if ($e['state'] === 'absent') {
            if ($ue) {
                $changes[] = "unenrolled from {$e['course']}";
                if (!$check) {
                    $manual->unenrol_user($instance, $userid);
                }
            }
            continue;
        }
        if (!$instance) {
            $changes[] = "manual enrolment added to {$e['course']}";
            if (!$check) {
                $manual->add_default_instance($course);
                $instance = lms_manual_instance($course->id);
            }
        }
        if (!$ue) {
            $changes[] = "enrolled in $label";
            if (!$check) {
                $manual->enrol_user($instance, $userid, $role->id);
            }
            continue;
        }
        if ((int)$ue->status !== ENROL_USER_ACTIVE) {
            $changes[] = "enrolment in {$e['course']} reactivated";
            if (!$check) {
                $manual->update_user_enrol($instance, $userid, ENROL_USER_ACTIVE);
            }
        }
        if (!user_has_role_assignment($userid, $role->id, $context->id)) {
            $changes[] = "role {$e['role']} in {$e['course']}";
            if (!$check) {
                role_assign($role->id, $userid, $context->id);
            }
        }
    }

    $after = $check ? null : lms_user_view($DB->get_record('user', ['id' => $userid]));
    return [
        'changed' => !empty($changes),
        'changes' => $changes,
        'warnings' => $warnings,
        'before' => $before,
        'after' => $after,
        'enrolments_before' => $beforeenrol,
        'enrolments_after' => $check ? null : lms_enrolments_view($userid),
    ];
}

function lms_course_view($course) {
    global $DB;
    if (!$course) {
        return null;
    }
    $category = $DB->get_record('course_categories', ['id' => $course->category]);
    return [
        'id' => (int)$course->id,
        'shortname' => $course->shortname,
        'fullname' => $course->fullname,
        'idnumber' => $course->idnumber,
        'category' => $category ? $category->name : null,
        'category_id' => (int)$course->category,
        'category_idnumber' => $category ? $category->idnumber : null,
        'visible' => (bool)$course->visible,
        'format' => $course->format,
        'summary' => $course->summary,
        'modules' => (int)$DB->count_records('course_modules', ['course' => $course->id]),
    ];
}

function lms_op_course_info($in) {
    global $DB;
    $course = null;
    if (!empty($in['id'])) {
        $course = $DB->get_record('course', ['id' => $in['id']]);
    } else if (isset($in['shortname'])) {
        $course = $DB->get_record('course', ['shortname' => $in['shortname']]);
    }
    if ($course && $course->id == SITEID) {
        lms_fail("'{$course->shortname}' is the site's front page, not a course");
    }
    $category = null;
    if (isset($in['category']) && $in['category'] !== null && $in['category'] !== '') {
        $cat = $in['category'];
        $category = $DB->get_record('course_categories', ['idnumber' => $cat]);
        if (!$category && ctype_digit((string)$cat)) {
            $category = $DB->get_record('course_categories', ['id' => (int)$cat]);
        }
        if (!$category) {
            $matches = $DB->get_records('course_categories', ['name' => $cat]);
            if (count($matches) > 1) {
                lms_fail("several course categories are named '$cat': give its idnumber or id instead");
            }
            $category = $matches ? reset($matches) : null;
        }
    }
    $view = lms_course_view($course);
    if ($view) {
        $marker = get_config('three_instance', 'course_' . $course->id . '_restored');
        $view['restored_sha256'] = $marker ?: null;
    }
    return [
        'course' => $view,
        'category' => $category ? ['id' => (int)$category->id, 'name' => $category->name,
                                   'idnumber' => $category->idnumber] : null,
        'default_category' => (int)$DB->get_field_sql(
            'SELECT MIN(id) FROM {course_categories} WHERE parent = 0'),
    ];
}

function lms_op_course_delete($in) {
    // Like admin/cli/delete_course.php --disablerecyclebin, which in 5.1 dies half-way
    // ("Call to undefined function course_get_format()": it does not load course/lib.php).
    global $CFG, $DB;
    require_once($CFG->dirroot . '/course/lib.php');
    $course = $DB->get_record('course', ['id' => $in['courseid']], '*', MUST_EXIST);
    if ($course->id == SITEID) {
        lms_fail('refusing to delete the front page');
    }
    \core\session\manager::set_user(get_admin());
    $start = microtime(true);
    $CFG->forced_plugin_settings = array_merge($CFG->forced_plugin_settings,
        ['tool_recyclebin' => ['coursebinenable' => false, 'categorybinenable' => false]]);
    core_php_time_limit::raise();
    delete_course($course, false);
    fix_course_sortorder();
    return ['changed' => true, 'seconds' => round(microtime(true) - $start, 3)];
}

function lms_op_course_backup($in) {
    global $CFG, $DB;
    require_once($CFG->dirroot . '/backup/util/includes/backup_includes.php');
    $admin = get_admin();
    if (!$admin) {
        lms_fail('the site has no administrator to run the backup as');
    }
    \core\session\manager::set_user($admin);
    $DB->get_record('course', ['id' => $in['courseid']], 'id', MUST_EXIST);
    core_php_time_limit::raise();
    $bc = new backup_controller(backup::TYPE_1COURSE, $in['courseid'], backup::FORMAT_MOODLE,
        backup::INTERACTIVE_NO, backup::MODE_GENERAL, $admin->id);
    // User data only when asked: settings that depend on 'users' (enrolments, role assignments,
    // user completion, logs, grade history...) follow it.
    $users = $bc->get_plan()->get_setting('users');
    if ((bool)$users->get_value() !== (bool)$in['users']) {
        if ($users->get_status() !== base_setting::NOT_LOCKED) {
            $bc->destroy();
            lms_fail('the backup setting "include user data" is locked on this site '
                . '(Site administration > Courses > Backups > General backup defaults)');
        }
        $users->set_value((bool)$in['users']);
    }
    $bc->execute_plan();
    $file = $bc->get_results()['backup_destination'];
    $file->copy_content_to($in['file']);
    $file->delete();
    $bc->destroy();
    return ['file' => $in['file'], 'users' => (bool)$in['users']];
}

function lms_op_course_restore($in) {
    global $CFG, $DB, $USER;
    require_once($CFG->dirroot . '/backup/util/includes/restore_includes.php');
    $admin = get_admin();
    if (!$admin) {
        lms_fail('the site has no administrator to run the restore as');
    }
    \core\session\manager::set_user($admin);
    $file = $in['file'];
    if (!is_readable($file)) {
        lms_fail("backup file $file cannot be read by the web user; "
            . "make it readable (for example mode 0640, group of the web user)");
    }
    $start = microtime(true);
    $backupdir = restore_controller::get_tempdir_name(SITEID, $USER->id);
    $path = make_backup_temp_directory($backupdir);
    get_file_packer('application/vnd.moodle.backup')->extract_to_pathname($file, $path);
    $existing = null;
    if (!empty($in['courseid'])) {
        $courseid = (int)$in['courseid'];
        $existing = $DB->get_record('course', ['id' => $courseid], '*', MUST_EXIST);
        $target = $in['mode'] === 'add' ? backup::TARGET_EXISTING_ADDING : backup::TARGET_EXISTING_DELETING;
    } else {
        $category = $DB->get_record('course_categories', ['id' => $in['categoryid']], '*', MUST_EXIST);
        $courseid = restore_dbops::create_new_course($in['fullname'], $in['shortname'] . '_restoring',
            $category->id);
        $target = backup::TARGET_NEW_COURSE;
    }
    $rc = new restore_controller($backupdir, $courseid, backup::INTERACTIVE_NO, backup::MODE_GENERAL,
        $admin->id, $target);
    if ($rc->get_type() !== backup::TYPE_1COURSE) {
        $rc->destroy();
        lms_fail("$file is not a course backup");
    }
    $plan = $rc->get_plan();
    if ($plan->setting_exists('users')) {
        $plan->get_setting('users')->set_value(!empty($in['include_users']));
    }
    // The course keeps its own names (a backup from QA carries QA's names).
    $shortname = $existing ? $existing->shortname : $in['shortname'];
    $fullname = !empty($in['fullname']) ? $in['fullname'] : $existing->fullname;
    $plan->get_setting('course_shortname')->set_value($shortname);
    $plan->get_setting('course_fullname')->set_value($fullname);
    if ($target === backup::TARGET_EXISTING_DELETING) {
        $plan->get_setting('overwrite_conf')->set_value(true);
        restore_dbops::delete_course_content($courseid, ['keep_roles_and_enrolments' => 1,
            'keep_groups_and_groupings' => 1]);
    }
    if (!$rc->execute_precheck()) {
        $results = $rc->get_precheck_results();
        if (!empty($results['errors'])) {
            $rc->destroy();
            lms_fail('the restore precheck failed: ' . implode('; ', $results['errors']));
        }
    }
    $rc->execute_plan();
    $rc->destroy();
    $DB->set_field('course', 'shortname', $shortname, ['id' => $courseid]);
    $DB->set_field('course', 'fullname', $fullname, ['id' => $courseid]);
    rebuild_course_cache($courseid, true);
    set_config('course_' . $courseid . '_restored', $in['sha256'], 'three_instance');
    return ['changed' => true, 'courseid' => $courseid, 'seconds' => round(microtime(true) - $start, 3),
            'course' => lms_course_view($DB->get_record('course', ['id' => $courseid]))];
}

function lms_op_people($in) {
    // Who a site serves: its users that are not the guest or a site administrator, and its courses
    // (a first build takes only a site where both are none). Read only. An empty database (a site
    // converged without an install) has neither.
    global $CFG, $DB;
    if (empty($CFG->version)) {
        return ['installed' => false, 'users' => 0, 'usernames' => [], 'admins' => [], 'courses' => 0,
                'restored_backup' => null, 'adopted_from' => null, 'first_build' => null];
    }
    $admins = array_values(array_filter(array_map('intval', explode(',', $CFG->siteadmins ?? ''))));
    [$notadmin, $params] = $admins
        ? $DB->get_in_or_equal($admins, SQL_PARAMS_NAMED, 'adm', false)
        : ['<> 0', []];
    $where = "deleted = 0 AND username <> :guest AND id $notadmin";
    $params['guest'] = 'guest';
    $adminnames = [];
    if ($admins) {
        [$isadmin, $adminparams] = $DB->get_in_or_equal($admins);
        $adminnames = $DB->get_fieldset_select('user', 'username', "deleted = 0 AND id $isadmin",
            $adminparams);
        sort($adminnames);
    }
    return [
        'installed' => true,
        'users' => $DB->count_records_select('user', $where, $params),
        'usernames' => array_values(array_map(fn($u) => $u->username,
            $DB->get_records_select('user', $where, $params, 'id', 'id, username', 0, 10))),
        'admins' => array_values($adminnames),
        'courses' => $DB->count_records_select('course', 'id <> ?', [SITEID]),
        'restored_backup' => get_config('three_instance', 'restored_backup') ?: null,
        'adopted_from' => get_config('three_instance', 'adopted_from') ?: null,
        'first_build' => get_config('three_instance', 'first_build') ?: null,
    ];
}

$lmsfn = 'lms_op_' . $lmsop;
if (!function_exists($lmsfn)) {
    lms_fail("unknown helper operation '$lmsop'");
}
try {
    lms_emit($lmsfn($lmsin));
} catch (Throwable $e) {
    $info = isset($e->debuginfo) ? ' (' . $e->debuginfo . ')' : '';
    lms_fail(get_class($e) . ': ' . $e->getMessage() . $info);
}
"""
)

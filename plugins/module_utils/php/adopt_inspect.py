# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads a proof-of-concept site's database, loaded into a scratch site that runs the target's code
(``adopt`` in backup/adopt.py): its Moodle version, its plugins (the non-standard ones, and those
the target's code does not carry) and what it holds; JSON after the ``@@LMS-POC@@`` marker."""

INSPECT_POC_PHP = r"""<?php
// The PoC's database as the target's code sees it. Only reads: the database is a scratch copy.
define('CLI_SCRIPT', true);
require($argv[1]);
$installed = $DB->get_records_menu('config_plugins', ['name' => 'version'], 'plugin', 'plugin, value');
$nonstandard = [];
$missing = [];
$standard = [];
// Plugins the core upgrade itself uninstalls when their code is gone (mlbackend_php in 5.0, ...).
$upgradephp = file_get_contents("$CFG->libdir/db/upgrade.php");
preg_match_all("/uninstall_plugin\\('([a-z0-9]+)',\\s*'([a-z0-9_]+)'\\)/", $upgradephp, $m);
$upgraderemoves = array_map(fn($t, $n) => "{$t}_{$n}", $m[1], $m[2]);
foreach ($installed as $component => $version) {
    [$type, $name] = core_component::normalize_component($component);
    if ($type === 'core') {
        continue;
    }
    if (!array_key_exists($type, $standard)) {
        $standard[$type] = core_plugin_manager::standard_plugins_list($type) ?: [];
    }
    $full = "{$type}_{$name}";
    if (core_plugin_manager::is_deleted_standard_plugin($type, $name)
            || in_array($full, $upgraderemoves)) {
        continue;  // removed from Moodle since the PoC's version: its upgrade uninstalls it
    }
    if (!in_array($name, $standard[$type])) {
        $nonstandard[] = ['component' => $full, 'version' => (string)$version];
    }
    $dir = core_component::get_component_directory($full);
    if (!$dir || !is_dir($dir)) {
        $missing[] = ['component' => $full, 'version' => (string)$version];
    }
}
echo "\n@@LMS-POC@@" . json_encode([
    'version' => (string)$DB->get_field('config', 'value', ['name' => 'version']),
    'release' => (string)$DB->get_field('config', 'value', ['name' => 'release']),
    'siteidentifier' => (string)$DB->get_field('config', 'value', ['name' => 'siteidentifier']),
    'nonstandard_plugins' => $nonstandard,
    'missing_plugins' => $missing,
    'rows' => [
        'user' => $DB->count_records_select('user', 'deleted = 0 AND username <> ?', ['guest']),
        'course' => $DB->count_records_select('course', 'id <> ?', [SITEID]),
        'files' => $DB->count_records_select('files', "filename <> '.'"),
    ],
]) . "\n";
"""

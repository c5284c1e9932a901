# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads a site's config.php without connecting to anything (``read_site_config`` in
backup/site_config.py): the ``$CFG`` fields a backup needs, as JSON after the ``@@LMS-CONFIG@@``
marker."""

READ_CONFIG_PHP = r"""<?php
// Reads config.php without connecting to anything and prints the $CFG fields a backup needs.
define('CLI_SCRIPT', true);
define('ABORT_AFTER_CONFIG', true);
require($argv[1]);
$o = isset($CFG->dboptions) ? $CFG->dboptions : [];
echo "\n@@LMS-CONFIG@@" . json_encode([
    'dbtype' => $CFG->dbtype, 'dbhost' => $CFG->dbhost, 'dbname' => $CFG->dbname,
    'dbuser' => $CFG->dbuser, 'dbpass' => $CFG->dbpass, 'prefix' => $CFG->prefix,
    'dbport' => isset($o['dbport']) ? (string)$o['dbport'] : '',
    'dbsocket' => isset($o['dbsocket']) ? (string)$o['dbsocket'] : '',
    'wwwroot' => $CFG->wwwroot, 'dataroot' => $CFG->dataroot,
    // setup.php's defaults, set before it stops: where Moodle keeps its bootstrap.php caches.
    'cachedir' => $CFG->cachedir, 'localcachedir' => $CFG->localcachedir,
    // Settings config.php forces: cfg.php cannot change them (a restore checks its settings early).
    'forced' => array_keys((array)$CFG),
    'forced_plugin_settings' => isset($CFG->forced_plugin_settings) ? $CFG->forced_plugin_settings : [],
]) . "\n";
"""

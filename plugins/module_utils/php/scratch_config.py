# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config.php of the scratch site a restore test restores into (``verify_backup`` in
backup/verify.py fills it in with PHP literals)."""

SCRATCH_CONFIG = """<?php  // Scratch copy of {site} for a restore test (lms_backup_verify); removed after it.
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype = {dbtype};
$CFG->dblibrary = 'native';
$CFG->dbhost = {dbhost};
$CFG->dbname = {dbname};
$CFG->dbuser = {dbuser};
$CFG->dbpass = {dbpass};
$CFG->prefix = {prefix};
$CFG->dboptions = ['dbpersist' => 0, 'dbport' => {dbport}, 'dbsocket' => {dbsocket}];
$CFG->wwwroot = {wwwroot};
$CFG->dataroot = {dataroot};
$CFG->admin = 'admin';
$CFG->directorypermissions = 02770;
$CFG->noemailever = true;
require_once(__DIR__ . '/{setup}');
"""

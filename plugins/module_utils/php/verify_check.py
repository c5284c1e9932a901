# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks a site restored for a restore test (``verify_backup`` in backup/verify.py): version,
rows of the main tables, files the database refers to that are not in the filedir; JSON after the
``@@LMS-CHECK@@`` marker."""

CHECK_PHP = r"""<?php
// The restored site as Moodle sees it: version, rows of the main tables, and whether every file the
// database refers to is in the filedir (the backup's consistency promise).
define('CLI_SCRIPT', true);
require($argv[1]);
$missing = [];
$rs = $DB->get_recordset_sql("SELECT DISTINCT contenthash FROM {files} WHERE filename <> '.'");
foreach ($rs as $r) {
    $h = $r->contenthash;
    if (!is_readable("$CFG->dataroot/filedir/" . substr($h, 0, 2) . '/' . substr($h, 2, 2) . "/$h")) {
        $missing[] = $h;
    }
}
$rs->close();
$rows = [];
$tables = ['user', 'course', 'course_modules', 'files', 'config', 'role_assignments', 'user_enrolments'];
foreach ($tables as $t) {
    $rows[$t] = $DB->count_records($t);
}
echo "\n@@LMS-CHECK@@" . json_encode(['version' => (string)$CFG->version, 'release' => $CFG->release,
    'rows' => $rows, 'missing_files' => $missing]) . "\n";
"""

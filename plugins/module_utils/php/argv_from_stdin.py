# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a CLI script with the arguments it reads from stdin (JSON: script, args) as its argv
(``MoodleSite.cli`` with ``private_args``, in moodle_cli). The script is included at file scope,
as PHP would run it, so Moodle's globals work unchanged."""

ARGV_FROM_STDIN_PHP = r"""<?php
$lmsargv = json_decode(stream_get_contents(STDIN), true);
if (!is_array($lmsargv) || !isset($lmsargv['script'], $lmsargv['args'])) {
    fwrite(STDERR, "expected {\"script\": ..., \"args\": [...]} on stdin\n");
    exit(2);
}
$_SERVER['argv'] = $argv = array_merge([$lmsargv['script']], $lmsargv['args']);
$_SERVER['argc'] = $argc = count($argv);
unset($lmsargv);
require $argv[0];
"""

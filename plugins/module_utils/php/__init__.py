# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PHP programs the modules run as the web user, one per file, each as a Python string constant
(AnsiballZ ships only ``.py`` module_utils). ``MoodleSite.run_php`` (moodle_cli) runs them all: the
program goes into a temporary file the web user reads; secrets go on stdin, never on the command line.
"""

#: What every program that answers JSON defines (the helper, the sanitiser, the courseware loader):
#: its answer after the marker line that ``moodle_cli.parse_helper_output`` looks for, or a failure.
ANSWER_PHP = r"""
function lms_emit($data) {
    echo "\n@@LMS-RESULT@@" . json_encode($data, JSON_PARTIAL_OUTPUT_ON_ERROR) . "\n";
    exit(0);
}

function lms_fail($msg, $extra = []) {
    lms_emit(['failed' => true, 'msg' => $msg] + $extra);
}
"""

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PHP programs the modules run as the web user, one per file, each as a Python string constant
(AnsiballZ ships only ``.py`` module_utils). ``MoodleSite.run_php`` (moodle_cli) runs them all: the
program goes into a temporary file the web user reads; secrets go on stdin, never on the command line.
"""

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options every lms_* module that runs Moodle's CLI shares (module_utils.moodle_cli.COMMON_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  path:
    description:
      - The site's code root, the folder that holds C(config.php), for example the deployment's
        C(current) symlink. For Moodle 5.1+ that is the checkout root (with C(public/) below it),
        for Totara 13+ the folder above C(server/), for older Moodle the web root.
    type: path
    required: true
  web_user:
    description:
      - The user the web server runs PHP as. Every Moodle CLI and API call runs as this user
        (with C(runuser) when the module runs as root), never as root.
    type: str
    default: www-data
  php:
    description: The PHP CLI binary to run.
    type: str
    default: php
  timeout:
    description: Seconds after which a Moodle CLI call is stopped and the task fails.
    type: int
    default: 600
"""

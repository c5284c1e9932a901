# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The scratch site a restore test and an adoption load into (module_utils.backup.verify.SCRATCH_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  scratch_dir:
    description:
      - Where the scratch site is made, C(<scratch_dir>/<site>.<purpose>) (C(verify), C(adopt)) - a
        hard-linked copy of the site's code, its C(config.php) and a scratch dataroot; needs room
        for the dataroot. Removed afterwards, also when something failed.
    type: path
    default: /var/lib/lms-verify
  db_admin_user:
    description:
      - OS user (PostgreSQL) or database user (MariaDB) that creates the scratch database
        C(<dbname>_<purpose>) over the local socket; default C(postgres) (peer authentication) or
        C(root) (unix socket authentication).
    type: str
  db_admin_socket:
    description: Socket folder (PostgreSQL) or file (MariaDB) of the administrator's connection.
    type: str
"""

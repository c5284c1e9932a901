# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The database clients a restore loads a dump with (module_utils.backup.restore.DB_CLIENT_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pg_restore:
    description: The C(pg_restore) binary (PostgreSQL sites).
    type: str
    default: pg_restore
  psql:
    description: The C(psql) binary (PostgreSQL sites).
    type: str
    default: psql
  mysql:
    description: The C(mysql) client binary (MariaDB/MySQL sites).
    type: str
    default: mysql
"""

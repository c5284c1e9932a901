# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options of the backup modules that name the site (module_utils.backup.format.SITE_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  site:
    description:
      - The site whose backups these are, C(<customer>-<tier>), for example C(acme-live).
    type: str
    required: true
  customer:
    description:
      - The customer the site belongs to. Filedir content is stored once per customer and shared
        by the backups of all its sites; a restore only takes backups of the same customer.
    type: str
    required: true
"""

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_poc_export
short_description: Hand over a running proof-of-concept Moodle site as a database dump and a dataroot archive
description:
  - Reads the proof-of-concept (PoC) site whose code root is I(path) on this host - its C(config.php),
    through PHP as I(web_user) - and writes what M(lms_adopt) takes into the folder I(dest) (0700, emptied
    first; files 0600) - C(database.pgdump) (C(pg_dump --format=custom)) or C(database.sql.gz)
    (C(mysqldump), gzipped), taken with the PoC's own database credentials (in the environment, never on a
    command line), and C(dataroot.tar.gz), its dataroot with the files but without what Moodle rebuilds
    (caches, sessions, temp, locks).
  - The PoC is only read. Its address and Moodle version are returned, for the caller to check.
  - Refuses, before anything is read, a PoC whose code folder or dataroot is, holds or lies in one of
    I(estate_sites)' folders, or whose database is one of theirs; a code folder that is a release the
    estate deployed (it has C(.three-instance-release)), whatever I(estate_sites) says; and a dataroot
    that does not belong to I(web_user). An export reads as root, so this is what keeps a C(config.php)
    from making it read another site's data.
version_added: "1.3.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  dest:
    description: The folder on this host to write the two files into (created 0700 for root, emptied first).
    type: path
    required: true
  estate_sites:
    description:
      - The estate's sites the PoC must keep clear of, each with C(name) and any of C(code_dir), C(dataroot)
        and C(db_name) (the estate's site records have them).
    type: list
    elements: dict
    default: []
  pg_dump:
    description: The C(pg_dump) binary (PostgreSQL PoCs).
    type: str
    default: pg_dump
  mysqldump:
    description: The C(mysqldump) binary (MariaDB/MySQL PoCs).
    type: str
    default: mysqldump
notes:
  - Runs the same in check mode - it changes nothing of the PoC, and an onboarding in check mode reads
    the PoC for real (in a scratch site). The caller removes I(dest) when it has copied the files.
  - Needs room in I(dest) for the dump and the archive.
seealso:
  - module: lms_adopt
"""

EXAMPLES = r"""
- name: The PoC's files, on its host
  lms_poc_export:
    path: /var/www/moodle
    web_user: www-data
    php: /usr/bin/php8.2
    dest: /var/lib/lms-poc-export/initech
    estate_sites: "{{ hostvars | estate_records | map('dict2items') | ... }}"
  become: true
  register: poc
"""

RETURN = r"""
dest:
  description: The folder holding the files.
  returned: success
  type: str
dump:
  description: The dump's file name in I(dest).
  returned: success
  type: str
  sample: database.pgdump
files:
  description: Each file's size in bytes.
  returned: success
  type: dict
  sample: {"database.pgdump": 1843200, "dataroot.tar.gz": 5242880}
wwwroot:
  description: The PoC's address, its C($CFG->wwwroot).
  returned: success
  type: str
dbtype:
  description: The PoC's database type (C(pgsql), C(mariadb), C(mysqli)).
  returned: success
  type: str
version:
  description: The Moodle C($version) of the PoC's code.
  returned: success
  type: str
release:
  description: The Moodle C($release) of the PoC's code.
  returned: success
  type: str
"""

from ansible.module_utils.backup.export import EXPORT_ARGS, export
from ansible.module_utils.backup.format import BackupError
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError


def main():
    module = AnsibleModule(argument_spec={**COMMON_ARGS, **EXPORT_ARGS}, supports_check_mode=True)
    try:
        result = export(module.params)
    except (BackupError, MoodleError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_install
short_description: Install a Moodle/Totara site's database when it is empty
description:
  - Runs C(admin/cli/install_database.php) when the site's database holds no tables, and does nothing
    when the site is installed already.
  - The options reach C(install_database.php) on standard input, through a small wrapper that puts them
    into PHP's C(argv), so the admin password never appears in the process list or in a log.
  - A database that holds tables but no installed site (an install that failed half way) is refused with
    a message; nothing is changed.
  - C(config.php) must exist (the lms role writes it) and point at an existing, empty database.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  timeout:
    description: Seconds after which the install is stopped and the task fails.
    type: int
    default: 1800
  admin_user:
    description: User name of the site's first administrator.
    type: str
    default: admin
  admin_password:
    description: Password of the first administrator (from Ansible Vault; never logged).
    type: str
    required: true
  admin_email:
    description: Email address of the first administrator.
    type: str
    required: true
  fullname:
    description: The site's full name.
    type: str
    required: true
  shortname:
    description: The site's short name.
    type: str
    required: true
  summary:
    description: The front page summary.
    type: str
    default: ""
  support_email:
    description: The support email address; the admin's when omitted.
    type: str
  lang:
    description: Installation and default site language (a language pack the code holds).
    type: str
    default: en
notes:
  - Supports check mode (reports whether the install would run).
seealso:
  - module: lms_facts
  - module: lms_upgrade
"""

EXAMPLES = r"""
- name: Install acme-qa's database when it is empty
  lms_install:
    path: /srv/lms/acme-qa/current
    web_user: acme-qa
    php: /usr/bin/php8.2
    admin_password: "{{ vault_acme_qa_admin_password }}"
    admin_email: lms-admin@acme.example
    fullname: ACME Learning (QA)
    shortname: acme-qa
  become: true
"""

RETURN = r"""
installed:
  description: Whether the site is installed after the task.
  returned: always
  type: bool
version:
  description: The site's core version after the task (null when it is not installed).
  returned: always
  type: str
  sample: "2025100600.02"
release:
  description: The site's release after the task.
  returned: always
  type: str
  sample: "5.1+ (Build: 20251017)"
seconds:
  description: How long C(install_database.php) ran (0 when nothing ran).
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            timeout={"type": "int", "default": 1800},
            admin_user={"type": "str", "default": "admin"},
            admin_password={"type": "str", "required": True, "no_log": True},
            admin_email={"type": "str", "required": True},
            fullname={"type": "str", "required": True},
            shortname={"type": "str", "required": True},
            summary={"type": "str", "default": ""},
            support_email={"type": "str"},
            lang={"type": "str", "default": "en"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = {"installed": False, "version": None, "release": None, "seconds": 0.0}
    try:
        site = MoodleSite.from_params(params)
        before = site.helper("facts")
        if before["installed"]:
            result.update(installed=True, version=before["db_version"], release=before["db_release"])
            module.exit_json(changed=False, **result)
        if before["database_tables"]:
            raise MoodleError(
                f"the database of the site at {site.path} holds {before['database_tables']} tables but "
                "no installed site (a failed install?): restore it from a backup or empty it; "
                "nothing was changed"
            )
        if module.check_mode:
            module.exit_json(changed=True, **result)
        run = site.cli(
            "install_database.php",
            "--agree-license",
            f"--lang={params['lang']}",
            f"--adminuser={params['admin_user']}",
            f"--adminpass={params['admin_password']}",
            f"--adminemail={params['admin_email']}",
            f"--fullname={params['fullname']}",
            f"--shortname={params['shortname']}",
            f"--summary={params['summary']}",
            f"--supportemail={params['support_email'] or params['admin_email']}",
            private_args=True,
        )
        after = site.helper("facts")
        result.update(
            installed=after["installed"],
            version=after["db_version"],
            release=after["db_release"],
            seconds=run.seconds,
        )
        if not after["installed"]:
            raise MoodleError(
                "install_database.php finished but the site is not installed", stdout=run.stdout
            )
    except MoodleError as exc:
        fail_module(module, exc, **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()

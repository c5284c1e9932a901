#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_facts
short_description: Facts about one Moodle or Totara site
description:
  - Reads what a Moodle/Totara site is and in which state it is, without changing anything.
  - The code (flavour, layout, version, release, branch) is read from the files, so it is known
    even before C(config.php) exists. When C(config.php) exists the site is asked, as its web
    user, whether its database is installed, whether an upgrade is pending (C(upgrade.php
    --is-maintenance-required)), whether maintenance mode is on, and which plugins are not
    part of the standard distribution.
  - The result is returned as C(lms) and also set as the host fact C(lms).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
options:
  deployment_record:
    description:
      - A deployment record (JSON) written when the release was deployed; its C(release_id)
        (or C(release), or C(id)) is reported as C(release_id).
      - Without it, or when the file does not exist, C(release_id) is the name of the
        C(releases/<id>) folder that I(path) resolves to, if it does.
    type: path
  check_upgrade:
    description:
      - Ask C(upgrade.php) whether an upgrade is pending and whether it needs maintenance mode
        (one more PHP run). When false, C(upgrade_pending) and C(maintenance_required) are null.
      - Code older than the database (a release before the one that upgraded it) fails here,
        naming both versions. Moodle cannot downgrade; C(upgrade.php) would stop on it too.
    type: bool
    default: true
notes:
  - Supports check mode (it never changes anything).
  - Runs PHP as I(web_user); run the task as root (C(become)) or as that user.
seealso:
  - module: lms_upgrade
  - module: lms_maintenance
"""

EXAMPLES = r"""
- name: Read the site's state
  lms_facts:
    path: /srv/acme-qa/current
    deployment_record: /srv/acme-qa/deployment.json
  register: site

- name: Install the database when the site is configured but empty
  ansible.builtin.debug:
    msg: "install needed"
  when: site.lms.configured and not site.lms.installed

- name: Upgrade only when pending
  lms_upgrade:
    path: /srv/acme-qa/current
  when: lms.upgrade_pending | default(false)
"""

RETURN = r"""
lms:
  description: The site's facts (also set as the host fact C(lms)).
  returned: always
  type: dict
  contains:
    flavour:
      description: C(moodle) or C(totara).
      type: str
      sample: moodle
    layout:
      description: C(public) (Moodle 5.1+), C(server) (Totara 13+) or C(root) (older Moodle).
      type: str
      sample: public
    path:
      description: The code root as given.
      type: str
    code_root:
      description: The code root with symlinks resolved (the release folder).
      type: str
    version:
      description: C($version) of the code on disk.
      type: str
      sample: "2025100600.02"
    release:
      description: C($release) of the code on disk.
      type: str
      sample: "5.1+ (Build: 20251017)"
    branch:
      description: C($branch) of the code on disk.
      type: str
      sample: "501"
    maturity:
      description: C($maturity) of the code on disk.
      type: str
      sample: MATURITY_STABLE
    totara_version:
      description: Totara's own version, null for Moodle.
      type: str
    configured:
      description: Whether C(config.php) exists in I(path).
      type: bool
    installed:
      description: Whether the database holds an installed site.
      type: bool
    installed_version:
      description: The version the database is at (null when not installed).
      type: str
    installed_release:
      description: The release the database is at (null when not installed).
      type: str
    database_tables:
      description: >-
        Tables in the database. A site that is not installed but has tables had a failed
        install; C(install_database.php) refuses to run on it.
      type: int
    upgrade_pending:
      description: Whether C(upgrade.php) would upgrade something (null when not installed).
      type: bool
    maintenance_required:
      description: >-
        Whether the pending upgrade needs maintenance mode (false when it can run without, or
        when nothing is pending; null when not installed).
      type: bool
    maintenance_enabled:
      description: Whether the site is in maintenance mode (CLI or web).
      type: bool
    maintenance_mode:
      description: C(cli) (C(climaintenance.html) in the dataroot), C(web) (admin setting) or null.
      type: str
    maintenance_scheduled:
      description: Epoch seconds when scheduled maintenance starts, or null.
      type: int
    maintenance_message:
      description: The maintenance message set on the site.
      type: str
    release_id:
      description: The deployed release's id (from the deployment record or the C(releases/<id>) folder).
      type: str
    deployment:
      description: The deployment record's content, or null.
      type: dict
    nonstandard_plugins:
      description: Plugins on disk that are not in the standard distribution.
      type: list
      elements: dict
      sample: [{"component": "local_hello", "version": "2025010100", "db_version": null, "status": "new"}]
    missing_plugins:
      description: Plugins installed in the database whose code is missing.
      type: list
      elements: dict
    plugins_to_upgrade:
      description: Plugins that the pending upgrade would install, upgrade or remove.
      type: list
      elements: dict
    wwwroot:
      description: C($CFG->wwwroot).
      type: str
    dataroot:
      description: C($CFG->dataroot).
      type: str
    dbtype:
      description: C($CFG->dbtype).
      type: str
    environment:
      description: >-
        What the code's own C(admin/environment.xml) requires for its branch, and what of it this
        host and the site's database lack; null without that file or before C(config.php) exists.
        The release playbooks ask it of the new code before anything changes and refuse a release
        whose C(unmet) is not empty.
      type: dict
      contains:
        branch:
          description: The code's branch.
          type: str
          sample: "5.1"
        upgrade_from:
          description: The oldest Moodle release an upgrade to this branch may start from.
          type: str
          sample: 4.2.3
        php:
          description: The oldest PHP version it runs on.
          type: str
          sample: 8.2.0
        databases:
          description: Database vendors and their oldest versions.
          type: dict
          sample: {"postgres": "15", "mariadb": "10.11.0"}
        extensions:
          description: PHP extensions it requires.
          type: list
          elements: str
        installed_branch:
          description: The branch the site's database is at (null when not installed).
          type: str
          sample: "4.5"
        unmet:
          description: What is missing, one sentence each; empty when the host can run the code.
          type: list
          elements: str
          sample: ["PHP 8.2.0 or newer (the host has 8.1.2)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, MoodleSite, fail_module, site_facts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            deployment_record={"type": "path"},
            check_upgrade={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    try:
        site = MoodleSite.from_params(module.params)
        facts = site_facts(site, module.params["deployment_record"], module.params["check_upgrade"])
    except MoodleError as exc:
        fail_module(module, exc)
    module.exit_json(changed=False, lms=facts, ansible_facts={"lms": facts})


if __name__ == "__main__":
    main()

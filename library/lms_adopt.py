#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_adopt
short_description: Adopt a proof-of-concept Moodle site (database dump and dataroot archive) into a site
description:
  - Makes the site whose code root is I(path) hold a proof-of-concept (PoC) site - its database dump
    I(dump) and its dataroot archive I(dataroot_archive), files on this host - keeping the target's
    own C(config.php) (its database, wwwroot and tier settings). The PoC's files are only read.
  - First the dump is loaded into a scratch site that runs the target's code (a hard-linked copy of
    the code, a scratch database C(<dbname>_adopt) created by the database administrator over the
    local socket, removed afterwards) and read there, through Moodle. It refuses, before the target
    changes, a dump of another database type or table prefix, a PoC newer than the target's code,
    and a PoC that uses plugins the target's code does not carry (naming each, with its version).
  - Then the dataroot is unpacked (safely - no link or path leaves it) into a staging folder beside
    the target's dataroot without what Moodle rebuilds (caches, sessions, temp, locks, the PoC's
    cache configuration). The target's database tables are replaced (PostgreSQL in one transaction)
    and the staged dataroot swapped in, owned by I(web_user).
  - A PoC older than the target's code is upgraded with C(admin/cli/upgrade.php). The PoC's address
    I(source_wwwroot) becomes the target's in the content (C(admin/tool/replace/cli/replace.php)), the
    site gets an identity of its own (a new C(siteidentifier)), caches are purged.
  - Records the PoC (a digest of both files) in the target (C(three_instance/adopted_from)), so the
    same PoC is not adopted twice unless I(force).
  - Refuses a Live site, always; a PoC becomes QA (docs/onboarding.md).
version_added: "1.2.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_site
  - lms_scratch_site
  - lms_db_clients
options:
  site:
    description: The target site's name (for the scratch folder, and the Live guard).
    type: str
    required: true
  dump:
    description:
      - The PoC's database dump on this host. PostgreSQL takes C(pg_dump --format=custom), MariaDB and
        MySQL take C(mysqldump) output compressed with gzip; the format is read from the file.
    type: path
    required: true
  dataroot_archive:
    description: The PoC's dataroot as a tar archive (gzip or not) of the folder or of its content.
    type: path
    required: true
  source_wwwroot:
    description: The PoC's address (its C($CFG->wwwroot)), replaced by the target's in the content.
    type: str
    required: true
  force:
    description: Adopt even when this PoC is the one adopted last into the target.
    type: bool
    default: false
notes:
  - Check mode inspects the PoC in the scratch site (which is removed) and reports what would be
    adopted; the target is not changed.
  - The staging folder C(<dataroot>.adopting) needs room for the unpacked dataroot.
seealso:
  - module: lms_restore
"""

EXAMPLES = r"""
- name: Adopt the PoC as initech's QA
  lms_adopt:
    path: /srv/lms/initech-qa/current
    web_user: initech-qa
    site: initech-qa
    dump: /var/lib/lms-verify/initech-qa.poc/database.pgdump
    dataroot_archive: /var/lib/lms-verify/initech-qa.poc/dataroot.tar.gz
    source_wwwroot: https://poc.example.com/initech
"""

RETURN = r"""
adopted:
  description: The PoC's mark (C(poc-) and a digest of the dump and the archive), recorded in the target.
  returned: always
  type: str
already_adopted:
  description: The target holds this PoC already (I(force) adopts it again); nothing was done.
  returned: always
  type: bool
poc_version:
  description: The PoC's Moodle version (its database's).
  returned: when inspected
  type: str
poc_release:
  description: The PoC's Moodle release string.
  returned: when inspected
  type: str
target_version:
  description: The Moodle version of the target's code.
  returned: when inspected
  type: str
upgraded:
  description: Whether the PoC is (or would be) upgraded to the target's code.
  returned: when inspected
  type: bool
nonstandard_plugins:
  description: The PoC's plugins that are not part of Moodle (each carried by the target's code).
  returned: when inspected
  type: list
  elements: dict
rows:
  description: What the PoC holds (users but guest, courses but the site, files).
  returned: when inspected
  type: dict
wwwroot_from:
  description: The PoC's address.
  returned: always
  type: str
wwwroot_to:
  description: The target's address.
  returned: always
  type: str
target_changed:
  description: On failure only, whether the target had started to change.
  returned: failure
  type: bool
seconds:
  description: Wall time.
  returned: changed
  type: float
"""

from ansible.module_utils.backup.adopt import ADOPT_ARGS, adopt
from ansible.module_utils.backup.format import BackupError
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError, site_tier_facts


def main():
    module = AnsibleModule(
        argument_spec={**COMMON_ARGS, "site": {"type": "str", "required": True}, **ADOPT_ARGS},
        supports_check_mode=True,
    )
    params = module.params
    # No override: a PoC never becomes Live (Live is built from QA, docs/onboarding.md).
    live = [
        fact
        for fact in site_tier_facts(params["path"], params["site"], params["web_user"])
        if fact[2] == "live"
    ]
    if live:
        module.fail_json(
            msg=f"lms_adopt refuses to adopt a proof-of-concept site into {live[0][1]}: it is a Live site ("
            + "; ".join(fact[0] for fact in live)
            + "). A PoC becomes QA; Live is built from QA's release and design. Nothing was changed",
            target_changed=False,
        )
    try:
        result = adopt(params, module.check_mode)
    except (BackupError, MoodleError) as exc:
        module.fail_json(msg=str(exc), target_changed=getattr(exc, "target_changed", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

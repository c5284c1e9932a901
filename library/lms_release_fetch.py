#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_release_fetch
short_description: Fetch a release bundle from the artifact store and verify its sha256
description:
  - Fails with a clear message when the release is not in the store, when the store's checksum is
    not the one expected (I(sha256), e.g. from the deployment record of the tier below) or when the
    downloaded bytes do not match the store's C(<id>.sha256).
  - Keeps the bundle in I(dest); a bundle already there with the right checksum is not downloaded again.
  - Runs on the controller (C(delegate_to) C(localhost)); the deploy then copies the bundle to the hosts.
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_store
options:
  release:
    description: The release id.
    type: str
    required: true
  sha256:
    description: The checksum the release must have (refuse otherwise).
    type: str
  dest:
    description: Controller folder that keeps fetched bundles.
    type: path
    required: true
notes:
  - Check mode also downloads and verifies (into I(dest) on the controller); it changes no host.
requirements:
  - boto3 and botocore for C(store.type=s3)
"""

EXAMPLES = r"""
- name: Fetch the release deployed on QA
  lms_release_fetch:
    release: acme-r2
    sha256: "{{ qa_record.sha256 }}"
    store: {type: dir, path: /srv/release-store}
    dest: .cache/bundles
  delegate_to: localhost
"""

RETURN = r"""
release:
  description: The release id.
  returned: always
  type: str
sha256:
  description: The verified sha256.
  returned: always
  type: str
bundle:
  description: The bundle on the controller.
  returned: always
  type: str
downloaded:
  description: Whether it was downloaded now.
  returned: always
  type: bool
manifest:
  description: The manifest the bundle carries (core version, plugins and their versions).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release import STORE_ARG, ReleaseError, fetch_verified, open_store


def main():
    module = AnsibleModule(
        argument_spec={
            "release": {"type": "str", "required": True},
            "sha256": {"type": "str"},
            "store": STORE_ARG,
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        store = open_store(module.params["store"])
        result = fetch_verified(
            store, module.params["release"], module.params["dest"], module.params["sha256"]
        )
    except ReleaseError as exc:
        module.fail_json(msg=str(exc))
    # Downloading to the controller's cache changes no managed host.
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_release_build
short_description: Build a release bundle from a release manifest and publish it to the artifact store
description:
  - Validates a release manifest (release id, flavour, optional core branch, core source, plugins,
    theme) and lists every problem, naming the field, before anything is built; a core tree of
    another branch than the one the manifest pins is refused.
  - Assembles the release once, the core tree with each plugin placed where Moodle's own component
    rules (C(lib/components.json) of that core) put its type.
  - Writes a deterministic tar.gz (sorted names, fixed mtime, owner 0, gzip header without name or
    time) carrying its pinned manifest in C(.three-instance/release.json), so the same manifest gives
    the same sha256.
  - Publishes C(<id>.tar.gz), C(<id>.json) and, last, C(<id>.sha256) to the store. The same bytes
    already there is no change; other bytes under the same id are refused.
  - Runs on the controller (C(delegate_to) C(localhost)).
version_added: "1.0.0"
author: three-instance contributors
extends_documentation_fragment:
  - lms_store
options:
  manifest:
    description: Path of the release manifest (YAML). Relative paths in it are relative to its folder.
    type: path
    required: true
  variables:
    description:
      - Values for C(${NAME}) in the manifest's paths (for example C(MOODLE_SRC), where the core
        tree is on this controller). A name not given here is read from the environment.
    type: dict
    default: {}
  build_dir:
    description: Controller folder for the bundle and for unpacked archive and git sources.
    type: path
    required: true
notes:
  - Check mode validates the manifest and reports whether the id is already published; it builds nothing.
requirements:
  - boto3 and botocore for C(store.type=s3)
"""

EXAMPLES = r"""
- name: Build and publish a release
  lms_release_build:
    manifest: releases/acme-2025100600.yml
    store: {type: s3, bucket: lms-releases, endpoint_url: "http://127.0.0.1:5055", region: eu-west-1}
    build_dir: .cache/build
  delegate_to: localhost
"""

RETURN = r"""
release:
  description: The release id.
  returned: always
  type: str
sha256:
  description: The bundle's sha256 (null in check mode).
  returned: always
  type: str
bundle:
  description: The bundle on the controller.
  returned: unless check mode
  type: str
published:
  description: Whether the bundle was uploaded now (false when the store already had these bytes).
  returned: always
  type: bool
manifest:
  description: The manifest the bundle carries (sources pinned, core and plugin versions).
  returned: unless check mode
  type: dict
store:
  description: Where the release is kept (folder or s3:// URL).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release import STORE_ARG, ReleaseError, build, load_manifest, open_store, publish


def main():
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path", "required": True},
            "variables": {"type": "dict", "default": {}},
            "store": STORE_ARG,
            "build_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        manifest = load_manifest(module.params["manifest"], module.params["variables"])
        store = open_store(module.params["store"])
        result = {"release": manifest["release"], "store": store.where, "published": False, "sha256": None}
        if module.check_mode:
            result["sha256"] = store.published_sha256(manifest["release"])
            module.exit_json(changed=result["sha256"] is None, **result)
        built = build(
            manifest, os.path.join(module.params["build_dir"], "bundles"), module.params["build_dir"]
        )
        result.update(built)
        result["published"] = publish(
            store, built["release"], built["bundle"], built["manifest"], built["sha256"]
        )
    except ReleaseError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=result["published"], **result)


if __name__ == "__main__":
    main()

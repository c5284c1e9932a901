# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command line the systemd timer of roles/backup runs, with the same options as lms_backup (and
lms_backup_prune's policy), from a JSON file::

    PYTHONPATH=<lib> python3 -m backup.timer create|prune --config file.json
"""

from __future__ import annotations

import argparse
import json
import sys

try:
    from ansible.module_utils.moodle_cli import COMMON_ARGS, MoodleError
    from ansible.module_utils.s3_store import BACKUP_STORE_ARGS, StoreError, store_defaults
except ImportError:  # the timer's copy on a host: siblings on sys.path
    from moodle_cli import COMMON_ARGS, MoodleError
    from s3_store import BACKUP_STORE_ARGS, StoreError, store_defaults

from .create import DUMP_ARGS, create_backup
from .format import SITE_ARGS, BackupError
from .prune import PRUNE_ARGS, prune


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m backup.timer", description="Back up a Moodle site to S3 (the code of lms_backup)."
    )
    parser.add_argument("action", choices=["create", "prune"])
    parser.add_argument("--config", required=True, help="JSON file with lms_backup's options (mode 0600)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        options = json.load(handle)

    params = {}
    for spec in (COMMON_ARGS, SITE_ARGS, DUMP_ARGS, PRUNE_ARGS):
        params.update({name: opts.get("default") for name, opts in spec.items()})
    params.update(options)
    try:
        params["store"] = store_defaults(BACKUP_STORE_ARGS["store"], options.get("store") or {})
        result = create_backup(params) if args.action == "create" else prune(params)
    except (BackupError, StoreError, MoodleError) as exc:
        print(f"{args.action} failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

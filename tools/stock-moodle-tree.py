#!/usr/bin/env python3
"""Make a Moodle tree stock: remove every plugin that Moodle's own ``lib/plugins.json`` does not
list as standard, and any ``config.php`` at the root.

Public Moodle snapshots (see ../shared/notes/moodle.md) are often forks carrying extra plugins, and
one of those breaks a fresh install. The test cache (``/var/cache/three-instance/moodle*``) holds
stock trees made with this script, so what the tests install is plain Moodle.

    tools/stock-moodle-tree.py /var/cache/three-instance/moodle-5.1 [--dry-run]
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "module_utils"))
# the same component rules the release build uses
from release import plugin_types


def plugin_folders(tree: Path) -> dict[str, Path]:
    """Plugin type -> folder, subplugin types (``db/subplugins.json`` of each plugin) included."""
    folders = {kind: tree / rel for kind, rel in plugin_types(str(tree)).items()}
    web_root = next((tree / top for top in ("public", "server") if (tree / top / "lib").is_dir()), tree)
    for subplugins in list(web_root.glob("*/*/db/subplugins.json")):
        data = json.loads(subplugins.read_text(encoding="utf-8"))
        plugin_dir = subplugins.parent.parent
        # "subplugintypes" are relative to the plugin, the older "plugintypes" to the web root
        for kind, rel in data.get("subplugintypes", {}).items():
            folders.setdefault(kind, plugin_dir / rel)
        for kind, rel in data.get("plugintypes", {}).items():
            folders.setdefault(kind, web_root / rel)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    plugins_json = next(
        (p for p in (args.tree / "lib/plugins.json", args.tree / "public/lib/plugins.json") if p.is_file()),
        None,
    )
    if plugins_json is None:
        parser.error(f"{args.tree} holds no lib/plugins.json: not a Moodle tree")
    standard = json.loads(plugins_json.read_text(encoding="utf-8"))["standard"]
    removed = []
    for kind, folder in sorted(plugin_folders(args.tree).items()):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            is_plugin = entry.is_dir() and (entry / "version.php").is_file()
            if is_plugin and entry.name not in standard.get(kind, []):
                removed.append(entry)
            elif kind == "local" and entry.is_dir():
                removed.append(entry)  # a folder in local/ without version.php is no plugin: junk
    root_config = args.tree / "config.php"
    if root_config.is_file():
        removed.append(root_config)
    for path in removed:
        print(("would remove " if args.dry_run else "removed ") + str(path.relative_to(args.tree)))
        if not args.dry_run:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

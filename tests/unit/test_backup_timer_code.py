"""The daily backup timer runs plugins/module_utils/backup.py as a script from the files that
roles/backup/tasks/code.yml copies to the host: that list must hold every module_utils file
backup.py imports, directly or through another (a missing one fails only on the host, at night)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "plugins" / "module_utils"
IMPORT = re.compile(r"^\s*from (?:ansible\.module_utils\.)?(\w+) import", re.M)


def imported_utils(name: str, seen: set[str]) -> set[str]:
    if name in seen:
        return seen
    seen.add(name)
    text = (UTILS / f"{name}.py").read_text(encoding="utf-8")
    for module in IMPORT.findall(text):
        if (UTILS / f"{module}.py").is_file():
            imported_utils(module, seen)
    return seen


def test_the_timer_gets_every_module_utils_file_backup_imports():
    tasks = yaml.safe_load((REPO / "roles" / "backup" / "tasks" / "code.yml").read_text())
    copied = next(t["loop"] for t in tasks if "ansible.builtin.copy" in t)
    needed = {f"{name}.py" for name in imported_utils("backup", set())}
    assert needed <= set(copied), f"roles/backup/tasks/code.yml does not copy {sorted(needed - set(copied))}"

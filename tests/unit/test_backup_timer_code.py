"""The daily backup timer runs the backup package's command line (``python3 -m backup.timer``, with
the lib folder on PYTHONPATH) from the files that roles/backup/tasks/code.yml copies to the host:
that list must hold every module_utils file backup/timer.py imports, directly or through another,
and the copy must run on its own (a missing file fails only on the host, at night)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "plugins" / "module_utils"
TIMER = "backup/timer.py"
#: ``from .format import``, ``from ansible.module_utils.php.helper import``, ``from s3_store import``
IMPORT = re.compile(r"^\s*from (\.*)((?:ansible\.module_utils\.)?[\w.]+) import", re.M)


def imported_utils(rel: str, seen: set[str]) -> set[str]:
    """``rel`` (a path under plugins/module_utils), the ``__init__.py`` of its packages, and what
    they import of plugins/module_utils, recursively."""
    if rel in seen:
        return seen
    seen.add(rel)
    path = UTILS / rel
    for package in path.relative_to(UTILS).parents[:-1]:
        imported_utils(f"{package.as_posix()}/__init__.py", seen)
    for dots, name in IMPORT.findall(path.read_text(encoding="utf-8")):
        base = path.parents[len(dots) - 1] if dots else UTILS
        target = base.joinpath(*name.removeprefix("ansible.module_utils.").split("."))
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if candidate.is_file():
                imported_utils(candidate.relative_to(UTILS).as_posix(), seen)
    return seen


def copied() -> list[str]:
    tasks = yaml.safe_load((REPO / "roles" / "backup" / "tasks" / "code.yml").read_text())
    return next(t["loop"] for t in tasks if "ansible.builtin.copy" in t)


def test_the_timer_gets_every_module_utils_file_it_imports():
    needed = imported_utils(TIMER, set())
    assert {"backup/__init__.py", "backup/create.py", "moodle_cli.py", "php/read_config.py"} <= needed
    missing = sorted(needed - set(copied()))
    assert not missing, f"roles/backup/tasks/code.yml does not copy {missing}"


def test_the_copy_runs_on_its_own_as_the_unit_runs_it(tmp_path):
    lib = tmp_path / "lib"
    for rel in copied():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(UTILS / rel, lib / rel)
    unit = (REPO / "roles" / "backup" / "templates" / "backup.service.j2").read_text()
    assert "Environment=PYTHONPATH={{ backup_lib_dir }}" in unit and " -m backup.timer create " in unit
    done = subprocess.run(
        [sys.executable, "-m", "backup.timer", "--help"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "{create,prune}" in done.stdout

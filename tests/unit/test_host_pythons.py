"""The module code runs on the managed hosts' Pythons: host_python_check.py (standard library only)
under Debian 12's /usr/bin/python3 (3.11.2), and pyenv's 3.9 (RHEL 9) and 3.10 (Ubuntu 22.04)
when this machine has them; a missing interpreter is a skip that names it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "host_python_check.py"
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"

HOSTS = [
    pytest.param("/usr/bin/python3", "3.11", id="debian12-3.11"),
    pytest.param(str(PYENV / "3.10.13" / "bin" / "python"), "3.10", id="ubuntu2204-3.10"),
    pytest.param(str(PYENV / "3.9.18" / "bin" / "python"), "3.9", id="rhel9-3.9"),
]


def _interpreter(path: str, minor: str) -> str:
    """``path``, or another pyenv build of the same minor version; skip when there is none."""
    if os.access(path, os.X_OK):
        return path
    others = sorted(PYENV.glob(f"{minor}.*/bin/python")) if PYENV.is_dir() else []
    if others:
        return str(others[-1])
    pytest.skip(f"no Python {minor} interpreter: {path} does not exist (install it with pyenv)")


@pytest.mark.parametrize(("path", "minor"), HOSTS)
def test_module_code_on_host_python(path, minor, tmp_path):
    python = _interpreter(path, minor)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [python, "-I", str(DRIVER)],  # -I: no user site, no PYTHON* variables, no cwd on sys.path
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, f"{python}:\n{proc.stdout}\n{proc.stderr}"
    version = proc.stdout.split()[1] if proc.stdout.startswith("Python ") else "?"
    assert version.startswith(minor + "."), f"{python} is Python {version}, expected {minor}"
    assert "ok: safe_tar hostile archives (walk" in proc.stdout, proc.stdout

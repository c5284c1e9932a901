"""Running the repository's playbooks and modules from the integration tests as an operator would:
the repository's ansible.cfg, no colours, output captured, a time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The controller's own Python (boto3 is there), not whatever the host's discovery finds.
PYTHON = f"ansible_python_interpreter={sys.executable}"


def ansible_env(base: dict | None = None, **extra: str) -> dict:
    """``base`` (this process's environment by default) with the repository's Ansible settings."""
    env = dict(os.environ if base is None else base)
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)
    return env


def _run(cmd: list[str], env: dict | None, timeout: int) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env or ansible_env(), cwd=REPO, timeout=timeout, check=False
    )
    proc.tail = (proc.stdout + proc.stderr)[-3000:]
    return proc


def ansible_playbook(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``ansible-playbook <args>`` from the repository; ``.tail`` holds the end of its output."""
    return _run([str(BIN / "ansible-playbook"), *args], env, timeout)


def ansible_module(
    module: str, args: dict, *options: str, env: dict | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """One module on localhost (ad hoc, this Python, the json callback); see module_result."""
    env = ansible_env(env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    cmd = [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-e", PYTHON]
    return _run([*cmd, "-m", module, "-a", json.dumps(args), *options], env, timeout)


def module_result(proc: subprocess.CompletedProcess) -> dict:
    """The module's result in ansible_module's output (profile_tasks prints lines around the JSON)."""
    try:
        doc, _ = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{") :])
        return doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(
            f"no JSON result from ansible (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        ) from exc

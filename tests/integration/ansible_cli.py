"""Running the repository's playbooks and modules from the integration tests as an operator would:
the repository's ansible.cfg, no colours, output captured, a time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import awx_config

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


class AwxSurveyError(AssertionError):
    """AWX refuses the launch: the survey's answers are not valid (nothing runs)."""


def awx_job(
    template: str,
    answers: dict,
    inventory: str,
    data_dir: Path,
    injected: dict | None = None,
    choices: dict | None = None,
    timeout: int = 1800,
) -> subprocess.CompletedProcess:
    """A job template of awx/controller.yml run the way AWX runs it: the survey checks the answers
    (AwxSurveyError, nothing runs), then ansible-runner runs the template's playbook from a private
    data dir - project/ (this repository, whose ansible.cfg applies), the inventory, env/extravars
    (the template's extra vars, the answers, what the credentials inject (``injected``) and what AWX
    adds: awx_job_id, awx_user_name). Returns rc, stdout (``.tail``: its end)."""
    config = yaml.safe_load((REPO / "awx" / "controller.yml").read_text())
    jt = next(t for t in config["job_templates"] if t["name"] == template)
    problems = awx_config.answer_problems(jt["survey"], answers, choices or {})
    if problems:
        raise AwxSurveyError(f"{template}: " + "; ".join(problems))
    asked = {q["variable"] for q in jt["survey"]}
    defaults = {q["variable"]: q["default"] for q in jt["survey"] if "default" in q}
    extravars = {
        **jt.get("extra_vars", {}),
        **defaults,
        **{k: v for k, v in answers.items() if k in asked},  # AWX drops what the survey does not ask
        **(injected or {}),
        "awx_job_id": 4242,
        "awx_user_name": "awx-operator",
    }
    (data_dir / "env").mkdir(parents=True, exist_ok=True)
    (data_dir / "env" / "extravars").write_text(json.dumps(extravars))
    if not (data_dir / "project").exists():
        (data_dir / "project").symlink_to(REPO)
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}  # the project's ansible.cfg
    env.update(ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{env.get('PATH', '')}")
    cmd = [str(BIN / "ansible-runner"), "run", str(data_dir), "-p", jt["playbook"], "--inventory", inventory]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    proc.tail = (proc.stdout + proc.stderr)[-3000:]
    return proc

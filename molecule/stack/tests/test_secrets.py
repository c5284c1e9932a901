"""Secrets never visible on a host: a canary secret goes through each secret-bearing module path -
a Moodle setting that holds a password (lms_config, `smtppass`) and a user's password (lms_user) -
while the host's process table is sampled every 0.05 s. Then the samples, the host's journal, its
logs and temporary folders, and Ansible's own output are searched for the canary: 0 hits. The
sampler must have seen the modules' PHP processes of the site, or the search would prove nothing.

The canary reaches Ansible in a 0600 vars file, not on the controller's command line either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = os.environ.get("STACK_INVENTORY", str(REPO / "inventories" / "local"))
HOST, SITE = "dev1", "acme-dev"
SAMPLES, STOP = "/tmp/canary-ps", "/tmp/canary-ps.stop"  # noqa: S108 - in the test host
USER = {
    "username": "canaryuser",
    "firstname": "Canary",
    "lastname": "User",
    "email": "canary@example.invalid",
}
# Where a leaked secret would land on the host besides the process table and the journal.
SEARCHED = ["/var/log", "/tmp", "/var/tmp", "/root"]  # noqa: S108 - in the test host
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    CONTAINERS_CONF=str(REPO / "containers" / "containers.conf"),
    ANSIBLE_NOCOLOR="1",
)


def podman(*argv: str, check: bool = True) -> str:
    run = subprocess.run(
        ["podman", "exec", HOST, *argv], env=ENV, capture_output=True, text=True, check=False
    )
    if check and run.returncode:
        raise AssertionError(f"{HOST}: {' '.join(argv)} failed: {run.stderr}{run.stdout}")
    return run.stdout


def _installed() -> bool:
    if shutil.which("podman") is None:
        return False
    try:
        podman("test", "-f", f"/srv/lms/{SITE}/current/config.php")
    except (AssertionError, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _installed(), reason=f"{SITE} is not installed on {HOST} (no Moodle source)"
)


def test_a_canary_secret_is_nowhere_on_the_host(tmp_path):
    canary = f"Canary-{uuid.uuid4().hex}-Z9#"  # meets Moodle's default password policy
    since = podman("date", "+%Y-%m-%d %H:%M:%S").strip()
    site = {"path": f"/srv/lms/{SITE}/current", "web_user": SITE, "php": "/usr/bin/php8.2"}
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(yaml.safe_dump({"canary": canary}))
    secrets.chmod(0o600)
    play = [
        {
            "hosts": HOST,
            "become": True,
            "gather_facts": False,
            "vars_files": [str(secrets)],
            "tasks": [
                {
                    "name": "A password setting",
                    "lms_config": {**site, "name": "smtppass", "value": "{{ canary }}"},
                    "no_log": True,
                },
                {
                    "name": "A user's password",
                    "lms_user": {**site, **USER, "password": "{{ canary }}"},
                    "no_log": True,
                },
                {"name": "The setting back", "lms_config": {**site, "name": "smtppass", "value": ""}},
                {
                    "name": "The user gone",
                    "lms_user": {**site, "username": USER["username"], "state": "absent"},
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    loop = f"while [ ! -f {STOP} ]; do ps -eo pid,args >> {SAMPLES}; sleep 0.05; done"
    podman("sh", "-c", f'rm -f {SAMPLES} {STOP}; setsid -f sh -c "{loop}" >/dev/null 2>&1')
    try:
        run = subprocess.run(
            [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", INVENTORY, str(tmp_path / "play.yml")],
            cwd=REPO,
            env=ENV,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    finally:
        podman("sh", "-c", f"touch {STOP}; sleep 0.5")
    assert run.returncode == 0, run.stdout[-3000:]
    samples = podman("cat", SAMPLES)
    php_runs = [line for line in samples.splitlines() if "php" in line and SITE in line]
    assert php_runs, "the sampler saw none of the modules' PHP processes: the search would prove nothing"
    found = {
        "process table": canary in samples,
        "Ansible output": canary in run.stdout + run.stderr,
        "journal": canary in podman("journalctl", "--no-pager", "-o", "cat", "--since", since, check=False),
        "logs and temporary folders": bool(podman("grep", "-rlF", canary, *SEARCHED, check=False).strip()),
    }
    assert not any(found.values()), json.dumps(found)
    podman("rm", "-f", SAMPLES, STOP)

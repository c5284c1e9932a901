"""Secrets never visible on a host: a canary secret goes through each secret-bearing module path -
a Moodle setting that holds a password (lms_config, `smtppass`), a user's password (lms_user) and a
site's Redis password (the lms role's app_cache entry point) - while the host's process table is
sampled every 0.05 s. Then the samples, the host's journal, its
logs and temporary folders, and Ansible's own output are searched for the canary: 0 hits. The
sampler must have seen the modules' PHP processes of the site, or the search would prove nothing.

The canary reaches Ansible in a 0600 vars file, not on the controller's command line either.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from stack_hosts import ansible, installed, output_of

HOST, SITE = "dev1", "acme-dev"
# A site with Redis (tier qa): its password goes through the lms role's app_cache entry point.
REDIS_HOST, REDIS_SITE = "qa1", "acme-qa"
SAMPLES, STOP = "/tmp/canary-ps", "/tmp/canary-ps.stop"  # noqa: S108 - in the test host
USER = {
    "username": "canaryuser",
    "firstname": "Canary",
    "lastname": "User",
    "email": "canary@example.invalid",
}
# Where a leaked secret would land on the host besides the process table and the journal.
SEARCHED = ["/var/log", "/tmp", "/var/tmp", "/root"]  # noqa: S108 - in the test host
pytestmark = pytest.mark.skipif(
    not installed({SITE: HOST, REDIS_SITE: REDIS_HOST}),
    reason=f"{SITE} and {REDIS_SITE} are not installed (no Moodle source)",
)


def run_sampled(
    host: str, play: list, tmp_path: Path, secrets: dict
) -> tuple[subprocess.CompletedProcess, str]:
    """ansible-playbook of ``play`` (its secrets in a 0600 vars file, not on the command line) while
    the host's process table is sampled every 0.05 s; returns the run and the samples."""
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump(secrets))
    secrets_file.chmod(0o600)
    for item in play:
        item["vars_files"] = [str(secrets_file)]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    loop = f"while [ ! -f {STOP} ]; do ps -eo pid,args >> {SAMPLES}; sleep 0.05; done"
    output_of(host, "sh", "-c", f'rm -f {SAMPLES} {STOP}; setsid -f sh -c "{loop}" >/dev/null 2>&1')
    try:
        run = ansible("ansible-playbook", str(tmp_path / "play.yml"), timeout=600)
    finally:
        output_of(host, "sh", "-c", f"touch {STOP}; sleep 0.5")
    samples = output_of(host, "cat", SAMPLES)
    output_of(host, "rm", "-f", SAMPLES, STOP)
    return run, samples


def leaks(host: str, canary: str, since: str, run: subprocess.CompletedProcess, samples: str) -> dict:
    """Where the canary was found: the process samples, Ansible's output, the journal, logs and
    temporary folders (the grep's own command line is not sampled: the sampler has stopped)."""
    journal = output_of(host, "journalctl", "--no-pager", "-o", "cat", "--since", since, check=False)
    return {
        "process table": canary in samples,
        "Ansible output": canary in run.stdout + run.stderr,
        "journal": canary in journal,
        "logs and temporary folders": bool(
            output_of(host, "grep", "-rlF", canary, *SEARCHED, check=False).strip()
        ),
    }


def test_a_canary_secret_is_nowhere_on_the_host(tmp_path):
    canary = f"Canary-{uuid.uuid4().hex}-Z9#"  # meets Moodle's default password policy
    since = output_of(HOST, "date", "+%Y-%m-%d %H:%M:%S").strip()
    site = {"path": f"/srv/lms/{SITE}/current", "web_user": SITE, "php": "/usr/bin/php8.2"}
    play = [
        {
            "hosts": HOST,
            "become": True,
            "gather_facts": False,
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
    run, samples = run_sampled(HOST, play, tmp_path, {"canary": canary})
    assert run.returncode == 0, run.stdout[-3000:]
    php_runs = [line for line in samples.splitlines() if "php" in line and SITE in line]
    assert php_runs, "the sampler saw none of the modules' PHP processes: the search would prove nothing"
    found = leaks(HOST, canary, since, run, samples)
    assert not any(found.values()), json.dumps(found)


def test_a_canary_redis_password_is_nowhere_on_the_host(tmp_path):
    """The lms role's app_cache entry point (what converge runs for a site with Redis) with a canary
    as the site's Redis password: it reaches Moodle's cache configuration, and nowhere else; the
    real password is put back after."""
    canary = f"canary-redis-{uuid.uuid4().hex}"
    since = output_of(REDIS_HOST, "date", "+%Y-%m-%d %H:%M:%S").strip()
    site = f"estate_sites | selectattr('name', 'eq', '{REDIS_SITE}') | first"
    entry = {"name": "lms", "tasks_from": "app_cache"}
    play = [
        {
            "hosts": REDIS_HOST,
            "become": True,
            "gather_facts": False,
            "tasks": [
                {
                    "name": "The application cache, with the canary as the Redis password",
                    "ansible.builtin.include_role": entry,
                    "vars": {
                        "lms_site": "{{ "
                        + site
                        + " | combine({'vars': {'redis_password': canary}}, recursive=true) }}"
                    },
                }
            ],
        }
    ]
    muc = f"/var/lib/lms/{REDIS_SITE}/muc/config.php"
    try:
        run, samples = run_sampled(REDIS_HOST, play, tmp_path, {"canary": canary})
        assert run.returncode == 0, run.stdout[-3000:]
        assert output_of(REDIS_HOST, "grep", "-c", canary, muc, check=False).strip() == "1", (
            "the canary did not reach the cache configuration: the search would prove nothing"
        )
        muc_runs = [line for line in samples.splitlines() if "lms-muc-redis.php" in line]
        assert muc_runs, "the sampler saw no run of lms-muc-redis.php: the search would prove nothing"
        found = leaks(REDIS_HOST, canary, since, run, samples)
        assert not any(found.values()), json.dumps(found)
    finally:
        play[0]["tasks"][0]["vars"] = {"lms_site": "{{ " + site + " }}"}
        (tmp_path / "back.yml").write_text(yaml.safe_dump(play))
        back = ansible("ansible-playbook", str(tmp_path / "back.yml"), timeout=600)
    assert back.returncode == 0, back.stdout[-3000:]
    assert output_of(REDIS_HOST, "grep", "-c", canary, muc, check=False).strip() == "0"

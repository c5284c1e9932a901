"""Testinfra checks of playbooks/patch.yml on initech-live (web on mweb1 then mweb2, MariaDB on mdb2):
a run patches the hosts one at a time and records each in its journal; a health check that fails
on the first host stops the run before the second host (and the database host) is touched.

The test hosts' apt sources are this machine's Debian mirror: there may be no update at all, so
the checks read the journals (one line per host and run), not that something was upgraded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from ansible_cli import ansible_playbook

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = os.environ.get("STACK_INVENTORY", str(REPO / "molecule" / "stack-mariadb" / "inventory"))
SITE, WEB, DB = "initech-live", ("mweb1", "mweb2"), "mdb2"
HOSTS = (*WEB, DB)
JOURNAL = "/var/log/three-instance/patch.jsonl"
FPM = "php8.2-fpm"

testinfra_hosts = [f"podman://{DB}"]  # the checks name their hosts themselves


def _host(name: str):
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(autouse=True, scope="module")
def _moodle_installed():
    if not _host(WEB[0]).file(f"/srv/lms/{SITE}/current").exists:
        pytest.skip(f"{SITE} has no code on {WEB[0]}: converge the scenario with Moodle (set MOODLE_SRC)")


def journal(name: str) -> list[dict]:
    f = _host(name).file(JOURNAL)
    return [json.loads(line) for line in f.content_string.splitlines()] if f.exists else []


def login_status(web: str) -> int:
    return int(
        _host(web).check_output(
            f"curl -sk -o /dev/null -w '%{{http_code}}' --max-time 60 --resolve {SITE}.test:443:127.0.0.1 "
            f"https://{SITE}.test/login/index.php"
        )
    )


def patch(**extra):
    return ansible_playbook("-i", INVENTORY, "playbooks/patch.yml", "-e", json.dumps({"site": SITE, **extra}))


def test_a_patch_run_patches_each_host_once_and_the_site_still_answers():
    before = {h: len(journal(h)) for h in HOSTS}
    out = patch()
    assert out.returncode == 0, out.stdout[-4000:]
    records = {}
    for h in HOSTS:
        lines = journal(h)
        assert len(lines) == before[h] + 1, (h, lines[before[h] :])
        records[h] = lines[-1]
    for h, r in records.items():
        assert r["host"] == h and r["site"] == SITE and r["scope"] == "security"
        assert r["health_ok"] is True and r["failures"] == [], r
        assert isinstance(r["changed"], list) and r["rebooted"] is False
        assert SITE in r["sites"] and r["by"]
    # one at a time, in order: web hosts (first one first), then the database host
    assert records["mweb1"]["at"] <= records["mweb2"]["at"] <= records["mdb2"]["at"]
    assert all(login_status(web) == 200 for web in WEB)
    # the lock was released: another job may take the site at once
    assert not _host(WEB[0]).file(f"/srv/lms/{SITE}/.lock").exists


def test_a_failed_health_check_on_the_first_host_stops_before_the_second():
    """The acceptance: PHP-FPM stopped and masked on mweb1 only (its login page gives 502); the
    run fails naming mweb1 and the site, mweb1's journal records the failed check, and mweb2's
    and mdb2's journals are unchanged."""
    first = _host(WEB[0])
    before = {h: len(journal(h)) for h in HOSTS}
    assert login_status(WEB[0]) == 200
    try:
        first.check_output(f"systemctl stop {FPM} && systemctl mask --runtime {FPM}")
        assert login_status(WEB[0]) == 502
        out = patch()
    finally:
        first.check_output(f"systemctl unmask --runtime {FPM} && systemctl start {FPM}")
    assert out.returncode != 0
    assert f"patching {SITE} stopped on {WEB[0]}" in out.stdout, out.stdout[-4000:]
    assert f"site {SITE}: login page https://{SITE}.test/login/index.php on {WEB[0]} answered HTTP 502" in (
        out.stdout
    )
    assert f"not touched: {WEB[1]}, {DB}" in out.stdout

    lines = journal(WEB[0])
    assert len(lines) == before[WEB[0]] + 1
    assert lines[-1]["health_ok"] is False
    assert any(f.startswith(f"{FPM} is ") for f in lines[-1]["failures"]), lines[-1]
    assert len(journal(WEB[1])) == before[WEB[1]] and len(journal(DB)) == before[DB]
    # FPM is back: the site answers on both web hosts again
    assert first.service(FPM).is_running
    assert all(login_status(web) == 200 for web in WEB)

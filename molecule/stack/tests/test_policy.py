"""Tier policy on the stack scenario's hosts (docs/tier-policy.md): the converged sites' config.php,
read back by the real playbooks/audit.yml (subprocess ansible-playbook on the estate inventory),
cfg.php refusing forced settings, the banner over HTTP, and drift after a hand edit.

Sites: acme-dev, globex-dev (dev1), acme-qa, globex-qa (qa1), acme-live (live1). The hand-edited
config.php is put back at the end, so the test can run again.

Run (containers up): .venv/bin/pytest -p no:cacheprovider molecule/stack/tests/test_policy.py
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from stack_hosts import INVENTORY, PHP, REPO, SITES, ansible, installed, run_in

# AWX's way of running a job template (ansible-runner; awx/controller.yml).
sys.path.insert(0, str(REPO / "tests" / "integration"))
from ansible_cli import awx_job

pytestmark = pytest.mark.skipif(
    not installed(SITES),
    reason="the stack scenario's containers (dev1, qa1, live1 with Moodle installed) are not up",
)


def audit(*extra: str) -> subprocess.CompletedProcess:
    return ansible("ansible-playbook", "playbooks/audit.yml", *extra)


def cfg(site: str, *args: str) -> subprocess.CompletedProcess:
    return run_in(
        SITES[site],
        "runuser",
        "-u",
        site,
        "--",
        PHP,
        f"/srv/lms/{site}/current/admin/cli/cfg.php",
        *args,
        check=False,
    )


def test_the_converged_estate_conforms():
    run = audit()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for site in SITES:
        assert f"{site} | uninstallclionly | 1 (forced) | 1 (forced) | ok" in run.stdout
    assert "acme-dev | noemailever | 1 (forced) | 1 (forced) | ok" in run.stdout
    assert "acme-qa | noemailever | 1 (forced) | 1 (forced) | ok" in run.stdout
    assert "acme-live | divertallemailsto | '' (forced) | '' (forced) | ok" in run.stdout
    assert "acme-live | additionalhtmltopofbody | no environment banner | none | ok" in run.stdout
    assert "DRIFT" not in run.stdout
    checked = audit("--check", "-e", "customer=acme")
    assert checked.returncode == 0 and "changed=0" in checked.stdout, checked.stdout[-3000:]


def test_the_audit_runs_as_awx_runs_it(tmp_path):
    """The "Audit the tier policy" job template (the nightly schedule's) through ansible-runner:
    every site conforms, each with an identity of its own."""
    out = awx_job("Audit the tier policy", {}, str(INVENTORY), tmp_path / "awx")
    assert out.returncode == 0, out.tail
    for site in SITES:
        assert f"{site} | siteidentifier | its own in the estate | its own | ok" in out.stdout, out.tail


@pytest.mark.parametrize("site", ["acme-dev", "acme-qa", "acme-live"])
def test_forced_settings_cannot_be_changed(site):
    for args in (["--name=uninstallclionly", "--set=0"], ["--name=debug", "--set=15"]):
        run = cfg(site, *args)
        assert run.returncode == 4, (site, args, run.stdout, run.stderr)


@pytest.mark.parametrize("site", ["acme-dev", "acme-qa", "acme-live"])
def test_banner_on_dev_and_qa_pages_only(site):
    name = f"{site}.local"
    page = run_in(
        SITES[site], "curl", "-s", "--resolve", f"{name}:80:127.0.0.1", f"http://{name}/login/index.php"
    ).stdout
    assert "<html" in page.lower(), page[:500]
    assert ('class="three-instance-banner"' in page) == (not site.endswith("-live"))


def replace(host: str, path: str, text: str) -> None:
    """A file's new content, written beside it with its owner and mode, then renamed over it."""
    script = (
        f"cat > {path}.edit && chown --reference={path} {path}.edit && chmod --reference={path} {path}.edit "
        f"&& mv {path}.edit {path}"
    )
    run_in(host, "sh", "-c", script, stdin=text)


def test_a_hand_edit_of_config_php_is_drift():
    path = "/srv/lms/acme-dev/shared/config.php"
    original = run_in("dev1", "cat", path).stdout
    assert "$CFG->noemailever = true;" in original
    edited = original.replace("$CFG->noemailever = true;", "$CFG->noemailever = false;")
    try:
        replace("dev1", path, edited)
        run = audit("-e", "site=acme-dev")
        assert run.returncode != 0
        assert "tier policy drift" in run.stdout
        assert "acme-dev | noemailever | 1 (forced) | '' (forced) | DRIFT" in run.stdout, run.stdout[-3000:]
    finally:
        replace("dev1", path, original)
    assert audit("-e", "site=acme-dev").returncode == 0

"""What the stack scenario's tests share: where the repository and the estate inventory are, the
environment Ansible and podman run with, commands in a test host and Ansible runs on the estate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import yaml

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = Path(os.environ.get("STACK_INVENTORY", str(REPO / "inventories" / "local")))
BIN = REPO / ".venv" / "bin"
PHP = "php8.2"
SITES = {"acme-dev": "dev1", "acme-qa": "qa1", "acme-live": "live1", "globex-dev": "dev1", "globex-qa": "qa1"}
# The scenario's S3 API (tools/local_s3.py, started by the Makefile's molecule-stack)
S3_ENDPOINT_FILE = REPO / ".cache" / "s3" / "endpoint.json"
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    ANSIBLE_NOCOLOR="1",
    CONTAINERS_CONF=str(REPO / "containers" / "containers.conf"),
    PATH=f"{BIN}:{os.environ['PATH']}",
)


def s3_store(bucket: str | None = None, *, from_containers: bool = False, **more) -> dict:
    """A store (backup_store, release_store, poc_store) on the scenario's S3 API: its address as the
    controller reaches it, or as the test hosts do (``from_containers``), and its key."""
    endpoint = json.loads(S3_ENDPOINT_FILE.read_text())
    store = {
        "endpoint_url": endpoint["container_endpoint_url" if from_containers else "endpoint_url"],
        "region": endpoint["region"],
        "access_key": endpoint["access_key"],
        "secret_key": endpoint["secret_key"],
        **more,
    }
    return {"bucket": bucket, **store} if bucket else store


def vars_file(path: Path, data: dict) -> str:
    """Extra vars holding a secret (a store's key) in a 0600 file, not on the command line: returns
    the ``-e`` argument, ``@<path>``."""
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return f"@{path}"


def s3_client():
    """A boto3 S3 client of the scenario's S3 API, as the controller reaches it."""
    key = s3_store()
    return boto3.client(
        "s3",
        endpoint_url=key["endpoint_url"],
        region_name=key["region"],
        aws_access_key_id=key["access_key"],
        aws_secret_access_key=key["secret_key"],
    )


def run_in(
    host: str, *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """A command in a test host (podman exec); fails the test when it fails, unless check=False."""
    run = subprocess.run(
        ["podman", "exec", *(["-i"] if stdin is not None else []), host, *argv],
        input=stdin,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check and run.returncode:
        raise AssertionError(f"{host}: {' '.join(argv)} failed ({run.returncode}): {run.stderr}{run.stdout}")
    return run


def output_of(host: str, *argv: str, check: bool = True, stdin: str | None = None) -> str:
    """What a command in a test host prints."""
    return run_in(host, *argv, check=check, stdin=stdin).stdout


def installed(sites: dict[str, str]) -> bool:
    """Whether podman is here and each site ({site: host}) has Moodle installed on its host."""
    if shutil.which("podman") is None:
        return False
    try:
        for site, host in sites.items():
            run_in(host, "test", "-f", f"/srv/lms/{site}/current/config.php")
    except (AssertionError, OSError, subprocess.SubprocessError):
        return False
    return True


def ansible(
    tool: str, *args: str, inventory: Path | str = INVENTORY, timeout: int = 1200, env: dict | None = None
) -> subprocess.CompletedProcess:
    """An Ansible command of the repository's venv (ansible-playbook, ansible) on the estate
    inventory, from the repository (its ansible.cfg), output captured; ``env`` adds to its
    environment (THREE_INSTANCE_SITES)."""
    return subprocess.run(
        [str(BIN / tool), "-i", str(inventory), *args],
        cwd=REPO,
        env=dict(ENV, **(env or {})),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def sql(host: str, site: str, query: str) -> str:
    """One PostgreSQL query on a site's database (on its host), its rows as psql -tA prints them."""
    db = site.replace("-", "_")
    return output_of(host, "runuser", "-u", "postgres", "--", "psql", "-d", db, "-tAc", query).strip()


def closed_window_estate(folder: Path) -> Path:
    """A copy of the estate in ``folder`` whose acme Live window is on a weekday three days from now:
    closed today, so that a refusal outside the window is the guard rail itself, not a flag."""
    estate = yaml.safe_load((INVENTORY / "estate.yml").read_text())
    day = (datetime.now(ZoneInfo("Europe/London")) + timedelta(days=3)).strftime("%a").lower()
    estate["customers"]["acme"]["tiers"]["live"]["maintenance_windows"] = [f"{day} 02:00-03:00 Europe/London"]
    (folder / "estate.yml").write_text(yaml.safe_dump(estate))
    (folder / "group_vars").symlink_to(INVENTORY / "group_vars")
    return folder

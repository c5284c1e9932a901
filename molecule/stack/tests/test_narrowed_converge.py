"""A converge narrowed to one site (THREE_INSTANCE_SITES, docs/inventory.md) on a database host that
serves others keeps those others' access: pg_hba.conf is assembled from one fragment per site's
database, and the narrowed run rewrites only its own. Before, the file was rendered from the
narrowed site list, and a run for acme-dev cut globex-dev off its database on the shared Dev
server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from stack_hosts import BIN, ENV, INVENTORY, REPO, run_in

HOST, NARROWED, OTHER = "dev1", "acme-dev", "globex-dev"
SECRETS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "secrets"
pytestmark = pytest.mark.skipif(
    not (SECRETS / OTHER / "db_password").is_file(),
    reason="the stack's hosts and Molecule's secrets are not here (run under molecule)",
)


def pg_hba() -> str:
    return run_in(HOST, "cat", "/etc/postgresql/15/main/pg_hba.conf").stdout


def test_a_narrowed_converge_keeps_the_other_sites_database_access():
    db = OTHER.replace("-", "_")
    assert re.search(rf"^local\s+{db},", pg_hba(), re.M), pg_hba()

    narrowed = subprocess.run(
        [
            str(BIN / "ansible-playbook"), "-i", str(INVENTORY), "playbooks/site.yml",
            "--tags", "database", "--limit", HOST,
            "-e", json.dumps({"three_instance_secrets_dir": str(SECRETS)}),
        ],
        cwd=REPO, env=dict(ENV, THREE_INSTANCE_SITES=NARROWED), capture_output=True, text=True,
        check=False, timeout=900,
    )  # fmt: skip
    assert narrowed.returncode == 0, narrowed.stdout[-4000:] + narrowed.stderr[-2000:]
    # The narrowed run saw only acme-dev, yet changed nothing: globex-dev's fragment stays.
    assert "globex" not in narrowed.stdout, narrowed.stdout[-4000:]
    assert re.search(rf"{HOST}\s+: ok=\d+\s+changed=0 ", narrowed.stdout), narrowed.stdout[-3000:]

    hba = pg_hba()
    assert re.search(rf"^local\s+{db},\S+\s+{db}\s+scram-sha-256$", hba, re.M), hba
    # globex-dev's own account still reaches its database with its password, over the socket.
    password = (SECRETS / OTHER / "db_password").read_text().strip()
    login = run_in(
        HOST, "env", f"PGPASSWORD={password}", "psql", "-h", "/var/run/postgresql", "-U", db, "-d", db,
        "-tAc", "select 1", check=False,
    )  # fmt: skip
    assert login.stdout.strip() == "1", login.stderr

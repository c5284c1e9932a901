"""The path of a brand-new machine (no MOODLE_SRC, an empty cache, no download), run on every
`make test` whatever this machine has: the demo's release cycle and the stack scenario's side
effect must skip cleanly with a message that says how to get Moodle, start nothing and touch no
host (every play that needs a release is skipped on the controller, so no container is needed)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from ansible_cli import REPO, ansible_env, ansible_playbook


@pytest.fixture
def moodle_less_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MOODLE_SRC"}
    empty = tmp_path / "cache"
    empty.mkdir()
    return ansible_env(
        env,
        THREE_INSTANCE_CACHE=str(empty),
        THREE_INSTANCE_MOODLE_DOWNLOAD="0",
        MOLECULE_PROJECT_DIRECTORY=str(REPO),
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"),
        LOCAL_S3_PORT="1",  # a started S3 API would fail at once on this port
    )


def _moto_running() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "moto_server"], capture_output=True, text=True, check=False)
    return set(out.stdout.split())


@pytest.mark.parametrize("playbook", ["playbooks/demo_release.yml", "molecule/stack/side_effect.yml"])
def test_release_cycle_skips_without_moodle(moodle_less_env, playbook):
    before = _moto_running()
    proc = ansible_playbook("-i", "inventories/local", playbook, env=moodle_less_env, timeout=300)
    assert proc.returncode == 0, proc.tail
    out = proc.stdout
    assert "[SKIPPED] no Moodle source" in out and "MOODLE_SRC" in out, out[-3000:]
    assert "[SKIPPED] the release cycle" in out
    # no host was contacted, nothing failed, no S3 API was started
    recap = out[out.index("PLAY RECAP") :].split("TASKS RECAP")[0]
    rows = dict(re.findall(r"^(\S+)\s+: (ok=.*)$", recap, re.M))
    assert "localhost" in rows and "failed=0" in rows.pop("localhost"), recap
    for host, row in rows.items():  # a container that does not exist would be unreachable
        assert re.match(r"ok=0\s+changed=0\s+unreachable=0\s+failed=0", row), (host, row)
    assert "Start the local S3 API" not in out.split("PLAY RECAP")[0].split("[SKIPPED] the release cycle")[1]
    assert _moto_running() <= before


def test_moodle_source_says_how_to_get_moodle(moodle_less_env):
    proc = ansible_playbook(
        "-i", "inventories/local", "playbooks/moodle_source.yml", env=moodle_less_env, timeout=120
    )
    assert proc.returncode == 0, proc.tail
    assert "[SKIPPED] no Moodle source" in proc.stdout
    assert "docs/test-hosts.md" in proc.stdout or "MOODLE_SRC" in proc.stdout

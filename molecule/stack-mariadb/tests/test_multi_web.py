"""Testinfra checks of releases on a site with two web hosts (side_effect.yml): initech-live, web
on mweb1 (first: it upgrades) and mweb2, MariaDB on mdb2, one dataroot shared by both.

Release 2 needs maintenance: mweb1 upgrades once and holds maintenance until mweb2 runs release 2
too, so no host serves the old code on the upgraded database. Release 3 needs none: the hosts
switch one at a time. A release whose upgrade fails on mweb1 stops before mweb2 changes at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

# The integration tests' runner of playbooks (repository ansible.cfg, no colours, output captured).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from ansible_cli import ansible_playbook, awx_job

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(REPO / "tools"))
import moodle_source

INVENTORY = os.environ.get("STACK_INVENTORY", str(REPO / "molecule" / "stack-mariadb" / "inventory"))
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SITE, WEB, DB = "initech-live", ("mweb1", "mweb2"), "mdb2"
R2, R3, FAIL = "moodle-5.1-r2", "moodle-5.1-r3", "moodle-5.1-fail"
TIDEMO = "2026010100"

pytestmark = pytest.mark.skipif(
    not (EPHEMERAL / "release-store").is_dir(),
    reason="no release was deployed (side_effect.yml needs a Moodle tree: set MOODLE_SRC)",
)
testinfra_hosts = [f"podman://{DB}"]  # the checks name their hosts themselves


def _host(name: str):
    return testinfra.get_host(f"podman://{name}")


def history(web: str) -> list[dict]:
    f = _host(web).file(f"/srv/lms/{SITE}/deployments.jsonl")
    return [json.loads(line) for line in f.content_string.splitlines()] if f.exists else []


def entry(web: str, release: str) -> dict:
    return [e for e in history(web) if e["release"] == release and e["outcome"] == "deployed"][-1]


def current(web: str) -> str:
    return _host(web).check_output(f"readlink /srv/lms/{SITE}/current")


DB_NAME = SITE.replace("-", "_")
TABLES = "SELECT count(*) FROM information_schema.tables WHERE table_schema=DATABASE()"


def sql(query: str) -> str:
    db = DB_NAME
    return _host(DB).check_output(f'mariadb -N -B {db} -e "{query}"')


def login_status(web: str) -> int:
    return int(
        _host(web).check_output(
            f"curl -sk -o /dev/null -w '%{{http_code}}' --max-time 60 --resolve {SITE}.test:443:127.0.0.1 "
            f"https://{SITE}.test/login/index.php"
        )
    )


def in_maintenance() -> bool:
    return _host(WEB[0]).file(f"/var/lib/lms/{SITE}/climaintenance.html").exists


def test_both_web_hosts_run_release_3_verified_on_one_database():
    for web in WEB:
        assert current(web) == f"releases/{R3}"
        record = json.loads(_host(web).file(f"/srv/lms/{SITE}/deployment.json").content_string)
        assert record["release"] == R3 and record["verified"] and all(record["checks"].values())
        assert login_status(web) == 200
    assert (
        sql("SELECT value FROM mdl_config_plugins WHERE plugin='local_tidemo' AND name='version'") == TIDEMO
    )
    assert not in_maintenance()


def test_the_schema_change_upgraded_once_inside_one_window():
    first, second = entry(WEB[0], R2), entry(WEB[1], R2)
    assert first["upgraded"] and 0 < first["upgrade_seconds"] <= first["maintenance_seconds"]
    assert first["snapshot"]  # the first host snapshots the site's database and dataroot
    assert not second["upgraded"] and second["maintenance_seconds"] == 0 and second["snapshot"] is None
    # mweb2 switched while mweb1 held maintenance: after it began and before it ended.
    began = first["maintenance_since"]
    assert began <= first["switched_at"] <= second["switched_at"] <= began + first["maintenance_seconds"]


def test_a_database_rollback_holds_maintenance_until_every_host_switched_back():
    """Release 2 rolled back (side_effect.yml): mweb1 restored the database and kept maintenance on
    while mweb2 switched back, so no host served release 2's code on the older database."""
    first, second = ([e for e in history(web) if e["outcome"] == "rolled-back"][-1] for web in WEB)
    assert first["previous_release"] == second["previous_release"] == R2
    assert first["snapshot"] and first["maintenance_seconds"] > 0 and second["snapshot"] is None
    began, ended = first["maintenance_since"], first["maintenance_since"] + first["maintenance_seconds"]
    assert began <= first["switched_at"] <= second["switched_at"] <= ended
    assert first["verified"] and second["verified"]


def test_a_release_without_maintenance_rolls_host_by_host():
    first, second = entry(WEB[0], R3), entry(WEB[1], R3)
    for e in (first, second):
        assert e["previous_release"] == R2 and not e["upgraded"] and e["maintenance_seconds"] == 0
    assert first["switched_at"] < second["switched_at"]


def run(playbook: str, tmp_path: Path, **extra) -> subprocess.CompletedProcess:
    """A playbook on this estate with the side effect's release store and a fresh controller cache."""
    extra = {
        "release_store": {"type": "dir", "path": str(EPHEMERAL / "release-store")},
        "release_cache_dir": str(tmp_path / "cache"),
        **extra,
    }
    return ansible_playbook("-i", INVENTORY, f"playbooks/{playbook}", "-e", json.dumps(extra))


def test_a_failed_upgrade_on_the_first_host_leaves_the_second_untouched(tmp_path):
    moodle_src = moodle_source.resolve()["path"]  # the converge's source, by the same rule
    assert moodle_src, "no Moodle source, yet side_effect.yml deployed a release"
    built = run(
        "build_release.yml",
        tmp_path,
        manifest=str(REPO / "releases" / f"{FAIL}.yml"),
        release_manifest_vars={"MOODLE_SRC": moodle_src},
    )
    assert built.returncode == 0, built.stdout[-3000:]
    before = {web: (current(web), history(web)) for web in WEB}
    tables = sql(TABLES)

    # The only way to Live: the release is verified on initech-dev and initech-qa (it fails on Live only)
    for step, extra in (
        ("deploy.yml", {"site": "initech-dev", "release": FAIL}),
        ("promote.yml", {"to": "qa"}),
    ):
        done = run(step, tmp_path, **({"customer": "initech"} if step == "promote.yml" else {}), **extra)
        assert done.returncode == 0, done.stdout[-3000:]
    # The fail release's upgrade fault on (tests/fixtures/plugins): local_tifail's install throws on Live.
    marker = "mkdir -p /etc/three-instance-fault && touch /etc/three-instance-fault/upgrade"
    for web in WEB:
        _host(web).check_output(marker)
    try:
        out = run("promote.yml", tmp_path, customer="initech", to="live")
    finally:
        for web in WEB:
            _host(web).check_output("rm -rf /etc/three-instance-fault")
    assert out.returncode != 0
    assert (
        f"deploying release {FAIL} FAILED" in out.stdout
        and "restored from the pre-change snapshot" in out.stdout
    )

    assert current(WEB[0]) == before[WEB[0]][0] and history(WEB[0])[-1]["outcome"] == "failed"
    assert (current(WEB[1]), history(WEB[1])) == before[WEB[1]]  # staged only: nothing it serves changed
    assert (
        sql("SELECT count(*) FROM mdl_config_plugins WHERE plugin IN ('local_tifail', 'local_tiwebfail')")
        == "0"
    )
    assert sql(TABLES) == tables
    assert not in_maintenance() and all(login_status(web) == 200 for web in WEB)


def test_a_converge_run_as_awx_runs_it(tmp_path):
    """The "Converge the estate" job template through ansible-runner, from a private data dir with
    the project's own ansible.cfg (as AWX runs it), over the whole estate: it succeeds. (Not with a
    limit: a site's database grants and config.php name the other hosts by their facts, which a
    limited run without a fact cache does not have - AWX templates keep use_fact_cache on.)"""
    found = moodle_source.resolve()
    # What the scenario's converge.yml gives site.yml; on a controller, the template's extra vars
    # and the Vault credential would.
    template_vars = {
        "lms_source": {"type": found["type"], "path": found["path"]},
        "lms_source_cache_dir": str(REPO / ".cache" / "releases"),
        "three_instance_secrets_dir": str(EPHEMERAL / "secrets"),
    }
    out = awx_job("Converge the estate", {}, INVENTORY, tmp_path / "awx", template_vars)
    assert out.returncode == 0, out.tail
    recap = [line for line in out.stdout.splitlines() if line.split(" ")[0] in (*WEB, DB, "mdb1")]
    assert len(recap) == 4 and all(" failed=0 " in line and " unreachable=0 " in line for line in recap), (
        recap
    )
    assert not in_maintenance() and all(login_status(web) == 200 for web in WEB)

"""The release cycle on the converged estate (after side_effect.yml; docs/releases.md).

side_effect.yml built three releases into the local S3 API and moved each dev -> qa -> live. These
tests check where they run and what the deploys recorded, then drive the playbooks themselves:
every refusal leaves every host exactly as it was (deployment records and `current`), a rollback
restores the database snapshot, and a release whose upgrade fails on Live leaves Live on the
previous release with its database intact and maintenance off. They end with the estate as the
cycle left it (every acme site on release 3), so they can run again.
"""

# ruff: noqa: S608 - SQL in these checks is built from constants, not from input

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(REPO / "tools"))
import moodle_source

# AWX's way of running a job template (ansible-runner; awx/controller.yml's surveys).
sys.path.insert(0, str(REPO / "tests" / "integration"))
from ansible_cli import AwxSurveyError, awx_job
from stack_hosts import s3_client, s3_store

INVENTORY = os.environ.get("STACK_INVENTORY", str(REPO / "inventories" / "local"))
BUCKET = "molecule-releases"
R1, R2, R3, FAIL = "moodle-5.1-r1", "moodle-5.1-r2", "moodle-5.1-r3", "moodle-5.1-fail"
SITES = {"acme-dev": "dev1", "acme-qa": "qa1", "acme-live": "live1", "globex-dev": "dev1", "globex-qa": "qa1"}
TIDEMO = "2026010100"  # release 3 changes only local_tidemo's $plugin->release string


def _host(name: str):
    return testinfra.get_host(f"podman://{name}")


def record(site: str) -> dict | None:
    f = _host(SITES[site]).file(f"/srv/lms/{site}/deployment.json")
    return json.loads(f.content_string) if f.exists else None


def history(site: str) -> list[dict]:
    f = _host(SITES[site]).file(f"/srv/lms/{site}/deployments.jsonl")
    return [json.loads(line) for line in f.content_string.splitlines()] if f.exists else []


def state() -> dict:
    """What must not change when a job is refused: every site's records and `current`."""
    out = {}
    for site, host in SITES.items():
        h = _host(host)
        base = f"/srv/lms/{site}"
        out[site] = {
            "current": h.check_output(f"readlink {base}/current || true"),
            "record": h.run(f"cat {base}/deployment.json").stdout,
            "history": h.run(f"cat {base}/deployments.jsonl").stdout,
        }
    out["backups"] = backup_manifests()
    return out


if record("acme-live") is None:
    pytest.skip(
        "no release cycle ran (side_effect.yml needs a Moodle tree: MOODLE_SRC, or "
        f"{moodle_source.cache_dir()}/moodle-<branch>; docs/test-hosts.md, 'Real Moodle')",
        allow_module_level=True,
    )

STORE = s3_store(BUCKET, type="s3", prefix="releases/")
# Live is backed up here before each change (side_effect.yml and every run below).
BACKUP_BUCKET = "molecule-backups"
BACKUP_STORE = s3_store(BACKUP_BUCKET, from_containers=True, prefix="lms-backups")
S3 = s3_client()
LIVE_MANIFESTS = "lms-backups/acme/sites/acme-live/manifests/"


def backup_manifests(prefix: str = LIVE_MANIFESTS) -> list[str]:
    listing = S3.list_objects_v2(Bucket=BACKUP_BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


# The same Moodle source as the converge (tools/moodle_source.py: MOODLE_SRC, the cache, the download).
MOODLE_SRC = moodle_source.resolve()["path"]


# The survey's choices as awx/apply.yml would fill them from this estate.
AWX_CHOICES = {"customers": ["acme", "globex"], "sites": sorted([*SITES, "globex-live"])}


def awx(template: str, tmp_path: Path, **answers) -> subprocess.CompletedProcess:
    """Job template ``template`` launched with these survey answers, as AWX runs it (ansible-runner);
    the stores and the QA accounts come in as the credentials inject them."""
    injected = {"release_store": STORE, "backup_store": BACKUP_STORE, "qa_accounts_passwords": QA_PASSWORDS}
    return awx_job(template, answers, INVENTORY, tmp_path / "awx", injected, AWX_CHOICES)


def run(
    playbook: str, tmp_path: Path, inventory: str = INVENTORY, options: tuple = (), **extra
) -> subprocess.CompletedProcess:
    """ansible-playbook on the estate with the cycle's store and a fresh controller cache;
    ``options`` are more command-line options (``--tags``, ``--limit``)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    extra = {
        "release_store": STORE,
        "backup_store": BACKUP_STORE,
        "release_cache_dir": str(tmp_path / "cache"),
        **extra,
    }
    return subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            inventory,
            f"playbooks/{playbook}",
            *options,
            "-e",
            json.dumps(extra),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def psql(site: str, sql: str) -> str:
    db = site.replace("-", "_")
    return _host(SITES[site]).check_output(f'runuser -u postgres -- psql -At -d {db} -c "{sql}"')


def plugin_version(site: str, component: str) -> str:
    return psql(site, f"SELECT value FROM mdl_config_plugins WHERE plugin='{component}' AND name='version'")


def login_status(site: str) -> int:
    h = _host(SITES[site])
    return int(
        h.check_output(
            f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 60 --resolve {site}.local:80:127.0.0.1 "
            f"http://{site}.local/login/index.php"
        )
    )


def in_maintenance(site: str) -> bool:
    return _host(SITES[site]).file(f"/var/lib/lms/{site}/climaintenance.html").exists


# ----- what the cycle left --------------------------------------------------------------------------


def test_every_acme_tier_runs_the_same_verified_release():
    records = {site: record(site) for site in ("acme-dev", "acme-qa", "acme-live")}
    assert {r["release"] for r in records.values()} == {R3}
    assert len({r["sha256"] for r in records.values()}) == 1
    for site, r in records.items():
        assert r["verified"] and all(r["checks"].values()), (site, r["checks"])
        assert r["site"] == site and r["flavour"] == "moodle"
        assert (
            _host(SITES[site]).file(f"/srv/lms/{site}/current").linked_to == f"/srv/lms/{site}/releases/{R3}"
        )
        assert plugin_version(site, "local_tidemo") == TIDEMO
        assert login_status(site) == 200 and not in_maintenance(site)
    # Globex was never released to: its converge-deployed code has no record.
    assert record("globex-dev") is None and record("globex-qa") is None


def test_releases_status_reads_what_the_records_on_disk_say(tmp_path):
    """releases_status.yml (through lms_deployment_info, the records' one reader) says, for every
    site of the estate, what its deployment.json on its host says."""
    out = run("releases_status.yml", tmp_path)
    assert out.returncode == 0, out.stdout[-4000:]
    for site in SITES:
        on_disk = record(site)
        line = re.search(rf'"msg": "{site}: ([^"]*)"', out.stdout)
        assert line, (site, out.stdout[-3000:])
        if on_disk is None:
            assert line.group(1) == "no release (converge code)"
        else:
            assert line.group(1).startswith(f"{on_disk['release']} (verified, {on_disk['deployed_at']},")


def test_live_maintenance_only_when_the_schema_changes():
    deployed = {e["release"]: e for e in history("acme-live") if e.get("outcome") == "deployed"}
    # Release 2 installs a plugin: upgrade in maintenance, after a snapshot; release 3 only changes
    # the plugin's release string and release 1 has the converge's core: no upgrade, no maintenance.
    assert deployed[R2]["upgraded"] and deployed[R2]["maintenance_seconds"] > 0
    # The window holds the upgrade (both timed on the host by lms_release_switch).
    assert 0 < deployed[R2]["upgrade_seconds"] <= deployed[R2]["maintenance_seconds"]
    assert not deployed[R3]["upgraded"] and deployed[R3]["maintenance_seconds"] == 0
    assert not deployed[R1]["upgraded"] and deployed[R1]["maintenance_seconds"] == 0
    # Users were kept out (nginx's gate, 503) through the window and the smoke checks, and only then
    # let in: the record shows that whole outage; a release without a window kept nobody out.
    assert deployed[R2]["outage_seconds"] >= deployed[R2]["maintenance_seconds"] > 0
    assert deployed[R3]["outage_seconds"] == 0
    for site, host in SITES.items():
        assert not _host(host).file(f"/srv/lms/{site}/.gate").exists, f"{site}'s gate left closed"
    assert deployed[R3]["previous_release"] == R2
    for entry in deployed.values():
        assert entry["snapshot"], "Live gets a snapshot before every change"
        assert entry["override_window_reason"] is None
    live = _host("live1")
    snap = deployed[R3]["snapshot"]
    dump = live.file(f"{snap}/db.pgc")
    assert dump.exists and dump.mode == 0o600 and dump.user == "root"
    assert live.file(f"{snap}/dataroot/filedir").is_directory
    assert not live.file(f"{snap}/dataroot/cache").exists
    assert live.file("/srv/lms/acme-live/deployment.json").mode == 0o644


def test_live_backed_up_to_s3_before_each_change():
    """DESIGN rule 3: each promotion to Live first took a backup to S3, checked in the bucket. Its
    manifest holds the release Live ran before the change, so it was taken before the switch."""
    first = {}
    for entry in history("acme-live"):
        if entry.get("outcome") == "deployed":
            first.setdefault(entry["release"], entry)
    manifests = backup_manifests()
    for release in (R1, R2, R3):
        entry = first[release]
        assert entry["backup"], f"no backup recorded before {release} went to Live: {entry}"
        key = f"{LIVE_MANIFESTS}{entry['backup']}.json"
        assert key in manifests
        manifest = json.loads(S3.get_object(Bucket=BACKUP_BUCKET, Key=key)["Body"].read())
        assert manifest["release_id"] == entry["previous_release"], (release, manifest["release_id"])
    # Dev and QA are not backed up by a deploy.
    assert all(e.get("backup") is None for site in ("acme-dev", "acme-qa") for e in history(site))


def test_daily_backup_timer_on_live(tmp_path):
    """site.yml with a backup store gives Live its daily timer (roles/backup); the timer's service
    backs Live up with the module's code and the system Python, then prunes. Its own prefix keeps
    that prune away from the backups the promotions took."""
    store = dict(BACKUP_STORE, prefix="lms-timer-backups")
    for _ in ("apply", "apply again: nothing changes"):
        out = run("site.yml", tmp_path, options=("--tags", "backup", "--limit", "live"), backup_store=store)
        assert out.returncode == 0, out.stdout[-4000:]
    assert re.search(r"live1\s+: ok=\d+\s+changed=0 ", out.stdout), out.stdout[-2000:]

    live = _host("live1")
    unit = "lms-backup-acme-live"
    timer = live.service(f"{unit}.timer")
    assert timer.is_enabled and timer.is_running
    shown = live.check_output(f"systemctl show {unit}.timer -p TimersCalendar -p RandomizedDelayUSec")
    assert "OnCalendar=*-*-* 01:30:00" in shown and "RandomizedDelayUSec=3h" in shown, shown
    assert live.file("/etc/three-instance/backup/acme-live.json").mode == 0o600

    manifests = "lms-timer-backups/acme/sites/acme-live/manifests/"
    before = set(backup_manifests(manifests))
    started = live.run(f"systemctl start {unit}.service")  # a oneshot: returns when it has finished
    journal = live.run(f"journalctl -u {unit}.service --no-pager -n 50").stdout
    assert started.rc == 0, journal
    assert live.check_output(f"systemctl show {unit}.service -p Result") == "Result=success"
    after = set(backup_manifests(manifests))
    new = after - before
    assert len(new) == 1, (new, journal)
    manifest = json.loads(S3.get_object(Bucket=BACKUP_BUCKET, Key=new.pop())["Body"].read())
    assert manifest["site"] == "acme-live" and manifest["release_id"] == record("acme-live")["release"]
    # Same-day backups: the prune kept the newest only.
    assert len(after) == 1, after


# ----- refusals: nothing changes ----------------------------------------------------------------------


def closed_window_inventory(tmp_path: Path) -> str:
    """The local estate with acme's Live window closed for the test's moment."""
    estate = yaml.safe_load((Path(INVENTORY) / "estate.yml").read_text())
    estate["customers"]["acme"]["tiers"]["live"]["maintenance_windows"] = ["sun 02:00-04:00 Europe/London"]
    path = tmp_path / "estate.yml"
    path.write_text(yaml.safe_dump(estate))
    return str(path)


REFUSALS = {
    "skip a tier": (
        "promote.yml",
        {"customer": "acme", "to": "live", "from_tier": "dev"},
        "no tier may be skipped",
    ),
    "dev as target": ("promote.yml", {"customer": "acme", "to": "dev"}, "dev is never a promotion target"),
    "unknown customer": ("promote.yml", {"customer": "initech", "to": "qa"}, "unknown customer initech"),
    "unknown tier": ("promote.yml", {"customer": "acme", "to": "staging"}, "unknown tier"),
    "source never deployed": (
        "promote.yml",
        {"customer": "globex", "to": "qa"},
        "has no single verified deployment",
    ),
    "qa directly": ("deploy.yml", {"site": "acme-qa", "release": R1}, "use playbooks/promote.yml"),
    # deploy.yml reads what runs on the tier below itself: no extra var stands in for that
    "a forged promotion to live": (
        "deploy.yml",
        {"site": "acme-live", "release": R1, "release_promoted_from": "qa"},
        "use playbooks/promote.yml",
    ),
    "unknown release": (
        "deploy.yml",
        {"site": "acme-dev", "release": "moodle-5.1-nope"},
        "is not in the release store",
    ),
    "unknown site": ("deploy.yml", {"site": "acme-staging", "release": R1}, "unknown site acme-staging"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal_changes_nothing(case, tmp_path):
    playbook, extra, message = REFUSALS[case]
    before = state()
    out = run(playbook, tmp_path, **extra)
    assert out.returncode != 0, out.stdout[-2000:]
    assert message in out.stdout, out.stdout[-3000:]
    assert state() == before


# Jobs that change Live, at a moment outside its (test) window: a Monday noon.
OUTSIDE_THE_WINDOW = {
    "promotion": ("promote.yml", {"customer": "acme", "to": "live", "release_at": "2026-11-23T12:00:00Z"}),
    "restore": ("restore.yml", {"customer": "acme", "restore_at": "2026-11-23T12:00:00Z"}),
}


@pytest.mark.parametrize("job", list(OUTSIDE_THE_WINDOW))
def test_outside_the_window_is_refused(job, tmp_path):
    playbook, extra = OUTSIDE_THE_WINDOW[job]
    before = state()
    out = run(playbook, tmp_path, inventory=closed_window_inventory(tmp_path), **extra)
    assert out.returncode != 0 and "window" in out.stdout, out.stdout[-3000:]
    assert state() == before


def test_unverified_source_is_refused(tmp_path):
    qa = _host("qa1")
    path = "/srv/lms/acme-qa/deployment.json"
    original = qa.file(path).content_string
    unverified = dict(json.loads(original), verified=False)
    qa.run(f"cp -a {path} {path}.test-orig")
    qa.run(f"printf '%s\\n' '{json.dumps(unverified)}' > {path}")
    try:
        before = state()
        out = run("promote.yml", tmp_path, customer="acme", to="live")
        assert out.returncode != 0 and "has no single verified deployment" in out.stdout, out.stdout[-3000:]
        assert state() == before
    finally:
        qa.run(f"mv {path}.test-orig {path}")
    assert qa.file(path).content_string == original


def test_bad_checksum_is_refused(tmp_path):
    key = f"releases/{R3}.tar.gz"
    original = S3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    S3.put_object(Bucket=BUCKET, Key=key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    try:
        before = state()
        out = run("promote.yml", tmp_path, customer="acme", to="live")
        assert out.returncode != 0 and "bad checksum" in out.stdout, out.stdout[-3000:]
        assert state() == before
    finally:
        S3.put_object(Bucket=BUCKET, Key=key, Body=original)


# ----- rollback, then promote again ---------------------------------------------------------------------


def test_rollback_switches_back_then_promote_again(tmp_path):
    out = run("rollback.yml", tmp_path, site="acme-live")
    assert out.returncode == 0, out.stdout[-4000:]
    back = record("acme-live")
    assert back["release"] == R2 and back["outcome"] == "rolled-back" and back["previous_release"] == R3
    assert back["verified"], back["checks"]
    # Release 3 changed no schema: the rollback is a switch, with no maintenance and no restore.
    assert back["maintenance_seconds"] == 0 and back["snapshot"] is None
    assert login_status("acme-live") == 200 and not in_maintenance("acme-live")

    out = run("promote.yml", tmp_path, customer="acme", to="live")
    assert out.returncode == 0, out.stdout[-4000:]
    assert record("acme-live")["release"] == R3


# ----- fault injection -------------------------------------------------------------------------------


def verified_on_qa(release: str, tmp_path: Path) -> None:
    """Build ``release`` and take it the one way to Live: deployed to acme-dev, promoted to acme-qa
    (as AWX runs the promotion)."""
    built = run(
        "build_release.yml",
        tmp_path,
        manifest=str(REPO / "releases" / f"{release}.yml"),
        release_manifest_vars={"MOODLE_SRC": MOODLE_SRC},
    )
    assert built.returncode == 0, built.stdout[-3000:]
    out = run("deploy.yml", tmp_path, site="acme-dev", release=release)
    assert out.returncode == 0, out.stdout[-4000:]
    out = awx("Promote a release", tmp_path, customer="acme", to="qa")
    assert out.returncode == 0, out.tail


@contextlib.contextmanager
def fault_on_live(kind: str):
    """The fail release's fault ``kind`` (upgrade | web, tests/fixtures/plugins) on, on Live's host."""
    live = _host(SITES["acme-live"])
    live.check_output(f"mkdir -p /etc/three-instance-fault && touch /etc/three-instance-fault/{kind}")
    try:
        yield
    finally:
        live.check_output("rm -rf /etc/three-instance-fault")


def fault_plugins(site: str) -> str:
    return psql(
        site, "SELECT count(*) FROM mdl_config_plugins WHERE plugin IN ('local_tifail', 'local_tiwebfail')"
    )


def test_failed_upgrade_on_live_puts_live_back(tmp_path):
    """The fail release goes the one way to Live; there local_tifail's install throws (its fault is on)."""
    verified_on_qa(FAIL, tmp_path)
    live_before = state()["acme-live"]
    tables_before = psql("acme-live", "SELECT count(*) FROM pg_tables WHERE schemaname='public'")

    with fault_on_live("upgrade"):
        out = run("promote.yml", tmp_path, customer="acme", to="live")
    assert out.returncode != 0
    assert (
        f"deploying release {FAIL} FAILED" in out.stdout
        and "restored from the pre-change snapshot" in out.stdout
    )

    after = state()["acme-live"]
    assert after["current"] == live_before["current"] and after["record"] == live_before["record"]
    failed = history("acme-live")[-1]
    assert failed["outcome"] == "failed" and failed["release"] == FAIL and not failed["verified"]
    # the record tells the truth: upgrade.php ran, the database came back from the snapshot, and
    # users were kept out (the gate) for the whole attempt
    assert failed["upgraded"] is True and failed["database_restored_from"] == failed["snapshot"], failed
    assert failed["outage_seconds"] > 0, failed
    assert "injected upgrade failure" in failed["error"] or failed["error"]
    assert fault_plugins("acme-live") == "0"
    assert psql("acme-live", "SELECT count(*) FROM pg_tables WHERE schemaname='public'") == tables_before
    assert plugin_version("acme-live", "local_tidemo") == TIDEMO
    assert not in_maintenance("acme-live") and login_status("acme-live") == 200


class Probe:
    """What a user gets from a site during a job: from inside its host, but through the host's own
    address (not loopback, which the deploy's gate lets through), a request every 0.2 s."""

    def __init__(self, site: str):
        self.host, self.name = _host(SITES[site]), f"{site}.local"
        self.out, self.stop = f"/tmp/probe-{site}", f"/tmp/probe-{site}.stop"  # noqa: S108 - in the test host

    def __enter__(self):
        address = self.host.check_output("hostname -I").split()[0]
        loop = (
            f"while [ ! -f {self.stop} ]; do curl -s -o /dev/null --max-time 10 -w '%{{http_code}}\\n'"
            f" --resolve {self.name}:80:{address} http://{self.name}/login/index.php >> {self.out};"
            " sleep 0.2; done"
        )
        self.host.check_output(f'rm -f {self.out} {self.stop}; setsid -f sh -c "{loop}" >/dev/null 2>&1')
        return self

    def __exit__(self, *exc):
        self.host.run(f"touch {self.stop}; sleep 1")

    def codes(self) -> dict[str, int]:
        seen = self.host.check_output(f"cat {self.out}").split()
        return {code: seen.count(code) for code in sorted(set(seen))}


def test_a_release_that_breaks_lives_pages_never_reaches_users(tmp_path):
    """The same fail release, still verified on QA, with the web fault on: local_tiwebfail makes
    every web request on Live answer 500 (the CLI works, so the upgrade passes). The promotion to
    Live fails its smoke checks behind the gate and puts Live back; a user's probe sees 200 and 503,
    never a 500. Then Dev and QA are rolled back off the fail release."""
    assert record("acme-qa")["release"] == FAIL, "the test before takes the fail release to QA"
    live_before = state()["acme-live"]
    with fault_on_live("web"), Probe("acme-live") as probe:
        out = run("promote.yml", tmp_path, customer="acme", to="live")
    assert out.returncode != 0 and f"deploying release {FAIL} FAILED" in out.stdout, out.stdout[-4000:]
    codes = probe.codes()
    assert set(codes) <= {"200", "503"} and codes.get("503", 0) > 0 and codes.get("200", 0) > 0, codes
    after = state()["acme-live"]
    assert after["current"] == live_before["current"] and after["record"] == live_before["record"]
    failed = history("acme-live")[-1]
    assert failed["outcome"] == "failed" and "login_page" in failed["error"], failed
    assert failed["upgraded"] is True, failed  # this time the upgrade itself passed
    assert failed["database_restored_from"] == failed["snapshot"] and failed["outage_seconds"] > 0, failed
    assert fault_plugins("acme-live") == "0"
    assert not in_maintenance("acme-live") and login_status("acme-live") == 200

    # Dev and QA go back to release 3 with the database snapshot from before the fail release. A
    # user created on Dev since that snapshot would be lost: refused, listing it, until acknowledged.
    php_as_site(
        "acme-dev",
        "require_once($CFG->dirroot . '/user/lib.php'); user_create_user(['username' => 'ti-since-snapshot',"
        " 'password' => 'Since-Pass-1!', 'email' => 'since@x.invalid', 'firstname' => 'S', 'lastname' => 'S',"
        " 'confirmed' => 1, 'auth' => 'manual', 'mnethostid' => $CFG->mnet_localhost_id]);",
    )
    before = state()
    out = run("rollback.yml", tmp_path, site="acme-dev")
    assert out.returncode != 0 and "users: 1" in out.stdout, out.stdout[-3000:]
    assert "lms_rollback_accept_data_loss=true" in out.stdout and state() == before
    for site in ("acme-dev", "acme-qa"):
        out = run("rollback.yml", tmp_path, site=site, lms_rollback_accept_data_loss=(site == "acme-dev"))
        assert out.returncode == 0, out.stdout[-4000:]
        assert record(site)["release"] == R3
        assert fault_plugins(site) == "0"


# ----- backups restored on the hosts themselves (Debian 12's Python 3.11.2) ---------------------------

QA_PASSWORDS = {"admin": "Qa-Admin-Pass-1!", "tutor": "Qa-Tutor-Pass-1!", "student": "Qa-Student-Pass-1!"}
LEARNER = ("ti-learner", "Learner-Pass-1!", "ti-learner@learners.example")


def php_as_site(site: str, code: str) -> str:
    """PHP with the site's config.php loaded, run as the site's user on its host; prints what it echoes."""
    h = _host(SITES[site])
    body = f"<?php define('CLI_SCRIPT', true); require '/srv/lms/{site}/current/config.php'; {code}"
    script = h.check_output("mktemp --suffix=.php")
    h.run(f"cat > {script} <<'PHP'\n{body}\nPHP\nchmod 0644 {script}")
    try:
        return h.check_output(f"runuser -u {site} -- php8.2 {script}")
    finally:
        h.run(f"rm -f {script}")


def web_login(site: str, username: str, password: str) -> bool:
    """A browser's login over HTTP on the site's host: the login form's token, then the POST; Moodle
    answers a good login with a redirect to ?testsession=<id>."""
    h = _host(SITES[site])
    url, resolve = f"http://{site}.local/login/index.php", f"--resolve {site}.local:80:127.0.0.1"
    out = h.run(
        f'jar=$(mktemp); tok=$(curl -s -c $jar {resolve} {url} | grep -o \'name="logintoken" value="[^"]*"\''
        f" | cut -d'\"' -f4); curl -s -b $jar -c $jar {resolve} -o /dev/null -w '%{{redirect_url}}' "
        f"--data-urlencode username={username} --data-urlencode 'password={password}' "
        f"--data-urlencode logintoken=$tok {url}; rm -f $jar"
    )
    return "testsession=" in out.stdout


SITES_HOSTS_REDIS = (("live1", "acme-live"), ("qa1", "acme-qa"))
# A file in the dataroot's filedir that anyone may fetch (a site logo), which Moodle hands to
# nginx by X-Accel-Redirect: nginx reads it through the dataroot's ACL (roles/lms).
LOGO_NAME, LOGO_BODY = "acl-probe.txt", "sent by nginx from the filedir"


def store_logo(site: str) -> str:
    """Put the logo file in the site's file storage; returns its pluginfile URL path."""
    record = (
        "['contextid' => context_system::instance()->id, 'component' => 'core_admin', 'filearea' => 'logo',"
        f" 'itemid' => 0, 'filepath' => '/', 'filename' => '{LOGO_NAME}']"
    )
    context = php_as_site(
        site,
        f"$fs = get_file_storage(); $r = {record};"
        " if (!$fs->get_file($r['contextid'], 'core_admin', 'logo', 0, '/', $r['filename']))"
        f" {{ $fs->create_file_from_string($r, '{LOGO_BODY}'); }} echo $r['contextid'];",
    )
    return f"/pluginfile.php/{context.strip()}/core_admin/logo/0x0/0/{LOGO_NAME}"


def fetch(site: str, path: str) -> tuple[int, str]:
    h = _host(SITES[site])
    out = h.check_output(
        f"curl -s -w '\\n%{{http_code}}' --max-time 60 --resolve {site}.local:80:127.0.0.1 http://{site}.local{path}"
    )
    body, _, status = out.rpartition("\n")
    return int(status), body


def logo_content_file(site: str) -> str:
    sha1 = hashlib.sha1(LOGO_BODY.encode(), usedforsecurity=False).hexdigest()
    return f"/var/lib/lms/{site}/filedir/{sha1[:2]}/{sha1[2:4]}/{sha1}"


def web_maintenance(site: str) -> str:
    """Moodle's maintenance_enabled setting: maintenance.php --enable sets it beside the flag file;
    left on, the site stays in (web) maintenance for everyone but admins."""
    return psql(site, "SELECT value FROM mdl_config WHERE name = 'maintenance_enabled'")


def qa_state() -> dict:
    return {
        "record": record("acme-qa"),
        "maintenance": in_maintenance("acme-qa"),
        "web_maintenance": web_maintenance("acme-qa"),
        "login": login_status("acme-qa"),
    }


def test_refresh_qa_restore_and_verify_run_on_the_hosts(tmp_path):
    """Live backed up, restore.yml of it into QA, QA refreshed from it, verify_backup.yml and
    restore.yml into Live: every backup module runs on the containers' own Python, and QA ends
    sanitised with the shared accounts."""
    username, password, email = LEARNER
    learner = (
        f"'username' => '{username}', 'password' => '{password}', 'email' => '{email}',"
        " 'firstname' => 'Real', 'lastname' => 'Learner', 'confirmed' => 1, 'auth' => 'manual',"
        " 'mnethostid' => $CFG->mnet_localhost_id"
    )
    php_as_site(
        "acme-live",
        "require_once($CFG->dirroot . '/user/lib.php');"
        f" if (!$DB->record_exists('user', ['username' => '{username}']))"
        f" {{ user_create_user([{learner}]); }}",
    )
    assert web_login("acme-live", LEARNER[0], LEARNER[1])
    logo = store_logo("acme-live")
    assert fetch("acme-live", logo) == (200, LOGO_BODY)
    out = awx("Back up a site", tmp_path, customer="acme")  # as AWX runs it
    assert out.returncode == 0, out.tail

    # restore.yml of Live's backup into QA (the operator's own choice: nothing is sanitised), on
    # qa1's Python; the refresh below (a fresh backup of Live first) restores and sanitises QA.
    out = run("restore.yml", tmp_path, site="acme-qa", source_site="acme-live")
    assert out.returncode == 0, out.stdout[-4000:]
    assert not in_maintenance("acme-qa") and web_login("acme-qa", LEARNER[0], LEARNER[1])
    # The restored dataroot (a new folder) carries the web server's read access.
    assert fetch("acme-qa", logo) == (200, LOGO_BODY)

    out = awx("Refresh QA from Live", tmp_path, customer="acme", fresh_backup="true")
    assert out.returncode == 0, out.tail
    assert all(password not in out.stdout for password in QA_PASSWORDS.values())
    refreshed = record("acme-qa")
    assert refreshed["refreshed_from"]["site"] == "acme-live" and refreshed["release"] == R3
    assert not in_maintenance("acme-qa") and login_status("acme-qa") == 200
    assert web_maintenance("acme-qa") in ("", "0")
    # QA keeps its own cache configuration (its Redis); Live's Redis password is not on QA's host.
    redis_line = "grep -o \"'password' => '[^']*'\" /var/lib/lms/{}/muc/config.php"
    live_redis, qa_redis = (_host(h).check_output(redis_line.format(s)) for h, s in SITES_HOSTS_REDIS)
    assert live_redis != qa_redis
    assert _host("qa1").run(f'grep -rqF "{live_redis}" /var/lib/lms/acme-qa').rc == 1
    # The shared accounts log in over HTTP; the learner (anonymised, suspended) cannot; no real address.
    assert all(web_login("acme-qa", user, password) for user, password in QA_PASSWORDS.items())
    assert not web_login("acme-qa", LEARNER[0], LEARNER[1])
    assert psql("acme-qa", f"SELECT count(*) FROM mdl_user WHERE email = '{LEARNER[2]}'") == "0"
    assert (
        psql("acme-qa", "SELECT count(*) FROM mdl_user WHERE deleted = 0 AND email LIKE '%@learners.example'")
        == "0"
    )
    assert web_login("acme-live", LEARNER[0], LEARNER[1])  # Live untouched

    out = run("verify_backup.yml", tmp_path, customer="acme")
    assert out.returncode == 0, out.stdout[-4000:]
    # Live from its own latest backup, inside its window: snapshotted on its host first
    out = run("restore.yml", tmp_path, customer="acme", force=True)
    assert out.returncode == 0, out.stdout[-4000:]
    snapshot = re.search(r"snapshotted first to (/var/backups/lms/acme-live/\S+?)[;\"]", out.stdout)
    assert snapshot and _host("live1").file(f"{snapshot.group(1)}/db.pgc").exists, out.stdout[-3000:]
    assert not in_maintenance("acme-live") and login_status("acme-live") == 200
    assert web_login("acme-live", LEARNER[0], LEARNER[1])
    assert fetch("acme-live", logo) == (200, LOGO_BODY)
    # nginx itself reads the file (X-Accel-Redirect), not PHP: without its ACL entry, it is refused.
    content = logo_content_file("acme-live")
    live = _host("live1")
    live.check_output(f"setfacl -x u:www-data {content}")
    try:
        assert fetch("acme-live", logo)[0] == 403
    finally:
        live.check_output(f"setfacl -m u:www-data:r {content}")
    assert fetch("acme-live", logo) == (200, LOGO_BODY)


def test_a_refresh_that_fails_before_qa_changes_leaves_qa_serving(tmp_path):
    """A corrupt object (same size, other bytes) passes the quick check and fails the restore's
    checksum: QA never changed, so it serves its previous content again, out of maintenance."""
    manifest_key = backup_manifests()[-1]
    manifest = json.loads(S3.get_object(Bucket=BACKUP_BUCKET, Key=manifest_key)["Body"].read())
    key = manifest["objects"]["database"]["key"]
    original = S3.get_object(Bucket=BACKUP_BUCKET, Key=key)["Body"].read()
    before = qa_state()
    S3.put_object(Bucket=BACKUP_BUCKET, Key=key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    try:
        out = run(
            "refresh_qa.yml",
            tmp_path,
            customer="acme",
            refresh_qa_force=True,
            qa_accounts_passwords=QA_PASSWORDS,
        )
    finally:
        S3.put_object(Bucket=BACKUP_BUCKET, Key=key, Body=original)
    assert out.returncode != 0
    assert manifest["id"] in out.stdout and key in out.stdout, out.stdout[-4000:]
    assert "serves its previous content again" in out.stdout, out.stdout[-4000:]
    assert qa_state() == before


def test_a_refresh_that_fails_after_an_earlier_restore_keeps_qa_in_maintenance(tmp_path):
    """QA holds Live's backup already (as a refresh that failed after its restore leaves it): the
    restore is skipped, then sanitising fails (a setting config.php forces). QA holds Live's data,
    so it stays in maintenance; the next refresh completes and takes it out."""
    backup_id = record("acme-qa")["refreshed_from"]["backup_id"]
    refresh = {"customer": "acme", "backup_id": backup_id, "qa_accounts_passwords": QA_PASSWORDS}
    forced = [{"name": "noemailever"}]  # config.php forces it on QA: sanitising fails
    out = run("refresh_qa.yml", tmp_path, **refresh, refresh_qa_integration_settings=forced)
    assert out.returncode != 0 and "forced in config.php" in out.stdout, out.stdout[-4000:]
    assert "QA STAYS IN MAINTENANCE" in out.stdout, out.stdout[-4000:]
    assert in_maintenance("acme-qa") and login_status("acme-qa") == 503
    out = run("refresh_qa.yml", tmp_path, **refresh)
    assert out.returncode == 0, out.stdout[-4000:]
    assert not in_maintenance("acme-qa") and login_status("acme-qa") == 200


RESTORE_REFUSALS = {
    # two names swapped: sanitised QA data must never replace Live
    "qa backup over live": (
        {"site": "acme-live", "source_site": "acme-qa"},
        "restored only from its own backups",
    ),
    "dev backup over live": (
        {"customer": "acme", "source_site": "acme-dev"},
        "restored only from its own backups",
    ),
    "another customer's backup": (
        {"site": "acme-qa", "source_site": "globex-live"},
        "a site of customer acme",
    ),
}


@pytest.mark.parametrize("case", list(RESTORE_REFUSALS))
def test_restore_refusals_change_nothing(case, tmp_path):
    extra, message = RESTORE_REFUSALS[case]
    before = state()
    out = run("restore.yml", tmp_path, **extra)
    assert out.returncode != 0 and message in out.stdout, out.stdout[-3000:]
    assert state() == before


def test_awx_refuses_bad_answers_before_any_change(tmp_path):
    """Launched as AWX launches it: an answer outside the survey's choices never starts a job; one
    the survey takes but the playbook refuses (a Dev backup over Live) changes nothing."""
    before = state()
    with pytest.raises(AwxSurveyError, match="'to': 'prod' is not one of"):
        awx("Promote a release", tmp_path, customer="acme", to="prod")
    out = awx("Restore a site", tmp_path, site="acme-live", source_site="acme-dev")
    assert out.returncode != 0 and "restored only from its own backups" in out.stdout, out.tail
    assert state() == before


def test_one_job_at_a_time_per_site(tmp_path):
    """While another job holds acme-dev's lock (a playbook that takes it, then waits), deploy.yml
    is refused at once, naming that job, and nothing changes. Once that job has died, the next
    deploy from this controller takes its lock over, runs, and leaves no lock behind."""
    lock = "/srv/lms/acme-dev/.lock"
    holding = tmp_path / "hold.yml"
    holding.write_text(
        f"""
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_tasks: {REPO}/playbooks/tasks/site_lock.yml
      vars:
        site_lock__site: "{{{{ hostvars.dev1.estate_sites | selectattr('name', 'eq', 'acme-dev') | first }}}}"
        site_lock__job: a long job
    - ansible.builtin.command: sleep 900
"""
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    holder = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", INVENTORY, str(holding)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        dev1 = _host("dev1")
        assert dev1.run(f"timeout 180 sh -c 'until [ -f {lock} ]; do sleep 1; done'").rc == 0
        before = state()
        release = record("acme-dev")["release"]
        out = run("deploy.yml", tmp_path, release=release, site="acme-dev")
        assert out.returncode != 0 and "another job holds the site: a long job" in out.stdout, out.stdout[
            -3000:
        ]
        assert state() == before
    finally:
        # The holder and every Ansible process of it (a worker may sit in a session of its own),
        # with their process groups: nothing of the holding job outlives the test.
        os.killpg(holder.pid, 9)
        holder.wait()
        pgrep = subprocess.run(["pgrep", "-f", str(holding)], capture_output=True, text=True, check=False)
        for pid in pgrep.stdout.split():
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError):
                    kill(int(pid), 9)
    assert _host("dev1").file(lock).exists  # a job that dies leaves its lock
    out = run("deploy.yml", tmp_path, release=release, site="acme-dev")
    assert out.returncode == 0 and "took over a stale lock" in out.stdout + out.stderr, out.stdout[-3000:]
    assert not _host("dev1").file(lock).exists

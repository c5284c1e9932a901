"""onboard.yml and establish.yml on the stack's hosts: a proof-of-concept site becomes the QA site of
a new customer, then its Dev and Live are first-built from that QA and QA is back-fitted from Live
(docs/onboarding.md).

The PoC is globex-dev (dev1) as its owner would hand it over: a course of its own (added by the
test, its summary linking to the PoC's address), its database dumped with pg_dump and its dataroot
archived with tar, copied to the controller. The new customer, initech, is a copy of the estate
with initech added (its QA site on qa1, its Dev on dev1); its sites are converged with site.yml
first, as a new customer's would be - narrowed to initech's sites (THREE_INSTANCE_SITES), so the
other sites of dev1 and qa1 are not touched, and without an install (lms_install: false: QA takes
the PoC, Dev its first build), so both are closed to Moodle's web installer until then. Then
onboard.yml: check mode changes nothing; the adoption puts the PoC's content on initech-qa under
initech-qa's address, with its own identity, the shared test accounts, the checks passed, the
deployment record saying so; again, as AWX's "Onboard a customer" runs it (ansible-runner) with the
PoC handed over in a bucket of the local S3 API: fetched to the controller and removed afterwards,
nothing adopted twice. Then QA is backed up as AWX's "Back up a site" runs it (tier qa), and
establish.yml takes the path from there: refused before any change while QA runs only the code its
converge built (in no store) and no first release is given; with release 1 of the store, QA's
design taken once and initech-dev, never installed, first-built from it (the PoC's course, no user
but the guest and the administrators; restore.yml by hand again: nothing to do), stopped by Live's
closed window; continued with a reason: Live first built from the same backup, release 1 on Dev, QA
and Live, QA back-fitted from Live; again: nothing to do. initech's Live has a host of its own,
live2 (a Live host serves one customer only), a container the estate fixture starts and removes at
the end. The PoC's course is removed from globex-dev at the end; initech-qa and initech-dev stay on
qa1 and dev1 (the estate the other tests use does not list them).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stack_hosts import (
    ENV,
    INVENTORY,
    PHP,
    REPO,
    ansible,
    installed,
    output_of,
    run_in,
    s3_client,
    s3_store,
    sql,
    vars_file,
)

# AWX's way of running a job template (ansible-runner; awx/controller.yml's surveys).
sys.path.insert(0, str(REPO / "tests" / "integration"))
from ansible_cli import awx_job

sys.path.insert(0, str(REPO / "tools"))
import moodle_source

POC, POC_HOST, POC_URL = "globex-dev", "dev1", "http://globex-dev.local"
QA_SITE, QA = "initech-qa", "qa1"
QA_ACCOUNTS = ("admin", "tutor", "student")
DEV_SITE, DEV = "initech-dev", "dev1"
# initech's Live host: a Live host serves one customer only, so the test makes its own (a container
# like the scenario's, removed at the end).
LIVE_SITE, LIVE = "initech-live", "live2"
CUSTOMERS = ["acme", "globex", "initech"]  # AWX's survey choices, initech's added
IMAGE = "localhost/three-instance-host:bookworm"
# Molecule's secrets (the scenario's converge made them; the estate fixture converges initech-qa with them).
_EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
SECRETS = Path(_EPHEMERAL) / "secrets" if _EPHEMERAL else REPO / ".secrets"
pytestmark = pytest.mark.skipif(
    not installed({POC: POC_HOST, "globex-qa": QA}),
    reason="the stack scenario's containers (dev1, qa1 with Moodle installed) are not up",
)


def initech_estate(folder: Path) -> Path:
    """The estate with a new customer, initech: a Dev site on the Dev server, a QA site on the QA
    server, its Live on a host of its own; converged with code and config.php, their databases left
    empty."""
    estate = yaml.safe_load((INVENTORY / "estate.yml").read_text())
    estate["hosts"][LIVE] = estate["hosts"]["live1"]  # a container, as the others
    estate["customers"]["initech"] = {
        "flavour": "moodle",
        "vars": {"lms_fullname": "Initech University"},
        # QA takes the PoC and Dev its first build: nothing to install (docs/onboarding.md)
        "tiers": {
            "dev": {"vars": {"lms_install": False}},
            "qa": {"vars": {"lms_install": False}},
            "live": {
                "hosts": {LIVE: ["web", "db"]},
                "vars": {"lms_install": False},
                "maintenance_windows": ["sun 02:00-04:00 Europe/London"],
            },
        },
    }
    (folder / "estate.yml").write_text(yaml.safe_dump(estate))
    (folder / "group_vars").symlink_to(INVENTORY / "group_vars")
    return folder


def lms_course(host: str, site: str, **args) -> None:
    args = {"path": f"/srv/lms/{site}/current", "web_user": site, "php": f"/usr/bin/{PHP}", **args}
    run = ansible("ansible", host, "-b", "-m", "lms_course", "-a", json.dumps(args), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def handed_over(folder: Path) -> Path:
    """The PoC's dump and dataroot archive, made on its host and copied to the controller."""
    work = "/root/poc-handover"
    run_in(POC_HOST, "rm", "-rf", work)
    run_in(POC_HOST, "mkdir", "-p", work)
    run_in(
        POC_HOST,
        "sh",
        "-c",
        f"runuser -u postgres -- pg_dump --format=custom --no-owner --no-acl {POC.replace('-', '_')}"
        f" > {work}/database.pgdump && tar -czf {work}/dataroot.tar.gz -C /var/lib/lms {POC}",
    )
    for name in ("database.pgdump", "dataroot.tar.gz"):
        copy = ansible("ansible", POC_HOST, "-m", "ansible.builtin.fetch",
                       "-a", f"src={work}/{name} dest={folder}/{name} flat=true", timeout=600)  # fmt: skip
        assert copy.returncode == 0, copy.stdout + copy.stderr
    run_in(POC_HOST, "rm", "-rf", work)
    return folder


@pytest.fixture(scope="module")
def poc(tmp_path_factory):
    lms_course(
        POC_HOST,
        POC,
        shortname="POC1",
        fullname="PoC course design",
        summary=f'<a href="{POC_URL}/course/index.php">the first design</a>',
    )
    try:
        yield handed_over(tmp_path_factory.mktemp("poc"))
    finally:
        lms_course(POC_HOST, POC, shortname="POC1", state="absent")


def start_live_host() -> None:
    """initech's Live host, a systemd container from the test image (as playbooks/local_hosts.yml
    makes them); `make clean-hosts` removes it if the test could not."""
    subprocess.run(["podman", "rm", "-f", "-t", "2", LIVE], env=ENV, capture_output=True, check=False)
    container = ["--name", LIVE, "--hostname", LIVE, "--systemd", "always", "--stop-signal", "37"]
    subprocess.run(
        ["podman", "run", "-d", *container, IMAGE, "/sbin/init"], env=ENV, capture_output=True, check=True
    )
    run_in(LIVE, "systemctl", "is-system-running", "--wait", check=False)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """initech's three sites converged as the scenario's converge does (demo.yml: this machine's
    Moodle source; Molecule's secrets), narrowed to initech's sites: the other sites on dev1 and qa1
    are not touched (their pg_hba.conf lines stay: roles/database). Live's host is new."""
    folder = initech_estate(tmp_path_factory.mktemp("initech-estate"))
    converge_vars = {
        "lms_source_cache_dir": str(REPO / ".cache" / "releases"),
        "three_instance_secrets_dir": str(SECRETS),
    }
    limit = f"{DEV},{QA},{LIVE},localhost"
    try:
        start_live_host()
        converge = ansible(
            "ansible-playbook", "playbooks/demo.yml", "--limit", limit, "-e", json.dumps(converge_vars),
            inventory=folder, timeout=2400, env={"THREE_INSTANCE_SITES": "initech-*"},
        )  # fmt: skip
        assert converge.returncode == 0, converge.stdout[-6000:] + converge.stderr[-2000:]
        yield folder
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "2", LIVE], env=ENV, capture_output=True, check=False)


def onboard(estate: Path, poc: Path | str, *extra: str, wwwroot: str = POC_URL):
    return ansible(
        "ansible-playbook",
        "playbooks/onboard.yml",
        "-e",
        # Molecule's secrets, as the converge had them: the test accounts' passwords come from there
        json.dumps(
            {
                "customer": "initech",
                "from": str(poc),
                "from_wwwroot": wwwroot,
                "three_instance_secrets_dir": str(SECRETS),
            }
        ),
        *extra,
        inventory=estate,
    )


def site_state(host: str, site: str) -> dict:
    return {
        "fullname": sql(host, site, "SELECT fullname FROM mdl_course WHERE id = 1"),
        "courses": sql(host, site, "SELECT shortname FROM mdl_course WHERE id <> 1 ORDER BY shortname"),
        "summary": sql(host, site, "SELECT summary FROM mdl_course WHERE shortname = 'POC1'"),
        "users": sql(host, site, "SELECT username FROM mdl_user WHERE deleted = 0 ORDER BY username"),
        "files": sql(host, site, "SELECT count(*) FROM mdl_files WHERE filename <> '.'"),
        "siteidentifier": sql(host, site, "SELECT value FROM mdl_config WHERE name = 'siteidentifier'"),
    }


def hand_over_in_a_bucket(poc: Path) -> str:
    """The PoC's two files put where a customer hands them over: a bucket of the local S3 API."""
    client = s3_client()
    if "poc-handover" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        location = {"LocationConstraint": s3_store()["region"]}
        client.create_bucket(Bucket="poc-handover", CreateBucketConfiguration=location)
    for name in ("database.pgdump", "dataroot.tar.gz"):
        client.upload_file(str(poc / name), "poc-handover", f"initech/{name}")
    return "s3://poc-handover/initech/"


def marker(host: str, site: str, name: str) -> str:
    """A marker lms_restore keeps in the site's database (first_build, restored_backup)."""
    return sql(
        host,
        site,
        f"SELECT value FROM mdl_config_plugins WHERE plugin = 'three_instance' AND name = '{name}'",  # noqa: S608 - the names are this test's own
    )


def tables(host: str, site: str) -> str:
    return sql(host, site, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")


def web_install(host: str, site: str) -> tuple[str, str]:
    """What Moodle's web installer answers a visitor (it installs an empty database without any key
    and gives that visitor the admin account)."""
    url = f"http://{site}.local/admin/index.php?agreelicense=1&confirmrelease=1&lang=en"
    out = output_of(host, "curl", "-s", "-w", "\n%{http_code}", "--max-time", "120",
                    "--resolve", f"{site}.local:80:127.0.0.1", url)  # fmt: skip
    body, _, status = out.rpartition("\n")
    return status, body


@pytest.mark.parametrize(("host", "site"), [(QA, QA_SITE), (DEV, DEV_SITE), (LIVE, LIVE_SITE)])
def test_a_site_never_installed_is_closed_to_the_web_installer(estate, host, site):
    """initech's sites, converged without an install (they wait for the PoC and the first builds),
    answer 503 to the web installer, and their databases stay empty."""
    assert tables(host, site) == "0"
    status, body = web_install(host, site)
    assert status == "503" and "not set up yet" in body, (status, body[:300])
    assert tables(host, site) == "0"


def test_a_poc_is_adopted_as_the_new_customers_qa(estate, poc, tmp_path):
    assert tables(QA, QA_SITE) == "0"  # converged, never installed: the PoC is its first content
    the_poc = site_state(POC_HOST, POC)

    dry = onboard(estate, poc, "--check")
    assert dry.returncode == 0, dry.stdout[-6000:]
    assert tables(QA, QA_SITE) == "0"  # check mode read the PoC in a scratch site only

    run = onboard(estate, poc, "-v")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert f"{QA_SITE} holds the PoC poc-" in run.stdout
    # -v shows every task's result: none of QA's secrets (database, Redis, test accounts, admin) is in it.
    secrets = {p.name: p.read_text().strip() for p in (SECRETS / QA_SITE).glob("*") if p.is_file()}
    assert len(secrets) >= 3, sorted(secrets)  # the database's, the admin's, the test accounts'
    leaked = [name for name, value in secrets.items() if value in run.stdout + run.stderr]
    assert not leaked, f"secrets in onboard.yml -v output: {leaked}"
    after = site_state(QA, QA_SITE)
    # The PoC's content and accounts, under QA's address, with an identity of its own.
    assert after["fullname"] == the_poc["fullname"] and "POC1" in after["courses"].split()
    assert after["summary"] == '<a href="http://initech-qa.local/course/index.php">the first design</a>'
    assert set(the_poc["users"].split()) <= set(after["users"].split())
    assert {"tutor", "student"} <= set(after["users"].split())  # the shared test accounts
    assert after["files"] == the_poc["files"]
    assert after["siteidentifier"] != the_poc["siteidentifier"]
    # Serving: the login page through nginx, out of maintenance.
    page = output_of(QA, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                     "initech-qa.local:80:127.0.0.1", "http://initech-qa.local/login/index.php")  # fmt: skip
    assert page == "200"
    record = json.loads(output_of(QA, "cat", f"/srv/lms/{QA_SITE}/deployment.json"))
    assert record["outcome"] == "adopted" and record["verified"] is True
    assert record["adopted_from"]["wwwroot"] == POC_URL and record["adopted_from"]["poc"].startswith("poc-")
    # The PoC's copies are gone from QA's host; the PoC itself did not change.
    assert run_in(QA, "test", "-e", f"/var/lib/lms-verify/{QA_SITE}.poc", check=False).returncode == 1
    assert site_state(POC_HOST, POC) == the_poc

    # Again, as AWX runs "Onboard a customer", the PoC handed over in a bucket: the same PoC.
    # (the QA accounts' credential carries the passwords the first run set)
    passwords = {k: (SECRETS / QA_SITE / f"qa_{k}_password").read_text().strip() for k in QA_ACCOUNTS}
    again = awx_job(
        "Onboard a customer",
        {"customer": "initech", "from": hand_over_in_a_bucket(poc), "from_wwwroot": POC_URL},
        str(estate),
        tmp_path / "awx",
        {"poc_store": s3_store(), "qa_accounts_passwords": passwords},
        {"customers": CUSTOMERS},
    )
    assert again.returncode == 0, again.tail
    assert "already: the same PoC was adopted before" in again.stdout
    fetched = Path.home() / ".cache" / "three-instance" / "onboard" / "initech"
    assert not fetched.exists()  # the controller's copy of the PoC is gone
    assert site_state(QA, QA_SITE)["siteidentifier"] == after["siteidentifier"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> str:
    """The stores and secrets establish.yml's steps take (-e @stores.json, 0600)."""
    return vars_file(tmp_path_factory.mktemp("stores") / "stores.json", {
        "backup_store": s3_store("molecule-backups", from_containers=True, prefix="onboard-backups"),
        "release_store": s3_store("molecule-releases", type="s3", prefix="releases/"),
        "three_instance_secrets_dir": str(SECRETS),
    })  # fmt: skip


def establish(estate: Path, stores: str, *extra: str):
    command = ("playbooks/establish.yml", "-e", "customer=initech", "-e", stores, *extra)
    return ansible("ansible-playbook", *command, inventory=estate, timeout=2400)


def test_establish_builds_dev_from_the_adopted_qa_then_stops_at_lives_window(estate, poc, stores, tmp_path):
    """establish.yml's first run: QA (the adopted PoC) runs the code its converge built, which is in
    no store, so without -e first_release the run is refused before anything changes; with it and
    Live's window closed (a Monday noon), QA's design is taken once and first-built into
    initech-dev, never installed - the PoC's course, no user but the guest and the administrators -
    and the run stops at Live's first build, Live untouched."""
    assert tables(DEV, DEV_SITE) == "0"  # converged, never installed
    # QA backed up as AWX's "Back up a site" takes it, by customer and tier (establish takes its own)
    backup_store = s3_store("molecule-backups", from_containers=True, prefix="onboard-backups")
    backup = awx_job("Back up a site", {"customer": "initech", "tier": "qa"}, str(estate), tmp_path / "awx",
                     {"backup_store": backup_store}, {"customers": CUSTOMERS})  # fmt: skip
    assert backup.returncode == 0, backup.tail
    assert re.search(rf"{QA}\s+: ok=\d+\s+changed=[1-9]", backup.stdout), backup.tail

    closed = ("-e", "restore_at=2026-11-23T12:00:00Z")
    refused = establish(estate, stores, *closed)
    assert refused.returncode != 0, refused.stdout[-4000:]
    assert "initech-qa's release moodle-2025100600.02-" in refused.stdout, refused.stdout[-4000:]
    assert "is not in the release store" in refused.stdout and "-e first_release=<id>" in refused.stdout
    assert tables(DEV, DEV_SITE) == "0" and tables(LIVE, LIVE_SITE) == "0"

    run = establish(estate, stores, "-e", "first_release=moodle-5.1-r1", *closed)
    assert run.returncode != 0 and "outside" in run.stdout, run.stdout[-4000:]
    assert "backup_qa: run (QA's design, taken once)" in run.stdout
    assert "release_qa: run (takes the first release moodle-5.1-r1)" in run.stdout
    assert f"{DEV_SITE}: restored {QA_SITE}/" in run.stdout
    assert tables(LIVE, LIVE_SITE) == "0"
    dev = site_state(DEV, DEV_SITE)
    assert "POC1" in dev["courses"].split()
    assert dev["summary"] == '<a href="http://initech-dev.local/course/index.php">the first design</a>'
    assert dev["users"].split() == ["admin", "guest"]
    assert dev["siteidentifier"] != site_state(QA, QA_SITE)["siteidentifier"]
    login = "http://initech-dev.local/login/index.php"
    page = output_of(DEV, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                     "initech-dev.local:80:127.0.0.1", login)  # fmt: skip
    assert page == "200"

    # Dev's first build again by hand, the site named by customer and tier: the same backup, nothing to do
    built_from = marker(DEV, DEV_SITE, "first_build")
    assert built_from.startswith(f"{QA_SITE}/"), built_from
    build = ("playbooks/restore.yml", "-e", "customer=initech", "-e", "tier=dev", "-e", "first_build=true",
             "-e", f"source_site={QA_SITE}", "-e", f"backup_id={built_from.split('/', 1)[1]}",
             "-e", stores)  # fmt: skip
    again = ansible("ansible-playbook", *build, inventory=estate)
    assert again.returncode == 0 and re.search(rf"{DEV}\s+: ok=\d+\s+changed=0 ", again.stdout), again.stdout[
        -3000:
    ]


def test_establish_goes_on_from_where_the_path_stands_then_has_nothing_to_do(estate, poc, stores):
    """The same command with a reason goes on: Live first built from the backup Dev was built from,
    the first release on Dev, QA and Live, QA back-fitted from Live; again, without first_release (QA
    runs it now): every step skipped, nothing changed."""
    dev_built = marker(DEV, DEV_SITE, "first_build")
    reason = ("-e", "override_window_reason=initech goes live (test)")
    run = establish(estate, stores, "-e", "first_release=moodle-5.1-r1", *reason, "-v")
    assert run.returncode == 0, run.stdout[-8000:]
    assert f"backup_qa: skip (the first builds take {dev_built}, as before)" in run.stdout
    # -v shows every task's result: none of the three sites' secrets is in it.
    secrets = {
        f"{site}/{p.name}": p.read_text().strip()
        for site in (DEV_SITE, QA_SITE, LIVE_SITE)
        for p in (SECRETS / site).glob("*")
        if p.is_file()
    }
    assert len(secrets) >= 6, sorted(secrets)
    leaked = [name for name, value in secrets.items() if value in run.stdout + run.stderr]
    assert not leaked, f"secrets in establish.yml -v output: {leaked}"
    live = site_state(LIVE, LIVE_SITE)
    assert "POC1" in live["courses"].split() and live["users"].split() == ["admin", "guest"]
    assert live["summary"] == '<a href="http://initech-live.local/course/index.php">the first design</a>'
    assert marker(LIVE, LIVE_SITE, "first_build") == dev_built  # the same design as Dev
    for host, site in ((DEV, DEV_SITE), (QA, QA_SITE), (LIVE, LIVE_SITE)):
        record = json.loads(output_of(host, "cat", f"/srv/lms/{site}/deployment.json"))
        assert record["release"] == "moodle-5.1-r1" and record["verified"] is True, (site, record)
    qa = site_state(QA, QA_SITE)
    restored = marker(QA, QA_SITE, "restored_backup")
    assert restored.startswith(f"{LIVE_SITE}/"), restored
    # Live's accounts and the shared ones, no learner
    assert set(qa["users"].split()) == {"admin", "guest", "tutor", "student"}
    assert "POC1" in qa["courses"].split()

    again = establish(estate, stores)
    assert again.returncode == 0, again.stdout[-4000:]
    assert again.stdout.count(": skip (") >= 8 and ": run (" not in again.stdout
    for host in (DEV, QA, LIVE):
        assert not re.search(rf"^{host}\s+: ok=\d+\s+changed=[1-9]", again.stdout, re.M), again.stdout[-3000:]


# ----- a point release, the one way to Live ------------------------------------------------------------

POINT = "moodle-5.1.1-r1"
#: Sunday 02:30 in London: inside initech-live's window (sun 02:00-04:00 Europe/London).
IN_LIVE_WINDOW = "2026-12-06T02:30:00Z"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def point_release_tree(source: Path, tree: Path) -> str:
    """The next point release of the Moodle tree ``source`` (5.1 -> 5.1.1), standing in for the
    upstream one, which this machine cannot download: the same files (hard links where the file system
    allows), version.php with the next point's $version (...00.02 -> ...01.00) and $release. Moodle's
    upgrade to it is the core upgrade of a point release (no schema step is due in the same code), so
    the build, deploys, promotions, snapshot, backup and checks are the real ones. Returns $version."""
    shutil.copytree(source, tree, copy_function=_link_or_copy, symlinks=True)
    version_php = next(p for p in (tree / "public" / "version.php", tree / "version.php") if p.exists())
    text = version_php.read_text()
    point = re.search(r"^\$version\s*=\s*([0-9.]+)", text, re.M).group(1)
    version = f"{int(float(point)) + 1}.00"
    text = re.sub(r"^(\$version\s*=\s*)[0-9.]+", rf"\g<1>{version}", text, flags=re.M)
    release = "'5.1.1 (Build: three-instance test)'"
    text = re.sub(r"^(\$release\s*=\s*)'[^']*'", rf"\g<1>{release}", text, flags=re.M)
    version_php.unlink()  # a hard link: never write through it into the source tree
    version_php.write_text(text)
    return version


def db_version(host: str, site: str) -> float:
    return float(sql(host, site, "SELECT value FROM mdl_config WHERE name = 'version'"))


def test_a_point_release_goes_dev_qa_live_inside_the_window_and_never_back(estate, tmp_path):
    """A point release of the branch (core $version raised, the same branch) is a release like any
    other: built once, deployed to Dev, promoted to QA and, inside Live's window, to Live - each
    upgraded in maintenance, checked and recorded, Live snapshotted and backed up first. The release
    before it cannot go back on a site it upgraded: refused before anything changes, naming both
    versions."""
    source = moodle_source.resolve("5.1")
    if not source["path"] or source["type"] != "dir":
        pytest.skip(f"a Moodle 5.1 tree is needed to make its point release: {source.get('message', source)}")
    version = float(point_release_tree(Path(source["path"]), tmp_path / "moodle-5.1.1"))
    manifest = tmp_path / f"{POINT}.yml"
    manifest.write_text(yaml.safe_dump({"release": POINT, "flavour": "moodle", "branch": "5.1",
                                        "core": {"dir": str(tmp_path / "moodle-5.1.1")}}))  # fmt: skip
    stores = vars_file(tmp_path / "stores.json", {
        "backup_store": s3_store("molecule-backups", from_containers=True, prefix="onboard-backups"),
        "release_store": s3_store("molecule-releases", type="s3", prefix="releases/"),
    })  # fmt: skip
    built = ansible("ansible-playbook", "playbooks/build_release.yml", "-e", f"manifest={manifest}",
                    "-e", stores, inventory=estate, timeout=1800)  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:]
    before = db_version(LIVE, LIVE_SITE)
    assert before < version

    def initech(playbook: str, *extra: str):
        command = (f"playbooks/{playbook}", "-e", "customer=initech", "-e", stores, *extra)
        return ansible("ansible-playbook", *command, inventory=estate, timeout=1800)

    for playbook, *extra in (
        ("deploy.yml", "-e", "tier=dev", "-e", f"release={POINT}"),
        ("promote.yml", "-e", "to=qa"),
        ("promote.yml", "-e", "to=live", "-e", f"release_at={IN_LIVE_WINDOW}"),
    ):
        done = initech(playbook, *extra)
        assert done.returncode == 0, done.stdout[-4000:]
    for host, site in ((DEV, DEV_SITE), (QA, QA_SITE), (LIVE, LIVE_SITE)):
        record = json.loads(output_of(host, "cat", f"/srv/lms/{site}/deployment.json"))
        assert record["release"] == POINT and record["verified"] is True, (site, record["checks"])
        assert record["upgraded"] is True and record["previous_release"] == "moodle-5.1-r1", site
        assert float(record["lms_version"]) == version == db_version(host, site), site
    live = json.loads(output_of(LIVE, "cat", f"/srv/lms/{LIVE_SITE}/deployment.json"))
    assert live["override_window_reason"] is None  # inside the window, no override
    assert live["snapshot"] and live["backup"], live  # Live copied twice before it changed

    # The release before it, on the Dev site it upgraded: refused before anything changes.
    back = initech("deploy.yml", "-e", "tier=dev", "-e", "release=moodle-5.1-r1")
    assert back.returncode != 0
    assert "older than the site's database" in back.stdout, back.stdout[-4000:]
    assert "Moodle cannot downgrade" in back.stdout
    assert json.loads(output_of(DEV, "cat", f"/srv/lms/{DEV_SITE}/deployment.json"))["release"] == POINT
    assert db_version(DEV, DEV_SITE) == version
    login = "http://initech-dev.local/login/index.php"
    page = output_of(DEV, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                     "initech-dev.local:80:127.0.0.1", login)  # fmt: skip
    assert page == "200"


# ----- a PoC handed over by its running site -----------------------------------------------------------

RUNNING_POC, RUNNING_POC_URL = "/srv/poc/globex", "http://globex-poc.local"
RUNNING_POC_DATA, RUNNING_POC_DB = "/var/lib/poc/globex", "poc_globex"
RUNNING_POC_CONFIG = """<?php  // a PoC of its own, outside the estate
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype = 'pgsql';
$CFG->dblibrary = 'native';
$CFG->dbhost = 'localhost';
$CFG->dbname = '{db}';
$CFG->dbuser = '{db}';
$CFG->dbpass = '{password}';
$CFG->prefix = 'mdl_';
$CFG->dboptions = ['dbport' => 5432, 'dbsocket' => '/var/run/postgresql'];
$CFG->wwwroot = '{url}';
$CFG->dataroot = '{data}';
$CFG->admin = 'admin';
$CFG->directorypermissions = 02777;
require_once(__DIR__ . '/lib/setup.php');
"""


def _drop_running_poc() -> None:
    run_in(DEV, "sh", "-c", f"rm -rf {RUNNING_POC} {RUNNING_POC_DATA} && sed -i '/{RUNNING_POC_DB}/d' "
           "/etc/postgresql/*/main/pg_hba.conf && systemctl reload postgresql", check=False)  # fmt: skip
    drop = f"DROP DATABASE IF EXISTS {RUNNING_POC_DB}; DROP ROLE IF EXISTS {RUNNING_POC_DB};"
    run_in(DEV, "runuser", "-u", "postgres", "--", "psql", "-q", stdin=drop, check=False)


@pytest.fixture(scope="module")
def running_poc(estate):
    """A PoC running on dev1 outside the estate, as a customer's PoC on a provider's server is: globex-dev
    copied - its code hard-linked into a folder of its own with a config.php of its own, its database into
    one owned by a role of its own (its pg_hba.conf line), its dataroot owned by www-data. After the estate
    fixture's converge (which writes dev1's pg_hba.conf); removed at the end."""
    password = secrets.token_hex(16)
    _drop_running_poc()
    db, data, globex = RUNNING_POC_DB, RUNNING_POC_DATA, POC.replace("-", "_")
    make = f"""set -e
mkdir -p /srv/poc /var/lib/poc
cp -al "$(readlink -f /srv/lms/{POC}/current)" {RUNNING_POC}
rm -rf {RUNNING_POC}/config.php {RUNNING_POC}/.three-instance-release {RUNNING_POC}/.three-instance
cat > {RUNNING_POC}/config.php
cp -a /var/lib/lms/{POC} {data}
chown -R www-data:www-data {data}
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE {db} LOGIN PASSWORD '{password}';
CREATE DATABASE {db} OWNER {db};
SQL
runuser -u postgres -- pg_dump -Fc {globex} \\
  | runuser -u postgres -- pg_restore --no-owner --role={db} -d {db}
sed -i '1i local {db} {db} scram-sha-256' /etc/postgresql/*/main/pg_hba.conf
systemctl reload postgresql
"""
    config = RUNNING_POC_CONFIG.format(db=db, password=password, url=RUNNING_POC_URL, data=data)
    run_in(DEV, "sh", "-c", make, stdin=config)
    try:
        yield password
    finally:
        _drop_running_poc()


def test_a_running_poc_is_handed_over_by_its_host(estate, running_poc, tmp_path):
    """onboard.yml with the PoC named by its host and code folder (host://): its host dumps and archives
    it (lms_poc_export, read only), the files reach the controller and QA's scratch site reads them;
    check mode changes nothing, and nothing is left on either side. The estate's own globex-dev, named
    the same way, is refused before anything is read."""
    qa_before, poc_before = site_state(QA, QA_SITE), site_state(DEV, "poc-globex")
    dry = onboard(estate, f"host://{DEV}{RUNNING_POC}", "--check", "-v", wwwroot=RUNNING_POC_URL)
    assert dry.returncode == 0, dry.stdout[-6000:] + dry.stderr[-2000:]
    assert '"dump": "database.pgdump"' in dry.stdout  # lms_poc_export on dev1
    assert f'"wwwroot_from": "{RUNNING_POC_URL}"' in dry.stdout  # lms_adopt read it in QA's scratch site
    assert running_poc not in dry.stdout + dry.stderr  # the PoC's database password
    assert site_state(QA, QA_SITE) == qa_before and site_state(DEV, "poc-globex") == poc_before
    assert run_in(DEV, "test", "-e", "/var/lib/lms-poc-export/initech", check=False).returncode == 1
    assert not (Path.home() / ".cache" / "three-instance" / "onboard" / "initech").exists()

    # Another address than the PoC's own: refused after the export, before QA is touched.
    wrong = onboard(estate, f"host://{DEV}{RUNNING_POC}", "--check", wwwroot="http://elsewhere.example")
    assert wrong.returncode != 0 and f"says its address is {RUNNING_POC_URL}" in wrong.stdout, wrong.stdout[
        -3000:
    ]

    # The estate's own site named as a PoC: refused on its host before anything is read.
    estate_site = onboard(estate, f"host://{DEV}/srv/lms/{POC}/current", "--check", wwwroot=POC_URL)
    assert estate_site.returncode != 0
    assert (
        "is not outside the estate" in estate_site.stdout and f"overlaps {POC}'s code" in estate_site.stdout
    )
    assert run_in(DEV, "test", "-e", "/var/lib/lms-poc-export/initech", check=False).returncode == 1

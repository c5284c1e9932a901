"""Backups to S3 and restores: real Moodle 5.1 on PostgreSQL and on MariaDB, a moto S3 server over HTTP.

* round trip (both databases): back up, back up again (incremental: no filedir upload), restore into
  another site of the customer (a QA site on the same server), compare files byte for byte and the
  database table by table; wwwroot rewritten; the restored site answers Moodle's CLI;
* an interrupted backup (killed mid-upload) leaves no manifest; the next run completes;
* restore refuses missing or corrupt manifests and objects before the target changes;
* prune keeps exactly what the policy says and never deletes a referenced object.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import moodle_cli
import moodle_site as ms
import pytest
import s3_store
from backup.create import DUMP_ARGS, scan_filedir
from backup.format import FORMAT, SITE_ARGS, BackupError, Keys, list_backups, load_manifest, seal
from backup.info import info as backup_info
from backup.prune import PRUNE_ARGS, prune
from backup.restore import RESTORE_ARGS
from backup.restore import restore as restore_backup
from conftest import ModuleRunner

REPO = Path(__file__).resolve().parents[2]
CUSTOMER = "acme"
# How the backup timer runs the code (roles/backup): the package on PYTHONPATH, python3 -m backup.timer.
TIMER_ENV = {**os.environ, "PYTHONPATH": str(REPO / "plugins" / "module_utils")}

# Tables a restore itself writes to (its marker, caches, logs); all others must match row for row.
CHANGED_BY_RESTORE = {"config_plugins", "config_log", "cache_flags", "sessions", "logstore_standard_log"}

COUNT_ROWS = r"""
$out = [];
foreach ($DB->get_tables(false) as $table) {
    $out[$table] = $DB->count_records($table);
}
$out['@users'] = array_values($DB->get_fieldset_sql('SELECT username FROM {user} ORDER BY username'));
$out['@hashes'] = array_values($DB->get_fieldset_sql(
    'SELECT DISTINCT contenthash FROM {files} ORDER BY contenthash'));
$out['@summary'] = $DB->get_field('course', 'summary', ['id' => SITEID]);
echo json_encode($out);
"""


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    name = f"ti-backup-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"])
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s3_endpoint["region"]})
    return {"name": name, "client": client, "endpoint": s3_endpoint}


def store_args(bucket) -> dict:
    info = bucket["endpoint"]
    return {
        "bucket": bucket["name"],
        "endpoint_url": info["endpoint_url"],
        "region": info["region"],
        "access_key": info["access_key"],
        "secret_key": info["secret_key"],
        "threads": 4,
    }


def params(moodle, bucket, **extra) -> dict:
    """Module options with their defaults, for calling module_utils directly (faster than Ansible)."""
    out = {}
    for spec in (
        moodle_cli.COMMON_ARGS,
        SITE_ARGS,
        DUMP_ARGS,
        RESTORE_ARGS,
        PRUNE_ARGS,
    ):
        out.update({name: opts.get("default") for name, opts in spec.items()})
    if moodle is not None:
        out.update(path=str(moodle.code), web_user=moodle.web_user)
    out.update(customer=CUSTOMER, part_size_mb=5)
    store_options = s3_store.BACKUP_STORE_ARGS["store"]["options"]
    store = {**store_args(bucket), **{k: extra.pop(k) for k in list(extra) if k in store_options}}
    out["store"] = s3_store.store_defaults(s3_store.BACKUP_STORE_ARGS["store"], store)
    out.update(extra)
    return out


def add_content(site: ms.MoodleTestSite) -> None:
    """Files through Moodle's file API (a 6 MiB one crosses the multipart part size), a link to the
    site's wwwroot in the front page summary, a file in the dataroot outside filedir."""
    stamp = time.monotonic_ns()
    site.php_eval(
        "$fs = get_file_storage(); $ctx = context_system::instance();\n"
        f"foreach ([10, 70000, 6 * 1024 * 1024] as $i => $size) {{\n"
        "  $fs->create_file_from_string(['contextid' => $ctx->id, 'component' => 'local_ti',\n"
        "    'filearea' => 'backuptest', 'itemid' => 0, 'filepath' => '/',\n"
        f"    'filename' => \"f{stamp}-$i.bin\"],\n"
        "    random_bytes($size));\n"
        "}\n"
        "$DB->set_field('course', 'summary', '<a href=\"' . $CFG->wwwroot . '/course/view.php?id=2\">x</a>',"
        " ['id' => SITEID]);"
    )
    marker = site.dataroot / "ti-notes" / "notes.txt"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(f"dataroot outside filedir {stamp}\n")
    user = pwd.getpwnam(site.web_user)
    for path in (marker.parent, marker):
        os.chown(path, user.pw_uid, user.pw_gid)


def db_snapshot(site: ms.MoodleTestSite) -> dict:
    return json.loads(site.php_eval(COUNT_ROWS).stdout)


def make_target(source: ms.MoodleTestSite, moodle_src: Path, tier: str) -> ms.MoodleTestSite:
    """Another site of the customer on the same database server: code, config.php, an empty
    database and dataroot (what the stack roles leave before an install or a refill)."""
    suffix = uuid.uuid4().hex[:6]
    return ms.MoodleTestSite(
        ms.private_tmpdir(f"ti-{tier}-"),
        source.db,
        dbname=f"moodle_{tier}_{suffix}",
        dbuser=f"moodle_{tier}_{suffix}",
        wwwroot=f"http://localhost/ti-{tier}",
    ).create(moodle_src)


@pytest.fixture(scope="module")
def qa_site(moodle_site, moodle_src):
    site = make_target(moodle_site, moodle_src, "qa")
    yield site
    shutil.rmtree(site.base, ignore_errors=True)


@pytest.fixture(scope="module")
def live_backup(moodle_site, bucket):
    """One backup of the PostgreSQL site (made through Ansible), for the refusal tests."""
    add_content(moodle_site)
    result = ModuleRunner(moodle_site)(
        "lms_backup", site="acme-live", customer=CUSTOMER, part_size_mb=5, store=store_args(bucket)
    )
    assert result.get("changed"), result
    return result


MUC_PHP = r"""
define('MOODLE_INTERNAL', 1);
include $argv[1];
$c = $configuration;
%s
if ($argv[2] === 'write') {
    $php = "<?php defined('MOODLE_INTERNAL') || die();\n \$configuration = " . var_export($c, true) . ";";
    file_put_contents($argv[1], $php);
}
echo json_encode($c);
"""


def muc(path: Path, change: str = "") -> dict:
    """A cache configuration file (muc/config.php) as data; with ``change`` (PHP on ``$c``), first
    rewritten the way Moodle writes it."""
    mode = "write" if change else "read"
    run = subprocess.run(
        ["php", "-r", MUC_PHP % change, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def round_trip(source: ms.MoodleTestSite, target: ms.MoodleTestSite, bucket: dict, site_name: str) -> None:
    add_content(source)
    run = ModuleRunner(source)
    # 5 MiB parts (S3's minimum): the 6 MiB test file and the dump go up in several parts.
    args = {
        "site": site_name,
        "customer": CUSTOMER,
        "tier": "live",
        "part_size_mb": 5,
        "store": store_args(bucket),
    }

    planned = run("lms_backup", check=True, **args)
    assert planned["changed"] and planned["filedir_to_upload"] >= 3, planned
    first = run("lms_backup", **args)
    assert first.get("changed"), first
    assert first["filedir"]["uploaded"] >= 3 and first["moodle_version"].startswith("20")
    # Moodle's own small files go into packs; the 6 MiB test file is a loose object.
    assert first["filedir"]["packs_uploaded"] >= 1 and first["filedir"]["packs"] >= 1, first["filedir"]

    # The next day: nothing new in filedir, so only the dump, the small tar, config and manifest.
    second = run("lms_backup", **args)
    assert second["filedir"]["uploaded"] == 0 and second["filedir"]["uploaded_bytes"] == 0
    assert second["filedir"]["packs_uploaded"] == 0
    assert second["filedir"]["already_stored"] == first["filedir"]["files"]
    small = (
        second["database"]["size"]
        + second["dataroot_tar_bytes"]
        + 64 * 1024
        + 200 * first["filedir"]["files"]
    )
    assert second["bytes_uploaded"] <= small, second
    print(
        f"\n[backup {site_name}] full {first['bytes_uploaded']} B in {first['seconds']} s, "
        f"next {second['bytes_uploaded']} B in {second['seconds']} s",
        file=sys.stderr,
    )

    # Restore the latest into the QA site (check mode first: it only reports).
    restore = ModuleRunner(target)
    restore_args = {
        "site": "acme-qa",
        "source_site": site_name,
        "customer": CUSTOMER,
        "store": store_args(bucket),
    }
    preview = restore("lms_restore", check=True, **restore_args)
    assert preview["changed"] and preview["backup_id"] == second["backup_id"], preview
    # The target is in CLI maintenance (the flag file maintenance.php --enable writes; the target
    # is not installed yet, so the CLI cannot write it here).
    flag = target.dataroot / "climaintenance.html"
    flag.write_text("<h1>Back soon</h1>")
    # Each site's cache configuration (MUC: its Redis and the password) is its own: the source's
    # (Moodle wrote it at install) never reaches the backup nor the target; the target keeps its own
    # (here a valid one, marked).
    source_muc = target.dataroot.parent / "source-muc.php"
    shutil.copyfile(source.dataroot / "muc" / "config.php", source_muc)
    target_muc = target.dataroot / "muc" / "config.php"
    target_muc.parent.mkdir(exist_ok=True)
    target_muc.write_text(source_muc.read_text())
    muc(target_muc, "$c['locks']['ti_target_own'] = ['name' => 'ti_target_own', 'type' => 'cachelock_file'];")
    restored = restore("lms_restore", **restore_args, settings={"theme_boost/brandcolor": "#005a9c"})
    assert restored.get("changed"), restored
    # A site in maintenance stays in it (QA serves nothing before it is sanitised).
    assert flag.read_text() == "<h1>Back soon</h1>"
    # The target's own is carried across (its marker lock is there), re-keyed by Moodle to the
    # copy's own siteidentifier (a restore of another site gives the target an identity of its
    # own; the cache configuration keeps its md5).
    carried = muc(target_muc)
    assert carried["locks"]["ti_target_own"]["type"] == "cachelock_file"
    own = target.php_eval("echo $CFG->siteidentifier;").stdout.strip().splitlines()[-1]
    assert carried["siteidentifier"] == hashlib.md5(own.encode(), usedforsecurity=False).hexdigest()
    assert carried["siteidentifier"] != muc(source_muc)["siteidentifier"]
    assert pwd.getpwuid(target_muc.stat().st_uid).pw_name == target.web_user
    assert restore("lms_maintenance", state="disabled")["changed"] is True and not flag.exists()
    assert restored["backup_id"] == second["backup_id"]
    assert restored["wwwroot_from"] == source.wwwroot and restored["wwwroot_to"] == target.wwwroot

    # Files: the same content objects, byte for byte; the rest of the dataroot too.
    source_files, _ = scan_filedir(str(source.dataroot))
    target_files, _ = scan_filedir(str(target.dataroot))
    assert sorted(source_files) == sorted(target_files)
    for sha1, (path, _) in source_files.items():
        assert filecmp.cmp(path, target_files[sha1][0], shallow=False), sha1
        assert (
            hashlib.sha1(Path(target_files[sha1][0]).read_bytes(), usedforsecurity=False).hexdigest() == sha1
        )
    assert (target.dataroot / "ti-notes" / "notes.txt").read_text() == (
        source.dataroot / "ti-notes" / "notes.txt"
    ).read_text()
    assert pwd.getpwuid((target.dataroot / "ti-notes" / "notes.txt").stat().st_uid).pw_name == target.web_user
    assert not Path(str(target.dataroot) + ".restoring").exists()

    # Database: every table has the same rows (but those the restore writes to), same users and files.
    before, after = db_snapshot(source), db_snapshot(target)
    assert set(before) == set(after)
    differing = {t for t in before if not t.startswith("@") and before[t] != after[t]}
    assert differing <= CHANGED_BY_RESTORE, {t: (before[t], after[t]) for t in differing}
    assert before["@users"] == after["@users"] and before["@hashes"] == after["@hashes"]
    assert source.wwwroot + "/course" in before["@summary"]
    assert after["@summary"] == before["@summary"].replace(source.wwwroot, target.wwwroot)

    # The restored site works: Moodle reads it, no upgrade pending, the setting applied.
    facts = restore("lms_facts")["lms"]
    assert facts["installed"] and facts["installed_version"] == first["moodle_version"]
    assert facts["upgrade_pending"] is False and facts["wwwroot"] == target.wwwroot
    assert target.cli("cfg.php", "--component=theme_boost", "--name=brandcolor").stdout.strip() == "#005a9c"

    # The same backup again: nothing to do.
    again = restore("lms_restore", **restore_args)
    assert again.get("changed") is False, again


def test_round_trip_postgresql(moodle_site, qa_site, bucket):
    round_trip(moodle_site, qa_site, bucket, "acme-live")


def test_round_trip_mariadb(moodle_site_mariadb, moodle_src, bucket):
    target = make_target(moodle_site_mariadb, moodle_src, "qa")
    try:
        round_trip(moodle_site_mariadb, target, bucket, "acme-live-mdb")
    finally:
        shutil.rmtree(target.base, ignore_errors=True)


def test_interrupted_backup_leaves_no_manifest_and_next_run_completes(moodle_site, bucket, tmp_path):
    """Killed (SIGKILL) while the dump's multipart upload is under way: no object, no manifest, the
    backup is not listed; the next run completes. The dump tool is slowed down by a wrapper that
    adds 12 MiB after the real dump and then waits, so the kill lands mid-upload for sure."""
    slow = tmp_path / "slow_pg_dump"
    slow.write_text('#!/bin/sh\npg_dump "$@" && head -c 12582912 /dev/zero && sleep 120\n')
    slow.chmod(0o755)
    options = params(moodle_site, bucket, site="acme-live", backup_id="interrupted-1", pg_dump=str(slow))
    config = tmp_path / "backup.json"
    config.write_text(json.dumps(options))
    config.chmod(0o600)
    keys = Keys("lms-backups", CUSTOMER, "acme-live")
    client = bucket["client"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "backup.timer", "create", "--config", str(config)],
        env=TIMER_ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        parts = 0
        while parts < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            for upload in client.list_multipart_uploads(Bucket=bucket["name"], Prefix=keys.data_prefix).get(
                "Uploads", []
            ):
                listed = client.list_parts(
                    Bucket=bucket["name"], Key=upload["Key"], UploadId=upload["UploadId"]
                )
                parts = max(parts, len(listed.get("Parts", [])))
        assert parts >= 2, f"the upload never got under way (backup exit code {proc.poll()})"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    store = s3_store.connect(options["store"])
    assert store.head_size(keys.manifest("interrupted-1")) is None
    assert store.head_size(keys.data("interrupted-1", "database.pgdump")) is None
    assert "interrupted-1" not in list_backups(store, keys)
    with pytest.raises(BackupError, match="no manifest"):
        load_manifest(store, keys, "interrupted-1")

    # The next run (through the same script, the real pg_dump) completes and is complete.
    options.update(pg_dump="pg_dump")
    config.write_text(json.dumps(options))
    done = subprocess.run(
        [sys.executable, "-m", "backup.timer", "create", "--config", str(config)],
        env=TIMER_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backup_id"] == "interrupted-1"
    checked = backup_info(params(None, bucket, site="acme-live", verify=True, backup_id="interrupted-1"))
    assert checked["complete"], checked["problems"]
    for upload in client.list_multipart_uploads(Bucket=bucket["name"]).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket["name"], Key=upload["Key"], UploadId=upload["UploadId"])


def tampered(bucket, good: dict, backup_id: str, change) -> None:
    """A copy of the backup ``good`` under site acme-tamper: data objects copied, then ``change(manifest,
    keys)`` edits it; the manifest is sealed again (unless ``change`` returns raw bytes)."""
    client, name = bucket["client"], bucket["name"]
    keys = Keys("lms-backups", CUSTOMER, "acme-tamper")
    manifest = json.loads(json.dumps(good))
    manifest.update(id=backup_id, site="acme-tamper")
    for info in manifest["objects"].values():
        new_key = keys.data(backup_id, info["key"].rsplit("/", 1)[1])
        client.copy_object(Bucket=name, Key=new_key, CopySource={"Bucket": name, "Key": info["key"]})
        info["key"] = new_key
    raw = change(manifest, keys)
    client.put_object(Bucket=name, Key=keys.manifest(backup_id), Body=raw or seal(manifest))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-such-backup", "has no manifest"),
        ("manifest-edited", "checksum mismatch"),
        ("manifest-truncated", "not JSON"),
        ("filedir-object-missing", "is incomplete"),
        ("dump-missing", "is incomplete"),
        ("dump-corrupt", r"is corrupt \(sha256"),
        ("filedir-object-corrupt", "is corrupt in the bucket"),
        ("pack-corrupt", "is corrupt in the bucket"),
        ("pack-missing", "is incomplete"),
    ],
)
def test_restore_refuses_incomplete_or_corrupt_backups(
    case, message, moodle_site, qa_site, live_backup, bucket
):
    client, name = bucket["client"], bucket["name"]
    store = s3_store.connect(params(None, bucket)["store"])
    good = load_manifest(store, Keys("lms-backups", CUSTOMER, "acme-live"), live_backup["backup_id"])

    def edit(manifest, keys):
        if case == "manifest-edited":
            raw = json.loads(seal(manifest))
            raw["wwwroot"] = "http://evil.example"
            return json.dumps(raw).encode()
        if case == "manifest-truncated":
            return seal(manifest)[:-20]
        if case == "filedir-object-missing":
            manifest["filedir"]["f" * 40] = 3
        if case == "dump-missing":
            client.delete_object(Bucket=name, Key=manifest["objects"]["database"]["key"])
        if case == "dump-corrupt":
            body = os.urandom(manifest["objects"]["database"]["size"])
            client.put_object(Bucket=name, Key=manifest["objects"]["database"]["key"], Body=body)
        if case in ("pack-corrupt", "pack-missing"):
            # A small file in a pack: bytes of the right size that are not the file (bit rot), or
            # a pack the manifest names that is not in the bucket.
            sha1 = hashlib.sha1(f"packed {case} {uuid.uuid4()}".encode(), usedforsecurity=False).hexdigest()
            pack_id = uuid.uuid4().hex * 2
            if case == "pack-corrupt":
                index = {"format": FORMAT, "pack": pack_id, "size": 48, "files": {sha1: [0, 48]}}
                client.put_object(Bucket=name, Key=keys.pack(pack_id), Body=b"y" * 48)
                client.put_object(Bucket=name, Key=keys.pack_index(pack_id), Body=seal(index))
            manifest["filedir"][sha1] = 48
            manifest["packs"] = [*manifest.get("packs", []), pack_id]
        if case == "filedir-object-corrupt":
            # Same size, other bytes, under the SHA-1 of the real content: bit rot in the bucket.
            sha1 = hashlib.sha1(f"real {case} {uuid.uuid4()}".encode(), usedforsecurity=False).hexdigest()
            client.put_object(Bucket=name, Key=keys.content(sha1), Body=b"x" * 48)
            manifest["filedir"][sha1] = 48
        return None

    backup_id = f"t-{case}-{uuid.uuid4().hex[:6]}"
    if case != "no-such-backup":
        tampered(bucket, good, backup_id, edit)
    sentinel = qa_site.dataroot / "ti-sentinel.txt"
    sentinel.write_text(case)
    tables_before = db_snapshot(qa_site) if (qa_site.dataroot / "filedir").exists() else None
    options = params(qa_site, bucket, site="acme-qa", source_site="acme-tamper", backup_id=backup_id)
    with pytest.raises(BackupError, match=message):
        restore_backup(options)
    # Nothing changed on the target.
    assert sentinel.read_text() == case
    assert not Path(str(qa_site.dataroot) + ".restoring").exists()
    if tables_before is not None:
        assert db_snapshot(qa_site) == tables_before


def test_prune_keeps_the_policy_and_never_deletes_referenced_objects(bucket):
    """40 daily backups of prunecorp-live (each refers to a shared and an own content object), one
    backup of prunecorp-qa that refers to the own object of an expiring Live backup, and the data
    of an interrupted backup. Policy: 3 daily, 2 weekly, 2 monthly."""
    client, name = bucket["client"], bucket["name"]
    customer = "prunecorp"
    live = Keys("lms-backups", customer, "prunecorp-live")
    qa = Keys("lms-backups", customer, "prunecorp-qa")

    sizes = {}

    def content(label: str) -> str:
        body = label.encode()
        sha1 = hashlib.sha1(body, usedforsecurity=False).hexdigest()
        client.put_object(Bucket=name, Key=live.content(sha1), Body=body)
        sizes[sha1] = len(body)
        return sha1

    shared = [content(f"shared {i}") for i in range(5)]
    own = {}

    def pack(label: str) -> str:
        """A pack of one small file and its index (the prune only reads the manifests' pack ids)."""
        body = label.encode()
        sha1 = hashlib.sha1(body, usedforsecurity=False).hexdigest()
        pack_id = hashlib.sha256(body).hexdigest()
        index = {"format": FORMAT, "pack": pack_id, "size": len(body), "files": {sha1: [0, len(body)]}}
        client.put_object(Bucket=name, Key=live.pack(pack_id), Body=body)
        client.put_object(Bucket=name, Key=live.pack_index(pack_id), Body=seal(index))
        sizes[sha1] = len(body)
        return pack_id, sha1

    kept_pack, expiring_pack = pack("packed, kept"), pack("packed, expiring")
    client.put_object(Bucket=name, Key=live.pack("0" * 64), Body=b"interrupted: no index")

    def backup(keys, site, when, filedir, packs=()):
        backup_id = when.strftime("%Y%m%dT%H%M%SZ")
        data_key = keys.data(backup_id, "database.pgdump")
        client.put_object(Bucket=name, Key=data_key, Body=b"dump")
        manifest = {
            "format": FORMAT,
            "id": backup_id,
            "customer": customer,
            "site": site,
            "created": when.isoformat(),
            "objects": {
                "database": {"key": data_key, "size": 4, "sha256": hashlib.sha256(b"dump").hexdigest()}
            },
            "filedir": {sha1: sizes[sha1] for sha1 in [*filedir, *(sha1 for _, sha1 in packs)]},
            "packs": [pack_id for pack_id, _ in packs],
        }
        client.put_object(Bucket=name, Key=keys.manifest(backup_id), Body=seal(manifest))
        return backup_id

    today = dt.datetime(2026, 11, 26, 2, 30, tzinfo=dt.UTC)
    for n in range(40):
        when = today - dt.timedelta(days=n)
        own[n] = content(f"own {n}")
        packs = [kept_pack] if n == 0 else [expiring_pack] if n == 39 else []
        backup(live, "prunecorp-live", when, [shared[n % 5], own[n]], packs)
    qa_id = backup(qa, "prunecorp-qa", today, [own[30]])
    client.put_object(Bucket=name, Key=live.data("interrupted", "database.pgdump"), Body=b"half")

    options = params(
        None,
        bucket,
        customer=customer,
        site="prunecorp-live",
        keep_daily=3,
        keep_weekly=2,
        keep_monthly=2,
        grace_hours=0,
    )
    preview = prune(options, check_mode=True)
    assert len(preview["expired"]) == 35 and len(list_backups(s3_store.connect(options["store"]), live)) == 40

    result = prune(options)
    # Days 0-2 (daily), Sunday 22nd (last week), 31 October (last month): Nov 26th is all four.
    expected = {
        0: ["daily", "weekly", "monthly", "latest"],
        1: ["daily"],
        2: ["daily"],
        4: ["weekly"],
        26: ["monthly"],
    }
    assert result["kept"] == {
        (today - dt.timedelta(days=n)).strftime("%Y%m%dT%H%M%SZ"): why for n, why in expected.items()
    }
    store = s3_store.connect(options["store"])
    assert list_backups(store, live) == sorted(result["kept"])
    assert list_backups(store, qa) == [qa_id]
    left = {key.rsplit("/", 1)[1] for key in store.list(live.content_prefix)}
    referenced = {own[n] for n in expected} | {shared[n % 5] for n in expected} | {own[30]}
    assert left == referenced
    # The kept backup's pack stays; the expired one's and the interrupted one (no index) go.
    assert set(store.list(live.pack_prefix)) == {live.pack(kept_pack[0]), live.pack_index(kept_pack[0])}
    assert result["deleted_packs"] == 2
    data_left = {key.split("/data/")[1].split("/")[0] for key in store.list(live.data_prefix)}
    assert data_left == set(result["kept"])
    assert result["deleted_objects"] == 36  # 35 expired dumps + the interrupted one

    again = prune(options)
    assert again["changed"] is False and again["expired"] == []


def test_verify_restores_into_a_scratch_site_and_cleans_up(moodle_site, live_backup, bucket):
    scratch = ms.private_tmpdir("ti-verify-")  # the web user must reach the scratch site
    args = {
        "site": "acme-live",
        "customer": CUSTOMER,
        "scratch_dir": str(scratch),
        "store": store_args(bucket),
    }
    planned = ModuleRunner(moodle_site)("lms_backup_verify", check=True, **args)
    assert planned["ok"] and planned["changed"] is False and planned["problems"] == [], planned
    assert list(scratch.iterdir()) == []  # check mode restores nothing
    proof = ModuleRunner(moodle_site)("lms_backup_verify", **args)
    shutil.rmtree(scratch, ignore_errors=True)
    assert proof.get("ok"), proof.get("msg") or proof.get("problems")
    assert (
        proof["backup_id"]
        == planned["backup_id"]
        == list_backups(
            s3_store.connect(params(None, bucket)["store"]), Keys("lms-backups", CUSTOMER, "acme-live")
        )[-1]
    )
    assert proof["rows"]["user"] >= 2 and proof["rows"]["files"] > 0
    assert proof["files_referenced_missing"] == 0 and proof["samples_checked"] > 0
    assert not (scratch / "acme-live.verify").exists()
    databases = moodle_site.db.psql("SELECT datname FROM pg_database")
    assert "moodle_verify" not in databases.split()

"""Unit tests of plugins/module_utils/backup/: retention, manifests, keys, streams (no services)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

from backup import create, restore, verify
from backup.format import FORMAT, BackupError, Content, Keys, seal, unseal
from backup.prune import retained
from backup.site_config import db_env


def day(n: int, hour: int = 3) -> dt.datetime:
    """n days before Thursday 2026-11-26, at ``hour``."""
    return dt.datetime(2026, 11, 26, hour, tzinfo=dt.UTC) - dt.timedelta(days=n)


def ids(times: list[dt.datetime]) -> dict[str, dt.datetime]:
    return {t.strftime("%Y%m%dT%H%M%SZ"): t for t in times}


def test_retention_daily_keeps_newest_per_day():
    backups = ids([day(0, 3), day(0, 15), day(1), day(2), day(3)])
    kept = retained(backups, daily=2, weekly=0, monthly=0)
    assert sorted(kept) == ["20261125T030000Z", "20261126T150000Z"]
    assert kept["20261126T150000Z"] == ["daily", "latest"]


def test_retention_weekly_and_monthly_over_a_year():
    backups = ids([day(n) for n in range(365)])
    kept = retained(backups, daily=7, weekly=4, monthly=6)
    daily = {b for b, why in kept.items() if "daily" in why}
    weekly = {b for b, why in kept.items() if "weekly" in why}
    monthly = {b for b, why in kept.items() if "monthly" in why}
    assert daily == {day(n).strftime("%Y%m%dT%H%M%SZ") for n in range(7)}
    # The newest of each ISO week: Thursday 26th (this week), then the Sundays before it.
    assert sorted(weekly) == ["20261108T030000Z", "20261115T030000Z", "20261122T030000Z", "20261126T030000Z"]
    # The newest of each month: today, then the last day of each earlier month.
    assert sorted(monthly) == [
        "20260630T030000Z",
        "20260731T030000Z",
        "20260831T030000Z",
        "20260930T030000Z",
        "20261031T030000Z",
        "20261126T030000Z",
    ]
    assert set(kept) == daily | weekly | monthly
    assert len(kept) == 7 + 2 + 5  # today is daily, weekly and monthly; Sunday 22nd daily and weekly


def test_retention_gaps_count_days_with_backups_not_calendar_days():
    backups = ids([day(0), day(10), day(20), day(30)])
    assert sorted(retained(backups, daily=3, weekly=0, monthly=0)) == sorted(list(backups)[:3])


def test_retention_zero_policy_still_keeps_the_latest():
    backups = ids([day(0), day(1)])
    assert retained(backups, 0, 0, 0) == {"20261126T030000Z": ["latest"]}
    assert retained({}, 7, 4, 6) == {}


def test_manifest_seal_round_trip_and_corruption():
    manifest = {"format": FORMAT, "id": "x", "filedir": {"a" * 40: 3}, "objects": {}}
    raw = seal(manifest)
    assert unseal(raw, "m")["filedir"] == manifest["filedir"]
    tampered = json.loads(raw)
    tampered["filedir"]["a" * 40] = 4
    with pytest.raises(BackupError, match="checksum mismatch"):
        unseal(json.dumps(tampered).encode(), "m")
    with pytest.raises(BackupError, match="not JSON"):
        unseal(raw[:-5], "m")
    with pytest.raises(BackupError, match="no checksum"):
        unseal(b"{}", "m")


def test_keys_layout_and_name_validation():
    keys = Keys("lms-backups", "acme", "acme-live")
    assert keys.content("ab" + "c" * 38) == "lms-backups/acme/content/ab/ab" + "c" * 38
    assert (
        keys.manifest("20261126T030000Z")
        == "lms-backups/acme/sites/acme-live/manifests/20261126T030000Z.json"
    )
    assert keys.data("i", "database.pgdump") == "lms-backups/acme/sites/acme-live/data/i/database.pgdump"
    with pytest.raises(BackupError, match=r"customer '\.\./x'"):
        Keys("p", "../x", "s")


def test_process_reader_compresses_and_checks_the_producer():
    finished = []
    reader = create.ProcessReader(io.BytesIO(b"hello " * 1000), lambda: finished.append(True), compress=True)
    out = b"".join(iter(lambda: reader.read(100), b""))
    assert gzip.decompress(out) == b"hello " * 1000
    assert finished == [True]

    def fail():
        raise BackupError("pg_dump failed")

    failing = create.ProcessReader(io.BytesIO(b"partial"), fail)
    assert failing.read(100) == b"partial"
    with pytest.raises(BackupError, match="pg_dump failed"):
        failing.read(100)


def test_dataroot_tar_leaves_out_caches_and_filedir(tmp_path):
    for rel in (
        "filedir/ab/cd/x",
        "cache/a",
        "localcache/b",
        "sessions/s",
        "temp/t",
        "trashdir/t",
        "lock/l",
        "lang/en/x.php",
        "muc/config.php",
        "climaintenance.html",
        "keep.txt",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    out = io.BytesIO()
    create.dataroot_tar(str(tmp_path), out)
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:") as tar:
        names = sorted(tar.getnames())
    assert names == ["keep.txt", "lang", "lang/en", "lang/en/x.php"]


def test_a_backups_cache_configuration_is_dropped_on_unpacking(tmp_path):
    """Backups made before MUC was left out carry the source's muc/config.php (its Redis password):
    unpacking drops it, whatever shape it has."""
    for shape in ("dir", "file", "link"):
        src = tmp_path / shape / "src"
        (src / "lang").mkdir(parents=True)
        (src / "lang" / "x.php").write_text("x")
        if shape == "dir":
            (src / "muc").mkdir()
            (src / "muc" / "config.php").write_text("<?php // source-redis-secret")
        elif shape == "file":
            (src / "muc").write_text("source-redis-secret")
        else:
            (src / "muc").symlink_to("lang")  # (safe_tar refuses absolute links)
        archive = tmp_path / shape / "dataroot.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for entry in ("lang", "muc"):
                tar.add(src / entry, arcname=entry)
        dest = tmp_path / shape / "dest"
        restore.extract_dataroot(str(archive), str(dest), (os.getuid(), os.getgid()))
        assert sorted(p.name for p in dest.iterdir()) == ["lang"], shape


def test_site_files_are_read_without_following_links(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "config.php").write_text("mine")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.php").write_text("root's secret")
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "real" / "link.php").symlink_to(tmp_path / "elsewhere" / "config.php")
    assert restore._read_regular_file("config.php", parent=str(tmp_path / "real")) == b"mine"
    assert restore._read_regular_file("config.php", parent=str(tmp_path / "linked")) is None
    assert restore._read_regular_file("link.php", parent=str(tmp_path / "real")) is None
    assert restore._read_regular_file("config.php", parent=str(tmp_path / "absent")) is None


def test_scan_filedir_reports_strangers(tmp_path):
    good = "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "filedir" / "01" / "23").mkdir(parents=True)
    (tmp_path / "filedir" / "01" / "23" / good).write_bytes(b"12345")
    (tmp_path / "filedir" / "01" / "23" / "notes.txt").write_text("?")
    (tmp_path / "filedir" / "warning.txt").write_text("do not touch")
    found, strange = create.scan_filedir(str(tmp_path))
    assert found == {good: (str(tmp_path / "filedir" / "01" / "23" / good), 5)}
    assert strange == [str(tmp_path / "filedir" / "01" / "23" / "notes.txt")]


def test_db_env_keeps_the_password_off_the_command_line():
    cfg = {
        "dbtype": "pgsql",
        "dbhost": "db1",
        "dbname": "m",
        "dbuser": "u",
        "dbpass": "s3cret",
        "dbport": "5433",
        "dbsocket": "",
        "prefix": "mdl_",
    }
    args, env = db_env(cfg)
    assert args == [] and env["PGPASSWORD"] == "s3cret" and env["PGHOST"] == "db1" and env["PGPORT"] == "5433"
    cmd, name, fmt = create.dump_command(cfg, {"pg_dump": "pg_dump"})
    assert "s3cret" not in " ".join(cmd) and name == "database.pgdump" and fmt == "pg_dump-custom"
    mysql = {**cfg, "dbtype": "mariadb", "dbhost": "localhost", "dbsocket": "/run/mysqld/mysqld.sock"}
    args, env = db_env(mysql)
    assert args == ["--user=u", "--socket=/run/mysqld/mysqld.sock"] and env["MYSQL_PWD"] == "s3cret"
    cmd, _, fmt = create.dump_command(mysql, {"mysqldump": "mysqldump"})
    assert "--single-transaction" in cmd and "s3cret" not in " ".join(cmd) and fmt == "mysqldump-gzip"
    with pytest.raises(BackupError, match="sqlsrv"):
        db_env({**cfg, "dbtype": "sqlsrv"})


def test_pack_batches_close_at_the_target_in_path_order(monkeypatch):
    monkeypatch.setattr(create, "PACK_TARGET", 100)
    wanted = {f"{i:040x}": (f"/filedir/{9 - i}", 40) for i in range(6)}
    batches = create.pack_batches(list(wanted), wanted)
    # 40 + 40 fits, a third would pass 100: packs of two, ordered by path (reverse of the ids here).
    assert batches == [[f"{i:040x}", f"{i - 1:040x}"] for i in (5, 3, 1)]
    assert create.pack_batches([], wanted) == []


def test_content_locates_loose_then_packed_files_of_the_right_size():
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    content = Content(
        loose={a: 10},
        packs={
            "p1": {"size": 30, "files": {b: [0, 20], a: [20, 10]}},
            "p2": {"size": 5, "files": {c: [0, 5]}},
        },
        problems=[],
    )
    assert content.locate(a, 10) == ("loose", None)
    assert content.locate(b, 20) == ("p1", 0)
    assert content.locate(b, 21) is None  # same name, other size: not the file
    assert content.locate(c, 5) == ("p2", 0)
    # A restore only takes packs its manifest names.
    assert content.locate(c, 5, {"p1"}) is None
    assert content.locate(b, 20, {"p1"}) == ("p1", 0)
    assert content.locate("d" * 40, 1) is None


# ----- names matched whole (issue 17, item 11) ----------------------------------------------------------


@pytest.mark.parametrize("name", ["acme\n", "acme-live\n", "x" * 65, ""])
def test_backup_names_are_matched_whole(name):
    with pytest.raises(BackupError, match="is not a valid name"):
        Keys("lms-backups", name, "acme-live")
    with pytest.raises(BackupError, match="is not a valid name"):
        Keys("lms-backups", "acme", name)


def test_backup_id_with_a_newline_is_refused(monkeypatch):
    monkeypatch.setattr(create.MoodleSite, "from_params", lambda params: pytest.fail("site opened"))
    with pytest.raises(BackupError, match="is not valid"):
        create.create_backup({"backup_id": "20260101T000000Z\n"})


@pytest.mark.parametrize("dbname", ["moodle\n", "moodle;drop", ""])
def test_sql_names_are_matched_whole(monkeypatch, tmp_path, dbname):
    monkeypatch.setattr(verify.MoodleSite, "from_params", lambda params: object())
    monkeypatch.setattr(verify, "read_site_config", lambda site: {"dbname": dbname, "dbuser": "moodle"})
    with pytest.raises(BackupError, match="has characters a scratch site does not handle"):
        verify.verify_backup({"scratch_dir": str(tmp_path), "site": "acme-live"})


def test_filedir_content_is_linked_only_from_regular_files_of_the_site(tmp_path):
    """A restore hard-links what the target's filedir already holds; the site's user writes that
    folder, so a link (to a file or a folder elsewhere) must never be followed."""
    filedir, elsewhere, dest = tmp_path / "filedir", tmp_path / "elsewhere", tmp_path / "new"
    body = b"12345"
    names = {kind: hashlib.sha1(kind.encode(), usedforsecurity=False).hexdigest() for kind in
             ("own", "file link", "folder link", "wrong size", "other owner")}  # fmt: skip
    elsewhere.mkdir()
    (elsewhere / "secret").write_bytes(body)
    for kind, sha1 in names.items():
        folder = filedir / sha1[:2] / sha1[2:4]
        if kind == "folder link":
            folder.parent.mkdir(parents=True, exist_ok=True)
            (elsewhere / sha1).write_bytes(body)
            folder.symlink_to(elsewhere)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "file link":
            (folder / sha1).symlink_to(elsewhere / "secret")
        else:
            (folder / sha1).write_bytes(body + (b"!" if kind == "wrong size" else b""))
    dest.mkdir()
    linked = {}
    with restore._FiledirReader(str(filedir)) as existing:
        for kind, sha1 in names.items():
            uid = os.getuid() + (1 if kind == "other owner" else 0)
            linked[kind] = existing.link(sha1, len(body), uid, str(dest / sha1))
    assert linked == {"own": True, "file link": False, "folder link": False, "wrong size": False,
                      "other owner": False}  # fmt: skip
    assert (dest / names["own"]).read_bytes() == body and not (dest / names["own"]).is_symlink()
    assert sorted(p.name for p in dest.iterdir()) == [names["own"]]


def test_inherited_grants_are_carried_to_a_restored_dataroot():
    """What the live dataroot passes on (roles/lms: the web server reads it) is what a restored one
    gets: named default entries only, read on files and search on folders (X), and inheritance."""
    shown = "\n".join(
        [
            "user::rwx",
            "user:www-data:r-x",
            "group::rwx",
            "mask::rwx",
            "other::---",
            "default:user::rwx",
            "default:user:www-data:r-x",
            "default:group::rwx",
            "default:group:auditors:r--\t#effective:r--",
            "default:mask::rwx",
            "default:other::---",
        ]
    )
    assert restore.inherited_grants(shown) == [
        "u:www-data:rX",
        "d:u:www-data:r-x",
        "g:auditors:r",
        "d:g:auditors:r--",
    ]
    # A dataroot without ACL (or a host without the tools) carries nothing.
    assert restore.inherited_grants("user::rwx\ngroup::rwx\nother::---\n") == []


@pytest.mark.skipif(not shutil.which("setfacl"), reason="no ACL tools (Debian: acl)")
def test_carry_grants_gives_the_staged_tree_the_live_grants(tmp_path):
    live, staged = tmp_path / "live", tmp_path / "staged"
    (staged / "filedir" / "ab").mkdir(parents=True)
    (staged / "filedir" / "ab" / "abcd").write_bytes(b"x")
    live.mkdir()
    subprocess.run(["setfacl", "-m", "u:nobody:rX,d:u:nobody:rX", str(live)], check=True)
    restore.carry_grants(str(live), str(staged))
    shown = subprocess.run(["getfacl", "-p", "-R", str(staged)], capture_output=True, text=True, check=True)
    acl = shown.stdout
    blocks = {b.split("\n")[0]: b for b in acl.split("\n\n") if b}
    assert "user:nobody:r--" in blocks[f"# file: {staged}/filedir/ab/abcd"]
    assert "default:user:nobody:r-x" in blocks[f"# file: {staged}/filedir/ab"]


class _CfgSite:
    def __init__(self):
        self.calls = []

    def cfg_set(self, name, value, component=None):
        self.calls.append((component, name, value))


def test_a_copy_of_another_site_gets_its_own_identity_and_no_turnitin_webhook(tmp_path):
    for folder in ("cache", "localcache"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "bootstrap.php").write_text("<?php // old siteidentifier")
    cfg = {
        "wwwroot": "https://acme-qa.lms.example",
        "cachedir": str(tmp_path / "cache"),
        "localcachedir": str(tmp_path / "localcache"),
        "forced_plugin_settings": {"plagiarism_turnitinsim": {"turnitinapiurl": "https://x"}},
    }
    site = _CfgSite()
    restore.new_identity(site, cfg)
    (component, name, value), *rest = site.calls
    assert (component, name) == (None, "siteidentifier")
    assert value.endswith("acme-qa.lms.example") and len(value) == 32 + len("acme-qa.lms.example")
    # Turnitin Integrity registers a webhook of its own for the copy (QA), not Live's
    assert rest == [
        ("plagiarism_turnitinsim", "turnitin_webhook_id", None),
        ("plagiarism_turnitinsim", "turnitin_webhook_secret", None),
    ]
    assert not any(tmp_path.glob("*/bootstrap.php"))
    # a value config.php forces is the target's own: left alone (cfg.php would refuse it)
    cfg["forced_plugin_settings"]["plagiarism_turnitinsim"]["turnitin_webhook_id"] = "qa-hook"
    site = _CfgSite()
    restore.new_identity(site, cfg)
    assert [c[1] for c in site.calls] == ["siteidentifier", "turnitin_webhook_secret"]

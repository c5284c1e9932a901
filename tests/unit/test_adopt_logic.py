"""Unit tests of plugins/module_utils/backup/adopt.py's pure parts: the dump's format against the
target's database, and where the dataroot is in an unpacked archive (no services)."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

from backup.adopt import dataroot_root, dump_format
from backup.format import BackupError


@pytest.mark.parametrize(
    ("content", "dbtype", "expected"),
    [
        (b"PGDMP\x01\x0e\x00", "pgsql", "pg_dump-custom"),
        (gzip.compress(b"-- MariaDB dump"), "mariadb", "mysqldump-gzip"),
        (gzip.compress(b"-- MySQL dump"), "mysqli", "mysqldump-gzip"),
    ],
)
def test_the_dump_format_is_read_from_the_file(tmp_path, content, dbtype, expected):
    dump = tmp_path / "dump"
    dump.write_bytes(content)
    assert dump_format(str(dump), dbtype) == expected


@pytest.mark.parametrize(
    ("content", "dbtype", "says"),
    [
        (b"PGDMP\x01", "mariadb", "is pg_dump-custom; the target's database (mariadb) takes mysqldump"),
        (gzip.compress(b"x"), "pgsql", "is mysqldump-gzip; the target's database (pgsql) takes pg_dump"),
        (b"CREATE TABLE x ();", "pgsql", "neither a pg_dump custom archive nor gzip"),
        (b"", "mariadb", "neither a pg_dump custom archive nor gzip"),
    ],
)
def test_a_dump_the_target_cannot_load_is_refused_naming_what_it_takes(tmp_path, content, dbtype, says):
    dump = tmp_path / "dump"
    dump.write_bytes(content)
    with pytest.raises(BackupError, match=says.replace("(", r"\(").replace(")", r"\)")):
        dump_format(str(dump), dbtype)


def test_a_missing_dump_says_so(tmp_path):
    with pytest.raises(BackupError, match="cannot read the dump"):
        dump_format(str(tmp_path / "nothing"), "pgsql")


def test_the_dataroot_is_the_top_or_its_one_folder(tmp_path):
    (tmp_path / "a" / "filedir").mkdir(parents=True)
    assert dataroot_root(str(tmp_path / "a")) == str(tmp_path / "a")
    (tmp_path / "b" / "moodledata" / "filedir").mkdir(parents=True)
    assert dataroot_root(str(tmp_path / "b")) == str(tmp_path / "b" / "moodledata")


@pytest.mark.parametrize("layout", [["x"], ["one/x", "two/filedir"], []])
def test_an_archive_without_a_filedir_is_not_a_dataroot(tmp_path, layout):
    for rel in layout:
        (tmp_path / rel).mkdir(parents=True)
    with pytest.raises(BackupError, match="not a Moodle dataroot"):
        dataroot_root(str(tmp_path))

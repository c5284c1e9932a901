"""Unit tests of plugins/module_utils/backup/export.py's parts that need no site: which PoCs are not
outside the estate (DESIGN rule 10), what of a dataroot the hand-over carries, the dump read from its
command. The export itself runs on the stack's hosts (molecule/stack/tests/test_onboard.py)."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

from backup.create import dataroot_tar, dump_reader
from backup.export import EXPORT_EXCLUDED, estate_conflicts
from backup.format import BackupError

SITES = [
    {"name": s, "code_dir": f"/srv/lms/{s}", "dataroot": f"/var/lib/lms/{s}", "db_name": s.replace("-", "_")}
    for s in ("acme-live", "globex-dev")
]


def poc(path="/srv/poc/initech", dataroot="/var/lib/poc/initech", dbname="poc_initech") -> dict:
    return {"path": path, "dataroot": dataroot, "dbname": dbname}


def test_a_site_of_its_own_is_outside_the_estate():
    assert estate_conflicts(poc(), SITES) == []
    # a name that only starts like an estate folder is another folder
    assert (
        estate_conflicts(poc(path="/srv/lms/acme-live2", dataroot="/var/lib/lms/acme-live-poc"), SITES) == []
    )


@pytest.mark.parametrize(
    ("the_poc", "named"),
    [
        (
            poc(path="/srv/lms/acme-live/releases/r1"),
            "code /srv/lms/acme-live/releases/r1 overlaps acme-live's code",
        ),
        (
            poc(dataroot="/var/lib/lms/globex-dev"),
            "dataroot /var/lib/lms/globex-dev overlaps globex-dev's dataroot",
        ),
        (poc(dataroot="/var/lib/lms"), "dataroot /var/lib/lms overlaps acme-live's dataroot"),  # holds all
        (
            poc(dataroot="/srv/lms/acme-live/shared"),
            "dataroot /srv/lms/acme-live/shared overlaps acme-live's code",
        ),
        (poc(dbname="globex_dev"), "its database globex_dev is globex-dev's"),
    ],
)
def test_a_poc_that_is_or_holds_an_estate_sites_folder_or_database_is_named(the_poc, named):
    assert any(named in conflict for conflict in estate_conflicts(the_poc, SITES))


def test_the_code_folder_alone_is_checked_before_config_php_is_read():
    assert estate_conflicts({"path": "/srv/poc/initech"}, SITES) == []
    assert estate_conflicts({"path": "/srv/lms/acme-live/releases/r1"}, SITES) == [
        "its code /srv/lms/acme-live/releases/r1 overlaps acme-live's code /srv/lms/acme-live"
    ]


def test_a_release_the_estate_deployed_is_refused_whatever_the_sites_say(tmp_path):
    (tmp_path / ".three-instance-release").write_text("moodle-5.1-r1")
    assert estate_conflicts(poc(path=str(tmp_path)), []) == [
        f"its code {tmp_path} is a release three-instance deployed (it has .three-instance-release)"
    ]


def test_the_hand_over_carries_the_files_not_what_moodle_rebuilds(tmp_path):
    for name in ("filedir/ab/cd/abcd", "lang/de/x", "cache/c", "sessions/s", "temp/t", "muc/config.php"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    out = io.BytesIO()
    dataroot_tar(str(tmp_path), out, EXPORT_EXCLUDED)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = set(tar.getnames())
    assert {"filedir/ab/cd/abcd", "lang/de/x"} <= names
    assert not {n for n in names if n.split("/")[0] in {"cache", "sessions", "temp", "muc"}}


def test_the_dump_is_its_commands_output_and_a_failed_command_fails_it():
    with dump_reader(["printf", "PGDMP"], {}, "pg_dump-custom") as reader:
        assert reader.read(1024) == b"PGDMP" and reader.read(1024) == b""
    with (
        pytest.raises(BackupError, match=r"sh failed \(rc=3\): no such database"),
        dump_reader(["sh", "-c", "echo no such database >&2; exit 3"], {}, "pg_dump-custom") as reader,
    ):
        while reader.read(1024):
            pass

"""Unit tests of plugins/module_utils/safe_tar.py: hostile archives are refused naming the member,
modes are sanitised and benign archives come out intact, with tarfile's data_filter and with the
checked member walk that Pythons without it (Debian 12's 3.11.2) use. The same checks run on the
hosts' Pythons in test_host_pythons.py."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import safe_tar
import safe_tar_cases as cases

FULLY_TRUSTED = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
NATIVE = [
    pytest.param(True, id="data_filter"),
    pytest.param(False, id="walk"),
]


@pytest.fixture(params=NATIVE)
def native(request) -> bool:
    if request.param and not safe_tar.has_data_filter():
        pytest.skip(f"this Python ({sys.version.split()[0]}) has no tarfile.data_filter")
    return request.param


def _extract(native: bool):
    return lambda archive, dest: safe_tar.extract_file(archive, dest, native=native)


@pytest.mark.parametrize("case", cases.HOSTILE)
def test_hostile_archive_refused(case, native, tmp_path):
    cases.check_hostile(case, str(tmp_path), _extract(native), safe_tar.UnsafeArchiveError)


@pytest.mark.parametrize("case", cases.HOSTILE)
def test_refusal_names_the_member(case, native, tmp_path):
    member, entries, _ = cases.hostile_cases(str(tmp_path))[case]
    archive = cases.write_tar(str(tmp_path / "a.tar.gz"), entries)
    with pytest.raises(safe_tar.UnsafeArchiveError) as caught:
        safe_tar.extract_file(archive, str(tmp_path / "dest"), native=native)
    assert caught.value.member == member
    assert str(caught.value).startswith(f"{archive}: archive member {member!r} refused: ")
    assert isinstance(caught.value, tarfile.TarError)  # callers that catch TarError still do


def test_modes_sanitised(native, tmp_path):
    cases.check_modes(str(tmp_path), _extract(native))


def test_benign_archive(native, tmp_path):
    cases.check_benign(str(tmp_path), _extract(native))


@pytest.mark.parametrize("case", cases.HOSTILE)
def test_hostile_checks_catch_plain_extractall(case, tmp_path):
    """The checks fail a plain ``extractall(dest)``: they test something."""
    with pytest.raises(AssertionError):
        cases.check_hostile(case, str(tmp_path), cases.plain_extract)


def test_mode_check_catches_plain_extractall(tmp_path):
    with pytest.raises(AssertionError, match="setuid: mode 4755"):
        cases.check_modes(str(tmp_path), cases.plain_extract)


def test_native_path_uses_data_filter(monkeypatch, tmp_path):
    if not safe_tar.has_data_filter():
        pytest.skip(f"this Python ({sys.version.split()[0]}) has no tarfile.data_filter")
    calls = []
    real = tarfile.data_filter

    def spy(member, path):
        calls.append(member.name)
        return real(member, path)

    monkeypatch.setattr(tarfile, "data_filter", spy)
    cases.check_benign(str(tmp_path), lambda archive, dest: safe_tar.extract_file(archive, dest))
    assert "site/filedir/ab.txt" in calls


def test_default_is_the_walk_without_data_filter(monkeypatch, tmp_path):
    """Debian 12's 3.11.2: no data_filter, and extractall() takes no filter argument."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.delattr(tarfile, "fully_trusted_filter", raising=False)
    real_extractall = tarfile.TarFile.extractall

    def old_extractall(self, path=".", members=None, *, numeric_owner=False):
        return real_extractall(self, path, members, numeric_owner=numeric_owner, **FULLY_TRUSTED)

    monkeypatch.setattr(tarfile.TarFile, "extractall", old_extractall)
    assert not safe_tar.has_data_filter()
    cases.check_benign(str(tmp_path), lambda archive, dest: safe_tar.extract_file(archive, dest))
    cases.check_hostile("symlink out", str(tmp_path), safe_tar.extract_file, safe_tar.UnsafeArchiveError)


def test_unsafe_member_in_a_restore_is_a_backup_error(tmp_path):
    from backup.format import BackupError
    from backup.restore import extract_dataroot

    member, entries, _ = cases.hostile_cases(str(tmp_path))["symlink out"]
    archive = cases.write_tar(str(tmp_path / "dataroot.tar.gz"), entries)
    with pytest.raises(BackupError, match=f"dataroot archive .*{member!r} refused"):
        extract_dataroot(archive, str(tmp_path / "new"), (0, 0))

"""The deployment record's one owner (plugins/module_utils/deployment.py): what lms_deployment writes
and lms_deployment_info reads."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

import deployment as dp


def record(site="acme-qa", **changes):
    return {
        "site": site,
        "release": "moodle-5.1-r3",
        "sha256": "ab" * 32,
        "deployed_at": "2026-12-05T23:00:00Z",
        "deployed_by": "alice",
        "verified": True,
        "outcome": "deployed",
        **changes,
    }


@pytest.fixture
def site_dir(tmp_path):
    folder = tmp_path / "acme-qa"
    folder.mkdir()
    return folder


def test_write_then_read_back(site_dir):
    assert dp.write(str(site_dir), record()) == {"record_changed": True, "history_appended": True}
    assert dp.read_record(str(site_dir)) == record()
    assert oct(os.stat(site_dir / dp.RECORD_NAME).st_mode & 0o777) == "0o644"
    # The same record again changes nothing (a re-run); a new one replaces it and adds a line.
    assert dp.write(str(site_dir), record()) == {"record_changed": False, "history_appended": False}
    newer = record(release="moodle-5.1-r4", previous_release="moodle-5.1-r3")
    assert dp.write(str(site_dir), newer) == {"record_changed": True, "history_appended": True}
    assert dp.read_history(str(site_dir), 10) == [record(), newer]
    assert dp.read_history(str(site_dir), 1) == [newer]
    assert [p.name for p in site_dir.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_failed_attempt_goes_into_the_history_only(site_dir):
    dp.write(str(site_dir), record())
    failed = record(release="moodle-5.1-r4", verified=False, outcome="failed", error="smoke checks")
    assert dp.write(str(site_dir), failed) == {"record_changed": False, "history_appended": True}
    assert dp.read_record(str(site_dir)) == record()
    assert dp.read_history(str(site_dir), 5)[-1] == failed


def test_check_mode_writes_nothing(site_dir):
    assert dp.write(str(site_dir), record(), check_mode=True) == {
        "record_changed": True,
        "history_appended": True,
    }
    assert list(site_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (record(site="globex-qa"), "a deployment record of globex-qa cannot be written for acme-qa"),
        ({k: v for k, v in record().items() if k != "release"}, "lacks release"),
        (record(outcome="deleted"), "outcome 'deleted'"),
        (record(verified="yes"), "verified must be true or false"),
    ],
)
def test_bad_records_are_refused_before_anything_is_written(site_dir, bad, message):
    with pytest.raises(dp.DeploymentError, match=message):
        dp.write(str(site_dir), bad)
    assert list(site_dir.iterdir()) == []


def test_records_are_never_read_through_a_link(site_dir, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"site": "acme-qa"}))
    (site_dir / dp.RECORD_NAME).symlink_to(secret)
    with pytest.raises(dp.DeploymentError, match="not a file this code wrote"):
        dp.read_record(str(site_dir))
    with pytest.raises(dp.DeploymentError):
        dp.write(str(site_dir), record())
    (site_dir / dp.RECORD_NAME).unlink()
    (site_dir / dp.RECORD_NAME).write_text("[1, 2]")
    with pytest.raises(dp.DeploymentError, match="holds no record"):
        dp.read_record(str(site_dir))


def test_sites_in_a_code_folder(tmp_path):
    for name in ("acme-qa", "globex-live", ".tools", "Bad_Name"):
        (tmp_path / name).mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "acme-qa")
    (tmp_path / "file").write_text("")
    assert dp.sites_in(str(tmp_path)) == ["acme-qa", "globex-live"]
    assert dp.sites_in(str(tmp_path / "absent")) == []

"""lms_facts against a real Moodle: installed, configured-but-empty, unconfigured code, errors."""

from __future__ import annotations

import json
import shutil

import moodle_site as ms


def test_facts_of_an_installed_site(lms, moodle_site):
    first = lms("lms_facts")
    assert not first.get("failed"), first
    facts = first["lms"]
    assert first["changed"] is False
    assert first["ansible_facts"]["lms"] == facts
    assert facts["flavour"] == "moodle"
    assert facts["layout"] == moodle_site.layout
    assert facts["configured"] is True
    assert facts["installed"] is True
    assert facts["installed_version"] == facts["version"]
    assert facts["branch"] and facts["release"]
    assert facts["upgrade_pending"] is False
    assert facts["maintenance_required"] is False
    assert facts["maintenance_enabled"] is False
    assert facts["dataroot"] == str(moodle_site.dataroot)
    assert facts["database_tables"] > 100
    assert isinstance(facts["nonstandard_plugins"], list)
    # Read-only: a second run (and check mode) gives the same facts.
    again = lms("lms_facts", check=True)
    assert again["changed"] is False
    assert again["lms"] == facts


def test_release_id_from_the_deployment_record(lms, moodle_site, tmp_path):
    record = moodle_site.base / "deployment.json"
    record.write_text(json.dumps({"release_id": "r2026.11.25-1", "sha256": "ab" * 32}))
    record.chmod(0o644)
    try:
        result = lms("lms_facts", deployment_record=str(record), check_upgrade=False)
    finally:
        record.unlink()
    assert result["lms"]["release_id"] == "r2026.11.25-1"
    assert result["lms"]["deployment"]["sha256"] == "ab" * 32
    assert result["lms"]["upgrade_pending"] is None  # check_upgrade: false


def test_configured_but_not_installed(lms, moodle_site, moodle_src):
    """config.php points at an empty database: what the lms role sees before it installs."""
    base = ms.private_tmpdir("ti-empty-")
    try:
        empty = ms.MoodleTestSite(base, moodle_site.db, dbname="ti_empty", dbuser="ti_empty").create(
            moodle_src
        )
        result = lms("lms_facts", path=str(empty.code))
        assert not result.get("failed"), result
        facts = result["lms"]
        assert facts["configured"] is True
        assert facts["installed"] is False
        assert facts["database_tables"] == 0
        assert facts["upgrade_pending"] is None
        assert facts["version"] == moodle_site_version(lms)
        # lms_upgrade refuses a site that is not installed, and says what to do.
        up = lms("lms_upgrade", path=str(empty.code))
        assert up["failed"] and "install its database first" in up["msg"]
    finally:
        moodle_site.db.psql('DROP DATABASE IF EXISTS "ti_empty"')
        moodle_site.db.psql('DROP ROLE IF EXISTS "ti_empty"')
        shutil.rmtree(base, ignore_errors=True)


def moodle_site_version(lms):
    return lms("lms_facts", check_upgrade=False)["lms"]["version"]


def test_code_without_config(lms, moodle_site, tmp_path):
    """Only code (no config.php): facts come from the files, without running PHP."""
    code = tmp_path / "code"
    if moodle_site.layout == "public":
        (code / "public").mkdir(parents=True)
        shutil.copy(moodle_site.code / "public" / "version.php", code / "public" / "version.php")
    else:
        code.mkdir()
        shutil.copy(moodle_site.code / "version.php", code / "version.php")
    (code / "admin" / "cli").mkdir(parents=True)
    result = lms("lms_facts", path=str(code))
    assert not result.get("failed"), result
    assert result["lms"]["configured"] is False
    assert result["lms"]["installed"] is False
    assert result["lms"]["version"]


def test_errors_say_what_to_do(lms, tmp_path):
    result = lms("lms_facts", path=str(tmp_path))
    assert result["failed"]
    assert "not a Moodle or Totara code root" in result["msg"]
    result = lms("lms_facts", web_user="no-such-user-ti")
    assert result["failed"]
    assert "does not exist" in result["msg"] and "web_user" in result["msg"]
    result = lms("lms_facts", bogus_option=1)
    assert result["failed"]
    assert "bogus_option" in result["msg"]

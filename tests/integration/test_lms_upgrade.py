"""lms_upgrade against a real Moodle: a new plugin (needs maintenance), a version bump (can run
without), check mode, and nothing pending."""

from __future__ import annotations

import os

PLUGIN = "tiupgrade"
VERSION_PHP = """<?php
defined('MOODLE_INTERNAL') || die();
$plugin->component = 'local_{name}';
$plugin->version = {version};
$plugin->requires = 2022041900;
$plugin->release = '{release}';
$plugin->maturity = MATURITY_STABLE;
"""
LANG_PHP = "<?php\n$string['pluginname'] = 'three-instance upgrade test';\n"


def plugin_dir(site):
    web_root = site.code / "public" if site.layout == "public" else site.code
    return web_root / "local" / PLUGIN


def write_plugin(site, version: int, release: str) -> None:
    """New files only, written by replace (the code tree may be hard-linked to the source tree)."""
    folder = plugin_dir(site)
    (folder / "lang" / "en").mkdir(parents=True, exist_ok=True)
    for path, text in (
        (folder / "version.php", VERSION_PHP.format(name=PLUGIN, version=version, release=release)),
        (folder / "lang" / "en" / f"local_{PLUGIN}.php", LANG_PHP),
    ):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)
        os.replace(tmp, path)


def test_nothing_pending_is_unchanged(lms):
    result = lms("lms_upgrade")
    assert not result.get("failed"), result
    assert result["changed"] is False and result["pending"] is False
    assert result["seconds"] == 0


def test_new_plugin_needs_maintenance_then_upgrades_once(lms, moodle_site):
    write_plugin(moodle_site, 2026112500, "1.0")
    facts = lms("lms_facts")["lms"]
    assert facts["upgrade_pending"] is True
    assert facts["maintenance_required"] is True
    assert "local_tiupgrade" in [p["component"] for p in facts["nonstandard_plugins"]]
    assert [p["component"] for p in facts["plugins_to_upgrade"]] == ["local_tiupgrade"]

    dry = lms("lms_upgrade", check=True, allow_without_maintenance=True)
    assert dry["changed"] is True and dry["with_maintenance"] is True, dry
    assert dry["plugins"] == [
        {"component": "local_tiupgrade", "from": None, "to": "2026112500", "status": "new"}
    ]
    assert lms("lms_facts")["lms"]["upgrade_pending"] is True  # check mode changed nothing

    run = lms("lms_upgrade", allow_without_maintenance=True)
    assert run["changed"] is True, run
    assert run["with_maintenance"] is True  # Moodle said a new plugin needs maintenance
    assert run["plugins"][0]["component"] == "local_tiupgrade"
    assert run["seconds"] > 0
    print(f"\n[upgrade] new plugin installed in {run['seconds']} s")
    facts = lms("lms_facts")["lms"]
    assert facts["upgrade_pending"] is False
    installed = {p["component"]: p for p in facts["nonstandard_plugins"]}
    assert installed["local_tiupgrade"]["db_version"] == "2026112500"

    again = lms("lms_upgrade")
    assert again["changed"] is False and again["pending"] is False


def test_version_bump_runs_without_maintenance(lms, moodle_site):
    write_plugin(moodle_site, 2026112501, "1.1")
    facts = lms("lms_facts")["lms"]
    assert facts["upgrade_pending"] is True
    assert facts["maintenance_required"] is False  # no db/ change: Moodle says rc 3

    run = lms("lms_upgrade", allow_without_maintenance=True)
    assert run["changed"] is True and run["with_maintenance"] is False, run
    assert run["plugins"] == [
        {"component": "local_tiupgrade", "from": "2026112500", "to": "2026112501", "status": "upgrade"}
    ]
    assert lms("lms_upgrade", allow_without_maintenance=True)["changed"] is False
    assert lms("lms_facts")["lms"]["maintenance_enabled"] is False


def test_major_upgrade_of_a_deployed_release(lms, moodle_site, moodle_src, old_moodle_src):
    """An older Moodle (4.5) site gets the new release (5.1) deployed as releases/<id> + current:
    facts see the pending upgrade, lms_upgrade runs it once, reports it, and is idempotent."""
    import shutil

    import moodle_site as ms

    base = ms.private_tmpdir("ti-major-")
    old = ms.MoodleTestSite(base, moodle_site.db, dbname="ti_major", dbuser="ti_major").create(old_moodle_src)
    try:
        seconds = old.install()
        print(f"\n[major] {old_moodle_src.name} installed in {seconds:.1f} s")
        before = lms("lms_facts", path=str(old.code))["lms"]
        assert before["installed"] is True and before["upgrade_pending"] is False
        assert before["layout"] == old.layout

        current = old.deploy(moodle_src, "r-new")
        facts = lms("lms_facts", path=str(current))["lms"]
        assert facts["release_id"] == "r-new"
        assert facts["layout"] == moodle_site.layout
        assert facts["installed_version"] == before["version"]
        assert facts["version"] != before["version"]
        assert facts["upgrade_pending"] is True and facts["maintenance_required"] is True

        dry = lms("lms_upgrade", check=True, path=str(current), allow_without_maintenance=True)
        assert dry["changed"] is True and dry["with_maintenance"] is True
        assert dry["core"] == {"from": before["version"], "to": facts["version"], "release": facts["release"]}

        run = lms("lms_upgrade", path=str(current), allow_without_maintenance=True)
        assert run["changed"] is True, run
        assert run["core"]["from"] == before["version"] and run["core"]["to"] == facts["version"]
        print(f"[major] upgrade {before['release']} -> {facts['release']}: {run['seconds']} s")
        after = lms("lms_facts", path=str(current))["lms"]
        assert after["installed_version"] == facts["version"] and after["upgrade_pending"] is False
        assert after["maintenance_enabled"] is False
        assert lms("lms_upgrade", path=str(current))["changed"] is False
    finally:
        moodle_site.db.psql('DROP DATABASE IF EXISTS "ti_major"')
        moodle_site.db.psql('DROP ROLE IF EXISTS "ti_major"')
        shutil.rmtree(base, ignore_errors=True)

"""lms_adopt against real Moodle: a proof-of-concept site installed by the test outside any estate
(Moodle 4.5, a course, a learner, a file, a link to itself), dumped (pg_dump) and archived (tar),
is adopted into a 5.1 site: refused first when it uses a plugin the target lacks, then inspected in
check mode, adopted (upgraded to 5.1, content there, URLs the target's, an identity of its own), and
again (no change). The PoC and its files stay as they were."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import moodle_site as ms
import pytest
from conftest import ModuleRunner

POC_WWWROOT = "http://poc.example.invalid/moodle"
PLUGIN = "local_tipoc"
PLUGIN_VERSION_PHP = """<?php
defined('MOODLE_INTERNAL') || die();
$plugin->component = 'local_tipoc';
$plugin->version = 2026120100;
$plugin->requires = 2022041900;
$plugin->release = '1.0';
"""

POC_CONTENT = r"""
$course = create_course((object)['fullname' => 'PoC course design', 'shortname' => 'POC1', 'category' => 1,
    'summary' => '<a href="' . $CFG->wwwroot . '/mod/page/view.php?id=1">the PoC</a>',
    'summaryformat' => FORMAT_HTML]);
$user = create_user_record('learner1', 'Learner-pass-1!');
$DB->set_field('user', 'email', 'learner1@example.com', ['id' => $user->id]);
enrol_try_internal_enrol($course->id, $user->id, 5);
$ctx = context_course::instance($course->id);
get_file_storage()->create_file_from_string(['contextid' => $ctx->id, 'component' => 'course',
    'filearea' => 'overviewfiles', 'itemid' => 0, 'filepath' => '/', 'filename' => 'design.txt'],
    'the PoC course design');
"""

READ_ADOPTED = r"""
$course = $DB->get_record('course', ['shortname' => 'POC1'], '*', MUST_EXIST);
$ctx = context_course::instance($course->id);
$file = get_file_storage()->get_file($ctx->id, 'course', 'overviewfiles', 0, '/', 'design.txt');
echo json_encode(['summary' => $course->summary, 'fullname' => $course->fullname,
    'learner' => $DB->record_exists('user', ['username' => 'learner1', 'deleted' => 0]),
    'enrolled' => is_enrolled($ctx, $DB->get_field('user', 'id', ['username' => 'learner1'])),
    'file' => $file ? $file->get_content() : null,
    'siteidentifier' => get_config('core', 'siteidentifier'),
    'version' => get_config('core', 'version')]);
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pg_dump(site: ms.MoodleTestSite, dest: Path) -> Path:
    cluster = site.db
    with open(dest, "wb") as out:
        subprocess.run(
            [
                "runuser",
                "-u",
                cluster.os_user,
                "--",
                str(cluster.bin / "pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-acl",
                "-h",
                str(cluster.socket_dir),
                "-p",
                str(cluster.port),
                "-U",
                "postgres",
                site.dbname,
            ],
            stdout=out,
            check=True,
        )
    return dest


def archive(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname="moodledata")  # an archive of the folder, as people make them
    return dest


@pytest.fixture(scope="module")
def poc(moodle_site, old_moodle_src, tmp_path_factory):
    """The PoC (Moodle 4.5 on the tests' PostgreSQL) with its content, and its files: a clean dump,
    a dump after a plugin the estate lacks was installed, the dataroot archive."""
    base = ms.private_tmpdir("ti-poc-")
    site = ms.MoodleTestSite(
        base, moodle_site.db, dbname="ti_poc", dbuser="ti_poc", wwwroot=POC_WWWROOT
    ).create(old_moodle_src)
    files = tmp_path_factory.mktemp("poc-files")
    files.chmod(0o755)
    try:
        site.install()
        site.php_eval(POC_CONTENT)
        pg_dump(site, files / "database.pgdump")
        archive(site.dataroot, files / "dataroot.tar.gz")
        plugin = site.code / "local" / "tipoc"
        plugin.mkdir(parents=True)
        (plugin / "version.php").write_text(PLUGIN_VERSION_PHP)
        (plugin / "lang" / "en").mkdir(parents=True)
        (plugin / "lang" / "en" / f"{PLUGIN}.php").write_text(
            "<?php\n$string['pluginname'] = 'PoC plugin';\n"
        )
        site.cli("upgrade.php", "--non-interactive")
        pg_dump(site, files / "with-plugin.pgdump")
        yield {"site": site, "files": files}
    finally:
        moodle_site.db.psql('DROP DATABASE IF EXISTS "ti_poc"')
        moodle_site.db.psql('DROP ROLE IF EXISTS "ti_poc"')
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def target(moodle_site, moodle_src):
    """A 5.1 site as the estate leaves a new QA site before anything is in it: code, config.php,
    an empty database and dataroot."""
    site = ms.MoodleTestSite(
        ms.private_tmpdir("ti-adopt-"),
        moodle_site.db,
        dbname="ti_adopt_qa",
        dbuser="ti_adopt_qa",
        wwwroot="http://qa.initech.invalid",
    ).create(moodle_src)
    yield site
    moodle_site.db.psql('DROP DATABASE IF EXISTS "ti_adopt_qa"')
    moodle_site.db.psql('DROP ROLE IF EXISTS "ti_adopt_qa"')
    shutil.rmtree(site.base, ignore_errors=True)


@pytest.fixture(scope="module")
def adopt(target):
    scratch = ms.private_tmpdir("ti-adopt-scratch-")
    runner = ModuleRunner(target)

    def call(dump="database.pgdump", check=False, files=None, site="initech-qa", **extra):
        return runner(
            "lms_adopt",
            check=check,
            site=site,
            dump=str(files / dump),
            dataroot_archive=str(files / "dataroot.tar.gz"),
            source_wwwroot=POC_WWWROOT,
            scratch_dir=str(scratch),
            **extra,
        )

    yield call, scratch
    shutil.rmtree(scratch, ignore_errors=True)


def tables(site: ms.MoodleTestSite) -> list[str]:
    out = site.db.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db=site.dbname)
    return [t for t in out.split() if t]


def test_a_poc_with_a_plugin_the_release_lacks_is_refused_before_any_change(poc, target, adopt):
    call, scratch = adopt
    result = call(dump="with-plugin.pgdump", files=poc["files"])
    assert result.get("failed"), result
    assert "local_tipoc (2026120100)" in result["msg"] and "Nothing was changed" in result["msg"]
    assert result["target_changed"] is False
    assert tables(target) == []
    # (Moodle's bootstrap, reading the empty site, makes its caches; nothing of the PoC is there)
    assert not (target.dataroot / "filedir").exists()
    assert list(scratch.iterdir()) == []  # the scratch site is gone
    assert "ti_adopt_qa_adopt" not in target.db.psql("SELECT datname FROM pg_database").split()


def test_check_mode_inspects_and_changes_nothing(poc, target, adopt):
    call, _scratch = adopt
    result = call(check=True, files=poc["files"])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["upgraded"] is True
    assert result["poc_release"].startswith("4.5") and result["target_version"] > result["poc_version"]
    assert result["rows"]["course"] == 1 and result["rows"]["user"] >= 2
    assert result["nonstandard_plugins"] == []
    assert tables(target) == []


def test_the_poc_is_adopted_upgraded_with_its_content_and_a_new_address(poc, target, adopt):
    call, _scratch = adopt
    files = poc["files"]
    before = {name: sha256(files / name) for name in ("database.pgdump", "dataroot.tar.gz")}
    result = call(files=files)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["upgraded"] is True, result
    print(f"\n[adopt] {result['poc_release']} -> {result['target_version']}: {result['seconds']} s")

    adopted = json.loads(target.php_eval(READ_ADOPTED).stdout)
    assert adopted["fullname"] == "PoC course design" and adopted["learner"] and adopted["enrolled"]
    assert adopted["file"] == "the PoC course design"
    assert "http://qa.initech.invalid/mod/page/view.php" in adopted["summary"]
    assert POC_WWWROOT not in adopted["summary"]
    assert adopted["version"] == result["target_version"]
    poc_identity = poc["site"].php_eval("echo get_config('core', 'siteidentifier');").stdout
    assert adopted["siteidentifier"] and adopted["siteidentifier"] != poc_identity
    assert adopted["siteidentifier"].endswith("qa.initech.invalid")

    facts = ModuleRunner(target)("lms_facts")["lms"]
    assert facts["installed"] is True and facts["upgrade_pending"] is False
    schema = target.cli("check_database_schema.php", check=False)
    assert schema.returncode == 0, schema.stdout[-2000:]
    # The dataroot is the PoC's, owned by the target's web user, without the PoC's caches.
    assert (target.dataroot / "filedir").is_dir()
    assert os.stat(target.dataroot).st_uid == os.stat(target.dataroot / "filedir").st_uid != 0
    # The PoC's files and the PoC itself are as they were.
    assert before == {name: sha256(files / name) for name in before}
    assert poc["site"].php_eval("echo $CFG->wwwroot;").stdout == POC_WWWROOT


def test_the_same_poc_again_is_no_change(poc, adopt):
    call, _scratch = adopt
    again = call(files=poc["files"])
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["already_adopted"] is True


def test_a_dump_of_another_format_is_refused(poc, adopt, tmp_path):
    call, _scratch = adopt
    files = tmp_path / "files"
    files.mkdir()
    (files / "database.pgdump").write_text("CREATE TABLE x ();\n")
    shutil.copy(poc["files"] / "dataroot.tar.gz", files / "dataroot.tar.gz")
    tmp_path.chmod(0o755)
    result = call(files=files)
    assert result.get("failed") and "pg_dump --format=custom" in result["msg"], result


def test_a_live_site_is_refused_whatever_the_files(poc, target, adopt):
    call, _scratch = adopt
    result = call(files=poc["files"], site="initech-live", force=True)
    assert result.get("failed") and "it is a Live site" in result["msg"], result.get("msg")
    assert "A PoC becomes QA" in result["msg"] and result["target_changed"] is False

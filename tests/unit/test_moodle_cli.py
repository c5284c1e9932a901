"""Unit tests of plugins/module_utils/moodle_cli.py: layouts, exit codes, output parsing (fakes)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

import moodle_cli as mc
from php.argv_from_stdin import ARGV_FROM_STDIN_PHP
from php.helper import HELPER_PHP

VERSION_51 = """<?php
defined('MOODLE_INTERNAL') || die();
$version  = 2025100600.02;              // 20251006      = branching date YYYYMMDD - do not modify!
$release  = '5.1+ (Build: 20251017)';    // Human-friendly version name
$branch   = '501';                      // This version's branch.
$maturity = MATURITY_STABLE;            // This version's maturity level.
"""

VERSION_TOTARA = """<?php
$version  = 2022110800.00;
$release  = '4.1 (Build: 20221108)';
$branch   = '401';
$maturity = MATURITY_STABLE;
$TOTARA = new stdClass();
$TOTARA->version = '17.3';
$TOTARA->release = "17.3 (Build: 20230801.00)";
"""


def make_tree(root: Path, layout: str, text: str = VERSION_51) -> Path:
    if layout == "public":
        (root / "public").mkdir(parents=True)
        (root / "public" / "version.php").write_text(text)
        (root / "admin" / "cli").mkdir(parents=True)
    elif layout == "server":
        (root / "server" / "admin" / "cli").mkdir(parents=True)
        (root / "server" / "version.php").write_text(text)
    else:
        (root / "admin" / "cli").mkdir(parents=True)
        (root / "version.php").write_text(text)
    return root


# ----- layout -------------------------------------------------------------------------------------------


def test_layout_moodle_51_public(tmp_path):
    layout = mc.detect_layout(str(make_tree(tmp_path, "public")))
    assert (layout.flavour, layout.name) == ("moodle", "public")
    assert layout.cli("upgrade.php") == f"{tmp_path}/admin/cli/upgrade.php"
    # Plugin CLIs live under public/ in 5.1.
    assert (
        layout.cli("admin/tool/uploaduser/cli/uploaduser.php")
        == f"{tmp_path}/public/admin/tool/uploaduser/cli/uploaduser.php"
    )
    assert layout.cli("admin/cli/cfg.php") == f"{tmp_path}/admin/cli/cfg.php"


def test_layout_totara_server(tmp_path):
    layout = mc.detect_layout(str(make_tree(tmp_path, "server", VERSION_TOTARA)))
    assert (layout.flavour, layout.name) == ("totara", "server")
    assert layout.cli("cfg.php") == f"{tmp_path}/server/admin/cli/cfg.php"


def test_layout_old_moodle_root(tmp_path):
    layout = mc.detect_layout(str(make_tree(tmp_path, "root")))
    assert (layout.flavour, layout.name) == ("moodle", "root")
    assert layout.web_root == str(tmp_path)
    (tmp_path / "totara").mkdir()
    assert mc.detect_layout(str(tmp_path)).flavour == "totara"


def test_layout_refuses_other_folders(tmp_path):
    with pytest.raises(mc.MoodleError, match=r"not a Moodle or Totara code root.*config.php"):
        mc.detect_layout(str(tmp_path))


def test_parse_version_php():
    info = mc.parse_version_php(VERSION_51)
    assert info["version"] == "2025100600.02"
    assert info["release"] == "5.1+ (Build: 20251017)"
    assert info["branch"] == "501"
    assert info["maturity"] == "MATURITY_STABLE"
    assert "flavour" not in info
    totara = mc.parse_version_php(VERSION_TOTARA)
    assert totara["flavour"] == "totara" and totara["totara_version"] == "17.3"
    assert totara["totara_release"] == "17.3 (Build: 20230801.00)"


def test_code_version_reads_files_only(tmp_path):
    site = mc.MoodleSite(str(make_tree(tmp_path, "server", VERSION_TOTARA)), runner=explode)
    assert site.code_version()["flavour"] == "totara"
    assert site.has_config() is False


# ----- exit codes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rc", "expected"), [(0, (False, False)), (2, (True, True)), (3, (True, False))])
def test_upgrade_maintenance_codes(rc, expected):
    assert mc.upgrade_state(rc) == expected


def test_upgrade_error_codes_fail_clearly():
    with pytest.raises(mc.MoodleError, match=r"rc=1\): Error reading from database"):
        mc.upgrade_state(1, "", "something\nError reading from database\n")
    assert mc.upgrade_pending(0) is False and mc.upgrade_pending(2) is True
    with pytest.raises(mc.MoodleError, match="--is-pending failed"):
        mc.upgrade_pending(1)


def test_nagios_codes():
    assert [mc.checks_status(rc) for rc in (0, 1, 2, 3, 9)] == [
        "ok",
        "warning",
        "critical",
        "unknown",
        "unknown",
    ]


# ----- output parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("== Maintenance mode (http://x) ==\nStatus: disabled\n", "disabled"),
        ("== Maintenance mode (http://x) ==\nStatus: enabled\n", "enabled"),
        (
            "status: CLI maintenance mode will be enabled on Tuesday, 25 November 2026, 11:00 PM\n",
            "scheduled",
        ),
    ],
)
def test_parse_maintenance_status(text, state):
    assert mc.parse_maintenance_status(text) == state


def test_parse_maintenance_status_unknown():
    with pytest.raises(mc.MoodleError, match="cannot read the maintenance status"):
        mc.parse_maintenance_status("Estado: ???")


def test_parse_upload_summary_counts_errors():
    out = """Courses total: 3
Courses created: 1
Courses updated: 1
Courses deleted: 0
Courses errors: 1
"""
    summary = mc.parse_upload_summary(out)
    assert summary == {
        "courses_total": 3,
        "courses_created": 1,
        "courses_updated": 1,
        "courses_deleted": 0,
        "courses_errors": 1,
    }
    assert mc.upload_errors(summary) == 1
    users = mc.parse_upload_summary(
        "Users created: 2\nUsers skipped: 1\nErrors: 0\nUsers having a weak password: 0\n"
    )
    assert users["users_created"] == 2 and users["errors"] == 0 and mc.upload_errors(users) == 0


def test_parse_restored_course_id():
    assert mc.parse_restored_course_id("...\nRestored course ID: 17\n") == 17
    with pytest.raises(mc.MoodleError, match="did not report a restored course"):
        mc.parse_restored_course_id("Error: something went wrong")


def test_parse_checks_output():
    out = "OK: Cron running\nWARNING: Backup of user data\nCRITICAL: Cron never ran\n"
    assert [c["status"] for c in mc.parse_checks_output(out)] == ["ok", "warning", "critical"]


def test_parse_helper_output_skips_notices():
    out = 'Notice: something\n\n@@LMS-RESULT@@{"changed": true, "x": [1]}\n'
    assert mc.parse_helper_output(out) == {"changed": True, "x": [1]}
    with pytest.raises(mc.MoodleError, match="no answer: Fatal error"):
        mc.parse_helper_output("PHP Fatal error\nFatal error: boom\n")
    with pytest.raises(mc.MoodleError, match="not JSON"):
        mc.parse_helper_output("@@LMS-RESULT@@{oops")
    with pytest.raises(mc.MoodleError, match="not an object"):
        mc.parse_helper_output("@@LMS-RESULT@@[1]")


@pytest.mark.parametrize(
    ("value", "text"), [(True, "1"), (False, "0"), (5, "5"), (2.0, "2"), ("x", "x"), (None, None)]
)
def test_to_setting(value, text):
    assert mc.to_setting(value) == text


def test_to_setting_refuses_structures():
    with pytest.raises(mc.MoodleError, match="settings are strings"):
        mc.to_setting(["a"])


def test_forced_message_names_the_config_php_line():
    assert "$CFG->noemailever" in mc.forced_message("noemailever", "core")
    msg = mc.forced_message("enabled", "tool_x")
    assert "$CFG->forced_plugin_settings['tool_x']['enabled']" in msg and "tool_x/enabled" in msg


# ----- deployment record --------------------------------------------------------------------------------


def test_release_id_from_record_or_releases_folder(tmp_path):
    release = tmp_path / "releases" / "r42"
    release.mkdir(parents=True)
    (tmp_path / "current").symlink_to(release)
    assert mc.read_deployment_record(None, str(tmp_path / "current")) == {"release_id": "r42", "record": None}
    record = tmp_path / "deployment.json"
    record.write_text(json.dumps({"release": "r43", "sha256": "x"}))
    assert mc.read_deployment_record(str(record), str(tmp_path / "current"))["release_id"] == "r43"
    missing = mc.read_deployment_record(str(tmp_path / "none.json"), str(tmp_path))
    assert missing == {"release_id": None, "record": None}
    record.write_text("{not json")
    with pytest.raises(mc.MoodleError, match="cannot be read as JSON"):
        mc.read_deployment_record(str(record), str(tmp_path))


# ----- running as the web user --------------------------------------------------------------------------


class FakeRunner:
    """Records commands and answers from a script of (rc, stdout, stderr)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, cmd, cwd=None, stdin=None, timeout=None):
        self.calls.append({"cmd": cmd, "cwd": cwd, "stdin": stdin, "timeout": timeout})
        rc, out, err = self.answers.pop(0)
        return mc.CliResult(rc, out, err, 0.01, cmd)


def explode(*args, **kwargs):
    raise AssertionError("no command may run here")


WEB = "nobody"  # exists everywhere; the tests pretend to run as it
WEB_UID = pwd.getpwnam(WEB).pw_uid


@pytest.fixture
def site_root(tmp_path):
    root = make_tree(tmp_path / "code", "public")
    (root / "config.php").write_text("<?php\n")
    for name in ("upgrade.php", "cfg.php", "maintenance.php", "purge_caches.php"):
        (root / "admin" / "cli" / name).write_text("<?php\n")
    return root


def test_runs_as_web_user_via_runuser_when_root(site_root):
    runner = FakeRunner((0, "2025100600.02", ""))
    site = mc.MoodleSite(str(site_root), web_user="nobody", php="php8.2", timeout=7, runner=runner, euid=0)
    assert site.cfg_get("version") == "2025100600.02"
    call = runner.calls[0]
    assert call["cmd"] == [
        "runuser",
        "-u",
        "nobody",
        "--",
        "php8.2",
        f"{site_root}/admin/cli/cfg.php",
        "--name=version",
        "--no-eol",
    ]
    assert call["cwd"] == f"{site_root}/admin/cli" and call["timeout"] == 7


def test_runs_directly_as_the_web_user(site_root):
    runner = FakeRunner((3, "", "No such configuration variable found."))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    assert site.cfg_get("nope", "tool_x") is None  # rc 3 = not set
    assert runner.calls[0]["cmd"][:2] == ["php", f"{site_root}/admin/cli/cfg.php"]
    assert "--component=tool_x" in runner.calls[0]["cmd"]


def test_refuses_root_and_strangers(site_root):
    with pytest.raises(mc.MoodleError, match="refusing to run Moodle as root"):
        mc.MoodleSite(str(site_root), web_user="root", runner=explode, euid=0).user_prefix()
    with pytest.raises(mc.MoodleError, match="become: true"):
        mc.MoodleSite(str(site_root), web_user="nobody", runner=explode, euid=4242).user_prefix()
    with pytest.raises(mc.MoodleError, match="web user 'no-such-user-x' does not exist"):
        mc.MoodleSite(str(site_root), web_user="no-such-user-x", runner=explode, euid=0).user_prefix()


def test_cfg_set_maps_rc4_to_forced(site_root):
    site = mc.MoodleSite(
        str(site_root), web_user=WEB, euid=WEB_UID, runner=FakeRunner((4, "", "is set in config.php"))
    )
    with pytest.raises(mc.MoodleError, match=r"forced in config.php \(\$CFG->theme\)"):
        site.cfg_set("theme", "boost")
    runner = FakeRunner((0, "", ""), (0, "", ""))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    site.cfg_set("theme", "boost", "core")
    site.cfg_set("theme", None)
    # no --component=core: that writes config_plugins
    assert json.loads(runner.calls[0]["stdin"])["args"] == ["--name=theme", "--set=boost"]
    assert json.loads(runner.calls[1]["stdin"])["args"] == ["--name=theme", "--unset"]


def test_cfg_errors_carry_output(site_root):
    site = mc.MoodleSite(
        str(site_root), web_user=WEB, euid=WEB_UID, runner=FakeRunner((1, "", "Error reading from database"))
    )
    with pytest.raises(mc.MoodleError) as err:
        site.cfg_get("version")
    assert "cfg.php failed (rc=1): Error reading from database" in str(err.value)
    assert err.value.details()["rc"] == 1


def test_upgrade_status_and_old_moodle_fallback(site_root):
    site = mc.MoodleSite(
        str(site_root), web_user=WEB, euid=WEB_UID, runner=FakeRunner((3, "An upgrade is pending", ""))
    )
    assert site.upgrade_status() == {"pending": True, "maintenance_required": False}
    old = FakeRunner((1, "", "Unrecognised options:\n  --is-maintenance-required\n"), (2, "", ""))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=old)
    assert site.upgrade_status() == {"pending": True, "maintenance_required": True}
    assert old.calls[1]["cmd"][-1] == "--is-pending"


def test_missing_config_and_missing_cli(site_root, tmp_path):
    (site_root / "config.php").unlink()
    with pytest.raises(mc.MoodleError, match="not configured yet"):
        mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=explode).cfg_get("version")
    (site_root / "config.php").write_text("<?php\n")
    with pytest.raises(mc.MoodleError, match="lacks that CLI"):
        mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=explode).cli("no_such_tool.php")


def test_helper_sends_parameters_on_stdin_and_removes_its_script(site_root):
    answer = '@@LMS-RESULT@@{"changed": false}\n'
    runner = FakeRunner((0, answer, ""))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    assert site.helper("user", {"password": "Secret-1!"})["changed"] is False
    call = runner.calls[0]
    assert "Secret-1!" not in " ".join(call["cmd"])
    assert json.loads(call["stdin"]) == {"password": "Secret-1!"}
    script = call["cmd"][1]
    assert script.endswith(".php") and not os.path.exists(script)
    assert call["cmd"][2:] == [f"{site_root}/config.php", "user"]


def test_helper_failures(site_root):
    site = mc.MoodleSite(
        str(site_root),
        web_user=WEB,
        euid=WEB_UID,
        runner=FakeRunner((0, '@@LMS-RESULT@@{"failed": true, "msg": "no"}', "")),
    )
    with pytest.raises(mc.MoodleError, match=r"^no$"):
        site.helper("user")
    site = mc.MoodleSite(
        str(site_root), web_user=WEB, euid=WEB_UID, runner=FakeRunner((1, "", "Error reading from database"))
    )
    with pytest.raises(mc.MoodleError, match=r"Moodle failed while running 'facts' \(rc=1\): Error reading"):
        site.helper("facts")


def test_run_command_timeout_kills_the_group():
    with pytest.raises(mc.MoodleError, match="timed out after 1 s"):
        mc.run_command(["sh", "-c", "sleep 30 & sleep 30"], timeout=1)
    ok = mc.run_command(["sh", "-c", "cat; echo done >&2"], stdin="in")
    assert (ok.rc, ok.stdout, ok.stderr.strip()) == (0, "in", "done")
    with pytest.raises(mc.MoodleError, match="cannot run"):
        mc.run_command(["/no/such/binary"])


def test_helper_php_is_valid_php(tmp_path):
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed: cannot lint the helper")
    script = tmp_path / "helper.php"
    script.write_text(HELPER_PHP)
    proc = subprocess.run([php, "-l", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


CHECKS_V = (
    "CRITICAL: Cron running (tool_task_cronrunning)\n"
    "   Status | Check                                                       \n"
    "----------+--------------------------------------------------------------------\n"
    "\x1b[41m CRITICAL \x1b[0;0m| Cron running (tool_task_cronrunning)                        \n"
    "          |     The admin/cli/cron.php script has never been run and should\n"
    "          |     run every 1 min.\n"
    " \x1b[0;30m\x1b[43m WARNING \x1b[0;0m| Ad hoc task queue (tool_task_adhocqueue)                    \n"
    "          |     Oldest unprocessed task is 39 mins 48 secs\n"
    "      \x1b[0;32m OK \x1b[0;0m| Environment (core_environment)                              \n"
)


def test_parse_checks_table():
    rows = mc.parse_checks_table(CHECKS_V)
    assert [(r["status"], r["id"]) for r in rows] == [
        ("critical", "tool_task_cronrunning"),
        ("warning", "tool_task_adhocqueue"),
        ("ok", "core_environment"),
    ]
    assert rows[0]["name"] == "Cron running"
    assert (
        rows[0]["details"] == "The admin/cli/cron.php script has never been run and should run every 1 min."
    )


def test_checks_maps_nagios_codes(site_root):
    (site_root / "admin" / "cli" / "checks.php").write_text("<?php\n")
    runner = FakeRunner(
        (2, CHECKS_V, ""), (1, '!!! Exception - Class "curl" not found !!!\n', ""), (5, "", "boom")
    )
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    result = site.checks("status", "cron", verbose=True)
    assert result["status"] == "critical" and len(result["checks"]) == 3
    assert runner.calls[0]["cmd"][-3:] == ["--type=status", "-v", "--filter=cron"]
    with pytest.raises(mc.MoodleError, match='--type=security failed: Exception - Class "curl" not found'):
        site.checks("security")
    with pytest.raises(mc.MoodleError, match=r"checks.php failed \(rc=5\): boom"):
        site.checks()


def test_private_args_go_on_stdin_not_argv(site_root):
    runner = FakeRunner((0, "", ""))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    site.cli("upgrade.php", "--adminpass=s3cret!", private_args=True)
    call = runner.calls[0]
    assert "s3cret!" not in " ".join(call["cmd"])
    assert json.loads(call["stdin"]) == {
        "script": f"{site_root}/admin/cli/upgrade.php",
        "args": ["--adminpass=s3cret!"],
    }


@pytest.mark.skipif(shutil.which("php") is None, reason="needs the php CLI")
def test_argv_wrapper_gives_the_script_its_arguments(tmp_path):
    script = tmp_path / "show.php"
    script.write_text("<?php echo json_encode([$argv, $_SERVER['argv'], $argc, $_SERVER['argc'], __DIR__]);")
    wrapper = tmp_path / "wrapper.php"
    wrapper.write_text(ARGV_FROM_STDIN_PHP)
    args = ['--adminpass=it\'s "quoted" $secret', "--x"]
    result = mc.run_command(["php", str(wrapper)], stdin=json.dumps({"script": str(script), "args": args}))
    argv, server_argv, argc, server_argc, folder = json.loads(result.stdout)
    assert argv == server_argv == [str(script), *args] and argc == server_argc == 3
    assert folder == str(tmp_path)
    assert mc.run_command(["php", str(wrapper)], stdin="nonsense").rc == 2


# ----- secrets never on argv, never in a message (issue 17, item 9) -------------------------------------

CANARY = "Canary-s3cret-4711"


def test_cfg_set_keeps_the_value_off_argv(site_root):
    runner = FakeRunner((0, "", ""), (1, "", "Error writing to database"))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    site.cfg_set("smtppass", CANARY)
    call = runner.calls[0]
    assert CANARY not in " ".join(call["cmd"])
    assert json.loads(call["stdin"]) == {
        "script": f"{site_root}/admin/cli/cfg.php",
        "args": ["--name=smtppass", f"--set={CANARY}"],
    }
    with pytest.raises(mc.MoodleError) as err:
        site.cfg_set("apikey", CANARY, "tool_x")
    assert CANARY not in str(err.value) and CANARY not in json.dumps(err.value.details())


def test_timeout_message_masks_argument_values():
    cmd = ["sh", "-c", "sleep 5", "sh", f"--set={CANARY}", "--name=smtppass"]
    with pytest.raises(mc.MoodleError) as err:
        mc.run_command(cmd, timeout=0.3)
    assert "timed out" in str(err.value) and "--set=" in str(err.value)
    assert CANARY not in str(err.value)
    assert CANARY not in json.dumps(err.value.details())


def test_failed_cli_reports_a_masked_command(site_root):
    runner = FakeRunner((1, "", "boom"))
    site = mc.MoodleSite(str(site_root), web_user=WEB, euid=WEB_UID, runner=runner)
    with pytest.raises(mc.MoodleError) as err:
        site.cli("upgrade.php", f"--adminpass={CANARY}", "--non-interactive")
    details = err.value.details()
    assert CANARY not in str(err.value) and CANARY not in json.dumps(details)
    assert details["cmd"][-2:] == ["--adminpass=********", "--non-interactive"]


def test_mask_argv():
    assert mc.mask_argv(["php", "/x/cfg.php", "--name=a", "--set=b=c", "-p=x", "--unset", "plain"]) == [
        "php",
        "/x/cfg.php",
        "--name=********",
        "--set=********",
        "-p=********",
        "--unset",
        "plain",
    ]


def _facts(code: str, database: str | None) -> dict:
    return {"path": "/srv/lms/x/releases/r1", "flavour": "moodle", "version": code, "release": "5.1+",
            "installed_version": database, "installed_release": "5.1.1+"}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "database"),
    [("2025100600.02", "2025100600.02"), ("2025100601.00", "2025100600.02"), ("2025100600.02", None)],
)
def test_code_at_or_above_the_database_is_not_a_downgrade(code, database):
    mc.refuse_downgrade(_facts(code, database))


def test_code_older_than_the_database_is_refused_naming_both_versions():
    with pytest.raises(mc.MoodleError) as caught:
        mc.refuse_downgrade(_facts("2025100600.02", "2025100601.00"))
    text = str(caught.value)
    assert "Moodle 2025100600.02 (5.1+), older than the site's database (2025100601.00, 5.1.1+)" in text
    assert "rollback.yml" in text

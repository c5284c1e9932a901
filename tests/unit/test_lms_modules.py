"""Unit tests of the lms_* modules: documentation matches the argument spec, argument handling,
check mode plumbing (with a fake site; the real thing is in tests/integration)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import moodle_cli
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

fragment_loader.add_directory(str(REPO / "plugins" / "doc_fragments"))

MODULES = sorted(p.stem for p in (REPO / "library").glob("lms_*.py"))


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"lms_module_{name}", REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Spec(Exception):
    pass


def argument_spec(mod) -> dict:
    """The kwargs the module passes to AnsibleModule (captured, the module does not run)."""

    def capture(**kwargs):
        raise _Spec(kwargs)

    with mock.patch.object(mod, "AnsibleModule", side_effect=capture), pytest.raises(_Spec) as caught:
        mod.main()
    return caught.value.args[0]


def run(mod, args: dict, capsys, site=None) -> dict:
    """Run the module's main() with args; returns its JSON result (exit_json or fail_json)."""
    patches = [patch_module_args(args)]
    if site is not None:
        patches.append(mock.patch.object(mod.MoodleSite, "from_params", return_value=site))
    with patches[0], patches[1] if site is not None else mock.MagicMock(), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def compare_options(doc_options: dict, spec: dict, where: str) -> None:
    assert set(doc_options) == set(spec), f"{where}: documented {sorted(doc_options)} != spec {sorted(spec)}"
    for name, opt in spec.items():
        doc = doc_options[name]
        assert doc.get("type", "str") == opt.get("type", "str"), f"{where}.{name}: type"
        assert doc.get("required", False) == opt.get("required", False), f"{where}.{name}: required"
        assert doc.get("default") == opt.get("default"), f"{where}.{name}: default"
        assert doc.get("choices") == opt.get("choices"), f"{where}.{name}: choices"
        if opt.get("no_log"):
            assert opt["type"] == "str"
        if "options" in opt:
            compare_options(doc["suboptions"], opt["options"], f"{where}.{name}")


def test_there_are_modules():
    assert {"lms_facts", "lms_config", "lms_maintenance", "lms_upgrade", "lms_user"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_argument_spec(name):
    mod = load(name)
    doc = get_docstring(str(REPO / "library" / f"{name}.py"), fragment_loader, is_module=True)[0]
    assert doc["module"] == name
    assert yaml.safe_load(mod.RETURN)
    examples = yaml.safe_load(mod.EXAMPLES)
    assert any(name in task for task in examples), f"{name}: no example uses the module"
    kwargs = argument_spec(mod)
    assert kwargs["supports_check_mode"] is True
    compare_options(doc["options"], kwargs["argument_spec"], name)
    if "lms_site" in yaml.safe_load(mod.DOCUMENTATION).get("extends_documentation_fragment", []):
        for common in moodle_cli.COMMON_ARGS:
            assert common in kwargs["argument_spec"], f"{name} lacks the common option {common}"


def test_password_is_no_log():
    spec = argument_spec(load("lms_user"))["argument_spec"]
    assert spec["password"]["no_log"] is True


# ----- argument handling --------------------------------------------------------------------------------


def test_config_wanted_settings():
    mod = load("lms_config")
    one = mod.wanted_settings(
        {"settings": None, "name": "theme", "component": "core", "value": "boost", "state": "present"}
    )
    assert one == [
        {"name": "theme", "component": "core", "state": "present", "value": "boost", "read_only": False}
    ]
    read = mod.wanted_settings(
        {"settings": None, "name": "theme", "component": "core", "value": None, "state": "present"}
    )
    assert read[0]["read_only"] is True
    many = mod.wanted_settings(
        {
            "settings": [
                {"name": "x", "component": "tool_y", "value": True, "state": "present"},
                {"name": "z", "component": None, "value": None, "state": "absent"},
            ]
        }
    )
    assert many[0]["value"] == "1" and many[1] == {
        "name": "z",
        "component": "core",
        "state": "absent",
        "value": None,
        "read_only": False,
    }
    with pytest.raises(moodle_cli.MoodleError, match="tool_y/x has no value"):
        mod.wanted_settings(
            {"settings": [{"name": "x", "component": "tool_y", "value": None, "state": "present"}]}
        )
    # read: several settings, none written (the tier policy audit)
    reads = mod.wanted_settings(
        {
            "read": [{"name": "noemailever", "component": None}, {"name": "x", "component": "tool_y"}],
            "settings": None,
        }
    )
    assert [(r["component"], r["name"], r["read_only"], r["value"]) for r in reads] == [
        ("core", "noemailever", True, None),
        ("tool_y", "x", True, None),
    ]


class FakeSite:
    def __init__(self, answers: dict):
        self.answers = answers
        self.calls = []

    def helper(self, op, params=None):
        self.calls.append(("helper", op, params))
        return self.answers[op]

    def cfg_set(self, name, value, component=None):
        self.calls.append(("cfg_set", name, value, component))


def test_config_check_mode_writes_nothing_and_refuses_forced(capsys):
    mod = load("lms_config")
    site = FakeSite(
        {
            "config_get": {
                "settings": [{"name": "theme", "component": "core", "value": "classic", "forced": False}]
            }
        }
    )
    result = run(
        mod, {"path": "/x", "name": "theme", "value": "boost", "_ansible_check_mode": True}, capsys, site
    )
    assert result["changed"] is True and result["settings"][0]["after"] == "boost"
    assert [c[0] for c in site.calls] == ["helper"]
    result = run(mod, {"path": "/x", "name": "theme", "value": "boost"}, capsys, site)
    assert site.calls[-1] == ("cfg_set", "theme", "boost", "core")
    assert result["diff"] == {"before": "theme = 'classic'\n", "after": "theme = 'boost'\n"}
    forced = FakeSite(
        {
            "config_get": {
                "settings": [{"name": "theme", "component": "core", "value": "classic", "forced": True}]
            }
        }
    )
    result = run(mod, {"path": "/x", "name": "theme", "value": "boost"}, capsys, forced)
    assert result["failed"] and "forced in config.php" in result["msg"]


def test_config_argument_errors(capsys):
    mod = load("lms_config")
    result = run(mod, {"path": "/x", "name": "a", "settings": [{"name": "b", "value": 1}]}, capsys)
    assert result["failed"] and "mutually exclusive" in result["msg"]
    result = run(mod, {"path": "/x", "settings": [{"value": 1}]}, capsys)
    assert result["failed"] and "name" in result["msg"]


def test_config_shows_an_empty_secret_and_masks_a_set_one(capsys):
    mod = load("lms_config")
    site = FakeSite(
        {
            "config_get": {
                "settings": [
                    {"name": "dbpass", "component": "enrol_database", "value": "", "forced": True},
                    {
                        "name": "turnitinapikey",
                        "component": "plagiarism_turnitinsim",
                        "value": "k3y",
                        "forced": True,
                    },
                ]
            }
        }
    )
    read = [{"name": "dbpass", "component": "enrol_database"}, {"name": "turnitinapikey", "component": "x"}]
    result = run(mod, {"path": "/x", "read": read}, capsys, site)
    assert [s["after"] for s in result["settings"]] == ["", "********"]
    assert "k3y" not in json.dumps(result)


def test_plugin_reads_and_sets_through_the_helper(capsys):
    mod = load("lms_plugin")
    answer = {
        "plugins": [
            {
                "component": "mod_bigbluebuttonbn",
                "installed": True,
                "before": False,
                "after": True,
                "changed": True,
            },
            {
                "component": "enrol_flatfile",
                "installed": False,
                "before": None,
                "after": None,
                "changed": False,
            },
        ]
    }
    site = FakeSite({"plugin_state": answer})
    wanted = [
        {"component": "mod_bigbluebuttonbn", "enabled": True},
        {"component": "enrol_flatfile", "enabled": False},
    ]
    result = run(mod, {"path": "/x", "plugins": wanted, "_ansible_check_mode": True}, capsys, site)
    assert site.calls == [("helper", "plugin_state", {"plugins": wanted, "check_mode": True})]
    assert result["changed"] is True
    assert result["diff"] == {
        "before": "mod_bigbluebuttonbn: disabled\n",
        "after": "mod_bigbluebuttonbn: enabled\n",
    }
    site = FakeSite({"plugin_state": {"plugins": [dict(answer["plugins"][1])]}})
    result = run(mod, {"path": "/x", "read": ["enrol_flatfile"]}, capsys, site)
    assert site.calls[0][2] == {
        "plugins": [{"component": "enrol_flatfile", "enabled": None}],
        "check_mode": False,
    }
    assert result["changed"] is False and result["plugins"][0]["installed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"read": ["bigbluebutton"]}, "'bigbluebutton' is not a plugin component"),
        ({"read": ["mod_x", "mod_x"]}, "mod_x is listed twice"),
        ({"read": ["mod_x"], "plugins": [{"component": "mod_x", "enabled": True}]}, "mutually exclusive"),
        ({"plugins": [{"component": "mod_x"}]}, "enabled"),
    ],
)
def test_plugin_argument_errors(capsys, args, message):
    site = FakeSite({})
    result = run(load("lms_plugin"), {"path": "/x", **args}, capsys, site)
    assert result["failed"] and message in result["msg"]
    assert site.calls == []


def test_user_sends_password_to_the_helper_only(capsys):
    mod = load("lms_user")
    answer = {
        "changed": True,
        "changes": ["password"],
        "before": {"username": "u"},
        "after": {"username": "u"},
        "enrolments_before": [],
        "enrolments_after": [],
        "warnings": [],
    }
    site = FakeSite({"user": answer})
    args = {
        "path": "/x",
        "username": "u",
        "password": "Pw-123456!",
        "enrolments": [{"course": "C1"}],
        "_ansible_check_mode": True,
    }
    result = run(mod, args, capsys, site)
    op, params = site.calls[0][1], site.calls[0][2]
    assert op == "user" and params["password"] == "Pw-123456!" and params["check_mode"] is True
    assert params["enrolments"] == [{"course": "C1", "role": "student", "state": "present"}]
    assert "auth" not in params  # unset options are not sent: the helper leaves those fields alone
    assert "Pw-123456!" not in json.dumps(result)
    assert result["changes"] == ["password"]


def test_user_argument_errors(capsys):
    mod = load("lms_user")
    result = run(mod, {"path": "/x", "username": "u", "state": "gone"}, capsys)
    assert result["failed"] and "value of state must be one of" in result["msg"]
    result = run(mod, {"path": "/x", "username": "u", "enrolments": [{"role": "student"}]}, capsys)
    assert result["failed"] and "course" in result["msg"]


def test_maintenance_argument_errors(capsys):
    mod = load("lms_maintenance")
    result = run(mod, {"path": "/x", "state": "scheduled"}, capsys)
    assert result["failed"] and "minutes" in result["msg"]
    result = run(mod, {"path": "/x", "state": "enabled", "minutes": 3}, capsys)
    assert result["failed"] and "minutes is for state=scheduled" in result["msg"]


def test_facts_fail_with_a_clear_message(capsys, tmp_path):
    result = run(load("lms_facts"), {"path": str(tmp_path)}, capsys)
    assert result["failed"] and "not a Moodle or Totara code root" in result["msg"]


def test_course_argument_errors(capsys):
    mod = load("lms_course")
    result = run(mod, {"path": "/x", "shortname": "C1", "state": "backup"}, capsys)
    assert result["failed"] and "backup_file" in result["msg"]
    result = run(mod, {"path": "/x", "shortname": "C1", "template": "T", "backup_file": "/b.mbz"}, capsys)
    assert result["failed"] and "mutually exclusive" in result["msg"]


def test_course_check_mode_changes_nothing(capsys):
    mod = load("lms_course")
    info = {"course": None, "category": None, "default_category": 1}
    site = FakeSite({"course_info": info})
    result = run(
        mod, {"path": "/x", "shortname": "C1", "fullname": "One", "_ansible_check_mode": True}, capsys, site
    )
    assert result["changed"] is True and result["changes"] == ["created"]
    assert [c[1] for c in site.calls] == ["course_info"]


def test_course_failure_reports_the_result_so_far(capsys):
    """A MoodleError from course.py becomes fail_json with its message and what was found before
    (the logic and its states are tested in test_course.py)."""
    mod = load("lms_course")
    course = {"id": 7, "shortname": "C1", "restored_sha256": None}
    site = FakeSite({"course_info": {"course": course, "category": None, "default_category": 1}})
    args = {"path": "/x", "shortname": "C1", "state": "restored", "backup_file": "/nowhere/c.mbz"}
    result = run(mod, args, capsys, site)
    assert result["failed"] is True and result["msg"] == "backup file /nowhere/c.mbz does not exist"
    assert result["course"] == course and result["backup_file"] == "/nowhere/c.mbz"
    assert result["changes"] == [] and "changed" not in result and "diff" not in result


# ----- Live guard of lms_sanitise and lms_restore (issue 17, item 3) -------------------------------------


def site_tree(srv: Path, folder: str, record: dict | None = None) -> Path:
    """``<srv>/<folder>/current -> releases/r1`` holding a Moodle 4.5-style tree, as the lms role lays
    sites out; returns the ``current`` link."""
    code = srv / folder / "releases" / "r1"
    (code / "admin" / "cli").mkdir(parents=True)
    (code / "version.php").write_text("<?php $version = 2024100700.00;")
    (srv / folder / "current").symlink_to(code)
    if record is not None:
        (srv / folder / "deployment.json").write_text(json.dumps(record))
    return srv / folder / "current"


class NoSite:
    """A site that must not be touched: the guard refuses before any Moodle call."""

    def __getattr__(self, name):
        raise AssertionError(f"the site was touched ({name}) although the module should have refused")


def sanitise_args(path: Path, **extra) -> dict:
    return {"path": str(path), "keep_usernames": ["admin"], **extra}


def test_sanitise_refuses_a_live_site_without_allow_live(capsys, tmp_path):
    mod = load("lms_sanitise")
    live = site_tree(tmp_path, "acme-live", {"site": "acme-live", "release": "r1"})
    for extra in ({}, {"_ansible_check_mode": True}):
        result = run(mod, sanitise_args(live, **extra), capsys, NoSite())
        assert result["failed"], result
        assert "acme-live" in result["msg"] and "allow_live" in result["msg"]
        assert "allow_live_reason" in result["msg"]  # says how to override


def test_sanitise_live_guard_reads_the_deployment_record(capsys, tmp_path):
    mod = load("lms_sanitise")
    # The code root's folder says nothing; the site's deployment record on the host names Live.
    odd = site_tree(tmp_path, "site7", {"site": "acme-live", "release": "r1"})
    result = run(mod, sanitise_args(odd), capsys, NoSite())
    assert result["failed"] and "acme-live" in result["msg"] and "allow_live" in result["msg"]


@pytest.mark.parametrize(
    ("reason", "problem"),
    [(None, "allow_live_reason"), ("   ", "allow_live_reason"), ("x" * 501, "at most 500")],
)
def test_allow_live_needs_a_short_real_reason(capsys, tmp_path, reason, problem):
    live = site_tree(tmp_path, "acme-live")
    args = sanitise_args(live, allow_live=True)
    if reason is not None:
        args["allow_live_reason"] = reason
    result = run(load("lms_sanitise"), args, capsys, NoSite())
    assert result["failed"] and problem in result["msg"] and "Unsupported" not in result["msg"]
    assert "x" * 100 not in result["msg"]  # a long input is not echoed back


def test_sanitise_acts_on_live_with_allow_live_and_on_qa_without(capsys, tmp_path):
    mod = load("lms_sanitise")
    report = {
        "changed": True,
        "counts": {"user": 3},
        "settings_changed": [],
        "tables_missing": [],
        "seconds": {},
        "slowest_steps": {},
        "kept_users": ["admin"],
        "keep_usernames_missing": [],
    }
    check = {"kept_users": ["admin"], "keep_usernames_missing": [], "problems": []}
    live = site_tree(tmp_path / "a", "acme-live")
    qa = site_tree(tmp_path / "b", "acme-qa", {"site": "acme-qa"})
    with (
        mock.patch.object(mod, "sanitise", return_value=report) as sanitised,
        mock.patch.object(mod, "verify", return_value=check),
    ):
        args = sanitise_args(live, allow_live=True, allow_live_reason="INC-42: scrub leaked test data")
        result = run(mod, args, capsys, FakeSite({}))
        assert not result.get("failed"), result
        assert result["live_override"]["reason"] == "INC-42: scrub leaked test data"
        assert result["live_override"]["site"] == "acme-live"
        result = run(mod, sanitise_args(qa), capsys, FakeSite({}))
        assert not result.get("failed"), result
        assert "live_override" not in result
        assert sanitised.call_count == 2


def restore_args(path: Path, **extra) -> dict:
    args = {"path": str(path), "site": "acme-qa", "customer": "acme", "store": {"bucket": "b"}}
    args.update(extra)
    return args


def test_restore_refuses_a_live_target_without_allow_live(capsys, tmp_path):
    mod = load("lms_restore")
    live = site_tree(tmp_path, "acme-live", {"site": "acme-live"})
    with mock.patch.object(mod, "restore", side_effect=AssertionError("restore ran")):
        # The site option says live
        result = run(mod, restore_args(live, site="acme-live"), capsys)
        assert result["failed"] and "acme-live" in result["msg"] and "allow_live" in result["msg"]
        # The site option says qa, but the code root is Live's: the host's facts win
        result = run(mod, restore_args(live, site="acme-qa", source_site="acme-live"), capsys)
        assert result["failed"] and "acme-live" in result["msg"] and "allow_live" in result["msg"]
        # check mode too: --check must not report that Live would be restored
        result = run(mod, restore_args(live, site="acme-live", _ansible_check_mode=True), capsys)
        assert result["failed"] and "allow_live" in result["msg"]


def test_restore_into_live_only_from_lives_own_backup(capsys, tmp_path):
    mod = load("lms_restore")
    live = site_tree(tmp_path, "acme-live", {"site": "acme-live"})
    override = {"allow_live": True, "allow_live_reason": "DR drill"}
    with mock.patch.object(mod, "restore", side_effect=AssertionError("restore ran")):
        result = run(mod, restore_args(live, site="acme-live", source_site="acme-qa", **override), capsys)
        assert result["failed"] and "acme-qa" in result["msg"] and "own backup" in result["msg"]
    with mock.patch.object(mod, "restore", return_value={"changed": True, "backup_id": "b1"}) as restored:
        result = run(mod, restore_args(live, site="acme-live", **override), capsys)
        assert not result.get("failed"), result
        assert result["live_override"] == {"site": "acme-live", "reason": "DR drill"}
        assert restored.call_count == 1
    qa = site_tree(tmp_path / "q", "acme-qa", {"site": "acme-qa"})
    with mock.patch.object(mod, "restore", return_value={"changed": True}) as restored:
        result = run(mod, restore_args(qa, source_site="acme-live"), capsys)
        assert not result.get("failed"), result

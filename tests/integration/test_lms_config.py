"""lms_config against a real Moodle: set, unchanged, check mode, diff, unset, forced, errors."""

from __future__ import annotations


def cfg(site, name, component=None):
    args = [f"--name={name}"] + ([f"--component={component}"] if component else [])
    proc = site.cli("cfg.php", *args, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_set_core_and_plugin_settings_idempotently(lms, moodle_site):
    settings = [
        {"name": "ti_test_core", "value": "alpha"},
        {"name": "coursebinenable", "component": "tool_recyclebin", "value": False},
        {"name": "maxbytes", "value": 1048576},
    ]
    # Start from Moodle's defaults (the session's site may have run this test before).
    moodle_site.cli("cfg.php", "--name=ti_test_core", "--unset")
    moodle_site.cli("cfg.php", "--name=coursebinenable", "--component=tool_recyclebin", "--set=1")
    moodle_site.cli("cfg.php", "--name=maxbytes", "--set=0")
    # Check mode: reports the change, writes nothing.
    dry = lms("lms_config", check=True, settings=settings)
    assert not dry.get("failed"), dry
    assert dry["changed"] is True
    assert cfg(moodle_site, "ti_test_core") is None

    first = lms("lms_config", settings=settings)
    assert first["changed"] is True, first
    assert cfg(moodle_site, "ti_test_core") == "alpha"
    assert cfg(moodle_site, "coursebinenable", "tool_recyclebin") == "0"
    assert cfg(moodle_site, "maxbytes") == "1048576"
    assert "ti_test_core = 'alpha'" in first["diff"]["after"]
    by_name = {s["name"]: s for s in first["settings"]}
    assert by_name["ti_test_core"]["before"] is None and by_name["ti_test_core"]["after"] == "alpha"

    second = lms("lms_config", settings=settings)
    assert second["changed"] is False, second
    assert all(not s["changed"] for s in second["settings"])
    # Check mode on a converged site: unchanged too.
    assert lms("lms_config", check=True, settings=settings)["changed"] is False


def test_single_setting_read_change_and_absent(lms, moodle_site):
    read = lms("lms_config", name="ti_test_single")
    assert read["changed"] is False and read["value"] is None
    assert lms("lms_config", name="ti_test_single", value="one")["changed"] is True
    read = lms("lms_config", name="ti_test_single")
    assert read["value"] == "one" and read["changed"] is False
    gone = lms("lms_config", name="ti_test_single", state="absent")
    assert gone["changed"] is True and gone["value"] is None
    assert cfg(moodle_site, "ti_test_single") is None
    assert lms("lms_config", name="ti_test_single", state="absent")["changed"] is False


def test_secret_values_are_masked(lms, moodle_site):
    moodle_site.cli("cfg.php", "--name=ti_test_apikey_password", "--unset")
    result = lms("lms_config", name="ti_test_apikey_password", value="s3cret-value")
    assert result["changed"] is True
    # The module masks what it reports; the task's own arguments need `no_log: true` (documented).
    shown = {key: result[key] for key in ("settings", "value", "diff")}
    assert "s3cret-value" not in str(shown)
    lms("lms_config", name="ti_test_apikey_password", state="absent")


def test_forced_in_config_php_is_refused(lms, moodle_site):
    # The test site's config.php sets $CFG->noemailever = true.
    refused = lms("lms_config", name="noemailever", value="0")
    assert refused["failed"]
    assert "forced in config.php" in refused["msg"] and "$CFG->noemailever" in refused["msg"]
    same = lms("lms_config", name="noemailever", value=True)
    assert not same.get("failed") and same["changed"] is False
    assert any("forced in config.php" in w for w in same.get("warnings", []))


def test_bad_arguments(lms):
    both = lms("lms_config", name="x", settings=[{"name": "y", "value": 1}])
    assert both["failed"] and "mutually exclusive" in both["msg"]
    novalue = lms("lms_config", settings=[{"name": "y"}])
    assert novalue["failed"] and "has no value" in novalue["msg"]
    neither = lms("lms_config")
    assert neither["failed"] and "one of the following is required" in neither["msg"]


def test_read_several_settings_with_whether_config_php_forces_them(lms, moodle_site):
    moodle_site.cli("cfg.php", "--name=ti_test_read", "--set=x")
    read = lms(
        "lms_config",
        check=True,
        read=[
            {"name": "noemailever"},
            {"name": "ti_test_read"},
            {"name": "coursebinenable", "component": "tool_recyclebin"},
        ],
    )
    assert not read.get("failed") and read["changed"] is False, read
    got = {(s["component"], s["name"]): (s["after"], s["forced"]) for s in read["settings"]}
    assert got[("core", "noemailever")] == ("1", True)  # the test site's config.php forces it
    assert got[("core", "ti_test_read")] == ("x", False)
    assert got[("tool_recyclebin", "coursebinenable")][1] is False
    both = lms("lms_config", name="x", read=[{"name": "y"}])
    assert both["failed"] and "mutually exclusive" in both["msg"]
    moodle_site.cli("cfg.php", "--name=ti_test_read", "--unset")

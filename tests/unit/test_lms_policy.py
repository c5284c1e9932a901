"""plugins/filter/lms_policy.py: the tier policy (mail, debug, banner, security, integrations, forced
plugin settings) that the lms role writes into config.php and playbooks/audit.yml reads back; its
refusals; the audit's comparison. The role's own defaults (roles/lms/defaults/main.yml) are the ones
tested here. tests/integration/test_tier_policy.py shows the same settings in a real Moodle."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import lms_policy as lp
from estate import build_inventory, parse_estate

DEFAULTS = yaml.safe_load((REPO / "roles/lms/defaults/main.yml").read_text())
SECURITY = {"preventexecpath": True, "disableupdateautodeploy": True, "uninstallclionly": True}


def site(tier: str, name: str | None = None, **site_vars) -> dict:
    return {"name": name or f"acme-{tier}", "customer": "acme", "tier": tier, "vars": site_vars}


def policy(record: dict, no_mail=None, no_except=None, live=None) -> dict:
    return lp.lms_policy(
        record,
        DEFAULTS["lms_tier_policy"],
        DEFAULTS["lms_tier_config"],
        DEFAULTS["lms_no_mail_tiers"] if no_mail is None else no_mail,
        DEFAULTS["lms_no_mail_except_tiers"] if no_except is None else no_except,
        live,
    )


def own_plugins(config: dict) -> dict:
    """forced_plugin_settings without the integrations' components (every site has those)."""
    forced = config.get("forced_plugin_settings") or {}
    return {c: s for c, s in forced.items() if c not in lp.TOOLS}


def problems(record: dict, **kw) -> str:
    return "; ".join(policy(record, **kw)["problems"])


# ------------------------------------------------------------------------------------------ defaults


def test_dev_defaults_no_mail_debug_banner_security():
    result = policy(site("dev"))
    assert result["problems"] == []
    config = result["config"]
    assert config["noemailever"] is True
    assert "divertallemailsto" not in config and "smtphosts" not in config
    assert config["debug"] == 32767 and config["debugdisplay"] == 1
    assert SECURITY.items() <= config.items()
    assert 'class="three-instance-banner"' in config["additionalhtmltopofbody"]
    assert "DEV — not the live site" in config["additionalhtmltopofbody"]
    assert own_plugins(config) == {}


def test_qa_defaults_no_mail_no_debug_banner():
    config = policy(site("qa"))["config"]
    assert config["noemailever"] is True
    assert config["debug"] == 0 and config["debugdisplay"] == 0
    assert "QA — not the live site" in config["additionalhtmltopofbody"]
    assert SECURITY.items() <= config.items()


def test_live_defaults_deliver_no_banner_not_diverted():
    result = policy(site("live"))
    assert result["problems"] == []
    config = result["config"]
    assert "noemailever" not in config
    assert config["divertallemailsto"] == ""  # the admin UI cannot divert Live's mail
    assert "additionalhtmltopofbody" not in config  # Live's own top-of-body HTML stays the admin's
    assert config["debug"] == 0 and SECURITY.items() <= config.items()


def test_lms_debug_and_lms_config_still_apply_and_the_policy_wins():
    config = policy(site("qa", lms_debug=True, lms_config={"theme": "boost"}))["config"]
    assert config["debug"] == 32767 and config["debugdisplay"] == 1 and config["theme"] == "boost"
    assert policy(site("dev", lms_debug=False))["config"]["debug"] == 0
    live = policy(site("live", lms_config={"theme": "boost", "debug": 32767}))
    assert live["problems"] == []
    assert live["config"]["debug"] == 32767 and live["config"]["debugdisplay"] == 0  # logged, not shown


# ---------------------------------------------------------------------------------------------- mail


def test_qa_diverts_to_its_mailbox_with_exceptions_as_moodle_reads_them():
    result = policy(
        site(
            "qa",
            lms_mail="divert",
            lms_mail_divert_to="lms-qa@acme.example",
            lms_mail_divert_except=[r"tester@acme\.example", r"@provider\.example"],
        )
    )
    assert result["problems"] == []
    config = result["config"]
    assert "noemailever" not in config
    assert config["divertallemailsto"] == "lms-qa@acme.example"
    # moodlelib's email_should_be_diverted() splits on whitespace and commas
    assert config["divertallemailsexcept"] == "tester@acme\\.example\n@provider\\.example"


def test_dev_diverts_only_to_the_address():
    result = policy(site("dev", lms_mail="divert", lms_mail_divert_to="dev@provider.example"))
    assert result["problems"] == [] and result["config"]["divertallemailsexcept"] == ""
    text = problems(
        site("dev", lms_mail="divert", lms_mail_divert_to="d@x.example", lms_mail_divert_except=["x"])
    )
    assert "site acme-dev: lms_mail_divert_except is refused on dev" in text


@pytest.mark.parametrize("tier", ["dev", "qa"])
def test_deliver_on_dev_and_qa_is_refused_whatever_the_tier_list_says(tier):
    record = site(tier, lms_mail="deliver", lms_smtp_host="smtp.example")
    for no_mail in (None, [], ["live"]):
        text = problems(record, no_mail=no_mail)
        assert f"site acme-{tier}: lms_mail deliver is refused on {tier}" in text
        assert "DESIGN rule 6" in text


def test_more_no_mail_tiers_can_be_added():
    assert "refused on live" in problems(site("live"), no_mail=["live"])


def test_divert_without_a_mail_address_and_unknown_modes_are_refused():
    assert "lms_mail divert needs lms_mail_divert_to" in problems(site("qa", lms_mail="divert"))
    assert "lms_mail_divert_to" in problems(site("qa", lms_mail="divert", lms_mail_divert_to="a, b@x"))
    assert "lms_mail 'sometimes' is not one of off, divert, deliver" in problems(
        site("live", lms_mail="sometimes")
    )
    bad_except = site("qa", lms_mail="divert", lms_mail_divert_to="q@x.example", lms_mail_divert_except="a b")
    assert "must be a list of patterns" in problems(bad_except)


def test_yaml_off_is_read_as_false_and_means_off():
    record = site("live", **yaml.safe_load("lms_mail: off"))
    assert policy(record)["config"]["noemailever"] is True
    assert policy(record)["policy"]["lms_mail"] == "off"


def test_deliver_forces_smtp_and_keeps_the_password_a_secret_in_the_audit():
    result = policy(
        site(
            "live",
            lms_smtp_host="smtp.example:587",
            lms_smtp_secure="tls",
            lms_smtp_user="relay",
            lms_smtp_password="s3cret",
        )
    )
    config = result["config"]
    assert config["smtphosts"] == "smtp.example:587" and config["smtpsecure"] == "tls"
    assert config["smtpuser"] == "relay" and config["smtppass"] == "s3cret"
    expect = {e["name"]: e for e in result["expect"]}
    assert expect["smtppass"]["check"] == "secret"
    assert "s3cret" not in str(lp.lms_policy_audit(result["expect"], [], "acme-live"))
    assert "lms_smtp_secure" in problems(site("live", lms_smtp_host="h", lms_smtp_secure="starttls"))


def test_smtp_settings_are_ignored_where_mail_is_off():
    for tier in ("dev", "qa", "live"):
        config = policy(site(tier, lms_mail="off", lms_smtp_host="smtp.example", lms_smtp_user="u"))["config"]
        assert "smtphosts" not in config and "smtpuser" not in config and config["noemailever"] is True


def test_divert_sends_through_the_relay_to_the_divert_address_only():
    """A diverting QA needs a relay to reach its mailbox: the same lms_smtp_* as Live, forced; every
    mail still goes to lms_mail_divert_to (moodlelib diverts before it picks the transport)."""
    record = site(
        "qa",
        lms_mail="divert",
        lms_mail_divert_to="lms-qa@acme.example",
        lms_smtp_host="smtp.example:587",
        lms_smtp_user="relay",
        lms_smtp_password="s3cret",
    )
    result = policy(record)
    assert result["problems"] == []
    config = result["config"]
    assert config["divertallemailsto"] == "lms-qa@acme.example" and "noemailever" not in config
    assert config["smtphosts"] == "smtp.example:587" and config["smtpsecure"] == ""
    assert config["smtpuser"] == "relay" and config["smtppass"] == "s3cret"
    assert {e["name"]: e["check"] for e in result["expect"]}["smtppass"] == "secret"
    assert "lms_smtp_secure" in problems({**record, "vars": {**record["vars"], "lms_smtp_secure": "x"}})


# ---------------------------------------------------------------------------------------------- cron


def test_cron_is_on_by_default_on_every_tier_and_forced_with_cli_only():
    for tier in ("dev", "qa", "live"):
        result = policy(site(tier))
        assert result["problems"] == [] and result["policy"]["lms_cron"] is True
        assert result["config"]["cron_enabled"] == 1 and result["config"]["cronclionly"] is True
        wanted = {e["name"]: e["wanted"] for e in result["expect"]}
        assert wanted["cron_enabled"] == "1" and wanted["cronclionly"] == "1"


@pytest.mark.parametrize("value", [False, "false", "no", "off", 0, "0"])
def test_cron_off_forces_cron_enabled_0_for_the_audit(value):
    result = policy(site("qa", lms_cron=value))
    assert result["problems"] == [] and result["policy"]["lms_cron"] is False
    # an integer, as cron.php --disable stores it: get_config() gives "0" back (false would read as '')
    assert result["config"]["cron_enabled"] == 0 and result["config"]["cronclionly"] is True
    expect = {e["name"]: e for e in result["expect"]}
    assert expect["cron_enabled"] == {
        "name": "cron_enabled",
        "component": "core",
        "wanted": "0",
        "check": "equal",
    }


def test_cron_per_tier_from_the_tier_policy_and_bad_values_refused():
    tier_policy = copy.deepcopy(DEFAULTS["lms_tier_policy"])
    tier_policy["dev"]["lms_cron"] = False
    result = lp.lms_policy(site("dev"), tier_policy, DEFAULTS["lms_tier_config"], ["dev", "qa"], ["dev"])
    assert result["config"]["cron_enabled"] == 0
    assert lp.lms_policy(site("dev", lms_cron=True), tier_policy)["config"]["cron_enabled"] == 1
    del tier_policy["live"]["lms_cron"]  # a tier policy from before lms_cron: on
    assert lp.lms_policy(site("live"), tier_policy)["config"]["cron_enabled"] == 1
    assert "site acme-qa: lms_cron must be true or false (got 'sometimes')" in problems(
        site("qa", lms_cron="sometimes")
    )
    text = problems(site("live", lms_config={"cron_enabled": 0}))
    assert "vars.lms_config sets cron_enabled, which the tier policy owns" in text


def test_audit_reports_cron_switched_back_on_by_hand():
    qa = policy(site("qa", lms_cron=False))
    rows = lp.lms_policy_audit(
        qa["expect"], readback(qa, cron_enabled=("1", False)), "acme-qa", plugins_read(qa)
    )
    assert [lp.lms_policy_table(r) for r in rows if not r["ok"]] == [
        "acme-qa | cron_enabled | 0 (forced) | 1 (not forced) | DRIFT"
    ]


# -------------------------------------------------------------------------------------------- banner


def test_banner_is_escaped_and_its_colour_cannot_inject_style():
    config = policy(site("qa", lms_banner="<script>x</script> & QA", lms_banner_colour="#123abc"))["config"]
    html = config["additionalhtmltopofbody"]
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt; &amp; QA" in html
    assert "background:#123abc" in html
    text = problems(site("qa", lms_banner="QA", lms_banner_colour="red;position:fixed"))
    assert "site acme-qa: lms_banner_colour must be" in text


def test_banner_on_live_is_refused_and_can_be_turned_off_elsewhere():
    assert "site acme-live: lms_banner is refused on live" in problems(site("live", lms_banner="LIVE"))
    assert "additionalhtmltopofbody" not in policy(site("dev", lms_banner=""))["config"]


# ----------------------------------------------------------------------------------- plugin settings


def test_plugin_settings_merge_tier_and_site_as_strings():
    tier_policy = copy.deepcopy(DEFAULTS["lms_tier_policy"])
    tier_policy["qa"]["lms_plugin_config"] = {
        "tool_recyclebin": {"coursebinenable": False, "categorybinenable": 1}
    }
    record = site(
        "qa",
        lms_plugin_config={
            "tool_recyclebin": {"categorybinenable": 0},
            "theme_boost": {"brandcolor": "#00539b"},
        },
    )
    result = lp.lms_policy(record, tier_policy, DEFAULTS["lms_tier_config"], ["dev", "qa"], ["dev"])
    assert result["problems"] == []
    assert own_plugins(result["config"]) == {
        "tool_recyclebin": {"coursebinenable": "0", "categorybinenable": "0"},
        "theme_boost": {"brandcolor": "#00539b"},
    }
    labels = [
        e["component"] + "/" + e["name"]
        for e in result["expect"]
        if e["component"] != "core" and e["component"] not in lp.TOOLS
    ]
    assert labels == [
        "theme_boost/brandcolor",
        "tool_recyclebin/categorybinenable",
        "tool_recyclebin/coursebinenable",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "lms_plugin_config must be {component: {setting: value}}"),
        ({"Bad-Name": {"a": 1}}, "is not a plugin component name"),
        ({"tool_x": ["a"]}, "lms_plugin_config.tool_x must be"),
        ({"tool_x": {"a b": 1}}, "is not a setting name"),
        ({"tool_x": {"a": [1]}}, "lms_plugin_config.tool_x.a must be a string"),
    ],
)
def test_bad_plugin_settings_are_refused(value, message):
    assert message in problems(site("dev", lms_plugin_config=value))


def test_lms_config_may_not_set_what_the_policy_owns():
    text = problems(site("dev", lms_config={"noemailever": False, "theme": "boost"}))
    assert "site acme-dev: vars.lms_config sets noemailever, which the tier policy owns" in text
    assert policy(site("dev", lms_config={"noemailever": False}))["config"]["noemailever"] is True


# --------------------------------------------------------------------------------------- integrations

BBB_QA = {
    "enabled": True,
    "settings": {
        "bigbluebuttonbn_server_url": "https://bbb-test.acme.example/bigbluebutton/",
        "bigbluebuttonbn_shared_secret": "bbb-qa-s3cret",
    },
}
TII_QA = {
    "enabled": True,
    "settings": {
        "plagiarism_turnitin_apiurl": "https://sandbox.turnitin.com",
        "plagiarism_turnitin_accountid": "90210",
        "plagiarism_turnitin_secretkey": "tii-qa-s3cret",
        "plagiarism_turnitin_mod_assign": True,
    },
}
SIS_LIVE = {
    "enabled": True,
    "settings": {"dbtype": "postgres", "dbhost": "sis.acme.example", "dbname": "sis", "dbpass": "sis-s3cret"},
}


def tools(**specs) -> dict:
    return {"lms_integrations": specs}


def test_the_role_defaults_list_every_tool_off_on_every_tier():
    for tier in ("dev", "qa", "live"):
        defaults = DEFAULTS["lms_tier_policy"][tier]["lms_integrations"]
        assert set(defaults) == set(lp.TOOLS)
        assert all(spec == {"enabled": False} for spec in defaults.values())


@pytest.mark.parametrize("tier", ["dev", "qa", "live"])
def test_by_default_every_tool_is_off_and_its_endpoint_and_credentials_forced_empty(tier):
    result = policy(site(tier))
    assert result["problems"] == []
    config = result["config"]
    forced = config["forced_plugin_settings"]
    assert forced["plagiarism_turnitin"] == {
        "enabled": "0",
        "plagiarism_turnitin_accountid": "",
        "plagiarism_turnitin_secretkey": "",
        "plagiarism_turnitin_apiurl": "",
    }
    assert forced["plagiarism_turnitinsim"] == {"enabled": "0", "turnitinapiurl": "", "turnitinapikey": ""}
    assert forced["assignsubmission_maharaws"] == {
        "disabled": "1",
        "force_global_credentials": "1",
        "url": "",
        "key": "",
        "secret": "",
    }
    assert forced["enrol_database"] == {"dbhost": "", "dbuser": "", "dbpass": "", "dbname": ""}
    assert forced["auth_db"] == {"host": "", "user": "", "pass": "", "name": ""}
    assert forced["enrol_flatfile"] == {"location": ""}
    # BigBlueButton's settings are core settings ($CFG->bigbluebuttonbn_*)
    assert config["bigbluebuttonbn_server_url"] == "" and config["bigbluebuttonbn_shared_secret"] == ""
    assert "enableplagiarism" not in config  # the admin's own plagiarism plugins are not the policy's
    # what config.php cannot force: disabled through the plugin manager
    assert result["plugins"] == [
        {"component": c, "enabled": False}
        for c in ("mod_bigbluebuttonbn", "enrol_database", "auth_db", "enrol_flatfile")
    ]
    # empty secrets are compared as values (nothing to hide), and every one is read back
    expect = {(e["component"], e["name"]): e for e in result["expect"]}
    assert expect[("core", "bigbluebuttonbn_shared_secret")] == {
        "name": "bigbluebuttonbn_shared_secret",
        "component": "core",
        "wanted": "",
        "check": "equal",
    }
    assert expect[("enrol_database", "dbpass")]["check"] == "equal"
    assert expect[("mod_bigbluebuttonbn", lp.ENABLED)]["check"] == "plugin_enabled"
    assert expect[("mod_bigbluebuttonbn", lp.ENABLED)]["wanted"] == "0"


def test_qa_with_bigbluebutton_and_turnitin_sandbox():
    result = policy(site("qa", **tools(mod_bigbluebuttonbn=BBB_QA, plagiarism_turnitin=TII_QA)))
    assert result["problems"] == []
    config = result["config"]
    assert config["bigbluebuttonbn_server_url"] == "https://bbb-test.acme.example/bigbluebutton/"
    assert config["bigbluebuttonbn_shared_secret"] == "bbb-qa-s3cret"
    assert config["enableplagiarism"] is True  # Moodle loads no plagiarism plugin without it
    assert config["forced_plugin_settings"]["plagiarism_turnitin"] == {
        "enabled": "1",
        "plagiarism_turnitin_apiurl": "https://sandbox.turnitin.com",
        "plagiarism_turnitin_accountid": "90210",
        "plagiarism_turnitin_secretkey": "tii-qa-s3cret",
        "plagiarism_turnitin_mod_assign": "1",
    }
    assert {"component": "mod_bigbluebuttonbn", "enabled": True} in result["plugins"]
    assert {"component": "enrol_database", "enabled": False} in result["plugins"]
    expect = {(e["component"], e["name"]): e for e in result["expect"]}
    assert expect[("core", "bigbluebuttonbn_shared_secret")]["check"] == "secret"
    assert expect[("plagiarism_turnitin", "plagiarism_turnitin_secretkey")]["check"] == "secret"
    assert expect[("core", "enableplagiarism")]["wanted"] == "1"
    # the audit's table never shows a secret, whatever Moodle reports
    found = readback(result)
    for f in found:
        if f["name"] in ("bigbluebuttonbn_shared_secret", "plagiarism_turnitin_secretkey"):
            f["after"] = "bbb-qa-s3cret"
    table = "\n".join(
        lp.lms_policy_table(r)
        for r in lp.lms_policy_audit(result["expect"], found, "acme-qa", plugins_read(result))
    )
    assert "s3cret" not in table
    assert "acme-qa | bigbluebuttonbn_shared_secret | (secret, forced) | (set, forced) | ok" in table
    assert (
        "acme-qa | mod_bigbluebuttonbn (enabled) | enabled (plugin manager) | enabled (plugin manager) | ok"
        in table
    )


def test_integration_settings_merge_tier_default_and_site_setting_by_setting():
    tier_policy = copy.deepcopy(DEFAULTS["lms_tier_policy"])
    tier_policy["qa"]["lms_integrations"]["mod_bigbluebuttonbn"] = BBB_QA
    record = site(
        "qa",
        **tools(
            mod_bigbluebuttonbn={"settings": {"bigbluebuttonbn_server_url": "https://bbb2.acme.example/b"}}
        ),
    )
    result = lp.lms_policy(record, tier_policy, DEFAULTS["lms_tier_config"], ["dev", "qa"], ["dev"])
    assert result["problems"] == []
    assert result["config"]["bigbluebuttonbn_server_url"] == "https://bbb2.acme.example/b"
    assert result["config"]["bigbluebuttonbn_shared_secret"] == "bbb-qa-s3cret"
    off = site("qa", **tools(mod_bigbluebuttonbn={"enabled": False}))
    result = lp.lms_policy(off, tier_policy, DEFAULTS["lms_tier_config"], ["dev", "qa"], ["dev"])
    assert "is disabled but sets bigbluebuttonbn_server_url, bigbluebuttonbn_shared_secret" in "; ".join(
        result["problems"]
    )


def test_mahara_uses_the_sites_credentials_never_an_activitys():
    mahara = {
        "enabled": True,
        "settings": {"url": "https://mahara-test.acme.example", "key": "k1", "secret": "s1"},
    }
    forced = policy(site("qa", **tools(assignsubmission_maharaws=mahara)))["config"]["forced_plugin_settings"]
    assert forced["assignsubmission_maharaws"] == {
        "disabled": "0",
        "force_global_credentials": "1",
        "url": "https://mahara-test.acme.example",
        "key": "k1",
        "secret": "s1",
    }


@pytest.mark.parametrize(
    ("integrations", "message"),
    [
        ("x", "site acme-qa: lms_integrations must be {tool: {enabled: …, settings: …}}"),
        ({"plagiarism_urkund": {"enabled": False}}, "lms_integrations: unknown tool 'plagiarism_urkund'"),
        ({"mod_bigbluebuttonbn": True}, "lms_integrations.mod_bigbluebuttonbn must be {enabled: true|false"),
        ({"mod_bigbluebuttonbn": {"enabled": False, "url": "x"}}, "mod_bigbluebuttonbn must be {enabled"),
        ({"mod_bigbluebuttonbn": {"enabled": "yes"}}, "mod_bigbluebuttonbn.enabled must be true or false"),
        ({"mod_bigbluebuttonbn": {"enabled": False, "settings": []}}, "mod_bigbluebuttonbn.settings must be"),
        (
            {"enrol_flatfile": {"enabled": False, "settings": {"a b": 1}}},
            "settings: 'a b' is not a setting name",
        ),
        ({"enrol_flatfile": {"enabled": False, "settings": {"a": [1]}}}, "enrol_flatfile.settings.a must be"),
        (
            {"mod_bigbluebuttonbn": {"enabled": False, "settings": {"noemailever": 0}}},
            "mod_bigbluebuttonbn.settings.noemailever: BigBlueButton's settings are core settings named "
            "bigbluebuttonbn_*",
        ),
        (
            {"plagiarism_turnitin": {"enabled": False, "settings": {"enabled": 1}}},
            "lms_integrations.plagiarism_turnitin.settings.enabled is set by the tier policy itself",
        ),
        (
            {"assignsubmission_maharaws": {"enabled": False, "settings": {"force_global_credentials": 0}}},
            "assignsubmission_maharaws.settings.force_global_credentials is set by the tier policy itself",
        ),
        (
            {"plagiarism_turnitinsim": {"enabled": False, "settings": {"turnitin_webhook_id": "w"}}},
            "plagiarism_turnitinsim.settings.turnitin_webhook_id is written by the plugin itself",
        ),
        (
            {
                "plagiarism_turnitin": {
                    "enabled": True,
                    "settings": {"plagiarism_turnitin_apiurl": "https://sandbox.turnitin.com"},
                }
            },
            "site acme-qa: lms_integrations.plagiarism_turnitin is enabled but lacks "
            "plagiarism_turnitin_accountid, plagiarism_turnitin_secretkey (a tool is configured completely, "
            "or disabled)",
        ),
        (
            {"mod_bigbluebuttonbn": {"enabled": True, "settings": {"bigbluebuttonbn_server_url": ""}}},
            "mod_bigbluebuttonbn is enabled but lacks bigbluebuttonbn_server_url, "
            "bigbluebuttonbn_shared_secret",
        ),
        (
            {
                "enrol_database": {
                    "enabled": False,
                    "settings": {"dbhost": "sis.acme.example", "dbtype": "pgsql"},
                }
            },
            "site acme-qa: lms_integrations.enrol_database is disabled but sets dbhost: a disabled tool's "
            "endpoint and credentials are forced empty",
        ),
    ],
)
def test_bad_integrations_are_refused_naming_site_and_key(integrations, message):
    assert message in problems(site("qa", lms_integrations=integrations))


def test_a_malformed_tool_is_refused_without_showing_its_settings():
    bad = {"enabled": True, "settings": {"bigbluebuttonbn_shared_secret": "s3cret"}, "url": "x"}
    text = problems(site("qa", lms_integrations={"mod_bigbluebuttonbn": bad}))
    assert (
        "mod_bigbluebuttonbn must be {enabled: true|false, settings: {…}} (got keys enabled, settings, url)"
        in text
    )
    assert "s3cret" not in text
    text = problems(site("qa", lms_integrations=["s3cret"]))
    assert "(got list)" in text and "s3cret" not in text
    assert "s3cret" not in problems(
        site("qa", lms_integrations={"auth_db": {"enabled": False, "settings": "s3cret"}})
    )


def test_a_disabled_tool_may_keep_settings_that_are_not_endpoints_or_credentials():
    record = site("qa", **tools(enrol_database={"enabled": False, "settings": {"dbtype": "pgsql"}}))
    result = policy(record)
    assert result["problems"] == []
    assert result["config"]["forced_plugin_settings"]["enrol_database"]["dbtype"] == "pgsql"
    assert result["config"]["forced_plugin_settings"]["enrol_database"]["dbhost"] == ""


@pytest.mark.parametrize(
    ("tool", "spec"),
    [
        ("enrol_database", SIS_LIVE),
        (
            "auth_db",
            {"enabled": True, "settings": {"type": "pgsql", "host": "h", "name": "n", "table": "users"}},
        ),
        ("enrol_flatfile", {"enabled": True, "settings": {"location": "/srv/sis/enrolments.csv"}}),
    ],
)
def test_enrolment_and_user_sources_are_refused_on_dev_and_allowed_on_qa_and_live(tool, spec):
    text = problems(site("dev", lms_integrations={tool: spec}))
    assert (
        f"site acme-dev: lms_integrations.{tool} is refused on dev: it is a source of users or enrolments"
        in text
    )
    assert problems(site("qa", lms_integrations={tool: spec})) == ""
    assert problems(site("live", lms_integrations={tool: spec})) == ""


@pytest.mark.parametrize("tier", ["dev", "qa", "live"])
@pytest.mark.parametrize("host", ["test-install.blindsidenetworks.com", "test-moodle.blindsidenetworks.com"])
def test_the_old_public_bigbluebutton_test_server_is_refused_everywhere(tier, host):
    bbb = copy.deepcopy(BBB_QA)
    bbb["settings"]["bigbluebuttonbn_server_url"] = f"https://{host}/bigbluebutton/"
    text = problems(site(tier, lms_integrations={"mod_bigbluebuttonbn": bbb}))
    assert (
        f"site acme-{tier}: lms_integrations.mod_bigbluebuttonbn.settings.bigbluebuttonbn_server_url is "
        f"Blindside Networks' old public test server ({host}), which Moodle refuses" in text
    )


@pytest.mark.parametrize("url", ["https://api.turnitin.com", "https://API.turnitinuk.com/"])
def test_turnitin_production_is_refused_on_dev_and_qa_and_is_lives(url):
    tii = copy.deepcopy(TII_QA)
    tii["settings"]["plagiarism_turnitin_apiurl"] = url
    for tier in ("dev", "qa"):
        text = problems(site(tier, lms_integrations={"plagiarism_turnitin": tii}))
        assert (
            f"site acme-{tier}: lms_integrations.plagiarism_turnitin.settings.plagiarism_turnitin_apiurl is "
            f"Turnitin's production service ({url.split('/')[2].lower()}), refused on {tier}: use "
            "https://sandbox.turnitin.com with a sandbox account" in text
        )
    assert problems(site("live", lms_integrations={"plagiarism_turnitin": tii})) == ""
    assert (
        problems(site("dev", lms_integrations={"plagiarism_turnitin": TII_QA})) == ""
    )  # Dev may, with a sandbox


def live_site(**specs) -> dict:
    return site("live", lms_integrations=specs)


def test_qa_and_dev_may_not_connect_where_the_customers_live_does():
    bbb_live = copy.deepcopy(BBB_QA)
    bbb_live["settings"]["bigbluebuttonbn_server_url"] = "https://bbb.acme.example/bigbluebutton/"
    live = live_site(mod_bigbluebuttonbn=bbb_live, enrol_database=SIS_LIVE)
    same_host = copy.deepcopy(BBB_QA)
    same_host["settings"]["bigbluebuttonbn_server_url"] = "https://BBB.acme.example/other/"
    text = problems(site("qa", lms_integrations={"mod_bigbluebuttonbn": same_host}), live=live)
    assert (
        "site acme-qa: lms_integrations.mod_bigbluebuttonbn.settings bigbluebuttonbn_server_url points at "
        "bbb.acme.example, where acme-live connects: qa uses a sandbox or test instance of its own, "
        "never Live's" in text
    )
    assert "bbb-qa-s3cret" not in text
    assert problems(site("qa", lms_integrations={"mod_bigbluebuttonbn": BBB_QA}), live=live) == ""
    # the student records: the same database on the same server is Live's; a test copy is not
    sis = copy.deepcopy(SIS_LIVE)
    text = problems(site("qa", lms_integrations={"enrol_database": sis}), live=live)
    assert "lms_integrations.enrol_database.settings dbhost and dbname point at sis.acme.example/sis" in text
    sis["settings"]["dbname"] = "sis_test"
    assert problems(site("qa", lms_integrations={"enrol_database": sis}), live=live) == ""
    # Live's tool switched off: nothing of Live's to compare with
    off = live_site(mod_bigbluebuttonbn={"enabled": False})
    assert problems(site("qa", lms_integrations={"mod_bigbluebuttonbn": same_host}), live=off) == ""
    # Live compares with nobody
    assert problems(site("live", lms_integrations={"mod_bigbluebuttonbn": bbb_live}), live=live) == ""


def test_lives_endpoints_are_found_without_reading_its_secrets():
    class Secret:
        def __str__(self):
            raise AssertionError("a secret of Live's was read")

        __repr__ = __str__

    bbb_live = {
        "enabled": True,
        "settings": {
            "bigbluebuttonbn_server_url": "https://bbb.acme.example/b/",
            "bigbluebuttonbn_shared_secret": Secret(),
        },
    }
    live = live_site(mod_bigbluebuttonbn=bbb_live)
    assert lp._live_endpoints(live, DEFAULTS["lms_tier_policy"]) == {
        "mod_bigbluebuttonbn": ("bbb.acme.example",)
    }
    same = copy.deepcopy(BBB_QA)
    same["settings"]["bigbluebuttonbn_server_url"] = "https://bbb.acme.example/q/"
    assert "where acme-live connects" in problems(
        site("qa", lms_integrations={"mod_bigbluebuttonbn": same}), live=live
    )


def test_other_keys_may_not_set_what_lms_integrations_owns():
    text = problems(
        site("qa", lms_plugin_config={"plagiarism_turnitin": {"enabled": 1}, "theme_boost": {"a": 1}})
    )
    assert (
        "site acme-qa: lms_plugin_config sets plagiarism_turnitin, which the tier policy's "
        "lms_integrations owns" in text
    )
    text = problems(site("qa", lms_config={"bigbluebuttonbn_server_url": "https://x", "enableplagiarism": 1}))
    assert (
        "vars.lms_config sets bigbluebuttonbn_server_url, enableplagiarism, which the tier policy owns"
        in text
    )


# --------------------------------------------------------------------------------------------- debug


@pytest.mark.parametrize(
    ("site_vars", "tier_config", "source"),
    [
        ({"lms_debug": True}, None, "vars.lms_debug: true"),
        ({"lms_debug": "yes"}, None, "vars.lms_debug: true"),
        ({"lms_config": {"debugdisplay": 1}}, None, "vars.lms_config.debugdisplay"),
        ({"lms_config": {"debugdisplay": "true"}}, None, "vars.lms_config.debugdisplay"),
        ({}, {"live": {"debug": 32767, "debugdisplay": True}}, "lms_tier_config.live"),
    ],
)
def test_debugdisplay_on_live_is_refused_whoever_sets_it(site_vars, tier_config, source):
    result = lp.lms_policy(
        site("live", **site_vars),
        DEFAULTS["lms_tier_policy"],
        tier_config or DEFAULTS["lms_tier_config"],
        ["dev", "qa"],
        ["dev"],
    )
    assert (
        f"site acme-live: debugdisplay is refused on live (Live never displays debug output), set by {source}"
        in "; ".join(result["problems"])
    )
    assert result["config"]["debugdisplay"] == 0


def test_live_forces_debugdisplay_off_even_without_a_tier_setting_and_others_may_show_it():
    result = lp.lms_policy(site("live"), DEFAULTS["lms_tier_policy"], {}, ["dev", "qa"], ["dev"])
    assert result["problems"] == [] and result["config"]["debugdisplay"] == 0
    assert {"name": "debugdisplay", "component": "core", "wanted": "0", "check": "equal"} in result["expect"]
    assert result["config"].get("debug") is None  # debug itself is not the policy's on Live
    for record in (site("live", lms_debug=False), site("live", lms_config={"debugdisplay": 0})):
        assert policy(record)["problems"] == []
    qa = policy(site("qa", lms_config={"debugdisplay": 1}))
    assert qa["problems"] == [] and qa["config"]["debugdisplay"] == 1


# ---------------------------------------------------------------------------------------------- audit


def readback(result: dict, **changes) -> list[dict]:
    """What lms_config's read reports for a site whose config.php is the policy's: forced values."""
    found = []
    for e in result["expect"]:
        if e["check"] == "plugin_enabled":
            continue
        value = e["wanted"] if e["check"] != "secret" else "********"
        found.append(
            {
                "name": e["name"],
                "component": e["component"],
                "after": value,
                "forced": e["check"] != "no_banner",
            }
        )
    for key, (value, forced) in changes.items():
        for f in found:
            if f["name"] == key:
                f.update(after=value, forced=forced)
    return found


def plugins_read(result: dict, **changes) -> list[dict]:
    """What lms_plugin's read reports for a site whose plugins are as the policy wants."""
    found = [
        {"component": p["component"], "installed": True, "before": p["enabled"], "after": p["enabled"]}
        for p in result["plugins"]
    ]
    for component, change in changes.items():
        for f in found:
            if f["component"] == component:
                f.update(change)
    return found


def test_audit_all_ok_when_moodle_reports_the_forced_values():
    for tier in ("dev", "qa", "live"):
        result = policy(site(tier, lms_plugin_config={"tool_x": {"a": True}}))
        rows = lp.lms_policy_audit(result["expect"], readback(result), f"acme-{tier}", plugins_read(result))
        assert rows and all(r["ok"] for r in rows), rows
        settings = {r["setting"] for r in rows}
        assert {
            "debug",
            "debugdisplay",
            "preventexecpath",
            "disableupdateautodeploy",
            "uninstallclionly",
        } <= settings
        assert "additionalhtmltopofbody" in settings and "tool_x/a" in settings
        assert ("noemailever" in settings) == (tier != "live")
        assert {"cron_enabled", "cronclionly"} <= settings


def test_audit_reports_a_changed_value_an_unforced_one_and_a_banner_on_live():
    dev = policy(site("dev"))
    rows = lp.lms_policy_audit(
        dev["expect"],
        readback(dev, noemailever=(None, False), debug=("0", True)),
        "acme-dev",
        plugins_read(dev),
    )
    drift = {r["setting"]: r for r in rows if not r["ok"]}
    assert set(drift) == {"noemailever", "debug"}
    assert (
        drift["noemailever"]["wanted"] == "1 (forced)"
        and drift["noemailever"]["found"] == "unset (not forced)"
    )
    assert drift["debug"]["found"] == "0 (forced)"
    same_value_not_forced = lp.lms_policy_audit(
        dev["expect"], readback(dev, uninstallclionly=("1", False)), "acme-dev", plugins_read(dev)
    )
    assert [r["setting"] for r in same_value_not_forced if not r["ok"]] == ["uninstallclionly"]
    live = policy(site("live"))
    banner = lp.banner_html("DEV", "#000")
    rows = lp.lms_policy_audit(
        live["expect"],
        readback(live, additionalhtmltopofbody=(banner, False)),
        "acme-live",
        plugins_read(live),
    )
    assert [(r["setting"], r["found"]) for r in rows if not r["ok"]] == [
        ("additionalhtmltopofbody", "banner")
    ]
    assert "acme-live | additionalhtmltopofbody | no environment banner | banner | DRIFT" in [
        lp.lms_policy_table(r) for r in rows
    ]


def test_audit_reports_settings_moodle_did_not_return():
    dev = policy(site("dev"))
    rows = lp.lms_policy_audit(dev["expect"], [], "acme-dev")
    assert rows and not any(r["ok"] for r in rows)
    assert rows[0]["found"] == "(not read)"


def test_audit_reports_a_plugin_the_plugin_manager_has_in_another_state():
    dev = policy(site("dev"))
    rows = lp.lms_policy_audit(
        dev["expect"],
        readback(dev),
        "acme-dev",
        plugins_read(
            dev, mod_bigbluebuttonbn={"after": True}, enrol_flatfile={"installed": False, "after": None}
        ),
    )
    drift = [lp.lms_policy_table(r) for r in rows if not r["ok"]]
    assert drift == [
        "acme-dev | mod_bigbluebuttonbn (enabled) | disabled (plugin manager) | enabled (plugin manager) "
        "| DRIFT"
    ]
    assert (
        "acme-dev | enrol_flatfile (enabled) | disabled (plugin manager) | not installed (plugin manager) "
        "| ok" in [lp.lms_policy_table(r) for r in rows]
    )
    qa = policy(site("qa", **tools(mod_bigbluebuttonbn=BBB_QA)))
    rows = lp.lms_policy_audit(
        qa["expect"],
        readback(qa),
        "acme-qa",
        plugins_read(qa, mod_bigbluebuttonbn={"installed": False, "after": None}),
    )
    assert [lp.lms_policy_table(r) for r in rows if not r["ok"]] == [
        "acme-qa | mod_bigbluebuttonbn (enabled) | enabled (plugin manager) | not installed (plugin manager) "
        "| DRIFT"
    ]
    unread = lp.lms_policy_audit(qa["expect"], readback(qa), "acme-qa")
    assert {r["found"] for r in unread if not r["ok"]} == {"(not read)"}


def test_audit_reports_an_integration_setting_changed_in_config_php():
    qa = policy(site("qa", **tools(plagiarism_turnitin=TII_QA)))
    found = readback(qa)
    for f in found:
        if f["name"] == "plagiarism_turnitin_apiurl":
            f["after"] = "https://api.turnitin.com"
    rows = lp.lms_policy_audit(qa["expect"], found, "acme-qa", plugins_read(qa))
    assert [lp.lms_policy_table(r) for r in rows if not r["ok"]] == [
        "acme-qa | plagiarism_turnitin/plagiarism_turnitin_apiurl | https://sandbox.turnitin.com (forced) | "
        "https://api.turnitin.com (forced) | DRIFT"
    ]


def test_moodle_value_is_what_get_config_gives():
    assert [lp.moodle_value(v) for v in (True, False, None, 0, 32767, 1.0, "x", "")] == [
        "1",
        "",
        None,
        "0",
        "32767",
        "1",
        "x",
        "",
    ]


# ------------------------------------------------------------------------------- the repo's estates


def estate_sites(name: str) -> list[dict]:
    data = yaml.safe_load((REPO / f"inventories/{name}/estate.yml").read_text())
    data.pop("plugin")
    inv = build_inventory(parse_estate(data, name))
    sites = {s["name"]: s for host in inv.hosts.values() for s in host["vars"].get("estate_sites", [])}
    return list(sites.values())


@pytest.mark.parametrize("estate", ["local", "example"])
def test_the_repos_estates_are_valid_and_dev_and_qa_never_deliver(estate):
    sites = estate_sites(estate)
    assert sites
    by_name = {s["name"]: s for s in sites}
    for record in sites:
        result = policy(record, live=by_name.get(f"{record['customer']}-live"))
        assert result["problems"] == [], result["problems"]
        config = result["config"]
        if record["tier"] in ("dev", "qa"):
            assert config.get("noemailever") is True or config.get("divertallemailsto"), record["name"]
            # a relay only where every mail is diverted
            assert "smtphosts" not in config or config.get("divertallemailsto"), record["name"]


def test_the_example_estate_shows_a_qa_divert_and_live_smtp():
    sites = {s["name"]: s for s in estate_sites("example")}
    acme_qa = policy(sites["acme-qa"])["config"]
    assert acme_qa["divertallemailsto"] == "lms-qa@acme.example" and "noemailever" not in acme_qa
    assert policy(sites["globex-qa"])["config"]["noemailever"] is True
    live = policy(sites["acme-live"])["config"]
    assert live["smtphosts"] == "smtp.provider.example:587" and live["smtpsecure"] == "tls"
    assert own_plugins(policy(sites["globex-dev"])["config"]) == {"theme_boost": {"brandcolor": "#00539b"}}


def test_the_example_estate_has_a_customer_whose_qa_has_bbb_and_turnitin_sandbox_and_dev_none():
    sites = {s["name"]: s for s in estate_sites("example")}
    qa = policy(sites["acme-qa"], live=sites["acme-live"])
    assert qa["problems"] == []
    config = qa["config"]
    assert config["bigbluebuttonbn_server_url"] == "https://bbb-test.acme.example/bigbluebutton/"
    # secrets are references to Vault variables, never in the estate file
    assert config["bigbluebuttonbn_shared_secret"] == "{{ vault_acme_qa_bbb_shared_secret }}"
    tii = config["forced_plugin_settings"]["plagiarism_turnitin"]
    assert tii["enabled"] == "1" and tii["plagiarism_turnitin_apiurl"] == "https://sandbox.turnitin.com"
    assert tii["plagiarism_turnitin_secretkey"].startswith("{{ vault_")
    assert config["forced_plugin_settings"]["enrol_database"]["dbhost"] == "sis-test.acme.example"
    assert {"component": "mod_bigbluebuttonbn", "enabled": True} in qa["plugins"]
    dev = policy(sites["acme-dev"], live=sites["acme-live"])
    assert dev["problems"] == []
    assert dev["config"]["bigbluebuttonbn_server_url"] == ""
    assert dev["config"]["forced_plugin_settings"]["plagiarism_turnitin"]["enabled"] == "0"
    assert dev["config"]["forced_plugin_settings"]["enrol_database"]["dbhost"] == ""
    assert all(not p["enabled"] for p in dev["plugins"])
    live = policy(sites["acme-live"])["config"]
    assert live["forced_plugin_settings"]["plagiarism_turnitin"]["plagiarism_turnitin_apiurl"] == (
        "https://api.turnitinuk.com"
    )
    # QA pointed at Live's student records would be refused
    wrong = copy.deepcopy(sites["acme-qa"])
    wrong["vars"]["lms_integrations"]["enrol_database"]["settings"].update(
        dbhost="sis.acme.example", dbname="sis"
    )
    assert "where acme-live connects" in "; ".join(policy(wrong, live=sites["acme-live"])["problems"])


# ------------------------------------------------------------------------------------------- identity


def test_each_site_must_have_an_identity_of_its_own():
    ids = {"acme-dev": "a1", "acme-qa": "b2", "acme-live": "b2", "globex-qa": None}
    rows = lp.lms_policy_identities(ids, ["acme-dev", "acme-qa", "acme-live", "globex-qa"])
    assert [lp.lms_policy_table(r) for r in rows] == [
        "acme-dev | siteidentifier | its own in the estate | its own | ok",
        "acme-qa | siteidentifier | its own in the estate | shared with acme-live | DRIFT",
        "acme-live | siteidentifier | its own in the estate | shared with acme-qa | DRIFT",
        "globex-qa | siteidentifier | its own in the estate | not set | DRIFT",
    ]
    # the identifier itself is never shown
    assert not any("b2" in lp.lms_policy_table(r) for r in rows)
    # a host reports its own sites; a site it does not serve gets no row here
    assert lp.lms_policy_identities(ids, ["acme-dev"]) == rows[:1]
    assert lp.lms_policy_identities({}, ["acme-dev"])[0]["found"] == "not set"

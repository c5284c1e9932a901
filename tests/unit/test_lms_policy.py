"""plugins/filter/lms_policy.py: the tier policy (mail, banner, security, forced plugin settings) that
the lms role writes into config.php and playbooks/audit.yml reads back; its refusals; the audit's
comparison. The role's own defaults (roles/lms/defaults/main.yml) are the ones tested here.
tests/integration/test_tier_policy.py shows the same settings in a real Moodle."""

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


def policy(record: dict, no_mail=None, no_except=None) -> dict:
    return lp.lms_policy(
        record,
        DEFAULTS["lms_tier_policy"],
        DEFAULTS["lms_tier_config"],
        DEFAULTS["lms_no_mail_tiers"] if no_mail is None else no_mail,
        DEFAULTS["lms_no_mail_except_tiers"] if no_except is None else no_except,
    )


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
    assert "forced_plugin_settings" not in config


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
    config = policy(site("live", lms_debug=True, lms_config={"theme": "boost"}))["config"]
    assert config["debug"] == 32767 and config["theme"] == "boost"
    assert policy(site("dev", lms_debug=False))["config"]["debug"] == 0


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
    rows = lp.lms_policy_audit(qa["expect"], readback(qa, cron_enabled=("1", False)), "acme-qa")
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
    assert result["config"]["forced_plugin_settings"] == {
        "tool_recyclebin": {"coursebinenable": "0", "categorybinenable": "0"},
        "theme_boost": {"brandcolor": "#00539b"},
    }
    labels = [e["component"] + "/" + e["name"] for e in result["expect"] if e["component"] != "core"]
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


# ---------------------------------------------------------------------------------------------- audit


def readback(result: dict, **changes) -> list[dict]:
    """What lms_config's read reports for a site whose config.php is the policy's: forced values."""
    found = []
    for e in result["expect"]:
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


def test_audit_all_ok_when_moodle_reports_the_forced_values():
    for tier in ("dev", "qa", "live"):
        result = policy(site(tier, lms_plugin_config={"tool_x": {"a": True}}))
        rows = lp.lms_policy_audit(result["expect"], readback(result), f"acme-{tier}")
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
        dev["expect"], readback(dev, noemailever=(None, False), debug=("0", True)), "acme-dev"
    )
    drift = {r["setting"]: r for r in rows if not r["ok"]}
    assert set(drift) == {"noemailever", "debug"}
    assert (
        drift["noemailever"]["wanted"] == "1 (forced)"
        and drift["noemailever"]["found"] == "unset (not forced)"
    )
    assert drift["debug"]["found"] == "0 (forced)"
    same_value_not_forced = lp.lms_policy_audit(
        dev["expect"], readback(dev, uninstallclionly=("1", False)), "acme-dev"
    )
    assert [r["setting"] for r in same_value_not_forced if not r["ok"]] == ["uninstallclionly"]
    live = policy(site("live"))
    banner = lp.banner_html("DEV", "#000")
    rows = lp.lms_policy_audit(
        live["expect"], readback(live, additionalhtmltopofbody=(banner, False)), "acme-live"
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
    for record in sites:
        result = policy(record)
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
    assert policy(sites["globex-dev"])["config"]["forced_plugin_settings"] == {
        "theme_boost": {"brandcolor": "#00539b"}
    }

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tier policy as code (DESIGN rule 11): what a site's ``config.php`` forces, computed in one place.

* ``site | lms_policy(tier_policy, tier_config, no_mail_tiers, no_except_tiers)`` -> ``{policy,
  config, expect, problems}``: the site's policy keys (tier defaults < the site's ``vars``), the
  ``$CFG`` settings the lms role writes into ``config.php``, what the audit must read back from
  Moodle, and what is wrong (the role refuses a site with problems before anything changes).
* ``expect | lms_policy_audit(found, site)`` -> rows ``{site, setting, wanted, found, ok}``: the
  audit's comparison of the expectations with what Moodle reports (``lms_config``'s ``read``).

Standard library only: unit-tested in tests/unit/test_lms_policy.py.
"""

from __future__ import annotations

import html
import re

MAIL_MODES = ("off", "divert", "deliver")
# DESIGN rule 6: Dev and QA never send mail to real people, whatever lms_no_mail_tiers says.
ALWAYS_NO_MAIL = ("dev", "qa")
TIERS = ("dev", "qa", "live")
POLICY_KEYS = (
    "lms_mail",
    "lms_mail_divert_to",
    "lms_mail_divert_except",
    "lms_smtp_host",
    "lms_smtp_user",
    "lms_smtp_password",
    "lms_smtp_secure",
    "lms_cron",
    "lms_banner",
    "lms_banner_colour",
    "lms_plugin_config",
)
# $CFG settings the policy owns: vars.lms_config may not set them (it would be overwritten).
OWNED = (
    "noemailever",
    "divertallemailsto",
    "divertallemailsexcept",
    "smtphosts",
    "smtpuser",
    "smtppass",
    "smtpsecure",
    "cron_enabled",
    "cronclionly",
    "additionalhtmltopofbody",
    "preventexecpath",
    "disableupdateautodeploy",
    "uninstallclionly",
    "forced_plugin_settings",
)
SECURITY = {"preventexecpath": True, "disableupdateautodeploy": True, "uninstallclionly": True}
BANNER_CLASS = "three-instance-banner"
COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$")
COMPONENT = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z][a-z0-9]*$")
SETTING = re.compile(r"^[a-zA-Z0-9_]+$")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")
SECRET = re.compile(r"pass|secret|token|key$|apikey", re.IGNORECASE)


def moodle_value(value) -> str | None:
    """What Moodle's get_config() gives back (as lms_config reports it) for a value in config.php:
    true -> '1', false -> '' (measured with Moodle 5.1), numbers as text, strings as they are."""
    if value is None:
        return None
    if value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def setting_text(value) -> str:
    """A plugin setting as Moodle stores it: a string (booleans 1/0)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def banner_html(text: str, colour: str) -> str:
    return (
        f'<div class="{BANNER_CLASS}" style="background:{colour};color:#fff;padding:6px 12px;'
        f'text-align:center;font-weight:bold;">{html.escape(text)}</div>'
    )


def _mail_mode(value) -> str:
    # YAML 1.1 reads an unquoted `off` as false: both mean off.
    if value is False:
        return "off"
    return str(value)


def _policy(site: dict, tier_policy: dict) -> dict:
    tier = site.get("tier") or "live"
    defaults = dict(tier_policy.get(tier) or {})
    site_vars = site.get("vars") or {}
    policy = {key: defaults.get(key) for key in POLICY_KEYS}
    for key in POLICY_KEYS:
        if key in site_vars and key != "lms_plugin_config":
            policy[key] = site_vars[key]
    plugins = {}
    for source in (defaults.get("lms_plugin_config") or {}, site_vars.get("lms_plugin_config") or {}):
        if not isinstance(source, dict):
            plugins = source  # reported as a problem below
            break
        for component, settings in source.items():
            if isinstance(settings, dict) and isinstance(plugins.get(component), dict):
                plugins[component] = {**plugins[component], **settings}
            else:
                plugins[component] = settings
    policy["lms_plugin_config"] = plugins
    policy["lms_mail"] = _mail_mode(policy["lms_mail"] if policy["lms_mail"] is not None else "off")
    return policy


def _problems(site: dict, tier: str, policy: dict, no_mail: set, no_except: set) -> list[str]:
    name = site.get("name", "?")
    out = []
    say = out.append
    mode = policy["lms_mail"]
    if tier not in TIERS:
        say(f"site {name}: unknown tier {tier!r} (tiers are {', '.join(TIERS)})")
    if mode not in MAIL_MODES:
        say(f"site {name}: lms_mail {mode!r} is not one of {', '.join(MAIL_MODES)}")
    if mode == "deliver" and tier in no_mail:
        say(
            f"site {name}: lms_mail deliver is refused on {tier} (Dev and QA never send mail to real people, "
            "DESIGN rule 6): use off, or divert with lms_mail_divert_to"
        )
    if mode == "divert":
        divert_to = policy["lms_mail_divert_to"]
        if not isinstance(divert_to, str) or not EMAIL.match(divert_to):
            say(
                f"site {name}: lms_mail divert needs lms_mail_divert_to, one mail address (got {divert_to!r})"
            )
    except_list = policy["lms_mail_divert_except"]
    if except_list not in (None, "", []):
        if tier in no_except:
            say(
                f"site {name}: lms_mail_divert_except is refused on {tier}: its diverted mail goes to "
                "lms_mail_divert_to only"
            )
        elif not isinstance(except_list, list) or not all(
            isinstance(p, str) and p and not re.search(r"[\s,]", p) for p in except_list
        ):
            say(
                f"site {name}: lms_mail_divert_except must be a list of patterns without spaces or commas "
                f"(got {except_list!r})"
            )
    if mode in ("deliver", "divert") and policy["lms_smtp_secure"] not in (None, "", "ssl", "tls"):
        say(f"site {name}: lms_smtp_secure must be '', ssl or tls (got {policy['lms_smtp_secure']!r})")
    banner = policy["lms_banner"]
    if banner not in (None, ""):
        if tier == "live":
            say(f"site {name}: lms_banner is refused on live (a Live site shows no environment banner)")
        elif not isinstance(banner, str):
            say(f"site {name}: lms_banner must be text (got {banner!r})")
        colour = policy["lms_banner_colour"]
        if not isinstance(colour, str) or not COLOUR.match(colour):
            say(f"site {name}: lms_banner_colour must be #rgb, #rrggbb or a colour name (got {colour!r})")
    plugins = policy["lms_plugin_config"]
    if not isinstance(plugins, dict):
        say(f"site {name}: lms_plugin_config must be {{component: {{setting: value}}}} (got {plugins!r})")
    else:
        for component, settings in plugins.items():
            if not isinstance(component, str) or not COMPONENT.match(component):
                say(f"site {name}: lms_plugin_config: {component!r} is not a plugin component name")
            elif not isinstance(settings, dict):
                say(
                    f"site {name}: lms_plugin_config.{component} must be {{setting: value}} "
                    f"(got {settings!r})"
                )
            else:
                for key, value in settings.items():
                    if not isinstance(key, str) or not SETTING.match(key):
                        say(f"site {name}: lms_plugin_config.{component}: {key!r} is not a setting name")
                    elif not isinstance(value, (str, int, float, bool)):
                        say(
                            f"site {name}: lms_plugin_config.{component}.{key} must be a string, "
                            "number or boolean"
                        )
    owned = sorted(set((site.get("vars") or {}).get("lms_config") or {}) & set(OWNED))
    if owned:
        say(
            f"site {name}: vars.lms_config sets {', '.join(owned)}, which the tier policy owns: "
            "use lms_mail, lms_smtp_*, lms_cron, lms_banner, lms_plugin_config (docs/tier-policy.md)"
        )
    return out


def _cron(policy: dict, name: str) -> tuple[dict, list[str]]:
    """lms_cron (default true) -> the forced cron settings, or a problem. ``cron_enabled`` is what
    admin/cli/cron.php (and adhoc_task.php, scheduled_task.php) check; forced, neither the admin UI
    nor ``cron.php --enable/--disable`` can change what Moodle reads. ``cronclionly`` is forced on
    every tier: admin/cron.php over the web runs tasks without looking at ``cron_enabled``.
    Sets ``policy['lms_cron']`` to a boolean (the role stops the site's cron timer when false)."""
    value = policy.get("lms_cron")
    text = str(value).lower()
    if value is None or value is True or text in ("true", "yes", "on", "1"):
        on = True
    elif value is False or text in ("false", "no", "off", "0"):
        on = False
    else:
        return {}, [f"site {name}: lms_cron must be true or false (got {value!r})"]
    policy["lms_cron"] = on
    return {"cron_enabled": 1 if on else 0, "cronclionly": True}, []


def lms_policy(site, tier_policy=None, tier_config=None, no_mail_tiers=None, no_except_tiers=None) -> dict:
    """The tier policy of one site (an estate site record): ``{policy, config, expect, problems}``."""
    tier_policy = tier_policy or {}
    tier_config = tier_config or {}
    tier = site.get("tier") or "live"
    site_vars = site.get("vars") or {}
    no_mail = set(no_mail_tiers or ()) | set(ALWAYS_NO_MAIL)
    no_except = set(["dev"] if no_except_tiers is None else no_except_tiers)
    policy = _policy(site, tier_policy)
    problems = _problems(site, tier, policy, no_mail, no_except)
    cron_config, cron_problems = _cron(policy, site.get("name", "?"))
    problems += cron_problems

    config = dict(tier_config.get(tier) or {})
    debug = site_vars.get("lms_debug")
    if debug is not None:
        on = debug if isinstance(debug, bool) else str(debug).lower() in ("1", "true", "yes", "on")
        config.update({"debug": 32767, "debugdisplay": 1} if on else {"debug": 0, "debugdisplay": 0})
    config.update({k: v for k, v in (site_vars.get("lms_config") or {}).items() if k not in OWNED})

    policy_config = dict(SECURITY)
    policy_config.update(cron_config)
    mode = policy["lms_mail"]
    if mode == "off":
        policy_config["noemailever"] = True
    elif mode == "divert":
        policy_config["divertallemailsto"] = policy["lms_mail_divert_to"] or ""
        except_list = policy["lms_mail_divert_except"]
        policy_config["divertallemailsexcept"] = (
            "\n".join(except_list) if isinstance(except_list, list) and tier not in no_except else ""
        )
    elif mode == "deliver":
        policy_config["divertallemailsto"] = ""
    if mode in ("deliver", "divert") and policy["lms_smtp_host"]:
        # the relay that carries Live's mail, or a diverting site's mail to its mailbox
        policy_config["smtphosts"] = str(policy["lms_smtp_host"])
        policy_config["smtpsecure"] = policy["lms_smtp_secure"] or ""
        if policy["lms_smtp_user"]:
            policy_config["smtpuser"] = str(policy["lms_smtp_user"])
        if policy["lms_smtp_password"]:
            policy_config["smtppass"] = str(policy["lms_smtp_password"])
    if policy["lms_banner"] and tier != "live":
        policy_config["additionalhtmltopofbody"] = banner_html(
            str(policy["lms_banner"]), str(policy["lms_banner_colour"] or "#b00020")
        )
    plugins = policy["lms_plugin_config"] if isinstance(policy["lms_plugin_config"], dict) else {}
    forced = {
        component: {key: setting_text(value) for key, value in settings.items()}
        for component, settings in plugins.items()
        if isinstance(settings, dict) and settings
    }
    if forced:
        policy_config["forced_plugin_settings"] = forced
    config.update(policy_config)

    expect = []
    for key in ("debug", "debugdisplay"):
        if key in config:
            expect.append(
                {"name": key, "component": "core", "wanted": moodle_value(config[key]), "check": "equal"}
            )
    for key, value in policy_config.items():
        if key == "forced_plugin_settings":
            continue
        check = "secret" if SECRET.search(key) else "equal"
        expect.append({"name": key, "component": "core", "wanted": moodle_value(value), "check": check})
    if "additionalhtmltopofbody" not in policy_config:
        expect.append(
            {"name": "additionalhtmltopofbody", "component": "core", "wanted": None, "check": "no_banner"}
        )
    for component, settings in sorted(forced.items()):
        for key, value in sorted(settings.items()):
            check = "secret" if SECRET.search(key) else "equal"
            expect.append({"name": key, "component": component, "wanted": value, "check": check})
    return {"policy": policy, "config": config, "expect": expect, "problems": problems}


def _label(item: dict) -> str:
    component = item.get("component") or "core"
    return item["name"] if component == "core" else f"{component}/{item['name']}"


def lms_policy_audit(expect, found, site: str = "?") -> list[dict]:
    """Compare expectations (lms_policy's ``expect``) with settings read from Moodle (lms_config's
    ``settings``: name, component, after/before, forced), in order. A row is ok when the value is
    the wanted one and config.php forces it; ``no_banner``: no three-instance banner in the value;
    ``secret``: set and forced (the value itself is never shown or compared here)."""
    by_key = {(f.get("component") or "core", f["name"]): f for f in found or []}
    rows = []
    for item in expect:
        have = by_key.get((item.get("component") or "core", item["name"]))
        value = None if have is None else have.get("after", have.get("before"))
        forced = bool(have and have.get("forced"))
        if item["check"] == "no_banner":
            ok = have is not None and BANNER_CLASS not in (value or "")
            wanted, shown = "no environment banner", ("banner" if BANNER_CLASS in (value or "") else "none")
        elif item["check"] == "secret":
            ok = have is not None and forced and value not in (None, "")
            wanted, shown = (
                "(secret, forced)",
                ("(set" if value else "(unset") + (", forced)" if forced else ")"),
            )
        else:
            ok = have is not None and forced and value == item["wanted"]
            wanted = _show(item["wanted"]) + " (forced)"
            shown = (
                "(not read)" if have is None else _show(value) + (" (forced)" if forced else " (not forced)")
            )
        rows.append({"site": site, "setting": _label(item), "wanted": wanted, "found": shown, "ok": ok})
    return rows


def _show(value) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "''"
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def lms_policy_table(row: dict) -> str:
    """One audit row as a line of the table: site | setting | wanted | found | ok/DRIFT."""
    return " | ".join(
        [row["site"], row["setting"], row["wanted"], row["found"], "ok" if row["ok"] else "DRIFT"]
    )


class FilterModule:
    def filters(self):
        return {
            "lms_policy": lms_policy,
            "lms_policy_audit": lms_policy_audit,
            "lms_policy_table": lms_policy_table,
        }

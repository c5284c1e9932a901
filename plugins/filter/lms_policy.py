# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tier policy as code (DESIGN rule 11): what a site's ``config.php`` forces, computed in one place.

* ``site | lms_policy(tier_policy, tier_config, no_mail_tiers, no_except_tiers)`` -> ``{policy,
  config, expect, problems}``: the site's policy keys (tier defaults < the site's ``vars``), the
  ``$CFG`` settings the lms role writes into ``config.php``, what the audit must read back from
  Moodle, and what is wrong (the role refuses a site with problems before anything changes).
  With ``live_site`` (the customer's Live site record, when the inventory holds it) Dev and QA
  integrations are compared with Live's endpoints. ``plugins`` lists the plugins whose enabled
  state lives in Moodle's database, not in config.php (``{component, enabled}``): the role sets
  them through Moodle's plugin manager (``lms_plugin``) and the audit reads them back.
* ``expect | lms_policy_audit(found, site, plugins)`` -> rows ``{site, setting, wanted, found, ok}``:
  the audit's comparison of the expectations with what Moodle reports (``lms_config``'s ``read``,
  ``lms_plugin``'s ``read``).

Standard library only: unit-tested in tests/unit/test_lms_policy.py.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

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
    "lms_integrations",
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
    "enableplagiarism",
)
SECURITY = {"preventexecpath": True, "disableupdateautodeploy": True, "uninstallclionly": True}
BANNER_CLASS = "three-instance-banner"
COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$")
COMPONENT = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z][a-z0-9]*$")
SETTING = re.compile(r"^[a-zA-Z0-9_]+$")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")
SECRET = re.compile(r"pass|secret|token|key$|apikey", re.IGNORECASE)

# Third-party tools per customer and tier (lms_integrations; docs/tier-policy.md, "Integrations").
# Each is keyed by its Moodle component and says how Moodle stores it (measured with Moodle 5.1
# and each plugin's own code):
#   core: its settings are core $CFG settings with this prefix (config.php: $CFG->name), else
#         the component's own (config.php: $CFG->forced_plugin_settings[component]);
#   required: what an enabled tool must set (a tool is configured completely or disabled);
#   cleared: forced to '' when the tool is disabled (no endpoint, no credentials: nothing of
#         Live's survives in a QA copy of Live's database);
#   switch: forced settings that say on/off ({name: (on, off)});
#   fixed: forced whatever the state; plagiarism: core enableplagiarism is forced on with it;
#   plugin_state: enabled in Moodle's database only (modules.visible, enrol_plugins_enabled,
#         auth): the role sets it through the plugin manager, the audit reads it back;
#   endpoint: the settings that name where it connects, compared with the customer's Live;
#   production_hosts: refused on Dev and QA; refused_hosts: refused on every tier;
#   enrolment: a source of users or enrolments (refused on Dev);
#   plugin_owned: settings the plugin writes itself (never forced).
TOOLS = {
    "plagiarism_turnitin": {
        "title": "Turnitin",
        "required": (
            "plagiarism_turnitin_accountid",
            "plagiarism_turnitin_secretkey",
            "plagiarism_turnitin_apiurl",
        ),
        "cleared": (
            "plagiarism_turnitin_accountid",
            "plagiarism_turnitin_secretkey",
            "plagiarism_turnitin_apiurl",
        ),
        "switch": {"enabled": ("1", "0")},
        "plagiarism": True,
        "endpoint": ("plagiarism_turnitin_apiurl",),
        "production_hosts": ("api.turnitin.com", "api.turnitinuk.com"),
        "sandbox": "https://sandbox.turnitin.com with a sandbox account",
    },
    "plagiarism_turnitinsim": {
        "title": "Turnitin Integrity (TCA)",
        "required": ("turnitinapiurl", "turnitinapikey"),
        "cleared": ("turnitinapiurl", "turnitinapikey"),
        "switch": {"enabled": ("1", "0")},
        "plagiarism": True,
        "endpoint": ("turnitinapiurl",),
        "plugin_owned": ("turnitin_webhook_id", "turnitin_webhook_secret"),
    },
    "mod_bigbluebuttonbn": {
        "title": "BigBlueButton",
        "core": "bigbluebuttonbn_",
        "required": ("bigbluebuttonbn_server_url", "bigbluebuttonbn_shared_secret"),
        "cleared": ("bigbluebuttonbn_server_url", "bigbluebuttonbn_shared_secret"),
        "plugin_state": True,
        "endpoint": ("bigbluebuttonbn_server_url",),
        # mod_bigbluebuttonbn\local\config::server_credentials_invalid() flags both
        "refused_hosts": ("test-install.blindsidenetworks.com", "test-moodle.blindsidenetworks.com"),
    },
    "assignsubmission_maharaws": {
        "title": "Mahara (web services)",
        "required": ("url", "key", "secret"),
        "cleared": ("url", "key", "secret"),
        # assign's is_visible() reads 'disabled' through get_config(), which config.php forces
        "switch": {"disabled": ("0", "1")},
        # the site's url/key/secret, never an activity's own (a copy of Live holds Live's)
        "fixed": {"force_global_credentials": "1"},
        "endpoint": ("url",),
    },
    "enrol_database": {
        "title": "External database enrolment",
        "required": ("dbtype", "dbhost", "dbname"),
        "cleared": ("dbhost", "dbuser", "dbpass", "dbname"),
        "plugin_state": True,
        "endpoint": ("dbhost", "dbname"),
        "enrolment": True,
    },
    "auth_db": {
        "title": "External database authentication",
        "required": ("type", "host", "name", "table"),
        "cleared": ("host", "user", "pass", "name"),
        "plugin_state": True,
        "endpoint": ("host", "name"),
        "enrolment": True,
    },
    "enrol_flatfile": {
        "title": "Flat file (CSV) enrolment",
        "required": ("location",),
        "cleared": ("location",),
        "plugin_state": True,
        "enrolment": True,
    },
}
TOOL_KEYS = ("enabled", "settings")
# The name of a plugin's enabled state in ``expect`` (not a setting: Moodle's plugin manager).
ENABLED = "(enabled)"


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
        if key in site_vars and key not in ("lms_plugin_config", "lms_integrations"):
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
    policy["lms_integrations"] = _merge_integrations(
        defaults.get("lms_integrations"), site_vars.get("lms_integrations")
    )
    policy["lms_mail"] = _mail_mode(policy["lms_mail"] if policy["lms_mail"] is not None else "off")
    return policy


def _merge_integrations(*sources):
    """The tier's lms_integrations, then the site's, tool by tool: ``enabled`` replaces, ``settings``
    merge setting by setting. Every known tool is there: one that nothing mentions is disabled."""
    tools = {tool: {"enabled": False, "settings": {}} for tool in TOOLS}
    for source in sources:
        if source is None:
            continue
        if not isinstance(source, dict):
            return source  # reported as a problem
        for tool, spec in source.items():
            have = tools.get(tool)
            if isinstance(spec, dict) and isinstance(have, dict):
                merged = {**have, **spec}
                if isinstance(have.get("settings"), dict) and isinstance(spec.get("settings"), dict):
                    merged["settings"] = {**have["settings"], **spec["settings"]}
                tools[tool] = merged
            else:
                tools[tool] = spec
    return tools


def _endpoint_part(value) -> str:
    """What identifies where a setting connects: a URL's host name, else the value itself (a
    database host or name), lower case."""
    text = str(value if value is not None else "").strip().lower()
    if "://" in text:
        try:
            return urlsplit(text).hostname or ""
        except ValueError:
            return text
    return text


def _endpoint(tool: str, settings) -> tuple | None:
    keys = TOOLS[tool].get("endpoint")
    if not keys or not isinstance(settings, dict):
        return None
    parts = tuple(_endpoint_part(settings.get(key)) for key in keys)
    return parts if all(parts) else None


def _live_endpoints(live_site, tier_policy: dict) -> dict:
    """Where the customer's Live site connects, tool by tool ({tool: endpoint}; enabled tools only).
    Only the endpoint settings of Live's record are read (never its secrets)."""
    if not isinstance(live_site, dict) or not live_site:
        return {}
    defaults = (tier_policy.get("live") or {}).get("lms_integrations") or {}
    mine = (live_site.get("vars") or {}).get("lms_integrations") or {}
    out = {}
    for tool, spec in TOOLS.items():
        layers = [d.get(tool) for d in (defaults, mine) if isinstance(d, dict)]
        layers = [layer for layer in layers if isinstance(layer, dict)]
        enabled = False
        settings = {}
        for layer in layers:
            if "enabled" in layer:
                enabled = layer["enabled"] is True
            if isinstance(layer.get("settings"), dict):
                for key in spec.get("endpoint") or ():
                    if key in layer["settings"]:
                        settings[key] = layer["settings"][key]
        endpoint = _endpoint(tool, settings)
        if enabled and endpoint:
            out[tool] = endpoint
    return out


def _integration_problems(site: dict, tier: str, policy: dict, live: dict, live_name: str) -> list[str]:
    name = site.get("name", "?")
    out = []
    say = out.append
    tools = policy["lms_integrations"]
    if not isinstance(tools, dict):
        return [
            f"site {name}: lms_integrations must be {{tool: {{enabled: …, settings: …}}}} "
            f"(got {type(tools).__name__})"
        ]
    for tool, state in tools.items():
        where = f"lms_integrations.{tool}"
        if tool not in TOOLS:
            say(f"site {name}: lms_integrations: unknown tool {tool!r} (the tools are {', '.join(TOOLS)})")
            continue
        spec = TOOLS[tool]
        # (what was given is named by its type or keys, never shown: it may hold secrets)
        if not isinstance(state, dict) or set(state) - set(TOOL_KEYS):
            got = (
                "keys " + ", ".join(sorted(map(str, state)))
                if isinstance(state, dict)
                else type(state).__name__
            )
            say(f"site {name}: {where} must be {{enabled: true|false, settings: {{…}}}} (got {got})")
            continue
        enabled, settings = state.get("enabled"), state.get("settings")
        if not isinstance(enabled, bool):
            say(f"site {name}: {where}.enabled must be true or false (got {enabled!r})")
            continue
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            say(f"site {name}: {where}.settings must be {{setting: value}} (got {type(settings).__name__})")
            continue
        bad = False
        for key, value in settings.items():
            if not isinstance(key, str) or not SETTING.match(key):
                say(f"site {name}: {where}.settings: {key!r} is not a setting name")
                bad = True
            elif spec.get("core") and not key.startswith(spec["core"]):
                say(
                    f"site {name}: {where}.settings.{key}: {spec['title']}'s settings are core settings "
                    f"named {spec['core']}*"
                )
                bad = True
            elif key in (spec.get("switch") or {}) or key in (spec.get("fixed") or {}):
                say(
                    f"site {name}: {where}.settings.{key} is set by the tier policy itself "
                    "(from enabled: true|false); drop it"
                )
                bad = True
            elif key in (spec.get("plugin_owned") or ()):
                say(
                    f"site {name}: {where}.settings.{key} is written by the plugin itself (it registers its "
                    "own webhook); it is never forced, and a copy of another site starts without it"
                )
                bad = True
            elif not isinstance(value, (str, int, float, bool)):
                say(f"site {name}: {where}.settings.{key} must be a string, number or boolean")
                bad = True
        if bad:
            continue
        given = {key for key, value in settings.items() if value not in (None, "")}
        if enabled:
            missing = [key for key in spec["required"] if key not in given]
            if missing:
                say(
                    f"site {name}: {where} is enabled but lacks {', '.join(missing)} "
                    "(a tool is configured completely, or disabled)"
                )
        else:
            kept = [key for key in spec["cleared"] if key in given]
            if kept:
                say(
                    f"site {name}: {where} is disabled but sets {', '.join(kept)}: a disabled tool's "
                    "endpoint and credentials are forced empty; set enabled: true, or drop them"
                )
            continue
        if spec.get("enrolment") and tier == "dev":
            say(
                f"site {name}: {where} is refused on dev: it is a source of users or enrolments, and Dev "
                "reads none (QA reads a test source; never Live's student records)"
            )
        for key in spec.get("endpoint") or ():
            host = _endpoint_part(settings.get(key))
            if host in (spec.get("refused_hosts") or ()):
                say(
                    f"site {name}: {where}.settings.{key} is Blindside Networks' old public test server "
                    f"({host}), which Moodle refuses: use the customer's own BigBlueButton server"
                )
            if tier != "live" and host in (spec.get("production_hosts") or ()):
                say(
                    f"site {name}: {where}.settings.{key} is {spec['title']}'s production service ({host}), "
                    f"refused on {tier}: use {spec.get('sandbox', 'a sandbox')}"
                )
        mine = _endpoint(tool, settings)
        if tier != "live" and mine and live.get(tool) == mine:
            keys = " and ".join(spec["endpoint"])
            verb = "point" if len(spec["endpoint"]) > 1 else "points"
            say(
                f"site {name}: {where}.settings {keys} {verb} at {'/'.join(mine)}, where {live_name} "
                f"connects: {tier} uses a sandbox or test instance of its own, never Live's"
            )
    plugins = policy["lms_plugin_config"]
    if isinstance(plugins, dict):
        clash = sorted(set(plugins) & set(TOOLS))
        if clash:
            say(
                f"site {name}: lms_plugin_config sets {', '.join(clash)}, which the tier policy's "
                "lms_integrations owns: use lms_integrations.<tool>.settings"
            )
    return out


def _integrations_config(tools) -> tuple[dict, dict, list]:
    """What lms_integrations forces: (core settings, {component: settings}, plugin states)."""
    core, components, states = {}, {}, []
    plagiarism = False
    tools = tools if isinstance(tools, dict) else {}
    for tool, spec in TOOLS.items():
        state = tools.get(tool)
        state = state if isinstance(state, dict) else {}
        on = state.get("enabled") is True
        settings = state.get("settings") if isinstance(state.get("settings"), dict) else {}
        values = {
            key: setting_text(value)
            for key, value in settings.items()
            if isinstance(key, str)
            and SETTING.match(key)
            and isinstance(value, (str, int, float, bool))
            and key not in (spec.get("plugin_owned") or ())
        }
        if not on:
            values.update({key: "" for key in spec["cleared"]})
        for key, (when_on, when_off) in (spec.get("switch") or {}).items():
            values[key] = when_on if on else when_off
        values.update(spec.get("fixed") or {})
        if spec.get("core"):
            core.update({key: value for key, value in values.items() if key.startswith(spec["core"])})
        else:
            components[tool] = values
        if spec.get("plugin_state"):
            states.append({"component": tool, "enabled": on})
        plagiarism = plagiarism or (on and bool(spec.get("plagiarism")))
    if plagiarism:
        core["enableplagiarism"] = True
    return core, components, states


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
    owned = sorted(
        key
        for key in (site.get("vars") or {}).get("lms_config") or {}
        if key in OWNED or str(key).startswith(TOOLS["mod_bigbluebuttonbn"]["core"])
    )
    if owned:
        say(
            f"site {name}: vars.lms_config sets {', '.join(owned)}, which the tier policy owns: "
            "use lms_mail, lms_smtp_*, lms_cron, lms_banner, lms_plugin_config, lms_integrations "
            "(docs/tier-policy.md)"
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


def _truthy(value) -> bool:
    """Whether PHP reads a config.php value as on (only '', '0', 0, false and null are off)."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return str(value).strip() not in ("", "0")


def lms_policy(
    site, tier_policy=None, tier_config=None, no_mail_tiers=None, no_except_tiers=None, live_site=None
) -> dict:
    """The tier policy of one site (an estate site record): ``{policy, config, expect, plugins,
    problems}``. ``live_site``: the customer's Live site record, when known (Dev and QA may not
    connect where it does)."""
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
    live_name = (live_site or {}).get("name") or f"{site.get('customer', '?')}-live"
    problems += _integration_problems(
        site, tier, policy, _live_endpoints(live_site, tier_policy) if tier != "live" else {}, live_name
    )

    config = dict(tier_config.get(tier) or {})
    shown_by = "lms_tier_config.live" if _truthy(config.get("debugdisplay")) else None
    debug = site_vars.get("lms_debug")
    if debug is not None:
        on = debug if isinstance(debug, bool) else str(debug).lower() in ("1", "true", "yes", "on")
        config.update({"debug": 32767, "debugdisplay": 1} if on else {"debug": 0, "debugdisplay": 0})
        shown_by = "vars.lms_debug: true" if on else None
    lms_config = {k: v for k, v in (site_vars.get("lms_config") or {}).items() if k not in OWNED}
    config.update(lms_config)
    if "debugdisplay" in lms_config:
        shown_by = "vars.lms_config.debugdisplay" if _truthy(lms_config["debugdisplay"]) else None
    if tier == "live":
        # Live never displays debug output: forced off in config.php, whatever else says.
        if shown_by:
            problems.append(
                f"site {site.get('name', '?')}: debugdisplay is refused on live (Live never displays debug "
                f"output), set by {shown_by}: to debug Live, raise vars.lms_config.debug alone (logged, "
                "not shown)"
            )
        config["debugdisplay"] = 0

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
    tool_core, tool_components, plugin_states = _integrations_config(policy["lms_integrations"])
    policy_config.update(tool_core)
    plugins = policy["lms_plugin_config"] if isinstance(policy["lms_plugin_config"], dict) else {}
    forced = {
        component: {key: setting_text(value) for key, value in settings.items()}
        for component, settings in plugins.items()
        if isinstance(settings, dict) and settings and component not in TOOLS
    }
    forced.update(tool_components)
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
        wanted = moodle_value(value)
        expect.append({"name": key, "component": "core", "wanted": wanted, "check": _check(key, wanted)})
    if "additionalhtmltopofbody" not in policy_config:
        expect.append(
            {"name": "additionalhtmltopofbody", "component": "core", "wanted": None, "check": "no_banner"}
        )
    for component, settings in sorted(forced.items()):
        for key, value in sorted(settings.items()):
            expect.append({"name": key, "component": component, "wanted": value, "check": _check(key, value)})
    for state in plugin_states:
        expect.append(
            {
                "name": ENABLED,
                "component": state["component"],
                "wanted": "1" if state["enabled"] else "0",
                "check": "plugin_enabled",
            }
        )
    return {
        "policy": policy,
        "config": config,
        "expect": expect,
        "plugins": plugin_states,
        "problems": problems,
    }


def _check(key: str, wanted) -> str:
    """A secret is only checked to be set and forced, never shown; an empty one shows nothing."""
    return "secret" if SECRET.search(key) and wanted not in (None, "") else "equal"


def _label(item: dict) -> str:
    component = item.get("component") or "core"
    if item.get("check") == "plugin_enabled":
        return f"{component} {ENABLED}"
    return item["name"] if component == "core" else f"{component}/{item['name']}"


def lms_policy_audit(expect, found, site: str = "?", plugins=None) -> list[dict]:
    """Compare expectations (lms_policy's ``expect``) with settings read from Moodle (lms_config's
    ``settings``: name, component, after/before, forced) and plugins' states (lms_plugin's
    ``plugins``: component, installed, after/before), in order. A row is ok when the value is the
    wanted one and config.php forces it; ``no_banner``: no three-instance banner in the value;
    ``secret``: set and forced (the value itself is never shown or compared here);
    ``plugin_enabled``: the plugin manager's state (which config.php cannot force; a plugin that is
    not installed is disabled)."""
    by_key = {(f.get("component") or "core", f["name"]): f for f in found or []}
    states = {p.get("component"): p for p in plugins or []}
    rows = []
    for item in expect:
        if item["check"] == "plugin_enabled":
            have = states.get(item.get("component"))
            state = None if have is None else have.get("after", have.get("before"))
            installed = bool(have and have.get("installed", True))
            on = bool(state) and installed
            want_on = item["wanted"] == "1"
            ok = have is not None and on == want_on
            wanted = ("enabled" if want_on else "disabled") + " (plugin manager)"
            shown = (
                "(not read)"
                if have is None
                else ("enabled" if on else "disabled" if installed else "not installed") + " (plugin manager)"
            )
            rows.append({"site": site, "setting": _label(item), "wanted": wanted, "found": shown, "ok": ok})
            continue
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


def lms_policy_identities(identities, sites) -> list[dict]:
    """One audit row per site of ``sites``: its ``siteidentifier`` must be set and its own among
    ``identities`` ({site: siteidentifier} of every site audited). Moodle keys caches, sessions and
    registrations on it; a copy that kept another site's would share them (the restore of another
    site's backup gives the copy a new one). The identifier itself is not shown."""
    identities = identities or {}
    rows = []
    for name in sites or []:
        own = identities.get(name)
        others = sorted(n for n, other in identities.items() if n != name and own and other == own)
        found = "not set" if not own else ("shared with " + ", ".join(others)) if others else "its own"
        rows.append(
            {
                "site": name,
                "setting": "siteidentifier",
                "wanted": "its own in the estate",
                "found": found,
                "ok": bool(own) and not others,
            }
        )
    return rows


class FilterModule:
    def filters(self):
        return {
            "lms_policy": lms_policy,
            "lms_policy_audit": lms_policy_audit,
            "lms_policy_table": lms_policy_table,
            "lms_policy_identities": lms_policy_identities,
        }

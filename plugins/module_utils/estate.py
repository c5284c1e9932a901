"""The estate model of three-instance: parse and validate an estate, build the inventory from it.

Pure Python (standard library + PyYAML), importable without Ansible so that it is unit-tested on
its own; the inventory plugin ``plugins/inventory/three_instance.py`` is a thin layer over it.
The file format and the host variables are described in ``docs/inventory.md``.

Every problem raises :class:`EstateError` with a message that names the file, the customer and
the field, for example::

    inventories/x/estate.yml: customer 'acme', tier 'live', maintenance_windows[0].start:
    '25:00' is not HH:MM
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

TIERS = ("dev", "qa", "live")
TIER_RANK = {"dev": 0, "qa": 1, "live": 2}
PROMOTES_FROM = {"dev": None, "qa": "dev", "live": "qa"}
FLAVOURS = ("moodle", "totara")
DEFAULT_HOST_ROLES = ("web", "db")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = {
    name: name[:3] for name in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}

NAME_RE = re.compile(r"[a-z][a-z0-9]*\Z")
HOSTNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*\Z")


def valid_host_name(name) -> bool:
    """The rule for inventory host names, static or from EC2 (each names a file in the fact cache)."""
    return isinstance(name, str) and len(name) <= 253 and HOSTNAME_RE.match(name) is not None


TIME_RE = re.compile(r"(\d{1,2}):(\d{2})\Z")
WINDOW_RE = re.compile(
    r"\s*(?P<days>\S+)\s+(?P<start>[^\s-]+)\s*-\s*(?P<end>[^\s-]+)(?:\s+(?P<tz>\S+))?\s*\Z"
)
#: An RFC 1123 host label: letters, digits, hyphens (not first or last), 1-63 characters.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: http(s)://<RFC 1123 host name>[:port][/path]: the host reaches nginx's server_name and the
#: certificate's SAN, the path nginx's locations, so neither may carry ; " { } ( ) or spaces.
WWWROOT_RE = re.compile(
    rf"https?://(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?(?P<path>(?:/[A-Za-z0-9._~-]+)*)/?\Z"
)
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")

# Keys allowed at each level of an estate (anything else is reported as a typo).
ESTATE_KEYS = ("name", "timezone", "code_root", "data_root", "vars", "tiers", "customers", "hosts")
# Where every host keeps the sites' code (<code_root>/<site>: releases/, current) and data
# (<data_root>/<site>: Moodle's dataroot): the one default of each, overridable per estate.
CODE_ROOT = "/srv/lms"
DATA_ROOT = "/var/lib/lms"
ROOT_RE = re.compile(r"(/[A-Za-z0-9_.\-]+)+\Z")
# A site's OS user (vars.site_user), and its database name and user (vars.db_name, vars.db_user).
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
DB_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
TIER_DEFAULT_KEYS = ("wwwroot", "hosts", "maintenance_windows", "vars")
CUSTOMER_KEYS = ("flavour", "vars", "tiers")
CUSTOMER_TIER_KEYS = ("wwwroot", "hosts", "maintenance_windows", "vars")
WINDOW_KEYS = ("days", "start", "end", "timezone")
EC2_UNKNOWN_POLICIES = ("warn", "error", "ignore")
EC2_HOSTNAME_SOURCES = ("private-dns-name", "dns-name", "private-ip-address", "ip-address", "instance-id")
EC2_ANSIBLE_HOST_SOURCES = ("private-ip-address", "ip-address", "private-dns-name", "dns-name", "none")


class EstateError(ValueError):
    """A problem in an estate; the message names the file, the customer and the field."""


# --------------------------------------------------------------------------------------------
# small helpers


def _typename(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class _Ctx:
    """Where we are in the estate, for messages: the file plus 'customer ..., tier ..., field'."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise EstateError(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")


def _cut(text, limit: int = 80) -> str:
    """Input quoted back in a message, cut short (a 5,000-character value is not echoed whole)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _field(where: str, name: str) -> str:
    """Append a field to a location: "customer 'acme', tier 'live'" + "hosts" -> "..., hosts"."""
    if not where:
        return name
    if where.endswith("'"):
        return f"{where}, {name}"
    return f"{where}.{name}"


def _check_mapping(ctx: _Ctx, where: str, value, allowed: Iterable[str] | None = None) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        ctx.fail(where, f"must be a mapping, got {_typename(value)}")
    if allowed is not None:
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" - did you mean {close[0]!r}?" if close else ""
                ctx.fail(where, f"unknown key {key!r} (expected one of: {', '.join(allowed)}){hint}")
    return value


def check_top_level(config: Mapping, known: Iterable[str], source: str) -> None:
    """Fail on a top-level key of the estate file that is no option of the plugin (a typo)."""
    _check_mapping(_Ctx(source), "", config, sorted(set(known)))


# --------------------------------------------------------------------------------------------
# duplicate keys: YAML keeps the last one silently, which would hide a duplicate customer or site


@functools.cache
def _yaml():
    """PyYAML and its fastest safe loader, imported when first needed: parsing runs on the controller
    only, and the module code that imports this file (change_window.py) runs on hosts without PyYAML."""
    import yaml

    try:  # the C parser makes the duplicate-key scan of a 1,000-customer estate cheap
        loader = yaml.CSafeLoader
    except AttributeError:  # pragma: no cover - PyYAML without libyaml
        loader = yaml.SafeLoader
    return yaml, loader


def check_duplicate_keys(text: str, source: str) -> None:
    """Fail if a mapping of the YAML text repeats a key; names the line of both occurrences."""
    ctx = _Ctx(source)
    yaml, loader = _yaml()
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        ctx.fail("", f"not valid YAML: {exc}")
    if node is not None:
        _walk_duplicates(ctx, node, ())


def load_yaml(text: str, source: str):
    """Parse an estate file (plain YAML, no Ansible tags) with the C parser, refusing duplicate keys."""
    ctx = _Ctx(source)
    yaml, yaml_loader = _yaml()
    loader = yaml_loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _walk_duplicates(ctx, node, ())
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        ctx.fail("", f"not valid YAML: {exc}")
    finally:
        loader.dispose()


def _walk_duplicates(ctx: _Ctx, node, path: tuple) -> None:
    yaml = _yaml()[0]
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    _duplicate(ctx, path, key, line, seen[key])
                seen[key] = line
                _walk_duplicates(ctx, value_node, (*path, key))
            else:
                _walk_duplicates(ctx, value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_duplicates(ctx, item, (*path, index))


def _duplicate(ctx: _Ctx, path: tuple, key: str, line: int, first: int):
    at = f"line {line}, first at line {first}"
    if path == ("customers",):
        sites = ", ".join(f"{key}-{tier}" for tier in TIERS)
        ctx.fail(
            f"customer {key!r}",
            f"customer defined twice ({at}): duplicate sites {sites}",
        )
    if len(path) == 3 and path[0] == "customers" and path[2] == "tiers":
        ctx.fail(
            f"customer {path[1]!r}, tiers",
            f"duplicate site '{path[1]}-{key}' (tier {key!r} defined twice, {at})",
        )
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    ctx.fail(where, f"duplicate key {key!r} ({at})")


# --------------------------------------------------------------------------------------------
# maintenance windows


@functools.cache
def _valid_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError (bad key), OSError
        return False
    return True


def _parse_time(ctx: _Ctx, where: str, value, allow_24: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        ctx.fail(where, f"{value!r} is not HH:MM (YAML reads an unquoted 22:00 as a number: quote the time)")
    match = TIME_RE.match(str(value)) if isinstance(value, str) else None
    if not match:
        ctx.fail(where, f"{value!r} is not HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        ctx.fail(where, f"{value!r} is not HH:MM")
    return f"{hours:02d}:{minutes:02d}"


def _parse_days(ctx: _Ctx, where: str, value) -> list[str]:
    items = (
        value
        if isinstance(value, (list, tuple))
        else str(value).split(",")
        if isinstance(value, str)
        else None
    )
    if not items:
        ctx.fail(where, f"{value!r} names no days (use e.g. sun, mon-fri, sat,sun or *)")
    chosen: set[str] = set()
    for raw in items:
        item = str(raw).strip().lower()
        if item in ("*", "daily"):
            chosen.update(DAYS)
            continue
        ends = item.split("-", 1)
        names = [_FULL_DAYS.get(e.strip(), e.strip()) for e in ends]
        for name in names:
            if name not in DAYS:
                ctx.fail(where, f"{value!r}: unknown day {name!r} (days are {', '.join(DAYS)})")
        if len(names) == 1:
            chosen.add(names[0])
        else:  # a range, which may wrap the week end: fri-mon
            first, last = DAYS.index(names[0]), DAYS.index(names[1])
            span = (last - first) % 7
            chosen.update(DAYS[(first + i) % 7] for i in range(span + 1))
    return [d for d in DAYS if d in chosen]


def parse_window(value, where: str, source: str, default_timezone: str = "UTC") -> dict:
    """Normalise one maintenance window.

    Accepts ``"sun 02:00-04:00 Europe/London"`` (days: ``sun``, ``mon-fri``, ``sat,sun``, ``*``;
    the time zone is optional) or a mapping ``{days, start, end, timezone}``. Returns
    ``{"days": [...], "start": "HH:MM", "end": "HH:MM", "timezone": "..."}``. An end before the
    start means the window runs past midnight into the next day; ``24:00`` is allowed as an end.
    """
    ctx = _Ctx(source)
    if isinstance(value, str):
        match = WINDOW_RE.match(value)
        if not match:
            ctx.fail(where, f"{value!r} is not a window like 'sun 02:00-04:00 Europe/London'")
        raw = {"days": match.group("days"), "start": match.group("start"), "end": match.group("end")}
        if match.group("tz"):
            raw["timezone"] = match.group("tz")
    elif isinstance(value, Mapping):
        raw = _check_mapping(ctx, where, value, WINDOW_KEYS)
        for key in ("days", "start", "end"):
            if raw.get(key) in (None, ""):
                ctx.fail(_field(where, key), "is missing")
    else:
        ctx.fail(
            where,
            f"must be a string like 'sun 02:00-04:00 Europe/London' or a mapping, got {_typename(value)}",
        )
    days = _parse_days(ctx, _field(where, "days"), raw["days"])
    start = _parse_time(ctx, _field(where, "start"), raw["start"], allow_24=False)
    end = _parse_time(ctx, _field(where, "end"), raw["end"], allow_24=True)
    if start == end:
        ctx.fail(where, f"empty window: start and end are both {start}")
    timezone = raw.get("timezone") or default_timezone
    if not isinstance(timezone, str) or not _valid_timezone(timezone):
        ctx.fail(
            _field(where, "timezone"), f"{timezone!r} is not a known time zone (e.g. Europe/London, UTC)"
        )
    return {"days": days, "start": start, "end": end, "timezone": timezone}


def _parse_windows(ctx: _Ctx, where: str, value, default_timezone: str) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        ctx.fail(where, f"must be a list of windows, got {_typename(value)}")
    return [parse_window(item, f"{where}[{i}]", ctx.source, default_timezone) for i, item in enumerate(value)]


# --------------------------------------------------------------------------------------------
# the estate


@dataclass
class Site:
    """One customer's instance on one tier."""

    name: str
    customer: str
    tier: str
    flavour: str
    wwwroot: str
    maintenance_windows: list
    vars: dict
    hosts: dict = field(default_factory=dict)  # inventory hostname -> tuple of host roles (static hosts)
    hosts_declared: bool = False  # `hosts:` was written (even empty): no warning when the site has none
    code_root: str = CODE_ROOT
    data_root: str = DATA_ROOT

    @property
    def tier_rank(self) -> int:
        return TIER_RANK[self.tier]

    @property
    def promotes_from(self) -> str | None:
        return PROMOTES_FROM[self.tier]

    @property
    def group(self) -> str:
        return f"{self.customer}_{self.tier}"

    @property
    def site_user(self) -> str:
        """The OS user that runs the site's PHP and owns its dataroot."""
        return self.vars.get("site_user") or self.name

    @property
    def db_name(self) -> str:
        return self.vars.get("db_name") or re.sub(r"[^A-Za-z0-9]", "_", self.name)

    @property
    def db_user(self) -> str:
        return self.vars.get("db_user") or re.sub(r"[^A-Za-z0-9]", "_", self.name)

    @property
    def code_dir(self) -> str:
        return f"{self.code_root}/{self.name}"

    @property
    def dataroot(self) -> str:
        return f"{self.data_root}/{self.name}"


@dataclass
class Estate:
    name: str
    source: str
    timezone: str
    host_roles: tuple
    customers: dict  # customer -> flavour, in file order
    sites: dict  # site name -> Site, in file order (customer by customer, dev, qa, live)
    static_hosts: dict  # hostname -> dict of its own host vars


def reserved_group_names(host_roles: Iterable[str]) -> set[str]:
    """Group names the plugin always creates; a customer may not take one of them as its name."""
    return {"all", "ungrouped", *TIERS, *FLAVOURS, *host_roles}


def _parse_roles(ctx: _Ctx, where: str, value, host_roles: tuple) -> tuple:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        ctx.fail(where, f"must name the host's roles ({', '.join(host_roles)}), got {value!r}")
    for role in items:
        if role not in host_roles:
            close = difflib.get_close_matches(str(role), host_roles, n=1)
            hint = f" - did you mean {close[0]!r}?" if close else ""
            ctx.fail(where, f"unknown host role {role!r} (host roles are {', '.join(host_roles)}){hint}")
    return tuple(r for r in host_roles if r in items)


def _parse_site_hosts(ctx: _Ctx, where: str, value, host_roles: tuple, static_hosts: Mapping) -> dict:
    hosts = _check_mapping(ctx, where, value)
    result = {}
    for host, roles in hosts.items():
        if host not in static_hosts:
            close = difflib.get_close_matches(str(host), [str(h) for h in static_hosts], n=1)
            hint = f" - did you mean {close[0]!r}?" if close else ""
            ctx.fail(where, f"host {host!r} is not declared under the estate's 'hosts'{hint}")
        result[host] = _parse_roles(ctx, f"{where}.{host}", roles, host_roles)
    return result


def _expand_wwwroot(ctx: _Ctx, where: str, value, customer: str, tier: str) -> str:
    if not isinstance(value, str) or not value:
        ctx.fail(where, f"must be a URL like https://{customer}-{tier}.example.com, got {value!r}")

    def repl(match):
        key = match.group(1)
        if key not in ("customer", "tier"):
            ctx.fail(where, f"{value!r}: unknown placeholder {{{key}}} (use {{customer}} and {{tier}})")
        return customer if key == "customer" else tier

    url = PLACEHOLDER_RE.sub(repl, value)
    match = WWWROOT_RE.fullmatch(url)
    if not re.match(r"https?://", url):
        ctx.fail(where, f"{_cut(url)!r} is not an http(s) URL")
    if not match or len(match.group("host")) > 253 or not 0 < int(match.group("port") or 80) <= 65535:
        ctx.fail(
            where,
            f"{_cut(url)!r} is not an http(s) URL with an RFC 1123 host name (labels of letters, digits "
            "and inner hyphens, at most 63 characters each, 253 in all), an optional port 1-65535 and "
            "a path of letters, digits and . _ ~ -",
        )
    if url.endswith("/"):
        ctx.fail(where, f"{url!r} must not end with a slash (Moodle's wwwroot has none)")
    return url


def parse_estate(
    config: Mapping,
    source: str,
    *,
    default_name: str = "estate",
    host_roles: Iterable[str] = DEFAULT_HOST_ROLES,
) -> Estate:
    """Validate an estate (the estate file's data, or the plugin's options) and return its model.

    ``config`` holds the keys name, timezone, vars, tiers, customers and hosts; other keys (the
    plugin's EC2 and cache options) are not looked at here.
    """
    ctx = _Ctx(source)
    host_roles = tuple(host_roles)
    for role in host_roles:
        if not isinstance(role, str) or not NAME_RE.match(role):
            ctx.fail("host_roles", f"{role!r} is not a valid role name (lowercase letters and digits)")
    if not isinstance(config, Mapping):
        ctx.fail("", f"an estate must be a mapping, got {_typename(config)}")

    name = config.get("name") or default_name
    if not isinstance(name, str):
        ctx.fail("name", f"must be a string, got {_typename(name)}")
    timezone = config.get("timezone") or "UTC"
    if not isinstance(timezone, str) or not _valid_timezone(timezone):
        ctx.fail("timezone", f"{timezone!r} is not a known time zone (e.g. Europe/London, UTC)")
    roots = {}
    for key, default_root in (("code_root", CODE_ROOT), ("data_root", DATA_ROOT)):
        root = config.get(key) or default_root
        if (
            not isinstance(root, str)
            or not ROOT_RE.match(root)
            or "/../" in f"{root}/"
            or "/./" in f"{root}/"
        ):
            ctx.fail(
                key, f"{_cut(root)!r} is not an absolute folder path (letters, digits, _ . -; no .. or .)"
            )
        roots[key] = root
    if roots["code_root"] == roots["data_root"]:
        ctx.fail("data_root", "must differ from code_root (code is replaced on deploys, data is not)")
    estate_vars = dict(_check_mapping(ctx, "vars", config.get("vars")))

    # static hosts and their own host vars
    static_hosts: dict = {}
    for host, hvars in _check_mapping(ctx, "hosts", config.get("hosts")).items():
        if not valid_host_name(host):
            ctx.fail("hosts", f"{_cut(host)!r} is not a valid host name")
        hvars = dict(_check_mapping(ctx, f"hosts.{host}", hvars))
        for var in hvars:
            if not isinstance(var, str) or not var.isidentifier():
                ctx.fail(f"hosts.{host}", f"{var!r} is not a valid variable name")
            if var.startswith("estate_"):
                ctx.fail(f"hosts.{host}", f"{var!r}: variables named estate_* are set by the estate itself")
        static_hosts[host] = hvars
    reserved = reserved_group_names(host_roles)
    for host in static_hosts:
        if host in reserved:
            ctx.fail("hosts", f"host {host!r} has the name of a group of the estate; name it e.g. {host}1")

    # tier defaults
    tier_defaults = _check_mapping(ctx, "tiers", config.get("tiers"), TIERS)
    defaults = {}
    for tier in TIERS:
        where = f"tiers.{tier}"
        block = _check_mapping(ctx, where, tier_defaults.get(tier), TIER_DEFAULT_KEYS)
        defaults[tier] = {
            "wwwroot": block.get("wwwroot"),
            "hosts": _parse_site_hosts(ctx, f"{where}.hosts", block.get("hosts"), host_roles, static_hosts)
            if block.get("hosts") is not None
            else None,
            "maintenance_windows": _parse_windows(
                ctx, f"{where}.maintenance_windows", block.get("maintenance_windows"), timezone
            )
            if block.get("maintenance_windows") is not None
            else None,
            "vars": dict(_check_mapping(ctx, f"{where}.vars", block.get("vars"))),
        }

    # customers
    customers_cfg = config.get("customers")
    if not customers_cfg:
        ctx.fail("customers", "is missing: an estate declares at least one customer")
    customers_cfg = _check_mapping(ctx, "customers", customers_cfg)
    customers: dict = {}
    sites: dict = {}
    wwwroots: dict = {}
    for customer, spec in customers_cfg.items():
        cwhere = f"customer {customer!r}"
        if not isinstance(customer, str) or not NAME_RE.match(customer):
            ctx.fail(
                cwhere,
                "a customer name is lowercase letters and digits, starting with a letter "
                "(it becomes part of site names like acme-dev and group names like acme_dev)",
            )
        if customer in reserved:
            ctx.fail(
                cwhere, f"{customer!r} is the name of a group of the estate (tier, flavour or host role)"
            )
        if customer in static_hosts:
            ctx.fail(
                cwhere, f"{customer!r} is also the name of a host; customer groups and hosts must differ"
            )
        spec = _check_mapping(ctx, cwhere, spec, CUSTOMER_KEYS)
        flavour = spec.get("flavour")
        if flavour is None:
            ctx.fail(f"{cwhere}, flavour", f"is missing (one of {', '.join(FLAVOURS)})")
        if flavour not in FLAVOURS:
            ctx.fail(f"{cwhere}, flavour", f"{flavour!r} is not one of {', '.join(FLAVOURS)}")
        customer_vars = _check_mapping(ctx, f"{cwhere}, vars", spec.get("vars"))
        tiers_cfg = spec.get("tiers")
        if tiers_cfg is None:
            ctx.fail(f"{cwhere}, tiers", f"is missing: every customer has the tiers {', '.join(TIERS)}")
        tiers_cfg = _check_mapping(ctx, f"{cwhere}, tiers", tiers_cfg)
        for tier in tiers_cfg:
            if tier not in TIERS:
                close = difflib.get_close_matches(str(tier), TIERS, n=1)
                hint = f" - did you mean {close[0]!r}?" if close else ""
                ctx.fail(f"{cwhere}, tiers", f"unknown tier {tier!r} (tiers are {', '.join(TIERS)}){hint}")
        for tier in TIERS:
            if tier not in tiers_cfg:
                ctx.fail(
                    f"{cwhere}, tiers",
                    f"missing tier {tier!r}: every customer has the tiers {', '.join(TIERS)} "
                    f"(write `{tier}: {{}}` to take the estate's defaults)",
                )
        customers[customer] = flavour
        for tier in TIERS:
            twhere = f"{cwhere}, tier {tier!r}"
            block = _check_mapping(ctx, twhere, tiers_cfg[tier], CUSTOMER_TIER_KEYS)
            default = defaults[tier]
            raw_root = block.get("wwwroot", default["wwwroot"])
            if raw_root is None:
                ctx.fail(
                    f"{twhere}, wwwroot", f"is missing (set it here or a pattern in tiers.{tier}.wwwroot)"
                )
            wwwroot = _expand_wwwroot(ctx, f"{twhere}, wwwroot", raw_root, customer, tier)
            site_name = f"{customer}-{tier}"
            if wwwroot in wwwroots:
                ctx.fail(
                    f"{twhere}, wwwroot", f"{wwwroot!r} is already the wwwroot of site {wwwroots[wwwroot]}"
                )
            wwwroots[wwwroot] = site_name
            hosts_declared = "hosts" in block or default["hosts"] is not None
            if "hosts" in block:
                hosts = _parse_site_hosts(ctx, f"{twhere}, hosts", block["hosts"], host_roles, static_hosts)
            else:
                hosts = dict(default["hosts"] or {})
            if "maintenance_windows" in block:
                windows = _parse_windows(
                    ctx, f"{twhere}, maintenance_windows", block["maintenance_windows"], timezone
                )
            else:
                windows = list(default["maintenance_windows"] or [])
            if tier == "live" and not windows:
                ctx.fail(
                    f"{twhere}, maintenance_windows",
                    "is missing: Live changes only in a maintenance window "
                    "(set one here or in tiers.live.maintenance_windows)",
                )
            site_vars = dict(estate_vars)
            site_vars.update(default["vars"])
            site_vars.update(customer_vars)
            site_vars.update(_check_mapping(ctx, f"{twhere}, vars", block.get("vars")))
            if site_name in sites:  # pragma: no cover - names are unique by construction
                ctx.fail(twhere, f"duplicate site {site_name!r}")
            for var, pattern in (("site_user", USER_RE), ("db_name", DB_IDENT_RE), ("db_user", DB_IDENT_RE)):
                value = site_vars.get(var)
                # (a template is the operator's, as any var's: it is rendered where it is used)
                if value is not None and not (
                    isinstance(value, str) and (pattern.match(value) or "{{" in value)
                ):
                    ctx.fail(
                        f"{twhere}, vars.{var}", f"{_cut(str(value))!r} does not match {pattern.pattern}"
                    )
            sites[site_name] = Site(
                site_name,
                customer,
                tier,
                flavour,
                wwwroot,
                windows,
                site_vars,
                hosts,
                hosts_declared,
                **roots,
            )
    return Estate(name, source, timezone, host_roles, customers, sites, static_hosts)


def select_sites(estate: Estate, patterns) -> list[str]:
    """Site names matching shell-style patterns (``acme-*``, ``*-live``); each pattern must match."""
    if isinstance(patterns, str):
        patterns = re.split(r"[,\s]+", patterns)
    patterns = [str(p).strip() for p in patterns or () if p and str(p).strip()]
    if not patterns:
        return list(estate.sites)
    chosen: set[str] = set()
    for pattern in patterns:
        matched = fnmatch.filter(estate.sites, pattern)
        if not matched and pattern in estate.customers:
            matched = [f"{pattern}-{tier}" for tier in TIERS]
        if not matched:
            _Ctx(estate.source).fail("limit_sites", f"pattern {pattern!r} matches no site of the estate")
        chosen.update(matched)
    return [name for name in estate.sites if name in chosen]


# --------------------------------------------------------------------------------------------
# EC2 instances


def ec2_record(instance: Mapping, region: str) -> dict:
    """The few fields of a describe_instances entry the inventory uses (what is cached)."""
    return {
        "id": instance.get("InstanceId"),
        "region": str(region),
        "az": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "type": instance.get("InstanceType"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_ip": instance.get("PublicIpAddress"),
        "private_dns": instance.get("PrivateDnsName") or None,
        "public_dns": instance.get("PublicDnsName") or None,
        "tags": {t["Key"]: t["Value"] for t in instance.get("Tags") or ()},
    }


_EC2_FIELD = {
    "private-dns-name": "private_dns",
    "dns-name": "public_dns",
    "private-ip-address": "private_ip",
    "ip-address": "public_ip",
    "instance-id": "id",
}


def ec2_hostname(record: Mapping, preferences: Iterable[str]) -> str | None:
    """The first non-empty of the preferred names: ``tag:<key>`` or one of EC2_HOSTNAME_SOURCES."""
    for pref in preferences:
        value = record["tags"].get(pref[4:]) if pref.startswith("tag:") else record.get(_EC2_FIELD[pref])
        if value:
            return str(value).strip() or None
    return None


def check_ec2_filters(source: str, estate_name: str, filters: Mapping | None, tag_estate: str) -> None:
    """EC2 discovery must be scoped to this estate: ``ec2_filters`` holds ``tag:<tag_estate>`` equal
    to the estate's name. Without it any instance that carries the customer tag - tagged by anyone
    who may tag instances in the account - would join a customer's sites and get their secrets."""
    ctx = _Ctx(source)
    if not isinstance(tag_estate, str) or not tag_estate.strip():
        ctx.fail("tag_estate", "must name the EC2 tag that holds an instance's estate (default lms:estate)")
    key = f"tag:{tag_estate}"
    wanted = f"{{{key!r}: {estate_name!r}}}"
    filters = filters or {}
    if key not in filters:
        ctx.fail(
            "ec2_filters",
            f"ec2: true needs the estate tag filter {wanted} (and this estate's instances tagged "
            f"{tag_estate}={estate_name}); without it any running instance with the customer and tier "
            "tags would join the estate",
        )
    value = filters[key]
    values = value if isinstance(value, list) else [value]
    if [str(v) for v in values] != [estate_name]:
        ctx.fail(
            "ec2_filters", f"{key}: {_cut(value)!r} is not this estate's name {estate_name!r}: use {wanted}"
        )


def check_ec2_options(source: str, hostnames: Iterable[str], ansible_host: str, on_unknown: str) -> None:
    ctx = _Ctx(source)
    for pref in hostnames:
        if not isinstance(pref, str) or not (
            (pref.startswith("tag:") and len(pref) > 4) or pref in _EC2_FIELD
        ):
            ctx.fail("hostnames", f"{pref!r} is not tag:<key> or one of {', '.join(EC2_HOSTNAME_SOURCES)}")
    if ansible_host not in EC2_ANSIBLE_HOST_SOURCES:
        ctx.fail("ec2_ansible_host", f"{ansible_host!r} is not one of {', '.join(EC2_ANSIBLE_HOST_SOURCES)}")
    if on_unknown not in EC2_UNKNOWN_POLICIES:
        ctx.fail("ec2_unknown", f"{on_unknown!r} is not one of {', '.join(EC2_UNKNOWN_POLICIES)}")


# --------------------------------------------------------------------------------------------
# trust: which strings of the host vars Ansible may template

#: What makes Ansible (2.19: ``is_possibly_template``) look at a string as a template: the Jinja
#: start strings, or a ``#jinja2:`` header that changes them (matched anywhere, to be safe).
TEMPLATE_MARKERS = ("{{", "{%", "{#", "#jinja2:")


def possibly_template(text: str) -> bool:
    """True if Ansible could treat the string as a template."""
    return any(marker in text for marker in TEMPLATE_MARKERS)


class _Marker:
    """Marks the strings of the host vars for Ansible.

    ``trust`` (ansible-core >= 2.19: ``trust_as_template``) is applied to operator input - every
    string of the estate file and those the plugin builds from it, as Ansible's YAML inventory
    trusts every string of its file - and to strings from EC2 that hold no template marker (for
    them trusted or not renders the same, and trusted strings are exported plain, not as
    ``{"__ansible_unsafe": ...}``). ``untrust`` (``wrap_var``) is applied to strings from EC2 that
    hold a template marker: a tag value ``{{ lookup('pipe', 'id') }}`` stays data. Each distinct
    string is marked once (host vars of thousands of hosts share a few hundred strings).
    """

    def __init__(self, trust: Callable[[str], str] | None, untrust: Callable[[str], str] | None):
        self.trust = trust
        self.untrust = untrust
        self._trusted: dict = {}

    def _trust(self, text: str) -> str:
        if self.trust is None:
            return text
        marked = self._trusted.get(text)
        if marked is None:
            marked = self._trusted[text] = self.trust(text)
        return marked

    def estate(self, value):
        """Operator input (the estate file, or built from it): every string is trusted."""
        if self.trust is None:
            return value
        if isinstance(value, str):
            return self._trust(value)
        if isinstance(value, dict):
            return {key: self.estate(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.estate(item) for item in value]
        return value

    def ec2(self, value):
        """Data from EC2 (anyone allowed to tag an instance writes it): no template is trusted."""
        if isinstance(value, str):
            if possibly_template(value):
                return value if self.untrust is None else self.untrust(value)
            return self._trust(value)
        if isinstance(value, dict):
            return {key: self.ec2(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.ec2(item) for item in value]
        return value


# --------------------------------------------------------------------------------------------
# the inventory built from an estate


def _copy(value):
    """A copy of nested dicts and lists (strings and numbers are immutable and shared)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def _site_entry(base: dict, roles) -> dict:
    """One host's estate_sites entry: its own containers, so that no two host vars share an
    object (a consumer that changes one host's data cannot change another's, and YAML output has
    no anchors). Built for the known shape of a site dict: this runs once per host and site."""
    entry = dict(base)
    entry["maintenance_windows"] = [dict(w, days=list(w["days"])) for w in base["maintenance_windows"]]
    for key, value in base.items():
        if key.endswith("_hosts"):
            entry[key] = list(value)
    entry["vars"] = _copy(base["vars"]) if base["vars"] else {}
    entry["host_roles"] = list(roles)
    return entry


@dataclass
class Inventory:
    """What the plugin adds: groups, parent links between groups, hosts with groups and vars."""

    groups: list = field(default_factory=list)  # group names, parents before children
    children: list = field(default_factory=list)  # (parent group, child group)
    hosts: dict = field(default_factory=dict)  # hostname -> {"groups": [...], "vars": {...}, "own": (...)}
    warnings: list = field(default_factory=list)


def build_inventory(
    estate: Estate,
    ec2_records: Iterable[Mapping] = (),
    *,
    tag_customer: str = "lms:customer",
    tag_tier: str = "lms:tier",
    tag_roles: str = "lms:role",
    hostnames: Iterable[str] = ("tag:Name", "private-dns-name", "private-ip-address", "instance-id"),
    ansible_host: str = "private-ip-address",
    on_unknown: str = "warn",
    limit_sites: Iterable[str] | str | None = None,
    tag_estate: str | None = None,
    trust: Callable[[str], str] | None = None,
    untrust: Callable[[str], str] | None = None,
) -> Inventory:
    """Join the static and EC2 hosts to the estate's sites and compute groups and host vars.

    Groups: tier (dev, qa, live), flavour (moodle, totara) > customer (acme) > site (acme_dev, a
    child of its customer and its tier), host role (web, db). Hosts are members of their site
    groups and host-role groups; tier, customer and flavour membership follows from nesting.

    An EC2 instance whose host name breaks the static host rule (``HOSTNAME_RE``: it becomes a file
    name in the fact cache) is skipped with a warning; with ``tag_estate`` so is an instance whose
    estate tag is not this estate's name.

    ``trust`` and ``untrust`` mark the strings of the host vars (see :class:`_Marker`): ``trust`` for
    the estate's strings and EC2 strings without a template marker, ``untrust`` for EC2 strings
    with one. Without them the strings are left as they are.
    """
    ctx = _Ctx(estate.source)
    mark = _Marker(trust, untrust)
    hostnames = tuple(hostnames)
    check_ec2_options(estate.source, hostnames, ansible_host, on_unknown)
    inv = Inventory()
    selected = select_sites(estate, limit_sites or ())
    limited = len(selected) < len(estate.sites)
    sites = [estate.sites[name] for name in selected]
    roles_order = estate.host_roles

    # site -> {host: roles}; host -> its own vars
    site_hosts: dict = {site.name: dict(site.hosts) for site in sites}
    host_vars_own: dict = {}
    for site in sites:
        for host in site.hosts:
            if host not in host_vars_own:
                host_vars_own[host] = mark.estate(estate.static_hosts[host])

    # EC2 instances join the sites their tags name
    group_names = (
        reserved_group_names(roles_order) | set(estate.customers) | {s.group for s in estate.sites.values()}
    )
    by_name = {site.name: site for site in sites}
    for rec in sorted(ec2_records, key=lambda r: (r["region"], r["id"])):
        tags = rec["tags"]
        customer = (tags.get(tag_customer) or "").strip()
        tier = (tags.get(tag_tier) or "").strip()
        roles = [r for r in re.split(r"[,\s]+", tags.get(tag_roles) or "") if r]
        problem = None
        if tag_estate is not None and (tags.get(tag_estate) or "").strip() != estate.name:
            problem = f"tag {tag_estate}={_cut(tags.get(tag_estate))!r} is not this estate ({estate.name!r})"
        elif customer not in estate.customers:
            problem = f"tag {tag_customer}={customer!r} names no customer of the estate"
        elif tier not in TIERS:
            problem = f"tag {tag_tier}={tier!r} is not a tier ({', '.join(TIERS)})"
        elif not roles:
            problem = f"tag {tag_roles} is missing (host roles: {', '.join(roles_order)})"
        elif any(r not in roles_order for r in roles):
            bad = [r for r in roles if r not in roles_order]
            problem = f"tag {tag_roles}={tags.get(tag_roles)!r}: unknown host role {bad[0]!r}"
        if problem:
            message = f"{estate.source}: EC2 instance {rec['id']} in {rec['region']}: {problem}"
            if on_unknown == "error":
                raise EstateError(message)
            if on_unknown == "warn":
                inv.warnings.append(message + "; instance skipped")
            continue
        site = by_name.get(f"{customer}-{tier}")
        if site is None:  # outside limit_sites
            continue
        name = ec2_hostname(rec, hostnames) or rec["id"]
        if not valid_host_name(name):
            message = (
                f"{estate.source}: EC2 instance {rec['id']} in {rec['region']}: host name {_cut(name)!r} "
                "is not a valid host name (letters, digits, '_', '.', ':', '-'; no '/' or spaces)"
            )
            if on_unknown == "error":
                raise EstateError(message)
            inv.warnings.append(message + "; instance skipped")
            continue
        if name in host_vars_own or name in group_names:
            inv.warnings.append(
                f"{estate.source}: EC2 instance {rec['id']} in {rec['region']}: host name {name!r} is "
                f"already taken (another instance, a static host or a group); using {rec['id']!r}"
            )
            name = rec["id"]
        address = (
            None if ansible_host == "none" else rec.get(_EC2_FIELD[ansible_host]) or rec.get("private_ip")
        )
        hvars = {
            "ec2_instance_id": rec["id"],
            "ec2_region": rec["region"],
            "ec2_availability_zone": rec.get("az"),
            "ec2_instance_type": rec.get("type"),
            "ec2_private_ip_address": rec.get("private_ip"),
            "ec2_public_ip_address": rec.get("public_ip"),
            "ec2_private_dns_name": rec.get("private_dns"),
            "ec2_tags": tags,
        }
        if address:
            hvars["ansible_host"] = address
        host_vars_own[name] = mark.ec2(hvars)
        site_hosts[site.name][name] = tuple(r for r in roles_order if r in roles)

    # Live hosts serve one customer's Live and nothing else
    host_sites: dict = {}
    live_owner: dict = {}
    for site in sites:
        for host in site_hosts[site.name]:
            host_sites.setdefault(host, []).append(site)
            if site.tier == "live":
                owner = live_owner.get(host)
                if owner is not None and owner != site.customer:
                    ctx.fail(
                        f"customer {site.customer!r}, tier 'live', hosts",
                        f"host {host!r} is already claimed by customer {owner!r}'s Live; "
                        "a Live host serves one customer",
                    )
                live_owner[host] = site.customer
    for host, owner in live_owner.items():
        others = [s.name for s in host_sites[host] if s.tier != "live"]
        if others:
            ctx.fail(
                f"customer {owner!r}, tier 'live', hosts",
                f"host {host!r} also carries the non-Live site(s) {', '.join(others)}; "
                "a Live host serves Live only",
            )

    # groups: tiers, flavours, host roles, then customers and sites
    used = {site.customer for site in sites}
    customers_used = [c for c in estate.customers if c in used]
    inv.groups = [*TIERS, *FLAVOURS, *roles_order, *customers_used, *(s.group for s in sites)]
    inv.children = [(estate.customers[c], c) for c in customers_used]
    for site in sites:
        inv.children.append((site.customer, site.group))
        inv.children.append((site.tier, site.group))

    # site dicts, built once per site; every host gets its own copy (see _site_entry)
    base: dict = {}
    for site in sites:
        members = site_hosts[site.name]
        if not members and not site.hosts_declared:
            inv.warnings.append(
                f"{estate.source}: site {site.name} has no hosts (no static host, no EC2 instance)"
            )
        elif members and not any("web" in roles for roles in members.values()) and "web" in roles_order:
            inv.warnings.append(f"{estate.source}: site {site.name} has no web host")
        entry = {
            "name": site.name,
            "customer": site.customer,
            "tier": site.tier,
            "flavour": site.flavour,
            "wwwroot": site.wwwroot,
            "tier_rank": site.tier_rank,
            "promotes_from": site.promotes_from,
            "maintenance_windows": site.maintenance_windows,
            "group": site.group,
            "site_user": site.site_user,
            "db_name": site.db_name,
            "db_user": site.db_user,
            "code_dir": site.code_dir,
            "dataroot": site.dataroot,
        }
        entry = mark.estate(entry)
        for role in roles_order:  # static host names, or EC2 ones (valid_host_name: no template)
            entry[f"{role}_hosts"] = mark.ec2([h for h, roles in members.items() if role in roles])
        entry["vars"] = mark.estate(site.vars)
        base[site.name] = entry

    for host in estate.static_hosts:
        if host not in host_sites and not limited:
            inv.warnings.append(f"{estate.source}: host {host!r} is declared but serves no site")

    # hosts
    estate_name = mark.estate(estate.name)
    marked_role = {role: mark.estate(role) for role in roles_order}
    for host, host_site_list in host_sites.items():
        entries = []
        host_roles_union: set = set()
        for site in sorted(host_site_list, key=lambda s: s.name):
            roles = [marked_role[r] for r in site_hosts[site.name][host]]
            host_roles_union.update(roles)
            entries.append(_site_entry(base[site.name], roles))
        hvars = dict(host_vars_own[host])
        hvars["estate_name"] = estate_name
        hvars["estate_sites"] = entries
        hvars["estate_host_roles"] = [marked_role[r] for r in roles_order if r in host_roles_union]
        tiers = {e["tier"] for e in entries}
        if len(tiers) == 1:
            hvars["estate_tier"] = entries[0]["tier"]
            hvars["estate_tier_rank"] = entries[0]["tier_rank"]
        if len(entries) == 1:
            only = entries[0]
            hvars["estate_site"] = _site_entry(base[host_site_list[0].name], only["host_roles"])
            hvars["estate_site_name"] = only["name"]
            hvars["estate_customer"] = only["customer"]
            hvars["estate_flavour"] = only["flavour"]
            hvars["estate_wwwroot"] = only["wwwroot"]
        groups = [site.group for site in host_site_list]
        groups += [r for r in roles_order if r in host_roles_union]
        # "own": the static host's vars as written in the estate (the rest is built here)
        inv.hosts[host] = {"groups": groups, "vars": hvars, "own": tuple(estate.static_hosts.get(host, ()))}
    return inv

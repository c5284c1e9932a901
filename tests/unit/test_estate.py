"""Unit tests of plugins/module_utils/estate.py: parsing, validation messages, the built inventory."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import estate as est
import pytest
import yaml
from estate import (
    EstateError,
    build_inventory,
    check_duplicate_keys,
    check_top_level,
    ec2_hostname,
    ec2_record,
    parse_estate,
    parse_window,
    select_sites,
)

REPO = Path(__file__).resolve().parents[2]
SRC = "inventories/x/estate.yml"


def minimal() -> dict:
    """A small valid estate: two customers, a shared dev host, a dedicated Live host each."""
    return {
        "name": "test",
        "timezone": "Europe/London",
        "vars": {"level": "estate", "estate_only": 1},
        "tiers": {
            "dev": {
                "wwwroot": "http://{customer}-dev.lan",
                "hosts": {"dev1": ["web", "db"]},
                "vars": {"level": "dev"},
            },
            "qa": {"wwwroot": "https://{customer}-{tier}.example.net", "hosts": {"qa1": "web"}},
            "live": {"maintenance_windows": ["sun 02:00-04:00"], "vars": {"backups": True}},
        },
        "hosts": {"dev1": {"ansible_host": "192.0.2.1"}, "qa1": None, "live1": {}, "live2": {}, "db2": {}},
        "customers": {
            "acme": {
                "flavour": "moodle",
                "vars": {"level": "customer", "theme": "boost"},
                "tiers": {
                    "dev": {},
                    "qa": {"vars": {"level": "acme-qa"}},
                    "live": {"wwwroot": "https://learn.acme.example", "hosts": {"live1": ["web", "db"]}},
                },
            },
            "globex": {
                "flavour": "totara",
                "tiers": {
                    "dev": None,
                    "qa": {},
                    "live": {
                        "wwwroot": "https://globex.example/lms",
                        "hosts": {"live2": ["web"], "db2": ["db"]},
                        "maintenance_windows": [{"days": "sat", "start": "23:00", "end": "01:00"}],
                    },
                },
            },
        },
    }


def parse(cfg: dict):
    return parse_estate(cfg, SRC)


def fails(cfg: dict, message: str):
    """The estate is refused with exactly this message."""
    with pytest.raises(EstateError) as info:
        parse(cfg)
    assert str(info.value) == message
    return info


# ----------------------------------------------------------------------------------------- parsing


def test_minimal_estate_sites_and_merging():
    estate = parse(minimal())
    assert estate.name == "test"
    assert list(estate.sites) == [
        "acme-dev",
        "acme-qa",
        "acme-live",
        "globex-dev",
        "globex-qa",
        "globex-live",
    ]
    acme_qa = estate.sites["acme-qa"]
    assert (acme_qa.customer, acme_qa.tier, acme_qa.flavour, acme_qa.tier_rank, acme_qa.promotes_from) == (
        "acme",
        "qa",
        "moodle",
        1,
        "dev",
    )
    assert acme_qa.wwwroot == "https://acme-qa.example.net"
    assert acme_qa.hosts == {"qa1": ("web",)}
    # estate vars < tier vars < customer vars < customer's tier vars
    assert acme_qa.vars == {"level": "acme-qa", "estate_only": 1, "theme": "boost"}
    assert estate.sites["acme-dev"].vars == {"level": "customer", "estate_only": 1, "theme": "boost"}
    assert estate.sites["globex-dev"].vars == {"level": "dev", "estate_only": 1}
    assert estate.sites["globex-live"].vars == {"level": "estate", "estate_only": 1, "backups": True}
    assert estate.sites["acme-live"].maintenance_windows == [
        {"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "Europe/London"}
    ]
    assert estate.sites["globex-live"].maintenance_windows == [
        {"days": ["sat"], "start": "23:00", "end": "01:00", "timezone": "Europe/London"}
    ]
    assert estate.sites["acme-dev"].maintenance_windows == []
    assert estate.sites["globex-dev"].tier_rank == 0 and estate.sites["globex-dev"].promotes_from is None
    assert estate.sites["globex-live"].promotes_from == "qa"
    assert estate.static_hosts["qa1"] == {}
    assert estate.static_hosts["dev1"] == {"ansible_host": "192.0.2.1"}


def test_default_name_and_timezone():
    cfg = minimal()
    del cfg["name"], cfg["timezone"]
    cfg["tiers"]["live"]["maintenance_windows"] = ["sun 02:00-04:00"]
    estate = parse_estate(cfg, SRC, default_name="x")
    assert estate.name == "x"
    assert estate.sites["acme-live"].maintenance_windows[0]["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sun 02:00-04:00", (["sun"], "02:00", "04:00", "UTC")),
        (
            "mon-fri 22:00-23:30 Europe/London",
            (["mon", "tue", "wed", "thu", "fri"], "22:00", "23:30", "Europe/London"),
        ),
        ("sat,sun 1:00-5:00", (["sat", "sun"], "01:00", "05:00", "UTC")),
        ("fri-mon 23:00 - 01:00", (["mon", "fri", "sat", "sun"], "23:00", "01:00", "UTC")),
        (
            "* 00:00-24:00 America/New_York",
            (["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "24:00", "America/New_York"),
        ),
        ("Sunday 02:00-03:00", (["sun"], "02:00", "03:00", "UTC")),
    ],
)
def test_window_strings(text, expected):
    window = parse_window(text, "w", SRC)
    assert (window["days"], window["start"], window["end"], window["timezone"]) == expected


def test_window_mapping_with_day_list():
    window = parse_window(
        {"days": ["wed", "mon"], "start": "06:00", "end": "07:30", "timezone": "Asia/Tokyo"}, "w", SRC
    )
    assert window == {"days": ["mon", "wed"], "start": "06:00", "end": "07:30", "timezone": "Asia/Tokyo"}


# ----------------------------------------------------------------------------------- validation


def test_unknown_tier():
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["prod"] = {}
    fails(cfg, f"{SRC}: customer 'acme', tiers: unknown tier 'prod' (tiers are dev, qa, live)")


def test_unknown_tier_with_suggestion():
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["livee"] = cfg["customers"]["acme"]["tiers"].pop("live")
    fails(
        cfg,
        f"{SRC}: customer 'acme', tiers: unknown tier 'livee' (tiers are dev, qa, live) - did you mean "
        "'live'?",
    )


def test_unknown_tier_in_tier_defaults():
    cfg = minimal()
    cfg["tiers"]["staging"] = {}
    fails(cfg, f"{SRC}: tiers: unknown key 'staging' (expected one of: dev, qa, live)")


def test_missing_tier():
    cfg = minimal()
    del cfg["customers"]["globex"]["tiers"]["qa"]
    fails(
        cfg,
        f"{SRC}: customer 'globex', tiers: missing tier 'qa': every customer has the tiers dev, qa, live "
        "(write `qa: {}` to take the estate's defaults)",
    )


def test_missing_tiers_block():
    cfg = minimal()
    del cfg["customers"]["globex"]["tiers"]
    fails(cfg, f"{SRC}: customer 'globex', tiers: is missing: every customer has the tiers dev, qa, live")


def test_duplicate_site_from_repeated_tier_key():
    text = (
        "plugin: three_instance\n"
        "customers:\n"
        "  acme:\n"
        "    flavour: moodle\n"
        "    tiers:\n"
        "      dev: {}\n"
        "      qa: {}\n"
        "      dev: {}\n"
        "      live: {}\n"
    )
    with pytest.raises(EstateError) as info:
        check_duplicate_keys(text, SRC)
    assert str(info.value) == (
        f"{SRC}: customer 'acme', tiers: duplicate site 'acme-dev' (tier 'dev' defined twice, line 8, first "
        "at line 6)"
    )


def test_duplicate_site_from_repeated_customer():
    text = "customers:\n  acme:\n    flavour: moodle\n  globex: {}\n  acme:\n    flavour: totara\n"
    with pytest.raises(EstateError) as info:
        check_duplicate_keys(text, SRC)
    assert str(info.value) == (
        f"{SRC}: customer 'acme': customer defined twice (line 5, first at line 2): "
        "duplicate sites acme-dev, acme-qa, acme-live"
    )


def test_duplicate_key_elsewhere_and_vault_tags_pass():
    with pytest.raises(
        EstateError, match=re.escape("hosts.dev1: duplicate key 'ansible_host' (line 4, first at line 3)")
    ):
        check_duplicate_keys("hosts:\n  dev1:\n    ansible_host: a\n    ansible_host: b\n", SRC)
    # tags Ansible understands (vault) are not constructed by the scan
    check_duplicate_keys("vars:\n  secret: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6162\n", SRC)


def test_invalid_yaml():
    with pytest.raises(EstateError, match=r"^inventories/x/estate.yml: not valid YAML: "):
        check_duplicate_keys("customers: [\n", SRC)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("sun 02:00-25:00", "maintenance_windows[0].end: '25:00' is not HH:MM"),
        ("sun 02:60-03:00", "maintenance_windows[0].start: '02:60' is not HH:MM"),
        ("sun 24:00-03:00", "maintenance_windows[0].start: '24:00' is not HH:MM"),
        (
            "sun 02:00",
            "maintenance_windows[0]: 'sun 02:00' is not a window like 'sun 02:00-04:00 Europe/London'",
        ),
        (
            "sonday 02:00-04:00",
            "maintenance_windows[0].days: 'sonday': unknown day 'sonday' (days are mon, tue, wed, thu, fri, "
            "sat, sun)",
        ),
        (
            "mon-fry 02:00-04:00",
            "maintenance_windows[0].days: 'mon-fry': unknown day 'fry' (days are mon, tue, wed, thu, fri, "
            "sat, sun)",
        ),
        ("sun 02:00-02:00", "maintenance_windows[0]: empty window: start and end are both 02:00"),
        (
            "sun 02:00-04:00 Mars/Olympus",
            "maintenance_windows[0].timezone: 'Mars/Olympus' is not a known time zone (e.g. Europe/London, "
            "UTC)",
        ),
        ({"days": "sun", "start": "02:00"}, "maintenance_windows[0].end: is missing"),
        (
            {"days": "sun", "start": "02:00", "end": "03:00", "tz": "UTC"},
            "maintenance_windows[0]: unknown key 'tz' (expected one of: days, start, end, timezone)",
        ),
        (
            {"days": "sun", "start": 1320, "end": "23:30"},
            "maintenance_windows[0].start: 1320 is not HH:MM (YAML reads an unquoted 22:00 as a number: "
            "quote the time)",
        ),
        (
            42,
            "maintenance_windows[0]: must be a string like 'sun 02:00-04:00 Europe/London' or a mapping, "
            "got a number",
        ),
    ],
)
def test_malformed_window(window, message):
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["live"]["maintenance_windows"] = [window]
    fails(cfg, f"{SRC}: customer 'acme', tier 'live', {message}")


def test_malformed_window_in_tier_defaults():
    cfg = minimal()
    cfg["tiers"]["live"]["maintenance_windows"] = ["sun 25:00-26:00"]
    fails(cfg, f"{SRC}: tiers.live.maintenance_windows[0].start: '25:00' is not HH:MM")


def test_live_needs_a_window():
    cfg = minimal()
    del cfg["tiers"]["live"]["maintenance_windows"]
    fails(
        cfg,
        f"{SRC}: customer 'acme', tier 'live', maintenance_windows: is missing: Live changes only in a "
        "maintenance "
        "window (set one here or in tiers.live.maintenance_windows)",
    )


def test_live_host_claimed_by_two_customers():
    cfg = minimal()
    cfg["customers"]["globex"]["tiers"]["live"]["hosts"] = {"live1": ["web"], "db2": ["db"]}
    estate = parse(cfg)
    with pytest.raises(EstateError) as info:
        build_inventory(estate)
    assert str(info.value) == (
        f"{SRC}: customer 'globex', tier 'live', hosts: host 'live1' is already claimed by customer "
        "'acme''s Live; "
        "a Live host serves one customer"
    )


def test_live_host_with_a_non_live_site():
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["qa"]["hosts"] = {"live1": ["web"]}
    with pytest.raises(EstateError) as info:
        build_inventory(parse(cfg))
    assert str(info.value) == (
        f"{SRC}: customer 'acme', tier 'live', hosts: host 'live1' also carries the non-Live site(s) "
        "acme-qa; "
        "a Live host serves Live only"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["customers"]["acme"].update(flavor="moodle"),
            "customer 'acme': unknown key 'flavor' (expected one of: flavour, vars, tiers) - did you mean "
            "'flavour'?",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["dev"].update(wwwrot="http://x.lan"),
            "customer 'acme', tier 'dev': unknown key 'wwwrot' (expected one of: wwwroot, hosts, "
            "maintenance_windows, vars)"
            " - did you mean 'wwwroot'?",
        ),
        (
            lambda c: c["tiers"]["qa"].update(hostz={}),
            "tiers.qa: unknown key 'hostz' (expected one of: wwwroot, hosts, maintenance_windows, vars) - "
            "did you mean 'hosts'?",
        ),
    ],
)
def test_unknown_keys(mutate, message):
    cfg = minimal()
    mutate(cfg)
    fails(cfg, f"{SRC}: {message}")


def test_unknown_top_level_key():
    with pytest.raises(EstateError) as info:
        check_top_level({"plugin": "three_instance", "customer": {}}, ["plugin", "customers", "hosts"], SRC)
    expected = (
        "unknown key 'customer' (expected one of: customers, hosts, plugin) - did you mean 'customers'?"
    )
    assert str(info.value) == f"{SRC}: {expected}"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["customers"].update({"acme-uk": c["customers"]["acme"]}),
            "customer 'acme-uk': a customer name is lowercase letters and digits, starting with a letter "
            "(it becomes part of site names like acme-dev and group names like acme_dev)",
        ),
        (
            lambda c: c["customers"].update({"Acme": c["customers"]["acme"]}),
            "customer 'Acme': a customer name is lowercase letters and digits, starting with a letter "
            "(it becomes part of site names like acme-dev and group names like acme_dev)",
        ),
        (
            lambda c: c["customers"].update({"web": c["customers"]["acme"]}),
            "customer 'web': 'web' is the name of a group of the estate (tier, flavour or host role)",
        ),
        (
            lambda c: c["customers"].update({"live1": c["customers"]["acme"]}),
            "customer 'live1': 'live1' is also the name of a host; customer groups and hosts must differ",
        ),
        (
            lambda c: c["customers"]["acme"].pop("flavour"),
            "customer 'acme', flavour: is missing (one of moodle, totara)",
        ),
        (
            lambda c: c["customers"]["acme"].update(flavour="canvas"),
            "customer 'acme', flavour: 'canvas' is not one of moodle, totara",
        ),
        (
            lambda c: c["tiers"]["qa"].pop("wwwroot"),
            "customer 'acme', tier 'qa', wwwroot: is missing (set it here or a pattern in tiers.qa.wwwroot)",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["live"].update(wwwroot="https://learn.acme.example/"),
            "customer 'acme', tier 'live', wwwroot: 'https://learn.acme.example/' must not end with a slash "
            "(Moodle's wwwroot has none)",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["live"].update(wwwroot="learn.acme.example"),
            "customer 'acme', tier 'live', wwwroot: 'learn.acme.example' is not an http(s) URL",
        ),
        (
            lambda c: c["tiers"]["dev"].update(wwwroot="http://{client}.dev.lan"),
            "customer 'acme', tier 'dev', wwwroot: 'http://{client}.dev.lan': unknown placeholder {client} "
            "(use {customer} and {tier})",
        ),
        (
            lambda c: c["customers"]["globex"]["tiers"]["live"].update(wwwroot="https://learn.acme.example"),
            "customer 'globex', tier 'live', wwwroot: 'https://learn.acme.example' is already the wwwroot "
            "of site acme-live",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["live"].update(hosts={"live11": ["web"]}),
            "customer 'acme', tier 'live', hosts: host 'live11' is not declared under the estate's 'hosts'"
            " - did you mean 'live1'?",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["live"].update(hosts={"live1": ["web", "dbs"]}),
            "customer 'acme', tier 'live', hosts.live1: unknown host role 'dbs' (host roles are web, db) - "
            "did you mean 'db'?",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["live"].update(hosts={"live1": None}),
            "customer 'acme', tier 'live', hosts.live1: must name the host's roles (web, db), got None",
        ),
        (
            lambda c: c["hosts"]["dev1"].update(estate_tier="dev"),
            "hosts.dev1: 'estate_tier': variables named estate_* are set by the estate itself",
        ),
        (
            lambda c: c["hosts"].update(live={}),
            "hosts: host 'live' has the name of a group of the estate; name it e.g. live1",
        ),
        (
            lambda c: c.update(timezone="Europe/Londn"),
            "timezone: 'Europe/Londn' is not a known time zone (e.g. Europe/London, UTC)",
        ),
        (lambda c: c.update(customers={}), "customers: is missing: an estate declares at least one customer"),
        (lambda c: c["customers"].update(acme=["moodle"]), "customer 'acme': must be a mapping, got a list"),
        (
            lambda c: c["customers"]["acme"].update(vars="x"),
            "customer 'acme', vars: must be a mapping, got a string",
        ),
    ],
)
def test_field_errors(mutate, message):
    cfg = minimal()
    mutate(cfg)
    fails(cfg, f"{SRC}: {message}")


def test_more_host_roles():
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["live"]["hosts"] = {"live1": ["web", "cache"]}
    estate = parse_estate(cfg, SRC, host_roles=["web", "db", "cache"])
    inv = build_inventory(estate)
    assert inv.hosts["live1"]["vars"]["estate_sites"][0]["cache_hosts"] == ["live1"]
    assert "cache" in inv.groups and "cache" in inv.hosts["live1"]["groups"]


# ------------------------------------------------------------------------------------ inventory


def test_inventory_groups_and_vars():
    inv = build_inventory(parse(minimal()))
    assert inv.groups[:7] == ["dev", "qa", "live", "moodle", "totara", "web", "db"]
    assert set(inv.groups[7:]) == {
        "acme",
        "globex",
        "acme_dev",
        "acme_qa",
        "acme_live",
        "globex_dev",
        "globex_qa",
        "globex_live",
    }
    assert ("moodle", "acme") in inv.children and ("totara", "globex") in inv.children
    assert ("acme", "acme_live") in inv.children and ("live", "acme_live") in inv.children
    assert set(inv.hosts) == {"dev1", "qa1", "live1", "live2", "db2"}

    dev1 = inv.hosts["dev1"]
    assert dev1["groups"] == ["acme_dev", "globex_dev", "web", "db"]
    hv = dev1["vars"]
    assert hv["ansible_host"] == "192.0.2.1"
    assert hv["estate_name"] == "test"
    assert [s["name"] for s in hv["estate_sites"]] == ["acme-dev", "globex-dev"]
    assert hv["estate_tier"] == "dev" and hv["estate_tier_rank"] == 0
    assert "estate_site" not in hv and "estate_customer" not in hv and "estate_site_name" not in hv
    site = hv["estate_sites"][1]
    assert site == {
        "name": "globex-dev",
        "customer": "globex",
        "tier": "dev",
        "flavour": "totara",
        "wwwroot": "http://globex-dev.lan",
        "tier_rank": 0,
        "promotes_from": None,
        "maintenance_windows": [],
        "group": "globex_dev",
        "site_user": "globex-dev",
        "db_name": "globex_dev",
        "db_user": "globex_dev",
        "code_dir": "/srv/lms/globex-dev",
        "dataroot": "/var/lib/lms/globex-dev",
        "web_hosts": ["dev1"],
        "db_hosts": ["dev1"],
        "vars": {"level": "dev", "estate_only": 1},
        "host_roles": ["web", "db"],
    }

    live2 = inv.hosts["live2"]["vars"]
    assert inv.hosts["live2"]["groups"] == ["globex_live", "web"]
    assert live2["estate_site_name"] == "globex-live"
    assert live2["estate_customer"] == "globex"
    assert live2["estate_flavour"] == "totara"
    assert live2["estate_wwwroot"] == "https://globex.example/lms"
    assert live2["estate_tier"] == "live" and live2["estate_tier_rank"] == 2
    assert live2["estate_site"]["host_roles"] == ["web"]
    assert live2["estate_site"]["web_hosts"] == ["live2"] and live2["estate_site"]["db_hosts"] == ["db2"]
    assert live2["estate_host_roles"] == ["web"]
    assert inv.hosts["db2"]["vars"]["estate_site"]["host_roles"] == ["db"]
    assert inv.warnings == []


def test_host_with_sites_on_two_tiers_has_no_estate_tier():
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["qa"]["hosts"] = {"dev1": ["web"]}
    hv = build_inventory(parse(cfg)).hosts["dev1"]["vars"]
    assert [s["name"] for s in hv["estate_sites"]] == ["acme-dev", "acme-qa", "globex-dev"]
    assert "estate_tier" not in hv and "estate_tier_rank" not in hv


def test_limit_sites():
    estate = parse(minimal())
    assert select_sites(estate, "acme-*") == ["acme-dev", "acme-qa", "acme-live"]
    assert select_sites(estate, ["*-live", "globex"]) == [
        "acme-live",
        "globex-dev",
        "globex-qa",
        "globex-live",
    ]
    assert select_sites(estate, "") == select_sites(estate, [" "]) == list(estate.sites)  # empty: no limit
    assert set(build_inventory(estate, limit_sites="").hosts) == {"dev1", "qa1", "live1", "live2", "db2"}
    inv = build_inventory(estate, limit_sites=["acme-dev", "globex-live"])
    assert set(inv.hosts) == {"dev1", "live2", "db2"}
    assert inv.hosts["dev1"]["vars"]["estate_site_name"] == "acme-dev"
    assert "acme_qa" not in inv.groups
    with pytest.raises(
        EstateError, match=re.escape(f"{SRC}: limit_sites: pattern 'acme-prod' matches no site of the estate")
    ):
        build_inventory(estate, limit_sites=["acme-prod"])


def test_warnings_for_unused_host_and_empty_site():
    cfg = minimal()
    cfg["hosts"]["spare1"] = {}
    cfg["tiers"]["qa"].pop("hosts")
    inv = build_inventory(parse(cfg))
    assert f"{SRC}: host 'spare1' is declared but serves no site" in inv.warnings
    assert f"{SRC}: site acme-qa has no hosts (no static host, no EC2 instance)" in inv.warnings
    assert "spare1" not in inv.hosts


# ------------------------------------------------------------------------------------------ EC2


def instance(iid, customer, tier, roles, name=None, region_ip="10.0.0.1", public=None):
    tags = [{"Key": "lms:customer", "Value": customer}, {"Key": "lms:tier", "Value": tier}]
    if roles is not None:
        tags.append({"Key": "lms:role", "Value": roles})
    if name:
        tags.append({"Key": "Name", "Value": name})
    data = {
        "InstanceId": iid,
        "InstanceType": "t3.small",
        "Placement": {"AvailabilityZone": "eu-west-1a"},
        "PrivateIpAddress": region_ip,
        "PrivateDnsName": f"ip-{region_ip.replace('.', '-')}.internal",
        "PublicDnsName": "",
        "Tags": tags,
    }
    if public:
        data["PublicIpAddress"] = public
    return data


def ec2_estate():
    cfg = minimal()
    cfg["tiers"]["qa"].pop("hosts")
    cfg["hosts"].pop("qa1")
    return parse(cfg)


def test_ec2_record_and_hostname_preference():
    rec = ec2_record(instance("i-1", "acme", "qa", "web", name="acme-qa1"), "eu-west-1")
    assert rec == {
        "id": "i-1",
        "region": "eu-west-1",
        "az": "eu-west-1a",
        "type": "t3.small",
        "private_ip": "10.0.0.1",
        "public_ip": None,
        "private_dns": "ip-10-0-0-1.internal",
        "public_dns": None,
        "tags": {"lms:customer": "acme", "lms:tier": "qa", "lms:role": "web", "Name": "acme-qa1"},
    }
    assert ec2_hostname(rec, ["tag:Name", "private-ip-address"]) == "acme-qa1"
    assert ec2_hostname(rec, ["tag:Missing", "dns-name", "private-ip-address"]) == "10.0.0.1"
    assert ec2_hostname(rec, ["instance-id"]) == "i-1"


def test_ec2_hosts_join_sites():
    records = [
        ec2_record(
            instance("i-1", "acme", "qa", "web,db", name="acme-qa1", public="198.51.100.7"), "eu-west-1"
        ),
        ec2_record(instance("i-2", "globex", "qa", "web db", region_ip="10.9.0.2"), "eu-west-2"),
    ]
    inv = build_inventory(ec2_estate(), records, ansible_host="ip-address")
    host = inv.hosts["acme-qa1"]
    assert host["groups"] == ["acme_qa", "web", "db"]
    hv = host["vars"]
    assert hv["ansible_host"] == "198.51.100.7"
    assert hv["ec2_instance_id"] == "i-1" and hv["ec2_region"] == "eu-west-1"
    assert hv["estate_site_name"] == "acme-qa" and hv["estate_site"]["host_roles"] == ["web", "db"]
    # no tag Name: the private DNS name; no public IP: ansible_host falls back to the private one
    other = inv.hosts["ip-10-9-0-2.internal"]["vars"]
    assert other["ansible_host"] == "10.9.0.2"
    assert other["estate_site"]["web_hosts"] == ["ip-10-9-0-2.internal"]
    assert inv.warnings == []


@pytest.mark.parametrize(
    ("inst", "problem"),
    [
        (instance("i-7", "nobody", "qa", "web"), "tag lms:customer='nobody' names no customer of the estate"),
        (instance("i-7", "acme", "prod", "web"), "tag lms:tier='prod' is not a tier (dev, qa, live)"),
        (instance("i-7", "acme", "qa", None), "tag lms:role is missing (host roles: web, db)"),
        (instance("i-7", "acme", "qa", "web,cache"), "tag lms:role='web,cache': unknown host role 'cache'"),
    ],
)
def test_ec2_unknown_policies(inst, problem):
    records = [ec2_record(inst, "eu-west-1")]
    message = f"{SRC}: EC2 instance i-7 in eu-west-1: {problem}"
    inv = build_inventory(ec2_estate(), records)
    assert f"{message}; instance skipped" in inv.warnings
    assert not any(h.startswith("ip-") for h in inv.hosts)
    inv = build_inventory(ec2_estate(), records, on_unknown="ignore")
    assert not any("i-7" in w for w in inv.warnings)
    with pytest.raises(EstateError) as info:
        build_inventory(ec2_estate(), records, on_unknown="error")
    assert str(info.value) == message


def test_ec2_name_collisions_fall_back_to_instance_id():
    records = [
        ec2_record(instance("i-1", "acme", "qa", "web", name="web1"), "eu-west-1"),
        ec2_record(instance("i-2", "globex", "qa", "web", name="web1"), "eu-west-1"),
        ec2_record(instance("i-3", "globex", "qa", "db", name="dev1"), "eu-west-1"),
    ]
    inv = build_inventory(ec2_estate(), records)
    assert {"web1", "i-2", "i-3", "dev1"} <= set(inv.hosts)
    assert inv.hosts["dev1"]["vars"]["ansible_host"] == "192.0.2.1"  # the static host is untouched
    assert any("host name 'web1' is already taken" in w for w in inv.warnings)


def test_bad_ec2_options():
    with pytest.raises(EstateError, match=re.escape("hostnames: 'name' is not tag:<key> or one of")):
        build_inventory(ec2_estate(), hostnames=["name"])
    with pytest.raises(EstateError, match=re.escape("ec2_unknown: 'fail' is not one of warn, error, ignore")):
        build_inventory(ec2_estate(), on_unknown="fail")


# ----------------------------------------------------------------------------- the repo's estates


def load(path: Path) -> dict:
    text = path.read_text()
    check_duplicate_keys(text, str(path))
    data = yaml.safe_load(text)
    assert data.pop("plugin") == "three_instance"
    return data


def test_local_estate():
    inv = build_inventory(parse_estate(load(REPO / "inventories/local/estate.yml"), "local"))
    assert set(inv.hosts) == {"dev1", "qa1", "live1"}
    for host in inv.hosts.values():
        assert host["vars"]["ansible_connection"] == "podman_pipelined"
        assert host["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"
        assert set(host["groups"]) >= {"web", "db"}
    dev1 = inv.hosts["dev1"]["vars"]
    assert [s["name"] for s in dev1["estate_sites"]] == ["acme-dev", "globex-dev"]
    assert [s["wwwroot"] for s in dev1["estate_sites"]] == [
        "http://acme-dev.local",
        "http://globex-dev.local",
    ]
    assert [s["name"] for s in inv.hosts["qa1"]["vars"]["estate_sites"]] == ["acme-qa", "globex-qa"]
    assert inv.hosts["live1"]["vars"]["estate_site_name"] == "acme-live"
    assert inv.warnings == []


def test_example_estate():
    data = load(REPO / "inventories/example/estate.yml")
    estate = parse_estate(copy.deepcopy(data), "example")
    assert {estate.customers[c] for c in estate.customers} == {"moodle", "totara"}
    assert len(estate.customers) == 3
    inv = build_inventory(estate)
    devbox = inv.hosts["devbox1"]["vars"]
    assert len(devbox["estate_sites"]) == 3
    live_web = [h for h, e in inv.hosts.items() if "globex_live" in e["groups"] and "web" in e["groups"]]
    assert len(live_web) == 2
    assert inv.warnings == []


# ----------------------------------------------------------------------------- issue 17 items 8 and 11


@pytest.mark.parametrize(
    "name",
    [
        "../../../tmp/x",
        "/etc/passwd",
        "a/b",
        "..",
        "x y",
        "x;rm -rf",
        "$(id)",
        "host\tx",
        "-oProxyCommand=x",
        "x" * 300,
    ],
)
def test_ec2_names_follow_the_static_host_rule(name):
    records = [
        ec2_record(instance("i-0bad", "acme", "qa", "web", name=name), "eu-west-1"),
        ec2_record(instance("i-0good", "acme", "qa", "db", name="acme-qa-db1"), "eu-west-1"),
    ]
    inv = build_inventory(ec2_estate(), records)
    assert name not in inv.hosts and "i-0bad" not in inv.hosts
    assert "acme-qa-db1" in inv.hosts
    warning = next(w for w in inv.warnings if "i-0bad" in w)
    assert "not a valid host name" in warning and "skipped" in warning
    assert len(warning) < 400  # a long name is cut short
    with pytest.raises(EstateError, match="i-0bad"):
        build_inventory(ec2_estate(), records, on_unknown="error")


def test_ec2_instances_of_another_estate_are_skipped():
    mine = instance("i-1", "acme", "qa", "web", name="acme-qa1")
    mine["Tags"].append({"Key": "lms:estate", "Value": "test"})
    other = instance("i-2", "acme", "qa", "web", name="acme-qa2")
    other["Tags"].append({"Key": "lms:estate", "Value": "elsewhere"})
    untagged = instance("i-3", "acme", "qa", "web", name="acme-qa3")
    records = [ec2_record(i, "eu-west-1") for i in (mine, other, untagged)]
    inv = build_inventory(ec2_estate(), records, tag_estate="lms:estate")
    assert "acme-qa1" in inv.hosts
    assert "acme-qa2" not in inv.hosts and "acme-qa3" not in inv.hosts
    assert any("i-2" in w and "lms:estate" in w for w in inv.warnings)


def test_ec2_discovery_needs_the_estate_tag_filter():
    est.check_ec2_filters(SRC, "test", {"tag:lms:estate": "test"}, "lms:estate")
    est.check_ec2_filters(SRC, "test", {"tag:lms:estate": ["test"], "vpc-id": "vpc-1"}, "lms:estate")
    with pytest.raises(
        EstateError, match=re.escape("ec2_filters: ec2: true needs the estate tag filter")
    ) as info:
        est.check_ec2_filters(SRC, "test", {}, "lms:estate")
    assert "'tag:lms:estate': 'test'" in str(info.value) and str(info.value).startswith(SRC)
    with pytest.raises(EstateError, match="ec2_filters: ec2: true needs the estate tag filter"):
        est.check_ec2_filters(SRC, "test", {"tag:Owner": "ops"}, "lms:estate")
    with pytest.raises(EstateError, match=r"'other' is not this estate's name 'test'"):
        est.check_ec2_filters(SRC, "test", {"tag:lms:estate": "other"}, "lms:estate")
    with pytest.raises(EstateError, match=r"is not this estate's name 'test'"):
        est.check_ec2_filters(SRC, "test", {"tag:lms:estate": ["test", "other"]}, "lms:estate")
    with pytest.raises(EstateError, match="tag_estate"):
        est.check_ec2_filters(SRC, "test", {"tag:": "test"}, "")


@pytest.mark.parametrize(
    "url",
    [
        'https://acme.example;"{})',
        "https://acme.example;include",
        "https://acme}.example",
        "https://acme.example\n",
        "https://user@acme.example",
        "https://-acme.example",
        "https://acme-.example",
        "https://acme..example",
        "https://" + "a" * 64 + ".example",
        "https://" + ".".join(["a" * 60] * 5),
        "https://acme.example:0",
        "https://acme.example:65536",
        "https://acme.example:80x",
        "https://acme_x.example",
        'https://acme.example/lms";',
        "https://acme.example/l ms",
    ],
)
def test_wwwroot_host_is_an_rfc1123_name(url):
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["live"]["wwwroot"] = url
    with pytest.raises(
        EstateError, match=r"customer 'acme', tier 'live', wwwroot: .*(is not an http|placeholder)"
    ):
        parse(cfg)


@pytest.mark.parametrize(
    "url",
    [
        "https://learn.acme.example",
        "http://localhost:8080",
        "https://10.0.0.7:65535/moodle",
        "https://a.example/lms/sub-dir_1.x",
        "https://" + ".".join(["a" * 63] * 3) + ".example",
        "http://ACME.Example",
    ],
)
def test_wwwroot_good_names_pass(url):
    cfg = minimal()
    cfg["customers"]["acme"]["tiers"]["live"]["wwwroot"] = url
    assert parse(cfg).sites["acme-live"].wwwroot == url


# ----- trust of host var strings: AWX stores `ansible-inventory --list --export` (issue 20) ------------


class Trusted(str):
    """Stands for ansible-core's trust_as_template."""


class Unsafe(str):
    """Stands for wrap_var."""


def strings(value, path=""):
    """Every string of nested host vars, with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def test_possibly_template():
    for text in ("{{ x }}", "a {% if %}", "{# c #}", "#jinja2:variable_start_string:'[['\n[[ x ]]"):
        assert est.possibly_template(text), text
    for text in ("plain", "http://{customer}.lan", "{ 'a': 1 }", "50%", "#comment"):
        assert not est.possibly_template(text), text


def test_estate_strings_trusted_ec2_templates_wrapped():
    cfg = ec2_estate_config()
    cfg["vars"]["greeting"] = "{{ 'hi' | upper }}"  # the operator's own template: trusted, as in YAML
    evil = "{{ lookup('pipe', 'id') }}"
    inst = instance("i-1", "acme", "qa", "web,db", name="acme-qa1")
    inst["Tags"] += [{"Key": "Note", "Value": evil}, {"Key": "Owner", "Value": "ops"}]
    inv = build_inventory(parse(cfg), [ec2_record(inst, "eu-west-1")], trust=Trusted, untrust=Unsafe)

    ec2_host = inv.hosts["acme-qa1"]["vars"]
    assert type(ec2_host["ec2_tags"]["Note"]) is Unsafe and ec2_host["ec2_tags"]["Note"] == evil
    for host, entry in inv.hosts.items():
        found = list(strings(entry["vars"]))
        assert found
        for where, text in found:
            if text == evil:
                assert (host, where) == ("acme-qa1", ".ec2_tags.Note")
            else:
                assert type(text) is Trusted, (host, where, text)
    dev = inv.hosts["dev1"]["vars"]
    assert dev["estate_sites"][0]["vars"]["greeting"] == "{{ 'hi' | upper }}"
    assert type(dev["estate_sites"][0]["vars"]["greeting"]) is Trusted


def test_without_trust_hooks_strings_are_left_alone():
    inst = instance("i-1", "acme", "qa", "web", name="acme-qa1")
    inst["Tags"].append({"Key": "Note", "Value": "{{ x }}"})
    inv = build_inventory(parse(ec2_estate_config()), [ec2_record(inst, "eu-west-1")])
    for entry in inv.hosts.values():
        assert all(type(text) is str for _, text in strings(entry["vars"]))


def ec2_estate_config():
    cfg = minimal()
    cfg["tiers"]["qa"].pop("hosts")
    cfg["hosts"].pop("qa1")
    return cfg


def test_the_site_record_of_the_example_estate():
    """The record every play and role reads for a site: resolved here, derived nowhere else."""
    estate = parse_estate(
        yaml.safe_load((REPO / "inventories/example/estate.yml").read_text()),
        "inventories/example/estate.yml",
    )
    inv = build_inventory(estate)
    globex_live = inv.hosts["globex-web2"]["vars"]["estate_site"]
    assert globex_live == {
        "name": "globex-live",
        "customer": "globex",
        "tier": "live",
        "flavour": "moodle",
        "wwwroot": "https://academy.globex.example",
        "tier_rank": 2,
        "promotes_from": "qa",
        "maintenance_windows": [
            {"days": ["sat"], "start": "23:00", "end": "03:00", "timezone": "America/New_York"}
        ],
        "group": "globex_live",
        "site_user": "globex-live",
        "db_name": "globex_live",
        "db_user": "globex_live",
        "code_dir": "/srv/lms/globex-live",
        "dataroot": "/var/lib/lms/globex-live",
        "web_hosts": ["globex-web1", "globex-web2"],  # the first upgrades the database
        "db_hosts": ["globex-db1"],
        "vars": {
            "lms_admin_email": "lms-admins@provider.example",
            "lms_backup_bucket": "provider-lms-backups",
            "lms_debug": False,
            "lms_mail": "deliver",
            "lms_smtp_host": "smtp.provider.example:587",
            "lms_smtp_secure": "tls",
            "lms_smtp_user": "lms-relay",
            "lms_backup_daily": True,
            "lms_fullname": "Globex Academy",
            "lms_plugin_config": {"theme_boost": {"brandcolor": "#00539b"}},
            "lms_shared_dataroot": "/srv/nfs/globex-moodledata",
        },
        "host_roles": ["web"],
    }
    # every host of a site carries the same record, but for its own roles in it
    for host in ("globex-web1", "globex-db1"):
        other = dict(inv.hosts[host]["vars"]["estate_site"])
        assert {**other, "host_roles": ["web"]} == globex_live
    # a shared host has one record per site
    shared = inv.hosts["qa-shared1"]["vars"]["estate_sites"]
    assert [(s["name"], s["group"], s["code_dir"]) for s in shared] == [
        ("acme-qa", "acme_qa", "/srv/lms/acme-qa"),
        ("initech-qa", "initech_qa", "/srv/lms/initech-qa"),
    ]


def test_site_identity_from_vars_and_roots_from_the_estate():
    cfg = minimal()
    cfg["code_root"] = "/opt/lms-code"
    cfg["data_root"] = "/data/lms"
    cfg["customers"]["acme"]["tiers"]["qa"]["vars"] = {"site_user": "www-acme", "db_name": "acme_qa_2"}
    site = parse(cfg).sites["acme-qa"]
    assert (site.site_user, site.db_name, site.db_user) == ("www-acme", "acme_qa_2", "acme_qa")
    assert (site.code_dir, site.dataroot) == ("/opt/lms-code/acme-qa", "/data/lms/acme-qa")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(code_root="srv/lms"), "code_root: 'srv/lms' is not an absolute folder path"),
        (
            lambda c: c.update(code_root="/srv/../etc"),
            "code_root: '/srv/../etc' is not an absolute folder path",
        ),
        (lambda c: c.update(data_root="/srv/lms"), "data_root: must differ from code_root"),
        (
            lambda c: c["customers"]["acme"]["tiers"]["qa"].update(vars={"site_user": "root;id"}),
            "customer 'acme', tier 'qa', vars.site_user: 'root;id' does not match",
        ),
        (
            lambda c: c["customers"]["acme"]["tiers"]["qa"].update(vars={"db_name": "a-b"}),
            "customer 'acme', tier 'qa', vars.db_name: 'a-b' does not match",
        ),
    ],
)
def test_bad_roots_and_site_identity(mutate, message):
    cfg = minimal()
    mutate(cfg)
    with pytest.raises(EstateError) as info:
        parse(cfg)
    assert str(info.value).startswith(f"{SRC}: {message}")

"""The estate_records filter: every site record of the inventory once, by name, host-independent."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from estate_records import estate_records


def site(name: str, roles: list[str]) -> dict:
    customer, tier = name.split("-")
    return {"name": name, "customer": customer, "tier": tier, "web_hosts": ["w1", "w2"], "host_roles": roles}


HOSTVARS = {
    "w2": {"estate_sites": [site("initech-live", ["web"]), site("acme-qa", ["web", "db"])]},
    "w1": {"estate_sites": [site("initech-live", ["web"])]},
    "db": {"estate_sites": [site("initech-live", ["db"])]},
    "localhost": {},  # a host without estate_sites (the controller) adds nothing
    "empty": {"estate_sites": None},
}


def test_each_site_once_sorted_by_name_without_host_roles():
    records = estate_records(HOSTVARS)
    assert [r["name"] for r in records] == ["acme-qa", "initech-live"]
    assert all("host_roles" not in r for r in records)
    assert records[1] == {
        "name": "initech-live",
        "customer": "initech",
        "tier": "live",
        "web_hosts": ["w1", "w2"],
    }


def test_one_customer():
    assert [r["name"] for r in estate_records(HOSTVARS, customer="initech")] == ["initech-live"]
    assert estate_records(HOSTVARS, customer="globex") == []


def test_the_hosts_own_entries_are_untouched():
    estate_records(HOSTVARS)
    assert HOSTVARS["w2"]["estate_sites"][0]["host_roles"] == ["web"]


def test_only_the_fields_asked_for():
    records = estate_records(HOSTVARS, fields=["name", "tier", "dataroot"])
    assert records == [{"name": "acme-qa", "tier": "qa"}, {"name": "initech-live", "tier": "live"}]

# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`estate_records`: the site records of this inventory, once each, sorted by name: every entry of
the hosts' `estate_sites` (set by the three_instance inventory plugin), without `host_roles`, the one key
that says what a given host does for the site: the rest of a site's entry is the same on every
host that serves it. The one way a playbook finds a site, a customer's sites or the customers; a
site without a host in this inventory is not among them.

    hostvars | estate_records                    # every site
    hostvars | estate_records(customer='acme')   # one customer's
    hostvars | estate_records(fields=['name', 'dataroot'])   # only these keys (no vars: they hold secrets)
"""

from __future__ import annotations


def estate_records(hostvars, customer: str | None = None, fields: list[str] | None = None) -> list[dict]:
    records: dict[str, dict] = {}
    for host in hostvars:
        for site in hostvars[host].get("estate_sites") or []:
            if site["name"] not in records:
                records[site["name"]] = {key: value for key, value in site.items() if key != "host_roles"}
    found = [records[name] for name in sorted(records)]
    if customer is not None:
        found = [site for site in found if site.get("customer") == customer]
    if fields is not None:
        found = [{key: site[key] for key in fields if key in site} for site in found]
    return found


class FilterModule:
    def filters(self):
        return {"estate_records": estate_records}

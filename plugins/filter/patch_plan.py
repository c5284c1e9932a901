# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security patching (playbooks/patch.yml, roles/patch), the logic in one place:

* ``stdout | patch_upgradable(scope)`` -> ``[{name, version, suites, security}]``: the packages of
  ``apt list --upgradable`` (run with ``LC_ALL=C``) that the run upgrades: with scope ``security``
  only those whose candidate comes from a ``*-security`` suite, with ``all`` every one.
* ``before | patch_changes(after)`` -> ``[{name, old, new}]``: what changed between two
  ``package_facts`` results (``ansible_facts.packages``), sorted by name; ``old`` is null for a
  package newly installed (a new dependency), ``new`` null for one removed.
* ``changes | patch_restarts(host_roles)`` -> ``{php_fpm, nginx, database, reboot_needed,
  reboot_reasons}``: what the changes need. PHP packages restart PHP-FPM and nginx packages restart
  nginx on a web host; database server packages restart that server on a db host (``database``:
  ``mariadb`` | ``postgresql`` | null); the C library, the kernel, systemd and OpenSSL need a reboot
  (every running process keeps the old library), which is reported, never done unasked.
* ``changes | patch_summary`` -> ``"libssl3 3.0.14 -> 3.0.15, libfoo1 (new) -> 1.0"`` for the report.
* ``estate_sites | patch_health_targets(inventory_hostname)`` -> ``[{site, url, resolve, on,
  installed}]``: the login pages the health check asks for after patching a host: every site it
  serves as a web host, on this host; every site whose database only is here, on the site's first
  web host. ``resolve`` is curl's ``--resolve`` (the site's name to 127.0.0.1 of the host it runs on).
* ``packages | patch_services(host_roles, php_service)`` -> the services that must be active: PHP-FPM
  and nginx on a web host, the database server installed on a db host.
* ``logins | patch_health_failures(services, restarts)`` -> messages, one per failure (empty: healthy),
  from the registered results of the login pages, ``systemctl is-active`` and the restart handlers.

Standard library only: unit-tested in tests/unit/test_patch_plan.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCOPES = ("security", "all")
# "libssl3/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]"
_LINE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9+.-]*)/(?P<suites>\S+) (?P<version>\S+) (?P<arch>\S+) \[upgradable"
)
PHP = re.compile(r"^(php\d+(\.\d+)?-|php-|libapache2-mod-php)")
NGINX = re.compile(r"^(nginx|libnginx-mod-)")
MARIADB = re.compile(r"^(mariadb-server|galera-)")
POSTGRESQL = re.compile(r"^postgresql-\d+$")
REBOOT = re.compile(r"^(libc6|libc-bin|linux-image-.*|systemd|libsystemd0|openssl|libssl\d.*|dbus)$")


# What a site whose database no job has installed yet answers (roles/lms/tasks/closed.yml).
CLOSED_PAGE = "This site is not set up yet."


def patch_upgradable(stdout: str, scope: str = "security") -> list[dict]:
    if scope not in SCOPES:
        raise ValueError(f"patch scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    found = []
    for line in (stdout or "").splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue  # "Listing...", warnings
        suites = m["suites"].split(",")
        security = any(s.endswith("-security") for s in suites)
        if scope == "all" or security:
            found.append({"name": m["name"], "version": m["version"], "suites": suites, "security": security})
    return sorted(found, key=lambda p: p["name"])


def _versions(facts: dict, name: str) -> str | None:
    entries = (facts or {}).get(name) or []
    versions = sorted({str(e.get("version", "")) for e in entries})
    return ", ".join(versions) if versions else None


def patch_changes(before: dict, after: dict) -> list[dict]:
    before, after = before or {}, after or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = _versions(before, name), _versions(after, name)
        if old != new:
            changes.append({"name": name, "old": old, "new": new})
    return changes


def patch_summary(changes: list[dict]) -> str:
    return ", ".join(f"{c['name']} {c['old'] or '(new)'} -> {c['new'] or '(removed)'}" for c in changes or [])


def patch_restarts(changes: list[dict], host_roles: list[str] | None = None) -> dict:
    roles = set(host_roles or [])
    names = [c["name"] for c in changes or []]
    web, db = "web" in roles, "db" in roles
    database = None
    if db and any(MARIADB.match(n) for n in names):
        database = "mariadb"
    elif db and any(POSTGRESQL.match(n) for n in names):
        database = "postgresql"
    reasons = sorted(n for n in names if REBOOT.match(n))
    return {
        "php_fpm": web and any(PHP.match(n) for n in names),
        "nginx": web and any(NGINX.match(n) for n in names),
        "database": database,
        "reboot_needed": bool(reasons),
        "reboot_reasons": reasons,
    }


def patch_health_targets(sites: list[dict], host: str) -> list[dict]:
    targets = []
    for site in sites or []:
        roles = site.get("host_roles", ["web"])
        if "web" in roles:
            on = host
        elif "db" in roles and site.get("web_hosts"):
            on = site["web_hosts"][0]
        else:
            continue
        url = site["wwwroot"].rstrip("/")
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        targets.append(
            {
                "site": site["name"],
                "url": f"{url}/login/index.php",
                "resolve": f"{parts.hostname}:{port}:127.0.0.1",
                "on": on,
                "installed": bool(site.get("vars", {}).get("lms_install", True)),
            }
        )
    return targets


def patch_services(
    packages: dict, host_roles: list[str] | None, php_service: str = "php8.2-fpm"
) -> list[str]:
    roles, packages = set(host_roles or []), packages or {}
    services = [php_service, "nginx"] if "web" in roles else []
    if "db" in roles:
        if any(MARIADB.match(n) for n in packages):
            services.append("mariadb")
        if any(POSTGRESQL.match(n) for n in packages):
            services.append("postgresql")
    return services


def _login_failure(result: dict) -> str | None:
    target = result.get("item") or {}
    where = f"site {target.get('site', '?')}: login page {target.get('url', '?')} on {target.get('on', '?')}"
    lines = (result.get("stdout") or "").splitlines()
    code = lines[-1].strip() if lines else ""
    if result.get("rc") != 0:
        return f"{where} did not answer (curl exit {result.get('rc')}, HTTP {code or 'none'})"
    if not target.get("installed", True):
        # a site without Moodle installed (lms_install false): nginx and PHP must still answer; while
        # its database is empty, Moodle answers with the page that keeps its web installer closed
        # (roles/lms/tasks/closed.yml)
        closed = code == "503" and CLOSED_PAGE in "\n".join(lines[:-1])
        answered = code.isdigit() and 100 <= int(code) < 500
        return None if closed or answered else f"{where} answered HTTP {code}"
    if code != "200":
        return f"{where} answered HTTP {code}"
    if "login" not in "\n".join(lines[:-1]):
        return f"{where} answered 200 without a login page"
    return None


def patch_health_failures(logins: list[dict], services: list[dict] | None = None, restarts=None) -> list[str]:
    failures = []
    for r in restarts or []:
        if r and r.get("failed"):
            failures.append(f"restarting {r.get('name', '?')} failed: {str(r.get('msg', ''))[:300]}")
    for r in services or []:
        state = (r.get("stdout") or "").strip() or "unknown"
        if state != "active":
            failures.append(f"{r.get('item', '?')} is {state}")
    for r in logins or []:
        failure = _login_failure(r)
        if failure:
            failures.append(failure)
    return failures


class FilterModule:
    def filters(self):
        return {
            "patch_upgradable": patch_upgradable,
            "patch_changes": patch_changes,
            "patch_restarts": patch_restarts,
            "patch_summary": patch_summary,
            "patch_health_targets": patch_health_targets,
            "patch_services": patch_services,
            "patch_health_failures": patch_health_failures,
        }

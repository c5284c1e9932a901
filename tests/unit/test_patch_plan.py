"""plugins/filter/patch_plan.py: which packages a patch run upgrades (security only by default), what
changed between two package_facts results, and what that needs restarted or rebooted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import patch_plan as pp

APT_LIST = """\
Listing...
libssl3/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]
php8.2-fpm/bookworm-updates,bookworm-security 8.2.26-1~deb12u1 amd64 [upgradable from: 8.2.24-1~deb12u1]
tzdata/bookworm-updates 2025a-0+deb12u1 all [upgradable from: 2024b-0+deb12u1]
WARNING: apt does not have a stable CLI interface. Use with caution in scripts.
"""


def test_security_scope_takes_only_candidates_from_a_security_suite():
    got = pp.patch_upgradable(APT_LIST)
    assert [p["name"] for p in got] == ["libssl3", "php8.2-fpm"]
    assert got[1] == {
        "name": "php8.2-fpm",
        "version": "8.2.26-1~deb12u1",
        "suites": ["bookworm-updates", "bookworm-security"],
        "security": True,
    }


def test_all_scope_takes_every_upgrade_and_marks_the_security_ones():
    got = pp.patch_upgradable(APT_LIST, "all")
    assert [(p["name"], p["security"]) for p in got] == [
        ("libssl3", True),
        ("php8.2-fpm", True),
        ("tzdata", False),
    ]


@pytest.mark.parametrize("text", ["", "Listing...\n", None])
def test_nothing_upgradable(text):
    assert pp.patch_upgradable(text) == []


def test_an_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="security, all"):
        pp.patch_upgradable(APT_LIST, "everything")


def facts(**versions) -> dict:
    return {
        name.replace("_", "-"): [{"name": name, "version": v, "arch": "amd64"}]
        for name, v in versions.items()
    }


def test_changes_name_old_and_new_versions_including_new_and_removed_packages():
    before = facts(libssl3="3.0.14", nginx="1.22.1-9", tzdata="2024b")
    after = facts(libssl3="3.0.15", nginx="1.22.1-9", tzdata="2024b", libfoo1="1.0")
    del after["tzdata"]
    assert pp.patch_changes(before, after) == [
        {"name": "libfoo1", "old": None, "new": "1.0"},
        {"name": "libssl3", "old": "3.0.14", "new": "3.0.15"},
        {"name": "tzdata", "old": "2024b", "new": None},
    ]
    assert pp.patch_changes(before, before) == []


def test_multiarch_versions_compare_as_a_set():
    two = {"libc6": [{"version": "2.36-9"}, {"version": "2.36-9"}]}
    assert pp.patch_changes(two, {"libc6": [{"version": "2.36-9"}]}) == []


def change(*names: str) -> list[dict]:
    return [{"name": n, "old": "1", "new": "2"} for n in names]


def test_php_and_nginx_restart_on_a_web_host_only():
    got = pp.patch_restarts(change("php8.2-common", "libnginx-mod-http-geoip"), ["web"])
    assert got == {
        "php_fpm": True,
        "nginx": True,
        "database": None,
        "reboot_needed": False,
        "reboot_reasons": [],
    }
    on_db = pp.patch_restarts(change("php8.2-common", "nginx-common"), ["db"])
    assert not on_db["php_fpm"] and not on_db["nginx"]


@pytest.mark.parametrize(
    ("package", "database"),
    [
        ("mariadb-server", "mariadb"),
        ("mariadb-server-core", "mariadb"),
        ("postgresql-15", "postgresql"),
        ("postgresql-client-15", None),
        ("mariadb-client", None),
    ],
)
def test_the_database_server_restarts_on_a_db_host(package, database):
    assert pp.patch_restarts(change(package), ["db"])["database"] == database
    assert pp.patch_restarts(change(package), ["web"])["database"] is None


@pytest.mark.parametrize("package", ["libc6", "linux-image-6.1.0-28-amd64", "systemd", "openssl", "libssl3"])
def test_core_libraries_need_a_reboot(package):
    got = pp.patch_restarts(change(package, "tzdata"), ["web", "db"])
    assert got["reboot_needed"] and got["reboot_reasons"] == [package]


def test_nothing_changed_needs_nothing():
    assert pp.patch_restarts([], ["web", "db"]) == {
        "php_fpm": False,
        "nginx": False,
        "database": None,
        "reboot_needed": False,
        "reboot_reasons": [],
    }


SITES = [
    {"name": "initech-dev", "wwwroot": "https://initech-dev.test", "host_roles": ["web", "db"], "vars": {}},
    {
        "name": "initech-live",
        "wwwroot": "http://learn.initech.example:8080/",
        "host_roles": ["db"],
        "web_hosts": ["mweb1", "mweb2"],
        "vars": {},
    },
    {
        "name": "umbrella-dev",
        "wwwroot": "https://umbrella-dev.test",
        "host_roles": ["web"],
        "vars": {"lms_install": False},
    },
]


def test_health_targets_every_site_served_here_and_db_sites_on_their_first_web_host():
    assert pp.patch_health_targets(SITES, "mdb1") == [
        {
            "site": "initech-dev",
            "url": "https://initech-dev.test/login/index.php",
            "resolve": "initech-dev.test:443:127.0.0.1",
            "on": "mdb1",
            "installed": True,
        },
        {
            "site": "initech-live",
            "url": "http://learn.initech.example:8080/login/index.php",
            "resolve": "learn.initech.example:8080:127.0.0.1",
            "on": "mweb1",
            "installed": True,
        },
        {
            "site": "umbrella-dev",
            "url": "https://umbrella-dev.test/login/index.php",
            "resolve": "umbrella-dev.test:443:127.0.0.1",
            "on": "mdb1",
            "installed": False,
        },
    ]


def test_services_that_must_be_active():
    packages = {"mariadb-server": [{}], "nginx": [{}], "postgresql-15": [{}]}
    assert pp.patch_services(packages, ["web"], "php8.2-fpm") == ["php8.2-fpm", "nginx"]
    assert pp.patch_services(packages, ["db"]) == ["mariadb", "postgresql"]
    assert pp.patch_services({"mariadb-server": [{}]}, ["web", "db"]) == ["php8.2-fpm", "nginx", "mariadb"]


TARGET = {"site": "initech-live", "url": "https://initech-live.test/login/index.php", "on": "mweb1"}


def login(rc: int, body: str, code: str, **target) -> dict:
    return {"item": {**TARGET, "installed": True, **target}, "rc": rc, "stdout": f"{body}\n{code}"}


def test_a_healthy_host_has_no_failures():
    ok = login(0, '<form id="login">', "200")
    active = {"item": "nginx", "rc": 0, "stdout": "active"}
    assert pp.patch_health_failures([ok], [active], [{"changed": True, "name": "nginx"}, {}]) == []


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (
            login(0, "<h1>502 Bad Gateway</h1>", "502"),
            "login page https://initech-live.test/login/index.php on mweb1 answered HTTP 502",
        ),
        (login(28, "", "000"), "on mweb1 did not answer (curl exit 28, HTTP 000)"),
        (login(0, "<html>maintenance</html>", "200"), "answered 200 without a login page"),
        (login(0, "", "503", installed=False), "answered HTTP 503"),
    ],
)
def test_each_failed_login_page_names_the_site_the_host_and_what_failed(result, says):
    (failure,) = pp.patch_health_failures([result])
    assert failure.startswith("site initech-live: ") and says in failure


def test_a_site_without_moodle_needs_only_an_answer():
    assert pp.patch_health_failures([login(0, "", "303", installed=False)]) == []
    # a database not installed yet: Moodle's page that keeps the web installer closed (lms closed.yml)
    closed = (REPO / "roles" / "lms" / "tasks" / "closed.yml").read_text()
    assert pp.CLOSED_PAGE in closed
    page = f"<html><body><p>{pp.CLOSED_PAGE}</p></body></html>"
    assert pp.patch_health_failures([login(0, page, "503", installed=False)]) == []
    assert pp.patch_health_failures([login(0, page, "503")]) != []  # an installed site serves its login page


def test_inactive_services_and_failed_restarts_are_failures():
    got = pp.patch_health_failures(
        [],
        [
            {"item": "php8.2-fpm", "rc": 3, "stdout": "inactive"},
            {"item": "nginx", "rc": 0, "stdout": "active"},
        ],
        [{"failed": True, "name": "php8.2-fpm", "msg": "Unit php8.2-fpm.service is masked."}],
    )
    assert got == [
        "restarting php8.2-fpm failed: Unit php8.2-fpm.service is masked.",
        "php8.2-fpm is inactive",
    ]


def test_the_summary_says_old_and_new():
    got = pp.patch_summary(
        [
            {"name": "libfoo1", "old": None, "new": "1.0"},
            {"name": "libssl3", "old": "3.0.14", "new": "3.0.15"},
            {"name": "tzdata", "old": "2024b", "new": None},
        ]
    )
    assert got == "libfoo1 (new) -> 1.0, libssl3 3.0.14 -> 3.0.15, tzdata 2024b -> (removed)"
    assert pp.patch_summary([]) == ""

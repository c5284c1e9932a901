"""Testinfra checks of the full stack on the estate's hosts (native podman:// backend).

The sites each host serves come from the estate inventory itself (STACK_INVENTORY, read once
with ansible-inventory). Checks that need a real Moodle run when the scenario had a Moodle
source (MOODLE_SRC or a tree in the cache folder, as in converge.yml) and are skipped with a
message otherwise.
"""

# ruff: noqa: S608 - SQL in these checks is built from the test inventory, not from user input

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = os.environ.get("STACK_INVENTORY", str(REPO / "inventories" / "local"))
PHP = "php8.2"


def _estate() -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", INVENTORY, "--list"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return _plain(json.loads(out)["_meta"]["hostvars"])


def _plain(value):
    """ansible-inventory --list marks unsafe strings as {"__ansible_unsafe": "..."}: unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


HOSTVARS = _estate()
HOSTS = sorted(h for h, v in HOSTVARS.items() if v.get("estate_sites"))
testinfra_hosts = [f"podman://{h}" for h in HOSTS]


# The same Moodle source as the converge (tools/moodle_source.py: MOODLE_SRC, the cache, the download).
sys.path.insert(0, str(REPO / "tools"))
import moodle_source

MOODLE = moodle_source.resolve()["path"] or None
needs_moodle = pytest.mark.skipif(
    MOODLE is None,
    reason=(
        "no Moodle source: set MOODLE_SRC to a Moodle tree or tarball, or fill "
        f"{moodle_source.cache_dir()}/moodle-<branch> (docs/test-hosts.md) to install and check real Moodle"
    ),
)


def sites_of(host, role="web"):
    return [s for s in HOSTVARS[host.backend.name]["estate_sites"] if role in s["host_roles"]]


def installed_sites(host):
    """Sites this host installs Moodle for (Totara stand-ins and lms_install: false have code only)."""
    return [
        s
        for s in sites_of(host)
        if s["flavour"] == "moodle"
        and s["vars"].get("lms_install", True)
        and s["web_hosts"][0] == host.backend.name
    ]


def release_webroot(host, release):
    """The web root a release's own files give (Moodle 5.1+ public/, Totara 13+ server/, else the root)."""
    for sub in ("public", "server"):
        if host.file(f"{release}/{sub}/version.php").exists:
            return sub
    return "."


def db_is_local(site):
    return site["db_hosts"] == site["web_hosts"]


def engine(site):
    return site["vars"].get("db_engine", "postgresql")


def redis_on(site):
    return site["vars"].get("redis_enabled", site["tier"] in ("qa", "live"))


def fetch(host, site, path):
    """GET wwwroot+path from inside the host (resolving the site's name to 127.0.0.1)."""
    url = site["wwwroot"] + path
    name = re.match(r"https?://([^/:]+)", url).group(1)
    port = 443 if url.startswith("https") else 80
    out = host.run(
        "curl -sk --max-time 60 -o /tmp/body -w '%%{http_code}' --resolve %s %s && cat /tmp/body",
        f"{name}:{port}:127.0.0.1",
        url,
    )
    assert out.rc == 0, out.stderr
    return int(out.stdout[:3]), out.stdout[3:]


def config_php(host, site):
    return host.file(f"/srv/lms/{site['name']}/shared/config.php").content_string


# --- services and sockets -----------------------------------------------------------------


def test_services_run(host):
    services = ["nginx", f"{PHP}-fpm"] if sites_of(host) else []
    engines = {engine(s) for s in sites_of(host, "db")}
    services += ["postgresql@15-main" if e == "postgresql" else "mariadb" for e in engines]
    services += [f"redis-server@{s['name']}" for s in sites_of(host) if redis_on(s)]
    for name in services:
        svc = host.service(name)
        assert svc.is_running, name
        assert svc.is_enabled or name.startswith("postgresql@"), name
    assert not host.service("redis-server").is_running
    assert host.run("systemctl --failed --no-legend --plain").stdout.strip() == ""


def test_database_listens_where_the_topology_needs(host):
    for site in sites_of(host, "db"):
        port = 5432 if engine(site) == "postgresql" else 3306
        remote = any(not db_is_local(s) for s in sites_of(host, "db"))
        assert host.socket(f"tcp://0.0.0.0:{port}").is_listening == remote
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening or remote
    if any(engine(s) == "postgresql" for s in sites_of(host, "db")):
        assert host.socket("unix:///var/run/postgresql/.s.PGSQL.5432").is_listening
    if any(engine(s) == "mariadb" for s in sites_of(host, "db")):
        assert host.socket("unix:///run/mysqld/mysqld.sock").is_listening


def test_fpm_pool_per_site(host):
    if not sites_of(host):
        assert not host.package("php8.2-fpm").is_installed
        return
    assert not host.file("/etc/php/8.2/fpm/pool.d/www.conf").exists
    users = host.check_output("ps -o user= -C php-fpm8.2").split()
    for site in sites_of(host):
        sock = host.file(f"/run/php/{site['name']}.sock")
        assert sock.is_socket
        assert (sock.user, sock.group, sock.mode) == ("www-data", "www-data", 0o660)
        assert site["name"] in users, f"no FPM worker runs as {site['name']}"


def test_redis_socket_is_the_sites(host):
    for site in sites_of(host):
        sock = host.file(f"/run/redis-{site['name']}/redis-server.sock")
        if not redis_on(site):
            assert not sock.exists
            continue
        assert sock.is_socket and sock.group == site["name"] and sock.mode == 0o770
        password = re.search(r"session_redis_auth = '([^']+)'", config_php(host, site)).group(1)
        other = "nobody"
        assert (
            host.run(f"runuser -u {other} -- redis-cli -s {sock.path} ping").rc != 0
            or "NOAUTH" in host.run(f"runuser -u {other} -- redis-cli -s {sock.path} ping").stdout
        )
        pong = host.run(
            f"runuser -u {site['name']} -- redis-cli -s {sock.path} --no-auth-warning -a {password} ping"
        )
        assert pong.stdout.strip() == "PONG"
        # nginx is in no site's group: it cannot even connect.
        refused = host.run(f"runuser -u www-data -- redis-cli -s {sock.path} ping")
        assert "Permission denied" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


# --- database ---------------------------------------------------------------------------


def _db_password(host, site):
    return re.search(r"\$CFG->dbpass\s*=\s*'([^']+)'", config_php(host, site)).group(1)


def test_database_per_site(host):
    for site in sites_of(host, "db"):
        db = site["name"].replace("-", "_")
        if engine(site) == "postgresql":
            query = (
                "select pg_encoding_to_char(encoding), datcollate, pg_get_userbyid(datdba) "
                f"from pg_database where datname='{db}'"
            )
            row = host.check_output(f'runuser -u postgres -- psql -tA -c "{query}"')
            assert row == f"UTF8|C|{db}"
            if not db_is_local(site):
                continue
            pw = _db_password(host, site)
            ok = host.run(f"PGPASSWORD={pw} psql -h /var/run/postgresql -U {db} -d {db} -tAc 'select 1'")
            assert ok.stdout.strip() == "1", ok.stderr
            for other in sites_of(host, "db"):
                if other is not site and engine(other) == "postgresql":
                    odb = other["name"].replace("-", "_")
                    bad = host.run(
                        f"PGPASSWORD={pw} psql -h /var/run/postgresql -U {db} -d {odb} -tAc 'select 1'"
                    )
                    assert bad.rc != 0, f"{db} reached {odb}"
        else:
            row = host.check_output(
                'mariadb -N -B -e "select default_character_set_name, default_collation_name from '
                f"information_schema.schemata where schema_name='{db}'\""
            )
            assert row.split() == ["utf8mb4", "utf8mb4_unicode_ci"]
            fmt = host.check_output(
                "mariadb -N -B -e 'select @@innodb_default_row_format, @@innodb_file_per_table'"
            )
            assert fmt.split() == ["dynamic", "1"]
            accounts = host.check_output(
                f"mariadb -N -B -e \"select host from mysql.user where user='{db}'\""
            ).split()
            assert "localhost" in accounts
            assert len(accounts) == (1 if db_is_local(site) else 1 + len(site["web_hosts"]))
            for account in accounts:
                grants = host.check_output(f"mariadb -N -B -e \"show grants for '{db}'@'{account}'\"")
                assert f"`{db}`.*" in grants and "ON *.*" not in grants.replace("USAGE ON *.*", "")
            if db_is_local(site):
                pw = _db_password(host, site)
                ok = host.run(f"mariadb -u {db} -p{pw} -N -B -e 'select 1' {db}")
                assert ok.stdout.strip() == "1", ok.stderr


# --- folders, permissions, config.php ---------------------------------------------------


def test_site_layout_and_permissions(host):
    for site in sites_of(host):
        name = site["name"]
        cfg = host.file(f"/srv/lms/{name}/shared/config.php")
        assert (cfg.user, cfg.group, cfg.mode) == ("root", name, 0o640)
        data = host.file(f"/var/lib/lms/{name}")
        assert data.is_directory and (data.user, data.group) == (name, name)
        assert data.mode == 0o2770
        assert host.run(f"runuser -u nobody -- ls /var/lib/lms/{name}").rc != 0
        assert host.run(f"runuser -u nobody -- cat {cfg.path}").rc != 0
        for sub in ("", "/cache", "/request"):
            local = host.file(f"/var/cache/lms/{name}{sub}")
            assert (local.user, local.mode) == (name, 0o2770)
        assert f"$CFG->localrequestdir = '/var/cache/lms/{name}/request';" in cfg.content_string
        for other in sites_of(host):
            if other is not site:
                assert host.run(f"runuser -u {other['name']} -- cat {cfg.path}").rc != 0
                assert host.run(f"runuser -u {other['name']} -- ls /var/lib/lms/{name}").rc != 0
        # nginx (www-data) is in no site's group: it reads the dataroot through the lms role's ACL
        # (X-Accel-Redirect), never writes it, and reads no config.php.
        assert name not in host.user("www-data").groups
        assert host.run(f"runuser -u www-data -- cat {cfg.path}").rc != 0
        assert host.run(f"runuser -u www-data -- ls /var/lib/lms/{name}").rc == 0
        assert host.run(f"runuser -u www-data -- touch /var/lib/lms/{name}/by-nginx").rc != 0
        assert host.run(f"runuser -u www-data -- ls /var/cache/lms/{name}").rc != 0
        acl = host.check_output(f"getfacl -p /var/lib/lms/{name}").splitlines()
        assert "user:www-data:r-x" in acl and "default:user:www-data:r-x" in acl
        # What the site's PHP creates there inherits it (Moodle's 02770 folders, 0660 files).
        probe = f"/var/lib/lms/{name}/acl-probe"
        made = host.run(
            f"runuser -u {name} -- sh -c 'mkdir -p -m 2770 {probe} && umask 007 && echo probe > {probe}/file'"
            f" && runuser -u www-data -- cat {probe}/file"
            f" && ! runuser -u www-data -- touch {probe}/other"
        )
        host.run(f"rm -rf {probe}")
        assert made.rc == 0 and made.stdout.strip() == "probe", made.stderr
        text = cfg.content_string
        assert f"$CFG->wwwroot   = '{site['wwwroot']}';" in text
        assert f"$CFG->dataroot  = '/var/lib/lms/{name}';" in text
        assert "$CFG->directorypermissions = 02770;" in text
        assert ("$CFG->noemailever = true;" in text) == (site["tier"] in ("dev", "qa"))
        assert ("\\core\\session\\redis" in text) == redis_on(site)
        assert ("'dbsocket' =>" in text) == db_is_local(site)
        assert ("$CFG->routerconfigured = true;" in text) == (site["flavour"] == "moodle")
        assert host.run(f"php -l {cfg.path}").rc == 0


def test_cron_timer(host):
    for site in sites_of(host):
        timer = f"lms-cron-{site['name']}.timer"
        assert host.service(timer).is_enabled
        assert host.service(timer).is_running
        show = host.check_output(f"systemctl show -p TimersCalendar {timer}")
        assert "*-*-* *:*:00" in show
        svc = host.check_output(f"systemctl cat lms-cron-{site['name']}.service")
        assert f"User={site['name']}" in svc
        assert "cron.php --keep-alive=0" in svc
        assert host.run(f"logrotate -d /etc/logrotate.d/lms-{site['name']}").rc == 0
    # In maintenance a run is skipped, not failed (cron.php would exit 1).
    for site in sites_of(host)[:1]:
        name = site["name"]
        flag = f"/var/lib/lms/{name}/climaintenance.html"
        if host.file(flag).exists:
            continue
        try:
            host.check_output(f"touch {flag}")
            # A run the minute timer started before the flag existed would be joined by `start`
            # (and pass its condition): wait for it to end first.
            state = f"systemctl show -p ActiveState --value lms-cron-{name}.service"
            host.check_output(f"timeout 600 sh -c 'while [ \"$({state})\" = activating ]; do sleep 1; done'")
            # Result= is the last run's (a cron run that failed minutes ago would show): the skip is
            # a start that succeeds, a condition that says no, and no new cron.php process.
            started = f"systemctl show -p ExecMainStartTimestampMonotonic --value lms-cron-{name}.service"
            before = host.check_output(started)
            assert host.run(f"systemctl start lms-cron-{name}.service").rc == 0
            shown = host.check_output(f"systemctl show -p ConditionResult lms-cron-{name}.service")
            assert shown == "ConditionResult=no" and host.check_output(started) == before, shown
        finally:
            host.run(f"rm -f {flag}")


# --- real Moodle --------------------------------------------------------------------------


@needs_moodle
def test_code_is_an_atomic_release(host):
    for site in sites_of(host):
        base = f"/srv/lms/{site['name']}"
        current = host.file(f"{base}/current")
        assert current.is_symlink and current.linked_to.startswith(f"{base}/releases/{site['flavour']}-")
        assert host.file(f"{current.linked_to}/.three-instance-release").exists
        stub = host.file(f"{current.linked_to}/config.php")
        assert stub.user == "root" and "/../../shared/config.php" in stub.content_string
        sub = release_webroot(host, current.linked_to)
        setup = "server/lib/setup.php" if sub == "server" else "lib/setup.php"
        assert f"require_once(__DIR__ . '/{setup}');" in stub.content_string
        # nginx serves current/.webroot: the web root belongs to the release and switches with it
        webroot = host.file(f"{current.linked_to}/.webroot")
        assert webroot.is_symlink and webroot.linked_to == (
            f"{current.linked_to}/{sub}" if sub != "." else current.linked_to
        )
        assert host.run(f"find {current.linked_to} -maxdepth 2 ! -user root | head -1").stdout == ""


@needs_moodle
def test_login_page_names_the_site(host):
    for site in installed_sites(host):
        status, body = fetch(host, site, "/login/index.php")
        assert status == 200
        # Not in (web) maintenance: Moodle would title the page "In maintenance mode".
        assert "<title>Log in to the site | " in body, body[:400]
        record = host.file(f"/srv/lms/{site['name']}/deployment.json")
        if record.exists and "refreshed_from" in record.content_string:
            continue  # a QA refreshed from Live (test_release.py) carries Live's names by design
        assert site["vars"]["lms_fullname"] in body
        assert f"<title>Log in to the site | {site['name']}</title>" in body


@needs_moodle
def test_slash_arguments_and_router(host):
    for site in installed_sites(host):
        status, body = fetch(host, site, "/theme/styles.php/boost/1/all")
        assert status == 200 and "{" in body
        status, _ = fetch(host, site, "/lib/javascript.php/1/lib/requirejs/require.min.js")
        assert status == 200


@needs_moodle
def test_status_checks_pass_after_one_cron_run(host):
    for site in installed_sites(host):
        name = site["name"]
        assert host.run(f"systemctl start lms-cron-{name}.service").rc == 0
        out = host.run(f"runuser -u {name} -- php /srv/lms/{name}/current/admin/cli/checks.php --type=status")
        assert "CRITICAL" not in out.stdout, out.stdout
        assert out.rc in (0, 1), out.stdout


@needs_moodle
def test_redis_holds_sessions_and_application_cache(host):
    for site in installed_sites(host):
        if not redis_on(site):
            continue
        fetch(host, site, "/login/index.php")
        password = re.search(r"session_redis_auth = '([^']+)'", config_php(host, site)).group(1)
        keys = host.check_output(
            f"redis-cli -s /run/redis-{site['name']}/redis-server.sock --no-auth-warning -a {password} --scan"
        ).split()
        assert any(k.startswith("sess_") for k in keys), keys[:10]
        assert any(k.startswith("muc_") for k in keys), keys[:10]

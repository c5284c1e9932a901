"""Testinfra checks of what the estate's web hosts serve: PHP, nginx, the gate (native podman://
backend). Only the hosts with a web role are checked here (a database host serves no site), so no
check is skipped for want of one; helpers and the estate come from test_stack.py.
"""

from __future__ import annotations

import re

import pytest
from test_stack import HOSTVARS, _db_password, fetch, sites_of

testinfra_hosts = [
    f"podman://{h}"
    for h, v in sorted(HOSTVARS.items())
    if any("web" in s["host_roles"] for s in v.get("estate_sites") or [])
]

# --- PHP --------------------------------------------------------------------------------


@pytest.mark.parametrize("sapi", ["cli", "fpm"])
def test_php_settings(host, sapi):
    cmd = "php-fpm8.2 -i" if sapi == "fpm" else "php -i"
    info = host.check_output(cmd)
    assert re.search(r"^max_input_vars => 5000", info, re.M)
    if sapi == "fpm":
        assert re.search(r"^opcache.enable => On", info, re.M)
        assert re.search(r"^opcache.memory_consumption => 256", info, re.M)
        assert re.search(r"^opcache.max_accelerated_files => 32531", info, re.M)
        dev = HOSTVARS[host.backend.name].get("estate_tier") == "dev"
        assert re.search(rf"^opcache.validate_timestamps => {'On' if dev else 'Off'}", info, re.M)
        # a reload after a deploy lets requests in flight finish (Debian's 0 answered them 502)
        conf = host.check_output("php-fpm8.2 -tt 2>&1")
        assert re.search(r"process_control_timeout = 30s?$", conf, re.M), conf[-2000:]
    modules = host.check_output("php -m").lower().split()
    for ext in [
        "pgsql",
        "mysqli",
        "intl",
        "mbstring",
        "curl",
        "zip",
        "gd",
        "soap",
        "xml",
        "sodium",
        "redis",
        "zend opcache",
    ]:
        assert ext.split()[-1] in " ".join(modules), ext


# --- web server -------------------------------------------------------------------------


def test_nginx_server_blocks(host):
    assert host.run("nginx -t").rc == 0
    for site in sites_of(host):
        conf = host.file(f"/etc/nginx/sites-enabled/{site['name']}.conf").content_string
        # the release's own web root, through its .webroot link (test_code_is_an_atomic_release)
        assert f"root /srv/lms/{site['name']}/current/.webroot;" in conf
        assert "fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;" in conf
        assert ("try_files $uri $uri/ /r.php;" in conf) == (site["flavour"] == "moodle")
        if site["wwwroot"].startswith("https://"):
            assert f"ssl_certificate /etc/ssl/three-instance/{site['name']}.crt;" in conf
            key = host.file(f"/etc/ssl/three-instance/{site['name']}.key")
            assert (key.user, key.mode) == ("root", 0o600)
            name = site["wwwroot"].split("//")[1]
            redirect = host.run(
                f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --resolve {name}:80:127.0.0.1 http://{name}/x"
            )
            assert redirect.stdout == f"301 https://{name}/x"
            old_tls = host.run(f"curl -sk --tls-max 1.1 --resolve {name}:443:127.0.0.1 https://{name}/")
            assert old_tls.rc != 0, "TLS 1.1 accepted"
        assert "fastcgi_param PATH_INFO $fastcgi_path_info;" in conf
        assert f"alias /var/lib/lms/{site['name']}/;" in conf and "internal;" in conf


def test_dataroot_and_internal_files_are_not_served(host):
    for site in sites_of(host):
        name = site["name"]
        host.run(f"runuser -u {name} -- sh -c 'echo secret > /var/lib/lms/{name}/probe.txt'")
        for path in [
            "/dataroot/probe.txt",
            "/composer.json",
            "/.git/config",
            "/vendor/autoload.php",
            "/admin/cli/cron.php",
            "/lib/db/install.xml",
            "/admin/environment.xml",
        ]:
            status, body = fetch(host, site, path)
            assert status in (400, 403, 404), (path, status)
            assert "secret" not in body
        # config.php runs (or is absent), it is never sent as text.
        _, body = fetch(host, site, "/config.php")
        assert _db_password(host, site) not in body and "dbpass" not in body


def test_a_closed_gate_keeps_everyone_out_but_this_host(host):
    """During a deploy's window (roles/lms tasks/gate.yml) nginx answers 503 to everyone but the
    host itself, whose smoke checks must see the new code before any user does."""
    sites = sites_of(host)
    address = host.check_output("hostname -I").split()[0]  # not loopback: as a user's request arrives
    site = sites[0]
    name, port = (
        re.match(r"https?://([^/:]+)", site["wwwroot"]).group(1),
        443 if "https" in site["wwwroot"] else 80,
    )
    url = f"{site['wwwroot']}/login/index.php"

    def status(via):
        return host.check_output(
            f"curl -sk -o /dev/null -w '%{{http_code}}' --resolve {name}:{port}:{via} {url}"
        )

    gate = f"/srv/lms/{site['name']}/.gate"
    assert not host.file(gate).exists
    open_status = status(address)
    try:
        host.check_output(f"touch {gate}")
        assert status(address) == "503"
        assert status("127.0.0.1") == open_status
    finally:
        host.run(f"rm -f {gate}")
    assert status(address) == open_status


def test_unknown_host_names_get_nothing(host):
    out = host.run("curl -s -o /dev/null -w '%{http_code}' -H 'Host: not-a-site.example' http://127.0.0.1/")
    assert out.stdout == "000"  # connection closed (444)

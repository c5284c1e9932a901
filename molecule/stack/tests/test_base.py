"""Testinfra checks of the base role on dev1, qa1 and live1 (native podman:// backend); the stack
scenario converges the base role with everything else, so these run on its hosts."""

import os

import pytest
import testinfra.utils.ansible_runner

_RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = [f"podman://{name}" for name in _RUNNER.get_hosts("all")]


def test_systemd_runs(host):
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    assert host.run("systemctl --failed --no-legend").stdout.strip() == ""


def test_timezone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/London"
    assert host.check_output("date +%Z") in ("GMT", "BST")


def test_ntp_configured_not_started_in_container(host):
    conf = host.file("/etc/systemd/timesyncd.conf")
    assert conf.contains("^NTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org$")
    assert not host.service("systemd-timesyncd").is_running


def test_unattended_upgrades_security_only(host):
    assert host.package("unattended-upgrades").is_installed
    assert host.file("/etc/apt/apt.conf.d/20auto-upgrades").contains('Unattended-Upgrade "1"')
    conf = host.file("/etc/apt/apt.conf.d/50unattended-upgrades").content_string
    assert "label=Debian-Security" in conf
    assert "codename=${distro_codename}-updates" not in conf
    assert 'Automatic-Reboot "false"' in conf
    # The configuration parses and selects only the security origin.
    dump = host.check_output("apt-config dump Unattended-Upgrade::Origins-Pattern")
    assert "Debian-Security" in dump


def test_deploy_user(host):
    user = host.user("deploy")
    assert user.exists
    assert user.shell == "/bin/bash"
    keys = host.file("/home/deploy/.ssh/authorized_keys")
    assert keys.user == "deploy"
    assert keys.mode == 0o600
    assert keys.contains("molecule@test")
    sudoers = host.file("/etc/sudoers.d/deploy")
    assert sudoers.mode == 0o440
    assert host.run("visudo -cf /etc/sudoers.d/deploy").rc == 0
    assert host.run("runuser -u deploy -- sudo -n true").rc == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("permitrootlogin", "without-password"),
        ("passwordauthentication", "no"),
        ("x11forwarding", "no"),
        ("maxauthtries", "3"),
        ("kbdinteractiveauthentication", "no"),
    ],
)
def test_sshd_effective_settings(host, key, value):
    effective = host.check_output("sshd -T")
    assert f"{key} {value}" in effective.splitlines()


def test_sshd_listens(host):
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_login_umask(host):
    assert host.file("/etc/login.defs").contains("^UMASK\t\t027$")

"""Unit tests of plugins/module_utils/environment.py: what a release's admin/environment.xml
requires, and what a host lacks (the data as Moodle 5.1's file has it, cut down)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

import environment as env

XML = """<?xml version="1.0" encoding="UTF-8" ?>
<COMPATIBILITY_MATRIX>
  <MOODLE version="4.5" requires="4.1.2">
    <DATABASE level="required"><VENDOR name="postgres" version="13" /></DATABASE>
    <PHP version="8.1.0" level="required" />
  </MOODLE>
  <MOODLE version="5.1" requires="4.2.3">
    <DATABASE level="required">
      <VENDOR name="mariadb" version="10.11.0" />
      <VENDOR name="mysql" version="8.4" />
      <VENDOR name="postgres" version="15" />
    </DATABASE>
    <PHP version="8.2.0" level="required" />
    <PHP_EXTENSIONS>
      <PHP_EXTENSION name="intl" level="required" />
      <PHP_EXTENSION name="sodium" level="required" />
      <PHP_EXTENSION name="soap" level="optional" />
    </PHP_EXTENSIONS>
  </MOODLE>
</COMPATIBILITY_MATRIX>
"""
HOST_OK = {"php_version": "8.2.29", "php_extensions": ["Core", "intl", "sodium"]}


def test_requirements_of_the_branch():
    req = env.requirements(XML, "5.1")
    assert req["php"] == "8.2.0" and req["upgrade_from"] == "4.2.3"
    assert req["databases"] == {"mariadb": "10.11.0", "mysql": "8.4", "postgres": "15"}
    assert req["extensions"] == ["intl", "sodium"]  # optional ones are not required
    assert env.requirements(XML, "5.3") is None


def test_a_host_that_can_run_it():
    req = env.requirements(XML, "5.1")
    assert env.unmet(req, db_family="postgres", db_version="15.14 (Debian 15.14-0+deb12u1)", **HOST_OK) == []
    assert (
        env.unmet(
            req, db_family="mysql", db_version="10.11.6-MariaDB-0+deb12u1", installed_branch="4.5", **HOST_OK
        )
        == []
    )


@pytest.mark.parametrize(
    ("host", "says"),
    [
        (
            {"php_version": "8.1.2", "php_extensions": ["intl", "sodium"]},
            "PHP 8.2.0 or newer (the host has 8.1.2)",
        ),
        ({"php_version": "8.2.0", "php_extensions": ["intl"]}, "the PHP extensions sodium"),
        (
            {**HOST_OK, "db_family": "postgres", "db_version": "13.9"},
            "postgres 15 or newer (the database server is 13.9)",
        ),
        ({**HOST_OK, "db_family": "mysql", "db_version": "10.6.12-MariaDB"}, "mariadb 10.11.0 or newer"),
        (
            {**HOST_OK, "db_family": "mssql", "db_version": "16"},
            "a supported database (mariadb, mysql, postgres",
        ),
        (
            {**HOST_OK, "installed_branch": "4.1"},
            "an upgrade from Moodle 4.2.3 or newer (the site is at 4.1)",
        ),
    ],
)
def test_what_a_host_lacks_is_named(host, says):
    problems = env.unmet(env.requirements(XML, "5.1"), **host)
    assert len(problems) == 1 and says in problems[0], problems


def test_version_parsing():
    assert env.version_tuple("8.2.29-1~deb12u1") == (8, 2, 29)
    assert env.version_tuple("15.14 (Debian 15.14-0+deb12u1)") == (15, 14)
    assert env.version_tuple("") == ()
    assert env.branch_name("405") == "4.5" and env.branch_name("501") == "5.1"


def test_the_real_file_when_a_moodle_tree_is_at_hand(moodle_src):
    xml = next(Path(moodle_src).glob("*admin/environment.xml"), None) or Path(
        moodle_src, "public/admin/environment.xml"
    )
    if not xml.is_file():
        pytest.skip(f"{moodle_src} is an archive: no environment.xml to read here")
    text = xml.read_text(encoding="utf-8")
    req = env.requirements(text, "5.1") or env.requirements(text, "4.5")
    assert req and req["php"] and "postgres" in req["databases"]

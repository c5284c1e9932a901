"""Fixtures for integration tests against a real Moodle on this machine (no container).

* ``pg_cluster`` -- a private PostgreSQL cluster for the session (stopped at the end).
* ``mariadb_server`` -- a private MariaDB server for the session (stopped at the end).
* ``moodle_site`` -- one installed Moodle site for the session, shared by all module tests
  (install takes about a minute); ``moodle_site_mariadb`` -- the same on MariaDB.
* ``lms`` -- runs an ``lms_*`` module through the real Ansible machinery (``ansible`` ad hoc with
  the JSON callback), so argument specs, check mode, diff and ``no_log`` are exercised for real.

Everything skips with a message naming what is missing: a Moodle source (``MOODLE_SRC``), root,
PostgreSQL server binaries, PHP and its extensions.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moodle_site as ms
import moodle_source
from ansible_cli import ansible_module, module_result


@pytest.fixture(scope="session")
def integration_prerequisites():
    missing = ms.missing_prerequisites()
    if missing:
        pytest.skip("integration tests need: " + "; ".join(missing))


def _private_server(server_class, prefix: str):
    """A database server in a private temp dir for the session; stopped (and removed unless
    TI_KEEP_SITE is set) at the end."""
    base = ms.private_tmpdir(prefix)
    server = server_class(base).start()
    try:
        yield server
    finally:
        server.stop()
        if not os.environ.get("TI_KEEP_SITE"):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster(integration_prerequisites):
    yield from _private_server(ms.PgCluster, "ti-pg-")


@pytest.fixture(scope="session")
def moodle_site(request, moodle_src, integration_prerequisites):
    """An installed Moodle site (code copy + dataroot + config.php + database) for the session.

    ``TI_REUSE_SITE=<dir>`` reuses a site made by ``moodle_site.py up <dir>`` (for quick iterations
    while developing; the site is left running).
    """
    reuse = os.environ.get("TI_REUSE_SITE")
    if reuse:
        cluster = ms.PgCluster.attach(Path(reuse) / "pg")
        yield ms.MoodleTestSite(Path(reuse) / "site", cluster)
        return
    pg_cluster = request.getfixturevalue("pg_cluster")
    base = ms.private_tmpdir("ti-site-")
    site = ms.MoodleTestSite(base, pg_cluster).create(moodle_src)
    # Installed through lms_install (what the lms role uses); test_lms_install checks the result.
    site.install_result = ModuleRunner(site)(
        "lms_install",
        admin_password=ms.ADMIN_PASSWORD,
        admin_email="admin@example.invalid",
        fullname="three-instance test site",
        shortname="ti-test",
        summary="integration tests",
    )
    assert site.install_result.get("installed"), site.install_result
    seconds = site.install_result["seconds"]
    print(f"\n[moodle_site] installed {moodle_src} in {seconds:.1f} s at {site.code}", file=sys.stderr)
    try:
        yield site
    finally:
        if not os.environ.get("TI_KEEP_SITE"):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_server(integration_prerequisites):
    """A private MariaDB server for the session (stopped at the end)."""
    missing = ms.missing_mariadb()
    if missing:
        pytest.skip("MariaDB integration tests need: " + "; ".join(missing))
    yield from _private_server(ms.MariaDbServer, "ti-mdb-")


@pytest.fixture(scope="session")
def moodle_site_mariadb(mariadb_server, moodle_src):
    """An installed Moodle site on MariaDB for the session (same API as ``moodle_site``)."""
    base = ms.private_tmpdir("ti-site-mdb-")
    site = ms.MoodleTestSite(base, mariadb_server, wwwroot="http://localhost/ti-test-mdb").create(moodle_src)
    seconds = site.install()
    print(f"\n[moodle_site_mariadb] installed in {seconds:.1f} s at {site.code}", file=sys.stderr)
    try:
        yield site
    finally:
        if not os.environ.get("TI_KEEP_SITE"):
            shutil.rmtree(base, ignore_errors=True)


UPGRADE_FROM_BRANCH = "4.5"  # the LTS the current release upgrades from


@pytest.fixture(scope="session")
def old_moodle_src(private_tree) -> Path:
    """An older Moodle to upgrade from, by the same rule as ``moodle_src`` (tools/moodle_source.py):
    MOODLE_SRC_UPGRADE_FROM (a 4.2.3+ tree or tarball), else a 4.5 tree in the cache folder
    (``moodle*``, then ``upgrade-from/moodle*``: kept out of ``moodle*`` so that ``moodle_src`` never
    picks it), else the pinned 4.5 download (into ``upgrade-from/``)."""
    explicit = bool(os.environ.get("MOODLE_SRC_UPGRADE_FROM"))
    try:
        found = moodle_source.resolve(
            None if explicit else UPGRADE_FROM_BRANCH, src_var="MOODLE_SRC_UPGRADE_FROM"
        )
    except moodle_source.BadSource as exc:
        found = {"path": "", "error": str(exc)}
    if "error" in found:
        pytest.fail(found["error"], pytrace=False)
    if not found["path"]:
        pytest.skip(
            "no older Moodle to upgrade from: set MOODLE_SRC_UPGRADE_FROM to a Moodle 4.2.3+ tree or "
            f"tarball, or unpack the official 4.5 tarball as {moodle_source.cache_dir()}/upgrade-from/"
            "moodle-4.5 (docs/test-hosts.md, 'Real Moodle') [" + "; ".join(found["warnings"]) + "]"
        )
    return private_tree(Path(found["path"]))


class ModuleRunner:
    """Run an lms_* module on localhost through ``ansible`` and return its result dict."""

    def __init__(self, site: ms.MoodleTestSite):
        self.site = site

    def raw(self, module: str, args: dict, *, check: bool = False, diff: bool = True, verbosity: int = 0):
        full = {"path": str(self.site.code), "web_user": self.site.web_user, **args}
        options = ["--check"] * check + ["--diff"] * diff + ["-" + "v" * verbosity] * bool(verbosity)
        env = dict(self.site.env(), ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_DEPRECATION_WARNINGS="0")
        start = time.monotonic()
        proc = ansible_module(module, full, *options, env=env)
        proc.seconds = time.monotonic() - start
        return proc

    def __call__(self, module: str, check: bool = False, **args) -> dict:
        proc = self.raw(module, args, check=check)
        result = module_result(proc)
        result["_seconds"] = round(proc.seconds, 2)
        return result


@pytest.fixture(scope="session")
def lms(moodle_site) -> ModuleRunner:
    return ModuleRunner(moodle_site)

"""lms_install against a real Moodle: the session site was installed by it (conftest); idempotence,
check mode, the admin password, and the refusal of a half-installed database."""

from __future__ import annotations

import moodle_site as ms
from conftest import ModuleRunner

INSTALL = {
    "admin_password": ms.ADMIN_PASSWORD,
    "admin_email": "admin@example.invalid",
    "fullname": "three-instance test site",
    "shortname": "ti-test",
}


def test_the_session_site_was_installed_by_the_module(moodle_site):
    result = moodle_site.install_result
    assert result["changed"] is True and result["installed"] is True
    assert float(result["version"]) > 2025000000 and result["seconds"] > 1
    assert ms.ADMIN_PASSWORD not in str(result)  # no_log masks it everywhere


def test_admin_logs_in_with_the_password_given_on_stdin(moodle_site):
    out = moodle_site.php_eval(
        "$u = $DB->get_record('user', ['username' => 'admin']);"
        f"echo validate_internal_user_password($u, {ms._php_literal(ms.ADMIN_PASSWORD)}) ? 'yes' : 'no';"
    ).stdout
    assert out.strip().endswith("yes")


def test_an_installed_site_is_left_alone(lms):
    for check in (True, False):
        again = lms("lms_install", check=check, **INSTALL)
        assert again["changed"] is False and again["installed"] is True, again
        assert again["seconds"] == 0.0


def test_empty_and_half_installed_databases(pg_cluster, moodle_src):
    site = ms.MoodleTestSite(
        ms.private_tmpdir("ti-site-half-"), pg_cluster, dbname="half", dbuser="half"
    ).create(moodle_src)
    run = ModuleRunner(site)
    dry = run("lms_install", check=True, **INSTALL)
    assert dry["changed"] is True and dry["installed"] is False, dry
    assert pg_cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db="half") == "0"

    pg_cluster.psql("CREATE TABLE mdl_config (id bigserial PRIMARY KEY, name text, value text)", db="half")
    refused = run("lms_install", **INSTALL)
    assert refused.get("failed") and "holds 1 tables but no installed site" in refused["msg"], refused
    assert pg_cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db="half") == "1"

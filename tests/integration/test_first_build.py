"""lms_restore's first build on real Moodle and PostgreSQL: a new customer's Live, that never served,
is built from its QA's design (docs/onboarding.md). QA is a copy of the session's site with
courses, the test accounts, named staff and learners (the sanitiser's seeding), backed up to the
local S3 API; Live is another copy that holds nothing but its administrator and the guest.

Refused before anything is read from the store: a Live that has a user of its own, a source that is
not the customer's QA, a first build without allow_live. Then the build: Live holds QA's courses
and settings, no user but the guest and the administrators (the others anonymised and deleted, their
enrolments gone), its own mail settings, an identity of its own; a build that stopped before its
people were removed is done again by a re-run; again, no change; once a user has arrived, a first
build is refused for good."""

from __future__ import annotations

import moodle_site as ms
import pytest
from test_backup import bucket, store_args  # noqa: F401 - bucket is a fixture
from test_sanitise import COURSES, clone_site, remove_clone, run_sql, seed

LEARNERS = 25
ALLOW = {"allow_live": True, "allow_live_reason": "CHG-12: initech goes live, built from QA's design"}


@pytest.fixture(scope="module")
def sites(moodle_site, bucket, lms):  # noqa: F811 - the fixture imported above
    store = store_args(bucket)
    qa = clone_site(moodle_site, "ti_fb_qa", wwwroot="http://initech-qa.example")
    live = clone_site(moodle_site, "ti_fb_live", wwwroot="http://initech-live.example")
    try:
        seed(qa, LEARNERS)
        qa.php_eval(
            "get_file_storage()->create_file_from_string(['contextid' => context_system::instance()->id,"
            " 'component' => 'local_ti', 'filearea' => 'design', 'itemid' => 0, 'filepath' => '/',"
            " 'filename' => 'design.txt'], 'the course design');"
            "set_config('theme', 'classic');"
        )
        backup = type(lms)(qa)(
            "lms_backup", path=str(qa.code), site="initech-qa", customer="initech", store=store
        )
        assert backup.get("changed"), backup.get("msg")
        # A Live converged and never opened: whatever the session's site holds from other tests goes.
        run_sql(live, "UPDATE mdl_user SET deleted = 1 WHERE username NOT IN ('admin', 'guest')")
        run_sql(live, "DELETE FROM mdl_course WHERE id <> 1")
        live.php_eval("purge_all_caches();")
        yield {"qa": qa, "live": live, "store": store, "run": type(lms)(live)}
    finally:
        remove_clone(qa)
        remove_clone(live)


def build(sites, check=False, **args):
    args = {
        "path": str(sites["live"].code),
        "site": "initech-live",
        "source_site": "initech-qa",
        "customer": "initech",
        "store": sites["store"],
        "first_build": True,
        **ALLOW,
        **args,
    }
    return sites["run"]("lms_restore", check=check, **args)


def state(site: ms.MoodleTestSite) -> dict:
    return {
        "courses": run_sql(site, "SELECT shortname FROM mdl_course WHERE id <> 1 ORDER BY shortname").split(),
        "active": run_sql(site, "SELECT username FROM mdl_user WHERE deleted = 0 ORDER BY username").split(),
        "enrolments": int(run_sql(site, "SELECT count(*) FROM mdl_user_enrolments")),
        "theme": run_sql(site, "SELECT value FROM mdl_config WHERE name = 'theme'"),
        "noemailever": run_sql(
            site, "SELECT count(*) FROM mdl_config WHERE name = 'noemailever' AND value = '1'"
        ),
        "siteidentifier": run_sql(site, "SELECT value FROM mdl_config WHERE name = 'siteidentifier'"),
        "learners_left": int(run_sql(site, "SELECT count(*) FROM mdl_user WHERE email LIKE '%realmail%'")),
    }


def add_user(site: ms.MoodleTestSite, username: str) -> None:
    site.php_eval(
        "require_once($CFG->dirroot . '/user/lib.php');"
        f"user_create_user(['username' => '{username}', 'firstname' => 'Early', 'lastname' => 'Bird',"
        f" 'email' => '{username}@example.invalid', 'password' => 'Early-bird-1!', 'auth' => 'manual',"
        " 'mnethostid' => 1, 'confirmed' => 1]);"
    )


def test_refusals_change_nothing(sites):
    live = sites["live"]
    add_user(live, "earlybird")
    before = state(live)
    served = build(sites)
    assert served.get("failed") and not served.get("target_changed"), served
    assert "first_build refuses initech-live: it has served" in served["msg"] and "earlybird" in served["msg"]
    assert state(live) == before
    run_sql(live, "UPDATE mdl_user SET deleted = 1 WHERE username = 'earlybird'")
    before = state(live)

    from_dev = build(sites, source_site="initech-dev")
    assert from_dev.get("failed") and "Live is restored only from its own backup" in from_dev["msg"], from_dev
    assert "first_build (source_site=initech-qa)" in from_dev["msg"]
    not_first = build(sites, first_build=False)
    assert not_first.get("failed") and "Live is restored only from its own backup" in not_first["msg"]
    no_override = build(sites, allow_live=False, allow_live_reason=None)
    assert no_override.get("failed") and "it is a Live site" in no_override["msg"], no_override
    assert state(live) == before


def test_check_mode_changes_nothing(sites):
    before = state(sites["live"])
    dry = build(sites, check=True)
    assert dry.get("changed") and not dry.get("failed"), dry
    assert state(sites["live"]) == before


def test_live_is_built_from_qa_without_its_people(sites):
    qa, live = sites["qa"], sites["live"]
    qa_state = state(qa)
    assert len(qa_state["active"]) > LEARNERS and qa_state["learners_left"] == LEARNERS

    result = build(sites)
    assert result.get("changed") and not result.get("failed"), result.get("msg")
    assert result["first_build"]["admins_kept"] == ["admin"]
    assert result["first_build"]["users_removed"] >= LEARNERS + 3  # learners, test accounts, staff
    after = state(live)
    # QA's design: its courses and settings (the theme)...
    assert after["courses"] == sorted(COURSES) == qa_state["courses"]
    assert after["theme"] == "classic"
    # ...without its people: only the guest and the administrator, no enrolment, no learner's data.
    assert after["active"] == ["admin", "guest"]
    assert after["enrolments"] == 0 and after["learners_left"] == 0
    # The build left mail alone (Live's tier delivers); Live has an identity of its own.
    assert after["noemailever"] == "0"
    assert after["siteidentifier"] not in (qa_state["siteidentifier"], "")
    marker = run_sql(
        live, "SELECT value FROM mdl_config_plugins WHERE plugin = 'three_instance' AND name = 'first_build'"
    )
    assert marker.startswith("initech-qa/"), marker
    # QA itself is as it was.
    assert state(qa) == qa_state


def test_an_interrupted_first_build_is_done_again(sites):
    """As if the last build had stopped after loading QA's database: its marker says pending and a
    learner of QA's is still there. A re-run (no force) builds again and removes them."""
    live = sites["live"]
    marker = "SELECT value FROM mdl_config_plugins WHERE plugin = 'three_instance' AND name = 'first_build'"
    done = run_sql(live, marker)
    run_sql(live, "UPDATE mdl_config_plugins SET value = 'pending ' || value WHERE plugin = 'three_instance'"
            " AND name = 'first_build'")  # fmt: skip
    run_sql(
        live, "UPDATE mdl_user SET deleted = 0 WHERE id = (SELECT min(id) FROM mdl_user WHERE deleted = 1)"
    )
    live.php_eval("purge_all_caches();")
    assert len(state(live)["active"]) == 3

    again = build(sites)
    assert again.get("changed") and not again.get("failed"), again.get("msg")
    assert state(live)["active"] == ["admin", "guest"]
    assert run_sql(live, marker) == done


def test_again_is_no_change_and_a_served_live_is_refused_for_good(sites):
    before = state(sites["live"])
    again = build(sites)
    assert not again.get("failed") and not again.get("changed") and again["already_restored"], again
    assert state(sites["live"]) == before

    add_user(sites["live"], "firstlearner")
    before = state(sites["live"])
    served = build(sites, force=True)
    assert served.get("failed") and "firstlearner" in served["msg"] and not served.get("target_changed")
    assert state(sites["live"]) == before

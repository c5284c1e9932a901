"""plugins/filter/establish_plan.py: which steps of the path from QA to three established sites a
run of establish.yml takes, read from the sites' hosts, so that a stopped run is continued by the
next one and a finished path is left alone."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import establish_plan as ep

R1 = "moodle-5.1-r1"


def states(**tiers) -> dict:
    """initech's three sites on their hosts: QA installed with release 1, Dev and Live converged and
    never installed; ``tiers`` overrides a tier's fields."""
    base = {
        "dev": {"hosts": True, "installed": False, "release": "", "first_build": "", "restored_backup": ""},
        "qa": {"hosts": True, "installed": True, "release": R1, "first_build": "", "restored_backup": ""},
        "live": {"hosts": True, "installed": False, "release": "", "first_build": "", "restored_backup": ""},
    }
    return {tier: {**base[tier], **tiers.get(tier, {})} for tier in base}


def run(plan: dict) -> list[str]:
    return [step for step in ep.STEPS if plan["steps"][step]]


def test_a_new_customer_with_a_poc_runs_every_step():
    plan = ep.establish_plan(states(qa={"installed": False, "release": ""}), "initech", adopt=True)
    assert plan["problems"] == []
    assert run(plan) == [s for s in ep.STEPS if s != "release_qa"]  # QA runs the release it will have
    assert plan["backup_id"] is None


def test_a_first_release_goes_dev_qa_live_when_qa_runs_its_converges_build():
    converged = states(qa={"release": "moodle-2025100600.02-720a8b7a0fa0"})
    plan = ep.establish_plan(converged, "initech", first_release=R1)
    assert plan["problems"] == [] and plan["release"] == R1
    assert run(plan) == [s for s in ep.STEPS if s != "adopt"]
    assert "release_qa: run (takes the first release moodle-5.1-r1)" in ep.establish_summary(plan)
    # the PoC first: QA's release is not known yet, the first release is
    plan = ep.establish_plan(states(qa={"installed": False, "release": ""}), "initech", True, R1)
    assert plan["problems"] == [] and run(plan) == list(ep.STEPS)


def test_a_run_stopped_at_lives_window_with_a_first_release_goes_on_with_live():
    built = {"installed": True, "first_build": "initech-qa/20261207T0400Z"}
    plan = ep.establish_plan(states(dev={**built, "release": R1}, live=built), "initech", first_release=R1)
    assert run(plan) == ["release_live", "backfit_qa"]  # QA runs R1 already: promoted before


def test_after_the_adoption_the_rest_runs_with_qas_release():
    plan = ep.establish_plan(states(), "initech")
    assert plan["problems"] == []
    assert run(plan) == [s for s in ep.STEPS if s not in ("adopt", "release_qa")]
    assert plan["release"] == R1
    assert "takes QA's release moodle-5.1-r1" in ep.establish_summary(plan)[4]


def test_a_run_stopped_after_devs_first_build_goes_on_from_the_same_backup():
    plan = ep.establish_plan(
        states(dev={"installed": True, "first_build": "initech-qa/20261207T0400Z"}), "initech"
    )
    assert run(plan) == ["first_build_live", "release_dev", "release_live", "backfit_qa"]
    assert plan["backup_id"] == "20261207T0400Z"  # Live is built from the backup Dev was built from


def test_a_first_build_left_pending_is_done_again_from_its_backup():
    pending = {"installed": True, "first_build": "pending initech-qa/20261207T0400Z"}
    plan = ep.establish_plan(states(live=pending), "initech")
    assert plan["steps"]["first_build_live"] and plan["steps"]["first_build_dev"]
    assert not plan["steps"]["backup_qa"] and plan["backup_id"] == "20261207T0400Z"


def test_a_run_stopped_at_lives_window_goes_on_with_live():
    built = {"installed": True, "first_build": "initech-qa/20261207T0400Z"}
    plan = ep.establish_plan(states(dev={**built, "release": R1}, live=built), "initech")
    assert run(plan) == ["release_live", "backfit_qa"]


def test_an_established_customer_has_nothing_to_do():
    built = {"installed": True, "first_build": "initech-qa/20261207T0400Z", "release": R1}
    qa = {"restored_backup": "initech-live/20261207T0500Z"}
    plan = ep.establish_plan(states(dev=built, live=built, qa=qa), "initech")
    assert run(plan) == [] and plan["problems"] == []
    assert ep.establish_summary(plan)[-1] == "backfit_qa: skip (QA holds initech-live/20261207T0500Z)"


def test_a_poc_given_once_dev_or_live_is_built_is_refused():
    plan = ep.establish_plan(states(live={"installed": True, "first_build": "initech-qa/x"}), "initech", True)
    assert not plan["steps"]["adopt"]
    assert plan["problems"] and plan["problems"][0].startswith(
        "refused: initech-live was built from initech-qa"
    )


def test_qa_neither_installed_nor_given_a_poc_is_refused():
    plan = ep.establish_plan(states(qa={"installed": False, "release": ""}), "initech")
    assert plan["problems"] == [
        "initech-qa is not installed: give its proof-of-concept site (-e from=... -e from_wwwroot=...), "
        "or install it (site.yml with lms_install) and run establish.yml again"
    ]


def test_qa_without_a_verified_release_is_refused():
    plan = ep.establish_plan(states(qa={"release": ""}), "initech")
    assert len(plan["problems"]) == 1 and "runs no verified release" in plan["problems"][0]
    assert "-e first_release=<id>" in plan["problems"][0]
    assert ep.establish_plan(states(qa={"release": ""}), "initech", first_release=R1)["problems"] == []


def test_a_tier_without_a_host_here_is_refused_naming_it():
    plan = ep.establish_plan(states(live={"hosts": False}), "initech")
    assert plan["problems"] == ["customer initech has no live site with a web host in this inventory"]


def test_a_backup_of_another_site_is_not_taken_for_qas():
    # a marker naming another site (never written by a first build, which takes only QA's) is not reused
    plan = ep.establish_plan(
        states(dev={"installed": True, "first_build": "pending initech-live/x"}), "initech"
    )
    assert plan["backup_id"] is None and plan["steps"]["backup_qa"]

"""awx/controller.yml (the AWX configuration as data), its filters (plugins/filter/awx_config.py)
and awx/apply.yml, without a controller: every survey well-formed, every template's playbook
present, the workflow reaching Live only through an approval node, every RRULE parsing; the
execution environment's build context rendered offline."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dateutil import rrule as dateutil_rrule

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import awx_config as awx
from estate import build_inventory, parse_estate

CONFIG = yaml.safe_load((REPO / "awx" / "controller.yml").read_text())
BIN = Path(sys.executable).parent


def estate_choices(estate: str = "inventories/example") -> dict:
    inv = build_inventory(parse_estate(yaml.safe_load((REPO / estate / "estate.yml").read_text()), "x"))
    sites = [s for host in inv.hosts.values() for s in host["vars"].get("estate_sites", [])]
    return {
        "customers": sorted({s["customer"] for s in sites}),
        "sites": sorted({s["name"] for s in sites}),
        "release_manifests": sorted(f"releases/{p.name}" for p in (REPO / "releases").glob("*.yml")),
    }


CHOICES = estate_choices()


def test_the_configuration_is_sound():
    assert awx.check(CONFIG, str(REPO), CHOICES) == []


def test_every_operator_playbook_has_a_template_and_surveys_ask_what_playbooks_read():
    playbooks = {jt["playbook"] for jt in CONFIG["job_templates"]}
    for name in ("site", "build_release", "deploy", "promote", "rollback", "promote_courses", "backup",
                 "restore", "verify_backup", "refresh_qa", "releases_status", "audit",
                 "onboard", "establish"):  # fmt: skip
        assert f"playbooks/{name}.yml" in playbooks, name
    code = "\n".join(p.read_text() for d in ("playbooks", "roles") for p in (REPO / d).rglob("*.yml"))
    for jt in [*CONFIG["job_templates"], CONFIG["workflow"]]:
        for q in jt.get("survey", []):
            assert q["variable"] in code, (jt["name"], q["variable"])


MUTATIONS = {
    "a playbook that does not exist": (
        lambda c: c["job_templates"][0].update(playbook="playbooks/nope.yml"),
        "is not in the repository",
    ),
    "a default outside the choices": (
        lambda c: c["job_templates"][3]["survey"][1].update(default="prod"),
        "is not among the choices",
    ),
    "an unknown choice source": (
        lambda c: c["job_templates"][3]["survey"][0].update(choices_from="planets"),
        "choices_from 'planets'",
    ),
    "a required text that may be empty": (
        lambda c: c["job_templates"][2]["survey"][1].update(min=0),
        "a required text needs min >= 1",
    ),
    "an unknown survey type": (
        lambda c: c["job_templates"][2]["survey"][1].update(type="date"),
        "type 'date'",
    ),
    "Live without the approval": (
        lambda c: c["workflow"]["nodes"][2].update(success=["live"]),
        "promotes to Live without an approval node",
    ),
    "a node naming no template": (
        lambda c: c["workflow"]["nodes"][0].update(template="Build everything"),
        "no job template 'Build everything'",
    ),
    "a cycle": (lambda c: c["workflow"]["nodes"][-1].update(success=["build"]), "no start node"),
    "a bad rrule": (lambda c: c["schedules"]["once"][0].update(rrule="FREQ=HOURLY"), "FREQ=DAILY"),
    "a bad time": (lambda c: c["schedules"]["once"][0].update(at="25:00"), "is not HH:MM"),
}


@pytest.mark.parametrize("case", list(MUTATIONS))
def test_broken_configurations_are_refused_naming_the_problem(case):
    mutate, expected = MUTATIONS[case]
    broken = copy.deepcopy(CONFIG)
    mutate(broken)
    problems = awx.check(broken, str(REPO), CHOICES)
    assert any(expected in p for p in problems), problems


def test_survey_specs_are_what_the_awx_api_takes():
    promote = next(jt for jt in CONFIG["job_templates"] if jt["name"] == "Promote a release")
    spec = awx.survey_spec(promote["survey"], CHOICES, promote["name"])
    customer, to, reason = spec["spec"]
    assert customer["choices"] == CHOICES["customers"] and customer["type"] == "multiplechoice"
    assert to == {
        "question_name": "To tier",
        "question_description": "",
        "variable": "to",
        "type": "multiplechoice",
        "required": True,
        "default": "qa",
        "choices": ["qa", "live"],
    }
    assert (reason["min"], reason["max"], reason["required"]) == (0, 500, False)


def test_the_workflow_nodes_and_the_approval():
    nodes = {n["identifier"]: n for n in awx.workflow_nodes(CONFIG["workflow"], "Default")}
    approval = nodes["sign-off"]["unified_job_template"]
    assert approval["type"] == "workflow_approval" and approval["timeout"] == 7 * 24 * 3600
    assert nodes["qa"]["related"]["success_nodes"] == [{"identifier": "sign-off"}]
    assert nodes["live"]["extra_data"] == {"to": "live"}
    assert nodes["build"]["unified_job_template"] == {
        "name": "Build a release",
        "type": "job_template",
        "organization": {"name": "Default"},
    }


def test_schedules_spread_customers_and_parse_as_rrules():
    out = awx.schedules(CONFIG, ["acme", "globex", "initech"])
    backups = [s for s in out if s["unified_job_template"] == "Back up a site"]
    assert [s["rrule"].split(":")[1][9:13] for s in backups] == ["0130", "0230", "0330"]
    assert backups[1]["extra_data"] == {"backup_prune": True, "tier": "live", "customer": "globex"}
    assert len(out) == 3 * len(CONFIG["schedules"]["per_customer"]) + len(CONFIG["schedules"]["once"])
    for schedule in out:
        dtstart, rule = schedule["rrule"].split(" ")
        tz = dtstart.split("TZID=")[1].split(":")[0]
        parsed = dateutil_rrule.rrulestr(f"DTSTART:{dtstart.split(':')[1]}\n{rule}")
        assert tz == "Europe/London" and parsed[0].year == 2026, schedule


def test_apply_checks_everything_before_the_first_controller_call(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), CONTROLLER_HOST="https://127.0.0.1:9",
               CONTROLLER_OAUTH_TOKEN="unused")  # fmt: skip
    playbook = [str(BIN / "ansible-playbook"), "-i", "inventories/example", "awx/apply.yml"]
    syntax = subprocess.run([*playbook, "--syntax-check"], cwd=REPO, env=env, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    no_url = subprocess.run(playbook, cwd=REPO, env=env, capture_output=True, text=True)
    assert no_url.returncode != 0 and "awx_project_url: give the git URL" in no_url.stdout
    run = subprocess.run([*playbook, "-e", "awx_project_url=https://git.example/ti.git"], cwd=REPO, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode != 0
    assert "ok: [localhost]" in run.stdout.split("TASK [Project (this repository)]")[0]  # the checks passed
    assert "127.0.0.1:9" in run.stdout.split("TASK [Project (this repository)]")[1]  # then the controller


def test_the_execution_environment_renders_offline(tmp_path):
    builder = BIN / "ansible-builder"
    if not builder.exists():
        pytest.skip("ansible-builder is not installed (make setup installs requirements.txt)")
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3 and ee["images"]["base_image"]["name"]
    create = [str(builder), "create", "-f", "execution-environment.yml", "-c", str(tmp_path / "ctx")]
    out = subprocess.run(create, cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    build = tmp_path / "ctx" / "_build"
    assert (build / "requirements.yml").read_text() == (REPO / "requirements.yml").read_text()
    assert (
        "boto3" in (build / "requirements.txt").read_text()
        and "postgresql" in (build / "bindep.txt").read_text()
    )
    # the EE's Python pins are requirements.txt's
    pins = {
        line.split("==")[0]: line
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line
    }
    for line in (REPO / "awx" / "ee-requirements.txt").read_text().splitlines():
        if "==" in line:
            assert pins[line.split("==")[0]] == line
    shutil.rmtree(tmp_path / "ctx")

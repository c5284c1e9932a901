"""Unit tests of the estate report (playbooks/report.yml): plugins/module_utils/estate_report.py
builds the rows and flags from what the play gathered, with a fixed "now"; the JSON validates
against files/estate-report.schema.json; the HTML escapes what sites supply; lms_backup_info's
history and the module lms_estate_report. The fixture is tests/fixtures/report/report_fixture.py."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "report"))

# tests/conftest.py puts plugins/module_utils on sys.path and maps ansible.module_utils.<name> to it.
import estate_report as er
import report_fixture as fixture
from backup import format as backup_format
from backup import info as backup_info

SCHEMA = json.loads((REPO / "files" / "estate-report.schema.json").read_text())


def build(**changes):
    args = fixture.inputs()
    args.update(changes)
    return er.build_report(**args)


def row(report: dict, site: str) -> dict:
    return next(r for r in report["sites"] if r["site"] == site)


def kinds(report: dict, site: str, column: str | None = None) -> set[str]:
    return {f["kind"] for f in row(report, site)["flags"] if column is None or f["column"] == column}


def validate(report: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(er.to_json(report)))


# ----- rows and the schema -----------------------------------------------------------------------


def test_one_row_per_site_in_customer_and_tier_order_and_the_json_is_valid():
    report = build()
    assert [r["site"] for r in report["sites"]] == [
        "acme-dev",
        "acme-qa",
        "acme-live",
        "globex-dev",
        "globex-qa",
    ]
    assert report["summary"] == {"sites": 5, "flagged": 5, "unreachable": 0}
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validate(report)
    live = row(report, "acme-live")
    assert live["release"]["id"] == fixture.R3 and live["release"]["verified"]
    assert live["moodle"]["branch"] == "5.1" and live["moodle"]["version"] == "2025100603.00"
    assert live["last_deploy"] == {
        "at": "2026-11-22T02:10:00Z",
        "by": "promote.yml (ops)",
        "release": fixture.R3,
        "outcome": "deployed",
        "maintenance_seconds": 31.5,
    }
    assert live["window"]["next_open"] == "2026-11-29T02:00:00+00:00" and not live["window"]["open"]
    assert row(report, "acme-dev")["window"] == {
        "constrained": False,
        "open": True,
        "next_open": None,
        "open_until": None,
        "windows": [],
        "error": None,
    }
    assert live["policy"] == {"checked": True, "settings": 3, "drift": []}


def test_the_schema_refuses_what_the_report_never_writes():
    report = json.loads(er.to_json(build()))
    broken = json.loads(json.dumps(report))
    del broken["sites"][0]["backup"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)
    broken = json.loads(json.dumps(report))
    broken["sites"][2]["tier"] = "prod"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_qa_refresh_and_last_deploy_come_from_the_history():
    qa = row(build(), "acme-qa")
    assert qa["last_refresh"] == {
        "at": "2026-11-20T09:00:00Z",
        "from_site": "acme-live",
        "backup_id": "20261120T085500Z",
        "release": fixture.R3,
    }
    # The refresh is not a deploy: the last deploy is the promotion before it.
    assert (
        qa["last_deploy"]["at"] == "2026-11-16T10:00:00Z" and qa["last_deploy"]["maintenance_seconds"] == 28.2
    )
    assert row(build(), "acme-live")["last_refresh"] is None


# ----- backups -----------------------------------------------------------------------------------


def test_a_stale_live_backup_is_flagged_and_a_fresh_one_is_not():
    stale = build()
    live = row(stale, "acme-live")
    assert live["backup"]["latest"]["id"] == "20261122T100000Z"
    assert live["backup"]["latest"]["age_hours"] == 50.0 and live["backup"]["count"] == 4
    assert kinds(stale, "acme-live", "backup") == {"stale"}
    # 40 hours earlier the same backup was 10 h old: not flagged.
    fresh = build(now=fixture.NOW - dt.timedelta(hours=40))
    assert kinds(fresh, "acme-live", "backup") == set()
    # QA has no backup duty by default; with a threshold of a day its 34 h old backup is stale.
    assert kinds(stale, "acme-qa", "backup") == set()
    limited = build(backup_max_age_hours={"qa": 24})
    assert kinds(limited, "acme-qa", "backup") == {"stale"}
    assert kinds(limited, "acme-live", "backup") == {"stale"}  # live keeps its default
    assert limited["thresholds"]["backup_max_age_hours"] == {"dev": None, "qa": 24, "live": 26}
    # A threshold of a few seconds makes any backup stale (the stack test's second check).
    assert kinds(build(backup_max_age_hours={"qa": 0.001}), "acme-qa", "backup") == {"stale"}


def test_live_without_a_backup_or_without_a_store_is_flagged():
    backups = fixture.backups()
    backups["acme-live"] = fixture.info()
    report = build(backups=backups)
    assert kinds(report, "acme-live", "backup") == {"missing"}
    assert kinds(report, "acme-dev", "backup") == set()  # Dev: no threshold
    no_store = build(backups=None)
    assert row(no_store, "acme-live")["backup"]["error"] == "no backup store given (backup_store)"
    assert kinds(no_store, "acme-live", "backup") == {"unread"}
    validate(no_store)
    failed = fixture.backups()
    failed["acme-live"] = {
        "failed": False,
        "msg": "bucket 'demo-backups' cannot be reached: timeout",
        "item": 1,
    }
    failed["acme-qa"] = {"skipped": True, "item": "acme-qa"}
    report = build(backups=failed)
    assert "cannot be reached" in row(report, "acme-live")["backup"]["error"]
    assert "no key of its own" in row(report, "acme-qa")["backup"]["error"]
    validate(report)


def test_backup_history_summarises_the_newest_manifests():
    class Store:
        bucket = "b"

        def __init__(self):
            self.objects = {}

        def list(self, prefix):
            return {k: len(v) for k, v in self.objects.items() if k.startswith(prefix)}

        def head_size(self, key):
            return len(self.objects[key]) if key in self.objects else None

        def get(self, key):
            return self.objects[key]

    store, keys = Store(), backup_format.Keys("lms-backups", "acme", "acme-live")
    for n, backup_id in enumerate(["20261120T020000Z", "20261121T020000Z", "20261122T020000Z"]):
        manifest = {
            "format": 2,
            "id": backup_id,
            "created": f"2026-11-{20 + n}T02:00:05+00:00",
            "release_id": "r3",
            "objects": {"database": {"size": 1000 + n}, "dataroot": {"size": 200}, "config": {"size": 3}},
            "filedir": {"a" * 40: 5000, "b" * 40: 7},
            "packs": [],
        }
        store.objects[keys.manifest(backup_id)] = backup_format.seal(manifest)
    store.objects[keys.manifest("20261123T020000Z")] = b"{not json"
    ids = backup_format.list_backups(store, keys)
    history = backup_info.history(store, keys, ids, 3)
    assert [h["id"] for h in history] == ["20261121T020000Z", "20261122T020000Z", "20261123T020000Z"]
    assert history[0] == {
        "id": "20261121T020000Z",
        "created": "2026-11-21T02:00:05+00:00",
        "release_id": "r3",
        "bytes": 1001 + 200 + 3 + 5007,
        "files": 2,
    }
    assert "corrupt" in history[2]["error"]
    assert backup_info.history(store, keys, ids, 0) == []
    # The report skips what it cannot chart and keeps the rest.
    result = {"backups": ids, "history": history}
    cell = er.backup_cell(result, "live", 26, fixture.NOW)
    assert [p["id"] for p in cell["history"]] == ["20261121T020000Z", "20261122T020000Z"]
    assert cell["latest"]["bytes"] == 1002 + 200 + 3 + 5007


# ----- drift -------------------------------------------------------------------------------------


def test_qa_not_on_lives_release_is_drift():
    assert row(build(), "acme-qa")["drift"] == []
    hosts = fixture.hosts()
    older = fixture.deployment("acme-live", "moodle-5.1-r2", "2026-11-22T02:10:00Z")
    hosts["live1"]["records"]["results"][0]["records"]["acme-live"] = older
    report = build(hosts=hosts)
    assert row(report, "acme-qa")["drift"] == ["QA runs moodle-5.1-r3, Live runs moodle-5.1-r2"]
    assert kinds(report, "acme-qa", "drift") == {"drift"}
    assert row(report, "acme-live")["drift"] == [] and row(report, "acme-dev")["drift"] == []


def test_dev_behind_qa_is_drift():
    report = build()
    # globex-dev was rolled back to r1 after r2 came to Dev; QA runs r2.
    assert row(report, "globex-dev")["drift"] == [
        "Dev behind QA: Dev runs globex-r1, older than QA's globex-r2"
    ]
    assert kinds(report, "globex-dev", "drift") == {"drift"}
    # Dev ahead of QA (a newer release on Dev) is the normal way: no drift.
    assert row(report, "acme-dev")["drift"] == []
    hosts = fixture.hosts()
    r4 = fixture.deployment("acme-dev", "moodle-5.1-r4", "2026-11-23T10:00:00Z")
    hosts["dev1"]["records"]["results"][0]["records"]["acme-dev"] = r4
    hosts["dev1"]["records"]["results"][0]["history"]["acme-dev"].append(r4)
    assert row(build(hosts=hosts), "acme-dev")["drift"] == []
    # An older Moodle on Dev than on QA.
    hosts = fixture.hosts()
    hosts["dev1"]["facts"]["results"][0]["lms"]["version"] = "2024100700.00"
    hosts["dev1"]["records"]["results"][0]["records"]["acme-dev"] = fixture.deployment(
        "acme-dev", "moodle-4.5-r9", "2026-11-23T10:00:00Z"
    )
    assert row(build(hosts=hosts), "acme-dev")["drift"][0].startswith(
        "Dev behind QA: Dev runs moodle-4.5-r9 (Moodle"
    )
    # QA runs something Dev never ran.
    hosts = fixture.hosts()
    hosts["qa1"]["records"]["results"][1]["records"]["globex-qa"]["release"] = "globex-hotfix"
    assert "which Dev never ran" in row(build(hosts=hosts), "globex-dev")["drift"][0]


# ----- branch support ----------------------------------------------------------------------------


def test_branch_support_from_the_lifecycle_data():
    lifecycle = er.load_lifecycle(fixture.LIFECYCLE)
    today = fixture.NOW.date()
    # 5.1: general fixes ended 2026-10-05; security to 2027-04-19, 146 days away: within 180.
    assert er.support_status("5.1", "moodle", lifecycle, today, 180)["status"] == "ending"
    assert er.support_status("5.1", "moodle", lifecycle, today, 90)["status"] == "security"
    assert er.support_status("5.1", "moodle", lifecycle, dt.date(2026, 6, 1), 180)["status"] == "general"
    ended = er.support_status("5.1", "moodle", lifecycle, dt.date(2027, 4, 20), 180)
    assert ended["status"] == "ended" and ended["days_left"] == -1
    assert er.support_status("5.1", "moodle", lifecycle, dt.date(2027, 4, 19), 0)["status"] == "ending"
    lts = er.support_status("4.5", "moodle", lifecycle, today, 180)
    assert lts == {
        "status": "security",
        "note": None,
        "lts": True,
        "general_support_until": "2025-10-06",
        "security_support_until": "2027-10-04",
        "days_left": 314,
    }
    assert er.support_status("5.3", "moodle", lifecycle, today, 180)["status"] == "general"
    assert er.support_status("5.2", "moodle", lifecycle, today, 180)["status"] == "unknown"
    assert er.support_status("5.1", "totara", lifecycle, today, 180)["note"].startswith("Totara")
    assert (
        er.branch_name("405") == "4.5" and er.branch_name("501") == "5.1" and er.branch_name("1900") == "19.0"
    )
    assert er.branch_name(None) is None and er.branch_name("5.1") is None


def test_sites_near_or_past_the_end_of_support_are_flagged():
    assert kinds(build(), "acme-live", "moodle") == {"support-ending"}
    assert kinds(build(support_warning_days=90), "acme-live", "moodle") == set()
    past = build(now=dt.datetime(2027, 5, 1, tzinfo=dt.UTC))
    assert kinds(past, "acme-live", "moodle") == {"support-ended"}
    assert "ended 2027-04-19" in er._cells(row(past, "acme-live"))["moodle"]


def test_the_repositorys_lifecycle_file():
    data = yaml.safe_load((REPO / "files" / "moodle-lifecycle.yml").read_text())
    lifecycle = er.load_lifecycle(data)
    assert sorted(lifecycle) == ["4.5", "5.0", "5.1", "5.2", "5.3"]
    # DESIGN §6's dates.
    assert lifecycle["4.5"]["security_support_until"] == dt.date(2027, 10, 4) and lifecycle["4.5"]["lts"]
    assert lifecycle["5.1"]["general_support_until"] == dt.date(2026, 10, 5)
    assert lifecycle["5.1"]["security_support_until"] == dt.date(2027, 4, 19)
    assert lifecycle["5.3"]["released"] == dt.date(2026, 10, 5) and lifecycle["5.3"]["lts"]
    assert not lifecycle["5.0"]["lts"] and not lifecycle["5.2"]["lts"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "must be {branches"),
        ({"branches": [{"branch": "five"}]}, "needs a branch"),
        (
            {
                "branches": [
                    {
                        "branch": "5.1",
                        "released": "2025-10-06",
                        "general_support_until": "soon",
                        "security_support_until": "2027-04-19",
                    }
                ]
            },
            "is not a date",
        ),
        (
            {
                "branches": [
                    {
                        "branch": "5.1",
                        "released": "2025-10-06",
                        "general_support_until": "2028-01-01",
                        "security_support_until": "2027-04-19",
                    }
                ]
            },
            "released <= general",
        ),
    ],
)
def test_bad_lifecycle_data_is_refused(data, message):
    with pytest.raises(er.ReportError, match=message):
        er.load_lifecycle(data)


@pytest.mark.parametrize(
    ("hours", "days"),
    [({"prod": 1}, None), ({"live": 0}, None), ({"live": "soon"}, None), ({"live": True}, None), (None, -1)],
)
def test_bad_thresholds_are_refused(hours, days):
    with pytest.raises(er.ReportError):
        er.check_thresholds(hours, days)


# ----- hosts that do not answer ------------------------------------------------------------------


def test_an_unreachable_host_makes_its_cells_say_so():
    hosts = fixture.hosts()
    hosts["qa1"] = {
        "ping": {"unreachable": True, "changed": False, "msg": "Failed to create temporary directory: qa1"},
        "sites": ["acme-qa", "globex-qa"],
    }
    report = build(hosts=hosts)
    validate(report)
    assert report["summary"]["unreachable"] == 2
    for site in ("acme-qa", "globex-qa"):
        qa = row(report, site)
        assert qa["reachable"] is False and qa["release"] is None and qa["moodle"] is None
        assert "unreachable" in kinds(report, site, "site")
        cells = er._cells(qa)
        for column in ("release", "moodle", "upgrade", "maintenance", "deploy", "refresh", "policy"):
            assert cells[column] == "unreachable", (column, cells)
        # The store still answers: the backup cell is not the host's.
        assert qa["backup"]["count"] is not None
    # No drift can be told without QA's release.
    assert row(report, "acme-dev")["drift"] == [] and row(report, "globex-dev")["drift"] == []
    page = er.render_html(report)
    assert page.count('class="col-release unreachable"') == 2


def test_a_host_unreachable_mid_play_or_silent():
    hosts = fixture.hosts()
    hosts["live1"]["facts"]["results"][0] = {
        "item": "acme-live",
        "unreachable": True,
        "msg": "podman exec: container live1 is not running",
    }
    hosts["dev1"] = None  # registered nothing (the play stopped there)
    # A connection that reports its failure as the module's (podman exec of a missing container).
    hosts["qa1"]["ping"] = {"failed": False, "rc": 125, "msg": "MODULE FAILURE: no container with name qa1"}
    report = build(hosts=hosts)
    validate(report)
    live = row(report, "acme-live")
    assert live["reachable"] is False and "not running" in live["error"]
    dev = row(report, "acme-dev")
    assert dev["reachable"] is None and "did not answer" in dev["error"]
    assert kinds(report, "acme-dev", "site") == {"error"}
    for site in ("acme-qa", "globex-qa"):
        assert row(report, site)["reachable"] is False and "no container" in row(report, site)["error"]
        assert row(report, site)["release"] is None and kinds(report, site, "site") == {"unreachable"}


def test_a_site_that_cannot_be_read_or_has_no_code():
    hosts = fixture.hosts()
    hosts["dev1"]["facts"]["results"][0] = {
        "item": "acme-dev",
        "failed": False,
        "failed_when_result": False,
        "msg": "web user 'acme-dev' does not exist on this host",
    }
    hosts["dev1"]["code"]["results"][1]["stat"] = {"exists": False}
    hosts["dev1"]["facts"]["results"][1] = {"item": "globex-dev", "skipped": True}
    hosts["dev1"]["records"]["results"][1]["records"]["globex-dev"] = None
    hosts["dev1"]["records"]["results"][1]["history"]["globex-dev"] = []
    report = build(hosts=hosts)
    validate(report)
    assert "does not exist" in row(report, "acme-dev")["error"] and kinds(report, "acme-dev", "site") == {
        "error"
    }
    globex = row(report, "globex-dev")
    assert globex["code"] is False and globex["moodle"] is None and globex["error"] is None
    assert er._cells(globex)["release"] == "no code" and er._cells(globex)["moodle"] == "no code deployed"


# ----- other flags -------------------------------------------------------------------------------


def test_maintenance_pending_upgrade_policy_drift_and_a_failed_deploy_are_flagged():
    hosts = fixture.hosts()
    lms = hosts["live1"]["facts"]["results"][0]["lms"]
    lms.update(maintenance_enabled=True, upgrade_pending=True)
    hosts["live1"]["audit_rows"][0]["ok"] = False
    failed = fixture.deployment("acme-live", "moodle-5.1-r4", "2026-11-23T02:10:00Z", outcome="failed")
    hosts["live1"]["records"]["results"][0]["history"]["acme-live"].append(failed)
    report = build(hosts=hosts)
    validate(report)
    live = row(report, "acme-live")
    assert live["maintenance"] is True and live["upgrade_pending"] is True
    assert live["policy"]["drift"] == ["noemailever"]
    assert {"on", "pending", "failed"} <= kinds(report, "acme-live")
    assert kinds(report, "acme-live", "policy") == {"drift"}
    assert live["release"]["id"] == fixture.R3  # a failed attempt changes no record


def test_live_without_any_window_is_flagged():
    sites = fixture.inputs()["sites"]
    sites[2]["maintenance_windows"] = []
    report = build(sites=sites)
    assert kinds(report, "acme-live", "window") == {"never"}
    assert er._cells(row(report, "acme-live"))["window"] == "never (no window)"


# ----- HTML --------------------------------------------------------------------------------------


def test_html_escapes_what_sites_supply():
    hosts = fixture.hosts()
    evil = "<script>alert('r')</script>"
    hosts["dev1"]["records"]["results"][0]["records"]["acme-dev"]["release"] = evil
    hosts["dev1"]["records"]["results"][0]["records"]["acme-dev"]["deployed_by"] = (
        '"><img src=x onerror=alert(1)>'
    )
    hosts["dev1"]["facts"]["results"][0]["lms"]["release"] = "5.1 <b>bold</b>"
    hosts["qa1"]["ping"] = {"unreachable": True, "msg": "<script>ssh</script>"}
    report = build(hosts=hosts)
    page = er.render_html(report)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;r&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "5.1 &lt;b&gt;bold&lt;/b&gt;" in page
    # Self-contained: nothing fetched, no script.
    assert "src=" not in page.replace("&lt;img src=x", "") and "href=" not in page and "@import" not in page


def test_html_has_one_row_per_site_the_flags_and_the_chart():
    report = build()
    page = er.render_html(report)
    assert page.count("<tr class=") == 5
    assert page.count('data-site="') == 5
    assert '<td class="col-backup flag" data-col="backup" data-flag="stale"' in page
    assert page.count("<polyline") == 1  # acme-live has four backups; the others one or none
    assert page.count("<circle") == 4 + 1 + 1
    assert "No backup sizes to chart" in er.render_html(build(backups=None))


# ----- the module --------------------------------------------------------------------------------


def load_module():
    spec = importlib.util.spec_from_file_location(
        "lms_estate_report", REPO / "library" / "lms_estate_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_module(args: dict, capsys) -> dict:
    mod = load_module()
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def module_args(dest: Path, **more) -> dict:
    data = fixture.inputs()
    return {
        "sites": data["sites"],
        "hosts": data["hosts"],
        "backups": data["backups"],
        "lifecycle": data["lifecycle_data"],
        "now": "2026-11-24T12:00:00Z",
        "estate": "local",
        "dest": str(dest),
        **more,
    }


def test_the_module_writes_both_files(tmp_path, capsys):
    out = run_module(module_args(tmp_path / "report"), capsys)
    assert out["changed"] and out["summary"] == {"sites": 5, "flagged": 5, "unreachable": 0}
    assert any(line.startswith("acme-live backup: newest backup 50.0 h old") for line in out["flags"])
    document = json.loads((tmp_path / "report" / "estate-report.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["generated_at"] == "2026-11-24T12:00:00Z"
    assert (tmp_path / "report" / "estate-report.html").read_text().startswith("<!DOCTYPE html>")


def test_the_module_in_check_mode_writes_nothing(tmp_path, capsys):
    out = run_module({**module_args(tmp_path / "report"), "_ansible_check_mode": True}, capsys)
    assert not out["changed"] and not (tmp_path / "report").exists()


def test_the_module_refuses_bad_input(tmp_path, capsys):
    out = run_module(module_args(tmp_path, backup_max_age_hours={"live": -1}), capsys)
    assert out["failed"] and "backup_max_age_hours.live" in out["msg"]
    out = run_module(module_args(tmp_path, now="yesterday"), capsys)
    assert out["failed"] and "not an ISO-8601 time" in out["msg"]

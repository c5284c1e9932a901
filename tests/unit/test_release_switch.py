"""Unit tests of plugins/module_utils/release_switch.py: the order of the window, the atomic switch,
what a failure reports, and idempotence (a fake site records the CLI calls; the real window runs in
the stack scenario's promotions and in benchmarks/deploy.py)."""

from __future__ import annotations

import os

import pytest
import release_switch as rs
from moodle_cli import CliResult, MoodleError, MoodleSite


class FakeSite:
    """Stands for MoodleSite: records (code root it was made for, where current points, script, args).
    The upgrade itself is MoodleSite's own (its CLI calls come here)."""

    upgrade = MoodleSite.upgrade
    require_upgraded = MoodleSite.require_upgraded

    def __init__(self, log, path, pending=False, fail=None):
        self.log, self.path, self.pending, self.fail = log, path, pending, fail

    def cli(self, script, *args):
        where = os.readlink(self.path) if os.path.islink(self.path) else self.path
        self.log.append((where, script, *args))
        if self.fail == script:
            raise MoodleError(f"{script} failed (rc=1): injected")
        return CliResult(0, "Upgrading...\nDone\n", "", 9.96, [script])

    def upgrade_status(self):
        self.log.append(("status",))
        return {"pending": self.pending, "maintenance_required": self.pending}


@pytest.fixture
def site_dir(tmp_path):
    for release in ("r1", "r2"):
        (tmp_path / "releases" / release).mkdir(parents=True)
        (tmp_path / "releases" / release / "config.php").write_text("<?php\n")
    os.symlink("releases/r1", tmp_path / "current")
    return tmp_path


def window(site_dir, release="r2", pending_after=False, fail=None, log=None):
    log = [] if log is None else log
    ticks = iter([100.0, 111.25])
    win = rs.ReleaseWindow(
        str(site_dir / "current"),
        release,
        lambda path: FakeSite(log, path, pending=pending_after, fail=fail),
        clock=lambda: next(ticks),
        wall_clock=lambda: 1795600000.0,
    )
    return win, log


def test_window_order_maintenance_switch_upgrade_off_then_check(site_dir):
    win, log = window(site_dir)
    plan = win.plan(upgrade=True)
    assert plan == {"switch": True, "upgrade": True} and log == []  # nothing asked again before it
    win.run(plan, maintenance=True, allow_unstable=True)
    assert log == [
        ("releases/r1", "maintenance.php", "--enable"),  # by the running code
        ("releases/r2", "upgrade.php", "--non-interactive", "--allow-unstable"),
        ("releases/r2", "maintenance.php", "--disable"),
        ("status",),  # after maintenance is off: not part of the window
    ]
    assert os.readlink(site_dir / "current") == "releases/r2"
    assert win.state | {"upgrade_stdout_lines": None} == {
        "before": "releases/r1",
        "after": "releases/r2",
        "switched": True,
        "switched_at": 1795600000.0,
        "maintenance_enabled": False,
        "maintenance_since": 1795600000.0,
        "upgrade_started": True,
        "upgraded": True,
        "maintenance_seconds": 11.2,  # measured inside the one step
        "upgrade_seconds": 10.0,
        "upgrade_stdout_lines": None,
    }


def test_held_window_leaves_maintenance_on_for_the_other_web_hosts(site_dir):
    win, log = window(site_dir)
    win.run(win.plan(upgrade=True), maintenance=True, end_maintenance=False)
    assert log == [
        ("releases/r1", "maintenance.php", "--enable"),
        ("releases/r2", "upgrade.php", "--non-interactive"),
        ("status",),  # the upgrade is still checked
    ]
    assert win.state["maintenance_enabled"] and win.state["upgraded"]
    # when it began (wall clock, for whoever ends it) and how long it has lasted so far
    assert win.state["maintenance_since"] == 1795600000.0 and win.state["maintenance_seconds"] == 11.2


def test_upgrade_without_maintenance_keeps_the_site_up_and_purges(site_dir):
    win, log = window(site_dir)
    win.run(win.plan(upgrade=True), maintenance=False)
    assert [entry[1:] for entry in log[:2]] == [
        ("upgrade.php", "--non-interactive", "--maintenance=false"),
        ("purge_caches.php",),
    ]
    assert win.state["maintenance_seconds"] == 0.0 and win.state["upgraded"]


def test_switch_only_runs_no_php(site_dir):
    win, log = window(site_dir)
    win.run(win.plan(upgrade=False), maintenance=True)
    assert log == [
        ("releases/r1", "maintenance.php", "--enable"),
        ("releases/r2", "maintenance.php", "--disable"),
    ]
    win, log = window(site_dir, release="r1")
    plan = win.plan(upgrade=False)
    win.run(plan, maintenance=False)
    assert log == [] and os.readlink(site_dir / "current") == "releases/r1"


def test_already_switched_asks_whether_an_upgrade_is_still_pending(site_dir):
    os.unlink(site_dir / "current")
    os.symlink("releases/r2", site_dir / "current")
    win, log = window(site_dir)
    assert win.plan(upgrade=True) == {"switch": False, "upgrade": False}
    assert log == [("status",)]  # a re-run after a completed window changes nothing


def test_first_deploy_enables_maintenance_with_the_new_code(site_dir):
    os.unlink(site_dir / "current")
    win, log = window(site_dir)
    win.run(win.plan(upgrade=True), maintenance=True)
    assert log[0] == (str(site_dir / "releases" / "r2"), "maintenance.php", "--enable")
    assert win.state["before"] is None and os.readlink(site_dir / "current") == "releases/r2"


def test_failed_upgrade_reports_what_to_put_back(site_dir):
    win, log = window(site_dir, fail="upgrade.php")
    with pytest.raises(MoodleError, match="injected"):
        win.run(win.plan(upgrade=True), maintenance=True)
    assert win.state["switched"] and win.state["upgrade_started"] and not win.state["upgraded"]
    assert win.state["maintenance_enabled"]  # left on: the put-back restores the database first
    assert log[-1][1] == "upgrade.php"


def test_failed_maintenance_changes_nothing(site_dir):
    win, _ = window(site_dir, fail="maintenance.php")
    with pytest.raises(MoodleError):
        win.run(win.plan(upgrade=True), maintenance=True)
    assert not win.state["switched"] and not win.state["upgrade_started"]
    assert os.readlink(site_dir / "current") == "releases/r1"


def test_still_pending_after_upgrade_fails(site_dir):
    win, _ = window(site_dir, pending_after=True)
    with pytest.raises(MoodleError, match="still pending"):
        win.run({"switch": True, "upgrade": True}, maintenance=True)
    assert win.state["upgrade_started"] and not win.state["upgraded"]


def test_refuses_a_release_that_is_not_unpacked_and_a_real_folder(site_dir):
    win, _ = window(site_dir, release="r9")
    with pytest.raises(MoodleError, match=r"release r9 is not unpacked.*config.php is missing"):
        win.plan(upgrade=False)
    os.unlink(site_dir / "current")
    (site_dir / "current").mkdir()
    win, _ = window(site_dir)
    with pytest.raises(MoodleError, match="is not a symlink"):
        win.plan(upgrade=False)


def test_switch_link_is_a_rename_over_the_old_link(site_dir):
    link = str(site_dir / "current")
    inode_dir = os.stat(site_dir).st_ino
    rs.switch_link(link, "releases/r2")
    assert os.readlink(link) == "releases/r2" and os.stat(site_dir).st_ino == inode_dir
    assert sorted(os.listdir(site_dir)) == ["current", "releases"]  # no staged link left behind

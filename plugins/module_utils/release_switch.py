# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point a site's ``current`` at a release, with the upgrade and maintenance window around it, in one
process on the host (``lms_release_switch``).

Everything that can be asked before the window is asked before it (by the caller: is an upgrade
pending, does it need maintenance). Inside the window only what must be there runs, back to back:
maintenance on (``maintenance.php --enable``), the atomic rename of ``current``, ``upgrade.php``,
maintenance off. A window made of separate Ansible tasks costs a connection round trip per task and,
with ``lms_upgrade``, repeats its checks inside it (docs/releases.md has the figures). The check that
nothing is left pending runs after maintenance is off: a failure there still fails the deploy, whose
put-back restores the database.

Imports only the standard library and ``moodle_cli``, so it is unit-tested without Ansible.
"""

from __future__ import annotations

import os
import time

from ansible.module_utils.moodle_cli import MoodleError

RELEASES = "releases"


def release_target(release: str) -> str:
    """What ``current`` points at for a release (relative, so the site folder can move)."""
    return f"{RELEASES}/{release}"


def link_target(link: str) -> str | None:
    """Where ``current`` points now (``None``: there is no link yet); a real folder is refused."""
    if os.path.islink(link):
        return os.readlink(link)
    if os.path.lexists(link):
        raise MoodleError(f"{link} is not a symlink: move the folder away before deploying releases to it")
    return None


def switch_link(link: str, target: str) -> None:
    """Atomic switch: a new symlink beside ``link``, renamed over it (readers see old or new, never none)."""
    staged = f"{link}.switch-{os.getpid()}"
    if os.path.lexists(staged):
        os.unlink(staged)
    os.symlink(target, staged)
    try:
        os.replace(staged, link)
    except OSError:
        os.unlink(staged)
        raise


class ReleaseWindow:
    """One switch of ``current`` (``link``) to ``release``, optionally with upgrade and maintenance.

    ``site_factory(path)`` makes the ``MoodleSite`` for a code root; the site is made again after
    the switch, because the new release's layout may differ (Moodle 5.1 moved the web root to
    ``public/``). ``state`` records how far it got, so that a failure says what to put back.
    """

    def __init__(self, link: str, release: str, site_factory, clock=time.monotonic, wall_clock=time.time):
        self.link = link
        self.release = release
        self.site_factory = site_factory
        self.clock = clock
        self.wall_clock = wall_clock
        self.target = release_target(release)
        self.release_dir = os.path.join(os.path.dirname(link), self.target)
        self.state = {
            "before": None,
            "after": self.target,
            "switched": False,
            "switched_at": None,
            "maintenance_enabled": False,
            "maintenance_since": None,
            "upgrade_started": False,
            "upgraded": False,
            "maintenance_seconds": 0.0,
            "upgrade_seconds": 0.0,
        }

    def plan(self, upgrade: bool) -> dict:
        """Validate and return ``{switch, upgrade}``: what :meth:`run` would do. ``upgrade`` is the
        caller's answer to "is an upgrade pending"; with ``current`` already on the release it is
        asked again here (a re-run after a completed window changes nothing)."""
        if not os.path.isfile(os.path.join(self.release_dir, "config.php")):
            raise MoodleError(
                f"release {self.release} is not unpacked and linked at {self.release_dir} "
                "(its config.php is missing): unpack it before switching to it"
            )
        before = link_target(self.link)
        self.state["before"] = before
        switch = before != self.target
        if upgrade and not switch:
            upgrade = self.site_factory(self.link).upgrade_status()["pending"]
        return {"switch": switch, "upgrade": upgrade}

    def run(
        self, plan: dict, maintenance: bool, allow_unstable: bool = False, end_maintenance: bool = True
    ) -> None:
        """The window. ``maintenance`` only applies when something happens (a switch or an upgrade).
        ``end_maintenance=False`` leaves the site in maintenance after a successful upgrade: a site
        with several web hosts keeps it on until the others run the new code too (the dataroot and so
        the flag are shared), and ``maintenance_since`` (epoch seconds) lets the caller time the whole."""
        state = self.state
        maintenance = maintenance and (plan["switch"] or plan["upgrade"])
        began = self.clock()
        if maintenance:
            # The running code writes the flag; a first deploy has no running code, so the new one does.
            running = self.link if state["before"] else self.release_dir
            self.site_factory(running).cli("maintenance.php", "--enable")
            state["maintenance_enabled"] = True
            state["maintenance_since"] = round(self.wall_clock(), 3)
        if plan["switch"]:
            switch_link(self.link, self.target)
            state["switched"] = True
            state["switched_at"] = round(self.wall_clock(), 3)
        site = self.site_factory(self.link)
        if plan["upgrade"]:
            state["upgrade_started"] = True
            run = site.upgrade(maintenance=maintenance, allow_unstable=allow_unstable)
            state["upgrade_seconds"] = round(run.seconds, 1)
            state["upgrade_stdout_lines"] = run.stdout.strip().splitlines()[-40:]
        if maintenance and end_maintenance:
            site.cli("maintenance.php", "--disable")
            state["maintenance_enabled"] = False
        if maintenance:
            state["maintenance_seconds"] = round(self.clock() - began, 1)
        if plan["upgrade"]:
            site.require_upgraded("\n".join(state["upgrade_stdout_lines"]))
            state["upgraded"] = True

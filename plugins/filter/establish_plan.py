# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The path of a new customer from its QA site to three established sites (playbooks/establish.yml,
docs/onboarding.md), planned from what the sites' hosts say, so that a run stopped half-way is
continued by running it again:

``states | establish_plan(customer, adopt, first_release)`` -> ``{steps, why, backup_id, release, problems}``

``states`` is ``{dev, qa, live}``, each read on the site's hosts: ``hosts`` (a web host in this
inventory), ``installed`` (the database holds a site), ``release`` (the release every web host
runs, verified, from the deployment records; "" when none), ``first_build`` and
``restored_backup`` (the site's ``three_instance`` markers that ``lms_restore`` writes: the backup a
first build took, ``pending <backup>`` while one is half done, and the last backup restored).
``adopt`` is whether a proof-of-concept site was given (``-e from``). ``first_release`` is the
release of the store the three sites are to run (``-e first_release``); without it, QA's release -
which an adopted or brand-new QA only has in the store when one was deployed and promoted to it,
as its converge builds the code from ``lms_source``.

The steps, in the order the playbook runs them, each run only when the hosts show it not done:

* ``adopt``: onboard.yml, only before Dev or Live was built from QA (a PoC adopted after that
  would leave them on another design: refused);
* ``backup_qa``: QA's design taken once - not when Dev and Live are built, nor when one of them
  was built already (the other is built from the same backup: ``backup_id``);
* ``first_build_dev``, ``first_build_live``: restore.yml with first_build from that backup;
* ``release_dev``, ``release_qa``, ``release_live``: the release on Dev (deploy.yml), then QA and
  Live (promote.yml); QA takes it only when it is ``first_release`` and QA runs another;
* ``backfit_qa``: refresh_qa.yml from a fresh backup of Live, until QA holds a backup of Live.

Standard library only: unit-tested in tests/unit/test_establish_plan.py.
"""

from __future__ import annotations

TIERS = ("dev", "qa", "live")
STEPS = (
    "adopt",
    "backup_qa",
    "first_build_dev",
    "first_build_live",
    "release_dev",
    "release_qa",
    "release_live",
    "backfit_qa",
)
#: How lms_restore marks a first build that loaded the database but did not finish.
PENDING = "pending "


def _built(state: dict) -> bool:
    marker = str(state.get("first_build") or "")
    return bool(marker) and not marker.startswith(PENDING)


def _first_build_backup(state: dict, qa: str) -> str | None:
    """The id of the QA backup a site was (or is being) first built from, if any."""
    marker = str(state.get("first_build") or "").removeprefix(PENDING)
    return marker.split("/", 1)[1] if marker.startswith(qa + "/") else None


def establish_plan(states: dict, customer: str, adopt: bool = False, first_release: str = "") -> dict:
    qa_site, live_site = f"{customer}-qa", f"{customer}-live"
    sites = {tier: states.get(tier) or {} for tier in TIERS}
    problems = [
        f"customer {customer} has no {tier} site with a web host in this inventory"
        for tier, state in sites.items()
        if not state.get("hosts")
    ]
    dev, qa, live = sites["dev"], sites["qa"], sites["live"]
    built = {tier: _built(sites[tier]) for tier in ("dev", "live")}
    backfitted = str(qa.get("restored_backup") or "").startswith(live_site + "/")
    started = built["dev"] or built["live"] or backfitted
    if adopt and started:
        done = [f"{customer}-{tier}" for tier in ("dev", "live") if built[tier]]
        problems.append(
            f"refused: {' and '.join(done) or qa_site} {'were' if len(done) > 1 else 'was'} built from "
            f"{qa_site} already ({'first built' if done else 'QA back-fitted from Live'}); a PoC adopted now "
            "would leave the sites on different designs. Run establish.yml without -e from to go on, "
            "or onboard.yml to adopt a PoC into QA on purpose"
        )
    if not adopt and not qa.get("installed") and qa.get("hosts"):
        problems.append(
            f"{qa_site} is not installed: give its proof-of-concept site (-e from=... -e from_wwwroot=...), "
            "or install it (site.yml with lms_install) and run establish.yml again"
        )
    if not first_release and (not adopt or started) and qa.get("installed") and not qa.get("release"):
        problems.append(
            f"{qa_site} runs no verified release (its web hosts' deployment records): give the release "
            "of the store the three sites are to run (-e first_release=<id>; docs/releases.md)"
        )
    reused = next(
        (b for b in (_first_build_backup(dev, qa_site), _first_build_backup(live, qa_site)) if b), None
    )
    release = str(first_release or qa.get("release") or "")
    whose = "the first release" if first_release else "QA's release"
    why = {
        "adopt": (
            "the PoC into QA (nothing is adopted twice)"
            if adopt and not started
            else "no PoC given"
            if not adopt
            else "Dev or Live is built already"
        ),
        "backup_qa": (
            "Dev and Live are built"
            if built["dev"] and built["live"]
            else f"the first builds take {qa_site}/{reused}, as before"
            if reused
            else "QA's design, taken once"
        ),
        "first_build_dev": "done" if built["dev"] else f"from {qa_site}",
        "first_build_live": "done" if built["live"] else f"from {qa_site}",
        **{
            f"release_{tier}": f"{'runs' if sites[tier].get('release') == release else 'takes'} {whose} "
            f"{release or '(none)'}"
            for tier in ("dev", "qa", "live")
        },
        "backfit_qa": (
            f"QA holds {qa.get('restored_backup')}" if backfitted else "from a fresh backup of Live"
        ),
    }
    steps = {
        "adopt": bool(adopt) and not started,
        "backup_qa": not (built["dev"] and built["live"]) and reused is None,
        "first_build_dev": not built["dev"],
        "first_build_live": not built["live"],
        "release_dev": not (release and dev.get("release") == release),
        "release_qa": bool(release) and qa.get("release") != release,
        "release_live": not (release and live.get("release") == release),
        "backfit_qa": not backfitted,
    }
    return {"steps": steps, "why": why, "backup_id": reused, "release": release, "problems": problems}


def establish_summary(plan: dict) -> list[str]:
    """One line per step: ``run`` or ``done`` (skipped), and why."""
    return [f"{name}: {'run' if plan['steps'][name] else 'skip'} ({plan['why'][name]})" for name in STEPS]


class FilterModule:
    def filters(self):
        return {"establish_plan": establish_plan, "establish_summary": establish_summary}

#!/usr/bin/env python3
"""Benchmark and end-to-end run: a major upgrade, Moodle 4.5 LTS -> 5.1 (the `public/` move), taken
through Dev -> QA -> Live of the local demo estate with the operator playbooks and no estate change,
beside the naive sequence on one web host.

Needs the demo installed from a 4.5 tree and a 5.1 tree to build the release from:

    MOODLE_SRC=<4.5 tree> make demo
    .venv/bin/python benchmarks/major_upgrade.py --next-src <5.1 tree>   # default: the cache's 5.1

Steps:
  1. build_release.yml of releases/moodle-5.1-r1.yml from the 5.1 tree (skipped when the store has it);
  2. deploy.yml to acme-dev, promote.yml to acme-qa, then to acme-live. During each, a probe inside
     the site's host requests its login page through the host's own address (as a user would; the
     deploy's gate lets only the host's loopback through) every 0.2 s, and a poller notes every
     0.1 s whether climaintenance.html exists;
  3. rollback.yml of acme-live (database, code and web root back together), probed the same way,
     then the version Live answers with;
  4. the naive sequence on globex-dev (which no release touched: saved first, put back after):
     maintenance on, unpack, config.php, web-root link, switch `current`, upgrade.php,
     maintenance off.

It prints, per step: the HTTP codes the probe saw, maintenance seconds measured on the host,
what the deployment record says (maintenance, upgrade.php, outage), and the total; then the
issue's targets against those figures: only 200 and 503 (never 404 or 500), and maintenance
<= upgrade.php + 2 s. Not a test: figures depend on the machine. Results: docs/releases.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import deploy as bench  # benchmarks/deploy.py: the host helpers, the poller, save/put back
import moodle_source

REPO = bench.REPO
RELEASE = "moodle-5.1-r1"
HOSTS = {"acme-dev": "dev1", "acme-qa": "qa1", "acme-live": "live1", "globex-dev": "dev1"}


class Probe:
    """The login page, as a user gets it, every 0.2 s from inside the host (its own address)."""

    def __init__(self, site: str):
        self.host, self.name = HOSTS[site], f"{site}.local"
        self.out, self.stop = f"/tmp/bench-probe-{site}", f"/tmp/bench-probe-{site}.stop"

    def __enter__(self):
        address = bench.sh(self.host, "hostname -I").split()[0]
        loop = (
            f"while [ ! -f {self.stop} ]; do curl -s -o /dev/null --max-time 10 -w '%{{http_code}}\\n'"
            f" --resolve {self.name}:80:{address} http://{self.name}/login/index.php >> {self.out};"
            " sleep 0.2; done"
        )
        bench.sh(self.host, f'rm -f {self.out} {self.stop}; setsid -f sh -c "{loop}" >/dev/null 2>&1')
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        bench.sh(self.host, f"touch {self.stop}; sleep 1", check=False)
        seen = bench.sh(self.host, f"cat {self.out}", check=False).split()
        self.codes = {code: seen.count(code) for code in sorted(set(seen))}


def moodle_release(site: str) -> str:
    cli = f"runuser -u {site} -- {bench.PHP} /srv/lms/{site}/current/admin/cli/cfg.php --name=release"
    return bench.sh(HOSTS[site], cli)


def record(site: str) -> dict:
    return json.loads(bench.sh(HOSTS[site], f"cat /srv/lms/{site}/deployment.json"))


def step(site: str, playbook: str, extra: dict) -> dict:
    with Probe(site) as probe, bench.MaintenancePoller(HOSTS[site], site) as poll:
        total = bench.ansible(playbook, extra)
    done = record(site)
    return {
        "codes": probe.codes,
        "maintenance": poll.seconds,
        "recorded": float(done.get("maintenance_seconds", 0)),
        "upgrade": float(done.get("upgrade_seconds", 0)),
        "outage": float(done.get("outage_seconds", 0)),
        "total": total,
        "release": moodle_release(site),
    }


def naive(site: bench.Site, bundle: str) -> dict:
    """The operator's sequence by hand, all of it inside the window. The web-root link is made too
    (nginx serves `current/.webroot`): without it the site answers 404 after the switch."""
    host = HOSTS[site.name]
    bench.sh(host, "mkdir -p /root/bench-bundles")
    subprocess.run(["podman", "cp", bundle, f"{host}:/root/bench-bundles/{RELEASE}.tar.gz"], check=True)
    old_cli = f"runuser -u {site.name} -- {bench.PHP} {site.base}/current/admin/cli"
    target = f"{site.base}/releases/naive-{RELEASE}"
    new_cli = f"runuser -u {site.name} -- {bench.PHP} {target}/admin/cli"
    script = (
        f"{old_cli}/maintenance.php --enable >/dev/null && "
        f"mkdir -p {target} && tar -C {target} -xzf /root/bench-bundles/{RELEASE}.tar.gz && "
        f"cp {site.base}/releases/{site.current.split('/')[-1]}/config.php {target}/config.php && "
        f"ln -sfn public {target}/.webroot && "
        f"ln -sfn releases/naive-{RELEASE} {site.base}/.link && "
        f"mv -T {site.base}/.link {site.base}/current && "
        f"a=$(date +%s.%N) && {new_cli}/upgrade.php --non-interactive >/dev/null && b=$(date +%s.%N) && "
        f"{new_cli}/maintenance.php --disable >/dev/null && systemctl reload php8.2-fpm && echo $a $b"
    )
    with Probe(site.name) as probe, bench.MaintenancePoller(host, site.name) as poll:
        start = time.monotonic()
        began, ended = (float(x) for x in bench.sh(host, script).split()[-2:])
        total = round(time.monotonic() - start, 1)
    return {
        "codes": probe.codes,
        "maintenance": poll.seconds,
        "upgrade": round(ended - began, 1),
        "total": total,
        "release": moodle_release(site.name),
    }


def build(next_src: str) -> None:
    env = dict(os.environ, MOODLE_SRC=next_src)
    out = subprocess.run(
        [
            str(bench.BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            "playbooks/build_release.yml",
            "-e",
            f"manifest=releases/{RELEASE}.yml",
        ],
        cwd=REPO,
        env=dict(env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"build_release.yml failed:\n{out.stdout[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--next-src", help="a Moodle 5.1 tree (default: tools/moodle_source.py --branch 5.1)")
    args = parser.parse_args()
    found = {"path": args.next_src} if args.next_src else moodle_source.resolve("5.1", src_var=None)
    if not found["path"]:
        raise SystemExit(found["message"])
    next_src = found["path"]
    before = moodle_release("acme-dev")
    if not before.startswith("4.5"):
        raise SystemExit(
            f"acme-dev runs Moodle {before}: install the demo from 4.5 (MOODLE_SRC=<4.5> make demo)"
        )
    build(next_src)
    cache = tempfile.mkdtemp(prefix="bench-major-")
    results = {
        "acme-dev  deploy.yml": step(
            "acme-dev", "deploy.yml", {"site": "acme-dev", "release": RELEASE, "release_cache_dir": cache}
        ),
        "acme-qa   promote.yml": step("acme-qa", "promote.yml", {"customer": "acme", "to": "qa"}),
        "acme-live promote.yml": step("acme-live", "promote.yml", {"customer": "acme", "to": "live"}),
        "acme-live rollback.yml": step("acme-live", "rollback.yml", {"site": "acme-live"}),
    }
    globex = bench.Site("dev1", "globex-dev")
    globex.save()
    try:
        results["globex-dev naive"] = naive(globex, str(Path(cache) / "fetched" / f"{RELEASE}.tar.gz"))
    finally:
        globex.restore()
    print(f"\n{before} -> {RELEASE}, local demo estate (podman containers, {os.cpu_count()} CPUs shared)\n")
    row = "{:<24} {:<22} {:<22} {:>8} {:>10} {:>9} {:>8} {:>7}"
    print(
        row.format(
            "site / method",
            "release after",
            "probe codes",
            "maint. s",
            "recorded s",
            "upgrade s",
            "outage s",
            "total s",
        )
    )
    for name, r in results.items():
        codes = " ".join(f"{code}x{count}" for code, count in r["codes"].items())
        recorded = f"{r['recorded']:.1f}" if "recorded" in r else "-"
        outage = f"{r['outage']:.1f}" if "outage" in r else "-"
        figures = (f"{r['maintenance']:.1f}", recorded, f"{r['upgrade']:.1f}", outage, f"{r['total']:.1f}")
        print(row.format(name, r["release"][:22], codes, *figures))
    print("\nprobe codes: what a user got, every 0.2 s; maint. s: climaintenance.html present on the host")
    print("(0.1 s ticks); recorded / upgrade / outage s: the deployment record (outage: the gate closed).\n")
    failures = 0
    for name, r in results.items():
        unseen = set(r["codes"]) - {"200", "503"}
        ok = not unseen
        print(f"{name}: only 200 and 503 seen: {'met' if ok else 'NOT met ' + str(sorted(unseen))}")
        failures += not ok
        if "deploy" in name or "promote" in name:
            limit = r["upgrade"] + 2
            ok = r["maintenance"] <= limit
            print(f"{name}: maintenance <= upgrade.php + 2 s = {limit:.1f} s: {'met' if ok else 'NOT met'}")
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

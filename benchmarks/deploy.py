#!/usr/bin/env python3
"""Benchmark: seconds in maintenance mode and total deploy time, playbooks/deploy.yml beside the
naive sequence (maintenance on, unpack, switch, upgrade, maintenance off), for both kinds of release:

  * "schema change": moodle-5.1-r2 on top of the converge's code (installs local_tidemo: Moodle
    says the upgrade needs maintenance), and
  * "no schema change": moodle-5.1-r3 on top of r2 (only local_tidemo's release string changes).

It runs on the local estate's containers after the Molecule `stack` scenario's release cycle
(side_effect.yml: the releases are in the local S3 API's bucket `molecule-releases`), on the site
globex-dev, which no release has touched: its database and `current` are saved first and put back
between runs and at the end, so each run starts from the same state.

Maintenance time is measured on the host, independently of the playbook: a poller inside the
container notes every 0.1 s whether the site's climaintenance.html exists (Moodle answers 503 then).

    .venv/bin/python benchmarks/deploy.py [--host dev1] [--site globex-dev]

Not a test: figures depend on the machine. Results are recorded in docs/releases.md.
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

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
PHP = "/usr/bin/php8.2"
POLL = 0.1


def sh(host: str, script: str, check: bool = True) -> str:
    out = subprocess.run(
        ["podman", "exec", host, "sh", "-c", script], capture_output=True, text=True, check=False
    )
    if check and out.returncode != 0:
        raise SystemExit(f"{host}: {script!r} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


class MaintenancePoller:
    """Counts the 0.1 s ticks during which the site's climaintenance.html exists (inside the host)."""

    def __init__(self, host: str, site: str):
        self.host, self.flag, self.log = (
            host,
            f"/var/lib/lms/{site}/climaintenance.html",
            f"/tmp/bench-poll-{site}",
        )

    def __enter__(self):
        sh(self.host, f"rm -f {self.log}")
        self.proc = subprocess.Popen(
            [
                "podman",
                "exec",
                self.host,
                "sh",
                "-c",
                f"while :; do [ -e {self.flag} ] && echo x; sleep {POLL}; done > {self.log}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        sh(self.host, "pkill -f 'bench-poll' || true", check=False)
        self.proc.wait(timeout=10)
        self.seconds = round(int(sh(self.host, f"wc -l < {self.log}") or 0) * POLL, 1)


def ansible(playbook: str, extra: dict) -> float:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1")
    start = time.monotonic()
    out = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "local"),
            f"playbooks/{playbook}",
            "-e",
            json.dumps(extra),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{playbook} failed:\n{out.stdout[-3000:]}")
    return round(time.monotonic() - start, 1)


class Site:
    """Save and put back one site's database, `current`, records and releases."""

    def __init__(self, host: str, name: str):
        self.host, self.name, self.db = host, name, name.replace("-", "_")
        self.base = f"/srv/lms/{name}"

    def save(self):
        self.current = sh(self.host, f"readlink {self.base}/current")
        sh(self.host, f"runuser -u postgres -- pg_dump -Fc -d {self.db} > /root/bench-{self.db}.pgc")
        self.releases = set(sh(self.host, f"ls {self.base}/releases").split())
        # The site's records as they were (none on a site no release touched).
        records = f"/root/bench-{self.db}-records"
        sh(
            self.host,
            f"rm -rf {records} && mkdir {records} && (cp -a {self.base}/deployment*.json* {records} || true)",
        )

    def restore(self):
        sh(
            self.host,
            f"{PHP} {self.base}/current/admin/cli/maintenance.php --disable >/dev/null 2>&1 || true",
            False,
        )
        sh(
            self.host,
            f"runuser -u postgres -- dropdb --force {self.db} && "
            # As the database role makes it (UTF8, collation C, ctype C.UTF-8).
            f"runuser -u postgres -- createdb -O {self.db} -T template0 -E UTF8 "
            f"--lc-collate=C --lc-ctype=C.UTF-8 {self.db} && "
            f"runuser -u postgres -- pg_restore -d {self.db} < /root/bench-{self.db}.pgc && "
            f"runuser -u postgres -- psql -q -d {self.db} "
            f"-c 'REVOKE CONNECT ON DATABASE {self.db} FROM PUBLIC'",
        )
        sh(
            self.host,
            f"ln -sfn {self.current} {self.base}/.link && mv -T {self.base}/.link {self.base}/current",
        )
        sh(
            self.host,
            f"rm -f {self.base}/deployment.json {self.base}/deployments.jsonl && "
            f"cp -a /root/bench-{self.db}-records/. {self.base}/",
        )
        for extra in set(sh(self.host, f"ls {self.base}/releases").split()) - self.releases:
            sh(self.host, f"rm -rf {self.base}/releases/{extra}")
        sh(self.host, f"runuser -u {self.name} -- {PHP} {self.base}/current/admin/cli/purge_caches.php")
        sh(self.host, "systemctl reload php8.2-fpm")


def naive(host: str, site: Site, bundle: str, release: str) -> dict:
    """Maintenance on, unpack, switch, upgrade, maintenance off, all inside the window."""
    sh(host, "mkdir -p /root/bench-bundles")
    subprocess.run(["podman", "cp", bundle, f"{host}:/root/bench-bundles/{release}.tar.gz"], check=True)
    cli = f"runuser -u {site.name} -- {PHP} {site.base}/current/admin/cli"
    target = f"{site.base}/releases/naive-{release}"
    script = (
        f"{cli}/maintenance.php --enable >/dev/null && "
        f"mkdir -p {target} && tar -C {target} -xzf /root/bench-bundles/{release}.tar.gz && "
        f"cp {site.base}/releases/{site.current.split('/')[-1]}/config.php {target}/config.php && "
        f"ln -sfn releases/naive-{release} {site.base}/current && "
        f"a=$(date +%s.%N) && {cli}/upgrade.php --non-interactive >/dev/null && b=$(date +%s.%N) && "
        f"{cli}/maintenance.php --disable >/dev/null && systemctl reload php8.2-fpm && echo $a $b"
    )
    with MaintenancePoller(host, site.name) as poll:
        start = time.monotonic()
        began, ended = (float(x) for x in sh(host, script).split()[-2:])
        total = round(time.monotonic() - start, 1)
    return {"maintenance": poll.seconds, "total": total, "upgrade": round(ended - began, 1)}


def ours(host: str, site: Site, release: str, store: dict, cache: str) -> dict:
    with MaintenancePoller(host, site.name) as poll:
        total = ansible(
            "deploy.yml",
            {"site": site.name, "release": release, "release_store": store, "release_cache_dir": cache},
        )
    record = json.loads(sh(host, f"cat {site.base}/deployment.json"))
    return {
        "maintenance": poll.seconds,
        "total": total,
        "recorded": record["maintenance_seconds"],
        "upgrade": record["upgrade_seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="dev1")
    parser.add_argument("--site", default="globex-dev")
    args = parser.parse_args()
    endpoint = json.loads((REPO / ".cache" / "s3" / "endpoint.json").read_text())
    store = {
        "type": "s3",
        "bucket": "molecule-releases",
        "prefix": "releases/",
        "endpoint_url": endpoint["endpoint_url"],
        "region": endpoint["region"],
        "access_key": endpoint["access_key"],
        "secret_key": endpoint["secret_key"],
    }
    cache = tempfile.mkdtemp(prefix="bench-deploy-")
    site = Site(args.host, args.site)
    site.save()
    results = {}
    try:
        # Ours: r2 (schema change) then r3 (no schema change) on top of it.
        results[("schema change", "deploy.yml")] = ours(args.host, site, "moodle-5.1-r2", store, cache)
        results[("no schema change", "deploy.yml")] = ours(args.host, site, "moodle-5.1-r3", store, cache)
        site.restore()
        # Naive: the same two steps, with the bundles deploy.yml fetched and verified.
        bundles = Path(cache) / "fetched"
        results[("schema change", "naive")] = naive(
            args.host, site, str(bundles / "moodle-5.1-r2.tar.gz"), "moodle-5.1-r2"
        )
        results[("no schema change", "naive")] = naive(
            args.host, site, str(bundles / "moodle-5.1-r3.tar.gz"), "moodle-5.1-r3"
        )
    finally:
        site.restore()
    print(f"\nsite {args.site} on {args.host} (podman container, {os.cpu_count()} CPUs shared)\n")
    head = ("release", "method", "maintenance s", "recorded s", "upgrade.php s", "total s")
    print(f"{head[0]:<18} {head[1]:<11} {head[2]:>14} {head[3]:>11} {head[4]:>14} {head[5]:>8}")
    for (kind, method), r in results.items():
        recorded = f"{r['recorded']:.1f}" if "recorded" in r else "-"
        upgrade = f"{r['upgrade']:.1f}" if "upgrade" in r else "-"
        seconds = f"{r['maintenance']:>14.1f} {recorded:>11} {upgrade:>14} {r['total']:>8.1f}"
        print(f"{kind:<18} {method:<11} {seconds}")
    print(
        "\nmaintenance s: measured on the host (climaintenance.html present, 0.1 s ticks); recorded s: what"
    )
    print("deploy.yml wrote in the deployment record; upgrade.php s: upgrade.php alone (deploy.yml: as")
    print("recorded by lms_release_switch).\n")
    # The targets of issue 6: no maintenance without a schema change, else upgrade.php + 2 s at most.
    for kind in ("schema change", "no schema change"):
        r = results[(kind, "deploy.yml")]
        limit = r["upgrade"] + 2 if kind == "schema change" and r["upgrade"] else 0.0
        verdict = "met" if r["maintenance"] <= limit else "NOT met"
        print(f"target for {kind}: maintenance <= {limit:.1f} s: {verdict} ({r['maintenance']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

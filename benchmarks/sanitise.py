#!/usr/bin/env python3
"""Benchmark: how long lms_sanitise takes for 10,000 and 100,000 learners (target: < 60 s for
100,000) on a real Moodle 5.1 schema, PostgreSQL and/or MariaDB.

For each size, a copy of an installed site's database is seeded in bulk like the integration test
(tests/integration/test_sanitise.py): per learner an enrolment and a role, a custom profile field, a
preference, half a conversation with a message, a notification, 3 log rows, plus failed logins. Then
the sanitiser runs once through its module_utils (the same PHP as the module, without Ansible's
start-up) and its own timings are printed: counting, the transaction, purging caches and sessions.

    .venv/bin/python benchmarks/sanitise.py --site-dir /tmp/ti-site [--sizes 10000,100000] [--db pgsql]

``--site-dir`` is a site made by ``tests/integration/moodle_site.py up <dir>`` (PostgreSQL) and is
left as it was; ``--db mariadb`` starts a private MariaDB server and installs a site on it first
(a few minutes). Not a test: figures depend on the machine. Results are recorded in docs/qa.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(REPO / "tests" / "integration"),
    str(REPO / "plugins" / "module_utils"),
    str(REPO / "tools"),
]

import moodle_cli

sys.modules["ansible.module_utils.moodle_cli"] = moodle_cli  # how sanitise.py imports it under Ansible
import moodle_site as ms
import moodle_source
import sanitise
from test_sanitise import KEEP, clone_site, remove_clone, run_sql, seed

PARAMS = {"keep_usernames": KEEP, "email_domain": "invalid", "mail": {"mode": "disabled"}}


def base_site(db: str, site_dir: Path | None, src: Path) -> tuple[ms.MoodleTestSite, object]:
    """The installed site to copy, and something to stop afterwards (or None)."""
    if db == "pgsql":
        if site_dir is None:
            raise SystemExit("--db pgsql needs --site-dir (tests/integration/moodle_site.py up <dir>)")
        return ms.MoodleTestSite(site_dir / "site", ms.PgCluster.attach(site_dir / "pg")), None
    server = ms.MariaDbServer(ms.private_tmpdir("ti-bench-mdb-")).start()
    site = ms.MoodleTestSite(ms.private_tmpdir("ti-bench-site-mdb-"), server).create(src)
    print(f"[{db}] installing Moodle on a private MariaDB ...", flush=True)
    site.install()
    return site, server


def run_size(source: ms.MoodleTestSite, count: int) -> dict:
    clone = clone_site(source, f"ti_bench_sanitise_{source.db.dbtype}")
    try:
        seeded = seed(clone, count)
        rows = {
            table: int(run_sql(clone, f"SELECT COUNT(*) FROM mdl_{table}"))  # noqa: S608 - constant names
            for table in ("user", "logstore_standard_log", "messages", "notifications", "user_info_data")
        }
        site = moodle_cli.MoodleSite(str(clone.code), web_user=clone.web_user, timeout=3600)
        start = time.monotonic()
        report = sanitise.sanitise(site, PARAMS)
        wall = time.monotonic() - start
        problems = sanitise.verify(site, PARAMS)["problems"]
        return {
            "seed": round(seeded, 1),
            "rows": rows,
            "anonymised": report["counts"]["user"],
            "seconds": report["seconds"],
            "slowest": report["slowest_steps"],
            "wall": round(wall, 2),
            "problems": problems,
        }
    finally:
        remove_clone(clone)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path, help="a site made by tests/integration/moodle_site.py up")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", choices=["pgsql", "mariadb"], default="pgsql")
    parser.add_argument(
        "--moodle-src",
        type=Path,
        help="for --db mariadb; default: the project's rule, tools/moodle_source.py",
    )
    args = parser.parse_args()
    if args.db == "mariadb" and args.moodle_src is None:
        found = moodle_source.resolve()
        if not found["path"]:
            raise SystemExit(found["message"])
        args.moodle_src = Path(found["path"])
    source, server = base_site(args.db, args.site_dir, args.moodle_src)
    os.environ["PHP_INI_SCAN_DIR"] = source.env()["PHP_INI_SCAN_DIR"]  # the site's PHP settings
    try:
        print(
            f"{'db':8} {'learners':>9} {'log rows':>9} {'seed s':>7} {'count s':>8} {'txn s':>7} "
            f"{'purge s':>8} {'total s':>8} {'wall s':>7}  verified"
        )
        for count in (int(n) for n in args.sizes.split(",")):
            r = run_size(source, count)
            s = r["seconds"]
            print(
                f"{args.db:8} {r['anonymised']:>9} {r['rows']['logstore_standard_log']:>9} {r['seed']:>7} "
                f"{s['count']:>8} {s['transaction']:>7} {s['purge']:>8} {s['total']:>8} {r['wall']:>7}  "
                f"{'ok' if not r['problems'] else r['problems']}",
                flush=True,
            )
            print(f"{'':8} slowest statements (s): {r['slowest']}", flush=True)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.base, ignore_errors=True)
            shutil.rmtree(source.base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

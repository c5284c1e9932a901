#!/usr/bin/env python3
"""Benchmark: restoring a Live backup into QA with restore.yml beside the floor, a plain
`pg_restore` of the same database and a copy of the same dataroot on the same QA host (the data
already there: no download, no checks, no maintenance, no wwwroot rewrite).

Runs on the local demo estate (`make demo`, any Moodle branch), on acme-live (live1) and acme-qa
(qa1), with the demo's backup store (the local S3 API over the podman bridge):

    .venv/bin/python benchmarks/restore.py [--files 2000] [--file-kb 100] [--log-rows 200000]

Steps:
  1. acme-live gets a stated amount of data: --files files of --file-kb random bytes in its filedir
     (named by their SHA-1, as Moodle stores them) and --log-rows rows in its standard log;
  2. backup.yml of acme-live;
  3. ours: restore.yml -e site=acme-qa -e source_site=acme-live (download, checks, maintenance,
     database, dataroot, wwwroot rewrite, settings, caches), timed whole and in maintenance on qa1;
  4. the floor, on qa1: pg_restore of a `pg_dump -Fc` of acme-live into a scratch database, and
     `tar` of acme-live's dataroot unpacked into a scratch folder (both files copied there first,
     not timed);
  5. clean-up: the seeded data leaves acme-live, the scratch database and folder go, and
     refresh_qa.yml -e fresh_backup=true puts a sanitised copy of Live into QA, as an operator would
     leave it (timed too: a backup of Live, the restore, sanitising and the QA checks).

Not a test: figures depend on the machine. Results: docs/backups.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy as bench  # benchmarks/deploy.py: the host helpers, the poller, ansible-playbook

LIVE, QA = ("live1", "acme-live"), ("qa1", "acme-qa")
MARK = "bench-restore"

# Random files named by their SHA-1 under filedir/aa/bb/, owned by the site's user: run inside live1.
SEED_FILES = """
import hashlib, os, pwd, sys
filedir, count, size, user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
owner = pwd.getpwnam(user)
with open(f"/root/{MARK}.list", "w") as listing:
    for _ in range(count):
        data = os.urandom(size)
        sha1 = hashlib.sha1(data).hexdigest()
        folder = os.path.join(filedir, sha1[:2], sha1[2:4])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, sha1)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chown(path, owner.pw_uid, owner.pw_gid)
        listing.write(path + "\\n")
""".replace("{MARK}", MARK)


def psql(host: str, db: str, sql: str, **variables: int) -> str:
    options = "".join(f" -v {name}={value}" for name, value in variables.items())
    return bench.sh(host, f'printf "%s\\n" "{sql}" | runuser -u postgres -- psql -qAt -d {db}{options}')


def seed(files: int, file_kb: int, log_rows: int) -> dict:
    host, site = LIVE
    db = site.replace("-", "_")
    script = f"/root/{MARK}.py"
    subprocess.run(["podman", "exec", "-i", host, "sh", "-c", f"cat > {script}"], input=SEED_FILES, text=True,
                   check=True)  # fmt: skip
    bench.sh(host, f"python3 {script} /var/lib/lms/{site}/filedir {files} {file_kb * 1024} {site}")
    rows = (
        "INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, crud, edulevel,"
        " contextid, contextlevel, contextinstanceid, userid, anonymous, timecreated, origin)"
        " SELECT '\\\\core\\\\event\\\\user_loggedin', 'core', 'loggedin', 'user', 'r', 0, 1, 10, 0, 2, 0,"
        " 1700000000 + n, 'bench' FROM generate_series(1, :rows) AS n"
    )
    psql(host, db, rows, rows=log_rows)
    return {
        "database_mib": int(psql(host, db, f"SELECT pg_database_size('{db}')")) / 2**20,
        "dataroot_mib": int(bench.sh(host, f"du -sb /var/lib/lms/{site} | cut -f1")) / 2**20,
        "files": int(bench.sh(host, f"find /var/lib/lms/{site}/filedir -type f | wc -l")),
    }


def unseed() -> None:
    host, site = LIVE
    bench.sh(host, f"xargs rm -f < /root/{MARK}.list && rm -f /root/{MARK}.list /root/{MARK}.py")
    psql(host, site.replace("-", "_"), "DELETE FROM mdl_logstore_standard_log WHERE origin = 'bench'")


def floor() -> dict:
    """pg_restore + an unpacked copy of the same data on qa1, the files put there beforehand."""
    live_host, live = LIVE
    qa_host, _ = QA
    dump, tar = f"/root/{MARK}.pgc", f"/root/{MARK}.tar"
    bench.sh(live_host, f"runuser -u postgres -- pg_dump -Fc -d {live.replace('-', '_')} > {dump}")
    bench.sh(live_host, f"tar -C /var/lib/lms/{live} -cf {tar} .")
    with tempfile.TemporaryDirectory(prefix=MARK) as local:
        for path in (dump, tar):
            subprocess.run(["podman", "cp", f"{live_host}:{path}", local], check=True)
            subprocess.run(["podman", "cp", f"{local}/{Path(path).name}", f"{qa_host}:{path}"], check=True)
    bench.sh(live_host, f"rm -f {dump} {tar}")
    scratch, folder = MARK.replace("-", "_"), f"/var/lib/lms/{MARK}"
    try:
        start = time.monotonic()
        bench.sh(qa_host, f"runuser -u postgres -- createdb {scratch} && runuser -u postgres -- pg_restore "
                          f"--no-owner -d {scratch} < {dump}")  # fmt: skip
        database = time.monotonic() - start
        start = time.monotonic()
        bench.sh(qa_host, f"mkdir {folder} && tar -C {folder} -xf {tar} && sync")
        dataroot = time.monotonic() - start
    finally:
        bench.sh(
            qa_host, f"runuser -u postgres -- dropdb --if-exists {scratch}; rm -rf {folder} {dump} {tar}"
        )
    return {"database": database, "dataroot": dataroot, "total": database + dataroot}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kb", type=int, default=100)
    parser.add_argument("--log-rows", type=int, default=200_000)
    args = parser.parse_args()
    size = seed(args.files, args.file_kb, args.log_rows)
    try:
        backup = bench.ansible("backup.yml", {"site": LIVE[1]})
        with bench.MaintenancePoller(*QA) as poll:
            ours = bench.ansible("restore.yml", {"site": QA[1], "source_site": LIVE[1]})
        plain = floor()
    finally:
        unseed()
    refresh = bench.ansible("refresh_qa.yml", {"customer": "acme", "fresh_backup": True})
    print(f"\nacme-live -> acme-qa, local demo estate (podman containers, {os.cpu_count()} CPUs shared)")
    print(
        f"data: database {size['database_mib']:.0f} MiB (pg_database_size, {args.log_rows} log rows added),"
        f" dataroot {size['dataroot_mib']:.0f} MiB ({size['files']} filedir files,"
        f" {args.files} of them {args.file_kb} KiB of random bytes)\n"
    )
    row = "{:<58} {:>8}"
    print(row.format("what", "seconds"))
    print(row.format("backup.yml of acme-live (for reference)", f"{backup:.1f}"))
    print(row.format("restore.yml into acme-qa, whole playbook", f"{ours:.1f}"))
    print(row.format("  of which acme-qa in maintenance (on the host)", f"{poll.seconds:.1f}"))
    print(row.format("floor: pg_restore + tar -x on qa1, data already there", f"{plain['total']:.1f}"))
    print(row.format("  pg_restore of a pg_dump -Fc into a new database", f"{plain['database']:.1f}"))
    print(row.format("  tar -x of the dataroot into a new folder", f"{plain['dataroot']:.1f}"))
    print(row.format("refresh_qa.yml -e fresh_backup=true, Live without the added data", f"{refresh:.1f}"))
    print(row.format("  (a backup of Live, restore, sanitise, the QA checks)", ""))
    print(
        "\nrestore.yml does more than the floor: the download from S3 and every checksum, the site"
        " lock, Moodle's\nmaintenance mode, the wwwroot rewrite, settings and caches, and the checks"
        " before and after."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

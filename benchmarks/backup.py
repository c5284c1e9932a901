#!/usr/bin/env python3
"""Benchmark: our backup (plugins/module_utils/backup/) beside restic and `aws s3 sync` + a dump
upload, on the same synthetic Moodle dataroot, against the same kind of S3 server (a fresh moto
server per tool, so that each starts from an empty bucket and moto's memory is freed after it).

    .venv/bin/python benchmarks/backup.py [--dir /var/tmp/ti-backup-bench] [--files 20000]
        [--gigabytes 2.2] [--dump-mb 256] [--new-percent 1]

Data: a filedir of --files content-addressed files (named by SHA-1, random bytes: images, PDFs and
videos do not compress) with a realistic spread of sizes (log-normal, median 20 KB, plus a few
videos of 30-120 MB until --gigabytes is reached), the rest of a dataroot (lang, muc), and a
database dump of --dump-mb (random bytes: a pg_dump -Fc is compressed already). Day 2 adds
--new-percent % new files of the same spread and a new dump (a compressed dump changes throughout).

Per tool: wall time and bytes stored in the bucket for the full backup (day 1) and the next day's
backup (day 2), and the time to restore day 2 into an empty folder. Needs restic (Debian package)
and the AWS CLI in its own venv (.cache/awscli-venv: it pins botocore):
    python3 -m venv .cache/awscli-venv && .cache/awscli-venv/bin/pip install awscli
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
sys.path.insert(0, str(REPO / "tools"))

import boto3
import local_s3
import s3_store
from backup.create import write_backup
from backup.format import DATAROOT_EXCLUDED, Content, Keys, load_manifest
from backup.restore import fetch_backup

AWS = REPO / ".cache" / "awscli-venv" / "bin" / "aws"
BUCKET = "bench"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# Data.


def sizes(rng: random.Random, count: int) -> list[int]:
    """Log-normal sizes, median 20 KB (documents, images), clipped to 100 B .. 30 MB."""
    return [min(30 * MIB, max(100, int(rng.lognormvariate(math.log(20_000), 1.6)))) for _ in range(count)]


def write_content(filedir: Path, size: int) -> Path:
    body = os.urandom(size)
    sha1 = hashlib.sha1(body, usedforsecurity=False).hexdigest()
    folder = filedir / sha1[:2] / sha1[2:4]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / sha1).write_bytes(body)
    return folder / sha1


def make_dataroot(root: Path, files: int, gigabytes: float, seed: int) -> dict:
    marker = root / "bench.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    filedir = root / "filedir"
    total = 0
    spread = sizes(rng, files)
    for size in spread:
        write_content(filedir, size)
        total += size
    videos = 0
    while total < gigabytes * 1e9:  # a few course videos make up most of the bytes, as on real sites
        size = rng.randint(30 * MIB, 120 * MIB)
        write_content(filedir, size)
        total += size
        videos += 1
    for rel in ("lang/de/langconfig.php", "muc/config.php", "models/readme.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(os.urandom(200_000))
    for junk in ("cache/a/b", "localcache/x", "sessions/sess_1", "temp/t", "lock/l", "trashdir/t"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_bytes(os.urandom(100_000))
    info = {"files": files + videos, "videos": videos, "bytes": total}
    marker.write_text(json.dumps(info))
    return info


def add_new_files(root: Path, percent: float, seed: int, record: Path) -> dict:
    """Day 2's new files; their paths go to ``record`` so that the next tool starts from day 1."""
    rng = random.Random(seed + 1)
    count = int(json.loads((root / "bench.json").read_text())["files"] * percent / 100)
    paths = [write_content(root / "filedir", size) for size in sizes(rng, count)]
    record.write_text(json.dumps([str(p) for p in paths]))
    return {"files": count, "bytes": sum(p.stat().st_size for p in paths)}


def back_to_day_one(record: Path) -> None:
    if record.exists():
        for path in json.loads(record.read_text()):
            Path(path).unlink(missing_ok=True)
        record.unlink()


def make_dump(path: Path, megabytes: int) -> int:
    with open(path, "wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(MIB))
    return megabytes * MIB


# ------------------------------------------------------------------------------------------------
# An S3 server per tool.


class Server:
    def __init__(self, work: Path, name: str):
        self.state = work / f"s3-{name}"
        shutil.rmtree(self.state, ignore_errors=True)
        self.info = local_s3.start(free_port(), self.state)
        self.client = boto3.client(
            "s3",
            endpoint_url=self.info["endpoint_url"],
            region_name=self.info["region"],
            aws_access_key_id=self.info["access_key"],
            aws_secret_access_key=self.info["secret_key"],
        )
        self.client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": self.info["region"]}
        )

    def stored(self) -> int:
        total = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            total += sum(item["Size"] for item in page.get("Contents", ()))
        return total

    def env(self) -> dict:
        return dict(
            os.environ,
            AWS_ACCESS_KEY_ID=self.info["access_key"],
            AWS_SECRET_ACCESS_KEY=self.info["secret_key"],
            AWS_DEFAULT_REGION=self.info["region"],
        )

    def stop(self) -> None:
        local_s3.stop(self.state)
        shutil.rmtree(self.state, ignore_errors=True)


def timed(fn, *args) -> float:
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start


def run(cmd, env, stdin=None) -> str:
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
        proc = subprocess.run(cmd, env=env, stdin=source, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {proc.stderr[-2000:]}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# The tools. Each: day(n, dump) backs up, restore(target) restores the last day.


class Ours:
    name = "three-instance lms_backup"

    def __init__(self, server: Server, work: Path, dataroot: Path, threads: int):
        self.server, self.work, self.dataroot = server, work, dataroot
        self.params = {
            "bucket": BUCKET,
            "endpoint_url": server.info["endpoint_url"],
            "region": server.info["region"],
            "access_key": server.info["access_key"],
            "secret_key": server.info["secret_key"],
            "encryption": "AES256",
            "storage_class": "STANDARD",
            "threads": threads,
        }
        self.keys = Keys("lms-backups", "bench", "bench-live")
        self.config = work / "config.php"
        self.config.write_text("<?php // benchmark\n")
        self.last = None

    def day(self, n: int, dump: Path) -> None:
        store = s3_store.connect(self.params)
        self.last = f"day{n}"
        write_backup(
            store,
            self.keys,
            self.last,
            part_size=16 * MIB,
            dump=(["cat", str(dump)], dict(os.environ), "database.pgdump", "pg_dump-custom"),
            dataroot=str(self.dataroot),
            config_path=str(self.config),
            fields={"customer": "bench", "site": "bench-live", "moodle": {"version": "1"}, "wwwroot": "x"},
        )

    def restore(self, target: Path) -> None:
        store = s3_store.connect(self.params)
        manifest = load_manifest(store, self.keys, self.last)
        target.mkdir(parents=True)
        content = Content.load(store, self.keys, set(manifest.get("packs", ())))
        fetch_backup(
            store, self.keys, manifest, str(target), str(target / "dataroot"), "/nonexistent", (0, 0), content
        )


class Restic:
    name = "restic 0.14 (Debian)"

    def __init__(self, server: Server, work: Path, dataroot: Path, _threads: int):
        self.dataroot = dataroot
        self.env = server.env() | {
            "RESTIC_REPOSITORY": f"s3:{server.info['endpoint_url']}/{BUCKET}/restic",
            "RESTIC_PASSWORD": "benchmark",
            "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        }
        run(["restic", "init"], self.env)

    def day(self, n: int, dump: Path) -> None:
        run(["restic", "backup", "--stdin", "--stdin-filename", "database.pgdump"], self.env, stdin=dump)
        run(
            [
                "restic",
                "backup",
                *(f"--exclude={self.dataroot}/{x}" for x in DATAROOT_EXCLUDED - {"filedir"}),
                str(self.dataroot),
            ],
            self.env,
        )

    def restore(self, target: Path) -> None:
        run(["restic", "restore", "latest", "--path", "/database.pgdump", "--target", str(target)], self.env)
        run(["restic", "restore", "latest", "--path", str(self.dataroot), "--target", str(target)], self.env)


class AwsSync:
    name = "aws s3 sync + dump upload"

    def __init__(self, server: Server, work: Path, dataroot: Path, _threads: int):
        self.dataroot = dataroot
        self.env = server.env()
        self.url = server.info["endpoint_url"]

    def aws(self, *args: str) -> None:
        run([str(AWS), "--endpoint-url", self.url, "s3", *args, "--only-show-errors"], self.env)

    def day(self, n: int, dump: Path) -> None:
        self.aws("cp", str(dump), f"s3://{BUCKET}/db/day{n}.pgdump")
        excludes = [f"--exclude={x}/*" for x in DATAROOT_EXCLUDED - {"filedir"}]
        self.aws("sync", str(self.dataroot), f"s3://{BUCKET}/dataroot/", *excludes)
        self.last = n

    def restore(self, target: Path) -> None:
        self.aws("cp", f"s3://{BUCKET}/db/day{self.last}.pgdump", str(target / "database.pgdump"))
        self.aws("sync", f"s3://{BUCKET}/dataroot/", str(target / "dataroot"))


# ------------------------------------------------------------------------------------------------


TOOLS = {"ours": Ours, "restic": Restic, "aws": AwsSync}


def measure(tool: str, server: Server, work: Path, args, dump1: Path, dump2: Path) -> dict:
    """Day 1 (full), day 2 (new files and dump), restore of day 2: seconds and bytes in the bucket."""
    impl = TOOLS[tool](server, work, work / "dataroot", args.threads)
    subprocess.run(["sync"], check=True)
    full_s = timed(impl.day, 1, dump1)
    full_bytes = server.stored()
    new = add_new_files(work / "dataroot", args.new_percent, args.seed, work / "day2-files.json")
    subprocess.run(["sync"], check=True)
    next_s = timed(impl.day, 2, dump2)
    next_bytes = server.stored() - full_bytes
    target = work / f"restore-{tool}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    restore_s = timed(impl.restore, target / "r")
    shutil.rmtree(target, ignore_errors=True)
    return {
        "tool": impl.name,
        "full_s": round(full_s, 1),
        "full_bytes": full_bytes,
        "next_s": round(next_s, 1),
        "next_bytes": next_bytes,
        "restore_s": round(restore_s, 1),
        "new_bytes": new["bytes"],
        "new_files": new["files"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/ti-backup-bench"))
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--gigabytes", type=float, default=2.2)
    parser.add_argument("--dump-mb", type=int, default=256)
    parser.add_argument("--new-percent", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--tools", default="ours,restic,aws")
    args = parser.parse_args()
    if not AWS.exists() and "aws" in args.tools:
        raise SystemExit(
            f"{AWS} missing: python3 -m venv .cache/awscli-venv && .cache/awscli-venv/bin/pip install awscli"
        )
    if shutil.which("restic") is None and "restic" in args.tools:
        raise SystemExit("restic missing: apt-get install restic")
    work = args.dir
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for tool in args.tools.split(","):
        # Every tool starts from the same day-1 data.
        back_to_day_one(work / "day2-files.json")
        data = make_dataroot(work / "dataroot", args.files, args.gigabytes, args.seed)
        dump1 = work / "dump-day1.bin"
        dump2 = work / "dump-day2.bin"
        dump_bytes = make_dump(dump1, args.dump_mb) if not dump1.exists() else dump1.stat().st_size
        if not dump2.exists():
            make_dump(dump2, args.dump_mb)
        server = Server(work, tool)
        try:
            results.append(measure(tool, server, work, args, dump1, dump2))
        finally:
            server.stop()
        print(json.dumps(results[-1]), flush=True)

    print(
        f"\nData: {data['files']} filedir files ({data['videos']} videos), {data['bytes'] / 1e9:.2f} GB; "
        f"dump {dump_bytes / 1e6:.0f} MB; day 2 adds {results[0]['new_files']} files "
        f"({results[0]['new_bytes'] / 1e6:.1f} MB) and a new dump. Machine: {os.cpu_count()} cores.\n"
    )
    print(f"| {'tool':28} | full backup | full bytes | next day | next-day bytes | restore |")
    print(f"|{'-' * 30}|------------:|-----------:|---------:|---------------:|--------:|")
    for r in results:
        full = f"{r['full_s']:9.1f} s | {r['full_bytes'] / 1e6:7.0f} MB"
        nxt = f"{r['next_s']:6.1f} s | {r['next_bytes'] / 1e6:11.1f} MB"
        print(f"| {r['tool']:28} | {full} | {nxt} | {r['restore_s']:5.1f} s |")
    ours = next((r for r in results if r["tool"].startswith("three")), None)
    restic = next((r for r in results if r["tool"].startswith("restic")), None)
    if ours:
        budget = 1.1 * (ours["new_bytes"] + dump_bytes)
        print(
            f"\nnext-day bytes {ours['next_bytes'] / 1e6:.1f} MB <= 1.1 x (new files + dump) = "
            f"{budget / 1e6:.1f} MB: {'yes' if ours['next_bytes'] <= budget else 'NO'}"
        )
    if ours and restic:
        print(
            f"wall time no worse than restic: full {'yes' if ours['full_s'] <= restic['full_s'] else 'NO'}, "
            f"next day {'yes' if ours['next_s'] <= restic['next_s'] else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

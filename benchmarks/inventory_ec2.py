#!/usr/bin/env python3
"""Benchmark: the three_instance inventory plugin beside amazon.aws.aws_ec2 on the same EC2 data.

Starts its own moto server (HTTP), creates CUSTOMERS x 3 tiers running instances spread over
several regions (tags lms:customer, lms:tier, lms:role, lms:flavour, Name), then times

  * the inventory parse alone (InventoryManager in a fresh Python process: what the plugin costs), and
  * the whole `ansible-inventory --list` (what an operator or AWX waits for),

for three_instance and for aws_ec2 configured with equivalent groups (tier, customer, site,
host role, flavour via keyed_groups; ansible_host = private IP), each uncached (--flush-cache:
query EC2, write the cache) and cached (the jsonfile inventory cache). Prints a table.

    .venv/bin/python benchmarks/inventory_ec2.py [--customers 1000] [--regions eu-west-1,eu-west-2,us-east-1]

Not a test: figures depend on the machine. Results are recorded in docs/inventory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import boto3
import local_s3
import yaml

BIN = Path(sys.executable).parent
TIERS = ("dev", "qa", "live")

PARSE_ONLY = """
import sys, time
t0 = time.perf_counter()
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
t1, c1 = time.perf_counter(), time.process_time()
inv = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]], cache=sys.argv[2] == "cache")
t2, c2 = time.perf_counter(), time.process_time()
hosts = len(inv.get_hosts())
if hosts < int(sys.argv[3]):
    raise SystemExit(f"only {hosts} hosts")
print(t2 - t1, c2 - c1)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def populate(endpoint: dict, customers: int, regions: list[str]) -> int:
    clients = {
        r: boto3.client(
            "ec2",
            region_name=r,
            endpoint_url=endpoint["endpoint_url"],
            aws_access_key_id=endpoint["access_key"],
            aws_secret_access_key=endpoint["secret_key"],
        )
        for r in regions
    }
    images = {
        r: c.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        for r, c in clients.items()
    }

    def create(index: int) -> None:
        customer = f"c{index:04d}"
        region = regions[index % len(regions)]
        flavour = "totara" if index % 5 == 0 else "moodle"
        for tier in TIERS:
            tags = {
                "Name": f"{customer}-{tier}1",
                "lms:customer": customer,
                "lms:tier": tier,
                "lms:role": "web,db",
                "lms:flavour": flavour,
            }
            clients[region].run_instances(
                ImageId=images[region],
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.small",
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                ],
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(customers)))
    return customers * len(TIERS)


def write_configs(work: Path, endpoint: dict, customers: int, regions: list[str]) -> dict[str, Path]:
    common = {
        "regions": regions,
        "endpoint_url": endpoint["endpoint_url"],
        "aws_access_key": endpoint["access_key"],
        "aws_secret_key": endpoint["secret_key"],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_timeout": 3600,
    }
    ours = {
        "plugin": "three_instance",
        "name": "bench",
        "ec2": True,
        **common,
        "cache_connection": str(work / "cache-three_instance"),
        "hostnames": ["tag:Name", "private-ip-address"],
        "tiers": {
            "dev": {"wwwroot": "http://{customer}.dev.lan"},
            "qa": {"wwwroot": "https://{customer}-qa.lms.example.net"},
            "live": {
                "wwwroot": "https://{customer}.lms.example.net",
                "maintenance_windows": ["sun 02:00-04:00"],
            },
        },
        "customers": {
            f"c{i:04d}": {
                "flavour": "totara" if i % 5 == 0 else "moodle",
                "tiers": {"dev": {}, "qa": {}, "live": {}},
            }
            for i in range(customers)
        },
    }
    aws = {
        "plugin": "amazon.aws.aws_ec2",
        **common,
        "cache_connection": str(work / "cache-aws_ec2"),
        "filters": {"instance-state-name": "running", "tag-key": "lms:customer"},
        "hostnames": ["tag:Name", "private-ip-address"],
        "compose": {"ansible_host": "private_ip_address"},
        "leading_separator": False,
        # the same groups: tier, customer, site (customer_tier), host role, flavour
        "keyed_groups": [
            {"key": "tags['lms:tier']", "separator": ""},
            {"key": "tags['lms:customer']", "separator": ""},
            {"key": "tags['lms:customer'] ~ '_' ~ tags['lms:tier']", "separator": ""},
            {"key": "tags['lms:role'].split(',')", "separator": ""},
            {"key": "tags['lms:flavour']", "separator": ""},
        ],
    }
    (work / "three_instance").mkdir()
    (work / "aws_ec2").mkdir()
    paths = {
        "three_instance": work / "three_instance" / "bench.estate.yml",
        "amazon.aws.aws_ec2": work / "aws_ec2" / "bench.aws_ec2.yml",
    }
    paths["three_instance"].write_text(yaml.safe_dump(ours, sort_keys=False))
    paths["amazon.aws.aws_ec2"].write_text(yaml.safe_dump(aws, sort_keys=False))
    return paths


def env_for(plugin: str) -> dict:
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1"
    )
    # Only the plugin under test is enabled: each run would otherwise import both.
    env["ANSIBLE_INVENTORY_ENABLED"] = plugin
    # The bench measures inventory, not the fact cache or callbacks.
    env["ANSIBLE_CALLBACKS_ENABLED"] = ""
    return env


def timed(cmd: list[str], plugin: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, env=env_for(plugin), capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def parse_only(plugin: str, path: Path, cached: bool, hosts: int) -> tuple[float, float]:
    """Wall and CPU seconds of InventoryManager(...) in a fresh process (CPU time is what the
    plugin costs when the machine is shared; wall time is what an idle machine would show)."""
    mode = "cache" if cached else "flush"
    _, out = timed([sys.executable, "-c", PARSE_ONLY, str(path), mode, str(hosts)], plugin)
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def cli_list(plugin: str, path: Path, cached: bool) -> float:
    cmd = [str(BIN / "ansible-inventory"), "-i", str(path), "--list", "--output", os.devnull]
    if not cached:
        cmd.append("--flush-cache")
    elapsed, _ = timed(cmd, plugin)
    return elapsed


def check_equivalent(paths: dict[str, Path], hosts: int) -> None:
    """Both inventories hold the same hosts and the same tier/site/role/flavour groups."""
    outputs = {}
    for name, path in paths.items():
        _, out = timed([str(BIN / "ansible-inventory"), "-i", str(path), "--list"], name)
        outputs[name] = json.loads(out)
    ours, theirs = outputs["three_instance"], outputs["amazon.aws.aws_ec2"]
    assert len(ours["_meta"]["hostvars"]) == len(theirs["_meta"]["hostvars"]) == hosts, "host counts differ"

    def hosts_in(data: dict, group: str) -> set:
        found = set(data.get(group, {}).get("hosts", []))
        for child in data.get(group, {}).get("children", []):
            found |= hosts_in(data, child)
        return found

    for group in ("dev", "qa", "live", "web", "db", "moodle", "totara", "c0001", "c0001_live", "c0999_dev"):
        if group in theirs or group in ours:
            assert hosts_in(ours, group) == hosts_in(theirs, group), f"group {group} differs"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--regions", default="eu-west-1,eu-west-2,us-east-1")
    parser.add_argument(
        "--repeat", type=int, default=3, help="cached runs per measurement; the median is shown"
    )
    parser.add_argument(
        "--repeat-uncached",
        type=int,
        default=1,
        help="uncached runs per measurement (each queries all of EC2)",
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    regions = [r for r in args.regions.split(",") if r]

    work = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    state = work / "moto"
    try:
        endpoint = local_s3.start(args.port or free_port(), state)
        started = time.perf_counter()
        hosts = populate(endpoint, args.customers, regions)
        took = time.perf_counter() - started
        print(
            f"moto: {hosts} running instances in {len(regions)} regions ({took:.0f} s to create)", flush=True
        )
        paths = write_configs(work, endpoint, args.customers, regions)
        check_equivalent(paths, hosts)
        print(
            "both inventories: same hosts; same tier, site, customer, role and flavour groups\n", flush=True
        )

        rows = []
        for name, path in paths.items():
            for cached in (False, True):
                if cached:  # make sure the cache is there
                    cli_list(name, path, False)
                repeat = args.repeat if cached else args.repeat_uncached
                runs = [parse_only(name, path, cached, hosts) for _ in range(repeat)]
                parse = statistics.median(wall for wall, _ in runs)
                cpu = statistics.median(cpu for _, cpu in runs)
                cli = statistics.median(cli_list(name, path, cached) for _ in range(repeat))
                rows.append((name, "cached" if cached else "uncached", parse, cpu, cli))
                print(
                    f"  {name:<20} {rows[-1][1]:<8} parse {parse:6.2f} s (CPU {cpu:6.2f} s)  "
                    f"--list {cli:6.2f} s",
                    flush=True,
                )

        print(
            f"{args.customers} customers x 3 tiers = {hosts} EC2 instances, {len(regions)} regions; "
            f"median of {args.repeat} cached runs, {args.repeat_uncached} uncached"
        )
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, ansible-core {ansible_version()}\n"
        )
        head = ("plugin", "cache", "parse wall (s)", "parse CPU (s)", "ansible-inventory --list (s)")
        print(f"| {head[0]:<20} | {head[1]:<8} | {head[2]:>14} | {head[3]:>13} | {head[4]:>28} |")
        print(f"|{'-' * 22}|{'-' * 10}|{'-' * 16}|{'-' * 15}|{'-' * 30}|")
        for name, mode, parse, cpu, cli in rows:
            print(f"| {name:<20} | {mode:<8} | {parse:>14.2f} | {cpu:>13.2f} | {cli:>28.2f} |")
    finally:
        local_s3.stop(state)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def ansible_version() -> str:
    out = subprocess.run(
        [str(BIN / "ansible"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return out.split("core ", 1)[-1].split("]", 1)[0] if "core " in out else "?"


if __name__ == "__main__":
    sys.exit(main())

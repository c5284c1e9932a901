#!/usr/bin/env python3
"""Benchmark: seconds per task on a test host, the collection's podman connection beside
plugins/connection/podman_pipelined.py (the same, with modules piped into one `podman exec -i`).

It starts a throw-away container from the test-host image (tools/build-test-image.sh), runs the
same playbook through each connection - N command tasks, N stat tasks, N small copies, N templates
and one fetch - and removes the container.

    .venv/bin/python benchmarks/podman_connection.py [--tasks 20] [--rounds 2]

Not a test: figures depend on the machine. Results are recorded in docs/test-hosts.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from ansible_cli import ansible_playbook

IMAGE = "localhost/three-instance-host:bookworm"
HOST = "ti-bench-connection"

PLAYBOOK = """
- name: The same tasks through {connection}
  hosts: all
  gather_facts: false
  tasks:
    - name: Command
      ansible.builtin.command: "true"
      changed_when: false
      loop: "{{{{ range({n}) | list }}}}"
    - name: Stat
      ansible.builtin.stat:
        path: /etc/hostname
      loop: "{{{{ range({n}) | list }}}}"
    - name: Copy
      ansible.builtin.copy:
        content: "file {{{{ item }}}}\\n"
        dest: /tmp/bench-copy-{{{{ item }}}}
        mode: "0644"
      loop: "{{{{ range({n}) | list }}}}"
    - name: Template
      ansible.builtin.template:
        src: {template}
        dest: /tmp/bench-template-{{{{ item }}}}
        mode: "0644"
      loop: "{{{{ range({n}) | list }}}}"
    - name: Fetch
      ansible.builtin.fetch:
        src: /etc/os-release
        dest: {fetched}/
"""


def run_playbook(connection: str, tasks: int, work: Path) -> float:
    (work / "bench.j2").write_text("{{ inventory_hostname }} {{ item }}\n")
    play = work / f"{connection.replace('.', '_')}.yml"
    play.write_text(
        PLAYBOOK.format(connection=connection, n=tasks, template=work / "bench.j2", fetched=work / "fetched")
    )
    inventory = work / "hosts"
    python = "ansible_python_interpreter=/usr/bin/python3"
    inventory.write_text(f"{HOST} ansible_connection={connection} {python}\n")
    started = time.monotonic()
    out = ansible_playbook("-i", str(inventory), str(play))
    if out.returncode != 0:
        sys.exit(f"{connection}: the playbook failed:\n{out.tail}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="loop items per kind of task")
    parser.add_argument("--rounds", type=int, default=2, help="runs per connection, alternated")
    args = parser.parse_args()
    env = dict(os.environ, CONTAINERS_CONF=str(REPO / "containers" / "containers.conf"))
    subprocess.run(["podman", "rm", "-f", HOST], env=env, capture_output=True, check=False)
    subprocess.run(
        ["podman", "run", "-d", "--name", HOST, "--systemd=always", IMAGE, "/sbin/init"],
        env=env,
        capture_output=True,
        check=True,
    )
    connections = ("containers.podman.podman", "podman_pipelined")
    seconds: dict[str, list[float]] = {c: [] for c in connections}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for connection in connections:
                    seconds[connection].append(run_playbook(connection, args.tasks, Path(tmp)))
    finally:
        subprocess.run(["podman", "rm", "-f", HOST], env=env, capture_output=True, check=False)
    module_runs = 4 * args.tasks + 1
    print(f"{module_runs} module runs per playbook (command, stat, copy, template x {args.tasks}; one fetch)")
    print(f"{'connection':28} {'best s':>8} {'s/module':>9}")
    for connection, runs in seconds.items():
        best = min(runs)
        print(f"{connection:28} {best:8.1f} {best / module_runs:9.2f}")
    base, new = (min(seconds[c]) for c in connections)
    print(f"podman_pipelined takes {new / base:.0%} of the collection plugin's time")


if __name__ == "__main__":
    main()

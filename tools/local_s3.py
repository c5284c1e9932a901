#!/usr/bin/env python3
"""Start and stop the local S3 API (moto server) used by the tests and the demo.

moto listens on 0.0.0.0 so that the test hosts (podman containers) reach it through
the bridge gateway; S3_IGNORE_SUBDOMAIN_BUCKETNAME makes it ignore the Host header,
which it would otherwise read as a virtual-hosted bucket name.

    tools/local_s3.py start [--port 5055] [--state-dir .cache/s3]
    tools/local_s3.py stop  [--state-dir .cache/s3]
    tools/local_s3.py status
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_PORT = 5055
# Fixed, obviously fake credentials: moto accepts anything, real AWS accepts none of these.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105
REGION = "eu-west-1"
# podman's default bridge gateway: how a container reaches a service of the host.
CONTAINER_GATEWAY = "10.88.0.1"


def endpoint_info(port: int) -> dict:
    return {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "container_endpoint_url": f"http://{CONTAINER_GATEWAY}:{port}",
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region": REGION,
        "port": port,
    }


def _moto_server() -> str:
    here = Path(sys.executable).parent / "moto_server"
    found = str(here) if here.exists() else shutil.which("moto_server")
    if not found:
        raise SystemExit("moto_server not found: run `make setup` (it installs moto[server])")
    return found


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"moto server did not answer on port {port} within {timeout:.0f}s")


def start(port: int, state_dir: Path) -> dict:
    """Start moto in the background (idempotent) and return how to reach it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    pidfile = state_dir / "moto.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if _alive(pid):
            return json.loads((state_dir / "endpoint.json").read_text())
        pidfile.unlink()
    env = dict(os.environ, S3_IGNORE_SUBDOMAIN_BUCKETNAME="true", MOTO_ALLOW_NONEXISTENT_REGION="true")
    log = open(state_dir / "moto.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [_moto_server(), "-H", "0.0.0.0", "-p", str(port)],  # noqa: S104 - containers must reach it
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    try:
        wait_ready(port)
    except RuntimeError:
        stop(state_dir)
        raise
    info = endpoint_info(port)
    (state_dir / "endpoint.json").write_text(json.dumps(info, indent=2))
    return info


def stop(state_dir: Path) -> bool:
    pidfile = state_dir / "moto.pid"
    if not pidfile.exists():
        return False
    pid = int(pidfile.read_text())
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink()
    return True


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a child we started but did not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_S3_PORT", DEFAULT_PORT)))
    parser.add_argument("--state-dir", type=Path, default=Path(".cache/s3"))
    args = parser.parse_args()
    if args.action == "start":
        print(json.dumps(start(args.port, args.state_dir), indent=2))
    elif args.action == "stop":
        print("stopped" if stop(args.state_dir) else "not running")
    else:
        pidfile = args.state_dir / "moto.pid"
        running = pidfile.exists() and _alive(int(pidfile.read_text()))
        print("running" if running else "not running")
        return 0 if running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

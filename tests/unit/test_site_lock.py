"""Unit tests of plugins/module_utils/site_lock.py (one job at a time per site) and of the
ansible_run lookup that names the holder. The lock on real hosts, two deploys at once, is in the
stack scenario (molecule/stack/tests/test_release.py)."""

from __future__ import annotations

import getpass
import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import site_lock as sl

_spec = importlib.util.spec_from_file_location("ansible_run", REPO / "plugins" / "lookup" / "ansible_run.py")
ansible_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ansible_run)


def holder(token: str = "ctl1:100:5", **extra) -> dict:  # noqa: S107 - a lock token, not a secret
    return {
        "token": token,
        "job": "deploy.yml of r1",
        "user": "alice",
        "controller": "ctl1",
        "pid": 100,
        **extra,
    }


@pytest.fixture
def lock(tmp_path):
    return str(tmp_path / sl.LOCK_NAME)


def test_taken_then_reentrant_then_refused_with_the_holder(lock):
    first = sl.acquire(lock, holder(), ttl=3600, now=1000.0)
    assert first["changed"] and first["taken_over"] is None
    record = json.loads(Path(lock).read_text())
    assert record["token"] == "ctl1:100:5" and record["started"] == "1970-01-01T00:16:40Z"
    again = sl.acquire(lock, holder(), ttl=3600, now=1001.0)
    assert not again["changed"] and again["holder"]["started_epoch"] == 1000.0
    with pytest.raises(sl.SiteLockError) as refused:
        sl.acquire(lock, holder("ctl2:7:9", controller="ctl2", user="bob"), ttl=3600, now=1002.0)
    message = str(refused.value)
    for part in ("deploy.yml of r1", "alice", "ctl1", "1970-01-01T00:16:40Z", "site_lock_break=ctl1:100:5"):
        assert part in message
    assert json.loads(Path(lock).read_text())["token"] == "ctl1:100:5"


@pytest.mark.parametrize(
    ("case", "kwargs", "taken"),
    [
        ("older than the ttl", {"now": 1000.0 + 3601}, True),
        ("broken on purpose", {"now": 1001.0, "break_token": "ctl1:100:5"}, True),
        ("dead on the same controller", {"now": 1001.0, "live_tokens": ["ctl1:555:1"]}, True),
        ("alive on the same controller", {"now": 1001.0, "live_tokens": ["ctl1:100:5"]}, False),
        ("another token broken", {"now": 1001.0, "break_token": "ctl1:999:1"}, False),
    ],
)
def test_stale_locks_are_taken_over_live_ones_are_not(lock, case, kwargs, taken):
    sl.acquire(lock, holder(), ttl=3600, now=1000.0)
    second = holder("ctl1:200:6", pid=200)
    if not taken:
        with pytest.raises(sl.SiteLockError):
            sl.acquire(lock, second, ttl=3600, **kwargs)
        assert json.loads(Path(lock).read_text())["token"] == "ctl1:100:5", case
        return
    result = sl.acquire(lock, second, ttl=3600, **kwargs)
    assert result["changed"] and result["taken_over"]["token"] == "ctl1:100:5", case
    assert json.loads(Path(lock).read_text())["token"] == "ctl1:200:6"


def test_a_lock_from_another_controller_is_not_judged_by_this_ones_processes(lock):
    sl.acquire(lock, holder("ctl2:100:5", controller="ctl2"), ttl=3600, now=1000.0)
    with pytest.raises(sl.SiteLockError):
        sl.acquire(lock, holder(), ttl=3600, now=1001.0, live_tokens=["ctl1:1:1"])


def test_check_mode_writes_nothing(lock):
    assert sl.acquire(lock, holder(), ttl=3600, check_mode=True)["changed"]
    assert not os.path.exists(lock)
    sl.acquire(lock, holder(), ttl=3600, now=1000.0)
    stale = sl.acquire(lock, holder("ctl1:2:2"), ttl=10, now=2000.0, check_mode=True)
    assert stale["taken_over"]["token"] == "ctl1:100:5"
    assert json.loads(Path(lock).read_text())["token"] == "ctl1:100:5"


def test_only_the_holder_releases(lock):
    sl.acquire(lock, holder(), ttl=3600)
    assert sl.release(lock, "ctl2:1:1") == {"changed": False, "holder": json.loads(Path(lock).read_text())}
    assert os.path.exists(lock)
    assert sl.release(lock, "ctl1:100:5") == {"changed": True, "holder": None}
    assert not os.path.exists(lock)
    assert sl.release(lock, "ctl1:100:5") == {"changed": False, "holder": None}


@pytest.mark.parametrize("shape", ["symlink", "folder", "garbage", "json without token"])
def test_a_lock_file_this_code_did_not_write_is_refused(tmp_path, lock, shape):
    secret = tmp_path / "secret"
    secret.write_text('{"token": "x"}')
    if shape == "symlink":
        os.symlink(secret, lock)
    elif shape == "folder":
        os.mkdir(lock)
    elif shape == "garbage":
        Path(lock).write_text("not json")
    else:
        Path(lock).write_text('{"job": "x"}')
    with pytest.raises(sl.SiteLockError, match="remove it by hand"):
        sl.acquire(lock, holder(), ttl=0)


def test_bad_holders_and_missing_site_folders_are_refused(tmp_path):
    with pytest.raises(sl.SiteLockError, match="needs user"):
        sl.acquire(str(tmp_path / ".lock"), holder(user=" "), ttl=10)
    with pytest.raises(sl.SiteLockError, match="converge the site first"):
        sl.acquire(str(tmp_path / "absent" / ".lock"), holder(), ttl=10)


def _race(lock: str, token: str, results) -> None:
    try:
        sl.acquire(lock, holder(token), ttl=3600)
        results.put(token)
    except sl.SiteLockError:
        results.put(None)


def test_of_jobs_started_together_exactly_one_gets_the_lock(lock):
    results = multiprocessing.get_context("fork").Queue()
    racers = [
        multiprocessing.get_context("fork").Process(target=_race, args=(lock, f"ctl1:{n}:1", results))
        for n in range(8)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    winners = [t for t in (results.get(timeout=5) for _ in racers) if t]
    assert len(winners) == 1 and json.loads(Path(lock).read_text())["token"] == winners[0]


def test_the_lookup_names_this_run_and_sees_it_alive(tmp_path):
    """ansible_run through ansible-playbook: the token names the ansible-playbook process (the same
    in every task), and it is among the live tokens; a made-up process is not."""
    play = tmp_path / "play.yml"
    play.write_text(
        """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        first: "{{ lookup('ansible_run') }}"
    - ansible.builtin.set_fact:
        second: "{{ lookup('ansible_run') }}"
    - ansible.builtin.copy:
        content: "{{ {'first': first, 'second': second} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""
    )
    out = tmp_path / "out.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play),
         "-e", f"out={out}", "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    seen = json.loads(out.read_text())
    first, second = seen["first"], seen["second"]
    assert first["token"] == second["token"] == f"{first['controller']}:{first['pid']}:{first['started']}"
    assert first["token"] in first["live_tokens"] and f"{first['controller']}:1:0" not in first["live_tokens"]
    assert first["pid"] != os.getpid()  # the ansible-playbook process, not this test's


@pytest.mark.parametrize(
    ("variables", "sudo_user", "operator"),
    [
        ({"awx_user_name": "awx-operator", "tower_user_name": "tower-name"}, "alice", "awx-operator"),
        ({"tower_user_name": "tower-name"}, "alice", "tower-name"),
        ({}, "alice", "alice"),
        ({}, None, getpass.getuser()),
    ],
)
def test_the_lookup_names_who_ran_it(monkeypatch, variables, sudo_user, operator):
    """Who the records and the lock name: AWX's launching user, else the person behind sudo, else
    the controller's user (one expression for every job: the lookup's `operator`)."""
    if sudo_user is None:
        monkeypatch.delenv("SUDO_USER", raising=False)
    else:
        monkeypatch.setenv("SUDO_USER", sudo_user)
    run = ansible_run.LookupModule().run([], variables=variables)[0]
    assert run["operator"] == operator and run["user"] == getpass.getuser()

# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup plugin ansible_run: who this run is (for the site lock), and whether a run is alive."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ansible_run
short_description: This ansible-playbook run's identity, and the Ansible runs alive beside it
description:
  - The identity of the running C(ansible-playbook) on the controller - host name, process id,
    user, the process's start - and a token made of them, unique per run. The site lock
    (C(lms_site_lock), C(playbooks/tasks/site_lock.yml)) records it as the lock's holder.
  - Also the tokens of every Ansible process alive on this controller now, so that a lock left
    by a run that died here can be taken over at once.
  - And who ran it, for the records a job writes (deployment records, the lock) - the user who
    launched the AWX / Automation Controller job (C(awx_user_name), or C(tower_user_name)), else
    the person behind C(sudo) (C(SUDO_USER)), else the controller's user.
  - Takes no terms.
version_added: 1.1.0
author:
  - three-instance engineers
"""

EXAMPLES = r"""
- name: Who this run is
  ansible.builtin.set_fact:
    site_lock__run: "{{ lookup('ansible_run') }}"

- name: Is the run that holds a lock still alive (it ran on this controller)?
  ansible.builtin.debug:
    msg: "{{ holder.token in lookup('ansible_run').live_tokens }}"
"""

RETURN = r"""
_raw:
  description:
    - One dict - C(controller), C(pid), C(user), C(started) (the process's start, seconds after
      boot), C(token) (C(<controller>:<pid>:<started>)), C(live_tokens) (the tokens of the
      Ansible processes alive on this controller) and C(operator) (who ran it - AWX's launching
      user, else C(SUDO_USER), else C(user)).
  type: list
"""

import getpass
import multiprocessing
import os
import socket

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


def main_process() -> int:
    """The ansible-playbook process: lookups run in its forked workers, or in it."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()


def ansible_processes() -> list[int]:
    """The processes on this machine whose command line names Ansible."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if b"ansible" in cmdline.read():
                        found.append(int(entry))
            except OSError:
                continue  # ended meanwhile
    return found


def started(pid: int) -> int:
    """The process's start, in seconds since boot (stable for the process's life; a reused pid differs)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19]) // os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleError(f"ansible_run takes no terms (got {terms!r})")
        pid = main_process()
        controller = socket.gethostname()
        variables = variables or {}
        user = getpass.getuser()
        return [
            {
                "controller": controller,
                "pid": pid,
                "user": user,
                "operator": str(
                    variables.get("awx_user_name")
                    or variables.get("tower_user_name")
                    or os.environ.get("SUDO_USER")
                    or user
                ),
                "started": started(pid),
                "token": f"{controller}:{pid}:{started(pid)}",
                "live_tokens": [f"{controller}:{p}:{started(p)}" for p in ansible_processes()],
            }
        ]

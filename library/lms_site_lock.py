#!/usr/bin/python
# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lms_site_lock
short_description: One job at a time per site - take or release the site's lock
description:
  - Every playbook that changes a site (deploy, promote, rollback, restore, QA refresh, course
    promotion) takes the site's lock on its first web host before its first change and releases
    it at its end (C(playbooks/tasks/site_lock.yml)). A second job is refused at once, with the
    job that holds the lock, who ran it, from which controller and since when.
  - The lock is a file, C(<code_dir>/<site>/.lock), in the site's root-owned code folder, created
    with C(O_EXCL) (two jobs cannot both take it) and read without following links.
  - Re-entrant - the same O(token) takes it again without change (C(promote.yml) runs
    C(deploy.yml) inside its own lock).
  - Stale locks - a job that died leaves its lock. It is taken over when its holder ran on the same
    O(controller) and is not among O(live_tokens) (its process is gone), when it is older than
    O(ttl), or when O(break_token) names it (an operator, C(-e site_lock_break=<token>)). The
    result says which lock was taken over.
  - O(state=absent) removes the lock only when O(token) holds it; another job's lock is left alone.
version_added: "1.1.0"
author: three-instance contributors
options:
  path:
    description: The site's code folder (C(/srv/lms/<site>)); the lock is its C(.lock).
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  token:
    description: Who holds the lock - unique per run (C(<controller>:<process>:<start>)).
    type: str
    required: true
  job:
    description: What runs (the playbook), for the refusal message. Required with O(state=present).
    type: str
  user:
    description: Who runs it. Required with O(state=present).
    type: str
  controller:
    description: The controller's host name. Required with O(state=present).
    type: str
  pid:
    description: The controller's process (C(ansible-playbook)). Required with O(state=present).
    type: int
  ttl:
    description: Seconds after which another job's lock is stale and taken over.
    type: int
    default: 14400
  break_token:
    description: Take over the lock if this token holds it (a holder known to be dead).
    type: str
  live_tokens:
    description:
      - The tokens of the Ansible runs alive on O(controller) now (the C(ansible_run) lookup's
        C(live_tokens)). A lock held from O(controller) by a token not in the list is stale.
      - Omitted, only O(ttl) and O(break_token) make a lock stale.
    type: list
    elements: str
notes:
  - Supports check mode - it reports whether the lock could be taken and changes nothing.
seealso:
  - module: lms_change_window
"""

EXAMPLES = r"""
- name: Take acme-live's lock for this run
  lms_site_lock:
    path: /srv/lms/acme-live
    token: "{{ site_lock__run.token }}"
    job: deploy.yml
    user: "{{ site_lock__run.user }}"
    controller: "{{ site_lock__run.controller }}"
    pid: "{{ site_lock__run.pid }}"
    live_tokens: "{{ site_lock__run.live_tokens }}"
  delegate_to: "{{ site.web_hosts[0] }}"

- name: Release it
  lms_site_lock:
    path: /srv/lms/acme-live
    state: absent
    token: "{{ site_lock__run.token }}"
  delegate_to: "{{ site.web_hosts[0] }}"
"""

RETURN = r"""
holder:
  description:
    - The lock record after the task (state=present), or another job's, left alone (state=absent).
  returned: always
  type: dict
  sample: {"token": "ctl1:4242:1764900000", "job": "deploy.yml", "user": "alice", "controller": "ctl1",
           "pid": 4242, "started": "2026-12-05T15:00:00Z", "started_epoch": 1764946800.0}
taken_over:
  description: The stale lock that was replaced, else null.
  returned: state=present
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.site_lock import LOCK_NAME, SiteLockError, acquire, read, release


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "token": {"type": "str", "required": True, "no_log": False},  # host:pid:time, not a secret
            "job": {"type": "str"},
            "user": {"type": "str"},
            "controller": {"type": "str"},
            "pid": {"type": "int"},
            "ttl": {"type": "int", "default": 14400},
            "break_token": {"type": "str", "no_log": False},
            "live_tokens": {"type": "list", "elements": "str", "no_log": False},
        },
        required_if=[("state", "present", ["job", "user", "controller", "pid"])],
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.join(params["path"], LOCK_NAME)
    try:
        if params["state"] == "absent":
            if module.check_mode:
                current = read(path)
                mine = current is not None and current["token"] == params["token"]
                module.exit_json(changed=mine, holder=None if mine else current)
            module.exit_json(**release(path, params["token"]))
        holder = {key: params[key] for key in ("token", "job", "user", "controller", "pid")}
        result = acquire(
            path,
            holder,
            params["ttl"],
            params["break_token"],
            check_mode=module.check_mode,
            live_tokens=params["live_tokens"],
        )
        if result["taken_over"]:
            module.warn(f"took over a stale lock of {params['path']}: {result['taken_over']}")
        module.exit_json(**result)
    except SiteLockError as exc:
        module.fail_json(msg=f"{os.path.basename(params['path'])}: {exc}; nothing was changed")


if __name__ == "__main__":
    main()

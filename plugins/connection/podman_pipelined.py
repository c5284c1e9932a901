# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin podman_pipelined: containers.podman.podman with pipelining.

The collection's plugin runs every module as four podman calls (mount, mkdir, exec, rm) because
``podman exec`` without ``-i`` gives the command no stdin, so Ansible cannot pipe a module into
the remote Python. With ``-i`` it can: one ``podman exec`` per module, and the container is only
mounted when a file really is copied. benchmarks/podman_connection.py measures both.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: podman_pipelined
short_description: Run tasks in a local podman container, modules piped into one podman exec
description:
  - The connection of the C(containers.podman.podman) plugin (same options), with pipelining. A
    module reaches the container's Python on the stdin of C(podman exec -i), so a task costs one
    podman call instead of four (C(podman mount), C(mkdir) of a temporary folder, the run, C(rm)).
  - The container's file system is mounted only when a file is copied in or out (O(remote_addr)'s
    C(podman mount); the collection's C(podman cp) fallback when that fails).
  - Pipelining must be on (C(pipelining = true) in C([connection]) of ansible.cfg, or
    C(ANSIBLE_PIPELINING=true)); without it the plugin behaves as C(containers.podman.podman).
  - The three-instance test hosts and the demo estate use it; real estates use SSH.
version_added: 1.1.0
author:
  - three-instance engineers
requirements:
  - podman, and the containers.podman collection on the controller
options:
  remote_addr:
    description:
      - The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description:
      - The user (name or UID) the commands run as inside the container.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description:
      - Extra arguments to pass to the podman command line.
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description:
      - The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
"""

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    """containers.podman.podman, with ``podman exec -i`` when there is input (pipelining)."""

    transport = "podman_pipelined"
    has_pipelining = True

    def _connect(self):
        # No `podman mount` here: a pipelined module copies no file, and the mount costs a podman
        # call of its own. put_file and fetch_file mount when they need to.
        ConnectionBase._connect(self)
        self._connected = True
        return self

    def _mount(self):
        if self._mount_point is None and not getattr(self, "_mount_tried", False):
            self._mount_tried = True
            PodmanConnection._connect(self)  # sets _mount_point, or leaves None (podman cp then)

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        exec_args = ["exec", "-i"] if in_data is not None else ["exec"]
        if self.user:
            exec_args += ["--user", self.user]
        return self._podman(exec_args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path, out_path):
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mount()
        super().fetch_file(in_path, out_path)

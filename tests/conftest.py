"""Shared pytest fixtures: the local S3 API and a real Moodle source tree.

Integration tests use real services. Fixtures that need something the machine
lacks skip with a message that says what to provide.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import local_s3
import moodle_source


class _RepoModuleUtils(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Modules and plugins import ``ansible.module_utils.<name>`` (ansible.cfg's module_utils path);
    in tests that name is the same module object as the plain ``<name>`` the tests import (packages
    too: ``ansible.module_utils.backup.create`` is ``backup.create``)."""

    PREFIX = "ansible.module_utils."
    ROOT = REPO / "plugins" / "module_utils"

    def find_spec(self, fullname, path, target=None):
        if fullname.startswith(self.PREFIX):
            where = self.ROOT.joinpath(*fullname[len(self.PREFIX) :].split("."))
            if where.with_suffix(".py").exists() or (where / "__init__.py").exists():
                return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(spec.name[len(self.PREFIX) :])

    def exec_module(self, module):
        pass  # already executed under its plain name


sys.meta_path.insert(0, _RepoModuleUtils())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A moto S3/EC2 server over HTTP for the whole session; stopped afterwards."""
    state = tmp_path_factory.mktemp("s3")
    info = local_s3.start(_free_port(), state)
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ACCESS_KEY_ID=info["access_key"],
        AWS_SECRET_ACCESS_KEY=info["secret_key"],
        AWS_DEFAULT_REGION=info["region"],
    )
    try:
        yield info
    finally:
        local_s3.stop(state)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def find_moodle_src() -> dict:
    """The Moodle source by the project's one rule (tools/moodle_source.py): MOODLE_SRC (a tree or a
    tarball), else the first ``moodle*`` in the cache folder, else the pinned official download."""
    try:
        return moodle_source.resolve()
    except moodle_source.BadSource as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # a wrong MOODLE_SRC is a mistake to fix, not a skip


@pytest.fixture(scope="session")
def private_tree(tmp_path_factory):
    """This session's own copy of a shared Moodle tree (the cache). Tests hard-link their sites' code
    from it (moodle_site.copy_tree), and a link made or removed changes the ctime of the files it
    shares: the Molecule scenarios that `make test` runs beside pytest pack the cache's tree with
    tar, which fails on that ('file changed as we read it'). A tarball is unpacked per site anyway."""

    def copy(src: Path) -> Path:
        if not src.is_dir():
            return src
        dest = tmp_path_factory.mktemp("moodle-src") / src.name
        subprocess.run(["cp", "-a", "--", str(src), str(dest)], check=True)
        return dest

    return copy


@pytest.fixture(scope="session")
def moodle_src(private_tree) -> Path:
    found = find_moodle_src()
    if not found["path"]:
        pytest.skip(f"{found['message']}; it is needed to run the tests that use real Moodle")
    return private_tree(Path(found["path"]))


def _unsafe_markers(value, path=""):
    if isinstance(value, dict):
        if "__ansible_unsafe" in value:
            yield path, value["__ansible_unsafe"]
        for key, item in value.items():
            yield from _unsafe_markers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unsafe_markers(item, f"{path}[{index}]")


@pytest.fixture
def unsafe_markers():
    """Where raw `ansible-inventory` output (AWX stores `--list --export` as host vars) holds
    {"__ansible_unsafe": ...}: (path, wrapped string) pairs."""
    return _unsafe_markers

"""Every Molecule scenario runs the playbooks with the plugin paths of the repository's ansible.cfg:
a path missing from a scenario's config_options (its generated ansible.cfg) fails only there, late
(a filter used in a task's message broke the stack-mariadb side effect this way)."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PATHS = (
    "library",
    "module_utils",
    "inventory_plugins",
    "connection_plugins",
    "lookup_plugins",
    "filter_plugins",
)


def repo_paths() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    return {key: cfg["defaults"][key] for key in PATHS if key in cfg["defaults"]}


@pytest.mark.parametrize("scenario", sorted(p.parent.name for p in REPO.glob("molecule/*/molecule.yml")))
def test_scenarios_use_the_repositorys_plugin_paths(scenario):
    defaults = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())["provisioner"][
        "config_options"
    ]["defaults"]
    for key, path in repo_paths().items():
        assert defaults.get(key) == "${MOLECULE_PROJECT_DIRECTORY}/" + path, (scenario, key)
    assert set(repo_paths()) == set(PATHS)

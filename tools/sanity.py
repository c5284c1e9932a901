"""Run ``ansible-test sanity`` over library/ and plugins/ (``make sanity``, part of ``make lint``).

ansible-test only tests collections, so this assembles a throwaway one in a temporary directory,
``ansible_collections/three_instance/lms``:

* ``library/*.py`` becomes ``plugins/modules/``; ``plugins/<type>/*.py`` and their packages
  (``plugins/module_utils/backup/``) are copied as they are;
* imports of our own module_utils, ``ansible.module_utils.<ours>`` (the repo finds them through
  ansible.cfg's ``module_utils`` path), become ``ansible_collections.three_instance.lms.plugins
  .module_utils.<ours>``, our packages' submodules too (``backup.create``); in the documentation
  our doc fragments (``lms_site``) and module references (``M(lms_facts)``,
  ``RV(lms_facts#module:lms)``, ``seealso: - module: lms_facts``) get the collection's prefix,
  ``three_instance.lms.``, and the authors, who have no GitHub handle, Galaxy's ``(!UNKNOWN)``;
* ``tests/sanity/ignore.txt`` (each entry with its reason) becomes the tree's
  ``tests/sanity/ignore-<ansible-core X.Y>.txt``, without its comment lines;
* the collections a plugin imports (containers.podman) are linked next to it from the ``ansible``
  package installed with ansible-test.

ansible-test bootstraps pip in its virtual environments with a get-pip.py it downloads from
ci-files.testing.ansible.com; tools/ansible_test_get_pip.py stands in for it (only PyPI needs to
be reachable) and is put in ansible-test's cache under the name ansible-test looks for.

    python tools/sanity.py [--keep] [ansible-test sanity options ...]

Options other than ``--keep`` (leave the tree behind and print its path) go to
``ansible-test sanity``, which runs with ``--local`` in the collection's root.
"""

from __future__ import annotations

import filecmp
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMESPACE, NAME = "three_instance", "lms"
COLLECTION = f"{NAMESPACE}.{NAME}"
PLUGIN_TYPES = ("module_utils", "doc_fragments", "filter", "inventory", "lookup", "connection")
GET_PIP = REPO / "tools" / "ansible_test_get_pip.py"
IGNORES = REPO / "tests" / "sanity" / "ignore.txt"
DEPENDENCIES = ("containers.podman",)  # collections our plugins import (plugins/connection)


def pip_version() -> str:
    """The pip version ansible-test bootstraps into its virtual environments (24.2 for 2.19)."""
    from ansible_test._internal.python_requirements import get_venv_packages

    return get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"]


def install_get_pip() -> None:
    """Put the get-pip.py stand-in where ansible-test looks for its cached download."""
    cache = Path.home() / ".ansible" / "test" / "cache"
    target = cache / f"get_pip_{pip_version().replace('.', '_')}.py"
    if not (target.exists() and filecmp.cmp(GET_PIP, target, shallow=False)):
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GET_PIP, target)


def python_files(source: Path) -> list[Path]:
    """The ``.py`` files of a plugin folder: its own and its packages' (folders with ``__init__.py``)."""
    files = sorted(source.glob("*.py"))
    for init in sorted(source.glob("*/__init__.py")):
        files += python_files(init.parent)
    return files


def top_names(source: Path) -> list[str]:
    """What a plugin folder offers to import: its modules and its packages."""
    return sorted(
        [path.stem for path in source.glob("*.py")] + [p.parent.name for p in source.glob("*/__init__.py")]
    )


def rewrite(text: str, names: dict[str, list[str]]) -> str:
    """Our module_utils, doc fragments and modules under their names in the collection."""
    utils, fragments, modules = (
        "|".join(names[kind]) for kind in ("module_utils", "doc_fragments", "modules")
    )
    text = re.sub(
        rf"\bansible\.module_utils\.({utils})\b",
        rf"ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils.\1",
        text,
    )
    # list items of extends_documentation_fragment, e.g. "  - lms_site"
    text = re.sub(rf"^(\s*-\s*)({fragments})\s*$", rf"\1{COLLECTION}.\2", text, flags=re.MULTILINE)
    # seealso entries ("  - module: lms_facts") and markup (M(lms_facts))
    text = re.sub(rf"^(\s*-\s*module:\s*)({modules})\s*$", rf"\1{COLLECTION}.\2", text, flags=re.MULTILINE)
    text = re.sub(rf"\bM\(({modules})\)", rf"M({COLLECTION}.\1)", text)
    text = re.sub(rf"\b(O|OV|RV)\(({modules})#", rf"\1({COLLECTION}.\2#", text)
    return re.sub(
        r"^(author:\s*|\s*-\s*)(three-instance (?:contributors|engineers))\s*$",
        r"\1\2 (!UNKNOWN)",
        text,
        flags=re.MULTILINE,
    )


def assemble(root: Path) -> Path:
    """Build the collection under ``root``; returns the collection's directory."""
    collection = root / "ansible_collections" / NAMESPACE / NAME
    sources = {"modules": REPO / "library", **{kind: REPO / "plugins" / kind for kind in PLUGIN_TYPES}}
    names = {kind: top_names(source) for kind, source in sources.items()}
    for kind, source in sources.items():
        target = collection / "plugins" / kind
        target.mkdir(parents=True)
        for path in python_files(source):
            text = path.read_text(encoding="utf-8")
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(rewrite(text, names), encoding="utf-8")
    (collection / "galaxy.yml").write_text(
        f"namespace: {NAMESPACE}\nname: {NAME}\nversion: 1.0.0\nreadme: README.md\n"
        "authors: [three-instance]\n",
        encoding="utf-8",
    )
    (collection / "README.md").write_text("three-instance's modules and plugins, for ansible-test.\n")
    (collection / "meta").mkdir()
    (collection / "meta" / "runtime.yml").write_text("---\nrequires_ansible: '>=2.19.0'\n", encoding="utf-8")
    if IGNORES.exists():
        from ansible.release import __version__

        version = ".".join(__version__.split(".")[:2])
        # ansible-test refuses lines that are only a comment
        lines = IGNORES.read_text(encoding="utf-8").splitlines()
        lines = [line for line in lines if line.split("#")[0].strip()]
        (collection / "tests" / "sanity").mkdir(parents=True)
        (collection / "tests" / "sanity" / f"ignore-{version}.txt").write_text("\n".join(lines) + "\n")
    for dependency in DEPENDENCIES:
        namespace, name = dependency.split(".")
        installed = importlib.import_module(f"ansible_collections.{namespace}.{name}").__path__[0]
        (root / "ansible_collections" / namespace).mkdir(exist_ok=True)
        (root / "ansible_collections" / namespace / name).symlink_to(installed)
    return collection


def main(argv: list[str]) -> int:
    keep = "--keep" in argv
    args = [arg for arg in argv if arg != "--keep"]
    install_get_pip()
    root = Path(tempfile.mkdtemp(prefix="three-instance-sanity-"))
    try:
        collection = assemble(root)
        if keep:
            print(f"collection tree: {collection}", flush=True)
        ansible_test = shutil.which("ansible-test") or "ansible-test"
        command = [ansible_test, "sanity", "--local", *args]
        # the repo's ansible.cfg (exported by the Makefile) would add library/ and plugins/ again
        env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
        return subprocess.run(command, cwd=collection, env=env, check=False).returncode
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Checks of the module code on a managed host's Python, standard library only (no pytest there).

    python3 tests/unit/host_python_check.py

Run by test_host_pythons.py under Debian 12's /usr/bin/python3 (3.11.2) and pyenv's 3.9 and 3.10
(RHEL 9, Ubuntu 22.04) when they exist. It

1. byte-compiles and imports every plugins/module_utils/**/*.py and library/*.py (the modules as
   AnsiballZ would: ``ansible.module_utils.<name>`` is the repo's file or package; without Ansible,
   ``ansible.module_utils.basic`` is a stand-in);
2. runs safe_tar's hostile-archive checks (safe_tar_cases.py) with the checked member walk, and
   with tarfile.data_filter when this Python has it;
3. runs a few pure functions whose code differs by Python version (time zones, ISO times).

The only things allowed to be missing are third-party libraries: boto3/botocore, which s3_store
imports optionally (HAS_BOTO3), and PyYAML, which estate imports and which is only used on the
controller (a stand-in is installed when it is absent). A syntax error, a missing standard
library name or a failed check exits non-zero, naming the file.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile
import traceback
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
LIBRARY = os.path.join(REPO, "library")
sys.path[:0] = [MODULE_UTILS, HERE]
# Third-party libraries the module code imports optionally: their absence is no failure.
OPTIONAL = {"boto3", "botocore"}


class RepoModuleUtils(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``ansible.module_utils.<name>`` is the repo's plugins/module_utils/<name>.py, or its package
    <name>/ (one module object under both names, as in tests/conftest.py)."""

    PREFIX = "ansible.module_utils."

    def find_spec(self, fullname, path, target=None):
        if fullname.startswith(self.PREFIX):
            where = os.path.join(MODULE_UTILS, *fullname[len(self.PREFIX) :].split("."))
            if os.path.exists(where + ".py") or os.path.exists(os.path.join(where, "__init__.py")):
                return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(spec.name[len(self.PREFIX) :])

    def exec_module(self, module):
        pass


def _stand_in(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__path__ = []  # a package, so that submodules can be stood in too
    sys.modules[name] = module
    return module


def install_stand_ins() -> list[str]:
    """Ansible and PyYAML when this Python lacks them; returns what was stood in."""
    stood_in = []
    sys.meta_path.insert(0, RepoModuleUtils())
    if importlib.util.find_spec("ansible") is None:

        class AnsibleModule:
            def __init__(self, *args, **kwargs):
                raise RuntimeError("stand-in AnsibleModule: modules are imported, not run, here")

        ansible = _stand_in("ansible")
        ansible.module_utils = _stand_in("ansible.module_utils")
        ansible.module_utils.basic = _stand_in(
            "ansible.module_utils.basic",
            AnsibleModule=AnsibleModule,
            missing_required_lib=lambda library, **kwargs: f"{library} is required",
        )
        stood_in.append("ansible")
    if importlib.util.find_spec("yaml") is None:

        class YAMLError(Exception):
            pass

        def unavailable(*args, **kwargs):
            raise RuntimeError("PyYAML is not installed for this Python (stand-in)")

        # estate.py: ``from yaml import CSafeLoader`` (ImportError: falls back), SafeLoader, nodes.
        _stand_in(
            "yaml",
            SafeLoader=type("SafeLoader", (), {"__init__": unavailable}),
            YAMLError=YAMLError,
            MappingNode=type("MappingNode", (), {}),
            ScalarNode=type("ScalarNode", (), {}),
            SequenceNode=type("SequenceNode", (), {}),
            compose=unavailable,
            safe_load=unavailable,
            safe_dump=unavailable,
        )
        stood_in.append("yaml")
    return stood_in


def _py_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py"))


def _module_utils() -> dict[str, str]:
    """``{dotted name: path}`` of plugins/module_utils: its files and its packages' (``backup.create``)."""
    found = {}
    for root, dirs, files in os.walk(MODULE_UTILS):
        dirs[:] = sorted(d for d in dirs if os.path.exists(os.path.join(root, d, "__init__.py")))
        package = [] if root == MODULE_UTILS else os.path.relpath(root, MODULE_UTILS).split(os.sep)
        for name in sorted(files):
            if name.endswith(".py"):
                found[".".join(package + ([] if name == "__init__.py" else [name[:-3]]))] = os.path.join(
                    root, name
                )
    return found


def compile_all() -> None:
    for path in list(_module_utils().values()) + _py_files(LIBRARY):
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # invalid escapes and the like count too
            compile(source, path, "exec", dont_inherit=True)


def import_all() -> None:
    for name in _module_utils():
        try:
            importlib.import_module("ansible.module_utils." + name)
        except ImportError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL:
                raise
    for path in _py_files(LIBRARY):
        name = "library_" + os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # defines main() and its helpers; main() is not run
        assert callable(getattr(module, "main", None)), f"{path} has no main()"
        assert module.DOCUMENTATION, f"{path} has no DOCUMENTATION"


def check_safe_tar() -> list[str]:
    import safe_tar
    import safe_tar_cases as cases

    ways = [False] + ([True] if safe_tar.has_data_filter() else [])
    for native in ways:

        def extract(archive, dest, native=native):
            safe_tar.extract_file(archive, dest, native=native)

        for case in cases.HOSTILE:
            with tempfile.TemporaryDirectory() as tmp:
                cases.check_hostile(case, tmp, extract, safe_tar.UnsafeArchiveError)
        with tempfile.TemporaryDirectory() as tmp:
            cases.check_modes(tmp, extract)
        with tempfile.TemporaryDirectory() as tmp:
            cases.check_benign(tmp, extract)
    # What restores run (Debian 12's 3.11.2 failed here with "unexpected keyword argument 'filter'").
    from backup.format import BackupError
    from backup.restore import extract_dataroot

    owner = (os.geteuid(), os.getegid())
    with tempfile.TemporaryDirectory() as tmp:
        cases.check_benign(tmp, lambda archive, dest: extract_dataroot(archive, dest, owner))
    with tempfile.TemporaryDirectory() as tmp:
        cases.check_hostile("hard link out", tmp, lambda a, d: extract_dataroot(a, d, owner), BackupError)
    # The checks are real: a plain extractall fails them.
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cases.check_modes(tmp, cases.plain_extract)
        except AssertionError:
            pass
        else:
            raise AssertionError("check_modes passed a plain extractall")
    return ["data_filter" if way else "walk" for way in ways]


def check_version_sensitive_code() -> None:
    import change_window
    import moodle_cli
    import sanitise
    from backup.format import id_time, now_id

    result = change_window.check(
        "acme-live", ["sun 02:00-04:00 Europe/London"], at="2026-11-29T02:30:00Z", tier="live"
    )
    assert result["open"] and result["allowed"], result
    assert result["at"] == "2026-11-29T02:30:00+00:00", result["at"]
    closed = change_window.check(
        "acme-live", {"days": ["sun"], "start": "02:00", "end": "04:00"}, at="2026-11-30"
    )
    assert not closed["allowed"] and closed["next_open"] == "2026-12-06T02:00:00+00:00", closed
    stamp = now_id()
    assert id_time(stamp).tzinfo is not None
    assert id_time("20261126T031500Z").isoformat() == "2026-11-26T03:15:00+00:00"
    assert moodle_cli.to_setting(True) == "1"
    for bad in ([1], {"a": 1}):
        try:
            moodle_cli.to_setting(bad)
        except moodle_cli.MoodleError:
            pass
        else:
            raise AssertionError(f"to_setting({bad!r}) was accepted")
    assert sanitise._setting_value(False) == "0"


def main() -> int:
    version = sys.version.split()[0]
    steps = [
        ("stand-ins", install_stand_ins),
        ("byte-compile plugins/module_utils, library", compile_all),
        ("import plugins/module_utils, library", import_all),
        ("safe_tar hostile archives", check_safe_tar),
        ("version-sensitive functions", check_version_sensitive_code),
    ]
    for label, step in steps:
        try:
            detail = step()
        except Exception:
            print(f"Python {version} ({sys.executable}): FAILED: {label}", file=sys.stderr)
            traceback.print_exc()
            return 1
        print(f"Python {version}: ok: {label}" + (f" ({', '.join(detail)})" if detail else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

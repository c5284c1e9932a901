"""Unit tests of plugins/module_utils/release.py: manifest validation, component placement, the
deterministic bundle and the folder store (a small fake core tree; the real S3 API and a real Moodle
tree are in tests/integration/test_release_store.py)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import release as rel

PLUGINS = REPO / "tests" / "fixtures" / "plugins"
COMPONENTS_51 = {
    "plugintypes": {
        "mod": "public/mod",
        "local": "public/local",
        "theme": "public/theme",
        "tool": "public/admin/tool",
    },
    "subsystems": {},
}


@pytest.fixture
def core(tmp_path: Path) -> Path:
    """A fake Moodle 5.1 tree: root lib/components.json with public/ paths, public/version.php."""
    root = tmp_path / "core"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "components.json").write_text(json.dumps(COMPONENTS_51))
    (root / "public" / "mod" / "forum").mkdir(parents=True)
    (root / "public" / "mod" / "forum" / "version.php").write_text("<?php $plugin->version = 1;")
    (root / "public" / "version.php").write_text(
        "<?php\n$version  = 2025100600.02;\n$release  = '5.1+';\n$branch = '501';\n"
    )
    (root / "admin" / "cli").mkdir(parents=True)
    (root / "admin" / "cli" / "upgrade.php").write_text("<?php")
    (root / "admin" / "cli" / "upgrade.php").chmod(0o755)
    (root / "config.php").write_text("<?php // someone's config: never shipped")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: x")
    return root


def manifest(tree: Path, **extra) -> dict:
    return {"release": "acme-r1", "flavour": "moodle", "core": {"dir": str(tree)}, **extra}


# ----- validation ---------------------------------------------------------------------------------


def test_valid_manifest_is_normalised(core: Path):
    out = rel.validate_manifest(
        manifest(core, plugins=[{"component": "local_tidemo", "dir": str(PLUGINS / "local_tidemo-1.0")}])
    )
    assert out["core"] == {"type": "dir", "path": str(core)}
    assert out["plugins"][0]["component"] == "local_tidemo"


def test_every_problem_is_listed_with_its_field(tmp_path: Path):
    with pytest.raises(rel.ReleaseError) as err:
        rel.validate_manifest(
            {
                "release": "bad id!",
                "flavour": "blackboard",
                "core": {"archive": "missing.tgz"},
                "plugins": [
                    {"component": "Mod-X", "git": "https://example.invalid/x.git"},
                    {"dir": "nowhere"},
                ],
                "theme": {"component": "local_x", "dir": str(tmp_path)},
                "colour": "blue",
            },
            str(tmp_path),
        )
    text = str(err.value)
    for expected in (
        "release: 'bad id!' is not a release id",
        "flavour: 'blackboard'",
        "core.sha256: an archive needs its sha256",
        "core.archive: ",
        "plugins[0].component: 'Mod-X'",
        "plugins[0].ref: a git source needs a ref",
        "plugins[1].dir: ",
        "plugins[1].component: None",
        "theme.component: 'local_x' must be a theme_* component",
        "unknown keys ['colour']",
    ):
        assert expected in text, expected


def test_a_source_needs_exactly_one_kind(core: Path):
    with pytest.raises(rel.ReleaseError, match=r"core: needs exactly one of dir, archive, git"):
        rel.validate_manifest(manifest(core, core={"dir": str(core), "git": "x", "ref": "y"}))


def test_environment_variables_in_paths(core: Path, monkeypatch):
    monkeypatch.setenv("TI_CORE", str(core))
    assert rel.validate_manifest(manifest(core, core={"dir": "${TI_CORE}"}))["core"]["path"] == str(core)
    monkeypatch.delenv("TI_CORE")
    with pytest.raises(rel.ReleaseError, match=r"core.dir: variable TI_CORE is not set"):
        rel.validate_manifest(manifest(core, core={"dir": "${TI_CORE}"}))
    given = rel.validate_manifest(
        manifest(core, core={"dir": "${TI_CORE}"}), variables={"TI_CORE": str(core)}
    )
    assert given["core"]["path"] == str(core)


def test_duplicate_component_is_refused(core: Path):
    plugin = {"component": "local_tidemo", "dir": str(PLUGINS / "local_tidemo-1.0")}
    with pytest.raises(rel.ReleaseError, match=r"plugins\[1\].component: local_tidemo is listed twice"):
        rel.validate_manifest(manifest(core, plugins=[plugin, plugin]))


def test_load_manifest_names_the_file(tmp_path: Path):
    path = tmp_path / "r.yml"
    path.write_text("release: [unclosed")
    with pytest.raises(rel.ReleaseError, match=f"{path} is not valid YAML"):
        rel.load_manifest(str(path))


# ----- placement by Moodle's component rules ------------------------------------------------------


def test_plugin_types_come_from_components_json(core: Path):
    types = rel.plugin_types(str(core))
    assert rel.plugin_target("mod_attendance", types) == "public/mod/attendance"
    assert rel.plugin_target("tool_x", types) == "public/admin/tool/x"
    with pytest.raises(rel.ReleaseError, match="plugin type 'block' is not known to this core"):
        rel.plugin_target("block_x", types)


def test_totara_paths_are_relative_to_server(tmp_path: Path):
    (tmp_path / "server" / "lib").mkdir(parents=True)
    (tmp_path / "server" / "lib" / "components.json").write_text(json.dumps({"plugintypes": {"mod": "mod"}}))
    assert rel.plugin_target("mod_x", rel.plugin_types(str(tmp_path))) == "server/mod/x"


def test_real_moodle_51_rules(moodle_src):
    if not moodle_src.is_dir():
        pytest.skip(f"MOODLE_SRC {moodle_src} is an archive; this test reads a tree")
    assert rel.plugin_target("mod_attendance", rel.plugin_types(moodle_src)) == "public/mod/attendance"


# ----- the bundle --------------------------------------------------------------------------------


def build(core: Path, tmp_path: Path, out: str, **extra) -> dict:
    return rel.build(
        rel.validate_manifest(manifest(core, **extra)), str(tmp_path / out), str(tmp_path / "cache")
    )


def test_same_manifest_same_sha256(core: Path, tmp_path: Path):
    plugins = [{"component": "local_tidemo", "dir": str(PLUGINS / "local_tidemo-1.0")}]
    first = build(core, tmp_path, "a", plugins=plugins)
    os.utime(core / "public" / "version.php", (1, 1))  # touching files changes nothing
    second = build(core, tmp_path, "b", plugins=plugins)
    assert first["sha256"] == second["sha256"] == rel.sha256_file(second["bundle"])
    changed = build(
        core,
        tmp_path,
        "c",
        plugins=[{"component": "local_tidemo", "dir": str(PLUGINS / "local_tidemo-1.0.1")}],
    )
    assert changed["sha256"] != first["sha256"]


def test_bundle_content(core: Path, tmp_path: Path):
    built = build(
        core, tmp_path, "a", plugins=[{"component": "local_tidemo", "dir": str(PLUGINS / "local_tidemo-1.0")}]
    )
    with tarfile.open(built["bundle"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        carried = json.load(tar.extractfile(rel.MANIFEST_MEMBER))
    assert "public/local/tidemo/version.php" in members  # placed by components.json
    assert "config.php" not in members and not any(".git" in name.split("/") for name in members)
    assert all(m.mtime == rel.BUNDLE_MTIME and m.uid == 0 and m.uname == "" for m in members.values())
    assert members["admin/cli/upgrade.php"].mode == 0o755
    assert members["public/version.php"].mode == 0o644
    names = list(members)
    assert names[-1] == rel.MANIFEST_MEMBER and names[:-1] == sorted(names[:-1])
    assert carried["core"]["version"] == "2025100600.02"
    assert carried["plugins"] == [
        {
            "component": "local_tidemo",
            "path": "public/local/tidemo",
            "source": {"type": "dir"},
            "version": "2026010100",
            "release": "1.0",
        }
    ]
    assert rel.read_bundle_manifest(built["bundle"]) == carried


def test_plugin_folder_must_match_its_component(core: Path, tmp_path: Path):
    with pytest.raises(rel.ReleaseError, match="is local_tidemo, the manifest says local_other"):
        build(
            core,
            tmp_path,
            "a",
            plugins=[{"component": "local_other", "dir": str(PLUGINS / "local_tidemo-1.0")}],
        )


def test_archive_source_checked_and_unwrapped(core: Path, tmp_path: Path):
    archive = tmp_path / "tidemo.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(PLUGINS / "local_tidemo-1.0", arcname="tidemo")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    built = build(
        core, tmp_path, "a", plugins=[{"component": "local_tidemo", "archive": str(archive), "sha256": sha}]
    )
    assert built["manifest"]["plugins"][0]["source"] == {"type": "archive", "sha256": sha}
    with pytest.raises(rel.ReleaseError, match=r"has sha256 .* the manifest says 0000"):
        rel.build(
            rel.validate_manifest(
                manifest(
                    core, plugins=[{"component": "local_tidemo", "archive": str(archive), "sha256": "0" * 64}]
                )
            ),
            str(tmp_path / "b"),
            str(tmp_path / "cache2"),
        )


# ----- the folder store --------------------------------------------------------------------------


def test_store_publish_fetch_and_refusals(core: Path, tmp_path: Path):
    store = rel.DirStore(str(tmp_path / "store"))
    built = build(core, tmp_path, "a")
    assert rel.publish(store, "acme-r1", built["bundle"], built["manifest"], built["sha256"]) is True
    assert rel.publish(store, "acme-r1", built["bundle"], built["manifest"], built["sha256"]) is False
    with pytest.raises(rel.ReleaseError, match=r"already exists .* give the changed release a new id"):
        rel.publish(store, "acme-r1", built["bundle"], built["manifest"], "f" * 64)

    fetched = rel.fetch_verified(store, "acme-r1", str(tmp_path / "fetched"), built["sha256"])
    assert fetched["sha256"] == built["sha256"] and fetched["downloaded"] is True
    assert rel.fetch_verified(store, "acme-r1", str(tmp_path / "fetched"))["downloaded"] is False

    with pytest.raises(rel.ReleaseError, match="release acme-r9 is not in the release store"):
        rel.fetch_verified(store, "acme-r9", str(tmp_path / "fetched"))
    with pytest.raises(rel.ReleaseError, match="expected eeee"):
        rel.fetch_verified(store, "acme-r1", str(tmp_path / "fetched"), "e" * 64)

    # Bytes changed in the store behind its checksum: refused, nothing kept.
    (tmp_path / "store" / "acme-r1.tar.gz").write_bytes(b"tampered")
    with pytest.raises(rel.ReleaseError, match="bad checksum"):
        rel.fetch_verified(store, "acme-r1", str(tmp_path / "other"))
    assert not list((tmp_path / "other").iterdir())


# ----- the core branch a manifest pins -------------------------------------------------------------


def test_branch_name_from_version_php():
    assert rel.branch_name("501") == "5.1"
    assert rel.branch_name("405") == "4.5"
    assert rel.branch_name("1000") == "10.0"
    assert rel.branch_name(None) == ""


@pytest.mark.parametrize("branch", ["5.1x", "5.1\n", 5.1, "../5.1", "", "5.1.2"])
def test_malformed_branch_is_refused(core: Path, branch):
    with pytest.raises(rel.ReleaseError, match=r"branch: .* is not a core branch"):
        rel.validate_manifest(manifest(core, branch=branch))


def test_pinned_branch_must_match_the_tree(core: Path, tmp_path: Path):
    assert build(core, tmp_path, "ok", branch="5.1")["manifest"]["branch"] == "5.1"
    with pytest.raises(rel.ReleaseError, match=r"is moodle 5\.1 \(5\.1\+\), the manifest pins branch 4\.5"):
        build(core, tmp_path, "bad", branch="4.5")
    assert not (tmp_path / "bad" / "acme-r1.tar.gz").exists()


# ----- input that must not pass (issue 17, item 11) ------------------------------------------------------


@pytest.mark.parametrize("release", ["acme-r1\n", "acme-r1\r\n", "-r1", ""])
def test_release_id_is_matched_whole(core: Path, tmp_path: Path, release):
    with pytest.raises(rel.ReleaseError, match="is not a release id"):
        rel.validate_manifest(manifest(core, release=release))
    with pytest.raises(rel.ReleaseError, match="is not a release id"):
        rel.fetch_verified(rel.DirStore(str(tmp_path / "store")), release, str(tmp_path / "f"))


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"git": "--upload-pack=touch /tmp/pwned", "ref": "main"}, "core.git"),
        ({"git": "-uhttps://example.org/x.git", "ref": "main"}, "core.git"),
        ({"git": "https://example.org/moodle.git", "ref": "--orphan=x"}, "core.ref"),
        ({"git": "https://example.org/moodle.git", "ref": "-b"}, "core.ref"),
    ],
)
def test_git_url_or_ref_that_is_an_option_is_refused(tmp_path: Path, source, field):
    with pytest.raises(rel.ReleaseError, match=f"{field}: .*must not start with '-'"):
        rel.validate_manifest({"release": "r1", "flavour": "moodle", "core": source})


def test_git_commands_end_their_options(tmp_path: Path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            os.makedirs(os.path.join(cmd[-1], ".git"))
        return rel.subprocess.CompletedProcess(cmd, 0, stdout="0" * 40 + "\n", stderr="")

    monkeypatch.setattr(rel.subprocess, "run", fake_run)
    source = {"type": "git", "url": "https://example.org/moodle.git", "ref": "v5.1.0"}
    rel.resolve_source(source, "core", str(tmp_path / "cache"))
    clone = calls[0]
    assert clone[:2] == ["git", "clone"] and clone[-3] == "--" and clone[-2] == source["url"]
    checkout = next(c for c in calls if "checkout" in c)
    assert checkout[-2:] == ["v5.1.0", "--"]  # a revision, never a path or an option
    # resolve_source refuses an option even when the manifest was not validated first
    calls.clear()
    with pytest.raises(rel.ReleaseError, match="must not start with '-'"):
        rel.resolve_source({**source, "ref": "--detach"}, "core", str(tmp_path / "cache2"))
    with pytest.raises(rel.ReleaseError, match="must not start with '-'"):
        rel.resolve_source({**source, "url": "--template=/tmp"}, "core", str(tmp_path / "cache3"))
    assert calls == []


def test_url_sources_are_downloaded_over_http_and_errors_name_the_url(tmp_path):
    """A manifest's `url` source: fetched with Ansible's open_url; a missing file is a ReleaseError."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "core.tar.gz").write_bytes(b"bytes of a core")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        rel._download(f"{base}/core.tar.gz", str(tmp_path / "got"))
        assert (tmp_path / "got").read_bytes() == b"bytes of a core"
        with pytest.raises(
            rel.ReleaseError, match=r"cannot download http://127\.0\.0\.1:\d+/absent\.tar\.gz"
        ):
            rel._download(f"{base}/absent.tar.gz", str(tmp_path / "absent"))
    finally:
        server.shutdown()

"""tools/moodle_source.py: the one rule for where Moodle comes from (MOODLE_SRC, the cache, the
pinned download), with a local HTTP server standing in for download.moodle.org."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import moodle_source as src
import pytest

TOOL = Path(src.__file__)

V45 = "$version  = 2024100705.01;\n$release  = '4.5.5+ (Build: 20250613)';\n$branch   = '405';\n"
V51 = "$version  = 2025100600.02;\n$release  = '5.1+ (Build: 20251017)';\n$branch   = '501';\n"


def make_tree(path: Path, version_php: str = V45, layout: str = "root") -> Path:
    """A tiny Moodle-shaped tree: version.php (where ``layout`` puts it), admin/cli, lib/setup.php."""
    web = path / layout if layout in ("public", "server") else path
    for rel in ("admin/cli/install_database.php", "lib/setup.php", "index.php"):
        (web / rel).parent.mkdir(parents=True, exist_ok=True)
        (web / rel).write_text("<?php\n")
    (web / "version.php").write_text("<?php\ndefined('MOODLE_INTERNAL') || die();\n" + version_php)
    (web / "mod" / "forum").mkdir(parents=True)
    (web / "mod" / "forum" / "version.php").write_text("<?php\n$plugin->version = 2024100700;\n")
    return path


def make_tarball(tmp: Path, version_php: str = V45, layout: str = "root", name: str = "moodle") -> bytes:
    """The bytes of a .tgz holding ``moodle/`` like the official ones."""
    tree = make_tree(tmp / "src" / name, version_php, layout)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tree, arcname=name)
    return buf.getvalue()


class Mirror:
    """download.moodle.org on 127.0.0.1: serves ``payload`` at any path; counts requests."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests = 0
        self.short = False  # send half of the body with the full Content-Length, then close
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(mirror.payload)))
                self.end_headers()
                body = mirror.payload[: len(mirror.payload) // 2] if mirror.short else mirror.payload
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tarball(tmp_path):
    return make_tarball(tmp_path)


@pytest.fixture
def mirror(tarball):
    m = Mirror(tarball)
    yield m
    m.close()


def downloads_file(tmp_path: Path, sha256: str | None, subdir: str = "", branch: str = "4.5") -> Path:
    path = tmp_path / "downloads.json"
    entry = {
        "version": "4.5.5",
        "file": "stable405/moodle-4.5.5.tgz",
        "sha256": sha256,
        "cache_subdir": subdir,
    }
    path.write_text(
        json.dumps({"base_url": "https://download.invalid/", "default": branch, "releases": {branch: entry}})
    )
    return path


def env_for(cache: Path, mirror: Mirror | None = None, data: Path | None = None, **extra) -> dict:
    env = {"THREE_INSTANCE_CACHE": str(cache), **extra}
    if mirror is not None:
        env["THREE_INSTANCE_MOODLE_URL"] = mirror.url
    if data is not None:
        env["THREE_INSTANCE_MOODLE_DOWNLOADS"] = str(data)
    return env


def cache_listing(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


# --- the download ------------------------------------------------------------------------------------


def test_download_is_verified_unpacked_and_cached_once(tmp_path, mirror, tarball):
    cache = tmp_path / "cache"
    env = env_for(cache, mirror, downloads_file(tmp_path, hashlib.sha256(tarball).hexdigest()))

    first = src.resolve(environ=env)
    assert first["origin"] == "download"
    assert first["path"] == str(cache / "moodle-4.5.5")
    assert (first["type"], first["version"], first["branch"], first["layout"], first["flavour"]) == (
        "dir",
        "2024100705.01",
        "4.5",
        "root",
        "moodle",
    )
    assert first["release"].startswith("4.5.5+")
    assert (cache / "moodle-4.5.5" / "admin" / "cli").is_dir()
    assert [p.name for p in cache.iterdir()] == ["moodle-4.5.5"]  # no temp file or folder left
    assert mirror.requests == 1

    second = src.resolve(environ=env)
    assert second["origin"] == "cache"
    assert second["path"] == first["path"]
    assert mirror.requests == 1  # no second HTTP request


def test_a_branch_download_goes_to_its_cache_subfolder(tmp_path, mirror, tarball):
    cache = tmp_path / "cache"
    data = downloads_file(tmp_path, hashlib.sha256(tarball).hexdigest(), subdir="upgrade-from")
    env = env_for(cache, mirror, data)

    got = src.resolve("4.5", environ=env)
    assert (got["origin"], got["path"]) == ("download", str(cache / "upgrade-from" / "moodle-4.5.5"))
    again = src.resolve("4.5", environ=env)
    assert (again["origin"], again["path"]) == ("cache", got["path"])
    assert mirror.requests == 1
    # without a branch only <cache>/moodle* counts, so the upgrade-from tree is not "the" source
    assert src.resolve(environ={**env, "THREE_INSTANCE_MOODLE_DOWNLOAD": "0"})["path"] == ""


def test_a_tampered_tarball_is_refused_and_nothing_is_cached(tmp_path, mirror):
    cache = tmp_path / "cache"
    env = env_for(cache, mirror, downloads_file(tmp_path, hashlib.sha256(b"the real one").hexdigest()))

    got = src.resolve(environ=env)
    assert got["path"] == ""
    assert "checksum mismatch" in got["message"]
    assert mirror.requests == 1
    assert cache_listing(cache) == []


def test_an_interrupted_download_is_refused_and_nothing_is_cached(tmp_path, mirror, tarball):
    cache = tmp_path / "cache"
    mirror.short = True
    env = env_for(cache, mirror, downloads_file(tmp_path, hashlib.sha256(tarball).hexdigest()))

    got = src.resolve(environ=env)
    assert got["path"] == ""
    assert "interrupted" in got["message"]
    assert f"of {len(tarball)} bytes" in got["message"]
    assert cache_listing(cache) == []


def test_no_pinned_checksum_means_no_download(tmp_path, mirror):
    cache = tmp_path / "cache"
    got = src.resolve(environ=env_for(cache, mirror, downloads_file(tmp_path, None)))
    assert got["path"] == ""
    assert "no pinned checksum for" in got["message"]
    assert mirror.requests == 0
    assert cache_listing(cache) == []


def test_no_network_fails_fast_with_one_line(tmp_path):
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    env = env_for(
        cache, data=downloads_file(tmp_path, "0" * 64), THREE_INSTANCE_MOODLE_URL=f"http://127.0.0.1:{port}/"
    )
    start = time.monotonic()
    got = src.resolve(environ=env)
    assert time.monotonic() - start < src.TIMEOUT
    assert got["path"] == ""
    url = f"http://127.0.0.1:{port}/stable405/moodle-4.5.5.tgz"
    assert got["warnings"] == [f"download of {url} failed: [Errno 111] Connection refused"]
    assert cache_listing(cache) == []


def test_the_shipped_data_file_pins_the_lts_and_the_stable_release():
    data = json.loads(src.DOWNLOADS_FILE.read_text())
    assert set(data["releases"]) >= {"4.5", "5.1"}
    for branch, entry in data["releases"].items():
        plan = src.download_plan(branch, {})
        assert plan["url"].startswith("https://download.moodle.org/download.php/direct/stable")
        assert plan["url"].endswith(f"/moodle-{entry['version']}.tgz")
        assert entry["version"].startswith(branch + ".")
        assert entry["sha256"] is None or len(entry["sha256"]) == 64
    per_branch = {"THREE_INSTANCE_MOODLE_URL_5_1": "http://mirror.invalid/m.tgz"}
    assert src.download_plan("5.1", per_branch)["url"] == "http://mirror.invalid/m.tgz"


# --- MOODLE_SRC and the cache ------------------------------------------------------------------------


def test_moodle_src_as_a_tree_and_as_a_tarball(tmp_path):
    tree = make_tree(tmp_path / "tree", V51, layout="public")
    env = env_for(tmp_path / "empty-cache", MOODLE_SRC=str(tree))
    got = src.resolve(environ=env)
    assert (got["origin"], got["type"], got["path"]) == ("MOODLE_SRC", "dir", str(tree))
    assert (got["branch"], got["layout"], got["version"]) == ("5.1", "public", "2025100600.02")

    archive = tmp_path / "moodle-5.1.tgz"
    archive.write_bytes(make_tarball(tmp_path / "t", V51, layout="public"))
    got = src.resolve(environ={**env, "MOODLE_SRC": str(archive)})
    assert (got["origin"], got["type"], got["path"]) == ("MOODLE_SRC", "archive", str(archive))
    assert (got["branch"], got["layout"], got["release"]) == ("5.1", "public", "5.1+ (Build: 20251017)")


def test_a_wrong_moodle_src_is_bad_input_named_in_the_message(tmp_path):
    with pytest.raises(src.BadSource, match="MOODLE_SRC=/no/such/tree does not exist"):
        src.resolve(environ={"MOODLE_SRC": "/no/such/tree", "THREE_INSTANCE_CACHE": str(tmp_path)})
    (tmp_path / "empty").mkdir()
    with pytest.raises(src.BadSource, match="is not a Moodle tree"):
        src.resolve(environ={"MOODLE_SRC": str(tmp_path / "empty"), "THREE_INSTANCE_CACHE": str(tmp_path)})


def test_a_cache_symlink_is_followed_to_the_real_tree(tmp_path):
    tree = make_tree(tmp_path / "elsewhere" / "moodle-tree")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "moodle-4.5").symlink_to(tree)
    got = src.resolve(environ=env_for(cache))
    assert (got["origin"], got["path"], got["type"]) == ("cache", str(tree.resolve()), "dir")


def test_a_dangling_cache_symlink_gets_a_clear_message(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "moodle-5.1").symlink_to(tmp_path / "gone")
    got = src.resolve(environ=env_for(cache, THREE_INSTANCE_MOODLE_DOWNLOAD="0"))
    assert got["path"] == ""
    assert (
        f"{cache / 'moodle-5.1'} is a symlink to {tmp_path / 'gone'}, which does not exist" in got["message"]
    )

    tree = make_tree(cache / "moodle-6")  # a good entry after it is still found, with the warning
    got = src.resolve(environ=env_for(cache, THREE_INSTANCE_MOODLE_DOWNLOAD="0"))
    assert got["path"] == str(tree)
    assert "does not exist" in got["warnings"][0]


def test_branch_selection_searches_the_cache_then_its_subfolders(tmp_path):
    cache = tmp_path / "cache"
    top51 = make_tree(cache / "moodle-5.1", V51, layout="public")
    old45 = make_tree(cache / "upgrade-from" / "moodle-4.5", V45)
    env = env_for(cache, THREE_INSTANCE_MOODLE_DOWNLOAD="0")

    assert src.resolve(environ=env)["path"] == str(top51)
    assert src.resolve("5.1", environ=env)["path"] == str(top51)
    assert src.resolve("4.5", environ=env)["path"] == str(old45)
    top45 = make_tree(cache / "moodle-x-4.5", V45)  # the first level wins
    assert src.resolve("4.5", environ=env)["path"] == str(top45)
    missing = src.resolve("4.4", environ=env)
    assert missing["path"] == ""
    assert missing["message"].startswith("no Moodle 4.4 source: set MOODLE_SRC")
    # MOODLE_SRC of another branch is skipped for a branch request
    got = src.resolve("4.5", environ={**env, "MOODLE_SRC": str(top51)})
    assert got["path"] == str(top45)
    assert "is branch 5.1, not 4.5" in got["warnings"][0]


def test_no_source_and_no_download_says_how_to_get_one(tmp_path):
    cache = tmp_path / "nothing-here"
    got = src.resolve(environ=env_for(cache, THREE_INSTANCE_MOODLE_DOWNLOAD="0"))
    assert got["path"] == ""
    assert "set MOODLE_SRC to a Moodle tree or tarball" in got["message"]
    assert f"fill {cache}" in got["message"]
    assert "docs/test-hosts.md" in got["message"]
    assert "download disabled" in got["message"]
    assert not cache.exists()


def test_totara_is_recognised(tmp_path):
    php = "$version = 2022110800.00;\n$release = '4.1';\n$branch = '401';\n$TOTARA->version = '17.3';\n"
    got = src.describe(make_tree(tmp_path / "totara", php, layout="server"))
    assert (got["flavour"], got["layout"], got["branch"]) == ("totara", "server", "17")


@pytest.mark.parametrize(("raw", "name"), [("405", "4.5"), ("501", "5.1"), ("311", "3.11"), ("39", "3.9")])
def test_branch_names(raw, name):
    assert src.branch_name(raw) == name


# --- the command line --------------------------------------------------------------------------------


def run_cli(*args, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("MOODLE_SRC",)}
    full.update(env)
    return subprocess.run(
        [sys.executable, str(TOOL), *args], env=full, capture_output=True, text=True, check=False
    )


def test_cli_prints_json_and_rc(tmp_path):
    cache = tmp_path / "cache"
    make_tree(cache / "upgrade-from" / "moodle-4.5", V45)
    out = run_cli("--branch", "4.5", THREE_INSTANCE_CACHE=str(cache), THREE_INSTANCE_MOODLE_DOWNLOAD="0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["path"] == str(cache / "upgrade-from" / "moodle-4.5")

    out = run_cli("--no-download", THREE_INSTANCE_CACHE=str(cache))
    assert out.returncode == 0
    assert json.loads(out.stdout)["path"] == ""

    out = run_cli(THREE_INSTANCE_CACHE=str(cache), MOODLE_SRC=str(tmp_path / "missing"))
    assert out.returncode == 2
    assert json.loads(out.stdout) == {
        "path": "",
        "message": f"MOODLE_SRC={tmp_path / 'missing'} does not exist: set it to a Moodle tree or tarball",
    }

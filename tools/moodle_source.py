#!/usr/bin/env python3
"""Where Moodle comes from: the one rule that tests, playbooks and benchmarks share.

1. ``MOODLE_SRC``: a Moodle tree or a tarball (``.tgz``/``.tar.gz``).
2. The cache folder ``THREE_INSTANCE_CACHE`` (default ``/var/cache/three-instance``): the first
   ``moodle*`` entry by name (a tree, a symlink to one, or a tarball). With ``--branch`` the first
   entry of that branch among ``<cache>/moodle*``, then ``<cache>/*/moodle*`` (``upgrade-from/``).
3. The official release from download.moodle.org pinned in ``files/moodle-downloads.json`` (URL and
   sha256): downloaded into a temp file in the cache, checked against the sha256 *before* it is
   unpacked, unpacked into a temp folder and renamed into the cache (``<cache>/moodle-5.1.6``). A
   wrong checksum or a cut download leaves nothing in the cache.

    tools/moodle_source.py [--branch 4.5|5.1] [--no-download]

prints ``{"path": ..., "type": "dir"|"archive", "origin": "MOODLE_SRC"|"cache"|"download",
"version": ..., "release": ..., "branch": "5.1", "layout": "public"|"server"|"root",
"flavour": "moodle"|"totara"}``, or ``{"path": "", "message": "<how to get one>"}`` (rc 0 both);
rc 2 when the input is wrong (``MOODLE_SRC`` names nothing, or no Moodle).

Environment: ``THREE_INSTANCE_MOODLE_DOWNLOAD=0`` (no download), ``THREE_INSTANCE_MOODLE_URL``
(replaces the base URL of the data file, e.g. a local mirror), ``THREE_INSTANCE_MOODLE_URL_5_1``
(the whole URL for one branch), ``THREE_INSTANCE_MOODLE_DOWNLOADS`` (another data file).
Standard library only: it runs on the controller and inside tests.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

# The same safe extraction as the modules (no absolute names, no "..", no links out, no devices).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "module_utils"))
import safe_tar

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = "/var/cache/three-instance"
DOWNLOADS_FILE = REPO / "files" / "moodle-downloads.json"
TIMEOUT = 10  # seconds: connecting and each read; no network means a quick, clear failure
CHUNK = 1 << 20
LAYOUTS = (("public", "public/version.php"), ("server", "server/version.php"), ("root", "version.php"))
HOW_TO_GET_ONE = (
    "set MOODLE_SRC to a Moodle tree or tarball, or fill {cache} with an official tarball from "
    "download.moodle.org unpacked as {cache}/moodle-<branch> (docs/test-hosts.md, 'Real Moodle')"
)


class BadSource(ValueError):
    """The caller named a source that is not one (rc 2 on the command line)."""


# --- what a tree or tarball is ----------------------------------------------------------------------


def branch_name(raw: str) -> str:
    """Moodle's ``$branch`` ('405', '501', '39', '311') as 'major.minor' ('4.5', '5.1', '3.9', '3.11')."""
    if not raw.isdigit() or len(raw) < 2:
        return raw
    if len(raw) == 2:
        return f"{raw[0]}.{raw[1]}"
    return f"{raw[:-2]}.{int(raw[-2:])}"


def parse_version_php(text: str, layout: str) -> dict:
    """version, release, branch and flavour from the text of a core version.php."""

    def find(pattern: str) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        return match.group(1) if match else ""

    totara = find(r"^\s*\$TOTARA->version\s*=\s*['\"]([^'\"]+)['\"]")
    flavour = "totara" if totara or layout == "server" or "$TOTARA" in text else "moodle"
    branch = branch_name(find(r"^\s*\$branch\s*=\s*['\"]?(\d+)"))
    if flavour == "totara" and totara:
        branch = totara.split(".")[0]
    return {
        "version": find(r"^\s*\$version\s*=\s*([0-9.]+)"),
        "release": find(r"^\s*\$release\s*=\s*['\"]([^'\"]*)['\"]"),
        "branch": branch,
        "layout": layout,
        "flavour": flavour,
    }


def _is_core_version_php(text: str) -> bool:
    return bool(re.search(r"^\s*\$version\s*=", text, re.MULTILINE)) and "$plugin->" not in text


def describe_dir(path: Path) -> dict | None:
    for layout, rel in LAYOUTS:
        version_php = path / rel
        if version_php.is_file():
            text = version_php.read_text(encoding="utf-8", errors="replace")
            if _is_core_version_php(text):
                return {"path": str(path), "type": "dir", **parse_version_php(text, layout)}
    return None


def describe_archive(path: Path) -> dict | None:
    """Peek into a tarball: the core version.php at depth <= 2 (``moodle/public/version.php``)."""
    rank = {layout: i for i, (layout, _) in enumerate(LAYOUTS)}
    best: tuple | None = None
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if not member.isfile() or not parts or parts[-1] != "version.php" or len(parts) > 3:
                    continue
                if len(parts) == 3 and parts[1] not in ("public", "server"):
                    continue
                layout = parts[-2] if len(parts) >= 2 and parts[-2] in ("public", "server") else "root"
                prefix_depth = len(parts) - (2 if layout != "root" else 1)
                key = (prefix_depth, rank[layout])
                if best is not None and key >= best[0]:
                    continue
                handle = tar.extractfile(member)
                text = handle.read(1 << 16).decode("utf-8", "replace") if handle else ""
                if _is_core_version_php(text):
                    best = (key, text, layout)
    except (tarfile.TarError, OSError, EOFError):
        return None
    if best is None:
        return None
    return {"path": str(path), "type": "archive", **parse_version_php(best[1], best[2])}


def describe(path: Path) -> dict | None:
    """What ``path`` holds (a tree or a tarball of Moodle/Totara), or None."""
    if path.is_dir():
        return describe_dir(path)
    if path.is_file():
        return describe_archive(path)
    return None


# --- the three places -------------------------------------------------------------------------------


def _from_env(var: str, environ) -> dict | None:
    raw = environ.get(var, "")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.exists():
        raise BadSource(f"{var}={raw} does not exist: set it to a Moodle tree or tarball")
    info = describe(path.resolve())
    if info is None:
        raise BadSource(
            f"{var}={raw} is not a Moodle tree or tarball (no public/version.php, server/version.php "
            "or version.php with $version)"
        )
    return {**info, "origin": var}


def _cache_entries(folder: Path, warnings: list[str]) -> list[Path]:
    """``moodle*`` in ``folder`` by name, symlinks followed to their real path; dangling ones noted."""
    out = []
    for entry in sorted(folder.glob("moodle*")):
        if entry.is_symlink() and not entry.exists():
            warnings.append(f"{entry} is a symlink to {os.readlink(entry)}, which does not exist")
            continue
        out.append(entry.resolve())
    return out


def _from_cache(cache: Path, branch: str | None, warnings: list[str]) -> dict | None:
    if not cache.is_dir():
        return None
    levels = [_cache_entries(cache, warnings)]
    if branch:  # then one level down, e.g. <cache>/upgrade-from/moodle-4.5
        levels.append(
            [p for sub in sorted(cache.iterdir()) if sub.is_dir() for p in _cache_entries(sub, warnings)]
        )
    for entries in levels:
        for entry in entries:
            info = describe(entry)
            if info is None:
                warnings.append(f"{entry} is not a Moodle tree or tarball: ignored")
            elif branch is None or info["branch"] == branch:
                return {**info, "origin": "cache"}
    return None


# --- the download -----------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """One line that says why nothing was downloaded."""


def load_downloads(environ) -> dict:
    path = Path(environ.get("THREE_INSTANCE_MOODLE_DOWNLOADS") or DOWNLOADS_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def download_plan(branch: str | None, environ) -> dict:
    """URL, sha256 and cache folder of the pinned release for ``branch`` (default: the data file's)."""
    data = load_downloads(environ)
    branch = branch or data["default"]
    entry = data["releases"].get(branch)
    if entry is None:
        raise DownloadError(f"no pinned release for branch {branch} (known: {', '.join(data['releases'])})")
    base = environ.get("THREE_INSTANCE_MOODLE_URL") or data["base_url"]
    url = environ.get(f"THREE_INSTANCE_MOODLE_URL_{branch.replace('.', '_')}") or (
        base.rstrip("/") + "/" + entry["file"].lstrip("/")
    )
    return {
        "branch": branch,
        "url": url,
        "sha256": entry.get("sha256"),
        "name": f"moodle-{entry['version']}",
        "subdir": entry.get("cache_subdir", ""),
    }


def _fetch(url: str, dest, expected: str) -> None:
    """Stream ``url`` into the open file ``dest``; refuse a short body or a wrong sha256."""
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:  # noqa: S310 - http(s) from our data
            length = resp.headers.get("Content-Length")
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                dest.write(chunk)
                got += len(chunk)
    except http.client.IncompleteRead as exc:
        raise DownloadError(f"download of {url} interrupted after {got + len(exc.partial)} bytes") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"download of {url} failed: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"download of {url} failed: {exc}") from None
    if length is not None and length.isdigit() and got != int(length):
        raise DownloadError(f"download of {url} interrupted: got {got} of {length} bytes")
    if digest.hexdigest() != expected.lower():
        raise DownloadError(
            f"checksum mismatch for {url}: expected {expected}, got {digest.hexdigest()}; not unpacked"
        )


def download(cache: Path, branch: str | None, environ) -> dict:
    """Fetch, verify, unpack and move into the cache; nothing stays behind on any failure."""
    plan = download_plan(branch, environ)
    if not plan["sha256"]:
        raise DownloadError(f"no pinned checksum for {plan['url']} (branch {plan['branch']}): not downloaded")
    parent = cache / plan["subdir"] if plan["subdir"] else cache
    target = parent / plan["name"]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        part = tempfile.NamedTemporaryFile(dir=parent, prefix=".moodle-", suffix=".part", delete=False)  # noqa: SIM115
    except OSError as exc:
        raise DownloadError(f"cannot write to the cache {parent}: {exc.strerror or exc}") from None
    unpack = None
    try:
        with part:
            _fetch(plan["url"], part, plan["sha256"])
        unpack = Path(tempfile.mkdtemp(dir=parent, prefix=".moodle-unpack-"))
        try:
            with tarfile.open(part.name, "r:*") as tar:
                safe_tar.extractall(tar, str(unpack))  # noqa: S202 - checked member by member
        except (tarfile.TarError, OSError) as exc:
            raise DownloadError(f"cannot unpack {plan['url']}: {exc}") from None
        top = list(unpack.iterdir())
        tree = top[0] if len(top) == 1 and top[0].is_dir() else unpack
        info = describe_dir(tree)
        if info is None:
            raise DownloadError(f"{plan['url']} holds no Moodle tree: not cached")
        try:
            tree.rename(target)
        except OSError:
            if describe_dir(target) is None:  # another run won the race with a good tree: keep it
                raise
        return {**(describe_dir(target) or info), "path": str(target), "origin": "download"}
    finally:
        Path(part.name).unlink(missing_ok=True)
        if unpack is not None:
            shutil.rmtree(unpack, ignore_errors=True)


# --- the rule ---------------------------------------------------------------------------------------


def cache_dir(environ=None) -> Path:
    """The cache folder: THREE_INSTANCE_CACHE, default /var/cache/three-instance."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("THREE_INSTANCE_CACHE") or DEFAULT_CACHE)


def _enabled(value: str | None) -> bool:
    return (value or "1").strip().lower() not in ("0", "no", "false", "off")


def resolve(
    branch: str | None = None,
    *,
    src_var: str | None = "MOODLE_SRC",
    cache: str | Path | None = None,
    allow_download: bool | None = None,
    environ=None,
) -> dict:
    """The Moodle source by the one rule: ``src_var``, the cache, the pinned download.

    Returns the description (``path``, ``type``, ``origin``, ``version``, ``release``, ``branch``,
    ``layout``, ``flavour``) or ``{"path": "", "message": ...}``; raises BadSource when ``src_var``
    names something that is not Moodle. ``warnings`` lists what was skipped on the way.
    """
    environ = os.environ if environ is None else environ
    cache = Path(cache or cache_dir(environ))
    warnings: list[str] = []

    def done(info: dict) -> dict:
        return {**info, "warnings": warnings} if warnings else info

    if src_var:
        found = _from_env(src_var, environ)
        if found is not None and (branch is None or found["branch"] == branch):
            return done(found)
        if found is not None:
            warnings.append(f"{src_var}={found['path']} is branch {found['branch']}, not {branch}: skipped")
    found = _from_cache(cache, branch, warnings)
    if found is not None:
        return done(found)
    if allow_download is None:
        allow_download = _enabled(environ.get("THREE_INSTANCE_MOODLE_DOWNLOAD"))
    if allow_download:
        try:
            return done(download(cache, branch, environ))
        except DownloadError as exc:
            warnings.append(str(exc))
    else:
        warnings.append("download disabled (THREE_INSTANCE_MOODLE_DOWNLOAD=0)")
    what = f"no Moodle {branch} source" if branch else "no Moodle source"
    message = f"{what}: " + HOW_TO_GET_ONE.format(cache=cache)
    return {"path": "", "message": message + " [" + "; ".join(warnings) + "]", "warnings": warnings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branch", help="a Moodle branch such as 4.5 or 5.1 (Totara: 17)")
    parser.add_argument(
        "--no-download", action="store_true", help="never download (as THREE_INSTANCE_MOODLE_DOWNLOAD=0)"
    )
    parser.add_argument("--cache", help=f"the cache folder (THREE_INSTANCE_CACHE, default {DEFAULT_CACHE})")
    args = parser.parse_args(argv)
    try:
        info = resolve(args.branch, cache=args.cache, allow_download=False if args.no_download else None)
    except BadSource as exc:
        print(json.dumps({"path": "", "message": str(exc)}))
        print(f"moodle_source: {exc}", file=sys.stderr)
        return 2
    for line in info.get("warnings", []):
        print(f"moodle_source: {line}", file=sys.stderr)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Releases: the manifest, the deterministic bundle and the artifact store.

* :func:`validate_manifest` checks a release manifest and lists *every* problem, each naming the
  field (``plugins[1].sha256: …``), so a bad manifest is one clear error before anything is built.
* :func:`plugin_types` reads Moodle's own component rules (``lib/components.json`` of the core tree)
  and :func:`plugin_target` places a plugin by them: nothing here hard-codes where ``mod_*`` lives.
* :func:`write_bundle` writes a tar.gz whose bytes depend only on the files: names sorted, one fixed
  mtime, owner 0, normalised modes, a gzip header without name or time. Building the same manifest
  twice gives the same sha256.
* :class:`DirStore` and :class:`S3Store` keep ``<id>.tar.gz``, ``<id>.json`` (the manifest) and
  ``<id>.sha256``. The checksum file is written last: a release exists iff it exists. A release id is
  never overwritten with other bytes.

Standard library only, except PyYAML (manifests) and boto3 (the S3 store, through module_utils/s3_store).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile

try:
    from ansible.module_utils.digest import sha256_file
    from ansible.module_utils.environment import branch_name
    from ansible.module_utils.s3_store import HAS_BOTO3, BotoCoreError, ClientError, StoreError, store_arg
    from ansible.module_utils.s3_store import connect as s3_connect
    from ansible.module_utils.safe_tar import extractall as safe_extractall
except ImportError:  # unit tests and tools/: siblings on sys.path
    from digest import sha256_file
    from environment import branch_name
    from s3_store import HAS_BOTO3, BotoCoreError, ClientError, StoreError, store_arg
    from s3_store import connect as s3_connect
    from safe_tar import extractall as safe_extractall


#: Every file in a bundle carries this mtime (2000-01-01T00:00:00Z): time must not change the bytes.
BUNDLE_MTIME = 946684800
#: Where the bundle keeps its manifest, relative to the code root (hidden: never served by nginx).
MANIFEST_MEMBER = ".three-instance/release.json"
RELEASE_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
COMPONENT = re.compile(r"\A([a-z][a-z0-9]*)_([a-z](?:[a-z0-9_]*[a-z0-9])?)\Z")
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
FLAVOURS = ("moodle", "totara")
#: a core branch as operators name it: "4.5", "5.1" (Moodle), "17" (Totara)
BRANCH = re.compile(r"\A[0-9]{1,2}(\.[0-9]{1,2})?\Z")
SOURCE_KINDS = ("dir", "archive", "git")
#: Never shipped: VCS data, and a root config.php some upstream trees carry (sites get theirs from
#: shared/config.php through the stub the deploy writes).
EXCLUDED_NAMES = {".git", ".github", ".gitmodules"}
EXCLUDED_ROOT_FILES = {"config.php"}
CHUNK = 1024 * 1024


class ReleaseError(Exception):
    """A manifest, source, bundle or store problem; the message names the input at fault."""


# --------------------------------------------------------------------------------------------------
# The manifest.


def _expand(value: str, field: str, errors: list[str], variables: dict) -> str:
    """``${VAR}`` in a path comes from ``variables``, else the environment (a tree's location
    differs per machine)."""

    def repl(match: re.Match) -> str:
        name = match.group(1)
        found = variables.get(name, os.environ.get(name))
        if found is None:
            errors.append(
                f"{field}: variable {name} is not set (give it as a manifest variable or in the environment)"
            )
            return match.group(0)
        return str(found)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", repl, value)


def _cut(text, limit: int = 80) -> str:
    """Input quoted back in a message, cut short."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


def _source(entry, field: str, base_dir: str, errors: list[str], variables: dict) -> dict:
    """One code source: ``{dir}``, ``{archive, sha256}`` or ``{git, ref}``; paths made absolute."""
    if not isinstance(entry, dict):
        errors.append(f"{field}: must be a mapping with one of {', '.join(SOURCE_KINDS)}")
        return {}
    kinds = [kind for kind in SOURCE_KINDS if kind in entry]
    if len(kinds) != 1:
        errors.append(f"{field}: needs exactly one of {', '.join(SOURCE_KINDS)} (got {sorted(entry)})")
        return {}
    kind = kinds[0]
    value = entry[kind]
    if not isinstance(value, str) or not value:
        errors.append(f"{field}.{kind}: must be a non-empty string")
        return {}
    value = _expand(value, f"{field}.{kind}", errors, variables)
    out = {"type": kind}
    allowed = {kind, "component", "strip_components"}
    if kind == "dir":
        out["path"] = os.path.normpath(os.path.join(base_dir, value))
        if not os.path.isdir(out["path"]):
            errors.append(f"{field}.dir: {out['path']} is not a folder")
    elif kind == "archive":
        allowed.add("sha256")
        sha = str(entry.get("sha256", "")).lower()
        if not SHA256.match(sha):
            errors.append(f"{field}.sha256: an archive needs its sha256 (64 hex digits)")
        out["sha256"] = sha
        if re.match(r"^https?://", value):
            out["url"] = value
        else:
            out["path"] = os.path.normpath(os.path.join(base_dir, value))
            if not os.path.isfile(out["path"]):
                errors.append(f"{field}.archive: {out['path']} does not exist")
    else:
        allowed.add("ref")
        ref = entry.get("ref")
        if value.startswith("-"):
            errors.append(f"{field}.git: {_cut(value)!r} must not start with '-' (git would read an option)")
        if not isinstance(ref, str) or not ref:
            errors.append(f"{field}.ref: a git source needs a ref (tag, branch or commit)")
        elif ref.startswith("-"):
            errors.append(f"{field}.ref: {_cut(ref)!r} must not start with '-' (git would read an option)")
        out.update(url=value, ref=ref)
    unknown = sorted(set(entry) - allowed)
    if unknown:
        errors.append(f"{field}: unknown keys {unknown}")
    return out


def validate_manifest(data, base_dir: str = ".", variables: dict | None = None) -> dict:
    """Check a manifest (a parsed YAML mapping); return it normalised or raise with every problem.

    Relative paths are relative to ``base_dir`` (the manifest's folder); ``${VAR}`` is expanded
    from ``variables``, else the environment.
    """
    errors: list[str] = []
    variables = variables or {}
    if not isinstance(data, dict):
        raise ReleaseError("the release manifest must be a mapping (release, flavour, core, plugins, theme)")
    unknown = sorted(set(data) - {"release", "flavour", "branch", "core", "plugins", "theme", "description"})
    if unknown:
        errors.append(
            f"unknown keys {unknown} (allowed: release, flavour, branch, core, plugins, theme, description)"
        )
    branch = data.get("branch")
    if branch is not None and not (isinstance(branch, str) and BRANCH.match(branch)):
        errors.append(f'branch: {branch!r} is not a core branch like "4.5" or "5.1" (quote it in YAML)')
    release = data.get("release")
    if not isinstance(release, str) or not RELEASE_ID.match(release):
        errors.append(
            f"release: {release!r} is not a release id (letters, digits, '.', '_', '-'; up to 100; "
            "starts with a letter or digit)"
        )
    flavour = data.get("flavour")
    if flavour not in FLAVOURS:
        errors.append(f"flavour: {flavour!r} is not one of {', '.join(FLAVOURS)}")
    if "core" not in data:
        errors.append("core: missing (the LMS core source: dir, archive + sha256, or git + ref)")
        core = {}
    else:
        core = _source(data["core"], "core", base_dir, errors, variables)

    plugins = data.get("plugins") or []
    if not isinstance(plugins, list):
        errors.append("plugins: must be a list")
        plugins = []
    entries = [(f"plugins[{i}]", p) for i, p in enumerate(plugins)]
    if data.get("theme") is not None:
        entries.append(("theme", data["theme"]))
    normalised, seen = [], set()
    for field, entry in entries:
        source = _source(entry, field, base_dir, errors, variables)
        component = entry.get("component") if isinstance(entry, dict) else None
        match = COMPONENT.match(component) if isinstance(component, str) else None
        if not match:
            errors.append(f"{field}.component: {component!r} is not a frankenstyle name like mod_attendance")
        elif field == "theme" and match.group(1) != "theme":
            errors.append(f"theme.component: {component!r} must be a theme_* component")
        elif component in seen:
            errors.append(f"{field}.component: {component} is listed twice")
        else:
            seen.add(component)
        if source:
            normalised.append(dict(source, component=component))
    if errors:
        raise ReleaseError("invalid release manifest:\n  - " + "\n  - ".join(errors))
    out = {"release": release, "flavour": flavour, "core": core, "plugins": normalised}
    if branch is not None:
        out["branch"] = branch
    if data.get("description"):
        out["description"] = str(data["description"])
    return out


def load_manifest(path: str, variables: dict | None = None) -> dict:
    import yaml  # PyYAML comes with Ansible

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ReleaseError(f"cannot read the release manifest {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ReleaseError(f"the release manifest {path} is not valid YAML: {exc}") from exc
    try:
        return validate_manifest(data, os.path.dirname(os.path.abspath(path)), variables)
    except ReleaseError as exc:
        raise ReleaseError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Moodle's component rules.


def find_components_json(core_dir: str) -> str:
    """``lib/components.json`` (Moodle; 5.1 keeps it at the root with ``public/…`` paths) or
    ``server/lib/components.json`` (Totara 13+)."""
    for rel in ("lib/components.json", "public/lib/components.json", "server/lib/components.json"):
        path = os.path.join(core_dir, rel)
        if os.path.isfile(path):
            return path
    raise ReleaseError(
        f"core: {core_dir} holds no lib/components.json (nor public/ or server/): not a Moodle/Totara tree"
    )


def plugin_types(core_dir: str) -> dict[str, str]:
    """Plugin type -> folder relative to the core tree's root, from Moodle's ``components.json``.

    Its paths are relative to the folder above its ``lib/`` (the tree root on Moodle, ``server/``
    on Totara 13+); they are returned relative to ``core_dir``.
    """
    path = find_components_json(core_dir)
    top = os.path.relpath(os.path.dirname(os.path.dirname(path)), core_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            types = json.load(handle)["plugintypes"]
    except (OSError, ValueError, KeyError) as exc:
        raise ReleaseError(f"core: cannot read the plugin types from {path}: {exc}") from exc
    return {name: os.path.normpath(os.path.join(top, rel)) for name, rel in types.items()}


def plugin_target(component: str, types: dict[str, str]) -> str:
    """Where ``component`` goes in the tree, e.g. ``mod_attendance`` -> ``public/mod/attendance``."""
    match = COMPONENT.match(component)
    if not match:
        raise ReleaseError(f"{component!r} is not a frankenstyle component name")
    kind, name = match.groups()
    if kind not in types:
        raise ReleaseError(
            f"{component}: plugin type '{kind}' is not known to this core (lib/components.json lists "
            f"{', '.join(sorted(types))})"
        )
    return os.path.join(types[kind], name)


# --------------------------------------------------------------------------------------------------
# Sources -> local folders.


def _single_top(folder: str) -> str:
    """An archive usually wraps its tree in one folder (``attendance/``, ``moodle/``): descend into it."""
    names = [n for n in os.listdir(folder) if n not in EXCLUDED_NAMES]
    if len(names) == 1 and os.path.isdir(os.path.join(folder, names[0])):
        return os.path.join(folder, names[0])
    return folder


def _download(url: str, dest: str) -> None:
    # imported here: unit tests and tools/ import this file without needing Ansible's urls
    from ansible.module_utils.urls import ConnectionError as UrlError
    from ansible.module_utils.urls import open_url

    try:
        with open_url(url, timeout=60) as answer, open(dest, "wb") as out:
            shutil.copyfileobj(answer, out, CHUNK)
    except (OSError, UrlError) as exc:
        raise ReleaseError(f"cannot download {url}: {exc}") from exc


def resolve_source(source: dict, field: str, cache_dir: str) -> tuple[str, dict]:
    """A local folder holding the source, and what identifies it (archive sha256, git commit).

    Archives and clones are kept in ``cache_dir`` by checksum / URL, so a second build reuses them.
    """
    kind = source["type"]
    if kind == "dir":
        return source["path"], {"type": "dir"}
    os.makedirs(cache_dir, exist_ok=True)
    if kind == "archive":
        target = os.path.join(cache_dir, "src-" + source["sha256"])
        if not os.path.isdir(target):
            archive = source.get("path")
            if archive is None:
                archive = os.path.join(cache_dir, "download-" + source["sha256"])
                _download(source["url"], archive)
            actual = sha256_file(archive)
            if actual != source["sha256"]:
                raise ReleaseError(
                    f"{field}: archive {source.get('path') or source['url']} has sha256 {actual}, "
                    f"the manifest says {source['sha256']}"
                )
            partial = tempfile.mkdtemp(prefix="src-", dir=cache_dir)
            try:
                if zipfile.is_zipfile(archive):
                    with zipfile.ZipFile(archive) as zipped:
                        zipped.extractall(partial)  # noqa: S202 - zipfile drops absolute and .. parts
                else:
                    with tarfile.open(archive) as tarred:
                        safe_extractall(tarred, partial)
            except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                shutil.rmtree(partial, ignore_errors=True)
                raise ReleaseError(f"{field}: cannot unpack {archive}: {exc}") from exc
            os.rename(partial, target)
        return _single_top(target), {"type": "archive", "sha256": source["sha256"]}
    # git: one clone per URL, checked out at the ref; the commit identifies the source. Neither the
    # URL nor the ref may be read as an option: "--" ends clone's options, and after the ref it makes
    # checkout take the ref as a revision (a ref that starts with '-' is refused before).
    for key in ("url", "ref"):
        if not isinstance(source.get(key), str) or not source[key] or source[key].startswith("-"):
            raise ReleaseError(f"{field}: git {key} {_cut(source.get(key))!r} must not start with '-'")
    clone = os.path.join(cache_dir, "git-" + hashlib.sha256(source["url"].encode()).hexdigest()[:16])
    try:
        if not os.path.isdir(os.path.join(clone, ".git")):
            subprocess.run(
                ["git", "clone", "--quiet", "--", source["url"], clone], check=True, capture_output=True
            )
        else:
            subprocess.run(
                ["git", "-C", clone, "fetch", "--quiet", "--tags", "origin"], check=True, capture_output=True
            )
        subprocess.run(
            ["git", "-C", clone, "checkout", "--quiet", "--force", source["ref"], "--"],
            check=True,
            capture_output=True,
        )
        commit = subprocess.run(
            ["git", "-C", clone, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise ReleaseError(
            f"{field}: git {source['url']} at {source['ref']}: {detail.strip() or exc}"
        ) from exc
    return clone, {"type": "git", "commit": commit}


# --------------------------------------------------------------------------------------------------
# The bundle.


def _walk(root: str, prefix: str, top_level: bool) -> list[tuple[str, str]]:
    """(name in the bundle, path on disk) for everything under ``root``, excluding VCS data."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_NAMES]
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            if name in EXCLUDED_NAMES or (top_level and rel == "." and name in EXCLUDED_ROOT_FILES):
                continue
            member = os.path.normpath(os.path.join(prefix, rel, name))
            out.append((member, os.path.join(dirpath, name)))
    return out


def bundle_entries(core_dir: str, plugins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The release tree: the core, with each ``(target, folder)`` plugin placed at its target
    (replacing whatever the core had there), sorted by name."""
    targets = [target for target, _path in plugins]
    entries = [
        (name, path)
        for name, path in _walk(core_dir, ".", True)
        if not any(name == t or name.startswith(t + "/") for t in targets)
    ]
    for target, folder in plugins:
        parts = target.split("/")
        # The plugin type's folder may not exist in the core (a type without any plugin).
        for depth in range(1, len(parts) + 1):
            entries.append(("/".join(parts[:depth]), None))
        entries.extend(_walk(folder, target, False))
    return sorted(dict(entries).items(), key=lambda item: item[0])


def _tarinfo(name: str, path: str | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = BUNDLE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path is None or (os.path.isdir(path) and not os.path.islink(path)):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info
    if os.path.islink(path):
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, os.readlink(path)
        return info
    info.type = tarfile.REGTYPE
    info.mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
    info.size = os.path.getsize(path)
    return info


def write_bundle(
    entries: list[tuple[str, str | None]], manifest: dict, dest: str, manifest_member: str = MANIFEST_MEMBER
) -> str:
    """Write the deterministic tar.gz to ``dest`` (via a temporary file) and return its sha256.
    The manifest is its last member, ``manifest_member`` (a courseware bundle has its own)."""
    partial = dest + ".partial"
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    members = list(entries)
    if os.path.dirname(manifest_member):
        members.append((os.path.dirname(manifest_member), None))
    members.sort(key=lambda item: item[0])
    # filename="" and mtime=0: the gzip header carries neither the file's name nor the time.
    with (
        open(partial, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, path in members:
            info = _tarinfo(name, path)
            if info.isreg():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
        info = _tarinfo(manifest_member, None)
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, len(body)
        tar.addfile(info, io.BytesIO(body))
    os.replace(partial, dest)
    return sha256_file(dest)


def core_version(core_dir: str) -> dict:
    """``$version``/``$release``/``$branch`` of a core tree (public/, server/ or the root)."""
    for rel in ("public/version.php", "server/version.php", "version.php"):
        path = os.path.join(core_dir, rel)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            info = {}
            for key in ("version", "release", "branch"):
                match = re.search(r"^\s*\$" + key + r"\s*=\s*['\"]?([^'\";]+)['\"]?\s*;", text, re.MULTILINE)
                if match:
                    info[key] = match.group(1).strip()
            return info
    raise ReleaseError(f"core: {core_dir} holds no version.php (public/, server/ or the root)")


def plugin_version(folder: str) -> dict:
    path = os.path.join(folder, "version.php")
    if not os.path.isfile(path):
        raise ReleaseError(f"plugin folder {folder} holds no version.php: not a Moodle plugin")
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    info = {}
    for key in ("version", "release", "component"):
        match = re.search(r"\$plugin->" + key + r"\s*=\s*['\"]?([^'\";]+)['\"]?\s*;", text)
        if match:
            info[key] = match.group(1).strip()
    return info


def build(manifest: dict, out_dir: str, cache_dir: str) -> dict:
    """Assemble the release of a validated manifest into ``out_dir/<id>.tar.gz``.

    Returns ``{release, bundle, sha256, manifest}``; ``manifest`` is what the bundle carries: the
    manifest with each source pinned (archive sha256, git commit) and the versions it holds.
    """
    core_dir, core_pin = resolve_source(manifest["core"], "core", os.path.join(cache_dir, "sources"))
    core_dir = _single_top(core_dir) if manifest["core"]["type"] == "archive" else core_dir
    core_info = core_version(core_dir)
    core_branch = branch_name(core_info.get("branch"))
    if manifest.get("branch") and core_branch != manifest["branch"]:
        raise ReleaseError(
            f"core: {core_dir} is {manifest['flavour']} {core_branch or '(no $branch)'} "
            f"({core_info.get('release', 'no $release')}), the manifest pins branch {manifest['branch']}; "
            "nothing was built"
        )
    types = plugin_types(core_dir)
    placed, described = [], []
    for index, plugin in enumerate(manifest["plugins"]):
        field = f"plugin {plugin['component']}"
        folder, pin = resolve_source(plugin, field, os.path.join(cache_dir, "sources"))
        info = plugin_version(folder)
        if info.get("component") and info["component"] != plugin["component"]:
            raise ReleaseError(
                f"plugins[{index}]: {folder} is {info['component']}, the manifest says {plugin['component']}"
            )
        target = plugin_target(plugin["component"], types)
        placed.append((target, folder))
        described.append(
            {
                "component": plugin["component"],
                "path": target,
                "source": pin,
                "version": info.get("version"),
                "release": info.get("release"),
            }
        )
    carried = {
        "release": manifest["release"],
        "flavour": manifest["flavour"],
        "core": dict(core_pin, **core_info),
        "plugins": described,
    }
    if manifest.get("branch"):
        carried["branch"] = manifest["branch"]
    if manifest.get("description"):
        carried["description"] = manifest["description"]
    os.makedirs(out_dir, exist_ok=True)
    bundle = os.path.join(out_dir, manifest["release"] + ".tar.gz")
    sha = write_bundle(bundle_entries(core_dir, placed), carried, bundle)
    return {"release": manifest["release"], "bundle": bundle, "sha256": sha, "manifest": carried}


# --------------------------------------------------------------------------------------------------
# The artifact store.


def sha256_line(sha: str, release: str) -> str:
    """The ``<id>.sha256`` file, in ``sha256sum`` format."""
    return f"{sha}  {release}.tar.gz\n"


def parse_sha256_line(text: str, where: str) -> str:
    sha = text.split()[0].lower() if text.split() else ""
    if not SHA256.match(sha):
        raise ReleaseError(f"{where} does not hold a sha256")
    return sha


class DirStore:
    """A folder (local disk or a mounted share) as the artifact store."""

    def __init__(self, path: str):
        self.path = path
        self.where = path

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def published_sha256(self, release: str) -> str | None:
        try:
            with open(self._file(release + ".sha256"), encoding="ascii") as handle:
                return parse_sha256_line(handle.read(), self._file(release + ".sha256"))
        except FileNotFoundError:
            return None

    def publish(self, release: str, bundle: str, manifest: dict, sha: str) -> None:
        os.makedirs(self.path, exist_ok=True)
        for name, writer in (
            (release + ".tar.gz", lambda out: shutil.copyfileobj(open(bundle, "rb"), out, CHUNK)),  # noqa: SIM115
            (
                release + ".json",
                lambda out: out.write(json.dumps(manifest, indent=2, sort_keys=True).encode()),
            ),
            (release + ".sha256", lambda out: out.write(sha256_line(sha, release).encode())),
        ):
            partial = self._file("." + name + ".partial")
            with open(partial, "wb") as out:
                writer(out)
            os.replace(partial, self._file(name))

    def fetch(self, release: str, dest: str) -> None:
        shutil.copyfile(self._file(release + ".tar.gz"), dest)

    def write_text(self, name: str, text: str) -> None:
        """A small file beside the bundles (a pointer such as courseware's ``latest``), atomically."""
        os.makedirs(self.path, exist_ok=True)
        partial = self._file("." + name + ".partial")
        with open(partial, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(partial, self._file(name))

    def read_text(self, name: str) -> str | None:
        try:
            with open(self._file(name), encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None


class S3Store:
    """An S3 bucket (AWS, moto, MinIO) as the artifact store: the backup store's client and writes
    (module_utils/s3_store: retries, server-side encryption), with release keys under a prefix."""

    def __init__(self, spec: dict):
        if not HAS_BOTO3:
            raise ReleaseError("an s3 release store needs the Python packages boto3 and botocore")
        prefix = "releases/" if spec.get("prefix") is None else spec["prefix"]
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.where = f"s3://{spec['bucket']}/{self.prefix}"
        try:
            self.store = s3_connect(
                spec, hint="playbooks/build_release.yml publishes into an existing bucket"
            )
        except StoreError as exc:
            raise ReleaseError(f"release store {self.where}: {exc}") from exc

    def _key(self, release: str, suffix: str) -> str:
        return f"{self.prefix}{release}{suffix}"

    def published_sha256(self, release: str) -> str | None:
        key = self._key(release, ".sha256")
        try:
            if self.store.head_size(key) is None:
                return None
            body = self.store.get(key).decode("ascii")
        except StoreError as exc:
            raise ReleaseError(f"release store {self.where}: {exc}") from exc
        return parse_sha256_line(body, f"s3://{self.store.bucket}/{key}")

    def publish(self, release: str, bundle: str, manifest: dict, sha: str) -> None:
        try:
            # upload_file: multipart for a large bundle, without reading it into memory
            self.store.client.upload_file(
                bundle, self.store.bucket, self._key(release, ".tar.gz"), ExtraArgs=self.store.write_args()
            )
            self.store.put(
                self._key(release, ".json"),
                json.dumps(manifest, indent=2, sort_keys=True).encode(),
                content_type="application/json",
            )
            self.store.put(self._key(release, ".sha256"), sha256_line(sha, release).encode(), "text/plain")
        except (StoreError, BotoCoreError, ClientError) as exc:
            raise ReleaseError(f"release store {self.where}: cannot publish {release}: {exc}") from exc

    def fetch(self, release: str, dest: str) -> None:
        try:
            self.store.client.download_file(self.store.bucket, self._key(release, ".tar.gz"), dest)
        except (BotoCoreError, ClientError) as exc:
            raise ReleaseError(
                f"release store {self.where}: cannot download {release}.tar.gz: {exc}"
            ) from exc

    def write_text(self, name: str, text: str) -> None:
        """A small object beside the bundles (a pointer such as courseware's ``latest``)."""
        try:
            self.store.put(self._key(name, ""), text.encode(), "text/plain")
        except StoreError as exc:
            raise ReleaseError(f"release store {self.where}: cannot write {name}: {exc}") from exc

    def read_text(self, name: str) -> str | None:
        key = self._key(name, "")
        try:
            if self.store.head_size(key) is None:
                return None
            return self.store.get(key).decode()
        except StoreError as exc:
            raise ReleaseError(f"release store {self.where}: {exc}") from exc


#: The module option describing the store: the same dict as the backup modules' (doc fragment lms_store).
STORE_ARG = store_arg()


def open_store(spec: dict):
    if spec["type"] == "dir":
        return DirStore(spec["path"])
    return S3Store(spec)


def publish(store, release: str, bundle: str, manifest: dict, sha: str) -> bool:
    """Publish unless the same bytes are already there (False); other bytes under the id: refuse."""
    existing = store.published_sha256(release)
    if existing == sha:
        return False
    if existing is not None:
        raise ReleaseError(
            f"release {release} already exists in {store.where} with sha256 {existing}; this build is "
            f"{sha}. A release id names one set of bytes: give the changed release a new id."
        )
    store.publish(release, bundle, manifest, sha)
    return True


def fetch_verified(
    store,
    release: str,
    dest_dir: str,
    expected_sha: str | None = None,
    manifest_member: str = MANIFEST_MEMBER,
) -> dict:
    """The bundle of ``release`` in ``dest_dir`` (downloaded only when missing or different),
    verified against the store's checksum and, when given, the checksum the caller expects."""
    if not RELEASE_ID.match(release or ""):
        raise ReleaseError(f"release: {release!r} is not a release id")
    published = store.published_sha256(release)
    if published is None:
        raise ReleaseError(f"release {release} is not in the release store {store.where}")
    if expected_sha and expected_sha != published:
        raise ReleaseError(
            f"release {release}: the store {store.where} has sha256 {published}, expected {expected_sha} "
            "(the bytes in the store are not the ones deployed below)"
        )
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, release + ".tar.gz")
    downloaded = False
    if not os.path.isfile(dest) or sha256_file(dest) != published:
        partial = dest + ".partial"
        store.fetch(release, partial)
        actual = sha256_file(partial)
        if actual != published:
            os.unlink(partial)
            raise ReleaseError(
                f"release {release}: bad checksum: the bundle from {store.where} has sha256 {actual}, "
                f"its .sha256 says {published}"
            )
        os.replace(partial, dest)
        downloaded = True
    return {
        "release": release,
        "bundle": dest,
        "sha256": published,
        "downloaded": downloaded,
        "manifest": read_bundle_manifest(dest, manifest_member),
    }


def read_bundle_manifest(bundle: str, manifest_member: str = MANIFEST_MEMBER) -> dict:
    """The manifest a bundle carries (its last member, so this reads the whole stream once)."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            member = tar.extractfile(manifest_member)
            return json.loads(member.read()) if member else {}
    except (KeyError, tarfile.TarError, OSError, ValueError) as exc:
        raise ReleaseError(f"{bundle} is not a bundle (no readable {manifest_member}): {exc}") from exc

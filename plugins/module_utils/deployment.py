# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment record of a site on a web host: the one owner of its two files.

``<code_root>/<site>/deployment.json`` is what runs now (written whole, atomically, 0644 root:
operators and the promotion read it); ``deployments.jsonl`` beside it is the append-only history,
one JSON object per line, failed attempts included. The records on the hosts are the truth about
what runs where (DESIGN §2): lms_deployment writes them, lms_deployment_info reads them.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile

RECORD_NAME = "deployment.json"
HISTORY_NAME = "deployments.jsonl"
#: What a record says happened. A failed attempt goes into the history only.
OUTCOMES = ("deployed", "failed", "rolled-back", "refreshed", "adopted")
#: Keys every record has (lms_deployment's RETURN documents the rest).
REQUIRED_KEYS = ("site", "release", "deployed_at", "deployed_by", "verified", "outcome")
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
#: A record is a few KiB; a larger file was not written by this code.
MAX_RECORD_BYTES = 1024 * 1024


class DeploymentError(Exception):
    """A record cannot be read or written; the message names the file and what is wrong."""


def check_record(record: dict, site: str) -> None:
    """Refuse a record that lacks a required key, names another site or an unknown outcome."""
    if not isinstance(record, dict):
        raise DeploymentError(f"the deployment record of {site} must be a dict")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise DeploymentError(f"the deployment record of {site} lacks {', '.join(missing)}")
    if record["site"] != site:
        named = str(record["site"])[:80]
        raise DeploymentError(f"a deployment record of {named} cannot be written for {site}")
    if record["outcome"] not in OUTCOMES:
        raise DeploymentError(
            f"the deployment record of {site} has outcome {str(record['outcome'])[:80]!r}, "
            f"not one of {', '.join(OUTCOMES)}"
        )
    if not isinstance(record["verified"], bool):
        raise DeploymentError(f"the deployment record of {site}: verified must be true or false")


def _read_regular(path: str) -> bytes | None:
    """The bytes of ``path``, None when it does not exist; never through a link, only a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeploymentError(f"{path} cannot be read ({exc.strerror}): not a file this code wrote") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DeploymentError(f"{path} is not a regular file")
        data = os.read(fd, MAX_RECORD_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_RECORD_BYTES:
        raise DeploymentError(f"{path} is larger than {MAX_RECORD_BYTES} bytes: not a deployment record")
    return data


def read_record(site_dir: str) -> dict | None:
    """What the site runs now (its deployment.json), None when it has none."""
    path = os.path.join(site_dir, RECORD_NAME)
    data = _read_regular(path)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise DeploymentError(f"{path} is not JSON ({exc}): fix or remove it") from exc
    if not isinstance(record, dict):
        raise DeploymentError(f"{path} holds no record (a JSON object)")
    return record


def read_history(site_dir: str, last: int) -> list[dict]:
    """The ``last`` entries of the site's history, oldest first (lines that are not JSON are skipped)."""
    if last <= 0:
        return []
    path = os.path.join(site_dir, HISTORY_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    with os.fdopen(fd, encoding="utf-8") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise DeploymentError(f"{path} is not a regular file")
        lines = handle.read().splitlines()
    entries = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        if len(entries) == last:
            break
    return entries[::-1]


def history_line(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def write(site_dir: str, record: dict, check_mode: bool = False) -> dict:
    """Write ``record`` for the site whose code folder is ``site_dir``: deployment.json (unless the
    outcome is ``failed``) and a history line (unless the history has it already, so a re-run
    adds nothing). Returns ``{"record_changed": bool, "history_appended": bool}``."""
    site = os.path.basename(os.path.normpath(site_dir))
    check_record(record, site)
    if not os.path.isdir(site_dir) or os.path.islink(site_dir):
        raise DeploymentError(f"{site_dir} is not the site's code folder")
    record_changed = record["outcome"] != "failed" and read_record(site_dir) != record
    line = history_line(record)
    history = _read_regular(os.path.join(site_dir, HISTORY_NAME)) or b""
    history_appended = line.encode() not in history.splitlines()
    if check_mode:
        return {"record_changed": record_changed, "history_appended": history_appended}
    if record_changed:
        fd, temp = tempfile.mkstemp(prefix=f".{RECORD_NAME}.", dir=site_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record, indent=4, sort_keys=True) + "\n")
            os.chmod(temp, 0o644)
            os.replace(temp, os.path.join(site_dir, RECORD_NAME))
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
    if history_appended:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(os.path.join(site_dir, HISTORY_NAME), flags, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            if history and not history.endswith(b"\n"):
                handle.write("\n")
            handle.write(line + "\n")
    return {"record_changed": record_changed, "history_appended": history_appended}


def sites_in(code_root: str) -> list[str]:
    """The sites that have a code folder under ``code_root`` (sorted)."""
    try:
        names = os.listdir(code_root)
    except FileNotFoundError:
        return []
    return sorted(
        name
        for name in names
        if SITE_NAME.fullmatch(name) and os.path.isdir(os.path.join(code_root, name))
        and not os.path.islink(os.path.join(code_root, name))
    )  # fmt: skip

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One job at a time per site: a lock file in the site's code folder on its first web host.

Every job that changes a site (deploy, promote, rollback, restore, QA refresh, course promotion)
holds it from its checks to its end. The file names the holder (``token`` = controller, process,
start), the job, who ran it and when. A second job is refused at once with those. The lock is
re-entrant for the same token (promote.yml runs deploy.yml inside it), released only by its
holder, and taken over when it is stale: its holder ran on this job's controller and is not
among ``live_tokens`` (the Ansible processes alive there), it is older than ``ttl`` seconds, or
``break_token`` names it (an operator said so).
"""

from __future__ import annotations

import json
import os
import stat
import time

LOCK_NAME = ".lock"
#: The largest holder record read back (a lock file is a few hundred bytes).
MAX_LOCK_BYTES = 64 * 1024
HOLDER_KEYS = ("token", "job", "user", "controller", "pid")


class SiteLockError(Exception):
    """The lock cannot be taken or released; the message says by whom it is held."""


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def read(path: str) -> dict | None:
    """The holder record at ``path``, None when there is none. A lock that is not a regular file
    of JSON (a link, a folder, garbage) is an error: somebody else wrote it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SiteLockError(
            f"{path} is not a lock file this code wrote ({exc.strerror}): remove it by hand"
        ) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SiteLockError(f"{path} is not a regular file: remove it by hand")
        data = os.read(fd, MAX_LOCK_BYTES)
    finally:
        os.close(fd)
    try:
        holder = json.loads(data)
    except ValueError:
        holder = None
    if not isinstance(holder, dict) or not isinstance(holder.get("token"), str):
        raise SiteLockError(f"{path} holds no lock record: remove it by hand once no job runs on the site")
    return holder


def describe(holder: dict) -> str:
    return (
        f"{holder.get('job', '?')} run by {holder.get('user', '?')} on {holder.get('controller', '?')} "
        f"(process {holder.get('pid', '?')}) since {holder.get('started', '?')}, lock token {holder['token']}"
    )


def _write_new(path: str, holder: dict) -> None:
    """Create ``path`` with the record, never over an existing file (O_EXCL) nor through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, (json.dumps(holder, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def acquire(
    path: str,
    holder: dict,
    ttl: float,
    break_token: str | None = None,
    now: float | None = None,
    check_mode: bool = False,
    live_tokens: list | None = None,
) -> dict:
    """Take the lock at ``path`` for ``holder`` (HOLDER_KEYS). Returns ``{changed, holder,
    taken_over}``: ``changed`` false when this token holds it already; ``taken_over`` the stale
    holder that was replaced, else None. Raises SiteLockError when another job holds it. With
    ``check_mode`` nothing is written: the result says what would happen."""
    missing = [key for key in HOLDER_KEYS if not str(holder.get(key, "")).strip()]
    if missing:
        raise SiteLockError(f"the lock holder needs {', '.join(missing)}")
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise SiteLockError(
            f"{os.path.dirname(path)} does not exist: converge the site first (playbooks/site.yml)"
        )
    now = time.time() if now is None else now
    record = {
        **{key: holder[key] for key in HOLDER_KEYS},
        "started": _iso(now),
        "started_epoch": round(now, 3),
    }
    taken_over = None
    for _attempt in range(3):  # a release between our read and our create: try again
        current = read(path)
        if current is None and check_mode:
            return {"changed": True, "holder": record, "taken_over": taken_over}
        if current is None:
            try:
                _write_new(path, record)
            except FileExistsError:
                continue  # another job was quicker: read what it wrote
            return {"changed": True, "holder": record, "taken_over": taken_over}
        if current["token"] == holder["token"]:
            return {"changed": False, "holder": current, "taken_over": None}
        age = now - float(current.get("started_epoch") or 0)
        dead_here = (
            live_tokens is not None
            and current.get("controller") == holder["controller"]
            and current["token"] not in live_tokens
        )
        if age <= ttl and current["token"] != break_token and not dead_here:
            raise SiteLockError(
                f"another job holds the site: {describe(current)}. Wait for it to end. If it died, the next "
                "job from the same controller takes the lock over by itself; from elsewhere, it is taken "
                f"over after {int(ttl)} s, or now with -e site_lock_break={current['token']}"
            )
        # Stale (or broken on purpose): replace it, unless it changed meanwhile.
        if check_mode:
            return {"changed": True, "holder": record, "taken_over": current}
        again = read(path)
        if again is None or again["token"] != current["token"]:
            continue
        os.unlink(path)
        taken_over = current
    raise SiteLockError(f"{path} changed hands repeatedly while being taken: try again")


def release(path: str, token: str) -> dict:
    """Remove the lock if ``token`` holds it. Returns ``{changed, holder}`` (holder: who holds it
    now when that is another job, whose lock is left alone)."""
    current = read(path)
    if current is None:
        return {"changed": False, "holder": None}
    if current["token"] != token:
        return {"changed": False, "holder": current}
    os.unlink(path)
    return {"changed": True, "holder": None}

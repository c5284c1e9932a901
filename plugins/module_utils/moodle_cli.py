# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a Moodle/Totara site's CLI and its APIs correctly, for the ``lms_*`` modules.

One :class:`MoodleSite` knows a site's code root (the folder holding ``config.php``), its layout
(Moodle >= 5.1 ``public/``, Totara 13+ ``server/``, older Moodle: the tree root), the web user and
the PHP binary. It runs every PHP process **as the web user** (``runuser -u <user> --`` when the
module runs as root; directly when it already runs as that user; never as root: root-owned cache
files in the dataroot break the site), from the right folder, with a timeout, and maps Moodle's
documented exit codes to results or to :class:`MoodleError` with a message that says what to do.

Operations that Moodle's CLI lacks (facts in one process, users and enrolments, reading settings
together with "forced in config.php") run through a small PHP helper (``php/helper.py``) that
bootstraps the site (``define('CLI_SCRIPT', true); require '<root>/config.php';``), reads its
parameters as JSON on stdin (never argv: secrets stay out of ``ps``) and answers JSON.

This file imports only the standard library so that it can be unit-tested without Ansible.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

try:
    from ansible.module_utils.environment import branch_name, requirements, unmet
    from ansible.module_utils.php.argv_from_stdin import ARGV_FROM_STDIN_PHP
    from ansible.module_utils.php.helper import HELPER_PHP
except ImportError:  # unit tests, tools/ and the backup timer's copy on a host: siblings on sys.path
    from environment import branch_name, requirements, unmet
    from php.argv_from_stdin import ARGV_FROM_STDIN_PHP
    from php.helper import HELPER_PHP

# --------------------------------------------------------------------------------------------------------
# Options shared by every lms_* module.

COMMON_ARGS = {
    "path": {"type": "path", "required": True},
    "web_user": {"type": "str", "default": "www-data"},
    "php": {"type": "str", "default": "php"},
    "timeout": {"type": "int", "default": 600},
}


#: Options of the modules that refuse a Live site unless told (lms_sanitise, lms_restore).
LIVE_GUARD_ARGS = {
    "allow_live": {"type": "bool", "default": False},
    "allow_live_reason": {"type": "str"},
}
ALLOW_LIVE_REASON_MAX = 500
#: A site's name: ``<customer>-<tier>`` (the estate's rule).
SITE_NAME_RE = re.compile(r"\A[a-z][a-z0-9]*-(dev|qa|live)\Z")


# --------------------------------------------------------------------------------------------------------
# Exit codes documented by Moodle's CLI scripts.

#: ``admin/cli/upgrade.php --is-pending``
UPGRADE_IS_PENDING = {0: False, 2: True}
#: ``admin/cli/upgrade.php --is-maintenance-required``: (upgrade pending, needs maintenance)
UPGRADE_MAINTENANCE = {0: (False, False), 2: (True, True), 3: (True, False)}
#: ``admin/cli/cfg.php`` (read and write)
CFG_FOUND, CFG_ERROR, CFG_USAGE, CFG_NOT_SET, CFG_FORCED = 0, 1, 2, 3, 4
#: ``admin/cli/checks.php`` speaks Nagios
NAGIOS = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}

HELPER_MARKER = "@@LMS-RESULT@@"


MASK = "********"


def mask_argv(cmd) -> list:
    """``cmd`` as it may be shown: the value of every ``--name=value`` / ``-x=value`` argument
    masked (a value may be a secret; none is ever shown in a message or a result)."""
    out = []
    for arg in cmd or ():
        arg = str(arg)
        if arg.startswith("-") and "=" in arg:
            arg = arg.split("=", 1)[0] + "=" + MASK
        out.append(arg)
    return out


class MoodleError(Exception):
    """A Moodle call failed; ``str()`` says what happened and what to do."""

    def __init__(self, msg, rc=None, stdout="", stderr="", cmd=None):
        super().__init__(msg)
        self.msg = msg
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.cmd = mask_argv(cmd) if cmd else cmd

    def details(self) -> dict:
        """Extra keys for ``fail_json`` (output tails, never secrets: they travel on stdin)."""
        out = {}
        if self.rc is not None:
            out["rc"] = self.rc
        if self.cmd:
            out["cmd"] = self.cmd
        if self.stdout:
            out["stdout"] = self.stdout[-4000:]
        if self.stderr:
            out["stderr"] = self.stderr[-4000:]
        return out


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    cmd: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# Layout and version.


@dataclass
class Layout:
    """Where things are in a code root."""

    flavour: str  # moodle | totara
    name: str  # public (Moodle >= 5.1) | server (Totara 13+) | root (older Moodle, Totara <= 12)
    root: str  # the code root: config.php lives here
    cli_root: str  # admin/cli is below this
    web_root: str  # version.php and the plugins are below this

    def cli(self, script: str) -> str:
        """Absolute path of a CLI: a bare name is ``admin/cli/<name>``; plugin CLIs are under the web root."""
        if "/" not in script:
            return os.path.join(self.cli_root, "admin", "cli", script)
        if script.startswith("admin/cli/"):
            return os.path.join(self.cli_root, script)
        return os.path.join(self.web_root, script)


def detect_layout(path: str) -> Layout:
    """Tell the layout from the files in ``path``; :class:`MoodleError` when it is no Moodle/Totara tree."""
    join = os.path.join
    if os.path.isfile(join(path, "public", "version.php")):
        cli_root = path if os.path.isdir(join(path, "admin", "cli")) else join(path, "public")
        return Layout("moodle", "public", path, cli_root, join(path, "public"))
    if os.path.isfile(join(path, "server", "version.php")):
        return Layout("totara", "server", path, join(path, "server"), join(path, "server"))
    if os.path.isfile(join(path, "version.php")) and os.path.isdir(join(path, "admin", "cli")):
        flavour = "totara" if os.path.isdir(join(path, "totara")) else "moodle"
        return Layout(flavour, "root", path, path, path)
    raise MoodleError(
        f"{path} is not a Moodle or Totara code root: expected public/version.php (Moodle 5.1+), "
        "server/version.php (Totara 13+) or version.php with admin/cli (older Moodle). "
        "Point 'path' at the folder that holds config.php (for example the deployment's 'current' link)."
    )


_VERSION_PATTERNS = {
    "version": r"^\s*\$version\s*=\s*([0-9.]+)\s*;",
    "release": r"^\s*\$release\s*=\s*(['\"])(.*?)\1\s*;",
    "branch": r"^\s*\$branch\s*=\s*(['\"])(.*?)\1\s*;",
    "maturity": r"^\s*\$maturity\s*=\s*([A-Z_]+)\s*;",
    "totara_version": r"^\s*\$TOTARA->version\s*=\s*(['\"])(.*?)\1\s*;",
    "totara_release": r"^\s*\$TOTARA->release\s*=\s*(['\"])(.*?)\1\s*;",
}


def parse_version_php(text: str) -> dict:
    """``$version``, ``$release``, ``$branch``, ``$maturity`` (and Totara's) from a ``version.php``."""
    out = {}
    for key, pattern in _VERSION_PATTERNS.items():
        match = re.search(pattern, text, re.MULTILINE)
        out[key] = None if match is None else match.group(match.lastindex)
    if out["totara_version"] or "$TOTARA" in text:
        out["flavour"] = "totara"
    return out


def read_deployment_record(path: str | None, code_root: str) -> dict:
    """The release this site runs: from the deployment record (JSON) when given, else from the
    ``releases/<id>`` folder that ``current`` points at. Returns ``{"release_id": ..., "record": ...}``."""
    record = None
    release_id = None
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as exc:
            raise MoodleError(
                f"the deployment record {path} cannot be read as JSON ({exc}); fix or remove it"
            ) from exc
        if isinstance(record, dict):
            for key in ("release_id", "release", "id"):
                if isinstance(record.get(key), (str, int)):
                    release_id = str(record[key])
                    break
    if release_id is None:
        real = os.path.realpath(code_root)
        if os.path.basename(os.path.dirname(real)) == "releases":
            release_id = os.path.basename(real)
    return {"release_id": release_id, "record": record}


# --------------------------------------------------------------------------------------------------------
# Which site (and tier) a code root belongs to, from the host.


def site_tier_facts(path: str, site: str | None = None, web_user: str | None = None) -> list[tuple]:
    """What tells which site the code root ``path`` belongs to: ``[(fact, site, tier), ...]``.

    Read on the host, as the lms role lays sites out (``<code_dir>/<site>/current ->
    releases/<id>``): the site folder that holds the code root, and the site named by the
    deployment record in it (``<site>/deployment.json``, root-owned); then the ``site`` and
    ``web_user`` options when they are site names (the role's site user is the site's name). Only
    names of the form ``<customer>-<tier>`` count."""
    facts = []
    folders = []
    real = os.path.realpath(path)
    if os.path.basename(os.path.dirname(real)) == "releases":
        folders.append(os.path.dirname(os.path.dirname(real)))
    folders.append(os.path.dirname(os.path.abspath(path)))
    for folder in dict.fromkeys(folders):
        name = os.path.basename(folder)
        match = SITE_NAME_RE.match(name)
        if match:
            facts.append((f"its code root is in the site folder {folder}", name, match.group(1)))
        record_path = os.path.join(folder, "deployment.json")
        try:
            with open(record_path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            record = None
        named = record.get("site") if isinstance(record, dict) else None
        match = SITE_NAME_RE.match(named) if isinstance(named, str) else None
        if match:
            facts.append((f"its deployment record {record_path} names site {named}", named, match.group(1)))
    for option, value in (("site", site), ("web_user", web_user)):
        match = SITE_NAME_RE.match(value) if isinstance(value, str) else None
        if match:
            facts.append((f"option {option}={value}", value, match.group(1)))
    return facts


def live_guard(params: dict, module: str, action: str) -> dict | None:
    """Refuse to ``action`` a Live site unless ``allow_live`` with a reason (:data:`LIVE_GUARD_ARGS`).

    The site counts as Live when any fact of :func:`site_tier_facts` says so. Returns ``None`` for
    a site that is not Live, else ``{"site", "reason"}`` (the override, to record)."""
    allow = bool(params.get("allow_live"))
    reason = params.get("allow_live_reason")
    if allow:
        if reason is None or not str(reason).strip():
            raise MoodleError(
                "allow_live: true needs allow_live_reason: why this Live site is changed "
                "(for example the incident or change ticket); it is recorded. Nothing was changed"
            )
        if len(str(reason)) > ALLOW_LIVE_REASON_MAX:
            raise MoodleError(
                f"allow_live_reason is {len(str(reason))} characters long; at most "
                f"{ALLOW_LIVE_REASON_MAX}. Nothing was changed"
            )
    facts = site_tier_facts(params["path"], params.get("site"), params.get("web_user"))
    live = [fact for fact in facts if fact[2] == "live"]
    if not live:
        return None
    name = live[0][1]
    if not allow:
        raise MoodleError(
            f"{module} refuses to {action} {name}: it is a Live site ("
            + "; ".join(fact[0] for fact in live)
            + "). To do it anyway set allow_live: true and allow_live_reason: '<why, e.g. the ticket>' "
            "(the reason is recorded). Nothing was changed"
        )
    return {"site": name, "reason": str(reason).strip()}


# --------------------------------------------------------------------------------------------------------
# Output parsing.


def parse_maintenance_status(stdout: str) -> str:
    """``maintenance.php`` without options (always rc 0): ``enabled``, ``scheduled`` or ``disabled``."""
    match = re.search(r"^Status:\s*(.*)$", stdout, re.MULTILINE | re.IGNORECASE)
    text = (match.group(1) if match else stdout).lower()
    if "later" in text or "scheduled" in text or "will be enabled" in text:
        return "scheduled"
    if "disabled" in text:
        return "disabled"
    if "enabled" in text:
        return "enabled"
    raise MoodleError(f"cannot read the maintenance status from maintenance.php's output: {stdout.strip()!r}")


def upgrade_state(rc: int, stdout: str = "", stderr: str = "") -> tuple[bool, bool]:
    """``upgrade.php --is-maintenance-required`` -> (pending, maintenance_required)."""
    if rc in UPGRADE_MAINTENANCE:
        return UPGRADE_MAINTENANCE[rc]
    raise MoodleError(
        f"upgrade.php --is-maintenance-required failed (rc={rc}): {_last_line(stderr or stdout)}",
        rc=rc,
        stdout=stdout,
        stderr=stderr,
    )


def upgrade_pending(rc: int, stdout: str = "", stderr: str = "") -> bool:
    """``upgrade.php --is-pending``: 0 nothing to do, 2 pending, anything else is an error."""
    if rc in UPGRADE_IS_PENDING:
        return UPGRADE_IS_PENDING[rc]
    raise MoodleError(
        f"upgrade.php --is-pending failed (rc={rc}): {_last_line(stderr or stdout)}",
        rc=rc,
        stdout=stdout,
        stderr=stderr,
    )


def checks_status(rc: int) -> str:
    """``checks.php`` Nagios exit code -> ok / warning / critical / unknown."""
    return NAGIOS.get(rc, "unknown")


_CHECK_LINE = re.compile(r"^\s*(OK|WARNING|CRITICAL|ERROR|UNKNOWN|INFO|NA)\s*[:\-]?\s*(.*)$", re.MULTILINE)


def parse_checks_output(stdout: str) -> list[dict]:
    """Lines of ``checks.php -v`` that start with a status word -> ``[{status, summary}]``."""
    return [
        {"status": m.group(1).lower(), "summary": m.group(2).strip()} for m in _CHECK_LINE.finditer(stdout)
    ]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CHECK_ROW = re.compile(r"^\s*([A-Z]+)\s*\|\s*(.+?)\s*\(([a-z0-9_]+)\)\s*$")
_CHECK_DETAIL = re.compile(r"^\s*\|\s?(.*)$")


def parse_checks_table(stdout: str) -> list[dict]:
    """The table of ``checks.php -v`` (colours stripped) -> ``[{status, name, id, details}]``."""
    rows: list[dict] = []
    for raw in _ANSI.sub("", stdout).splitlines():
        row = _CHECK_ROW.match(raw)
        if row and row.group(1) != "STATUS":
            rows.append(
                {"status": row.group(1).lower(), "name": row.group(2), "id": row.group(3), "details": ""}
            )
            continue
        detail = _CHECK_DETAIL.match(raw)
        if detail and rows and detail.group(1).strip():
            rows[-1]["details"] = (rows[-1]["details"] + " " + detail.group(1).strip()).strip()
    return rows


_SUMMARY_LINE = re.compile(r"^\s*([A-Z][A-Za-z ]+?):\s*(\d+)\s*$", re.MULTILINE)


def parse_upload_summary(stdout: str) -> dict:
    """The summary of ``uploaduser.php`` / ``uploadcourse.php`` (both exit 0 even when lines fail).

    ``"Courses created: 1\\nCourses errors: 0"`` -> ``{"courses_created": 1, "courses_errors": 0}``.
    """
    out = {}
    for match in _SUMMARY_LINE.finditer(stdout):
        key = re.sub(r"[^a-z0-9]+", "_", match.group(1).strip().lower()).strip("_")
        out[key] = int(match.group(2))
    return out


def upload_errors(summary: dict) -> int:
    """How many lines failed according to an upload summary (any ``*errors`` key)."""
    return sum(value for key, value in summary.items() if key.endswith("errors"))


def parse_restored_course_id(stdout: str) -> int:
    match = re.search(r"Restored course ID:\s*(\d+)", stdout)
    if not match:
        raise MoodleError(f"restore_backup.php did not report a restored course: {_last_line(stdout)!r}")
    return int(match.group(1))


def parse_helper_output(stdout: str) -> dict:
    """The JSON answer of the PHP helper: the text after the last marker (Moodle may print notices before)."""
    index = stdout.rfind(HELPER_MARKER)
    if index < 0:
        raise MoodleError(
            "the Moodle helper gave no answer: " + (_last_line(stdout) or "no output"), stdout=stdout
        )
    line = (
        stdout[index + len(HELPER_MARKER) :].splitlines()[0] if stdout[index + len(HELPER_MARKER) :] else ""
    )
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise MoodleError(f"the Moodle helper answered something that is not JSON: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise MoodleError(f"the Moodle helper answered {type(data).__name__}, not an object")
    return data


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def to_setting(value) -> str | None:
    """An Ansible value as Moodle stores settings: strings; booleans as 1/0; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        raise MoodleError(f"Moodle settings are strings; got a {type(value).__name__}: {value!r}")
    return str(value)


# --------------------------------------------------------------------------------------------------------
# Running things.


def run_command(cmd, *, cwd=None, stdin=None, timeout=600, env=None) -> CliResult:
    """Run ``cmd`` in its own process group; on timeout kill the whole group (runuser + php)."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise MoodleError(f"cannot run {cmd[0]}: {exc}", cmd=cmd) from exc
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise MoodleError(
            f"timed out after {timeout} s: {' '.join(mask_argv(cmd))}; raise 'timeout' if the site is slow, "
            "or look for a stuck lock or database",
            stdout=out,
            stderr=err,
            cmd=cmd,
        ) from exc
    return CliResult(proc.returncode, out, err, round(time.monotonic() - start, 3), list(cmd))


class MoodleSite:
    """One site's code root, run as its web user. ``runner`` replaces :func:`run_command` in unit tests."""

    def __init__(self, path, web_user="www-data", php="php", timeout=600, runner=None, euid=None):
        self.path = os.path.abspath(path)
        self.web_user = web_user
        self.php = php
        self.timeout = timeout
        self.runner = runner or run_command
        self.euid = os.geteuid() if euid is None else euid
        self.layout = detect_layout(self.path)

    @classmethod
    def from_params(cls, params: dict, **kw) -> MoodleSite:
        return cls(params["path"], params["web_user"], params["php"], params["timeout"], **kw)

    # ----- facts from files --------------------------------------------------------------------

    @property
    def config_php(self) -> str:
        return os.path.join(self.path, "config.php")

    def has_config(self) -> bool:
        return os.path.isfile(self.config_php)

    def code_version(self) -> dict:
        """Version of the code on disk (``version.php``), without running PHP."""
        version_file = os.path.join(self.layout.web_root, "version.php")
        with open(version_file, encoding="utf-8", errors="replace") as handle:
            info = parse_version_php(handle.read())
        info.setdefault("flavour", self.layout.flavour)
        if self.layout.flavour == "totara":
            info["flavour"] = "totara"
        return info

    # ----- running PHP -------------------------------------------------------------------------

    def user_prefix(self) -> list[str]:
        """How to become the web user: runuser as root, nothing as the web user, else refuse."""
        try:
            entry = pwd.getpwnam(self.web_user)
        except KeyError as exc:
            raise MoodleError(
                f"web user '{self.web_user}' does not exist on this host; set 'web_user' to the user "
                "PHP-FPM runs as (www-data on Debian)"
            ) from exc
        if entry.pw_uid == 0:
            raise MoodleError(
                "refusing to run Moodle as root (root-owned cache files break the site): "
                "set 'web_user' to the web server's user"
            )
        if self.euid == entry.pw_uid:
            return []
        if self.euid == 0:
            return ["runuser", "-u", self.web_user, "--"]
        raise MoodleError(
            f"running as uid {self.euid}, which can neither become '{self.web_user}' nor is it: "
            "use 'become: true' (root) or run the task as the web user"
        )

    def require_config(self) -> None:
        if not self.has_config():
            raise MoodleError(
                f"{self.config_php} does not exist: the site is not configured yet "
                "(write config.php first, then install the database)"
            )

    def cli(
        self, script: str, *args: str, ok=(0,), timeout=None, stdin=None, private_args=False
    ) -> CliResult:
        """Run a Moodle CLI script as the web user; rc outside ``ok`` raises :class:`MoodleError`.

        ``private_args``: the arguments go to the script on stdin, through a wrapper that puts them
        into ``$_SERVER['argv']``, so a secret among them never shows in the process list.
        """
        self.require_config()
        path = self.layout.cli(script)
        if not os.path.isfile(path):
            raise MoodleError(f"{path} does not exist: this Moodle/Totara version lacks that CLI")
        if private_args:
            result = self.run_php(
                "argv",
                ARGV_FROM_STDIN_PHP,
                stdin=json.dumps({"script": path, "args": list(args)}),
                cwd=os.path.dirname(path),
                timeout=timeout,
            )
        else:
            cmd = [*self.user_prefix(), self.php, path, *args]
            result = self.runner(cmd, cwd=os.path.dirname(path), stdin=stdin, timeout=timeout or self.timeout)
        if ok is not None and result.rc not in ok:
            name = os.path.basename(script)
            raise MoodleError(
                f"{name} failed (rc={result.rc}): {_last_line(result.stderr) or _last_line(result.stdout)}",
                rc=result.rc,
                stdout=result.stdout,
                stderr=result.stderr,
                cmd=result.cmd,
            )
        return result

    def run_php(self, name: str, program: str, *args: str, stdin=None, cwd=None, timeout=None) -> CliResult:
        """Run a PHP program (its text, from ``php/``) as the web user, from the CLI root unless
        ``cwd``: the text goes into a temporary file ``lms-<name>-*.php``, removed after the run.
        Secrets go on ``stdin``, never in ``args``: the command line shows in ``ps``."""
        fd, script = tempfile.mkstemp(prefix=f"lms-{name}-", suffix=".php")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(program)
            os.chmod(script, 0o644)  # the web user reads it; it holds no secrets
            return self.runner(
                [*self.user_prefix(), self.php, script, *args],
                cwd=cwd or self.layout.cli_root,
                stdin=stdin,
                timeout=timeout or self.timeout,
            )
        finally:
            os.unlink(script)

    def helper(self, op: str, params: dict | None = None, timeout=None) -> dict:
        """Run one operation of the PHP helper; its ``failed`` answers become :class:`MoodleError`."""
        return self.operation("helper", HELPER_PHP, op, params, timeout)

    def operation(self, name: str, program: str, op: str, params: dict | None = None, timeout=None) -> dict:
        """Run operation ``op`` of a PHP program of ``php/`` that answers JSON after the marker
        (the helper, the courseware loader), its parameters as JSON on stdin; its ``failed``
        answers become :class:`MoodleError`."""
        self.require_config()
        result = self.run_php(
            name, program, self.config_php, op, stdin=json.dumps(params or {}), timeout=timeout
        )
        try:
            data = parse_helper_output(result.stdout)
        except MoodleError as exc:
            raise MoodleError(
                f"Moodle failed while running '{op}' (rc={result.rc}): "
                + (_last_line(result.stderr) or _last_line(result.stdout) or "no output"),
                rc=result.rc,
                stdout=result.stdout,
                stderr=result.stderr,
            ) from exc
        if data.get("failed"):
            raise MoodleError(data.get("msg", f"'{op}' failed"), rc=result.rc, stdout=result.stdout[-2000:])
        data["_seconds"] = result.seconds
        return data

    # ----- CLI wrappers ------------------------------------------------------------------------

    def upgrade_status(self) -> dict:
        """``upgrade.php --is-maintenance-required`` -> ``{pending, maintenance_required}``."""
        result = self.cli("upgrade.php", "--is-maintenance-required", ok=None)
        if result.rc == 1 and "is-maintenance-required" in (result.stdout + result.stderr):
            # Moodle < 4.4 / Totara: the option is unknown. Every upgrade there needs maintenance.
            result = self.cli("upgrade.php", "--is-pending", ok=None)
            pending = upgrade_pending(result.rc, result.stdout, result.stderr)
            return {"pending": pending, "maintenance_required": pending}
        pending, maintenance = upgrade_state(result.rc, result.stdout, result.stderr)
        return {"pending": pending, "maintenance_required": maintenance}

    def upgrade(self, maintenance: bool = True, allow_unstable: bool = False) -> CliResult:
        """``upgrade.php --non-interactive``. Without ``maintenance`` (an upgrade Moodle says needs
        none, rc 3 above) it runs with ``--maintenance=false``, which purges no caches: they are
        purged after it."""
        args = ["--non-interactive"]
        if allow_unstable:
            args.append("--allow-unstable")
        if not maintenance:
            args.append("--maintenance=false")
        run = self.cli("upgrade.php", *args)
        if not maintenance:
            self.cli("purge_caches.php")
        return run

    def require_upgraded(self, stdout: str = "") -> None:
        """Fail when an upgrade is still pending after ``upgrade.php`` said it finished."""
        if self.upgrade_status()["pending"]:
            raise MoodleError(
                "upgrade.php finished but an upgrade is still pending; "
                "read its output and run the upgrade again",
                stdout=stdout,
            )

    def cfg_get(self, name: str, component: str | None = None) -> str | None:
        """A setting's value (``None`` when not set: rc 3)."""
        args = [f"--name={name}", "--no-eol"]
        if component and component != "core":  # --component=core would write to config_plugins
            args.append(f"--component={component}")
        result = self.cli("cfg.php", *args, ok=(CFG_FOUND, CFG_NOT_SET))
        return None if result.rc == CFG_NOT_SET else result.stdout

    def cfg_set(self, name: str, value: str | None, component: str | None = None) -> None:
        """Set (or with ``None`` unset) a setting; rc 4 means config.php forces it.

        The arguments reach ``cfg.php`` on stdin (``private_args``), never on the command line: a
        value may be a secret (an SMTP password, an API key) and argv shows in ``ps``."""
        args = [f"--name={name}", "--unset" if value is None else f"--set={value}"]
        if component and component != "core":  # --component=core would write to config_plugins
            args.append(f"--component={component}")
        result = self.cli("cfg.php", *args, ok=None, private_args=True)
        if result.rc == CFG_FORCED:
            raise MoodleError(forced_message(name, component), rc=result.rc, stderr=result.stderr)
        if result.rc != 0:
            raise MoodleError(
                f"cfg.php could not change {setting_label(name, component)} (rc={result.rc}): "
                + (_last_line(result.stderr) or _last_line(result.stdout)),
                rc=result.rc,
                stdout=result.stdout,
                stderr=result.stderr,
            )

    def checks(
        self, check_type: str = "status", check_filter: str | None = None, verbose: bool = False
    ) -> dict:
        """``checks.php --type=<type>``: overall Nagios status and the checks listed (not OK ones; all
        with ``verbose``). rc 1 is both WARNING and "PHP failed", so Moodle's ``!!! ... !!!`` error
        lines make it a failure (``-v --type=security`` dies on ``Class "curl" not found`` in 5.1)."""
        args = [f"--type={check_type}"]
        if verbose:
            args.append("-v")
        if check_filter:
            args.append(f"--filter={check_filter}")
        result = self.cli("checks.php", *args, ok=tuple(NAGIOS))
        error = re.search(r"^!!! (.*) !!!$", result.stdout + "\n" + result.stderr, re.MULTILINE)
        if error:
            raise MoodleError(
                f"checks.php --type={check_type} failed: {error.group(1)}",
                rc=result.rc,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        return {
            "status": checks_status(result.rc),
            "rc": result.rc,
            "checks": parse_checks_table(result.stdout),
        }

    def maintenance_status(self) -> dict:
        """``{state: enabled|scheduled|disabled, mode, scheduled_at, message}``, language-independent
        (``maintenance.php``'s status text is translated to the site's language)."""
        info = self.helper("maintenance_status")
        if info["cli_maintenance"] or info["web_maintenance"]:
            state = "enabled"
        elif info["maintenance_later"]:
            state = "scheduled"
        else:
            state = "disabled"
        return {
            "state": state,
            "mode": "cli" if info["cli_maintenance"] else ("web" if info["web_maintenance"] else None),
            "scheduled_at": info["maintenance_later"],
            "message": info["maintenance_message"],
        }


def setting_label(name: str, component: str | None) -> str:
    return f"{component}/{name}" if component and component != "core" else name


def forced_message(name: str, component: str | None) -> str:
    if component and component != "core":
        where = f"$CFG->forced_plugin_settings['{component}']['{name}']"
    else:
        where = f"$CFG->{name}"
    return (
        f"{setting_label(name, component)} is forced in config.php ({where}) and cannot be changed here: "
        "change config.php (its template) instead, or drop the setting from this task"
    )


def fail_module(module, exc: MoodleError, **extra) -> None:
    """``fail_json`` with the error's message and output tails."""
    module.fail_json(msg=str(exc), **exc.details(), **extra)


def environment_facts(site: MoodleSite, code: dict, info: dict) -> dict | None:
    """What the code's own admin/environment.xml requires for its branch, and what of it this host
    and database lack (``unmet``, empty when it can run). None when the code has no such file."""
    path = os.path.join(site.layout.web_root, "admin", "environment.xml")
    try:
        with open(path, encoding="utf-8") as handle:
            required = requirements(handle.read(), branch_name(code.get("branch")))
    except (OSError, ValueError, SyntaxError):  # no file, or not XML (ParseError is a SyntaxError)
        return None
    if required is None:
        return None
    installed = branch_name(info.get("db_branch")) if info.get("installed") else None
    problems = unmet(
        required,
        info.get("php_version", ""),
        info.get("php_extensions", ()),
        info.get("db_family"),
        info.get("db_server_version"),
        installed,
    )
    return dict(required, unmet=problems, installed_branch=installed)


def _version_number(version) -> float | None:
    try:
        return float(version)
    except (TypeError, ValueError):
        return None


def refuse_downgrade(facts: dict) -> None:
    """Moodle cannot go back to older code once its database is upgraded (``upgrade.php`` stops with
    "downgradedcore"): say so with both versions and the way back, before anything asks it to."""
    code, database = _version_number(facts["version"]), _version_number(facts["installed_version"])
    if code is None or database is None or code >= database:
        return
    flavour = str(facts["flavour"]).capitalize()
    raise MoodleError(
        f"refused: the code in {facts['path']} is {flavour} {facts['version']} ({facts['release']}), "
        f"older than the site's database ({facts['installed_version']}, {facts['installed_release']}); "
        "Moodle cannot downgrade a database. Deploy a release of this version or newer, or roll back "
        "(rollback.yml restores the snapshot taken before the upgrade); nothing was changed"
    )


def site_facts(site: MoodleSite, deployment_record: str | None = None, check_upgrade: bool = True) -> dict:
    """Everything ``lms_facts`` reports, in one dict (see its RETURN)."""
    code = site.code_version()
    deployment = read_deployment_record(deployment_record, site.path)
    facts = {
        "flavour": code.get("flavour") or site.layout.flavour,
        "layout": site.layout.name,
        "path": site.path,
        "code_root": os.path.realpath(site.path),
        "version": code["version"],
        "release": code["release"],
        "branch": code["branch"],
        "maturity": code["maturity"],
        "totara_version": code["totara_version"],
        "configured": site.has_config(),
        "installed": False,
        "installed_version": None,
        "installed_release": None,
        "database_tables": None,
        "upgrade_pending": None,
        "maintenance_required": None,
        "maintenance_enabled": False,
        "maintenance_mode": None,
        "maintenance_scheduled": None,
        "maintenance_message": None,
        "release_id": deployment["release_id"],
        "deployment": deployment["record"],
        "nonstandard_plugins": [],
        "missing_plugins": [],
        "plugins_to_upgrade": [],
        "wwwroot": None,
        "dataroot": None,
        "dbtype": None,
        "environment": None,
    }
    if not facts["configured"]:
        return facts
    info = site.helper("facts")
    facts.update(
        installed=info["installed"],
        installed_version=info["db_version"],
        installed_release=info["db_release"],
        database_tables=info["database_tables"],
        maintenance_enabled=bool(info["cli_maintenance"] or info["web_maintenance"]),
        maintenance_mode="cli" if info["cli_maintenance"] else ("web" if info["web_maintenance"] else None),
        maintenance_scheduled=info["maintenance_later"],
        maintenance_message=info["maintenance_message"],
        nonstandard_plugins=info["nonstandard_plugins"],
        missing_plugins=info["missing_plugins"],
        plugins_to_upgrade=info["plugins_to_upgrade"],
        wwwroot=info["wwwroot"],
        dataroot=info["dataroot"],
        dbtype=info["dbtype"],
        environment=environment_facts(site, code, info),
    )
    if facts["installed"] and check_upgrade:
        refuse_downgrade(facts)
        status = site.upgrade_status()
        facts["upgrade_pending"] = status["pending"]
        facts["maintenance_required"] = status["maintenance_required"]
    return facts

# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The estate report (playbooks/report.yml, docs/report.md): one row per site - release, Moodle
version and its branch's support, pending upgrade, maintenance, last deploy, last backup, last QA
refresh, drift between the tiers, policy conformance, the next change window - built from what
the play gathered, flagged where a person should look, and written as JSON (for tools;
files/estate-report.schema.json) and as one self-contained HTML page (inline CSS and SVG, no
script, nothing fetched).

Pure Python (standard library and the change-window module): tests/unit/test_estate_report.py
builds reports from fixed data and a fixed "now".

What the play hands in, per web host (``hosts``: host name -> what it registered, or None when
it registered nothing):

    {"ping": <ping result>, "code": <stat loop>, "records": <lms_deployment_info loop>,
     "facts": <lms_facts loop>, "audit_rows": [<lms_audit_rows of its sites>], "audited": [names]}

the loops' ``results`` each carrying ``item`` (the site's name); and per site its backups as
``lms_backup_info`` (with ``history``) answered on the controller (``backups``: site -> result).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re

try:
    from ansible.module_utils.change_window import ChangeWindowError, check, describe
except ImportError:  # tests: siblings on sys.path
    from change_window import ChangeWindowError, check, describe

SCHEMA_ID = "three-instance/estate-report/1"
UTC = dt.timezone.utc
TIERS = ("dev", "qa", "live")
#: Default: how old the newest backup of a tier may be before it is flagged (hours; None: never).
#: Live is backed up daily (DESIGN §1): a day and two hours of slack. Dev and QA have no backup duty.
DEFAULT_BACKUP_MAX_AGE_HOURS = {"dev": None, "qa": None, "live": 26}
#: Default: a branch whose security support ends within this many days is flagged.
DEFAULT_SUPPORT_WARNING_DAYS = 180
#: Outcomes of a deployment record that are a deploy (a refresh is a QA refresh).
DEPLOY_OUTCOMES = ("deployed", "rolled-back", "failed")
#: Messages from hosts are cut to this length in the report.
MAX_TEXT = 200
COLUMNS = (
    ("site", "Site"),
    ("release", "Release"),
    ("moodle", "Moodle and support"),
    ("upgrade", "Upgrade pending"),
    ("maintenance", "Maintenance"),
    ("deploy", "Last deploy"),
    ("backup", "Last backup"),
    ("refresh", "Last QA refresh"),
    ("drift", "Drift"),
    ("policy", "Policy"),
    ("window", "Next change window"),
)


class ReportError(ValueError):
    """Bad input to the report (lifecycle data, thresholds); the message names it."""


# ----- small helpers -----------------------------------------------------------------------------


def _text(value, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def parse_time(value) -> dt.datetime | None:
    """An ISO-8601 time (a trailing Z, no offset = UTC) or a date; None when absent or unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"{where}: {_text(value, 40)!r} is not a date (YYYY-MM-DD)") from None


def branch_name(code_branch) -> str | None:
    """Moodle's ``$branch`` ('405', '501') as people write it ('4.5', '5.1')."""
    text = str(code_branch or "")
    if not re.fullmatch(r"\d{3,4}", text):
        return None
    return f"{int(text[:-2])}.{int(text[-2:])}"


def _version_number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ----- inputs ------------------------------------------------------------------------------------


def load_lifecycle(data) -> dict[str, dict]:
    """files/moodle-lifecycle.yml, checked: branch -> {branch, lts, released, general_support_until,
    security_support_until} (dates as datetime.date)."""
    branches = data.get("branches") if isinstance(data, dict) else None
    if not isinstance(branches, list) or not branches:
        raise ReportError("the lifecycle data must be {branches: [{branch, released, ...}, ...]}")
    out = {}
    for i, entry in enumerate(branches):
        where = f"lifecycle branches[{i}]"
        if not isinstance(entry, dict) or not re.fullmatch(r"\d+\.\d+", str(entry.get("branch", ""))):
            raise ReportError(f"{where}: needs a branch such as '5.1'")
        name = str(entry["branch"])
        item = {"branch": name, "lts": bool(entry.get("lts", False))}
        for key in ("released", "general_support_until", "security_support_until"):
            item[key] = _date(entry.get(key), f"{where} ({name}) {key}")
        if not item["released"] <= item["general_support_until"] <= item["security_support_until"]:
            raise ReportError(
                f"{where} ({name}): released <= general_support_until <= security_support_until"
            )
        if name in out:
            raise ReportError(f"{where}: branch {name} is listed twice")
        out[name] = item
    return out


def check_thresholds(max_age_hours, warning_days) -> tuple[dict, int]:
    """The stale-backup thresholds per tier (hours, None for none) and the support warning (days)."""
    hours = dict(DEFAULT_BACKUP_MAX_AGE_HOURS)
    if max_age_hours is not None:
        if not isinstance(max_age_hours, dict) or not set(max_age_hours) <= set(TIERS):
            raise ReportError("backup_max_age_hours must map tiers (dev, qa, live) to hours or null")
        for tier, value in max_age_hours.items():
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ReportError(
                    f"backup_max_age_hours.{tier} must be a number of hours above 0 or null, "
                    f"not {_text(value, 40)!r}"
                )
            hours[tier] = value
    days = DEFAULT_SUPPORT_WARNING_DAYS if warning_days is None else warning_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ReportError(f"support_warning_days must be a whole number of days, not {_text(days, 40)!r}")
    return hours, days


def _by_item(loop_result) -> dict:
    """A registered loop result as {item: result}."""
    if not isinstance(loop_result, dict):
        return {}
    return {r.get("item"): r for r in loop_result.get("results") or [] if isinstance(r, dict)}


def _unreachable_msg(result) -> str | None:
    if isinstance(result, dict) and result.get("unreachable"):
        return _text(result.get("msg") or "unreachable")
    return None


def _silent_msg(ping) -> str | None:
    """Why a host did not answer the ping: unreachable, or it answered with a failure (a
    connection that reports its failures as a module's, such as podman's exec)."""
    if not isinstance(ping, dict):
        return None
    if ping.get("unreachable") or "ping" not in ping:
        return _text(ping.get("msg") or "unreachable")
    return None


def host_sites(raw) -> dict[str, dict]:
    """What one web host said about each of its sites: {site: {reachable, error, code, record,
    history, facts, facts_error, policy}}."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    dark = _silent_msg(raw.get("ping"))
    code, records, facts = _by_item(raw.get("code")), _by_item(raw.get("records")), _by_item(raw.get("facts"))
    for name in sorted(set(code) | set(records) | set(facts) | set(raw.get("sites") or [])):
        if not isinstance(name, str):
            continue
        site = {
            "reachable": dark is None,
            "error": dark,
            "code": None,
            "record": None,
            "history": [],
            "facts": None,
            "facts_error": None,
            "policy": None,
        }
        out[name] = site
        if dark:
            continue
        for result in (code.get(name), records.get(name), facts.get(name)):
            msg = _unreachable_msg(result)
            if msg:
                site.update(reachable=False, error=msg)
        if not site["reachable"]:
            continue
        # The play registers with failed_when: false, so a failure is a result without its payload.
        stat = code.get(name) or {}
        site["code"] = bool(stat["stat"].get("exists")) if isinstance(stat.get("stat"), dict) else None
        found = records.get(name) or {}
        if isinstance(found.get("records"), dict):
            site["record"] = found["records"].get(name)
            site["history"] = list((found.get("history") or {}).get(name) or [])
        elif found:
            site["error"] = _text(found.get("msg") or "the deployment record could not be read")
        read = facts.get(name) or {}
        if isinstance(read.get("lms"), dict):
            site["facts"] = read["lms"]
        elif read and not read.get("skipped"):
            site["facts_error"] = _text(read.get("msg") or "lms_facts failed")
        if name in (raw.get("audited") or []):
            rows = [r for r in raw.get("audit_rows") or [] if isinstance(r, dict) and r.get("site") == name]
            site["policy"] = {
                "checked": True,
                "settings": len(rows),
                "drift": sorted({str(r.get("setting")) for r in rows if not r.get("ok")}),
            }
    return out


# ----- cells -------------------------------------------------------------------------------------


def support_status(branch: str | None, flavour: str, lifecycle: dict, today: dt.date, warn_days: int) -> dict:
    """Where a branch stands in Moodle's schedule on ``today``."""
    entry = lifecycle.get(branch) if flavour == "moodle" and branch else None
    if entry is None:
        why = (
            "Totara: not in the Moodle schedule"
            if flavour == "totara"
            else "no lifecycle data for this branch"
        )
        return {"status": "unknown", "note": why, "lts": None, "general_support_until": None,
                "security_support_until": None, "days_left": None}  # fmt: skip
    security, general = entry["security_support_until"], entry["general_support_until"]
    days_left = (security - today).days
    if today > security:
        status = "ended"
    elif days_left <= warn_days:
        status = "ending"
    elif today > general:
        status = "security"
    else:
        status = "general"
    return {
        "status": status,
        "note": None,
        "lts": entry["lts"],
        "general_support_until": general.isoformat(),
        "security_support_until": security.isoformat(),
        "days_left": days_left,
    }


def _deploy_entry(entry: dict) -> dict:
    return {
        "at": entry.get("deployed_at"),
        "by": entry.get("deployed_by"),
        "release": entry.get("release"),
        "outcome": entry.get("outcome"),
        "maintenance_seconds": entry.get("maintenance_seconds"),
    }


def _newest(entries: list[dict], keep) -> dict | None:
    chosen = [e for e in entries if isinstance(e, dict) and keep(e)]
    chosen.sort(key=lambda e: parse_time(e.get("deployed_at")) or dt.datetime.min.replace(tzinfo=UTC))
    return chosen[-1] if chosen else None


def _timeline(site: dict) -> list[dict]:
    """The site's history with its current record (which the history holds too, usually)."""
    entries = list(site.get("history") or [])
    if site.get("record") and site["record"] not in entries:
        entries.append(site["record"])
    return entries


def backup_cell(result, tier: str, max_age: float | None, now: dt.datetime) -> dict:
    cell = {"max_age_hours": max_age, "count": None, "latest": None, "history": [], "error": None}
    if result is None:
        cell["error"] = "no backup store given (backup_store)"
        return cell
    if result.get("skipped"):
        cell["error"] = "its customer has no key of its own in backup_store.principals"
        return cell
    if not isinstance(result.get("backups"), list):  # registered with failed_when: false
        cell["error"] = _text(result.get("msg") or "the backup store could not be read")
        return cell
    cell["count"] = len(result.get("backups") or [])
    points = []
    for entry in result.get("history") or []:
        created = parse_time(entry.get("created"))
        if created is None:
            continue
        points.append(
            {
                "id": str(entry.get("id")),
                "created": _iso(created),
                "bytes": entry.get("bytes") if isinstance(entry.get("bytes"), int) else None,
                "release": entry.get("release_id"),
            }
        )
    points.sort(key=lambda p: p["created"])
    cell["history"] = points
    if points:
        latest = dict(points[-1])
        age = (now - parse_time(latest["created"])).total_seconds() / 3600
        latest["age_hours"] = round(age, 2)
        cell["latest"] = latest
    elif cell["count"]:
        cell["error"] = "backups listed, but no manifest could be read"
    return cell


def _drift(rows: dict[str, dict]) -> None:
    """Drift between one customer's tiers, into each row's ``drift``: QA not on Live's release; Dev
    behind QA (an older Moodle, or QA's release came to Dev after Dev's own, or never)."""
    dev, qa, live = rows.get("dev"), rows.get("qa"), rows.get("live")
    if qa and live and qa["release"] and live["release"] and qa["release"]["id"] != live["release"]["id"]:
        qa["drift"].append(f"QA runs {qa['release']['id']}, Live runs {live['release']['id']}")
    if not (dev and qa and dev["release"] and qa["release"]) or dev["release"]["id"] == qa["release"]["id"]:
        return
    dev_id, qa_id = dev["release"]["id"], qa["release"]["id"]
    dev_version = _version_number((dev["moodle"] or {}).get("version"))
    qa_version = _version_number((qa["moodle"] or {}).get("version"))
    if dev_version is not None and qa_version is not None and dev_version < qa_version:
        dev["drift"].append(
            f"Dev behind QA: Dev runs {dev_id} (Moodle {dev['moodle']['version']}), "
            f"QA runs {qa_id} (Moodle {qa['moodle']['version']})"
        )
        return
    first_seen: dict[str, dt.datetime] = {}
    for entry in dev.pop("_timeline", []):
        when = parse_time(entry.get("deployed_at"))
        if entry.get("release") and when and entry.get("outcome") != "failed":
            first_seen[entry["release"]] = min(when, first_seen.get(entry["release"], when))
    if qa_id not in first_seen:
        dev["drift"].append(f"Dev behind QA: QA runs {qa_id}, which Dev never ran")
    elif dev_id in first_seen and first_seen[qa_id] > first_seen[dev_id]:
        dev["drift"].append(f"Dev behind QA: Dev runs {dev_id}, older than QA's {qa_id}")


def build_report(
    sites: list[dict],
    hosts: dict,
    backups: dict | None,
    lifecycle_data,
    now: dt.datetime | None = None,
    backup_max_age_hours: dict | None = None,
    support_warning_days: int | None = None,
    estate: str | None = None,
    customer: str | None = None,
) -> dict:
    """The report document (files/estate-report.schema.json)."""
    now = (now or dt.datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    lifecycle = load_lifecycle(lifecycle_data)
    max_age, warn_days = check_thresholds(backup_max_age_hours, support_warning_days)
    said: dict[str, dict] = {}
    for raw in (hosts or {}).values():
        for name, site in host_sites(raw).items():
            said.setdefault(name, site)
    rows = []
    for record in sorted(sites, key=lambda s: (s["customer"], TIERS.index(s["tier"]), s["name"])):
        rows.append(_row(record, said.get(record["name"]), backups, lifecycle, now, max_age, warn_days))
    for name in sorted({r["customer"] for r in rows}):
        _drift({r["tier"]: r for r in rows if r["customer"] == name})
    for row in rows:
        row.pop("_timeline", None)
        row["flags"] = _flags(row)
    return {
        "schema": SCHEMA_ID,
        "generated_at": _iso(now),
        "estate": estate,
        "customer": customer,
        "thresholds": {"backup_max_age_hours": max_age, "support_warning_days": warn_days},
        "lifecycle": [
            {
                **entry,
                **{
                    k: entry[k].isoformat()
                    for k in ("released", "general_support_until", "security_support_until")
                },
            }
            for entry in sorted(lifecycle.values(), key=lambda e: e["released"])
        ],
        "sites": rows,
        "summary": {
            "sites": len(rows),
            "flagged": sum(1 for r in rows if r["flags"]),
            "unreachable": sum(1 for r in rows if r["reachable"] is False),
        },
    }


def _row(record, said, backups, lifecycle, now, max_age, warn_days) -> dict:
    name, tier = record["name"], record["tier"]
    flavour = record.get("flavour") or "moodle"
    web_hosts = list(record.get("web_hosts") or [])
    row = {
        "site": name,
        "customer": record["customer"],
        "tier": tier,
        "host": web_hosts[0] if web_hosts else None,
        "reachable": None,
        "error": None,
        "code": None,
        "release": None,
        "moodle": None,
        "upgrade_pending": None,
        "maintenance": None,
        "last_deploy": None,
        "last_refresh": None,
        "backup": backup_cell(None if backups is None else backups.get(name), tier, max_age.get(tier), now),
        "drift": [],
        "policy": None,
        "window": _window(record, now),
    }
    if backups is not None and name not in backups:
        row["backup"]["error"] = "not read"
    if said is None:
        row["error"] = "this site's host did not answer the play (it stopped or was not reached)"
        return row
    row.update(reachable=said["reachable"], error=said["error"], code=said["code"])
    if not said["reachable"]:
        return row
    record_now = said["record"] or {}
    if record_now.get("release"):
        row["release"] = {
            "id": str(record_now["release"]),
            "verified": bool(record_now.get("verified")),
            "sha256": record_now.get("sha256"),
            "outcome": record_now.get("outcome"),
        }
    facts = said["facts"]
    if facts:
        branch = branch_name(facts.get("branch"))
        row["moodle"] = {
            "flavour": facts.get("flavour") or flavour,
            "version": facts.get("version"),
            "release": facts.get("release"),
            "branch": branch,
            "installed": bool(facts.get("installed")),
            "support": support_status(
                branch, facts.get("flavour") or flavour, lifecycle, now.date(), warn_days
            ),
        }
        row["upgrade_pending"] = facts.get("upgrade_pending")
        row["maintenance"] = bool(facts.get("maintenance_enabled")) if facts.get("configured") else None
        if row["release"] is None and facts.get("release_id"):
            row["release"] = {
                "id": str(facts["release_id"]),
                "verified": False,
                "sha256": None,
                "outcome": None,
            }
    elif said["facts_error"]:
        row["error"] = said["facts_error"]
    timeline = _timeline(said)
    row["_timeline"] = timeline
    deploy = _newest(timeline, lambda e: e.get("outcome") in DEPLOY_OUTCOMES)
    row["last_deploy"] = _deploy_entry(deploy) if deploy else None
    refresh = _newest(timeline, lambda e: isinstance(e.get("refreshed_from"), dict))
    if refresh:
        row["last_refresh"] = {
            "at": refresh.get("deployed_at"),
            "from_site": refresh["refreshed_from"].get("site"),
            "backup_id": refresh["refreshed_from"].get("backup_id"),
            "release": refresh.get("release"),
        }
    row["policy"] = said["policy"]
    return row


def _window(record: dict, now: dt.datetime) -> dict:
    windows = record.get("maintenance_windows") or []
    try:
        result = check(record["name"], windows, _iso(now), None, record["tier"])
    except ChangeWindowError as exc:
        return {"constrained": True, "open": False, "next_open": None, "open_until": None, "windows": [],
                "error": _text(exc)}  # fmt: skip
    return {
        "constrained": bool(result["windows"]) or record["tier"] == "live",
        "open": result["open"],
        "next_open": result["next_open"],
        "open_until": result["open_until"],
        "windows": [describe(w) for w in result["windows"]],
        "error": None,
    }


def _flags(row: dict) -> list[dict]:
    """What a person should look at in this row: {column, kind, message}."""
    flags = []

    def flag(column, kind, message):
        flags.append({"column": column, "kind": kind, "message": _text(message)})

    if row["reachable"] is False:
        flag("site", "unreachable", f"{row['host']} unreachable: {row['error']}")
    elif row["error"]:
        flag("site", "error", row["error"])
    backup, limit = row["backup"], row["backup"]["max_age_hours"]
    if limit is not None:
        if backup["error"]:
            flag("backup", "unread", f"backups not read: {backup['error']}")
        elif backup["latest"] is None:
            flag("backup", "missing", f"no backup (a {row['tier']} site's must be under {limit:g} h old)")
        elif backup["latest"]["age_hours"] > limit:
            flag(
                "backup",
                "stale",
                f"newest backup {backup['latest']['age_hours']:.1f} h old (limit {limit:g} h)",
            )
    support = (row["moodle"] or {}).get("support") or {}
    if support.get("status") == "ended":
        flag("moodle", "support-ended", f"security support ended {support['security_support_until']}")
    elif support.get("status") == "ending":
        flag("moodle", "support-ending", f"security support ends {support['security_support_until']}")
    if row["upgrade_pending"]:
        flag("upgrade", "pending", "the code on disk is newer than the database: upgrade pending")
    if row["maintenance"]:
        flag("maintenance", "on", "maintenance mode is on")
    if row["release"] and not row["release"]["verified"]:
        flag("release", "unverified", f"{row['release']['id']} is not verified")
    for item in row["drift"]:
        flag("drift", "drift", item)
    if row["policy"] and row["policy"]["drift"]:
        flag("policy", "drift", "drift: " + ", ".join(row["policy"]["drift"]))
    if row["window"]["error"]:
        flag("window", "error", row["window"]["error"])
    elif row["tier"] == "live" and not row["window"]["open"] and not row["window"]["next_open"]:
        flag("window", "never", "no maintenance window ever opens: Live cannot change")
    if row["last_deploy"] and row["last_deploy"]["outcome"] == "failed":
        flag("deploy", "failed", f"the last deploy ({row['last_deploy']['release']}) failed")
    return flags


# ----- JSON and HTML -----------------------------------------------------------------------------


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _size(n) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # pragma: no cover


def _ago(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min ago"
    if hours < 48:
        return f"{hours:.1f} h ago"
    return f"{hours / 24:.1f} days ago"


def _when(value) -> str:
    """A time as a cell shows it: ``2026-11-22 02:10 UTC`` (the JSON keeps ISO 8601)."""
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else str(value or "?")


def _cells(row: dict) -> dict[str, str]:
    """The text of each cell (plain text; escaped when rendered)."""
    dark = row["reachable"] is False
    unknown = "unreachable" if dark else "not read"
    cells = {"site": f"{row['site']}\n{row['host'] or 'no web host'}"}
    if row["release"]:
        rel = row["release"]
        cells["release"] = f"{rel['id']}" + ("" if rel["verified"] else "\nnot verified")
    else:
        cells["release"] = (
            unknown if dark else ("no release (converge code)" if row["code"] is not False else "no code")
        )
    moodle = row["moodle"]
    if moodle:
        support = moodle["support"]
        status = {
            "general": f"supported (general fixes to {support['general_support_until']})",
            "security": f"security fixes only, to {support['security_support_until']}",
            "ending": (
                f"security support ends {support['security_support_until']} ({support['days_left']} days)"
            ),
            "ended": f"security support ended {support['security_support_until']}",
            "unknown": support["note"] or "no lifecycle data",
        }[support["status"]]
        lts = " LTS" if support.get("lts") else ""
        cells["moodle"] = f"{moodle['release'] or '?'} (branch {moodle['branch'] or '?'}{lts})\n{status}"
    else:
        cells["moodle"] = unknown if dark or row["error"] else "no code deployed"
    for key, column, yes, no in (
        ("upgrade_pending", "upgrade", "pending", "none"),
        ("maintenance", "maintenance", "ON", "off"),
    ):
        value = row[key]
        cells[column] = unknown if dark else ("?" if value is None else yes if value else no)
    deploy = row["last_deploy"]
    if deploy:
        seconds = deploy["maintenance_seconds"]
        cells["deploy"] = (
            f"{_when(deploy['at'])}\n{deploy['release']} ({deploy['outcome']}) by {deploy['by'] or '?'}\n"
            f"{'no maintenance' if seconds in (None, 0) else f'{seconds} s in maintenance'}"
        )
    else:
        cells["deploy"] = unknown if dark else "none recorded"
    backup = row["backup"]
    if backup["latest"]:
        latest = backup["latest"]
        cells["backup"] = (
            f"{_when(latest['created'])} ({_ago(latest['age_hours'])})\n{_size(latest['bytes'])}, "
            f"{backup['count']} backup{'s' if backup['count'] != 1 else ''}"
        )
    elif backup["error"]:
        cells["backup"] = f"not read: {backup['error']}"
    else:
        cells["backup"] = "none"
    refresh = row["last_refresh"]
    if refresh:
        cells["refresh"] = (
            f"{_when(refresh['at'])}\nfrom {refresh['from_site']} backup {refresh['backup_id']}"
        )
    else:
        cells["refresh"] = (unknown if dark else "never") if row["tier"] == "qa" else "-"
    cells["drift"] = "\n".join(row["drift"]) or ("unknown" if dark else "none")
    policy = row["policy"]
    if policy:
        cells["policy"] = (
            f"drift: {', '.join(policy['drift'])}"
            if policy["drift"]
            else f"conforms ({policy['settings']} settings)"
        )
    else:
        cells["policy"] = unknown if dark else "not audited"
    window = row["window"]
    if window["error"]:
        cells["window"] = window["error"]
    elif not window["constrained"]:
        cells["window"] = "no constraint (no windows)"
    elif window["open"]:
        until = f" until {_when(window['open_until'])}" if window["open_until"] else " (always)"
        cells["window"] = f"open now{until}\n" + "; ".join(window["windows"])
    elif window["next_open"]:
        cells["window"] = f"{_when(window['next_open'])}\n" + "; ".join(window["windows"])
    else:
        cells["window"] = "never (no window)"
    return cells


CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:1.5em;color:#1d2125;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}p.meta{color:#555;margin:.2em 0 1em}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #c8ccd0;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#eef1f4;position:sticky;top:0}td{white-space:pre-line}
tr.tier-live td.col-site{font-weight:bold}tr.customer-start td{border-top:3px solid #6a737b}
td.flag{background:#fde2e1;color:#7a1410}td.flag::before{content:"\\26A0  "}
td.unreachable{background:#eceff1;color:#555;font-style:italic}
.summary span{display:inline-block;margin-right:1.5em}.legend{font-size:12px}
figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.4em}
"""
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")


def _chart(report: dict) -> str:
    """Backup sizes over time, one line per site that has backups: inline SVG."""
    series = [(r["site"], r["backup"]["history"]) for r in report["sites"]]
    series = [(name, [p for p in pts if p["bytes"] is not None]) for name, pts in series]
    series = [(name, pts) for name, pts in series if pts]
    if not series:
        return '<p class="no-chart">No backup sizes to chart (no backups read).</p>'
    width, height, left, right, top, bottom = 900, 280, 80, 170, 15, 40
    times = [parse_time(p["created"]).timestamp() for _n, pts in series for p in pts]
    sizes = [p["bytes"] for _n, pts in series for p in pts]
    t0, t1 = min(times), max(times)
    if t1 - t0 < 60:
        t0, t1 = t0 - 3600, t1 + 3600
    top_size = max(sizes) * 1.1 or 1

    def x(t):
        return left + (t - t0) / (t1 - t0) * (width - left - right)

    def y(b):
        return top + (1 - b / top_size) * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Backup sizes over time">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="#fafbfc" stroke="#c8ccd0"/>',
    ]
    for i in range(5):
        size = top_size * i / 4
        out.append(
            f'<text x="{left - 6}" y="{y(size) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{html.escape(_size(size))}</text>"
        )
    for t, anchor in ((t0, "start"), (t1, "end")):
        label = dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="{anchor}">{label} UTC</text>'
        )
    for n, (name, pts) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        coords = [(x(parse_time(p["created"]).timestamp()), y(p["bytes"])) for p in pts]
        if len(coords) > 1:
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        for (a, b), p in zip(coords, pts):
            out.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colour}"><title>'
                f"{html.escape(name)} {html.escape(p['id'])}: "
                f"{html.escape(_size(p['bytes']))}</title></circle>"
            )
        ly = top + 14 + n * 18
        out.append(f'<rect x="{width - right + 12}" y="{ly - 9}" width="12" height="10" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 30}" y="{ly}" font-size="12">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_html(report: dict) -> str:
    """One self-contained page: the table (flagged cells marked) and the chart. Every value that a
    site, a host or an operator supplied is escaped."""
    e = html.escape
    summary = report["summary"]
    head = "".join(f'<th scope="col" data-col="{key}">{e(title)}</th>' for key, title in COLUMNS)
    body = []
    customer = None
    for row in report["sites"]:
        flagged: dict[str, list[str]] = {}
        for item in row["flags"]:
            flagged.setdefault(item["column"], []).append(item["message"])
        cells = _cells(row)
        classes = [f"tier-{row['tier']}"]
        if row["customer"] != customer:
            classes.append("customer-start")
            customer = row["customer"]
        tds = []
        for key, _title in COLUMNS:
            css = [f"col-{key}"]
            attrs = ""
            if key in flagged:
                css.append("flag")
                attrs = f' data-flag="{e(" ".join(i["kind"] for i in row["flags"] if i["column"] == key))}"'
                attrs += f' title="{e("; ".join(flagged[key]))}"'
            if row["reachable"] is False and cells[key] == "unreachable":
                css.append("unreachable")
            tds.append(f'<td class="{" ".join(css)}" data-col="{key}"{attrs}>{e(cells[key])}</td>')
        body.append(
            f'<tr class="{" ".join(classes)}" data-site="{e(row["site"])}" data-tier="{e(row["tier"])}">'
            + "".join(tds)
            + "</tr>"
        )
    limits = ", ".join(
        f"{tier} {'none' if hours is None else f'{hours:g} h'}"
        for tier, hours in report["thresholds"]["backup_max_age_hours"].items()
    )
    title = "Estate report" + (f" - {report['estate']}" if report.get("estate") else "")
    if report.get("customer"):
        title += f" - customer {report['customer']}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{e(title)}</h1>
<p class="meta">Generated {e(report["generated_at"])} (UTC). Read-only: facts from each site's first web host,
backups from the store with each customer's own key. Stale backup after: {e(limits)};
support flagged {report["thresholds"]["support_warning_days"]} days before it ends.</p>
<p class="summary"><span id="count-sites">{summary["sites"]} sites</span>
<span id="count-flagged">{summary["flagged"]} flagged</span>
<span id="count-unreachable">{summary["unreachable"]} unreachable</span></p>
<table id="estate">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
<figure>
<figcaption>Backup sizes over time (logical size: database dump, dataroot archive, config and the filedir
files each backup names)</figcaption>
{_chart(report)}
</figure>
</body>
</html>
"""

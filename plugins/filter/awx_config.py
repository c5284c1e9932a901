# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn awx/controller.yml into what the awx.awx modules take (awx/apply.yml), and
check it first: surveys, the workflow's nodes and its path to Live, schedules' RRULEs.

Pure Python (no controller needed): tests/unit/test_awx_config.py uses the same functions.
"""

from __future__ import annotations

import datetime as dt
import os

from ansible.errors import AnsibleFilterError

SURVEY_TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
#: Where the answers of a question with `choices_from` come from (apply.yml fills them).
CHOICE_SOURCES = ("customers", "sites", "release_manifests")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _choices(question: dict, choices: dict) -> list:
    if "choices_from" in question:
        return list(choices.get(question["choices_from"], []))
    return list(question.get("choices", []))


def survey_problems(where: str, survey: list, choices: dict) -> list[str]:
    problems = []
    seen = set()
    for index, q in enumerate(survey):
        at = f"{where} survey[{index}] ({q.get('variable', '?')})"
        for key in ("variable", "question", "type"):
            if not str(q.get(key, "")).strip():
                problems.append(f"{at}: '{key}' is missing")
        if q.get("variable") in seen:
            problems.append(f"{at}: the variable is asked twice")
        seen.add(q.get("variable"))
        if q.get("type") not in SURVEY_TYPES:
            problems.append(f"{at}: type '{q.get('type')}' is not one of {', '.join(SURVEY_TYPES)}")
        if not isinstance(q.get("required"), bool):
            problems.append(f"{at}: 'required' must be true or false")
        if q.get("type") in ("multiplechoice", "multiselect"):
            if "choices" in q and "choices_from" in q:
                problems.append(f"{at}: 'choices' and 'choices_from' exclude each other")
            if "choices_from" in q and q["choices_from"] not in CHOICE_SOURCES:
                problems.append(
                    f"{at}: choices_from '{q['choices_from']}' is not one of {', '.join(CHOICE_SOURCES)}"
                )
            options = _choices(q, choices)
            if not options:
                problems.append(f"{at}: no choices")
            if "default" in q and q["default"] not in options:
                problems.append(f"{at}: the default '{q['default']}' is not among the choices {options}")
        elif "choices" in q or "choices_from" in q:
            problems.append(f"{at}: choices only go with multiplechoice or multiselect")
        if q.get("type") in ("text", "textarea", "password"):
            low, high = q.get("min"), q.get("max")
            if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
                problems.append(f"{at}: text needs 0 <= min <= max (got min={low}, max={high})")
            elif q.get("required") and low < 1:
                problems.append(f"{at}: a required text needs min >= 1")
    return problems


def answer_problems(survey: list, answers: dict, choices: dict) -> list[str]:
    """What AWX refuses in a launch's survey answers (before any job runs): a required question left
    empty, an answer outside the choices, a text outside its lengths."""
    problems = []
    for q in survey:
        value = answers.get(q["variable"], q.get("default", ""))
        if value in ("", None):
            if q["required"]:
                problems.append(f"'{q['variable']}' is required")
            continue
        if q["type"] == "multiplechoice" and value not in _choices(q, choices):
            problems.append(f"'{q['variable']}': {value!r} is not one of {_choices(q, choices)}")
        if q["type"] in ("text", "textarea", "password") and not q["min"] <= len(str(value)) <= q["max"]:
            problems.append(f"'{q['variable']}': {len(str(value))} characters, not {q['min']}-{q['max']}")
    return problems


def rrule_problems(where: str, rrule: str) -> list[str]:
    """The subset of RFC 5545 RRULEs the configuration uses: FREQ, INTERVAL, BYDAY."""
    problems = []
    parts = dict(part.partition("=")[::2] for part in rrule.split(";"))
    if parts.get("FREQ") not in ("DAILY", "WEEKLY", "MONTHLY"):
        problems.append(f"{where}: rrule '{rrule}' needs FREQ=DAILY, WEEKLY or MONTHLY")
    if "INTERVAL" in parts and not parts["INTERVAL"].isdigit():
        problems.append(f"{where}: rrule '{rrule}': INTERVAL must be a number")
    if "BYDAY" in parts and not set(parts["BYDAY"].split(",")) <= set(WEEKDAYS):
        problems.append(f"{where}: rrule '{rrule}': BYDAY takes {','.join(WEEKDAYS)}")
    unknown = set(parts) - {"FREQ", "INTERVAL", "BYDAY"}
    if unknown:
        problems.append(f"{where}: rrule '{rrule}': unsupported parts {sorted(unknown)}")
    return problems


def workflow_problems(workflow: dict, templates: set) -> list[str]:
    """Nodes name existing templates, links name existing nodes, the graph has no cycle, and every
    path from a start node to a node that promotes to Live passes an approval node."""
    problems = []
    nodes = {n.get("id"): n for n in workflow.get("nodes", [])}
    if len(nodes) != len(workflow.get("nodes", [])):
        problems.append("workflow: node ids must be unique")
    for node_id, node in nodes.items():
        if ("template" in node) == ("approval" in node):
            problems.append(f"workflow node {node_id}: give a template or an approval, one of them")
        if "template" in node and node["template"] not in templates:
            problems.append(f"workflow node {node_id}: no job template '{node['template']}'")
        if "approval" in node and not str(node["approval"].get("name", "")).strip():
            problems.append(f"workflow node {node_id}: the approval needs a name")
        for link in ("success", "failure", "always"):
            for target in node.get(link, []):
                if target not in nodes:
                    problems.append(f"workflow node {node_id}: {link} names no node '{target}'")
    if problems:
        return problems
    children = {
        i: [t for link in ("success", "failure", "always") for t in n.get(link, [])] for i, n in nodes.items()
    }
    starts = [i for i in nodes if not any(i in c for c in children.values())]
    if not starts:
        return ["workflow: no start node (the graph is a cycle)"]

    def to_live(node):
        return node.get("extra_data", {}).get("to") == "live"

    def walk(node_id, approved, path):
        if node_id in path:
            problems.append(f"workflow: a cycle through {' -> '.join([*path, node_id])}")
            return
        node = nodes[node_id]
        approved = approved or "approval" in node
        if to_live(node) and not approved:
            problems.append(f"workflow: node {node_id} promotes to Live without an approval node before it")
        for child in children[node_id]:
            walk(child, approved, [*path, node_id])

    for start in starts:
        walk(start, False, [])
    return problems


def check(config: dict, repo: str, choices: dict) -> list[str]:
    """Every problem of the configuration, each naming where it is; [] when it is sound."""
    problems = []
    templates = {}
    for jt in config.get("job_templates", []):
        name = jt.get("name", "?")
        if name in templates:
            problems.append(f"job template '{name}' is defined twice")
        templates[name] = jt
        if not os.path.isfile(os.path.join(repo, jt.get("playbook", ""))):
            problems.append(f"job template '{name}': playbook {jt.get('playbook')} is not in the repository")
        problems += survey_problems(f"job template '{name}'", jt.get("survey", []), choices)
    workflow = config.get("workflow") or {}
    problems += survey_problems("workflow", workflow.get("survey", []), choices)
    problems += workflow_problems(workflow, set(templates))
    sched = config.get("schedules") or {}
    try:
        dt.datetime.strptime(str(sched.get("first_day", "")), "%Y%m%d")
    except ValueError:
        problems.append(f"schedules: first_day '{sched.get('first_day')}' is not YYYYMMDD")
    for entry in [*sched.get("per_customer", []), *sched.get("once", [])]:
        where = f"schedule '{entry.get('name')}'"
        if entry.get("template") not in templates:
            problems.append(f"{where}: no job template '{entry.get('template')}'")
        try:
            dt.datetime.strptime(str(entry.get("at", "")), "%H:%M")
        except ValueError:
            problems.append(f"{where}: at '{entry.get('at')}' is not HH:MM")
        problems += rrule_problems(where, str(entry.get("rrule", "")))
    return problems


def survey_spec(survey: list, choices: dict, name: str = "") -> dict:
    """The survey as AWX's API takes it (job_template / workflow_job_template survey_spec)."""
    spec = []
    for q in survey:
        item = {
            "question_name": q["question"],
            "question_description": q.get("description", ""),
            "variable": q["variable"],
            "type": q["type"],
            "required": q["required"],
            "default": q.get("default", ""),
        }
        if q["type"] in ("multiplechoice", "multiselect"):
            item["choices"] = _choices(q, choices)
        if "min" in q:
            item["min"], item["max"] = q["min"], q["max"]
        spec.append(item)
    return {"name": name, "description": "", "spec": spec}


def workflow_nodes(workflow: dict, organization: str) -> list[dict]:
    """The nodes as awx.awx.workflow_job_template's workflow_nodes."""
    out = []
    for node in workflow["nodes"]:
        if "approval" in node:
            ujt = {
                "name": node["approval"]["name"],
                "description": node["approval"].get("description", ""),
                "type": "workflow_approval",
                "timeout": node["approval"].get("timeout", 0),
            }
        else:
            ujt = {"name": node["template"], "type": "job_template", "organization": {"name": organization}}
        entry = {
            "identifier": node["id"],
            "unified_job_template": ujt,
            "related": {
                f"{link}_nodes": [{"identifier": t} for t in node.get(link, [])]
                for link in ("success", "failure", "always")
            },
        }
        if node.get("extra_data"):
            entry["extra_data"] = node["extra_data"]
        out.append(entry)
    return out


def schedules(config: dict, customers: list) -> list[dict]:
    """Every schedule as awx.awx.schedule takes it; per-customer ones spread over their minutes."""
    sched = config["schedules"]
    out = []

    def rrule(at_minute: int, rule: str) -> str:
        hour, minute = divmod(at_minute % (24 * 60), 60)
        return f"DTSTART;TZID={sched['timezone']}:{sched['first_day']}T{hour:02d}{minute:02d}00 RRULE:{rule}"

    for entry in sched.get("per_customer", []):
        hour, minute = (int(x) for x in entry["at"].split(":"))
        for index, customer in enumerate(customers):
            offset = index * entry.get("spread_minutes", 0) // max(len(customers), 1)
            out.append(
                {
                    "name": entry["name"].format(customer=customer),
                    "unified_job_template": entry["template"],
                    "rrule": rrule(hour * 60 + minute + offset, entry["rrule"]),
                    "extra_data": {**entry.get("extra_data", {}), "customer": customer},
                }
            )
    for entry in sched.get("once", []):
        hour, minute = (int(x) for x in entry["at"].split(":"))
        out.append(
            {
                "name": entry["name"],
                "unified_job_template": entry["template"],
                "rrule": rrule(hour * 60 + minute, entry["rrule"]),
                "extra_data": dict(entry.get("extra_data", {})),
            }
        )
    return out


def _check_filter(config, repo, choices):
    return check(config, repo, choices)


def _survey_filter(survey, choices, name=""):
    try:
        return survey_spec(survey, choices, name)
    except KeyError as exc:
        raise AnsibleFilterError(f"awx_survey_spec: a question lacks {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "awx_config_problems": _check_filter,
            "awx_survey_spec": _survey_filter,
            "awx_workflow_nodes": workflow_nodes,
            "awx_schedules": schedules,
        }

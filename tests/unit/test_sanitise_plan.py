"""Unit tests of plugins/module_utils/sanitise.py: input validation, the plan, verification rules and
the PHP run protocol (fakes; the real sanitiser runs in tests/integration/test_sanitise.py)."""

from __future__ import annotations

import json
import os
import pwd

import moodle_cli as mc
import pytest
import sanitise as sn


def plan(**params):
    return sn.build_plan({"email_domain": "invalid", **params})


def test_plan_defaults():
    p = plan(keep_usernames=["tutor", "admin", "admin", " "], keep_emails=["Jane@Example.org"])
    assert p["keep_usernames"] == ["admin", "tutor"]
    assert p["keep_emails"] == ["jane@example.org"]
    assert p["keep_guest"] is True and p["keep_main_admin"] is False
    assert p["action"] == "suspend" and p["purge"] is True and p["check_mode"] is False
    assert p["settings"] == [{"name": "noemailever", "plugin": None, "value": "1"}]
    fields = p["user_update"]["set"]
    assert fields["username"] == "@NAME@" and fields["email"] == "@EMAIL@"
    assert fields["suspended"] == "1" and fields["auth"] == "'nologin'"
    assert "deleted" not in fields
    for personal in ("idnumber", "phone1", "address", "institution", "department", "description", "lastip"):
        assert fields[personal] == "''"
    tables = [s["table"] for s in p["delete_steps"]]
    assert "user_enrolments" not in tables
    for table in ("user_info_data", "messages", "notifications", "logstore_standard_log", "external_tokens"):
        assert table in tables
    # Messages go before the conversations and members they are found through.
    assert (
        tables.index("messages")
        < tables.index("message_conversations")
        < tables.index("message_conversation_members")
    )
    for step in p["delete_steps"] + p["update_steps"] + [p["user_update"]]:
        assert sn.NOT_KEPT in step["where"] or "NOT EXISTS" in step["where"], step


def test_plan_delete_action_and_divert():
    p = plan(action="delete", mail={"mode": "divert", "divert_to": "qa@provider.example"})
    assert p["user_update"]["set"]["deleted"] == "1"
    assert {"user_enrolments", "role_assignments"} <= {s["table"] for s in p["delete_steps"]}
    assert p["settings"] == [
        {"name": "noemailever", "plugin": None, "value": None, "optional": True},
        {"name": "divertallemailsto", "plugin": None, "value": "qa@provider.example"},
        {"name": "divertallemailsexcept", "plugin": None, "value": ""},
    ]


def test_plan_mail_unchanged_for_a_first_build():
    """A first build (lms_restore) removes people from a site whose tier sets its own mail (Live
    delivers): the plan touches no mail setting."""
    p = plan(action="delete", mail={"mode": "unchanged"})
    assert p["settings"] == []
    assert p["user_update"]["set"]["deleted"] == "1"


def test_plan_settings_values():
    p = plan(
        settings=[
            {"name": "enablewebservices", "value": False},
            {"name": "server_url", "plugin": "mod_bigbluebuttonbn", "value": "https://sandbox.invalid"},
            {"name": "apikey", "plugin": "core", "value": None},
            {"name": "maxbytes", "value": 1024},
        ]
    )
    assert p["settings"][:4] == [
        {"name": "enablewebservices", "plugin": None, "value": "0"},
        {"name": "server_url", "plugin": "mod_bigbluebuttonbn", "value": "https://sandbox.invalid"},
        {"name": "apikey", "plugin": None, "value": None},
        {"name": "maxbytes", "plugin": None, "value": "1024"},
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"email_domain": "not a domain"}, "email_domain"),
        ({"email_domain": ""}, "email_domain"),
        ({"action": "erase"}, "action"),
        ({"mail": {"mode": "divert"}}, "divert_to"),
        ({"mail": {"mode": "smtp"}}, "mail.mode"),
        ({"keep_usernames": ["Tutor"]}, "lower case"),
        ({"keep_emails": ["tutor"]}, "not an email"),
        ({"settings": [{"value": 1}]}, "needs a name"),
        ({"settings": [{"name": "x", "value": [1]}]}, "strings or numbers"),
    ],
)
def test_plan_refuses_bad_input(params, message):
    with pytest.raises(sn.SanitiseError, match=message):
        sn.build_plan({"email_domain": "invalid", **params})


def clean_report(**changes):
    report = {
        "active_not_allowed": 0,
        "active_samples": [],
        "real_emails": 0,
        "real_email_samples": [],
        "email_domain": "invalid",
        "mail": {"noemailever": True, "divertallemailsto": "", "divertallemailsexcept": ""},
    }
    report.update(changes)
    return report


def test_verification_rules():
    assert sn.verification_problems(clean_report()) == []
    diverted = {"noemailever": False, "divertallemailsto": "qa@x.example", "divertallemailsexcept": ""}
    assert sn.verification_problems(clean_report(mail=diverted)) == []
    problems = sn.verification_problems(
        clean_report(
            active_not_allowed=2,
            active_samples=["jdoe", "asmith"],
            real_emails=1,
            real_email_samples=[7],
            mail={"noemailever": False, "divertallemailsto": "", "divertallemailsexcept": ""},
        )
    )
    assert problems == [
        "2 users that are not allowed are still active (for example: jdoe, asmith)",
        "1 users that are not allowed still have an email address outside @invalid (user ids: 7)",
        "mail is neither disabled (noemailever) nor diverted (divertallemailsto)",
    ]
    leaky = dict(diverted, divertallemailsexcept="@customer\\.example")
    assert "divertallemailsexcept" in sn.verification_problems(clean_report(mail=leaky))[0]


class FakeRunner:
    def __init__(self, stdout):
        self.stdout = stdout
        self.calls = []

    def __call__(self, cmd, cwd=None, stdin=None, timeout=None):
        with open(cmd[-3]) as script:
            self.calls.append({"cmd": cmd, "stdin": stdin, "script": script.read()})
        return mc.CliResult(0, self.stdout, "", 0.1, cmd)


def fake_site(tmp_path, stdout):
    (tmp_path / "public").mkdir(parents=True)
    (tmp_path / "public" / "version.php").write_text("<?php\n$version = 2025100600.02;\n")
    (tmp_path / "admin" / "cli").mkdir(parents=True)
    (tmp_path / "config.php").write_text("<?php\n")
    nobody = pwd.getpwnam("nobody").pw_uid  # as if the module ran as the web user: no runuser
    runner = FakeRunner(stdout)
    return mc.MoodleSite(str(tmp_path), web_user="nobody", runner=runner, euid=nobody), runner


def test_run_operation_sends_the_plan_on_stdin(tmp_path):
    answer = {"changed": True, "counts": {"user": 3}}
    site, runner = fake_site(tmp_path, "notice\n@@LMS-RESULT@@" + json.dumps(answer) + "\n")
    assert sn.sanitise(site, {"email_domain": "invalid", "keep_usernames": ["tutor"]}) == answer
    call = runner.calls[0]
    assert call["cmd"][-2:] == [str(tmp_path / "config.php"), "sanitise"]
    assert json.loads(call["stdin"])["keep_usernames"] == ["tutor"]
    assert "start_delegated_transaction" in call["script"]
    assert not os.path.exists(call["cmd"][-3])  # the temp script is gone


def test_run_operation_failure_is_an_error(tmp_path):
    site, _ = fake_site(tmp_path, '@@LMS-RESULT@@{"failed": true, "msg": "x is forced in config.php"}\n')
    with pytest.raises(sn.SanitiseError, match=r"forced in config\.php"):
        sn.sanitise(site, {"email_domain": "invalid"})
    site, _ = fake_site(tmp_path / "other", "PHP Fatal error: boom\n")
    with pytest.raises(mc.MoodleError, match="Moodle failed while running 'verify'"):
        sn.verify(site, {"email_domain": "invalid"})

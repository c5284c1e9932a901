"""Tier policy for mail, for real (DESIGN rules 6 and 11, docs/tier-policy.md): a local SMTP catcher
gets Live's mail for the real recipient, QA's only at the divert address, Dev's not at all.

The estate, sites and config.php rendering are test_tier_policy's (one copy of the session's site,
each tier its own wwwroot; the lms role's own template renders each tier's config.php from the
estate's site record). Here the customer has a mail relay - an ``aiosmtpd`` server that only takes
mail after ``AUTH`` with ``lms_smtp_user``/``lms_smtp_password`` - which the policy forces into
Live's (``deliver``) and QA's (``divert`` to its mailbox) config.php; Dev keeps its default (``off``).
The database carries a relay of its own (a second catcher, no AUTH), as an admin's setting or a copy
of another site would: Dev's mail, if Moodle sent any, would reach it.

The mail is triggered through Moodle's own path: a password-reset request posted to
``login/forgot_password.php`` on the site served over HTTP (``php -S``), for a learner with a real
(deliverable) address. Moodle's own records then say whether it sent: the reset request is stored on
every tier (the path ran), and the user's ``email_send_count`` (raised by email_to_user only after
the mailer succeeded) goes up on Live and QA, not on Dev, whose page carries Moodle's developer
message "Not sending email due to $CFG->noemailever" (debug is on on Dev).
"""

from __future__ import annotations

import email
import email.policy
import http.cookiejar
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import moodle_site as ms
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from test_sanitise import WebServer
from test_tier_policy import REPO, TIERS, estate, playbook, use_tier  # noqa: F401 - estate is a fixture

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

QA_MAILBOX = "lms-qa@testers.example.org"  # not .invalid: Moodle silently drops mail to .invalid
RELAY_USER = "lms-relay"
RELAY_PASSWORD = "Relay-pass-7f3c9e"  # stands for the Vault secret: never printed
LEARNER = {tier: f"learner-{tier}" for tier in TIERS}
ADDRESS = {tier: f"learner.{tier}@students.example.org" for tier in TIERS}
NOT_SENT = "Not sending email due to $CFG->noemailever config setting"


class Catcher:
    """An SMTP server on 127.0.0.1 that keeps what it receives: envelope, message and, when it
    requires AUTH (PLAIN/LOGIN without TLS, on localhost only), who logged in."""

    def __init__(self, login: tuple[str, str] | None = None):
        self.login = login
        self.messages: list[dict] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        auth = (
            {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
            if login
            else {}
        )
        self.port = ms.free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **auth)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == self.login
        with self.lock:
            self.auth_attempts.append((mechanism, user, ok))
        # handled=False: a refused login gets aiosmtpd's "535 credentials invalid"
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "login": session.auth_data if session.authenticated else None,
                    "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
                }
            )
        return "250 OK"

    def take(self) -> tuple[list[dict], list[tuple[str, str, bool]]]:
        """What arrived since the last call, and the AUTH attempts (mechanism, user, accepted)."""
        with self.lock:
            messages, self.messages = self.messages, []
            attempts, self.auth_attempts = self.auth_attempts, []
        return messages, attempts

    def __enter__(self) -> Catcher:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class _Form(HTMLParser):
    """The hidden and text inputs of the page's forgot-password form."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "forgot_password.php" in (attrs.get("action") or ""):
            self.inside = True
        elif tag == "input" and self.inside and attrs.get("name") and attrs.get("type") != "submit":
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


def request_password_reset(url: str, username: str) -> str:
    """What a learner does on the login page's "Forgotten your password?": the form, then a post
    with the username. Returns the page Moodle answers with."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = _Form()
    form.feed(browser.open(url + "/login/forgot_password.php", timeout=60).read().decode())
    assert "sesskey" in form.fields and "username" in form.fields, form.fields
    data = {**form.fields, "username": username, "submit": "Search"}
    try:
        answer = browser.open(
            url + "/login/forgot_password.php", data=urllib.parse.urlencode(data).encode(), timeout=60
        )
    except urllib.error.HTTPError as exc:  # Moodle's error page (e.g. "cannotmailconfirm")
        return f"HTTP {exc.code}\n" + exc.read().decode()
    return answer.read().decode()


def moodle_message(page: str) -> str:
    """The notices and errors of a Moodle page, for failure messages."""
    found = re.findall(
        r'<div[^>]*class="[^"]*(?:alert|box|notifyproblem|errorbox)[^"]*"[^>]*>(.*?)</div>', page, re.S
    )
    text = " | ".join(re.sub(r"<[^>]+>|\s+", " ", f).strip() for f in found)
    return text[:1500] or page[:1500]


# What Moodle has recorded for a user: the pending reset request and how many mails it sent.
RECORDS = """
$u = $DB->get_record('user', ['username' => %s], '*', MUST_EXIST);
echo json_encode([
    'resets' => $DB->count_records('user_password_resets', ['userid' => $u->id]),
    'sent' => (int)get_user_preferences('email_send_count', -1, $u->id),
]), "\\n";
"""

SEED = """
require_once($CFG->dirroot . '/user/lib.php');
// The database's own mail settings, as an admin sets them: a relay (the second catcher) and the
// no-reply sender. config.php overrides them where the policy forces a relay.
set_config('smtphosts', %s);
set_config('noreplyaddress', 'noreply@lms.example.org');
foreach (%s as $username => $address) {
    $id = user_create_user((object)[
        'username' => $username, 'password' => 'Learner-pass-1!', 'email' => $address,
        'firstname' => 'Learner', 'lastname' => $username, 'auth' => 'manual', 'confirmed' => 1,
        'mnethostid' => $CFG->mnet_localhost_id,
    ]);
    // set_send_count() only counts up a preference that exists
    set_user_preference('email_send_count', 0, $id);
}
"""


def records(clone, tier: str) -> dict:
    out = clone.php_eval(RECORDS % ms._php_literal(LEARNER[tier])).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mail(estate):  # noqa: F811 - the fixture imported above
    """The estate of test_tier_policy with the customer's relay (AUTH) for Live and QA, QA diverting to
    a deliverable mailbox, learners with real addresses, and the database's own relay."""
    with Catcher(login=(RELAY_USER, RELAY_PASSWORD)) as relay, Catcher() as db_relay:
        path = estate["base"] / "estate.yml"
        data = yaml.safe_load(path.read_text())
        acme = data["customers"]["acme"]
        acme["vars"].update(
            lms_smtp_host=f"127.0.0.1:{relay.port}",
            lms_smtp_user=RELAY_USER,
            lms_smtp_password=RELAY_PASSWORD,
        )
        acme["tiers"]["qa"]["vars"].update(lms_mail="divert", lms_mail_divert_to=QA_MAILBOX)
        path.write_text(yaml.safe_dump(data))
        clone = estate["clone"]
        clone.php_eval(
            SEED
            % (
                ms._php_literal(f"127.0.0.1:{db_relay.port}"),
                ms._php_literal({LEARNER[t]: ADDRESS[t] for t in TIERS}),
            )
        )
        yield {**estate, "relay": relay, "db_relay": db_relay}


@pytest.mark.parametrize("tier", TIERS)
def test_password_reset_mail_reaches_only_whom_the_tier_allows(mail, tier):
    clone, relay, db_relay = mail["clone"], mail["relay"], mail["db_relay"]
    shared = use_tier(mail, tier)
    text = shared.read_text()
    assert (f"$CFG->smtphosts = '127.0.0.1:{relay.port}';" in text) == (tier != "dev")
    assert ("$CFG->noemailever = true;" in text) == (tier == "dev")
    before = records(clone, tier)
    assert before == {"resets": 0, "sent": 0}, before

    web = WebServer(mail["ports"][tier]).start(clone)
    try:
        answer = request_password_reset(web.url, LEARNER[tier])
    finally:
        web.stop()
    (got, attempts), (got_db, _) = relay.take(), db_relay.take()
    after = records(clone, tier)
    # Moodle's own path ran on every tier: the reset request is stored.
    assert after["resets"] == 1, (after, moodle_message(answer))
    # Whatever the tier, nothing leaves through the database's relay: config.php's relay, or nothing.
    assert got_db == [], [(m["rcpt_tos"], m["login"]) for m in got_db]

    if tier == "dev":
        assert got == [] and attempts == [], [m["rcpt_tos"] for m in got]
        assert after["sent"] == 0  # email_to_user returned before the mailer
        assert NOT_SENT in answer, moodle_message(answer)
        assert "If you supplied a correct username" in answer, moodle_message(answer)
        return

    assert len(got) == 1, ([m["rcpt_tos"] for m in got], attempts, moodle_message(answer))
    assert after["sent"] == 1, after  # the mailer reported success
    assert "If you supplied a correct username" in answer and NOT_SENT not in answer, moodle_message(answer)
    mail_in = got[0]
    message = mail_in["message"]
    # The relay's account from the policy (lms_smtp_user/lms_smtp_password), over AUTH.
    assert mail_in["login"] == RELAY_USER, attempts
    assert attempts and all(ok for _, user, ok in attempts if user == RELAY_USER), attempts
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"{mail['ports'][tier]}/login/forgot_password.php?token=" in body, body
    assert mail_in["mail_from"] == "noreply@lms.example.org"
    if tier == "live":
        assert mail_in["rcpt_tos"] == [ADDRESS["live"]]
        assert ADDRESS["live"] in message["To"]
        assert "[DIVERTED" not in message["Subject"]
    else:  # qa
        assert mail_in["rcpt_tos"] == [QA_MAILBOX]  # the learner is no envelope recipient
        assert ADDRESS["qa"] not in message["To"] and QA_MAILBOX in message["To"]
        assert message["Subject"].startswith(f"[DIVERTED {ADDRESS['qa']}]"), message["Subject"]

    # The audit reads the relay back as forced; the lms role's tasks never print the password, even
    # at -vvv (its part of the output starts with the include of the role).
    audit = playbook(mail, str(REPO / "playbooks/audit.yml"), "-vvv", "-e", f"site=acme-{tier}")
    assert audit.returncode == 0, audit.tail
    assert f"acme-{tier} | smtppass | (secret, forced) | (set, forced) | ok" in audit.stdout
    assert f"acme-{tier} | smtphosts | 127.0.0.1:{relay.port} (forced)" in audit.stdout
    role_part = audit.stdout[audit.stdout.index("TASK [Read and compare each site]") :]
    assert RELAY_PASSWORD not in role_part + audit.stderr


def test_the_role_refuses_deliver_on_qa_before_config_php_changes(mail):
    """DESIGN rule 6 at the role: the policy entry point stops the render, naming site and key, and
    prints no secret at -v (one check over all sites: a loop's result would carry the site records)."""
    path = mail["base"] / "estate.yml"
    good = path.read_text()
    data = yaml.safe_load(good)
    data["customers"]["acme"]["tiers"]["qa"]["vars"]["lms_mail"] = "deliver"
    shared = mail["base"] / "srv" / "acme-qa" / "shared" / "config.php"
    before = shared.read_bytes() if shared.exists() else None
    path.write_text(yaml.safe_dump(data))
    try:
        render = playbook(mail, "-v", "--limit", "hqa", str(mail["base"] / "render.yml"))
    finally:
        path.write_text(good)
    assert render.returncode != 0
    assert "site acme-qa: lms_mail deliver is refused on qa" in render.stdout, render.tail
    assert (shared.read_bytes() if shared.exists() else None) == before
    assert RELAY_PASSWORD not in render.stdout + render.stderr


def test_the_audit_prints_no_secret_at_v(mail):
    audit = playbook(mail, str(REPO / "playbooks/audit.yml"), "-v", "-e", "site=acme-live")
    assert audit.returncode == 0, audit.tail
    assert RELAY_PASSWORD not in audit.stdout + audit.stderr

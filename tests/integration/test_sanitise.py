"""lms_sanitise against real Moodle 5.1 schemas (PostgreSQL; MariaDB with the ``moodle_site_mariadb``
fixture): a copy of the session's site is seeded in bulk with learners (``TI_SANITISE_LEARNERS``,
default 10,000), their enrolments, profile fields, preferences, conversations, messages,
notifications and logs, then sanitised. Every text column of every table is searched for the seeded
personal data afterwards; courses, content, kept users and their data must be unchanged.

The seeding functions are also used by ``benchmarks/sanitise.py``.
"""

# ruff: noqa: S608 - the seeding SQL is built from this file's constants, not from input

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import moodle_site as ms
import pytest

LEARNERS = int(os.environ.get("TI_SANITISE_LEARNERS", "10000"))
#: Every seeded personal value holds one of these, so that a search finds any that is left.
# Long enough never to turn up by chance in random data (keys, hashes, tokens): "qxz" alone was
# found inside mod_lti's generated private key.
MARKERS = ("qxzvkw", "realmail")
LEARNER_PASSWORD = "Learner-pass-1!"
STAFF = "jane.staff"
KEEP = ["admin", "tutor", "student", STAFF]
COURSES = ("SAN101", "SAN102", "SAN103")
NOW = 1_700_000_000


# -------------------------------------------------------------------------------------------------------
# A copy of a site (its own database and dataroot), so that the session's site stays as it was.


def run_sql(site: ms.MoodleTestSite, sql: str, db: str | None = None) -> str:
    """SQL on the site's database server, in the site's database (or ``db``)."""
    if site.db.dbtype == "pgsql":
        return site.db.psql(sql, db=db or site.dbname)
    return site.db.mysql(sql, db=db or site.dbname)


def other_users(site: ms.MoodleTestSite) -> int:
    """Users that are neither kept nor guest: those that other tests made on the session site before
    it was cloned. The sanitiser anonymises them with the seeded learners."""
    names = ", ".join(f"'{name}'" for name in (*KEEP, "guest"))
    return int(run_sql(site, f"SELECT COUNT(*) FROM mdl_user WHERE username NOT IN ({names})"))


def clone_site(site: ms.MoodleTestSite, name: str, wwwroot: str | None = None) -> ms.MoodleTestSite:
    """A second site sharing the server: hard-linked code, empty dataroot, a copy of the database."""
    base = ms.private_tmpdir(f"ti-{name}-")
    clone = ms.MoodleTestSite(
        base, site.db, dbname=name, dbuser=site.dbuser, dbpass=site.dbpass, wwwroot=wwwroot or site.wwwroot
    )
    ms.copy_tree(site.code, clone.code)
    user = ms.ensure_user(clone.web_user)
    clone.dataroot.mkdir()
    os.chown(clone.dataroot, user.pw_uid, user.pw_gid)
    clone.dataroot.chmod(0o2770)
    shutil.copytree(site.php_ini_dir, clone.php_ini_dir)
    drop_database(site.db, name)
    if site.db.dbtype == "pgsql":
        site.db.psql(f'CREATE DATABASE "{name}" TEMPLATE "{site.dbname}" OWNER "{site.dbuser}"')
    else:
        tables = site.db.mysql("SHOW TABLES", db=site.dbname).split()
        script = [f"CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"]
        for table in tables:
            script.append(f"CREATE TABLE `{name}`.`{table}` LIKE `{site.dbname}`.`{table}`")
            script.append(f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{site.dbname}`.`{table}`")
        for host in ("localhost", "127.0.0.1"):  # the users MariaDbServer.create_database made
            script.append(f"GRANT ALL ON `{name}`.* TO '{site.dbuser}'@'{host}'")
        site.db.mysql(";\n".join(script))
    clone.write_config()
    # Like a copy of Live: mail is not switched off in config.php (the sanitiser must do it), and
    # one setting is forced there, as real sites do.
    config = clone.code / "config.php"
    text = config.read_text().replace("$CFG->noemailever = true;", "$CFG->enablewebservices = 0;")
    tmp = config.with_suffix(".edit")
    tmp.write_text(text)
    shutil.copymode(config, tmp)
    os.chown(tmp, config.stat().st_uid, config.stat().st_gid)
    tmp.rename(config)
    return clone


def drop_database(db, name: str) -> None:
    if db.dbtype == "pgsql":
        db.psql(f'DROP DATABASE IF EXISTS "{name}"')
    else:
        db.mysql(f"DROP DATABASE IF EXISTS `{name}`")


def remove_clone(clone: ms.MoodleTestSite) -> None:
    if os.environ.get("TI_KEEP_SITE"):
        return
    drop_database(clone.db, clone.dbname)
    shutil.rmtree(clone.base, ignore_errors=True)


# -------------------------------------------------------------------------------------------------------
# Logging in over HTTP: PHP's built-in server on the site's web root.


class WebServer:
    """``php -S`` as the web user on a free port; the site's wwwroot must be :attr:`url`."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self, site: ms.MoodleTestSite) -> WebServer:
        webroot = site.code / "public" if site.layout == "public" else site.code
        cmd = [
            "runuser",
            "-u",
            site.web_user,
            "--",
            site.php,
            "-S",
            f"127.0.0.1:{self.port}",
            "-t",
            str(webroot),
        ]
        self.proc = subprocess.Popen(
            cmd, env=site.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/login/index.php", timeout=5).read()  # noqa: S310 - http
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"php -S did not answer on {self.url}")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def login(self, username: str, password: str) -> urllib.request.OpenerDirector | None:
        """A logged-in browser (cookie jar), or None when Moodle refuses the login."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = opener.open(self.url + "/login/index.php", timeout=60).read().decode()
        token = re.search(r'name="logintoken" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "logintoken": token}
        ).encode()
        answer = opener.open(self.url + "/login/index.php", data=data, timeout=60)
        page = answer.read().decode()
        if "/login/index.php" in answer.geturl() or 'id="loginerrormessage"' in page:
            return None
        return opener

    def can_open(self, browser, path: str) -> bool:
        """Whether a logged-in browser gets ``path`` without a permission error."""
        try:
            page = browser.open(self.url + path, timeout=60).read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):  # Moodle hides admin pages from non-admins (404)
                return False
            raise
        return "do not currently have permissions" not in page


# -------------------------------------------------------------------------------------------------------
# Seeding in bulk (set-based SQL: 100,000 learners take seconds).


def numbers(dbtype: str, count: int, alias: str = "s") -> str:
    """A FROM item with one column ``n`` = 1..count."""
    if dbtype == "pgsql":
        return f"generate_series(1, {count}) AS {alias}(n)"
    return f"(SELECT seq AS n FROM seq_1_to_{count}) AS {alias}"  # MariaDB's Sequence engine


def seed_sql(dbtype: str, count: int, password_hash: str) -> list[str]:
    """Statements that add ``count`` learners (``qxzvkwl<n>``) with everything that identifies them,
    enrolled as students in the seeded courses (by id modulo 3)."""
    p = "mdl_"
    nums = numbers(dbtype, count)
    learners = f"{p}user u WHERE u.username LIKE 'qxzvkwl%'"
    course = (
        "CASE MOD(u.id, 3) "
        + " ".join(
            f"WHEN {i} THEN (SELECT id FROM {p}course WHERE shortname = '{short}')"
            for i, short in enumerate(COURSES)
        )
        + " END"
    )
    return [
        f"""INSERT INTO {p}user (auth, confirmed, mnethostid, username, password, firstname, lastname, email,
            idnumber, phone1, phone2, institution, department, address, city, country, lastip, description,
            firstnamephonetic, lastnamephonetic, middlename, alternatename, timecreated, timemodified)
        SELECT 'manual', 1, 1, concat('qxzvkwl', n), '{password_hash}', concat('Qxzvkwfirst', n),
            concat('Qxzvkwlast', n), concat('qxzvkwl', n, '@realmail.example'), concat('QXZVKW-', n),
            concat('+44 qxzvkw ', n), concat('qxzvkw-', n), 'Qxzvkw University', 'Qxzvkw Dept',
            concat(n, ' Qxzvkw Street'),
            'Qxzvkwton', 'GB', concat('10.9.', n % 250, '.qxzvkw'),
            concat('<p>About Qxzvkwfirst', n, '</p>'), 'Qxzvkwphon', 'Qxzvkwphonl', 'Qxzvkwmid', 'Qxzvkwalt',
            {NOW}, {NOW}
        FROM {nums}""",
        f"""INSERT INTO {p}user_enrolments (status, enrolid, userid, timestart, timeend, modifierid,
            timecreated, timemodified)
        SELECT 0, e.id, u.id, 0, 0, 2, {NOW}, {NOW} FROM {p}user u
            JOIN {p}enrol e ON e.enrol = 'manual' AND e.courseid = {course}
        WHERE u.username LIKE 'qxzvkwl%'""",
        f"""INSERT INTO {p}role_assignments (roleid, contextid, userid, timemodified, modifierid, component,
            itemid, sortorder)
        SELECT (SELECT id FROM {p}role WHERE shortname = 'student'), x.id, u.id, {NOW}, 2, '', 0, 0
        FROM {p}user u JOIN {p}context x ON x.contextlevel = 50 AND x.instanceid = {course}
        WHERE u.username LIKE 'qxzvkwl%'""",
        f"""INSERT INTO {p}user_info_data (userid, fieldid, data, dataformat)
        SELECT u.id, (SELECT id FROM {p}user_info_field WHERE shortname = 'nickname'),
            concat('Nick qxzvkw', u.id), 0
        FROM {learners}""",
        f"""INSERT INTO {p}user_preferences (userid, name, value)
        SELECT u.id, 'seed_signature', concat('Regards, Qxzvkwfirst', u.id) FROM {learners}""",
        # Individual conversations between neighbours, with one message each.
        f"""INSERT INTO {p}message_conversations (type, convhash, enabled, timecreated)
        SELECT 1, concat('qxzvkwconv', u.id), 1, {NOW} FROM {learners} AND MOD(u.id, 2) = 0""",
        # Members: the learner who owns the conversation and the next one (two equi-joins, not an OR:
        # an OR join is quadratic).
        *(
            f"""INSERT INTO {p}message_conversation_members (conversationid, userid, timecreated)
        SELECT c.id, u.id, {NOW} FROM {p}message_conversations c JOIN {p}user u
            ON c.convhash = concat('qxzvkwconv', u.id{offset})
        WHERE u.username LIKE 'qxzvkwl%'"""
            for offset in ("", " - 1")
        ),
        f"""INSERT INTO {p}messages (useridfrom, conversationid, subject, fullmessage, fullmessageformat,
            fullmessagehtml, smallmessage, timecreated)
        SELECT u.id, c.id, NULL,
            concat('Hi, this is Qxzvkwfirst', u.id, ' (qxzvkwl', u.id, '@realmail.example)'), 0,
            NULL, concat('Hi from Qxzvkwfirst', u.id), {NOW}
        FROM {p}message_conversations c JOIN {p}user u ON c.convhash = concat('qxzvkwconv', u.id)""",
        f"""INSERT INTO {p}notifications (useridfrom, useridto, subject, fullmessage, fullmessageformat,
            smallmessage, component, eventtype, timecreated)
        SELECT 2, u.id, concat('Your grade, Qxzvkwfirst', u.id), 'Well done', 0, 'Well done', 'moodle',
            'instantmessage', {NOW} FROM {learners}""",
        f"""INSERT INTO {p}logstore_standard_log (eventname, component, action, target, objecttable, objectid,
            crud, edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, anonymous, other,
            timecreated, origin, ip)
        SELECT '\\core\\event\\user_loggedin', 'core', 'loggedin', 'user', 'user', u.id, 'r', 0, 1, 10, 0,
            u.id, 0, 0, concat('{{"username":"qxzvkwl', u.id, '"}}'), {NOW} + k.n, 'web', '10.0.0.1'
        FROM {p}user u CROSS JOIN {numbers(dbtype, 3, "k")}
        WHERE u.username LIKE 'qxzvkwl%'""",
        f"""INSERT INTO {p}logstore_standard_log (eventname, component, action, target, crud, edulevel,
            contextid, contextlevel, contextinstanceid, userid, courseid, anonymous, other, timecreated,
            origin, ip)
        SELECT '\\core\\event\\user_login_failed', 'core', 'failed', 'user_login', 'r', 0, 1, 10, 0, 0, 0, 0,
            concat('{{"username":"qxzvkwl', n, '@realmail.example","reason":1}}'), {NOW}, 'web', '10.0.0.2'
        FROM {numbers(dbtype, max(count // 10, 1))}""",
    ]


SETUP_PHP = r"""
require_once($CFG->dirroot . '/course/lib.php');
require_once($CFG->dirroot . '/course/modlib.php');
require_once($CFG->dirroot . '/user/lib.php');
\core\session\manager::set_user(get_admin());
foreach (%(courses)s as $short) {
    $course = create_course((object)['fullname' => "Course $short", 'shortname' => $short, 'category' => 1,
        'summary' => "Summary of $short", 'numsections' => 2]);
    create_module((object)['modulename' => 'page', 'course' => $course->id, 'section' => 1, 'visible' => 1,
        'name' => "Welcome to $short", 'content' => "<p>Content of $short</p>",
        'contentformat' => FORMAT_HTML,
        'display' => 5, 'printintro' => 0, 'printlastmodified' => 1,
        'introeditor' => ['text' => '', 'format' => FORMAT_HTML, 'itemid' => 0]]);
}
$cat = $DB->insert_record('user_info_category', (object)['name' => 'Seed', 'sortorder' => 1]);
$DB->insert_record('user_info_field', (object)['shortname' => 'nickname', 'name' => 'Nickname',
    'datatype' => 'text', 'categoryid' => $cat, 'sortorder' => 1, 'visible' => 2, 'param1' => 30,
    'param2' => 2048]);
foreach (['tutor' => 'Tutor', 'student' => 'Student', '%(staff)s' => 'Jane'] as $username => $first) {
    $id = user_create_user((object)['username' => $username, 'firstname' => $first, 'lastname' => 'Kept',
        'email' => "$username@provider.example", 'auth' => 'manual', 'password' => 'Kept-pass-1!',
        'confirmed' => 1, 'mnethostid' => $CFG->mnet_localhost_id, 'city' => 'Keepton'], true, false);
    $DB->insert_record('user_info_data', (object)['userid' => $id, 'fieldid' =>
        $DB->get_field('user_info_field', 'id', ['shortname' => 'nickname']), 'data' => "kept-$username"]);
    set_user_preference('seed_signature', "kept-$username", $id);
}
// A conversation between two kept users survives the sanitiser.
$tutor = $DB->get_field('user', 'id', ['username' => 'tutor']);
$staff = $DB->get_field('user', 'id', ['username' => '%(staff)s']);
$conv = \core_message\api::create_conversation(\core_message\api::MESSAGE_CONVERSATION_TYPE_INDIVIDUAL,
    [$tutor, $staff]);
$DB->insert_record('messages', (object)['useridfrom' => $tutor, 'conversationid' => $conv->id,
    'fullmessage' => 'kept conversation', 'fullmessageformat' => 0, 'smallmessage' => 'kept',
    'timecreated' => time()]);
"""


def seed(site: ms.MoodleTestSite, count: int) -> float:
    """Courses with content, kept users (via Moodle's API), then ``count`` learners (bulk SQL)."""
    start = time.monotonic()
    site.php_eval(SETUP_PHP % {"courses": repr(list(COURSES)).replace("'", '"'), "staff": STAFF})
    password_hash = ms.run(
        [site.php, "-r", f"echo password_hash('{LEARNER_PASSWORD}', PASSWORD_BCRYPT, ['cost' => 4]);"]
    ).stdout
    for statement in seed_sql(site.db.dbtype, count, password_hash):
        run_sql(site, statement)
    return time.monotonic() - start


# -------------------------------------------------------------------------------------------------------
# What is in the database.

SNAPSHOT_PHP = """
$marks = json_decode('%(markers)s');
$hits = [];
foreach ($DB->get_tables(false) as $table) {
    $conds = [];
    $params = [];
    foreach ($DB->get_columns($table, false) as $col) {
        if (in_array($col->meta_type, ['C', 'X'])) {
            foreach ($marks as $i => $mark) {
                $p = 'p' . count($params);
                $conds[] = $DB->sql_like($col->name, ':' . $p, false, false);
                $params[$p] = '%%' . $mark . '%%';
            }
        }
    }
    if ($conds) {
        $n = $DB->count_records_select($table, implode(' OR ', $conds), $params);
        if ($n) {
            $hits[$table] = $n;
        }
    }
}
$kept = [];
foreach (%(keep)s as $username) {
    $u = $DB->get_record('user', ['username' => $username, 'deleted' => 0]);
    $kept[$username] = $u ? [
        'user' => $u,
        'profile' => $DB->get_records_menu('user_info_data', ['userid' => $u->id], 'fieldid',
            'fieldid, data'),
        'prefs' => $DB->get_records_menu('user_preferences',
            ['userid' => $u->id, 'name' => 'seed_signature'], '', 'name, value'),
    ] : null;
}
$content = [];
foreach (['course', 'course_sections', 'course_modules', 'page', 'context', 'enrol', 'user_info_field',
          'role', 'course_categories'] as $t) {
    $content[$t] = $DB->count_records($t);
}
$content['page_content'] = $DB->get_fieldset_sql('SELECT content FROM {page} ORDER BY id');
$content['courses'] = $DB->get_fieldset_sql('SELECT shortname FROM {course} ORDER BY id');
echo json_encode([
    'hits' => (object)$hits,
    'kept' => $kept,
    'content' => $content,
    'learners' => $DB->count_records_select('user', "username LIKE 'qxzvkwl%%'"),
    'users' => $DB->count_records('user'),
    'active_users' => $DB->count_records('user', ['deleted' => 0, 'suspended' => 0]),
    'enrolments' => $DB->count_records('user_enrolments'),
    'kept_messages' => $DB->count_records('messages', ['fullmessage' => 'kept conversation']),
]);
"""


def snapshot(site: ms.MoodleTestSite) -> dict:
    code = SNAPSHOT_PHP % {"markers": json.dumps(list(MARKERS)), "keep": repr(KEEP).replace("'", '"')}
    return json.loads(site.php_eval(code).stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------------------------------------
# The tests: one seeded copy per database; sanitised once (check mode first), then a second time.

SANITISE_ARGS = {
    "keep_usernames": KEEP,
    "email_domain": "qa.invalid",
    "mail": {"mode": "divert", "divert_to": "qa-mail@provider.example"},
    "settings": [
        {"name": "enablewebservices", "value": False},
        {"plugin": "mod_bigbluebuttonbn", "name": "server_url", "value": "https://sandbox.invalid/bbb/"},
    ],
}


@pytest.fixture(scope="module", params=["pgsql", "mariadb"])
def seeded(request, lms):
    """(runner, site, before, web) for a seeded copy of the PostgreSQL or the MariaDB session site,
    served over HTTP."""
    if request.param == "pgsql":
        source = request.getfixturevalue("moodle_site")
    else:
        try:
            source = request.getfixturevalue("moodle_site_mariadb")
        except pytest.FixtureLookupError:
            pytest.skip("no moodle_site_mariadb fixture in tests/integration/conftest.py")
    web = WebServer(ms.free_port())
    clone = clone_site(source, f"ti_sanitise_{request.param}", wwwroot=web.url)
    try:
        clone.other_users = other_users(clone)
        seconds = seed(clone, LEARNERS)
        print(f"\n[sanitise] seeded {LEARNERS} learners on {request.param} in {seconds:.1f} s")
        web.start(clone)
        yield type(lms)(clone), clone, snapshot(clone), web
    finally:
        web.stop()
        remove_clone(clone)


@pytest.fixture(scope="module")
def sanitised(seeded):
    runner, site, _, web = seeded
    # A learner logs in before (the login check can fail); the snapshot includes that login's log rows.
    logins_before = {"learner": web.login("qxzvkwl1", LEARNER_PASSWORD) is not None}
    before = snapshot(site)
    dry = runner("lms_sanitise", check=True, **SANITISE_ARGS)
    after_dry = snapshot(site)
    first = runner("lms_sanitise", **SANITISE_ARGS)
    print(
        f"\n[sanitise] {site.db.dbtype}: {LEARNERS} learners: {first.get('seconds')} "
        f"(ansible: {first['_seconds']} s)"
    )
    after = snapshot(site)
    second = runner("lms_sanitise", **SANITISE_ARGS)
    # Logins after: every attempt writes logs and sessions, so they come after the snapshots.
    learner_id = run_sql(site, "SELECT MIN(id) FROM mdl_user WHERE firstname = 'Anonymous'")
    logins_after = {
        "admin": web.login("admin", ms.ADMIN_PASSWORD) is not None,
        "tutor": web.login("tutor", "Kept-pass-1!") is not None,
        "learner": web.login("qxzvkwl1", LEARNER_PASSWORD) is not None,
        "anonymised learner": web.login(f"user{learner_id}", LEARNER_PASSWORD) is not None,
    }
    return {
        "users_to_anonymise": LEARNERS + site.other_users,
        "dry": dry,
        "after_dry": after_dry,
        "first": first,
        "second": second,
        "before": before,
        "after": after,
        "logins_before": logins_before,
        "logins_after": logins_after,
    }


def test_seeded_data_is_there(seeded):
    _, _, before, _ = seeded
    assert before["learners"] == LEARNERS
    assert before["hits"]["user"] == LEARNERS
    for table in ("user_info_data", "user_preferences", "messages", "notifications", "logstore_standard_log"):
        assert before["hits"].get(table, 0) >= LEARNERS // 2, (table, before["hits"])


def test_check_mode_counts_and_changes_nothing(sanitised):
    dry = sanitised["dry"]
    assert not dry.get("failed"), dry
    assert dry["changed"] is True
    assert dry["counts"]["user"] == sanitised["users_to_anonymise"]
    assert dry["counts"]["user_info_data"] == LEARNERS
    assert dry["counts"]["logstore_standard_log"] >= 3 * LEARNERS
    assert sanitised["after_dry"]["hits"] == sanitised["before"]["hits"]


def test_no_personal_data_of_learners_remains_anywhere(sanitised):
    first, after = sanitised["first"], sanitised["after"]
    assert not first.get("failed"), first
    assert first["changed"] is True and first["counts"]["user"] == sanitised["users_to_anonymise"]
    assert after["hits"] == {}, f"seeded personal data left in: {after['hits']}"
    assert after["active_users"] == len(KEEP) + 1  # the kept users and guest
    assert first["verification"]["problems"] == []
    assert set(first["kept_users"]) == {*KEEP, "guest"}


def test_courses_content_and_kept_users_are_intact(sanitised):
    before, after = sanitised["before"], sanitised["after"]
    assert after["content"] == before["content"]
    assert after["enrolments"] == before["enrolments"]  # suspended, not unenrolled
    assert after["users"] == before["users"]
    assert after["kept_messages"] == 1
    for username in KEEP:
        kept_before, kept_after = before["kept"][username], after["kept"][username]
        kept_after["user"].pop("lastaccess", None), kept_before["user"].pop("lastaccess", None)
        assert kept_after == kept_before, username


def test_over_http_learners_cannot_log_in_kept_users_can(sanitised):
    assert sanitised["logins_before"] == {"learner": True}  # the check can fail
    assert sanitised["logins_after"] == {
        "admin": True,
        "tutor": True,
        "learner": False,
        "anonymised learner": False,
    }


def test_second_run_changes_nothing(sanitised):
    second = sanitised["second"]
    assert second["changed"] is False, second["counts"]
    assert second["settings_changed"] == []


def test_verification_fails_on_an_active_learner_and_on_mail(seeded, sanitised):
    runner, site, _, _ = seeded
    run_sql(
        site,
        "UPDATE mdl_user SET suspended = 0, email = 'someone@realmail.example' "
        "WHERE id = (SELECT MAX(id) FROM mdl_user)"
        if site.db.dbtype == "pgsql"
        else "UPDATE mdl_user u JOIN (SELECT MAX(id) id FROM mdl_user) m ON u.id = m.id "
        "SET u.suspended = 0, u.email = 'someone@realmail.example'",
    )
    site.cli("cfg.php", "--name=divertallemailsto", "--unset")
    bad = runner("lms_sanitise", state="verified", **SANITISE_ARGS)
    assert bad.get("failed") and bad["changed"] is False
    assert "1 users that are not allowed are still active" in bad["msg"]
    assert "outside @qa.invalid" in bad["msg"]
    assert "mail is neither disabled" in bad["msg"]
    fixed = runner("lms_sanitise", **SANITISE_ARGS)
    assert not fixed.get("failed"), fixed
    assert fixed["counts"]["user"] == 1 and fixed["verification"]["problems"] == []


def test_bad_input_changes_nothing(seeded):
    runner, site, _, _ = seeded
    before = snapshot(site)
    bad_domain = runner("lms_sanitise", keep_usernames=KEEP, email_domain="not a domain")
    assert bad_domain["failed"] and "email_domain" in bad_domain["msg"]
    divert = runner("lms_sanitise", keep_usernames=KEEP, mail={"mode": "divert"})
    assert divert["failed"] and "divert_to" in divert["msg"]
    forced = runner("lms_sanitise", keep_usernames=KEEP, settings=[{"name": "enablewebservices", "value": 1}])
    assert forced["failed"] and "forced in config.php" in forced["msg"]
    assert snapshot(site) == before


def test_plan_tables_exist_in_moodle_schema(moodle_src):
    """Every table the plan names is in Moodle 5.1's schema (install.xml of core or a plugin)."""
    import sanitise

    src = Path(moodle_src)
    if not src.is_dir():
        pytest.skip("MOODLE_SRC is a tarball; this check reads install.xml files from a tree")
    tables = set()
    for xml in src.rglob("db/install.xml"):
        tables.update(
            line.split('"')[1]
            for line in xml.read_text(errors="replace").splitlines()
            if "<TABLE NAME=" in line
        )
    plan = sanitise.build_plan({"email_domain": "invalid", "action": "delete"})
    named = {step["table"] for step in plan["delete_steps"] + plan["update_steps"]} | {"user"}
    assert named - tables == set()

"""Tier policy as code (DESIGN rule 11, docs/tier-policy.md) with a real Moodle on this machine.

An estate of one customer whose three sites are one copy of the session's site (its own database),
each tier on its own local host and wwwroot port. For each tier the lms role's own config.php
template is rendered (after the role's policy check) from the estate's site record; then Moodle
itself is asked: the settings read back (get_config, and whether config.php forces them), cfg.php
refuses to change a forced setting (exit code 4), the banner is on a page served over HTTP on Dev
and QA and not on Live, and playbooks/audit.yml (the real playbook, through the estate) passes, then
fails naming the site and setting once config.php is edited by hand. Cron per tier: the estate
switches QA's off (lms_cron: false), and admin/cli/cron.php there runs no task, whatever
cron.php --enable says.

Integrations (lms_integrations): acme's QA has BigBlueButton (core), Turnitin's sandbox and a test
student records database, its Live the production ones, its Dev none. Per tier Moodle's own API
reads them back - get_config(), BigBlueButton's own config::get(), the plugin manager's is_enabled()
for what the role switches in the database (lms_integrations entry point `integrations`).
plagiarism_turnitin is not part of Moodle: its forced settings are read back with get_config(),
which answers from config.php whether or not the plugin is installed; that Turnitin itself acts on
them is not shown here. A QA whose BigBlueButton points at Live's server is refused through the
role (Live's record found through the inventory), and the audit names BigBlueButton switched off
behind the policy's back (the plugin manager's state, which config.php cannot force).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import moodle_site as ms
import pytest
import yaml
from ansible_cli import ansible_env, ansible_playbook
from test_sanitise import WebServer, clone_site, remove_clone, run_sql

REPO = Path(__file__).resolve().parents[2]
TIERS = ("dev", "qa", "live")
QA_INBOX = "qa-inbox@example.invalid"
BANNER = 'class="three-instance-banner"'

RENDER = """
- name: The lms role's config.php for one site (its policy checked first)
  hosts: all
  gather_facts: false
  tasks:
    - name: The role's policy check
      ansible.builtin.include_role:
        name: lms
        tasks_from: policy
        public: true
    - name: The role's config.php template
      ansible.builtin.template:
        src: {template}
        dest: "{{{{ lms_site.code_dir }}}}/shared/config.php"
        owner: root
        group: "{{{{ lms_site.site_user }}}}"
        mode: "0640"
      vars:
        lms_site: "{{{{ estate_site }}}}"
    - name: The plugins the policy switches in the database (BigBlueButton, enrolment sources)
      ansible.builtin.include_role:
        name: lms
        tasks_from: integrations
      vars:
        lms_site: "{{{{ estate_site }}}}"
      when: integrations | default(true) | bool
"""

READ = """
$names = %s;
$out = [];
foreach ($names as $n) {
    list($component, $name) = $n;
    $value = get_config($component, $name);
    $forced = $component === 'core' ? array_key_exists($name, $CFG->config_php_settings)
        : isset($CFG->forced_plugin_settings[$component][$name]);
    $out["$component/$name"] = [$value === false ? null : (string)$value, $forced];
}
echo json_encode($out);
"""
NAMES = [
    ("core", "noemailever"),
    ("core", "divertallemailsto"),
    ("core", "divertallemailsexcept"),
    ("core", "debug"),
    ("core", "debugdisplay"),
    ("core", "additionalhtmltopofbody"),
    ("core", "preventexecpath"),
    ("core", "disableupdateautodeploy"),
    ("core", "uninstallclionly"),
    ("core", "cron_enabled"),
    ("core", "cronclionly"),
    ("tool_recyclebin", "coursebinenable"),
    ("core", "bigbluebuttonbn_server_url"),
    ("core", "bigbluebuttonbn_shared_secret"),
    ("core", "enableplagiarism"),
    ("plagiarism_turnitin", "enabled"),
    ("plagiarism_turnitin", "plagiarism_turnitin_apiurl"),
    ("plagiarism_turnitin", "plagiarism_turnitin_accountid"),
    ("plagiarism_turnitin", "plagiarism_turnitin_secretkey"),
    ("plagiarism_turnitinsim", "enabled"),
    ("plagiarism_turnitinsim", "turnitinapikey"),
    ("assignsubmission_maharaws", "disabled"),
    ("assignsubmission_maharaws", "force_global_credentials"),
    ("assignsubmission_maharaws", "url"),
    ("enrol_database", "dbhost"),
    ("enrol_database", "dbname"),
    ("enrol_database", "dbpass"),
    ("auth_db", "host"),
    ("enrol_flatfile", "location"),
]
# What the tools themselves see: BigBlueButton's own reading of its configuration, and the plugin
# manager's answer for the plugins whose enabled state is in the database.
TOOLS_READ = """
$pm = core_plugin_manager::instance();
$out = ['bbb_server_url' => \\mod_bigbluebuttonbn\\local\\config::get('server_url'),
        'bbb_shared_secret_set' => \\mod_bigbluebuttonbn\\local\\config::get('shared_secret') !== ''];
foreach (['mod_bigbluebuttonbn', 'enrol_database', 'auth_db', 'enrol_flatfile'] as $c) {
    $out[$c] = $pm->get_plugin_info($c)->is_enabled() === true;
}
$out['enrol_plugins_enabled'] = $CFG->enrol_plugins_enabled;
echo json_encode($out);
"""
BBB_QA_URL = "https://bbb-test.acme.example/bigbluebutton/"
BBB_LIVE_URL = "https://bbb.acme.example/bigbluebutton/"
TII_SANDBOX = "https://sandbox.turnitin.com"
INTEGRATIONS = {
    "qa": {
        "mod_bigbluebuttonbn": {
            "enabled": True,
            "settings": {
                "bigbluebuttonbn_server_url": BBB_QA_URL,
                "bigbluebuttonbn_shared_secret": "bbb-qa-s3cret",
            },
        },
        "plagiarism_turnitin": {
            "enabled": True,
            "settings": {
                "plagiarism_turnitin_apiurl": TII_SANDBOX,
                "plagiarism_turnitin_accountid": "90210",
                "plagiarism_turnitin_secretkey": "tii-qa-s3cret",
            },
        },
        "enrol_database": {
            "enabled": True,
            "settings": {
                "dbtype": "postgres",
                "dbhost": "sis-test.acme.example",
                "dbname": "sis_test",
                "dbpass": "sis-qa-s3cret",
            },
        },
    },
    "live": {
        "mod_bigbluebuttonbn": {
            "enabled": True,
            "settings": {
                "bigbluebuttonbn_server_url": BBB_LIVE_URL,
                "bigbluebuttonbn_shared_secret": "bbb-s3cret",
            },
        },
        "plagiarism_turnitin": {
            "enabled": True,
            "settings": {
                "plagiarism_turnitin_apiurl": "https://api.turnitinuk.com",
                "plagiarism_turnitin_accountid": "90209",
                "plagiarism_turnitin_secretkey": "tii-s3cret",
            },
        },
    },
}
SECRETS = ("bbb-qa-s3cret", "tii-qa-s3cret", "sis-qa-s3cret", "bbb-s3cret", "tii-s3cret")


@pytest.fixture(scope="module")
def estate(moodle_site):
    clone = clone_site(moodle_site, "ti_policy")
    base = clone.base
    ports = {tier: ms.free_port() for tier in TIERS}
    user = pwd.getpwnam(clone.web_user)
    (base / "cache").mkdir()
    os.chown(base / "cache", user.pw_uid, user.pw_gid)
    for tier in TIERS:
        site = base / "srv" / f"acme-{tier}"
        (site / "shared").mkdir(parents=True)
        (site / "current").symlink_to(clone.code)
        (base / "lmsdata").mkdir(exist_ok=True)
        (base / "lmsdata" / f"acme-{tier}").symlink_to(clone.dataroot)  # one dataroot for the one database
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become_method": "su",
    }
    site_vars = {
        "site_user": clone.web_user,
        "db_name": clone.dbname,
        "db_user": clone.dbuser,
        "db_password": clone.dbpass,
        "redis_enabled": False,
        "lms_plugin_config": {"tool_recyclebin": {"coursebinenable": False}},
    }
    (base / "estate.yml").write_text(
        yaml.safe_dump(
            {
                "plugin": "three_instance",
                "name": "policy-test",
                "code_root": str(base / "srv"),
                "data_root": str(base / "lmsdata"),
                "hosts": {f"h{tier}": host for tier in TIERS},
                "tiers": {
                    tier: {"wwwroot": f"http://127.0.0.1:{ports[tier]}", "hosts": {f"h{tier}": ["web", "db"]}}
                    for tier in TIERS
                },
                "customers": {
                    "acme": {
                        "flavour": "moodle",
                        "vars": site_vars,
                        "tiers": {
                            "dev": {},
                            # QA diverts to its mailbox; top-level keys replace, so the customer's
                            # vars are repeated here (docs/inventory.md)
                            "qa": {
                                "vars": {
                                    **site_vars,
                                    "lms_mail": "divert",
                                    "lms_mail_divert_to": QA_INBOX,
                                    "lms_cron": False,  # cron per tier: QA's switched off
                                    "lms_integrations": INTEGRATIONS["qa"],
                                }
                            },
                            "live": {
                                "maintenance_windows": ["* 00:00-24:00 UTC"],
                                "vars": {**site_vars, "lms_integrations": INTEGRATIONS["live"]},
                            },
                        },
                    }
                },
            }
        )
    )
    dboptions = clone.db.moodle_config(clone.dbname, clone.dbuser, clone.dbpass)["dboptions"]
    extra = {
        "lms__dboptions": {**dboptions, "dbpersist": False},
        "lms_local_cache_dir": str(base / "cache"),
        "lms_php": clone.php,
    }
    (base / "extra.json").write_text(json.dumps(extra))
    (base / "render.yml").write_text(RENDER.format(template=REPO / "roles/lms/templates/config.php.j2"))
    yield {"clone": clone, "base": base, "ports": ports}
    remove_clone(clone)


def playbook(estate, *args: str, inventory: str = "estate.yml") -> subprocess.CompletedProcess:
    env = ansible_env(
        ANSIBLE_CACHE_PLUGIN="memory",
        ANSIBLE_INVENTORY_CACHE="false",
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        PHP_INI_SCAN_DIR=estate["clone"].env()["PHP_INI_SCAN_DIR"],
    )
    return ansible_playbook(
        "-i", str(estate["base"] / inventory), "-e", f"@{estate['base'] / 'extra.json'}", *args, env=env
    )


def use_tier(estate, tier: str) -> Path:
    """config.php of acme-<tier> rendered by the role's template; the code's config.php loads it (as
    a release's stub loads shared/config.php). Returns the shared config.php."""
    render = playbook(estate, "--limit", f"h{tier}", str(estate["base"] / "render.yml"))
    assert render.returncode == 0, render.tail
    shared = estate["base"] / "srv" / f"acme-{tier}" / "shared" / "config.php"
    clone = estate["clone"]
    stub = clone.code / "config.php"
    tmp = stub.with_suffix(".stub")
    tmp.write_text(f"<?php\nrequire({str(shared)!r});\nrequire_once(__DIR__ . '/lib/setup.php');\n")
    os.chown(tmp, 0, pwd.getpwnam(clone.web_user).pw_gid)
    tmp.chmod(0o640)
    tmp.rename(stub)
    return shared


def read_back(clone) -> dict:
    code = READ % json.dumps([list(n) for n in NAMES])
    return json.loads(clone.php_eval(code).stdout.strip().splitlines()[-1])


def tools_read(clone) -> dict:
    return json.loads(clone.php_eval(TOOLS_READ).stdout.strip().splitlines()[-1])


def page(url: str) -> str:
    return urllib.request.urlopen(url + "/login/index.php", timeout=60).read().decode()  # noqa: S310 - http


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, text
    tmp = path.with_suffix(".edit")
    tmp.write_text(text.replace(old, new))
    shutil.copystat(path, tmp)
    os.chown(tmp, path.stat().st_uid, path.stat().st_gid)
    tmp.rename(path)


WANTED = {
    "dev": {
        "core/noemailever": ["1", True],
        "core/debug": ["32767", True],
        "core/debugdisplay": ["1", True],
        "core/cron_enabled": ["1", True],
    },
    "qa": {
        "core/divertallemailsto": [QA_INBOX, True],
        "core/divertallemailsexcept": ["", True],
        "core/debug": ["0", True],
        "core/debugdisplay": ["0", True],
        "core/cron_enabled": ["0", True],  # lms_cron: false
    },
    "live": {
        "core/divertallemailsto": ["", True],
        "core/debug": ["0", True],
        "core/debugdisplay": ["0", True],
        "core/cron_enabled": ["1", True],
    },
}
SECURITY = {
    "core/preventexecpath": ["1", True],
    "core/disableupdateautodeploy": ["1", True],
    "core/uninstallclionly": ["1", True],
    "core/cronclionly": ["1", True],  # admin/cron.php over the web ignores cron_enabled
    "tool_recyclebin/coursebinenable": ["0", True],  # lms_plugin_config -> forced_plugin_settings
}
OFF = ["", True]  # a tool that is off: its endpoint and credentials forced empty
TOOLS_OFF = {
    "core/bigbluebuttonbn_server_url": OFF,
    "core/bigbluebuttonbn_shared_secret": OFF,
    "plagiarism_turnitin/enabled": ["0", True],
    "plagiarism_turnitin/plagiarism_turnitin_apiurl": OFF,
    "plagiarism_turnitin/plagiarism_turnitin_accountid": OFF,
    "plagiarism_turnitin/plagiarism_turnitin_secretkey": OFF,
    "plagiarism_turnitinsim/enabled": ["0", True],
    "plagiarism_turnitinsim/turnitinapikey": OFF,
    "assignsubmission_maharaws/disabled": ["1", True],
    "assignsubmission_maharaws/force_global_credentials": ["1", True],
    "assignsubmission_maharaws/url": OFF,
    "enrol_database/dbhost": OFF,
    "enrol_database/dbname": OFF,
    "enrol_database/dbpass": OFF,
    "auth_db/host": OFF,
    "enrol_flatfile/location": OFF,
}
TOOLS_WANTED = {
    "dev": TOOLS_OFF,
    "qa": {
        **TOOLS_OFF,
        "core/bigbluebuttonbn_server_url": [BBB_QA_URL, True],
        "core/bigbluebuttonbn_shared_secret": ["bbb-qa-s3cret", True],
        "core/enableplagiarism": ["1", True],
        "plagiarism_turnitin/enabled": ["1", True],
        "plagiarism_turnitin/plagiarism_turnitin_apiurl": [TII_SANDBOX, True],
        "plagiarism_turnitin/plagiarism_turnitin_accountid": ["90210", True],
        "plagiarism_turnitin/plagiarism_turnitin_secretkey": ["tii-qa-s3cret", True],
        "enrol_database/dbhost": ["sis-test.acme.example", True],
        "enrol_database/dbname": ["sis_test", True],
        "enrol_database/dbpass": ["sis-qa-s3cret", True],
    },
    "live": {
        **TOOLS_OFF,
        "core/bigbluebuttonbn_server_url": [BBB_LIVE_URL, True],
        "core/bigbluebuttonbn_shared_secret": ["bbb-s3cret", True],
        "core/enableplagiarism": ["1", True],
        "plagiarism_turnitin/enabled": ["1", True],
        "plagiarism_turnitin/plagiarism_turnitin_apiurl": ["https://api.turnitinuk.com", True],
        "plagiarism_turnitin/plagiarism_turnitin_accountid": ["90209", True],
        "plagiarism_turnitin/plagiarism_turnitin_secretkey": ["tii-s3cret", True],
    },
}
# what the tools see, and the plugin manager (the role's lms_plugin, through enable_plugin())
TOOLS_SEEN = {
    "dev": {"bbb_server_url": "", "mod_bigbluebuttonbn": False, "enrol_database": False},
    "qa": {"bbb_server_url": BBB_QA_URL, "mod_bigbluebuttonbn": True, "enrol_database": True},
    "live": {"bbb_server_url": BBB_LIVE_URL, "mod_bigbluebuttonbn": True, "enrol_database": False},
}
# the drift each tier's test writes into config.php by hand, and the audit row that must name it
LIVE_BANNER = "$CFG->additionalhtmltopofbody = '<div class=\"three-instance-banner\">x</div>';"
HAND_EDITS = {
    "dev": (
        "$CFG->noemailever = true;",
        "$CFG->noemailever = false;",
        "acme-dev | noemailever | 1 (forced) | '' (forced) | DRIFT",
    ),
    "qa": (
        f"$CFG->divertallemailsto = '{QA_INBOX}';",
        "$CFG->divertallemailsto = 'someone@example.com';",
        f"acme-qa | divertallemailsto | {QA_INBOX} (forced) | someone@example.com (forced) | DRIFT",
    ),
    "live": (
        "$CFG->uninstallclionly = true;",
        LIVE_BANNER,
        "acme-live | uninstallclionly | 1 (forced) | unset (not forced) | DRIFT",
    ),
}


@pytest.mark.parametrize("tier", TIERS)
def test_tier_policy_in_config_php_read_back_from_moodle(estate, tier):
    clone = estate["clone"]
    shared = use_tier(estate, tier)
    text = shared.read_text()
    assert ("$CFG->noemailever = true;" in text) == (tier == "dev")

    # What Moodle itself says: values and whether config.php forces them.
    found = read_back(clone)
    for key, wanted in {**WANTED[tier], **SECURITY}.items():
        assert found[key] == wanted, (key, found[key])
    banner, banner_forced = found["core/additionalhtmltopofbody"]
    assert banner_forced == (tier != "live")
    assert (BANNER in (banner or "")) == (tier != "live")
    if tier == "qa":
        assert found["core/noemailever"][1] is False  # diverted, not switched off
        assert "QA — not the live site" in banner

    # The tier's third-party tools, as Moodle and the tools themselves read them.
    for key, wanted in TOOLS_WANTED[tier].items():
        assert found[key] == wanted, (key, found[key])
    if tier == "dev":
        assert found["core/enableplagiarism"][1] is False  # no plagiarism tool of the policy's: the admin's
    seen = tools_read(clone)
    assert {key: seen[key] for key in TOOLS_SEEN[tier]} == TOOLS_SEEN[tier]
    assert seen["bbb_shared_secret_set"] == (tier != "dev")
    assert ("database" in seen["enrol_plugins_enabled"].split(",")) == (tier == "qa")
    assert seen["auth_db"] is False and seen["enrol_flatfile"] is False

    # The admin's CLI (and so the UI) cannot change a forced setting: cfg.php exits 4.
    for args in (
        ["--name=uninstallclionly", "--set=0"],
        ["--name=debug", "--set=15"],
        ["--component=tool_recyclebin", "--name=coursebinenable", "--set=1"],
        [
            "--name=bigbluebuttonbn_server_url",
            "--set=https://test-install.blindsidenetworks.com/bigbluebutton/",
        ],
        # a plugin that is not installed: its forced settings are still forced
        [
            "--component=plagiarism_turnitin",
            "--name=plagiarism_turnitin_apiurl",
            "--set=https://api.turnitin.com",
        ],
        ["--component=enrol_database", "--name=dbhost", "--set=sis.acme.example"],
    ):
        proc = clone.cli("cfg.php", *args, check=False)
        assert proc.returncode == 4, (args, proc.stdout, proc.stderr)
        assert "is set in config.php, unable to change" in proc.stdout + proc.stderr

    # Over HTTP: the environment banner on Dev and QA pages, none on Live.
    web = WebServer(estate["ports"][tier]).start(clone)
    try:
        html = page(web.url)
    finally:
        web.stop()
    assert (BANNER in html) == (tier != "live"), html[:2000]
    if tier == "dev":
        assert "DEV — not the live site" in html

    # The audit reads the same back through lms_config, in check mode too, and passes.
    audit = playbook(estate, str(REPO / "playbooks/audit.yml"), "-e", f"site=acme-{tier}")
    assert audit.returncode == 0, audit.tail
    assert f"acme-{tier} | uninstallclionly | 1 (forced) | 1 (forced) | ok" in audit.stdout
    assert f"acme-{tier} | siteidentifier | its own in the estate | its own | ok" in audit.stdout
    cron = WANTED[tier]["core/cron_enabled"][0]
    assert f"acme-{tier} | cron_enabled | {cron} (forced) | {cron} (forced) | ok" in audit.stdout
    assert "DRIFT" not in audit.stdout
    on = "enabled" if tier != "dev" else "disabled"
    assert (
        f"acme-{tier} | mod_bigbluebuttonbn (enabled) | {on} (plugin manager) | {on} (plugin manager) | ok"
        in audit.stdout
    )
    secret = "(secret, forced) | (set, forced)" if tier != "dev" else "'' (forced) | '' (forced)"
    assert f"acme-{tier} | bigbluebuttonbn_shared_secret | {secret} | ok" in audit.stdout
    assert f"acme-{tier} | plagiarism_turnitin/plagiarism_turnitin_apiurl |" in audit.stdout
    assert not [s for s in SECRETS if s in audit.stdout + audit.stderr]  # the table never shows a secret
    checked = playbook(estate, str(REPO / "playbooks/audit.yml"), "--check", "-e", f"site=acme-{tier}")
    assert checked.returncode == 0 and "changed=0" in checked.stdout, checked.tail

    # A hand edit of config.php is drift: the audit fails naming the site and the setting.
    old, new, row = HAND_EDITS[tier]
    edit(shared, old, new)
    drifted = playbook(estate, str(REPO / "playbooks/audit.yml"), "-e", "customer=acme")
    assert drifted.returncode != 0
    mine = [line for line in drifted.stdout.splitlines() if f"acme-{tier} |" in line]
    assert "tier policy drift" in drifted.stdout and row in drifted.stdout, mine or drifted.tail
    if tier == "live":
        assert (
            "acme-live | additionalhtmltopofbody | no environment banner | banner | DRIFT" in drifted.stdout
        )
    # the other sites were read too (customer=acme) and the audit changed nothing
    assert re.search(r"hdev\s+: ok=\d+\s+changed=0", drifted.stdout), drifted.tail


def task_activity(clone) -> str:
    """Rows in the task log and the newest scheduled task run: both change when any task runs."""
    return run_sql(
        clone,
        "SELECT (SELECT COUNT(*) FROM mdl_task_log),"
        " (SELECT COALESCE(MAX(lastruntime), 0) FROM mdl_task_scheduled)",
    )


def test_cron_off_by_policy_runs_no_task_and_cron_php_cannot_switch_it_back(estate):
    """QA's policy says lms_cron: false, so config.php forces cron_enabled = 0: cron.php (what the
    role's timer runs) and scheduled_task.php refuse (exit 1, "Cron is disabled") and no task runs;
    cron.php --enable exits 0 and says "enabled", but only writes the database row that config.php
    overrides. On Live (cron on) cron.php --disable is as powerless, and a task runs."""
    clone = estate["clone"]
    task = "\\core\\task\\session_cleanup_task"
    assert "$CFG->cron_enabled = 0;" in use_tier(estate, "qa").read_text()
    before = task_activity(clone)
    for attempt in ("before", "after cron.php --enable"):
        cron = clone.cli("cron.php", "--keep-alive=0", check=False)
        assert cron.returncode == 1, (attempt, cron.stdout, cron.stderr)
        assert "Cron is disabled. Use --force to override." in cron.stdout, (attempt, cron.stdout)
        one = clone.cli("scheduled_task.php", f"--execute={task}", check=False)
        assert one.returncode == 1 and "Cron is disabled" in one.stdout, (attempt, one.stdout)
        assert task_activity(clone) == before, attempt
        if attempt == "before":
            enable = clone.cli("cron.php", "--enable", check=False)
            # a silent no-op: exit 0 and "enabled", the database row set, Moodle still reads 0
            assert enable.returncode == 0 and "Cron has been enabled for the site." in enable.stdout
            assert run_sql(clone, "SELECT value FROM mdl_config WHERE name = 'cron_enabled'") == "1"
            assert read_back(clone)["core/cron_enabled"] == ["0", True]

    assert "$CFG->cron_enabled = 1;" in use_tier(estate, "live").read_text()
    disable = clone.cli("cron.php", "--disable", check=False)
    assert disable.returncode == 0 and "Cron has been disabled for the site." in disable.stdout
    assert run_sql(clone, "SELECT value FROM mdl_config WHERE name = 'cron_enabled'") == "0"
    assert read_back(clone)["core/cron_enabled"] == ["1", True]
    one = clone.cli("scheduled_task.php", f"--execute={task}", check=False)
    assert one.returncode == 0, (one.stdout, one.stderr)
    assert task_activity(clone) != before


def test_a_tool_switched_off_behind_the_policy_is_drift_and_converge_switches_it_back(estate):
    """BigBlueButton's enabled state is the modules table's, which config.php cannot force: the admin
    UI can switch it off. The audit names it; the role's `integrations` entry point switches it back."""
    clone = estate["clone"]
    use_tier(estate, "qa")
    clone.php_eval("core\\plugininfo\\mod::enable_plugin('bigbluebuttonbn', 0);")  # what the admin UI calls
    assert tools_read(clone)["mod_bigbluebuttonbn"] is False
    drifted = playbook(estate, str(REPO / "playbooks/audit.yml"), "-e", "site=acme-qa")
    assert drifted.returncode != 0
    row = (
        "acme-qa | mod_bigbluebuttonbn (enabled) | enabled (plugin manager) | disabled (plugin manager) "
        "| DRIFT"
    )
    assert row in drifted.stdout, drifted.tail
    assert "tier policy drift" in drifted.stdout
    use_tier(estate, "qa")  # the role again: policy, config.php, integrations
    assert tools_read(clone)["mod_bigbluebuttonbn"] is True
    audit = playbook(estate, str(REPO / "playbooks/audit.yml"), "-e", "site=acme-qa")
    assert audit.returncode == 0 and "DRIFT" not in audit.stdout, audit.tail


def test_qa_pointed_where_live_connects_is_refused_by_the_role_and_nothing_changes(estate):
    """The role finds acme-live's record in the inventory (its site group acme_live) and refuses a QA
    whose BigBlueButton is Live's server, naming the site and the key; config.php stays as it was."""
    shared = use_tier(estate, "qa")
    before = shared.read_bytes()
    data = yaml.safe_load((estate["base"] / "estate.yml").read_text())
    qa_vars = data["customers"]["acme"]["tiers"]["qa"]["vars"]
    qa_vars["lms_integrations"]["mod_bigbluebuttonbn"]["settings"]["bigbluebuttonbn_server_url"] = (
        "https://BBB.acme.example/qa-room/"
    )
    (estate["base"] / "refused-estate.yml").write_text(yaml.safe_dump(data))
    refused = playbook(
        estate, "--limit", "hqa", str(estate["base"] / "render.yml"), inventory="refused-estate.yml"
    )
    assert refused.returncode != 0
    message = (
        "site acme-qa: lms_integrations.mod_bigbluebuttonbn.settings bigbluebuttonbn_server_url points at "
        "bbb.acme.example, where acme-live connects: qa uses a sandbox or test instance of its own, "
        "never Live's"
    )
    assert message in refused.stdout, refused.tail
    assert "nothing was changed" in refused.stdout
    assert not [s for s in SECRETS if s in refused.stdout + refused.stderr]
    assert shared.read_bytes() == before


def test_sites_that_share_one_identity_are_drift(estate):
    """The three test sites are one database, so one siteidentifier: audited together (the whole
    estate, no -e), each is named with the sites it shares it with, and the audit fails."""
    audit = playbook(estate, str(REPO / "playbooks/audit.yml"))
    assert audit.returncode != 0, audit.tail
    for tier in TIERS:
        others = ", ".join(sorted(f"acme-{t}" for t in TIERS if t != tier))
        row = f"acme-{tier} | siteidentifier | its own in the estate | shared with {others} | DRIFT"
        assert row in audit.stdout, audit.tail

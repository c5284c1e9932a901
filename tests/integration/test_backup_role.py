"""roles/backup on this machine: the options file it renders drives the code it copies, run as the
systemd service runs it (``python3 -m backup.timer create`` then ``prune``, the lib folder on
PYTHONPATH), against the real Moodle test site and moto.

The unit files and the apt task are skipped (tags backup-units, backup-packages): this machine is
no Live host; the units are plain templates of the commands run here.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import moodle_site as ms
import s3_store
import yaml
from ansible_cli import PYTHON, ansible_env, ansible_playbook
from backup.format import Keys, list_backups
from backup.info import info as backup_info
from test_backup import CUSTOMER, bucket, params  # noqa: F401 - bucket is a fixture

REPO = Path(__file__).resolve().parents[2]
# What the timer runs on a host: Debian's python3 with python3-boto3 (an older botocore than the venv's).
HOST_PYTHON = "/usr/bin/python3"


def test_role_config_drives_the_timer_code(moodle_site, bucket):  # noqa: F811 - the imported fixture
    base = ms.private_tmpdir("ti-role-")
    try:
        (base / "srv" / "acme-live").mkdir(parents=True)
        (base / "srv" / "acme-live" / "current").symlink_to(moodle_site.code)
        info = bucket["endpoint"]
        role_vars = {
            "estate_sites": [
                {
                    "name": "acme-live",
                    "customer": CUSTOMER,
                    "tier": "live",
                    "web_hosts": ["localhost"],
                    "site_user": moodle_site.web_user,
                    "code_dir": str(base / "srv" / "acme-live"),
                    "vars": {},
                },
                {
                    "name": "acme-qa",
                    "customer": CUSTOMER,
                    "tier": "qa",
                    "web_hosts": ["localhost"],
                    "site_user": "acme-qa",
                    "code_dir": str(base / "srv" / "acme-qa"),
                    "vars": {},
                },
            ],
            "backup_store": {
                "bucket": bucket["name"],
                "prefix": "role-backups",
                "endpoint_url": info["endpoint_url"],
                "region": info["region"],
                "access_key": info["access_key"],
                "secret_key": info["secret_key"],
            },
            "backup_lib_dir": str(base / "lib"),
            "backup_config_dir": str(base / "etc"),
            "backup_php": "php",
            "backup_python": HOST_PYTHON,
            "backup_keep_daily": 1,
            "backup_keep_weekly": 0,
            "backup_keep_monthly": 0,
        }
        play = [{"hosts": "localhost", "gather_facts": False, "vars": role_vars, "roles": ["backup"]}]
        (base / "play.yml").write_text(yaml.safe_dump(play))
        run = ansible_playbook(
            "-i",
            "localhost,",
            "-c",
            "local",
            str(base / "play.yml"),
            "-e",
            PYTHON,
            "--skip-tags",
            "backup-units,backup-packages",
            env=ansible_env(ANSIBLE_ROLES_PATH=str(REPO / "roles")),
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

        config = base / "etc" / "acme-live.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert not (base / "etc" / "acme-qa.json").exists()  # only Live by default
        assert json.loads(config.read_text())["web_user"] == moodle_site.web_user

        # What lms-backup-acme-live.service runs, twice (two backups, then prune keeps one).
        ids = []
        for _ in range(2):
            for action in ("create", "prune"):
                done = subprocess.run(
                    [HOST_PYTHON, "-m", "backup.timer", action, "--config", str(config)],
                    cwd=base,
                    capture_output=True,
                    text=True,
                    env={**moodle_site.env(), "PYTHONPATH": str(base / "lib")},
                    check=False,
                )
                assert done.returncode == 0, done.stderr
                if action == "create":
                    ids.append(json.loads(done.stdout)["backup_id"])
        options = params(None, bucket, site="acme-live", prefix="role-backups")
        keys = Keys("role-backups", CUSTOMER, "acme-live")
        listed = list_backups(s3_store.connect(options["store"]), keys)
        # Both ran within the same second or day: the policy keeps the newest only.
        assert listed == [max(ids)]
        assert backup_info({**options, "verify": True})["complete"]
    finally:
        shutil.rmtree(base, ignore_errors=True)

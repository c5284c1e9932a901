# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site as a backup sees it: its ``$CFG`` read through Moodle's own config.php (as the web user),
and the environment of its database's client tools."""

from __future__ import annotations

import json
import os

try:
    from ansible.module_utils.moodle_cli import MoodleSite
    from ansible.module_utils.php.read_config import READ_CONFIG_PHP
except ImportError:  # the timer's copy on a host, tests: siblings on sys.path
    from moodle_cli import MoodleSite
    from php.read_config import READ_CONFIG_PHP

from .format import BackupError

MYSQL_TYPES = ("mysqli", "mariadb", "auroramysql")


def read_site_config(site: MoodleSite) -> dict:
    """``$CFG`` database fields, wwwroot and dataroot, read by PHP as the web user (the password
    travels on the PHP process's stdout only)."""
    site.require_config()
    try:
        return php_answer(site, READ_CONFIG_PHP, "@@LMS-CONFIG@@", site.config_php)
    except BackupError as exc:
        raise BackupError(f"cannot read {site.config_php}: {exc}") from exc


def db_env(cfg: dict) -> tuple[list[str], dict]:
    """Connection arguments and environment for the database client tools; the password goes in
    the environment (``PGPASSWORD`` / ``MYSQL_PWD``), never on a command line."""
    env = dict(os.environ)
    if cfg["dbtype"] == "pgsql":
        host = cfg["dbsocket"] if cfg["dbsocket"].startswith("/") else cfg["dbhost"]
        env.update(
            PGHOST=host, PGUSER=cfg["dbuser"], PGDATABASE=cfg["dbname"], PGPASSWORD=cfg["dbpass"] or ""
        )
        if cfg["dbport"]:
            env["PGPORT"] = cfg["dbport"]
        return [], env
    if cfg["dbtype"] in MYSQL_TYPES:
        env["MYSQL_PWD"] = cfg["dbpass"] or ""
        args = [f"--user={cfg['dbuser']}"]
        if cfg["dbsocket"].startswith("/") and cfg["dbhost"] in ("localhost", ""):
            args.append(f"--socket={cfg['dbsocket']}")
        else:
            args.append(f"--host={cfg['dbhost']}")
            if cfg["dbport"]:
                args.append(f"--port={cfg['dbport']}")
        return args, env
    raise BackupError(f"database type '{cfg['dbtype']}' is not supported (pgsql, mariadb, mysqli)")


def php_answer(site: MoodleSite, program: str, marker: str, *args: str) -> dict:
    """Run a PHP program on the site (``MoodleSite.run_php``) and return the JSON it prints after
    ``marker``."""
    result = site.run_php("backup", program, *args)
    index = result.stdout.rfind(marker)
    if result.rc != 0 or index < 0:
        raise BackupError(f"PHP failed (rc={result.rc}): {(result.stderr or result.stdout).strip()[-500:]}")
    return json.loads(result.stdout[index + len(marker) :].splitlines()[0])

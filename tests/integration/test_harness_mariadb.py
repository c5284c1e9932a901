"""The MariaDB harness: a private server, and a real Moodle installed on it."""

from __future__ import annotations


def test_mariadb_server_runs_privately(mariadb_server):
    assert mariadb_server.mysql("SELECT @@character_set_server") == "utf8mb4"
    assert str(mariadb_server.socket).startswith(str(mariadb_server.base))
    assert mariadb_server.mysql("SELECT @@port") == str(mariadb_server.port)


def test_moodle_installs_on_mariadb(moodle_site_mariadb, mariadb_server):
    tables = int(
        mariadb_server.mysql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'moodle'"
            " AND table_name LIKE 'mdl\\_%'"
        )
    )
    assert tables > 400
    version = moodle_site_mariadb.php_eval("echo $DB->get_dbfamily(), ' ', $CFG->version;").stdout.split()
    assert version[0] == "mysql"
    assert float(version[1]) > 2025000000

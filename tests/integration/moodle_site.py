"""A real, throw-away Moodle site on this machine for integration tests.

Pieces, each usable alone (and from the command line, see ``main``):

* :class:`PgCluster` -- a private PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temp dir, a free
  port, its unix socket in the temp dir). No system service is used or needed.
* :class:`MoodleTestSite` -- a copy of a Moodle source tree (hard links when possible), a dataroot
  owned by the web user (02770), a templated ``config.php`` and ``install_database.php``.

* :class:`MariaDbServer` -- a private MariaDB server the same way (``mariadb-install-db`` +
  ``mariadbd`` in a temp dir, a free port on 127.0.0.1, its socket in the temp dir).

A database server only has to offer ``create_database(name, user, password)`` and
``moodle_config(dbname, user, password)`` (the ``$CFG->db*`` values); :class:`MoodleTestSite` works
with either.

Command line (handy when developing modules by hand)::

    python tests/integration/moodle_site.py up /tmp/ti-site [MOODLE_SRC]   # prints the site as JSON
    python tests/integration/moodle_site.py down /tmp/ti-site
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("TI_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"  # initdb refuses to run as root; the Debian package creates this user
WEB_USER = os.environ.get("TI_WEB_USER", "ti-moodletest")
ADMIN_PASSWORD = "Admin-pass-1!"  # a throw-away test site only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd, *, user: str | None = None, check: bool = True, env=None, timeout=600, **kw):
    """Run a command, optionally as another user (runuser), and fail with its output."""
    if user is not None and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed (rc={proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def missing_prerequisites(php: str = "php") -> list[str]:
    """What this machine lacks to run a real Moodle site (empty when all is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (to create the web user and run the CLIs as it)")
    if not (PG_BIN / "initdb").exists():
        missing.append(f"PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql)")
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        missing.append(f"the '{PG_OS_USER}' OS user (apt-get install postgresql)")
    if shutil.which(php) is None:
        missing.append("php (apt-get install php8.2-cli)")
    else:
        mods = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout.lower()
        for ext in ("pgsql", "intl", "xml", "mbstring", "curl", "zip", "gd", "soap"):
            if ext not in mods.split():
                missing.append(f"php extension {ext} (apt-get install php8.2-{ext})")
    return missing


def ensure_user(name: str) -> pwd.struct_passwd:
    """A system user (no login, no home) for the web server role."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ]
        )
        return pwd.getpwnam(name)


def private_tmpdir(prefix: str) -> Path:
    """A short temp dir that other users may traverse (socket paths must stay < 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def moodle_db_config(dbtype: str, dbname: str, user: str, password: str, **dboptions) -> dict:
    """The ``$CFG->db*`` values of a site on a private server reached through its socket."""
    return {
        "dbtype": dbtype,
        "dblibrary": "native",
        "dbhost": "localhost",
        "dbname": dbname,
        "dbuser": user,
        "dbpass": password,
        "prefix": "mdl_",
        "dboptions": {"dbpersist": 0, **dboptions},
    }


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PgCluster:
    """A private PostgreSQL cluster: data, socket and log under ``base``; trust auth on the socket."""

    base: Path
    port: int = 0
    os_user: str = PG_OS_USER
    bin: Path = PG_BIN
    dbtype: str = "pgsql"

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    def start(self) -> PgCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        uid = pwd.getpwnam(self.os_user).pw_uid
        os.chown(self.base, uid, -1)
        self.base.chmod(0o755)
        if not self.port:
            self.port = free_port()
        if not (self.datadir / "PG_VERSION").exists():
            run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user=self.os_user,
            )
        self.socket_dir.mkdir(exist_ok=True)
        os.chown(self.socket_dir, uid, -1)
        opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses='' -c fsync=off"
        run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.base / "postgres.log"),
                "-o",
                opts,
                "-w",
                "start",
            ],
            user=self.os_user,
        )
        return self

    @classmethod
    def attach(cls, base: Path) -> PgCluster:
        """A running cluster made earlier (its port is in ``postmaster.pid``); started if it is down."""
        cluster = cls(Path(base))
        pid_file = cluster.datadir / "postmaster.pid"
        if pid_file.exists():
            cluster.port = int(pid_file.read_text().splitlines()[3])
            return cluster
        return cluster.start()

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            run(
                [str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
                user=self.os_user,
                check=False,
            )

    def psql(self, sql: str, db: str = "postgres") -> str:
        proc = run(
            [
                str(self.bin / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
            user=self.os_user,
        )
        return proc.stdout.strip()

    def create_database(self, name: str, user: str, password: str) -> None:
        self.psql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        self.psql(f'CREATE DATABASE "{name}" OWNER "{user}" ENCODING \'UTF8\' TEMPLATE template0')

    def moodle_config(self, dbname: str, user: str, password: str) -> dict:
        return moodle_db_config(
            "pgsql", dbname, user, password, dbport=self.port, dbsocket=str(self.socket_dir)
        )


# ---------------------------------------------------------------------------------------------------------
# MariaDB

MARIADB_OS_USER = "mysql"


def missing_mariadb() -> list[str]:
    """What this machine lacks to run a private MariaDB server for Moodle (empty when all is there)."""
    missing = []
    for tool in ("mariadbd", "mariadb-install-db", "mariadb"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin") is None:
            missing.append(f"{tool} (apt-get install mariadb-server mariadb-client)")
    try:
        pwd.getpwnam(MARIADB_OS_USER)
    except KeyError:
        missing.append(f"the '{MARIADB_OS_USER}' OS user (apt-get install mariadb-server)")
    mods = subprocess.run(["php", "-m"], capture_output=True, text=True, check=False).stdout.lower().split()
    if "mysqli" not in mods:
        missing.append("php extension mysqli (apt-get install php8.2-mysql)")
    return missing


@dataclass
class MariaDbServer:
    """A private MariaDB server: data, socket, pid and log under ``base``; TCP on 127.0.0.1:``port``.

    The OS user root reaches it as ``root`` over the socket (unix_socket authentication).
    """

    base: Path
    port: int = 0
    os_user: str = MARIADB_OS_USER
    dbtype: str = "mariadb"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "run" / "mysqld.sock"

    def start(self, timeout: float = 60) -> MariaDbServer:
        self.base.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(self.os_user)
        os.chown(self.base, user.pw_uid, user.pw_gid)
        self.base.chmod(0o755)
        (self.base / "run").mkdir(exist_ok=True)
        os.chown(self.base / "run", user.pw_uid, user.pw_gid)
        (self.base / "run").chmod(0o755)
        if not self.port:
            self.port = free_port()
        if not (self.datadir / "mysql").exists():
            run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--user={self.os_user}",
                    "--skip-test-db",
                    "--auth-root-authentication-method=socket",
                ]
            )
        self.process = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--user={self.os_user}",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.base / 'run' / 'mysqld.pid'}",
                f"--log-error={self.base / 'mariadb.log'}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                "--innodb-flush-log-at-trx-commit=0",  # test data only: speed over durability
                "--innodb-doublewrite=0",
                "--innodb-buffer-pool-size=256M",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.base / "mariadb.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}:\n{log}")
            if self.socket.exists() and self.mysql("SELECT 1", check=False) == "1":
                return self
            time.sleep(0.3)
        raise RuntimeError(f"mariadbd did not answer on {self.socket} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def mysql(self, sql: str, db: str | None = None, check: bool = True) -> str:
        """Run SQL as root over the socket; the result rows tab-separated, without column names."""
        cmd = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-N", "-B", "-e", sql]
        if db:
            cmd.append(db)
        proc = run(cmd, check=check)
        return proc.stdout.strip()

    def create_database(self, name: str, user: str, password: str) -> None:
        self.mysql(f"CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        for host in ("localhost", "127.0.0.1"):
            self.mysql(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'")
            self.mysql(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}'")

    def moodle_config(self, dbname: str, user: str, password: str) -> dict:
        return moodle_db_config(
            "mariadb",
            dbname,
            user,
            password,
            dbport=self.port,
            dbsocket=str(self.socket),
            dbcollation="utf8mb4_unicode_ci",
        )


# ---------------------------------------------------------------------------------------------------------
# Moodle


def _php_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{_php_literal(k)} => {_php_literal(v)}" for k, v in value.items())
        return f"[{inner}]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


CONFIG_TEMPLATE = """<?php  // Moodle configuration file, written by the three-instance test harness.
unset($CFG);
global $CFG;
$CFG = new stdClass();

{db}
$CFG->wwwroot   = '{wwwroot}';
$CFG->dataroot  = '{dataroot}';
$CFG->admin     = 'admin';
$CFG->directorypermissions = 02770;
$CFG->noemailever = true;
{extra}
require_once(__DIR__ . '/{setup}');
"""


def detect_layout(code: Path) -> str:
    """``public`` (Moodle >= 5.1), ``server`` (Totara 13+) or ``root`` (older Moodle)."""
    if (code / "public" / "version.php").exists():
        return "public"
    if (code / "server" / "version.php").exists():
        return "server"
    return "root"


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a Moodle tree (or unpack a tarball) to ``dest``: hard links when possible (same filesystem).

    Hard-linked files share their inode with the source: tests must replace files (write + rename),
    never edit or chown them in place.
    """
    if src.is_file():
        dest.mkdir(parents=True)
        with tarfile.open(src) as tar:
            tar.extractall(dest, filter="data")
        entries = list(dest.iterdir())
        if len(entries) == 1 and entries[0].is_dir():  # a single top-level folder: strip it
            inner = entries[0]
            for child in inner.iterdir():
                child.rename(dest / child.name)
            inner.rmdir()
        return
    proc = subprocess.run(["cp", "-al", str(src), str(dest)], capture_output=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        run(["cp", "-a", str(src), str(dest)])


@dataclass
class MoodleTestSite:
    """A Moodle site under ``base``: ``code/`` (read-only for the web user), ``data/``, ``php/``."""

    base: Path
    db: object
    web_user: str = WEB_USER
    php: str = "php"
    dbname: str = "moodle"
    dbuser: str = "moodle"
    dbpass: str = "moodle-test-pass"
    wwwroot: str = "http://localhost/ti-test"
    config_extra: dict = field(default_factory=dict)

    @property
    def code(self) -> Path:
        return self.base / "code"

    @property
    def dataroot(self) -> Path:
        return self.base / "data"

    @property
    def php_ini_dir(self) -> Path:
        return self.base / "php"

    @property
    def layout(self) -> str:
        return detect_layout(self.code)

    @property
    def cli_root(self) -> Path:
        """Where ``admin/cli`` is: the tree root for Moodle 5.1 and old Moodle, ``server/`` for Totara."""
        return self.code / "server" if self.layout == "server" else self.code

    def env(self) -> dict:
        """Environment for PHP: Debian's ini files plus ours (max_input_vars=5000)."""
        env = dict(os.environ)
        env["PHP_INI_SCAN_DIR"] = f":{self.php_ini_dir}"
        return env

    def create(self, src: Path) -> MoodleTestSite:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        user = ensure_user(self.web_user)
        copy_tree(Path(src), self.code)
        for stale in ("config.php",):  # a tree never brings its own config into a test site
            if (self.code / stale).exists():
                (self.code / stale).unlink()
        self.dataroot.mkdir(exist_ok=True)
        os.chown(self.dataroot, user.pw_uid, user.pw_gid)
        self.dataroot.chmod(0o2770)
        self.php_ini_dir.mkdir(exist_ok=True)
        (self.php_ini_dir / "99-three-instance-test.ini").write_text("max_input_vars = 5000\n")
        self.db.create_database(self.dbname, self.dbuser, self.dbpass)
        self.write_config()
        return self

    def deploy(self, src: Path, release_id: str) -> Path:
        """Another code tree as ``releases/<id>`` with this site's config.php, and ``current`` -> it
        (the deployment layout of DESIGN §2). Returns the ``current`` path."""
        release = self.base / "releases" / release_id
        release.parent.mkdir(exist_ok=True)
        copy_tree(Path(src), release)
        if (release / "config.php").exists():
            (release / "config.php").unlink()
        self.write_config(release)
        current = self.base / "current"
        tmp = self.base / "current.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(release)
        tmp.rename(current)  # atomic switch
        return current

    def write_config(self, code: Path | None = None) -> None:
        db = self.db.moodle_config(self.dbname, self.dbuser, self.dbpass)
        lines = [f"$CFG->{key} = {_php_literal(value)};" for key, value in db.items()]
        extra = [f"$CFG->{key} = {_php_literal(value)};" for key, value in self.config_extra.items()]
        code = code or self.code
        setup = "server/lib/setup.php" if detect_layout(code) == "server" else "lib/setup.php"
        text = CONFIG_TEMPLATE.format(
            db="\n".join(lines),
            wwwroot=self.wwwroot,
            dataroot=self.dataroot,
            extra="\n".join(extra),
            setup=setup,
        )
        path = code / "config.php"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        user = pwd.getpwnam(self.web_user)
        os.chown(tmp, 0, user.pw_gid)  # readable by the web user's group, not by the world
        tmp.chmod(0o640)
        tmp.rename(path)

    def cli(self, script: str, *args: str, check: bool = True, timeout: int = 600):
        """Run ``admin/cli/<script>`` (or a path relative to the CLI root) as the web user."""
        path = script if "/" in script else f"admin/cli/{script}"
        return run(
            [self.php, str(self.cli_root / path), *args],
            user=self.web_user,
            env=self.env(),
            cwd=self.cli_root,
            check=check,
            timeout=timeout,
        )

    def php_eval(self, code: str, check: bool = True):
        """Run PHP code with the site bootstrapped (CLI_SCRIPT), as the web user."""
        script = self.base / f"eval-{time.monotonic_ns()}.php"
        script.write_text(
            "<?php\ndefine('CLI_SCRIPT', true);\n"
            f"require {_php_literal(str(self.code / 'config.php'))};\n{code}\n"
        )
        script.chmod(0o644)
        try:
            return run([self.php, str(script)], user=self.web_user, env=self.env(), check=check)
        finally:
            script.unlink()

    def install(self) -> float:
        """``install_database.php``: about 50 s. Returns the seconds it took."""
        start = time.monotonic()
        self.cli(
            "install_database.php",
            "--agree-license",
            "--lang=en",
            "--adminuser=admin",
            f"--adminpass={ADMIN_PASSWORD}",
            "--adminemail=admin@example.invalid",
            "--fullname=three-instance test site",
            "--shortname=ti-test",
            "--summary=integration tests",
            "--supportemail=support@example.invalid",
        )
        return time.monotonic() - start

    def describe(self) -> dict:
        return {
            "path": str(self.code),
            "web_user": self.web_user,
            "php": self.php,
            "dataroot": str(self.dataroot),
            "layout": self.layout,
            "env": {"PHP_INI_SCAN_DIR": f":{self.php_ini_dir}"},
        }


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down"):
        print(__doc__)
        return 2
    base = Path(argv[1])
    if argv[0] == "down":
        PgCluster(base / "pg").stop()
        shutil.rmtree(base, ignore_errors=True)
        return 0
    if len(argv) > 2:
        src = Path(argv[2])
    else:  # the one rule: MOODLE_SRC, the cache, the download (tools/moodle_source.py)
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
        import moodle_source

        src = Path(moodle_source.resolve()["path"] or "MOODLE_SRC")
    missing = missing_prerequisites()
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    pg = PgCluster(base / "pg").start()
    site = MoodleTestSite(base / "site", pg).create(src)
    seconds = site.install()
    print(json.dumps({**site.describe(), "pg_port": pg.port, "install_seconds": round(seconds, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

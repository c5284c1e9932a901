# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a Moodle release requires of its host, from the release's own ``admin/environment.xml``,
and what of it a host lacks: the PHP version and required extensions, the database server's
version, and the oldest branch an upgrade may start from. Read before a deploy changes anything,
so that a release the host cannot run is refused naming the requirement (Moodle's own upgrade
would stop half-way, in maintenance)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

#: Moodle's names of database families (``$DB->get_dbfamily()``) -> environment.xml vendors.
DB_VENDORS = {"postgres": "postgres", "mysql": "mysql", "mariadb": "mariadb", "mssql": "mssql"}


def version_tuple(text) -> tuple:
    """``8.2.29-1~deb12u1`` -> (8, 2, 29); ``15.14 (Debian 15.14-0+deb12u1)`` -> (15, 14)."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", str(text or ""))
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def branch_of(version: str) -> tuple:
    """A release name's branch: ``4.2.3`` -> (4, 2)."""
    return version_tuple(version)[:2]


def requirements(xml_text: str, branch: str) -> dict | None:
    """The requirements of Moodle ``branch`` (``"5.1"``) in an environment.xml; None when absent."""
    root = ET.fromstring(xml_text)  # noqa: S314 - see the import
    entry = next((m for m in root.findall("MOODLE") if m.get("version") == branch), None)
    if entry is None:
        return None
    out = {"branch": branch, "upgrade_from": entry.get("requires"), "php": None}
    out.update(databases={}, extensions=[])
    php = entry.find("PHP")
    if php is not None and php.get("level") == "required":
        out["php"] = php.get("version")
    database = entry.find("DATABASE")
    if database is not None:
        out["databases"] = {v.get("name"): v.get("version") for v in database.findall("VENDOR")}
    extensions = entry.find("PHP_EXTENSIONS")
    if extensions is not None:
        out["extensions"] = [
            e.get("name") for e in extensions.findall("PHP_EXTENSION") if e.get("level") == "required"
        ]
    return out


def unmet(
    required: dict,
    php_version: str,
    php_extensions,
    db_family: str | None = None,
    db_version: str | None = None,
    installed_branch: str | None = None,
) -> list[str]:
    """What the host lacks, one sentence each (empty: it can run the release)."""
    problems = []
    if required.get("php") and version_tuple(php_version) < version_tuple(required["php"]):
        problems.append(f"PHP {required['php']} or newer (the host has {php_version})")
    loaded = {str(name).lower() for name in php_extensions or ()}
    missing = [name for name in required.get("extensions", ()) if name.lower() not in loaded]
    if missing:
        problems.append("the PHP extensions " + ", ".join(missing))
    vendor = DB_VENDORS.get(db_family or "")
    if db_family == "mysql" and "mariadb" in str(db_version or "").lower():
        vendor = "mariadb"
    wanted = required.get("databases", {}).get(vendor) if vendor else None
    if wanted and db_version and version_tuple(db_version) < version_tuple(wanted):
        problems.append(f"{vendor} {wanted} or newer (the database server is {db_version})")
    elif vendor and required.get("databases") and vendor not in required["databases"]:
        supported = ", ".join(sorted(required["databases"]))
        problems.append(f"a supported database ({supported}; this site uses {vendor})")
    start = required.get("upgrade_from")
    if start and installed_branch and branch_of(installed_branch) < branch_of(start):
        problems.append(
            f"an upgrade from Moodle {start} or newer (the site is at {installed_branch}): "
            "upgrade it through an intermediate release first"
        )
    return problems


def branch_name(raw) -> str:
    """Moodle's ``$branch`` (``'501'``) as operators name it (``5.1``)."""
    raw = str(raw or "")
    return f"{int(raw[:-2])}.{int(raw[-2:])}" if raw.isdigit() and len(raw) >= 3 else raw

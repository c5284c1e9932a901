# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A courseware bundle on a Moodle site (``lms_courseware``, ``lms_courseware_info``), on the host.

:func:`open_bundle` unpacks a bundle (built by ``courseware.build_course`` on the controller) into a
folder the web user can read, and checks every member against the sha256 its manifest lists.
:func:`publish` then runs the PHP loader (``php/courseware.py``) as the web user: the Moodle book
of the bundle in the Book activity whose course module ID number is ``courseware-<course>``
(created when missing; its chapters replaced in place, through Moodle's own ``booktool_importhtml``
code), the PDF as the File resource ``courseware-<course>-pdf``, the style's theme settings; all in
one transaction, and nothing when the site already has that bundle. :func:`info` says what a site
has. Standard library only: this runs on the managed hosts' Python (Debian 12: 3.11.2).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile

try:
    from ansible.module_utils.digest import sha256_file
    from ansible.module_utils.moodle_cli import MoodleError, MoodleSite
    from ansible.module_utils.php.courseware import COURSEWARE_PHP
    from ansible.module_utils.safe_tar import extract_file
except ImportError:  # unit tests: siblings on sys.path
    from digest import sha256_file
    from moodle_cli import MoodleError, MoodleSite
    from php.courseware import COURSEWARE_PHP
    from safe_tar import extract_file

#: What both modules return of a site's courseware (the loader's ``info``).
VIEW = ("course", "book", "pdf", "published", "settings")
MANIFEST_MEMBER = "courseware.json"
PACKAGE_MEMBER = "moodle-book.zip"
COURSE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
#: Only theme settings come with a style: a course's styling may not reach other settings.
THEME_SETTING = re.compile(r"\Atheme_[a-z0-9_]+/[a-z][a-z0-9_]*\Z")
#: How Moodle's import takes a chapter's title (``toolbook_importhtml_parse_title``).
TITLE = re.compile(r"<title>([^<]+)</title>", re.IGNORECASE)


def book_names(course: str) -> dict:
    """The course module ID numbers of a course's courseware: the book and the PDF."""
    if not COURSE.match(course or ""):
        raise MoodleError(f"course {course!r} is not a courseware course name (a-z, 0-9, '-', '_')")
    return {"cm_idnumber": f"courseware-{course}", "pdf_idnumber": f"courseware-{course}-pdf"}


def theme_settings(settings) -> dict:
    """The style's Moodle settings, checked: theme settings only, as strings."""
    settings = settings or {}
    wrong = sorted(key for key in settings if not THEME_SETTING.match(str(key)))
    if wrong:
        raise MoodleError(
            f"the style's Moodle settings may only be theme settings (theme_<name>/<setting>): "
            f"{', '.join(wrong)} refused; nothing was changed"
        )
    return {key: str(value) for key, value in sorted(settings.items())}


def chapter_titles(package: str) -> list[str]:
    """The chapters Moodle's import makes of ``package``: each top-level HTML file, in name order,
    titled by its ``<title>`` (else its name), as ``booktool_importhtml`` reads them."""
    with zipfile.ZipFile(package) as archive:
        names = sorted(
            n for n in archive.namelist() if "/" not in n and n.lower().endswith((".html", ".htm"))
        )
        titles = []
        for name in names:
            match = TITLE.search(archive.read(name).decode("utf-8", "replace"))
            titles.append(match.group(1) if match else name)
    return titles


@contextlib.contextmanager
def open_bundle(bundle: str, customer: str, tmp_dir: str | None = None):
    """The bundle unpacked into a temporary folder the web user can read, its manifest checked;
    yields ``(folder, manifest)`` and removes the folder after."""
    if not os.path.isfile(bundle):
        raise MoodleError(f"{bundle}: no such courseware bundle on this host")
    work = tempfile.mkdtemp(prefix="lms-courseware-", dir=tmp_dir)
    try:
        os.chmod(work, 0o755)  # noqa: S103 - the web user reads the package and the PDF; no secrets
        try:
            extract_file(bundle, work, "r:gz")
        except Exception as exc:  # tarfile, zlib and refusal errors alike: not a bundle
            raise MoodleError(f"{bundle} is not a courseware bundle: {exc}") from exc
        try:
            with open(os.path.join(work, MANIFEST_MEMBER), encoding="utf-8") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as exc:
            raise MoodleError(f"{bundle} is not a courseware bundle (no readable {MANIFEST_MEMBER})") from exc
        if manifest.get("customer") != customer:
            raise MoodleError(
                f"{bundle} is courseware of customer {manifest.get('customer')!r}, not of {customer!r}; "
                "a customer's courseware goes only to its own sites; nothing was changed"
            )
        for rel, sha in sorted((manifest.get("files") or {}).items()):
            path = os.path.join(work, rel)
            if not os.path.isfile(path) or sha256_file(path) != sha:
                raise MoodleError(
                    f"{bundle}: member {rel} does not match the manifest's sha256; nothing was changed"
                )
        yield work, manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _lookup(manifest: dict) -> dict:
    names = book_names(manifest.get("course", ""))
    return dict(
        names, shortname=manifest.get("shortname"), settings=theme_settings(manifest.get("moodle_settings"))
    )


def publish(
    site: MoodleSite,
    bundle: str,
    customer: str,
    sha256: str | None,
    check_mode: bool,
    force: bool = False,
    by: str = "",
    tmp_dir: str | None = None,
) -> dict:
    """Load ``bundle`` into ``site`` (see the module docstring); returns the loader's answer."""
    with open_bundle(bundle, customer, tmp_dir) as (work, manifest):
        actual = sha256_file(bundle)
        if sha256 and sha256 != actual:
            raise MoodleError(f"{bundle} has sha256 {actual}, expected {sha256}; nothing was changed")
        package = os.path.join(work, PACKAGE_MEMBER)
        if not os.path.isfile(package):
            raise MoodleError(
                f"{bundle} carries no Moodle book ({PACKAGE_MEMBER}: 'moodle' not in its formats)"
            )
        pdf = os.path.join(work, f"{manifest['course']}.pdf")
        request = dict(
            _lookup(manifest),
            book_name=manifest.get("title") or manifest["course"],
            package=package,
            titles=chapter_titles(package),
            pdf=pdf if os.path.isfile(pdf) else None,
            pdf_name=f"{manifest['course']}.pdf",
            pdf_title=f"{manifest.get('title') or manifest['course']} (PDF)",
            version=manifest["version"],
            sha256=actual,
            check=check_mode,
            force=force,
            by=by,
        )
        answer = site.operation("courseware", COURSEWARE_PHP, "publish", request)
    answer.update(version=manifest["version"], sha256=actual, course=manifest["course"])
    return answer


def info(site: MoodleSite, course: str, shortname: str, settings: dict | None = None) -> dict:
    """What ``site`` has of ``course``'s courseware in the course ``shortname``."""
    request = dict(book_names(course), shortname=shortname, settings=theme_settings(settings))
    return site.operation("courseware", COURSEWARE_PHP, "info", request)

"""courseware_site (the host side of lms_courseware): what Moodle's import will make of a package,
the style's settings (theme settings only), and a bundle's checks before any Moodle call (its
customer, every member against the manifest, the store's sha256). The loads themselves run against
a real Moodle in tests/integration/test_lms_courseware.py."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import courseware_site as cs
from moodle_cli import MoodleError


def package(tmp_path: Path, files: dict) -> Path:
    path = tmp_path / "moodle-book.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_chapter_titles_follow_moodles_import(tmp_path):
    path = package(
        tmp_path,
        {
            "02-00-b.html": "<html><head><title>Second &amp; last</title></head><body>b</body></html>",
            "01-00-a.html": "<html><head><TITLE>First</TITLE></head><body>a</body></html>",
            "01-01-a_sub.html": "<html><head><title>Sub</title></head></html>",
            "03-00-untitled.htm": "<html><body>no title</body></html>",
            "courseware.css": "body {}",
            "images/x.html": "<title>not a chapter: in a folder</title>",
        },
    )
    # name order, raw <title> text (the import does not decode it), else the file's name
    assert cs.chapter_titles(str(path)) == ["First", "Sub", "Second &amp; last", "03-00-untitled.htm"]


def test_only_theme_settings_come_with_a_style():
    assert cs.theme_settings({"theme_boost/brandcolor": "#0B5394"}) == {"theme_boost/brandcolor": "#0B5394"}
    assert cs.theme_settings(None) == {}
    with pytest.raises(MoodleError, match="auth_db/host, core/noemailever refused"):
        cs.theme_settings({"theme_boost/brandcolor": "#fff", "auth_db/host": "x", "core/noemailever": "0"})


def test_book_names_need_a_course_name():
    assert cs.book_names("safety-basics") == {
        "cm_idnumber": "courseware-safety-basics",
        "pdf_idnumber": "courseware-safety-basics-pdf",
    }
    with pytest.raises(MoodleError, match="not a courseware course name"):
        cs.book_names("../etc")


def bundle(tmp_path: Path, customer: str = "acme", tamper: bool = False) -> Path:
    members = {"moodle-book.zip": b"zip bytes", "safety-basics.pdf": b"%PDF-1.4"}
    manifest = {
        "course": "safety-basics",
        "customer": customer,
        "version": "0123456789ab",
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    if tamper:
        members["safety-basics.pdf"] = b"%PDF-1.4 changed"
    members["courseware.json"] = json.dumps(manifest).encode()
    path = tmp_path / "safety-basics-0123456789ab.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_bundle_opens_into_a_folder_the_web_user_reads_and_is_removed_after(tmp_path):
    with cs.open_bundle(str(bundle(tmp_path)), "acme", str(tmp_path)) as (work, manifest):
        assert manifest["version"] == "0123456789ab"
        assert (Path(work) / "safety-basics.pdf").read_bytes() == b"%PDF-1.4"
        assert Path(work).stat().st_mode & 0o777 == 0o755
    assert not Path(work).exists()


def test_another_customers_bundle_is_refused(tmp_path):
    with (
        pytest.raises(MoodleError, match="courseware of customer 'acme', not of 'globex'"),
        cs.open_bundle(str(bundle(tmp_path)), "globex", str(tmp_path)),
    ):
        pass


def test_a_member_that_differs_from_the_manifest_is_refused(tmp_path):
    with (
        pytest.raises(MoodleError, match=r"member safety-basics\.pdf does not match"),
        cs.open_bundle(str(bundle(tmp_path, tamper=True)), "acme", str(tmp_path)),
    ):
        pass


def test_not_a_bundle_is_refused(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not gzip")
    with (
        pytest.raises(MoodleError, match="is not a courseware bundle"),
        cs.open_bundle(str(junk), "acme", str(tmp_path)),
    ):
        pass
    with (
        pytest.raises(MoodleError, match="no such courseware bundle"),
        cs.open_bundle(str(tmp_path / "none.tar.gz"), "acme"),
    ):
        pass

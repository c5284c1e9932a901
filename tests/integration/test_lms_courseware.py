"""lms_courseware and lms_courseware_info against a real Moodle: the sample course's bundle loaded
into a Book activity (one chapter per source chapter, the images in the chapters' files, the PDF
as a File resource, the theme colour), the same bundle again changes nothing, a new version
replaces the chapters in place (same ids, new text), a chapter deleted by hand comes back, links
between chapters name the kept chapters; refusals: another customer's bundle, a missing course,
a non-theme setting. The bundles are built by the real build (tests/unit/test_courseware.py)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest
from ansible_cli import REPO

sys.path.insert(0, str(REPO / "tests" / "unit"))

from test_courseware import SAMPLE, TITLES, build, copy_courseware, missing_tools

pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"courseware tools missing: {', '.join(missing_tools())} "
    "(tools/install-host-packages.sh installs them)",
)

SHORTNAME = "SAFE101"  # courseware/safety-basics/course.yml, customer acme
OLD_TEXT = "A hazard is anything that can cause harm."
NEW_TEXT = "Hazards are reviewed every month by the site safety officer."


def built(root: Path, out: Path, course: str = SAMPLE) -> dict:
    result = build(root, out, [course])
    assert result["failed"] == [], result["courses"]
    return result["courses"][0]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict:
    """Version 1 (the sample), version 2 (one paragraph of chapter 2 changed) and a course whose
    Moodle course does not exist on the site."""
    tmp = tmp_path_factory.mktemp("courseware-site")
    root = copy_courseware(tmp, SAMPLE, "missing-course")
    first = built(root, tmp / "v1")
    chapter = root / SAMPLE / "ch02-hazards.xml"
    text = chapter.read_text()
    assert OLD_TEXT in text
    chapter.write_text(text.replace(OLD_TEXT, NEW_TEXT, 1))
    second = built(root, tmp / "v2")
    spec = root / "missing-course" / "course.yml"
    spec.write_text(spec.read_text().replace(SHORTNAME, "NOSUCH1"))
    missing = built(root, tmp / "missing", "missing-course")
    return {"v1": first, "v2": second, "missing": missing}


@pytest.fixture(scope="module")
def course(lms) -> dict:
    result = lms("lms_course", shortname=SHORTNAME, fullname="Workplace Safety Basics")
    assert not result.get("failed"), result
    return result["course"]


def publish(lms, bundle: dict, check: bool = False, **args) -> dict:
    return lms("lms_courseware", check=check, bundle=bundle["bundle"], customer="acme", **args)


def info(lms) -> dict:
    result = lms(
        "lms_courseware_info",
        course=SAMPLE,
        shortname=SHORTNAME,
        settings={"theme_boost/brandcolor": ""},
    )
    assert not result.get("failed"), result
    return result


def member_sha1(bundle: str, name: str) -> str:
    with tarfile.open(bundle) as tar:
        return hashlib.sha1(tar.extractfile(name).read()).hexdigest()  # noqa: S324 - Moodle's contenthash


def chapter_links(site, cmid: int) -> list[int]:
    proc = site.php_eval(
        f"$cm = get_coursemodule_from_id('book', {cmid}, 0, false, MUST_EXIST);"
        "echo json_encode(array_values($DB->get_fieldset_select('book_chapters', 'content', 'bookid = ?',"
        " [$cm->instance])));"
    )
    contents = json.loads(proc.stdout.strip())
    return sorted({int(n) for c in contents for n in re.findall(r"chapterid=(\d+)", c)})


def test_check_mode_changes_nothing(lms, course, bundles):
    result = publish(lms, bundles["v1"], check=True)
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert any("created in course SAFE101" in c for c in result["changes"]), result["changes"]
    assert result["book"] is None
    assert info(lms)["book"] is None


def test_the_bundle_loads_as_a_book_a_pdf_and_the_theme_colour(lms, course, bundles):
    result = publish(lms, bundles["v1"], by="tester")
    assert not result.get("failed"), result
    assert result["changed"] is True
    book = result["book"]
    assert [c["title"] for c in book["chapters"]] == TITLES
    assert [c["pagenum"] for c in book["chapters"]] == [1, 2, 3, 4]
    assert all(c["text"] for c in book["chapters"])
    assert "images/warning-sign.svg" in book["chapters"][1]["files"]
    assert result["pdf"]["filename"] == f"{SAMPLE}.pdf"
    assert result["pdf"]["sha1"] == member_sha1(bundles["v1"]["bundle"], f"{SAMPLE}.pdf")
    assert result["published"]["version"] == bundles["v1"]["version"]
    assert result["published"]["by"] == "tester"
    assert info(lms)["settings"] == {"theme_boost/brandcolor": "#0B5394"}


def test_the_same_bundle_again_changes_nothing(lms, course, bundles):
    before = info(lms)
    result = publish(lms, bundles["v1"])
    assert not result.get("failed"), result
    assert result["changed"] is False, result["changes"]
    assert result["book"]["revision"] == before["book"]["revision"]


def test_a_new_version_replaces_the_chapters_in_place(lms, moodle_site, course, bundles):
    before = info(lms)["book"]
    result = publish(lms, bundles["v2"])
    assert not result.get("failed"), result
    assert result["changed"] is True
    after = result["book"]
    assert after["cmid"] == before["cmid"]
    assert [c["id"] for c in after["chapters"]] == [c["id"] for c in before["chapters"]]
    assert [c["title"] for c in after["chapters"]] == TITLES
    assert NEW_TEXT in after["chapters"][1]["text"] and OLD_TEXT not in after["chapters"][1]["text"]
    assert OLD_TEXT in before["chapters"][1]["text"]
    assert result["published"]["version"] == bundles["v2"]["version"]
    # the links between chapters name the book's own (kept) chapters
    links = chapter_links(moodle_site, after["cmid"])
    assert links and set(links) <= {c["id"] for c in after["chapters"]}, links


def test_a_chapter_deleted_by_hand_comes_back(lms, moodle_site, course, bundles):
    book = info(lms)["book"]
    moodle_site.php_eval(f"$DB->delete_records('book_chapters', ['id' => {book['chapters'][-1]['id']}]);")
    assert len(info(lms)["book"]["chapters"]) == 3
    result = publish(lms, bundles["v2"])
    assert result["changed"] is True, result
    assert [c["title"] for c in result["book"]["chapters"]] == TITLES
    assert [c["id"] for c in result["book"]["chapters"]][:3] == [c["id"] for c in book["chapters"]][:3]


def test_another_customers_bundle_is_refused(lms, course, bundles):
    result = lms("lms_courseware", bundle=bundles["v1"]["bundle"], customer="globex")
    assert result.get("failed"), result
    assert "courseware of customer 'acme', not of 'globex'" in result["msg"]


def test_a_course_that_does_not_exist_is_refused(lms, bundles):
    result = publish(lms, bundles["missing"])
    assert result.get("failed"), result
    assert "course NOSUCH1 is not on this site" in result["msg"]


def test_a_bundle_whose_bytes_differ_from_the_store_is_refused(lms, course, bundles):
    result = publish(lms, bundles["v2"], sha256="0" * 64)
    assert result.get("failed"), result
    assert "expected " + "0" * 64 in result["msg"]

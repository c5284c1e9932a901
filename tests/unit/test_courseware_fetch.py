"""courseware.fetch_bundles (lms_courseware_fetch): which bundle a site takes. Dev and QA: the
store's ``latest`` (written by each build); Live: exactly the version and bytes the tier below runs,
a course it does not run refused; unknown courses refused; a store whose bytes differ from their
checksum refused. A folder store and small hand-made bundles (the real build is in
test_courseware.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

from release import publish, write_bundle

import courseware as cw


def course_dir(root: Path, name: str, customers: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "course.yml").write_text(yaml.safe_dump({"title": name.title(), "customers": customers}))
    (root / name / "book.xml").write_text("<book/>")  # read by the build, not here


@pytest.fixture
def estate(tmp_path):
    root = tmp_path / "courseware"
    course_dir(root, "alpha", {"acme": {"shortname": "ALPHA1"}})
    course_dir(root, "beta", {"acme": {"shortname": "BETA1"}, "globex": {"shortname": "B1"}})
    course_dir(root, "gamma", {"globex": {"shortname": "G1"}})
    return {
        "root": root,
        "store": {"type": "dir", "path": str(tmp_path / "store")},
        "dest": tmp_path / "fetched",
    }


def build(estate, course: str, version: str, customer: str = "acme") -> str:
    """A bundle published as a build does (then ``latest``); returns its sha256."""
    page = estate["dest"].parent / f"{course}-{version}.txt"
    page.write_text(f"{course} {version}")
    bundle = str(estate["dest"].parent / f"{course}-{version}.tar.gz")
    manifest = {"course": course, "customer": customer, "version": version}
    sha = write_bundle([("page.txt", str(page))], manifest, bundle, manifest_member=cw.MANIFEST_MEMBER)
    store = cw.courseware_store(estate["store"], customer, course)
    publish(store, version, bundle, manifest, sha)
    store.write_text(cw.LATEST, version + "\n")
    return sha


def fetch(estate, courses=None, versions=None, resolve_only=False):
    return cw.fetch_bundles(
        estate["store"], "acme", str(estate["root"]), courses, versions, str(estate["dest"]), resolve_only
    )


def test_resolve_only_names_the_customers_courses(estate):
    assert fetch(estate, resolve_only=True) == [
        {"course": "alpha", "shortname": "ALPHA1", "title": "Alpha"},
        {"course": "beta", "shortname": "BETA1", "title": "Beta"},
    ]


def test_dev_and_qa_take_the_last_build(estate):
    build(estate, "alpha", "aaaaaaaaaaa1")
    sha = build(estate, "alpha", "aaaaaaaaaaa2")
    (got,) = fetch(estate, ["alpha"])
    assert (got["version"], got["sha256"], got["downloaded"]) == ("aaaaaaaaaaa2", sha, True)
    assert Path(got["bundle"]).name == "aaaaaaaaaaa2.tar.gz"
    assert fetch(estate, ["alpha"])[0]["downloaded"] is False  # already on the controller


def test_a_course_never_built_is_refused(estate):
    build(estate, "alpha", "aaaaaaaaaaa1")
    with pytest.raises(cw.CoursewareError, match="beta: nothing built for acme"):
        fetch(estate)


def test_live_takes_exactly_what_the_tier_below_runs(estate):
    sha1 = build(estate, "alpha", "aaaaaaaaaaa1")
    build(estate, "alpha", "aaaaaaaaaaa2")  # built later, not on QA: Live does not take it
    (got,) = fetch(estate, ["alpha"], {"alpha": {"version": "aaaaaaaaaaa1", "sha256": sha1}})
    assert (got["version"], got["sha256"]) == ("aaaaaaaaaaa1", sha1)
    with pytest.raises(cw.CoursewareError, match="expected 0000"):
        fetch(estate, ["alpha"], {"alpha": {"version": "aaaaaaaaaaa1", "sha256": "0" * 64}})
    with pytest.raises(cw.CoursewareError, match="alpha: the tier below runs no courseware"):
        fetch(estate, ["alpha"], {"alpha": None})


def test_unknown_courses_and_other_customers_courses_are_refused(estate):
    with pytest.raises(
        cw.CoursewareError, match=r"unknown course 'gamma', 'nosuch' \(the courses of acme: alpha, beta\)"
    ):
        fetch(estate, ["nosuch", "gamma"])


def test_bytes_that_differ_from_their_checksum_are_refused(estate):
    build(estate, "alpha", "aaaaaaaaaaa1")
    stored = Path(estate["store"]["path"]) / "courseware" / "acme" / "alpha" / "aaaaaaaaaaa1.tar.gz"
    stored.write_bytes(stored.read_bytes() + b"x")
    with pytest.raises(cw.CoursewareError, match="bad checksum"):
        fetch(estate, ["alpha"])


def test_another_customers_bundle_under_this_customers_name_is_refused(estate):
    build(estate, "alpha", "aaaaaaaaaaa1", customer="globex")
    store = Path(estate["store"]["path"]) / "courseware"
    (store / "acme").mkdir()
    (store / "globex" / "alpha").rename(store / "acme" / "alpha")
    with pytest.raises(cw.CoursewareError, match="is not acme's alpha"):
        fetch(estate, ["alpha"])

# ruff: noqa: S608 - SQL here is built from the test's own constants, not from user input
"""Courseware on the stack scenario's hosts, as an operator runs it: the sample course built on the
controller into the estate's release store (playbooks/build_courseware.yml), published to acme-qa
(playbooks/publish_courseware.yml), read back over HTTP by a logged-in learner (the chapter page
and its image), published again after a change (same chapters, new text), then promoted to
acme-live: refused before QA runs it and outside Live's window, and then Live's book equals QA's.
The test's course (SAFE101) and what the courseware set are removed from both sites at the end.

Run (containers up): .venv/bin/pytest -p no:cacheprovider molecule/stack/tests/test_courseware_sites.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stack_hosts import (
    PHP,
    REPO,
    S3_ENDPOINT_FILE,
    ansible,
    closed_window_estate,
    installed,
    run_in,
    s3_store,
    sql,
    vars_file,
)

sys.path.insert(0, str(REPO / "tests" / "unit"))

from test_courseware import SAMPLE, TITLES, missing_tools

QA, LIVE = "qa1", "live1"
QA_SITE, LIVE_SITE = "acme-qa", "acme-live"
SHORTNAME = "SAFE101"
OLD_TEXT = "A hazard is anything that can cause harm."
NEW_TEXT = "Hazards are reviewed every month by the site safety officer."
READER = ("ti-cw-reader", "Reader-Pass-1!")
# The scenario's local S3 API (side_effect.yml starts it); the release store is its release bucket.

pytestmark = [
    pytest.mark.skipif(
        not installed({QA_SITE: QA, LIVE_SITE: LIVE}),
        reason="the stack scenario's containers (qa1, live1 with Moodle installed) are not up",
    ),
    pytest.mark.skipif(
        bool(missing_tools()), reason=f"courseware tools missing: {', '.join(missing_tools())}"
    ),
    pytest.mark.skipif(
        not S3_ENDPOINT_FILE.exists(),
        reason="no local S3 API (side_effect.yml starts it with the release cycle)",
    ),
]


def output(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


@pytest.fixture(scope="module")
def store_vars(tmp_path_factory) -> str:
    """``-e @file`` with the scenario's release store (credentials in a 0600 file, not on argv)."""
    store = s3_store("molecule-releases", type="s3", prefix="releases/")
    return vars_file(tmp_path_factory.mktemp("store") / "store.json", {"release_store": store})


def build(courseware_dir: Path, store_vars: str) -> subprocess.CompletedProcess:
    return ansible(
        "ansible-playbook",
        "playbooks/build_courseware.yml",
        "-e",
        store_vars,
        "-e",
        "customer=acme",
        "-e",
        f"course={SAMPLE}",
        "-e",
        f"courseware_dir={courseware_dir}",
    )


def publish(site: str, store_vars: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
    args = ["playbooks/publish_courseware.yml", "-e", store_vars, "-e", f"site={site}"]
    return ansible("ansible-playbook", *args, **({"inventory": inventory} if inventory else {}))


def module(host: str, site: str, name: str, **args) -> dict:
    """One lms_* module call on a site; its result."""
    args = {"path": f"/srv/lms/{site}/current", "web_user": site, "php": f"/usr/bin/{PHP}", **args}
    run = ansible("ansible", host, "-b", "-m", name, "-a", json.dumps(args), "-o", timeout=600)
    assert run.returncode == 0, output(run)
    return json.loads(run.stdout.split(" => ", 1)[1])


def courseware(host: str, site: str) -> dict:
    return module(
        host,
        site,
        "lms_courseware_info",
        course=SAMPLE,
        shortname=SHORTNAME,
        settings={"theme_boost/brandcolor": ""},
    )


def words(info: dict) -> list[tuple[str, str]]:
    return [(c["title"], c["text"]) for c in info["book"]["chapters"]]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A copy of the repository's courseware (the build reads a folder; the test changes a chapter
    in it later); the test's course and settings are removed from both sites at the end."""
    root = tmp_path_factory.mktemp("courseware") / "courseware"
    shutil.copytree(REPO / "courseware", root)
    yield root
    for host, site in ((QA, QA_SITE), (LIVE, LIVE_SITE)):
        module(host, site, "lms_course", shortname=SHORTNAME, state="absent")
        module(host, site, "lms_user", username=READER[0], state="absent")
        sql(
            host,
            site,
            "DELETE FROM mdl_config_plugins WHERE (plugin = 'three_instance'"
            f" AND name = 'courseware_courseware-{SAMPLE}')"
            " OR (plugin = 'theme_boost' AND name = 'brandcolor')",
        )


def test_live_refuses_what_qa_does_not_run(sources, store_vars):
    run = build(sources, store_vars)
    assert run.returncode == 0, output(run)
    assert f"{SAMPLE}: version " in output(run)
    run = publish(LIVE_SITE, store_vars)
    assert run.returncode != 0
    assert f"refused: {QA_SITE} runs no courseware of {SAMPLE}" in output(run), output(run)[-3000:]
    assert courseware(LIVE, LIVE_SITE)["course"] is None


def test_published_to_qa_with_its_pdf_and_colour(sources, store_vars):
    run = publish(QA_SITE, store_vars)
    assert run.returncode == 0, output(run)[-3000:]
    assert f"{QA_SITE}: {SAMPLE} version " in output(run)
    info = courseware(QA, QA_SITE)
    assert [c["title"] for c in info["book"]["chapters"]] == TITLES
    assert OLD_TEXT in info["book"]["chapters"][1]["text"]
    assert info["pdf"]["filename"] == f"{SAMPLE}.pdf"
    assert info["settings"] == {"theme_boost/brandcolor": "#0B5394"}
    # the same bundle again: nothing changes on the site
    again = publish(QA_SITE, store_vars)
    assert again.returncode == 0, output(again)[-3000:]
    assert "already there" in output(again)
    assert courseware(QA, QA_SITE)["book"]["revision"] == info["book"]["revision"]


def test_a_learner_reads_the_chapter_and_its_image_over_http(sources):
    info = courseware(QA, QA_SITE)
    module(
        QA,
        QA_SITE,
        "lms_user",
        username=READER[0],
        password=READER[1],
        firstname="Courseware",
        lastname="Reader",
        email="ti-cw-reader@learners.example",
        enrolments=[{"course": SHORTNAME, "role": "student"}],
    )
    chapter = info["book"]["chapters"][1]
    site = f"http://{QA_SITE}.local"
    curl = f"curl -s --max-time 60 --resolve {QA_SITE}.local:80:127.0.0.1 -b $jar -c $jar"
    script = (
        f"set -e; jar=$(mktemp); trap 'rm -f $jar' EXIT; "
        f"tok=$({curl} {site}/login/index.php"
        ' | grep -o \'name="logintoken" value="[^"]*"\' | cut -d\'"\' -f4); '
        f"{curl} -o /dev/null --data-urlencode username={READER[0]} --data-urlencode 'password={READER[1]}' "
        f"--data-urlencode logintoken=$tok {site}/login/index.php; "
        f"page=$({curl} '{site}/mod/book/view.php?id={info['book']['cmid']}&chapterid={chapter['id']}'); "
        "echo \"$page\" | grep -q 'Recognising Hazards' && echo TITLE-FOUND; "
        'img=$(echo "$page" | grep -o \'src="[^"]*warning-sign.svg"\' | head -1 | cut -d\'"\' -f2); '
        'echo "IMG $img"; '
        f'{curl} -o /tmp/cw-image.svg -w "HTTP %{{http_code}} %{{content_type}}\\n" "$img"; '
        "head -c 200 /tmp/cw-image.svg; rm -f /tmp/cw-image.svg"
    )
    out = run_in(QA, "sh", "-c", script).stdout
    assert "TITLE-FOUND" in out, out
    assert f"IMG {site}/pluginfile.php/" in out and "/mod_book/chapter/" in out, out
    assert "HTTP 200 image/svg+xml" in out, out
    assert "<svg" in out, out


def test_published_again_after_a_change_keeps_the_chapters(sources, store_vars):
    before = courseware(QA, QA_SITE)
    chapter = sources / SAMPLE / "ch02-hazards.xml"
    chapter.write_text(chapter.read_text().replace(OLD_TEXT, NEW_TEXT, 1))
    run = build(sources, store_vars)
    assert run.returncode == 0, output(run)
    run = publish(QA_SITE, store_vars)
    assert run.returncode == 0, output(run)[-3000:]
    after = courseware(QA, QA_SITE)
    assert [c["id"] for c in after["book"]["chapters"]] == [c["id"] for c in before["book"]["chapters"]]
    assert after["book"]["cmid"] == before["book"]["cmid"]
    assert NEW_TEXT in after["book"]["chapters"][1]["text"]
    assert OLD_TEXT not in after["book"]["chapters"][1]["text"]
    assert after["published"]["version"] != before["published"]["version"]


def test_live_outside_its_window_is_refused(sources, store_vars, tmp_path):
    run = publish(LIVE_SITE, store_vars, inventory=closed_window_estate(tmp_path))
    assert run.returncode != 0
    assert "acme-live is outside its maintenance windows" in output(run), output(run)[-3000:]
    assert courseware(LIVE, LIVE_SITE)["course"] is None


def test_promoted_to_live_live_equals_qa(sources, store_vars):
    run = publish(LIVE_SITE, store_vars)
    assert run.returncode == 0, output(run)[-3000:]
    qa, live = courseware(QA, QA_SITE), courseware(LIVE, LIVE_SITE)
    assert words(live) == words(qa)
    assert live["published"]["sha256"] == qa["published"]["sha256"]
    assert live["pdf"]["sha1"] == qa["pdf"]["sha1"]
    assert live["settings"] == qa["settings"]
    again = publish(LIVE_SITE, store_vars)
    assert again.returncode == 0, output(again)[-3000:]
    assert "already there" in output(again)

"""playbooks/build_courseware.yml as an operator runs it: a batch of a customer's courses with one
broken course builds and publishes the others, prints one line per course and a summary, and exits
non-zero. The builds themselves are tested in tests/unit/test_courseware.py; without the Debian
tools (fop, docbook-xsl-ns, docbook5-xml) this skips, as those do."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from ansible_cli import REPO, ansible_playbook

sys.path.insert(0, str(REPO / "tests" / "unit"))

from test_courseware import copy_courseware, missing_tools

pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"courseware tools missing: {', '.join(missing_tools())} "
    "(tools/install-host-packages.sh installs them)",
)


def test_a_batch_with_a_broken_course_builds_the_others_and_fails(tmp_path):
    root = copy_courseware(tmp_path, "alpha", "broken", "gamma")
    chapter = root / "broken" / "ch04-review.xml"
    chapter.write_text(chapter.read_text().replace("<question>", "<questoin>", 1))
    store = tmp_path / "store"
    extra = {
        "customer": "acme",
        "courseware_dir": str(root),
        "release_store": {"type": "dir", "path": str(store)},
    }
    out = ansible_playbook(
        "-i", "inventories/local", "playbooks/build_courseware.yml", "-e", json.dumps(extra)
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0, out.tail
    for course in ("alpha", "gamma"):
        assert f'"msg": "{course}: version ' in text, out.tail
    assert '"msg": "broken: FAILED: ' in text and "ch04-review.xml:" in text, out.tail
    assert "acme: 1 of 3 courses failed (broken); 2 built and published (alpha, gamma)" in text, out.tail
    published = sorted(p.name for p in (store / "courseware" / "acme").iterdir())
    assert published == ["alpha", "gamma"]
    shutil.rmtree(root)

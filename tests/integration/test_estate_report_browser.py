"""The estate report's HTML page in a real browser (headless Chromium, Debian's package): the page
built by the real renderer (plugins/module_utils/estate_report.py) from a realistic report
(tests/fixtures/report/report_fixture.py) is opened from a file, a screenshot is taken - a PNG of the
window's size that is not one flat colour - and the DOM as Chromium rendered it has one table row
per site, the stale backup's cell flagged, and the chart. Skips when /usr/bin/chromium is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lxml import html as lxml_html

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "report"))

import estate_report as er
import headless_browser as browser
import report_fixture as fixture

pytestmark = pytest.mark.skipif(not browser.available(), reason=browser.SKIP_REASON)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The fixture's report with Live's host unreachable, written as the module writes it."""
    hosts = fixture.hosts()
    hosts["live1"] = {"ping": {"unreachable": True, "msg": "ssh: connect to host live1: timed out"}}
    hosts["live1"]["sites"] = ["acme-live"]
    report = er.build_report(**{**fixture.inputs(), "hosts": hosts})
    folder = tmp_path_factory.mktemp("report")
    path = folder / "estate-report.html"
    path.write_text(er.render_html(report), encoding="utf-8")
    return path


def test_a_screenshot_of_the_page(page, tmp_path):
    png = tmp_path / "report.png"
    browser.screenshot(page.as_uri(), png, 1400, 900)
    width, height, rows = browser.read_png(png)
    assert (width, height) == (1400, 900)
    bpp = len(rows[0]) // width
    seen = browser.colours(rows, bpp)
    assert len(seen) > 20, f"the screenshot is (nearly) one flat colour: {len(seen)} colours"
    # The flagged cells' background (#fde2e1) is on the screen, in the table's first rows.
    assert bytes.fromhex("fde2e1") in {c[:3] for c in browser.colours(rows, bpp, step=1)}


def test_the_rendered_dom_has_a_row_per_site_and_flags_the_stale_backup(page):
    dom = lxml_html.fromstring(browser.dump_dom(page.as_uri()))
    rows = dom.xpath('//table[@id="estate"]/tbody/tr')
    assert [r.get("data-site") for r in rows] == [
        "acme-dev",
        "acme-qa",
        "acme-live",
        "globex-dev",
        "globex-qa",
    ]
    by_site = {r.get("data-site"): r for r in rows}
    for row in rows:
        assert len(row.xpath("./td")) == len(er.COLUMNS)
    live_backup = by_site["acme-live"].xpath('./td[@data-col="backup"]')[0]
    assert "flag" in live_backup.get("class").split() and live_backup.get("data-flag") == "stale"
    assert "50.0 h old" in live_backup.get("title")
    assert "2026-11-22 10:00 UTC" in live_backup.text_content()
    qa_backup = by_site["acme-qa"].xpath('./td[@data-col="backup"]')[0]
    assert "flag" not in qa_backup.get("class").split()
    # The unreachable host's cells say so; its backups come from the store all the same.
    release = by_site["acme-live"].xpath('./td[@data-col="release"]')[0]
    assert release.text_content() == "unreachable" and "unreachable" in release.get("class")
    site = by_site["acme-live"].xpath('./td[@data-col="site"]')[0]
    assert site.get("data-flag") == "unreachable" and "timed out" in site.get("title")
    # Dev behind QA for globex; the chart, one dot per backup.
    assert "Dev behind QA" in by_site["globex-dev"].xpath('./td[@data-col="drift"]')[0].text_content()
    assert len(dom.xpath("//svg//*[local-name()='circle']")) == 6
    assert dom.xpath('//*[@id="count-sites"]')[0].text_content() == "5 sites"

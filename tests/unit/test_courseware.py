"""Courseware builds (plugins/module_utils/courseware.py) of the sample course in the sample style,
with the real tools: Debian's docbook-xsl-ns, docbook5-xml, Apache FOP, poppler-utils to read the
PDF back. Without them the tests skip, saying which is missing (tools/host-packages.txt installs
them). The playbook (one line per course, the summary, the exit code) is tested in
tests/integration/test_courseware_playbook.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import courseware as cw

COURSEWARE = REPO / "courseware"
SAMPLE = "safety-basics"
TITLES = ["Introduction", "Recognising Hazards", "Reporting Procedures", "Review"]
PRIMARY = (0x0B, 0x53, 0x94)  # colours.primary of courseware/styles/acme/style.yml


def missing_tools() -> list[str]:
    missing = [tool for tool in ("fop", "pdftotext", "pdffonts", "pdftoppm") if shutil.which(tool) is None]
    if not cw.HAS_LXML:
        missing.append("lxml (pip)")
    for path, package in (
        (cw.DEFAULT_DOCBOOK_XSL + "/fo/docbook.xsl", "docbook-xsl-ns"),
        (cw.DEFAULT_SCHEMA, "docbook5-xml"),
        ("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf", "fonts-liberation2"),
    ):
        if not os.path.exists(path):
            missing.append(package)
    return missing


pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"courseware tools missing: {', '.join(missing_tools())} "
    "(tools/install-host-packages.sh installs them)",
)


def build(courseware_dir: Path, out: Path, courses=None, store: Path | None = None) -> dict:
    return cw.build_batch(
        str(courseware_dir),
        "acme",
        courses,
        {"type": "dir", "path": str(store)} if store else None,
        str(out),
        str(courseware_dir / "xsl"),
    )


def copy_courseware(tmp_path: Path, *courses: str) -> Path:
    """A courseware folder of its own: the sample style and layers, and the sample course under the
    given names."""
    root = tmp_path / "courseware"
    shutil.copytree(COURSEWARE / "styles", root / "styles")
    shutil.copytree(COURSEWARE / "xsl", root / "xsl")
    for name in courses:
        shutil.copytree(COURSEWARE / SAMPLE, root / name)
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    """The sample course built once, published to a folder store, and unpacked."""
    tmp = tmp_path_factory.mktemp("courseware")
    workdir = tmp / "workdir"
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)  # the build writes only into its own folders, never where it runs
        result = build(COURSEWARE, tmp / "build", [SAMPLE], tmp / "store")
    assert list(workdir.iterdir()) == []
    assert result["failed"] == [], result["courses"]
    built = result["courses"][0]
    unpacked = tmp / "unpacked"
    with tarfile.open(built["bundle"]) as tar:
        tar.extractall(unpacked, filter="data")
    return dict(built, dir=unpacked, store=tmp / "store", tmp=tmp)


def test_the_sample_builds_into_a_bundle_in_the_store(sample):
    manifest = json.loads((sample["dir"] / "courseware.json").read_text())
    assert [c["title"] for c in manifest["chapters"]] == TITLES
    assert manifest["version"] == sample["version"] and manifest["customer"] == "acme"
    assert manifest["cm_idnumber"] == "courseware-safety-basics"
    assert set(manifest["tools"]) >= {"libxml2", "libxslt", "docbook-xsl-ns", "fop", "layers_sha256"}
    assert len(manifest["source_sha256"]) == 64 and len(manifest["style_sha256"]) == 64
    assert set(manifest["files"]) >= {"safety-basics.pdf", "moodle-book.zip", "html/index.html"}
    stored = sample["store"] / "courseware" / "acme" / SAMPLE
    assert (stored / f"{sample['version']}.sha256").read_text().split()[0] == sample["sha256"]
    assert cw.sha256_file(str(stored / f"{sample['version']}.tar.gz")) == sample["sha256"]


def test_a_rebuild_gives_the_same_bytes(sample):
    again = build(COURSEWARE, sample["tmp"] / "again", [SAMPLE], sample["store"])
    course = again["courses"][0]
    assert not course["failed"], course.get("msg")
    assert (course["version"], course["sha256"]) == (sample["version"], sample["sha256"])
    assert course["published"] is False  # the store already had these bytes


def test_the_pdf_has_every_chapter_title_in_order(sample):
    text = subprocess.run(
        ["pdftotext", "-layout", str(sample["dir"] / "safety-basics.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = text[text.index("Chapter 1") :]  # after the title page and the contents
    positions = [body.index(f"Chapter {n}. {title}") for n, title in enumerate(TITLES, 1)]
    assert positions == sorted(positions)
    assert "Figure 2.1" in body and "Table 2.1" in body and "Example 3.1" in body


def test_the_customer_font_is_embedded_and_no_other(sample):
    out = subprocess.run(
        ["pdffonts", str(sample["dir"] / "safety-basics.pdf")], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines()[2:]]
    names = {row[0].split("+")[-1]: row for row in rows}
    assert "LiberationSans" in names and "LiberationMono" in names, out
    for row in rows:  # emb column: every font embedded, none of them Helvetica/Times
        assert row[-5] == "yes", out
        assert "Helvetica" not in row[0] and "Times" not in row[0], out


def test_the_title_band_has_the_customer_colour(sample, tmp_path):
    """Page 1 rendered at 20 dpi (a 166 x 234 image): the band under the logo (65-91 mm from the
    top, 18-190 mm from the left; the white title inside it) is the style's primary colour, at its
    edges and right of the title; the page corner is white."""
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "20",
            "-f",
            "1",
            "-l",
            "1",
            str(sample["dir"] / "safety-basics.pdf"),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    (page,) = tmp_path.glob("p*.ppm")
    _magic, width, height, pixels = read_ppm(page)

    def pixel(x_mm: float, y_mm: float) -> tuple:
        x, y = int(x_mm / 210 * width), int(y_mm / 297 * height)
        offset = (y * width + x) * 3
        return tuple(pixels[offset : offset + 3])

    band = [pixel(x, y) for x in (22, 105, 185) for y in (67, 89)] + [pixel(185, 78)]
    assert all(close(colour, PRIMARY) for colour in band), band
    assert close(pixel(5, 5), (255, 255, 255))


def read_ppm(path: Path):
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P6"
    return parts[0], int(parts[1]), int(parts[2]), parts[4]


def close(a, b, tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_the_moodle_package_is_one_html_per_chapter_in_name_order(sample):
    with zipfile.ZipFile(sample["dir"] / "moodle-book.zip") as zipped:
        names = zipped.namelist()
        pages = [n for n in names if n.endswith(".html")]
        assert pages == sorted(pages) and len(pages) == len(TITLES)
        assert "images/warning-sign.svg" in names and "courseware.css" in names
        assert not [n for n in names if n.endswith(".xhtml") or n == "index.html"]
        for page, title in zip(pages, TITLES, strict=True):
            html = zipped.read(page).decode()
            assert f"<title>{title}</title>" in html
            assert '<link rel="stylesheet" type="text/css" href="courseware.css"/>' in html
        hazards = zipped.read(pages[1]).decode()
        assert 'src="images/warning-sign.svg"' in hazards  # <img src>: the import copies it
        assert 'href="02-00-hazards.html#fig-warning"' in hazards
    assert "#0B5394" in (sample["dir"] / "html" / "courseware.css").read_text()
    assert 'href="courseware.css"' in (sample["dir"] / "html" / "index.html").read_text()


# ----- refusals -------------------------------------------------------------------------------------


@pytest.fixture
def tools():
    return cw.Toolchain(
        str(COURSEWARE / "xsl"), cw.DEFAULT_DOCBOOK_XSL, cw.DEFAULT_SCHEMA, "fop", {"fop": "test"}
    )


def read(tmp_path: Path, tools, name: str = SAMPLE) -> tuple:
    course = cw.load_course(str(tmp_path / "courseware" / name), "acme")
    return cw.read_book(course, tools.schema)


def test_a_malformed_chapter_is_refused_with_its_file_and_line(tmp_path, tools):
    root = copy_courseware(tmp_path, SAMPLE)
    chapter = root / SAMPLE / "ch03-procedures.xml"
    chapter.write_text(chapter.read_text().replace("</orderedlist>", "</orderdlist>"))
    with pytest.raises(cw.CoursewareError) as err:
        read(tmp_path, tools)
    assert "ch03-procedures.xml:17: Opening and ending tag mismatch" in str(err.value), err.value


def test_an_invalid_element_is_refused_with_its_file_and_line(tmp_path, tools):
    root = copy_courseware(tmp_path, SAMPLE)
    chapter = root / SAMPLE / "ch02-hazards.xml"
    lines = chapter.read_text().splitlines()
    lines.insert(4, "  <paragraph>Not DocBook.</paragraph>")  # becomes line 5
    chapter.write_text("\n".join(lines) + "\n")
    with pytest.raises(cw.CoursewareError) as err:
        read(tmp_path, tools)
    assert "ch02-hazards.xml:5: <paragraph> is not a DocBook 5 element" in str(err.value), err.value


def test_an_include_or_image_outside_the_course_is_refused(tmp_path, tools):
    root = copy_courseware(tmp_path, SAMPLE)
    book = root / SAMPLE / "book.xml"
    book.write_text(book.read_text().replace("ch04-review.xml", "../../../../etc/hostname"))
    with pytest.raises(cw.CoursewareError, match=r"book.xml:13: .*points outside the course folder"):
        read(tmp_path, tools)
    book.write_text(book.read_text().replace("../../../../etc/hostname", "ch04-review.xml"))
    chapter = root / SAMPLE / "ch02-hazards.xml"
    chapter.write_text(chapter.read_text().replace("images/warning-sign.svg", "/etc/passwd"))
    with pytest.raises(cw.CoursewareError, match=r"ch02-hazards.xml:\d+: imagedata fileref '/etc/passwd'"):
        read(tmp_path, tools)


def test_a_font_the_fop_configuration_does_not_declare_is_refused(tmp_path):
    root = copy_courseware(tmp_path)
    style = root / "styles" / "acme" / "style.yml"
    style.write_text(style.read_text().replace("body: Liberation Sans", "body: Corporate Sans"))
    with pytest.raises(cw.CoursewareError, match=r"'Corporate Sans' is not declared in fop\.xconf"):
        cw.load_style(str(root / "styles"), "acme")


def test_a_pdf_with_a_substituted_font_is_refused(tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n")
    style = {"xconf": "fop.xconf", "fonts": {"body": "Liberation Sans", "title": "Liberation Sans"}}
    with pytest.raises(cw.CoursewareError, match="uses Helvetica, not embedded"):
        cw.check_fonts(str(pdf), style, "x.pdf")


def test_a_batch_with_a_broken_course_builds_the_others(tmp_path):
    root = copy_courseware(tmp_path, "good", "broken")
    chapter = root / "broken" / "ch01-introduction.xml"
    chapter.write_text(chapter.read_text().replace("<title>Introduction</title>", "<title>Introduction"))
    result = build(root, tmp_path / "build", None, tmp_path / "store")
    assert result["failed"] == ["broken"] and result["built"] == ["good"]
    broken = next(c for c in result["courses"] if c["course"] == "broken")
    assert "ch01-introduction.xml:" in broken["msg"]
    assert list((tmp_path / "store" / "courseware" / "acme").iterdir()) == [
        tmp_path / "store" / "courseware" / "acme" / "good"
    ]

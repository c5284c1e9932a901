# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Courseware: DocBook 5 books built into a customer's PDF, Moodle book package and web page, as a
versioned, checksummed bundle in the release store (docs/courseware.md). Runs on the controller.

* :func:`load_course` and :func:`load_style` check ``courseware/<course>/course.yml`` and
  ``courseware/styles/<customer>/`` (style.yml, fop.xconf, logo) and list every problem, each
  naming its file and field.
* :func:`read_book` parses the book and its XIncludes (only files inside the course folder) and
  validates the result against the DocBook 5 RELAX NG schema: each error names the source file and
  line (an included file's root carries ``xml:base``, as XInclude says, and keeps its lines).
* :func:`build_course` runs the customer's layers over Debian's docbook-xsl-ns stylesheets
  (``courseware/xsl/``): FO then Apache FOP for the PDF (the fonts of the style's ``fop.xconf``,
  checked embedded, no Helvetica/Times substitute), xhtml5 chunks for Moodle's Book import (one
  ``.html`` per chapter, in name order), one page for the web. It writes a deterministic tar.gz
  (release.write_bundle) whose manifest carries the source and style hashes and the tool versions;
  the version is the inputs' hash, so the same sources give the same version and the same bytes.
* :func:`build_batch` builds several courses side by side; a broken course fails alone.
* :func:`courseware_store` is the release store's ``courseware/<customer>/<course>/`` part.

Python's standard library, lxml (controller only), and the Debian tools: Apache FOP (``fop``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

try:
    from lxml import etree

    HAS_LXML = True
except ImportError:  # reported by the module with missing_required_lib
    HAS_LXML = False
    etree = None

try:
    from ansible.module_utils.release import (
        DirStore,
        ReleaseError,
        S3Store,
        fetch_verified,
        publish,
        sha256_file,
        write_bundle,
    )
except ImportError:  # unit tests and tools/: siblings on sys.path
    from release import DirStore, ReleaseError, S3Store, fetch_verified, publish, sha256_file, write_bundle


#: The format of the bundle and its manifest (part of every version's hash: a new builder, new versions).
BUILDER = "three-instance courseware 1"
#: Every date the outputs carry (the PDF's metadata, archive members): time never changes the bytes.
FIXED_DATE = "2000-01-01T00:00:00Z"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MANIFEST_MEMBER = "courseware.json"
#: The store's pointer to the version a course's last build made.
LATEST = "latest"
FORMATS = ("pdf", "moodle", "html")
NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
CUSTOMER = re.compile(r"\A[a-z][a-z0-9]*\Z")
COLOUR = re.compile(r"\A#[0-9A-Fa-f]{6}\Z")
SETTING = re.compile(r"\A[a-z][a-z0-9_]*/[a-z][a-z0-9_]*\Z")
PAPER = ("A4", "A5", "USletter")
DB = "http://docbook.org/ns/docbook"
XI = "http://www.w3.org/2001/XInclude"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
XHTML = "http://www.w3.org/1999/xhtml"
#: The URI our layers import Debian's stylesheets by (resolved to ``docbook_xsl``, no catalog needed).
DOCBOOK_XSL_URI = "http://docbook.sourceforge.net/release/xsl-ns/current/"
DEFAULT_DOCBOOK_XSL = "/usr/share/xml/docbook/stylesheet/docbook-xsl-ns"
DEFAULT_SCHEMA = "/usr/share/xml/docbook/schema/rng/5.0/docbook.rng"
#: Fonts every PDF viewer has, which FOP uses, unembedded, for a family it was not told about.
BASE14 = re.compile(rb"/BaseFont\s*/(Helvetica|Times|Courier|Symbol|ZapfDingbats)[A-Za-z-]*")
MAX_ERRORS = 20


class CoursewareError(Exception):
    """A course, style, source or tool problem; the message names the file (and line) at fault."""


# --------------------------------------------------------------------------------------------------
# course.yml and the customer's style.


def _yaml(path: str, what: str):
    import yaml  # PyYAML comes with Ansible

    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise CoursewareError(f"{path}: missing ({what})") from exc
    except OSError as exc:
        raise CoursewareError(f"{path}: cannot read it: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CoursewareError(f"{path}: not valid YAML: {exc}") from exc


def _inside(base: str, rel, field: str, errors: list[str], kind: str = "file") -> str | None:
    """``rel`` as a path inside ``base`` that exists, or None with an error naming ``field``."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        errors.append(f"{field}: {rel!r} must be a relative path inside {base}")
        return None
    path = os.path.realpath(os.path.join(base, rel))
    if os.path.commonpath([path, os.path.realpath(base)]) != os.path.realpath(base):
        errors.append(f"{field}: {rel!r} points outside {base}")
        return None
    if not (os.path.isfile(path) if kind == "file" else os.path.isdir(path)):
        errors.append(f"{field}: {rel!r} is not a {kind} in {base}")
        return None
    return path


def load_course(course_dir: str, customer: str) -> dict:
    """``course.yml`` of ``course_dir``, checked, for ``customer``: every problem at once."""
    name = os.path.basename(os.path.normpath(course_dir))
    path = os.path.join(course_dir, "course.yml")
    data = _yaml(path, "each course folder has a course.yml: title, book, formats, customers")
    errors: list[str] = []
    if not NAME.match(name):
        errors.append(f"the folder name {name!r} is not a course name (a-z, 0-9, '-', '_'; up to 63)")
    if not isinstance(data, dict):
        raise CoursewareError(f"{path}: must be a mapping (title, book, formats, customers)")
    allowed = {"title", "book", "formats", "customers", "subchapters", "version", "description"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        errors.append(f"unknown keys {unknown} (allowed: {', '.join(sorted(allowed))})")
    book = _inside(course_dir, data.get("book", "book.xml"), "book", errors)
    formats = data.get("formats", list(FORMATS))
    if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
        errors.append(f"formats: {formats!r} must be a non-empty list of {', '.join(FORMATS)}")
        formats = []
    customers = data.get("customers")
    entry = None
    if not isinstance(customers, dict) or not customers:
        errors.append("customers: a mapping of customer -> {shortname, idnumber} (where the course goes)")
    elif customer not in customers:
        errors.append(f"customers: {customer} is not among {', '.join(sorted(map(str, customers)))}")
    else:
        entry = customers[customer]
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("shortname"), str)
            or not entry["shortname"]
        ):
            errors.append(f"customers.{customer}.shortname: the Moodle course's short name is required")
            entry = None
        else:
            extra = sorted(set(entry) - {"shortname", "idnumber"})
            if extra:
                errors.append(f"customers.{customer}: unknown keys {extra} (allowed: shortname, idnumber)")
    if not isinstance(data.get("subchapters", False), bool):
        errors.append("subchapters: true or false (each top-level section a Moodle subchapter)")
    if errors:
        raise CoursewareError(f"{path}:\n  - " + "\n  - ".join(errors))
    return {
        "name": name,
        "dir": os.path.abspath(course_dir),
        "title": str(data.get("title") or name),
        "book": book,
        "formats": [f for f in FORMATS if f in formats],
        "shortname": entry["shortname"],
        "idnumber": str(entry.get("idnumber") or ""),
        "subchapters": bool(data.get("subchapters", False)),
        "label": str(data["version"]) if data.get("version") is not None else None,
    }


def courses_of(courseware_dir: str, customer: str) -> list[str]:
    """The course folders whose course.yml names ``customer`` (sorted). A course.yml that cannot be
    read is listed too: its build fails with the reason instead of the course going missing."""
    import yaml

    found = []
    for name in sorted(os.listdir(courseware_dir)):
        path = os.path.join(courseware_dir, name, "course.yml")
        if name == "styles" or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            found.append(name)
            continue
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("customers"), dict)
            or customer in data["customers"]
        ):
            found.append(name)
    return found


def _families(xconf: str) -> set[str]:
    try:
        tree = etree.parse(xconf, etree.XMLParser(no_network=True, resolve_entities=False))
    except (OSError, etree.XMLSyntaxError) as exc:
        raise CoursewareError(f"{xconf}: not a readable FOP configuration: {exc}") from exc
    return {t.get("name") for t in tree.iter("font-triplet")}


def load_style(styles_dir: str, customer: str) -> dict:
    """``styles/<customer>/``: style.yml checked, the logo and fop.xconf found, and every font
    family of style.yml declared in fop.xconf (else FOP would put Helvetica in its place)."""
    folder = os.path.join(styles_dir, customer)
    if not os.path.isdir(folder):
        raise CoursewareError(
            f"{folder}: customer {customer} has no courseware style (style.yml, fop.xconf, logo); "
            "nothing was built"
        )
    path = os.path.join(folder, "style.yml")
    data = _yaml(path, "colours, fonts, paper, logo, title_page")
    if not isinstance(data, dict):
        raise CoursewareError(f"{path}: must be a mapping (colours, fonts, paper, logo, title_page)")
    errors: list[str] = []
    allowed = {"name", "colours", "fonts", "paper", "logo", "title_page", "moodle"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        errors.append(f"unknown keys {unknown} (allowed: {', '.join(sorted(allowed))})")
    colours = data.get("colours") or {}
    for key in ("primary", "accent", "text"):
        if not isinstance(colours, dict) or not COLOUR.match(str(colours.get(key, ""))):
            errors.append(
                f"colours.{key}: {colours.get(key) if isinstance(colours, dict) else None!r} is not #RRGGBB"
            )
    fonts = data.get("fonts") or {}
    for key in ("body", "title", "mono"):
        if not isinstance(fonts, dict) or not isinstance(fonts.get(key), str) or not fonts[key].strip():
            errors.append(f"fonts.{key}: the font family (as fop.xconf declares it)")
    paper = data.get("paper", "A4")
    if paper not in PAPER:
        errors.append(f"paper: {paper!r} is not one of {', '.join(PAPER)}")
    logo = _inside(folder, data.get("logo"), "logo", errors)
    title_page = data.get("title_page") or {}
    if not isinstance(title_page, dict) or sorted(set(title_page) - {"publisher", "text"}):
        errors.append("title_page: a mapping with publisher and text")
        title_page = {}
    moodle = data.get("moodle") or {}
    if not isinstance(moodle, dict) or any(not SETTING.match(str(k)) for k in moodle):
        errors.append("moodle: a mapping of plugin/setting (theme_boost/brandcolor) to its value")
        moodle = {}
    xconf = os.path.join(folder, "fop.xconf")
    if not os.path.isfile(xconf):
        errors.append(f"{xconf}: missing (FOP's configuration declaring the style's fonts)")
    elif isinstance(fonts, dict):
        declared = _families(xconf)
        for key in ("body", "title", "mono"):
            family = fonts.get(key)
            if isinstance(family, str) and family and family not in declared:
                errors.append(
                    f"fonts.{key}: {family!r} is not declared in fop.xconf (it declares "
                    f"{', '.join(sorted(declared)) or 'none'}); FOP would substitute Helvetica or Times"
                )
    if errors:
        raise CoursewareError(f"{path}:\n  - " + "\n  - ".join(errors))
    return {
        "customer": customer,
        "dir": os.path.abspath(folder),
        "name": str(data.get("name") or customer),
        "colours": {k: colours[k].upper() for k in ("primary", "accent", "text")},
        "fonts": {k: fonts[k] for k in ("body", "title", "mono")},
        "paper": paper,
        "logo": logo,
        "xconf": xconf,
        "publisher": str(title_page.get("publisher") or ""),
        "title_page_text": str(title_page.get("text") or ""),
        "moodle": {str(k): str(v) for k, v in moodle.items()},
    }


def tree_sha256(folder: str) -> str:
    """One hash of every file under ``folder``: names (relative, sorted) and contents."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            digest.update(rel.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# The tools.


def tool_versions(docbook_xsl: str, fop: str = "fop") -> dict:
    """What the bytes depend on besides the sources: part of the manifest and of the version."""
    versions = {"builder": BUILDER}
    if HAS_LXML:
        versions["libxml2"] = ".".join(map(str, etree.LIBXML_VERSION))
        versions["libxslt"] = ".".join(map(str, etree.LIBXSLT_VERSION))
        versions["lxml"] = ".".join(map(str, etree.LXML_VERSION))
    match = None
    try:
        with open(os.path.join(docbook_xsl, "VERSION.xsl"), encoding="utf-8") as handle:
            match = re.search(r"<fm:Version>([^<]+)</fm:Version>", handle.read())
    except OSError:
        pass
    versions["docbook-xsl-ns"] = match.group(1).strip() if match else "unknown"
    try:
        out = subprocess.run([fop, "-version"], capture_output=True, text=True, timeout=120, check=False)
        found = re.search(r"FOP Version (\S+)", out.stdout + out.stderr)
        versions["fop"] = found.group(1) if found else "unknown"
    except OSError:
        versions["fop"] = None
    return versions


def check_tools(docbook_xsl: str, schema: str, fop: str, versions: dict) -> None:
    """Everything the build needs is here, or one error naming the Debian packages."""
    missing = []
    if not HAS_LXML:
        missing.append("the Python package lxml (pip install lxml)")
    if not os.path.isfile(os.path.join(docbook_xsl, "fo", "docbook.xsl")):
        missing.append(f"DocBook XSL stylesheets at {docbook_xsl} (Debian: docbook-xsl-ns)")
    if not os.path.isfile(schema):
        missing.append(f"the DocBook 5 RELAX NG schema {schema} (Debian: docbook5-xml)")
    if versions.get("fop") is None:
        missing.append(f"Apache FOP ({fop}; Debian: fop)")
    if missing:
        raise CoursewareError(
            "cannot build courseware, missing: " + "; ".join(missing) + ". Nothing was built"
        )


class _DocBookResolver(etree.Resolver if HAS_LXML else object):
    """Our layers import DocBook's stylesheets by their canonical URI: served from ``docbook_xsl``."""

    def __init__(self, docbook_xsl: str):
        super().__init__()
        self.docbook_xsl = docbook_xsl

    def resolve(self, system_url, public_id, context):
        if system_url and system_url.startswith(DOCBOOK_XSL_URI):
            return self.resolve_filename(
                os.path.join(self.docbook_xsl, system_url[len(DOCBOOK_XSL_URI) :]), context
            )
        return None


class Toolchain:
    """Compiled stylesheets and schema, shared by the courses of a batch (lxml's XSLT objects may
    run in several threads at once)."""

    def __init__(self, xsl_dir: str, docbook_xsl: str, schema: str, fop: str, versions: dict):
        check_tools(docbook_xsl, schema, fop, versions)
        self.fop = fop
        # our layers are as much a part of the output as Debian's stylesheets
        self.versions = dict(versions, layers_sha256=tree_sha256(xsl_dir))
        parser = etree.XMLParser(no_network=True)
        parser.resolvers.add(_DocBookResolver(docbook_xsl))
        self.xslt = {}
        for name in ("fo", "moodle", "web"):
            path = os.path.join(xsl_dir, name + ".xsl")
            try:
                self.xslt[name] = etree.XSLT(etree.parse(path, parser))
            except (OSError, etree.XMLSyntaxError, etree.XSLTParseError) as exc:
                raise CoursewareError(f"{path}: cannot load the stylesheet: {exc}") from exc
        self.schema = load_schema(schema)


class Schema:
    """The DocBook 5 RELAX NG schema, and the element names it defines: an element it does not
    know is reported where it is (libxml2's own message names its neighbour)."""

    def __init__(self, path: str):
        try:
            tree = etree.parse(path)
            self.rng = etree.RelaxNG(tree)
        except (OSError, etree.XMLSyntaxError, etree.RelaxNGParseError) as exc:
            raise CoursewareError(f"{path}: cannot load the DocBook 5 schema: {exc}") from exc
        self.names = {e.get("name") for e in tree.iter("{http://relaxng.org/ns/structure/1.0}element")}


def load_schema(path: str) -> Schema:
    return Schema(path)


# --------------------------------------------------------------------------------------------------
# The book: XInclude, RELAX NG, file and line of every error.


def _parse(path: str, where: str, course_dir: str):
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=False)
    try:
        return etree.parse(path, parser)
    except etree.XMLSyntaxError as exc:
        rel = os.path.relpath(path, course_dir)
        lines = [f"{rel}:{e.line}: {e.message}" for e in exc.error_log][:MAX_ERRORS]
        raise CoursewareError(
            "not well-formed XML:\n  " + ("\n  ".join(lines) or f"{rel}:{exc.lineno}: {exc.msg}")
        ) from exc
    except OSError as exc:
        raise CoursewareError(f"{where}: cannot read {path}: {exc}") from exc


def _include(element, course_dir: str, depth: int = 0) -> None:
    """XInclude, done here: ``href`` (xml or text), only files inside the course folder; the root
    of an included file gets ``xml:base`` (its path from the course folder) and keeps its lines."""
    if depth > 10:
        raise CoursewareError(f"{element.base}:{element.sourceline}: XIncludes nested deeper than 10")
    for inc in list(element.iter(f"{{{XI}}}include")):
        where = f"{os.path.relpath(inc.base or '', course_dir) if inc.base else '?'}:{inc.sourceline}"
        href, parse = inc.get("href"), inc.get("parse", "xml")
        if not href or inc.get("xpointer") or parse not in ("xml", "text") or "://" in href:
            raise CoursewareError(
                f"{where}: xi:include needs a relative href to a file of the course "
                "(parse xml or text, no xpointer)"
            )
        base_dir = os.path.dirname(inc.base) if inc.base else course_dir
        base_dir = base_dir[7:] if base_dir.startswith("file://") else base_dir
        target = os.path.realpath(os.path.join(base_dir, href))
        if os.path.commonpath([target, os.path.realpath(course_dir)]) != os.path.realpath(course_dir):
            raise CoursewareError(f"{where}: xi:include {href!r} points outside the course folder")
        if not os.path.isfile(target):
            raise CoursewareError(f"{where}: xi:include {href!r}: no such file")
        parent = inc.getparent()
        if parse == "text":
            with open(target, encoding=inc.get("encoding", "utf-8")) as handle:
                text = handle.read()
            previous = inc.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + text + (inc.tail or "")
            else:
                parent.text = (parent.text or "") + text + (inc.tail or "")
            parent.remove(inc)
            continue
        root = _parse(target, where, course_dir).getroot()
        _include(root, course_dir, depth + 1)
        root.set(XML_BASE, os.path.relpath(target, course_dir))
        root.tail = inc.tail
        parent.replace(inc, root)


def source_of(element, course_dir: str, book: str) -> str:
    """The file an element of the included book came from: its nearest ``xml:base``."""
    for node in [element, *element.iterancestors()]:
        if node.get(XML_BASE):
            return node.get(XML_BASE)
    return os.path.relpath(book, course_dir)


def read_book(course: dict, schema) -> tuple:
    """The book with its XIncludes, valid DocBook 5, and its chapters' titles, or an error listing
    ``file:line: message`` for each problem (files relative to the course folder)."""
    course_dir, book = course["dir"], course["book"]
    tree = _parse(book, os.path.relpath(book, course_dir), course_dir)
    root = tree.getroot()
    _include(root, course_dir)
    errors = [
        f"{source_of(node, course_dir, book)}:{node.sourceline}: "
        f"<{etree.QName(node).localname}> is not a DocBook 5 element"
        for node in root.iter(f"{{{DB}}}*")
        if etree.QName(node).localname not in schema.names
    ]
    if not schema.rng.validate(tree):
        for entry in schema.rng.error_log:
            if errors and "IDREF" in entry.message:
                continue  # an ID the invalid part holds, or one the validator no longer reached
            found = tree.xpath(entry.path) if entry.path else []
            node = found[0] if found and isinstance(found[0], etree._Element) else None
            source = (
                source_of(node, course_dir, book) if node is not None else os.path.relpath(book, course_dir)
            )
            line = entry.line or (node.sourceline if node is not None else 0)
            errors.append(f"{source}:{line}: {entry.message}")
    if root.tag != f"{{{DB}}}book":
        errors.append(
            f"{os.path.relpath(book, course_dir)}:{root.sourceline}: the root must be a DocBook 5 book"
        )
    for image in root.iter(f"{{{DB}}}imagedata"):
        ref = image.get("fileref", "")
        src = source_of(image, course_dir, book)
        target = os.path.realpath(os.path.join(course_dir, os.path.dirname(src), ref))
        if (
            not ref
            or "://" in ref
            or os.path.isabs(ref)
            or not target.startswith(os.path.realpath(course_dir) + os.sep)
        ):
            errors.append(
                f"{src}:{image.sourceline}: imagedata fileref {ref!r} must be a file of the course folder"
            )
        elif not os.path.isfile(target):
            errors.append(f"{src}:{image.sourceline}: imagedata fileref {ref!r}: no such file")
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise CoursewareError("invalid DocBook 5:\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more)
    chapters = []
    for child in root:
        if child.tag in (f"{{{DB}}}chapter", f"{{{DB}}}appendix", f"{{{DB}}}preface"):
            title = child.find(f"{{{DB}}}title")
            if title is None:
                title = child.find(f"{{{DB}}}info/{{{DB}}}title")
            chapters.append(
                {
                    "id": child.get("{http://www.w3.org/XML/1998/namespace}id"),
                    "title": " ".join("".join(title.itertext()).split()) if title is not None else "",
                }
            )
    if not chapters:
        raise CoursewareError(f"{os.path.relpath(book, course_dir)}: the book has no chapter")
    return tree, chapters


# --------------------------------------------------------------------------------------------------
# The outputs.


def _params(values: dict) -> dict:
    return {key: etree.XSLT.strparam(str(value)) for key, value in values.items()}


def _transform(xslt, tree, params: dict, what: str):
    try:
        return xslt(tree, **_params(params))
    except etree.XSLTApplyError as exc:
        raise CoursewareError(f"{what}: the stylesheet failed: {exc} {xslt.error_log}") from exc


def _write(result, path: str) -> None:
    with open(path, "wb") as handle:
        handle.write(bytes(result))


def css(style: dict) -> str:
    """The customer's CSS for the Moodle chapters and the web page, from style.yml."""
    c, f = style["colours"], style["fonts"]
    return f"""/* {style["name"]}: courseware/styles/{style["customer"]}/style.yml */
body, .courseware {{ font-family: "{f["body"]}", sans-serif; color: {c["text"]}; }}
h1, h2, h3, h4, .title, .figure-title, .table-title, .example-title {{
  font-family: "{f["title"]}", sans-serif; color: {c["primary"]}; }}
pre, code, .programlisting {{ font-family: "{f["mono"]}", monospace; }}
pre.programlisting {{ background: #F4F4F4; border-left: 4px solid {c["primary"]}; padding: 0.5em 1em; }}
a, a.xref {{ color: {c["primary"]}; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid {c["accent"]}; padding: 0.25em 0.5em; }}
thead th, thead td {{ background: {c["accent"]}; color: #FFFFFF; }}
.courseware-band {{ background: {c["primary"]}; padding: 0.75em 1em; }}
.courseware-logo {{ height: 3em; background: #FFFFFF; border-radius: 4px; padding: 0.2em; }}
"""


def _pin_pdf(path: str) -> None:
    """FOP 2.x stamps the run's time into the XMP metadata (``dc:date``, ``xmp:MetadataDate``;
    the creation and modification dates it takes from our FO's XMP) and derives the trailer's
    ``/ID`` from the time: both are rewritten in place with bytes of the same length (the
    cross-reference offsets stay valid): the dates become the fixed one, the ID the MD5 of the
    file with its ID blanked."""
    with open(path, "rb") as handle:
        data = handle.read()
    fixed = FIXED_DATE.encode()
    data = re.sub(rb">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<", b">" + fixed + b"<", data)
    ids = re.compile(rb"/ID \[<([0-9A-Fa-f]{32})> <([0-9A-Fa-f]{32})>\]")
    if not ids.search(data):
        raise CoursewareError(f"{path}: no trailer /ID where FOP writes one: is this FOP's PDF?")
    blank = ids.sub(b"/ID [<" + b"0" * 32 + b"> <" + b"0" * 32 + b">]", data)
    digest = hashlib.md5(blank).hexdigest().upper().encode()  # noqa: S324 - a file ID, not security
    data = ids.sub(b"/ID [<" + digest + b"> <" + digest + b">]", data)
    with open(path, "wb") as handle:
        handle.write(data)


def embedded_fonts(path: str) -> tuple[set[str], set[str]]:
    """(font names embedded, base-14 fonts used unembedded) of a PDF that FOP wrote (its font
    dictionaries are plain text)."""
    with open(path, "rb") as handle:
        data = handle.read()
    embedded = set()
    for match in re.finditer(rb"/FontName\s*/([A-Z]{6}\+)?([^\s/>\]]+)(.{0,400}?)>>", data, re.S):
        if re.search(rb"/FontFile[23]?\s", match.group(3)):
            embedded.add(match.group(2).decode("latin-1"))
    return embedded, {m.group(0).split(b"/")[-1].decode() for m in BASE14.finditer(data)}


def check_fonts(pdf: str, style: dict, rel: str) -> list[str]:
    embedded, base14 = embedded_fonts(pdf)
    if base14:
        raise CoursewareError(
            f"{rel}: the PDF uses {', '.join(sorted(base14))}, not embedded: FOP substituted it for a font "
            f"family fop.xconf ({style['xconf']}) does not declare"
        )
    wanted = {style["fonts"]["body"], style["fonts"]["title"]}
    for family in wanted:
        if not any(name.replace("-", "").startswith(family.replace(" ", "")) for name in embedded):
            raise CoursewareError(
                f"{rel}: the style's font {family!r} is not embedded "
                f"(embedded: {', '.join(sorted(embedded)) or 'none'})"
            )
    return sorted(embedded)


def run_fop(tools: Toolchain, style: dict, fo: str, pdf: str) -> None:
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    try:
        out = subprocess.run(
            [tools.fop, "-q", "-c", style["xconf"], "-fo", fo, "-pdf", pdf],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CoursewareError(f"fop: {exc}") from exc
    text = out.stdout + out.stderr
    lines = [line for line in text.splitlines() if "SEVERE" in line or "ERROR" in line or "Exception" in line]
    substituted = [line.strip() for line in text.splitlines() if "not found. Substituting" in line]
    if out.returncode != 0 or not os.path.isfile(pdf):
        raise CoursewareError(
            f"fop failed (rc={out.returncode}): " + " | ".join((lines or text.splitlines())[-5:])
        )
    if substituted:
        raise CoursewareError(
            f"fop substituted fonts (declare them in {style['xconf']}): " + " | ".join(substituted[:3])
        )


def _xhtml_fix(path: str, title: str | None) -> None:
    """A chunk for Moodle's Book import: ``<title>`` the chapter's own title (the import names the
    chapter by it), no navigation links other than the stylesheet, SVG figures as ``<img src>``
    (the import copies only ``src``/``href`` files, not ``<object data>``), no repeated heading."""
    tree = etree.parse(path, etree.XMLParser(no_network=True, resolve_entities=False))
    root = tree.getroot()
    ns = {"h": XHTML}
    head = root.find("h:head", ns)
    for link in head.findall("h:link", ns) if head is not None else []:
        if link.get("rel") != "stylesheet":
            head.remove(link)
    for meta in root.iterfind(".//h:meta[@name='generator']", ns):
        meta.getparent().remove(meta)
    if title is not None:
        head.find("h:title", ns).text = title
        body = root.find("h:body", ns)
        for header in body.iterfind(".//h:div[@class='titlepage']", ns):
            header.getparent().remove(header)
            break
    for obj in list(root.iter(f"{{{XHTML}}}object")):
        if obj.get("type") == "image/svg+xml" and obj.get("data"):
            img = etree.Element(f"{{{XHTML}}}img", src=obj.get("data"), alt="")
            if obj.get("style"):
                img.set("style", obj.get("style"))
            img.tail = obj.tail
            obj.getparent().replace(obj, img)
    body_text = etree.tostring(root, encoding="unicode", method="xml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + body_text + "\n")


def _copy_images(tree, course: dict, dest: str) -> list[str]:
    """The images the book uses, copied to ``dest`` under their paths from the course folder."""
    copied = []
    for image in tree.getroot().iter(f"{{{DB}}}imagedata"):
        src = source_of(image, course["dir"], course["book"])
        rel = os.path.normpath(os.path.join(os.path.dirname(src), image.get("fileref")))
        target = os.path.join(dest, rel)
        if rel not in copied:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(course["dir"], rel), target)
            copied.append(rel)
    return sorted(copied)


def write_zip(folder: str, dest: str) -> None:
    """A zip of ``folder`` whose bytes depend only on the files: sorted names, one date, one mode."""
    names = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        names.extend(os.path.relpath(os.path.join(dirpath, n), folder) for n in filenames)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in sorted(names):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(folder, name), "rb") as handle:
                zipped.writestr(info, handle.read())


def _inputs_version(source_sha: str, style_sha: str, versions: dict, course: dict, customer: str) -> str:
    key = json.dumps(
        {
            "source": source_sha,
            "style": style_sha,
            "tools": versions,
            "customer": customer,
            "shortname": course["shortname"],
            "idnumber": course["idnumber"],
            "formats": course["formats"],
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def build_course(course_dir: str, style: dict, tools: Toolchain, out_dir: str) -> dict:
    """Build one course for the customer of ``style`` into ``out_dir/<course>-<version>.tar.gz``.

    Returns ``{course, version, bundle, sha256, manifest, seconds}``; raises :class:`CoursewareError`.
    """
    started = time.monotonic()
    course = load_course(course_dir, style["customer"])
    tree, chapters = read_book(course, tools.schema)
    source_sha, style_sha = tree_sha256(course["dir"]), tree_sha256(style["dir"])
    version = _inputs_version(source_sha, style_sha, tools.versions, course, style["customer"])
    name = course["name"]
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"courseware-{name}-", dir=out_dir)
    try:
        stage = os.path.join(work, "bundle")
        os.makedirs(stage)
        files = []
        common = {
            "cw.primary": style["colours"]["primary"],
            "cw.accent": style["colours"]["accent"],
            "cw.text": style["colours"]["text"],
            "cw.publisher": style["publisher"],
        }
        if "pdf" in course["formats"]:
            fo = os.path.join(work, name + ".fo")
            result = _transform(
                tools.xslt["fo"],
                tree,
                dict(
                    common,
                    **{
                        "cw.logo": style["logo"],
                        "cw.title-page-text": style["title_page_text"],
                        "cw.date": FIXED_DATE,
                        "body.font.family": style["fonts"]["body"],
                        "title.font.family": style["fonts"]["title"],
                        "monospace.font.family": style["fonts"]["mono"],
                        "paper.type": style["paper"],
                        "img.src.path": course["dir"] + "/",
                    },
                ),
                f"{name}: PDF",
            )
            _write(result, fo)
            pdf = os.path.join(stage, f"{name}.pdf")
            run_fop(tools, style, fo, pdf)
            _pin_pdf(pdf)
            fonts = check_fonts(pdf, style, f"{name}.pdf")
            files.append(f"{name}.pdf")
        else:
            fonts = []
        if "moodle" in course["formats"]:
            chunks = os.path.join(work, "moodle")
            os.makedirs(chunks)
            _transform(
                tools.xslt["moodle"],
                tree,
                dict(
                    common,
                    **{"base.dir": chunks + "/", "cw.subchapters": "1" if course["subchapters"] else "0"},
                ),
                f"{name}: Moodle book",
            )
            if os.path.exists(os.path.join(chunks, "index.html")):
                os.unlink(os.path.join(chunks, "index.html"))
            pages = sorted(n for n in os.listdir(chunks) if n.endswith(".html"))
            top = [n for n in pages if not n.endswith("_sub.html")]
            if len(top) != len(chapters):
                raise CoursewareError(
                    f"{name}: {len(top)} chapter files for {len(chapters)} chapters ({', '.join(top)})"
                )
            for page, chapter in zip(top, chapters):
                chapter["file"] = page
                _xhtml_fix(os.path.join(chunks, page), chapter["title"])
            for page in pages:
                if page.endswith("_sub.html"):
                    _xhtml_fix(os.path.join(chunks, page), None)
            with open(os.path.join(chunks, "courseware.css"), "w", encoding="utf-8") as handle:
                handle.write(css(style))
            _copy_images(tree, course, chunks)
            write_zip(chunks, os.path.join(stage, "moodle-book.zip"))
            files.append("moodle-book.zip")
        if "html" in course["formats"]:
            web = os.path.join(stage, "html")
            os.makedirs(web)
            logo = "logo" + os.path.splitext(style["logo"])[1]
            result = _transform(
                tools.xslt["web"], tree, dict(common, **{"cw.logo": logo}), f"{name}: web page"
            )
            _write(result, os.path.join(web, "index.html"))
            _xhtml_fix(os.path.join(web, "index.html"), None)
            shutil.copyfile(style["logo"], os.path.join(web, logo))
            with open(os.path.join(web, "courseware.css"), "w", encoding="utf-8") as handle:
                handle.write(css(style))
            _copy_images(tree, course, web)
            files.append("html/")
        entries = []
        for dirpath, dirnames, filenames in os.walk(stage):
            for entry in dirnames + filenames:
                path = os.path.join(dirpath, entry)
                entries.append((os.path.relpath(path, stage), path))
        entries.sort()
        manifest = {
            "course": name,
            "customer": style["customer"],
            "version": version,
            "label": course["label"],
            "title": course["title"],
            "shortname": course["shortname"],
            "idnumber": course["idnumber"],
            "cm_idnumber": f"courseware-{name}",
            "formats": course["formats"],
            "chapters": chapters,
            "source_sha256": source_sha,
            "style_sha256": style_sha,
            "tools": tools.versions,
            "fonts_embedded": fonts,
            "moodle_settings": style["moodle"],
            "files": {rel: sha256_file(path) for rel, path in entries if os.path.isfile(path)},
        }
        bundle = os.path.join(out_dir, f"{name}-{version}.tar.gz")
        sha = write_bundle(entries, manifest, bundle, manifest_member=MANIFEST_MEMBER)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "course": name,
        "version": version,
        "bundle": bundle,
        "sha256": sha,
        "manifest": manifest,
        "seconds": round(time.monotonic() - started, 2),
    }


# --------------------------------------------------------------------------------------------------
# The store and the batch.


def courseware_store(spec: dict, customer: str, course: str):
    """The release store's part for one customer's course: ``courseware/<customer>/<course>/``
    inside the release store (the folder; in a bucket under its prefix, ``releases/`` unless set)."""
    if spec["type"] == "dir":
        return DirStore(os.path.join(spec["path"], "courseware", customer, course))
    prefix = "releases/" if spec.get("prefix") is None else spec["prefix"]
    prefix = (prefix.strip("/") + "/" if prefix.strip("/") else "") + f"courseware/{customer}/{course}/"
    return S3Store(dict(spec, prefix=prefix))


def build_batch(
    courseware_dir: str,
    customer: str,
    courses: list[str] | None,
    store_spec: dict | None,
    out_dir: str,
    xsl_dir: str,
    docbook_xsl: str = DEFAULT_DOCBOOK_XSL,
    schema: str = DEFAULT_SCHEMA,
    fop: str = "fop",
    jobs: int = 0,
) -> dict:
    """Build ``courses`` (all of the customer's when None) side by side; publish each one that
    built. A course that fails is reported with its reason; the others still build."""
    if not CUSTOMER.match(customer or ""):
        raise CoursewareError(
            f"customer {customer!r} is not a customer name (a-z, 0-9, starting with a letter)"
        )
    if not os.path.isdir(courseware_dir):
        raise CoursewareError(f"{courseware_dir}: no courseware folder")
    style = load_style(os.path.join(courseware_dir, "styles"), customer)
    known = courses_of(courseware_dir, customer)
    if courses is None:
        courses = known
        if not courses:
            raise CoursewareError(f"{courseware_dir}: no course names customer {customer} in its course.yml")
    else:
        unknown = [
            c
            for c in courses
            if not NAME.match(str(c)) or not os.path.isfile(os.path.join(courseware_dir, c, "course.yml"))
        ]
        if unknown:
            raise CoursewareError(
                f"unknown course {', '.join(map(repr, unknown))}: the courses of customer {customer} are "
                f"{', '.join(known) or 'none'}; nothing was built"
            )
    tools = Toolchain(xsl_dir, docbook_xsl, schema, fop, tool_versions(docbook_xsl, fop))
    started = time.monotonic()
    # The store answers before anything is built (an unreachable bucket is one error, not one per course).
    stores = {}
    if store_spec is not None:
        try:
            stores = {course: courseware_store(store_spec, customer, course) for course in courses}
        except ReleaseError as exc:
            raise CoursewareError(f"{exc}; nothing was built") from exc

    def one(course: str) -> dict:
        try:
            built = build_course(os.path.join(courseware_dir, course), style, tools, out_dir)
            if store_spec is not None:
                store = stores[course]
                built["published"] = publish(
                    store, built["version"], built["bundle"], built["manifest"], built["sha256"]
                )
                # what publish_courseware.yml takes for Dev and QA unless told a version
                store.write_text(LATEST, built["version"] + "\n")
                built["store"] = store.where
            built["failed"] = False
            return built
        except (CoursewareError, ReleaseError) as exc:
            return {"course": course, "failed": True, "msg": str(exc)}

    jobs = jobs or min(len(courses), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, courses))
    failed = [r["course"] for r in results if r["failed"]]
    return {
        "customer": customer,
        "courses": results,
        "failed": failed,
        "built": [r["course"] for r in results if not r["failed"]],
        "tools": tools.versions,
        "seconds": round(time.monotonic() - started, 2),
    }


def fetch_bundles(
    store_spec: dict,
    customer: str,
    courseware_dir: str,
    courses: list[str] | None,
    versions: dict | None,
    dest: str,
    resolve_only: bool = False,
) -> list[dict]:
    """The bundles to publish, from the store into ``dest`` and verified: for each course (all of
    the customer's when None) the version of ``versions`` (``{course: {version, sha256}}``, what QA
    runs when Live takes it; a course missing there is refused) or else the last one built
    (``latest``). With ``resolve_only`` only the courses and their Moodle names are returned."""
    known = courses_of(courseware_dir, customer)
    unknown = sorted(set(courses or []) - set(known))
    if unknown:
        raise CoursewareError(
            f"unknown course {', '.join(map(repr, unknown))} (the courses of {customer}: "
            f"{', '.join(known) or 'none'}); nothing was published"
        )
    courses = courses or known
    if not courses:
        raise CoursewareError(f"customer {customer} has no courses in {courseware_dir}")
    out = []
    for name in courses:
        course = load_course(os.path.join(courseware_dir, name), customer)
        entry = {"course": name, "shortname": course["shortname"], "title": course["title"]}
        if resolve_only:
            out.append(entry)
            continue
        store = courseware_store(store_spec, customer, name)
        expected = None
        if versions is not None:
            given = versions.get(name)
            if not given or not given.get("version"):
                raise CoursewareError(
                    f"{name}: the tier below runs no courseware of this course; publish it there first"
                )
            version, expected = given["version"], given.get("sha256")
        else:
            version = (store.read_text(LATEST) or "").strip()
            if not version:
                raise CoursewareError(
                    f"{name}: nothing built for {customer} in {store.where} (playbooks/build_courseware.yml)"
                )
        try:
            fetched = fetch_verified(store, version, dest, expected, manifest_member=MANIFEST_MEMBER)
        except ReleaseError as exc:
            raise CoursewareError(f"{name}: {exc}") from exc
        if fetched["manifest"].get("customer") != customer or fetched["manifest"].get("course") != name:
            raise CoursewareError(f"{name}: the store's {version} is not {customer}'s {name}")
        entry.update(
            version=version,
            sha256=fetched["sha256"],
            bundle=fetched["bundle"],
            downloaded=fetched["downloaded"],
        )
        out.append(entry)
    return out

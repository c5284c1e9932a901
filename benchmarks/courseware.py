#!/usr/bin/env python3
"""Benchmark: building 20 courses of 10 chapters each (the issue's figure) in the sample style,
beside the floor: a plain shell-style loop of ``xsltproc`` + ``fop`` per course (the same FO layer
and fop.xconf, PDF only, no validation, no Moodle package, no web page, no bundle).

The courses are generated from the sample course (courseware/safety-basics): each chapter a copy
of one of its four chapters, with the figure, table and listing, under new ids. The build runs
through module_utils/courseware (what lms_courseware_build runs, without Ansible's start-up):
courses side by side, ``--jobs`` at once (one per CPU by default).

    nice -n 10 .venv/bin/python benchmarks/courseware.py [--courses 20] [--chapters 10] [--jobs 0]

Not a test: figures depend on the machine. Results are recorded in docs/courseware.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import courseware as cw

SAMPLE = REPO / "courseware" / "safety-basics"
CHAPTERS = sorted(SAMPLE.glob("ch*.xml"))
#: id -> the sample chapter (0-3) that holds it
IDS = {i: n for n, path in enumerate(CHAPTERS) for i in re.findall(r'xml:id="([^"]+)"', path.read_text())}


def make_courses(root: Path, courses: int, chapters: int) -> list[str]:
    shutil.copytree(REPO / "courseware" / "styles", root / "styles")
    shutil.copytree(REPO / "courseware" / "xsl", root / "xsl")
    names = []
    for number in range(1, courses + 1):
        name = f"course-{number:02d}"
        folder = root / name
        shutil.copytree(SAMPLE / "images", folder / "images")
        includes = []
        for chapter in range(1, chapters + 1):
            cycle, index = divmod(chapter - 1, len(CHAPTERS))
            # new ids for the chapter and everything in it; a link goes to its target in the same
            # round of the four sample chapters when that round has it, else in the first
            text = re.sub(r'xml:id="([^"]+)"', rf'xml:id="c{cycle}-\1"', CHAPTERS[index].read_text())

            def link(match, cycle=cycle):
                target = IDS[match.group(1)]
                round_ = cycle if cycle * len(CHAPTERS) + target < chapters else 0
                return f'linkend="c{round_}-{match.group(1)}"'

            text = re.sub(r'linkend="([^"]+)"', link, text)
            text = re.sub(r"<title>([^<]+)</title>", rf"<title>\1 ({chapter})</title>", text, count=1)
            file = f"ch{chapter:02d}.xml"
            (folder / file).write_text(text)
            includes.append(f'  <xi:include href="{file}"/>')
        book = (SAMPLE / "book.xml").read_text()
        book = re.sub(r"(  <xi:include[^\n]*\n)+", "\n".join(includes) + "\n", book)
        (folder / "book.xml").write_text(book.replace('xml:id="safety-basics"', f'xml:id="{name}"'))
        (folder / "course.yml").write_text(
            f"title: Course {number}\ncustomers:\n  acme:\n    shortname: BENCH{number:02d}\n"
        )
        names.append(name)
    return names


def floor(root: Path, names: list[str]) -> float:
    """The plain loop: xsltproc then fop, one course after the other."""
    style = root / "styles" / "acme"
    started = time.monotonic()
    for name in names:
        out = root / "floor" / name
        out.mkdir(parents=True)
        with open(out / "book.fo", "wb") as fo:
            subprocess.run(
                [
                    "xsltproc",
                    "--xinclude",
                    "--stringparam",
                    "img.src.path",
                    f"{root / name}/",
                    "--stringparam",
                    "body.font.family",
                    "Liberation Sans",
                    "--stringparam",
                    "title.font.family",
                    "Liberation Sans",
                    "--stringparam",
                    "monospace.font.family",
                    "Liberation Mono",
                    str(root / "xsl" / "fo.xsl"),
                    str(root / name / "book.xml"),
                ],
                stdout=fo,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        subprocess.run(
            [
                "fop",
                "-q",
                "-c",
                str(style / "fop.xconf"),
                "-fo",
                str(out / "book.fo"),
                "-pdf",
                str(out / "book.pdf"),
            ],
            capture_output=True,
            check=True,
        )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--chapters", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=0, help="courses at once (0: one per CPU)")
    args = parser.parse_args()
    for tool in ("xsltproc", "fop"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: tools/install-host-packages.sh installs it")
            return 2
    with tempfile.TemporaryDirectory(prefix="courseware-bench-") as tmp:
        root = Path(tmp) / "courseware"
        names = make_courses(root, args.courses, args.chapters)
        print(f"{args.courses} courses x {args.chapters} chapters, {os.cpu_count()} CPUs")
        result = cw.build_batch(
            str(root), "acme", names, None, str(Path(tmp) / "build"), str(root / "xsl"), jobs=args.jobs
        )
        if result["failed"]:
            print("failed:", [c.get("msg") for c in result["courses"] if c["failed"]])
            return 1
        per_course = [c["seconds"] for c in result["courses"]]
        wall = result["seconds"]
        print(
            "courseware build (validate, PDF, Moodle package, web page, bundle; "
            f"{args.jobs or os.cpu_count()} at once): {wall:.1f} s wall, "
            f"{wall / len(names):.2f} s per course "
            f"(each course {min(per_course):.1f}-{max(per_course):.1f} s)"
        )
        plain = floor(root, names)
        print(
            f"plain xsltproc + fop loop (PDF only, one at a time): {plain:.1f} s, "
            f"{plain / len(names):.2f} s per course"
        )
        print(f"ratio: {wall / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

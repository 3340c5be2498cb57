"""The module FAQ's map, docs/faq.md, and the glossary, docs/glossary.md. The map: every question
of the FAQ, every row of its tables, every item it lists and every command it gives is answered
there next to a link to the lab section that makes it concrete, and every link leads somewhere
that exists. The glossary: each term links to a lab section that exists and uses the term. Fast:
reads files, runs nothing.

A link to a lab section is ``../labs/NN_name.ipynb#ANCHOR``, where ANCHOR is the id JupyterLab 4
gives the heading (``createHeaderId`` in @jupyterlab/rendermime: the rendered heading text with
each space replaced by "-", case and punctuation kept), which is also nbconvert's and so nbviewer's
(``_convert_header_id``). A heading can be linked only when that id needs no percent-encoding:
JupyterLab looks for the fragment of the link as the browser hands it over, encoded, and compares
it with the raw id, so a heading with a quote or a non-ASCII character is out of reach.

The FAQ is the module's, outside this repository: ``LABKIT_FAQ`` (a file or a folder) names it,
else ``../shared/faq/`` beside the repository. Without it the tests that read it are skipped, and
the parser and the link checker are still tested on examples of their own.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from labkit.core.paths import LABS, REPO

MAP = REPO / "docs" / "faq.md"
GLOSSARY = REPO / "docs" / "glossary.md"
FAQ_ENV = "LABKIT_FAQ"
#: The heading, in docs/faq.md, of the list of what no lab makes concrete yet.
GAPS_HEADING = "Not yet a lab exercise"


# --- the FAQ ---------------------------------------------------------------------------------


@dataclass
class Question:
    """One ``### Q:`` of the FAQ and what its answer lists: table rows (the header excluded),
    numbered or bulleted items (their bold lead, else their text before a colon), commands of its
    shell blocks (a comment line ``# - cause: fix`` there is an item)."""
    section: str
    text: str
    rows: list[tuple[str, ...]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def faq_files() -> list[Path]:
    where = Path(os.environ[FAQ_ENV]) if os.environ.get(FAQ_ENV) else REPO.parent / "shared" / "faq"
    if where.is_file():
        return [where]
    return sorted(p for p in where.glob("*") if p.suffix in (".txt", ".md")) if where.is_dir() else []


def _item_key(text: str) -> str:
    bold = re.match(r"\*\*(.+?)\*\*", text)
    return bold.group(1) if bold else text.split(":")[0]


def parse_faq(text: str) -> list[Question]:
    questions: list[Question] = []
    section, fence, in_table = "", None, False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            continue
        question = questions[-1] if questions else None
        if fence is not None:
            if question is None or fence not in ("bash", "sh", "shell", "console"):
                continue
            comment = re.match(r"#\s*-\s*(.+)", line)
            if comment:
                question.items.append(_item_key(comment.group(1)))
            elif line and not line.startswith("#"):
                question.commands.append(line.split("  #")[0].strip())
            continue
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        heading = re.match(r"###\s+Q:\s*(.+)", line)
        if heading:
            questions.append(Question(section, heading.group(1).strip()))
            continue
        if question is None or question.section != section:
            continue
        if line.startswith("|"):
            cells = tuple(c.strip() for c in line.strip("|").split("|"))
            if not in_table:
                in_table = True  # the header row
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                question.rows.append(cells)
            continue
        in_table = False
        listed = re.match(r"(?:\d+\.|-)\s+(.+)", line)
        if listed:
            question.items.append(_item_key(listed.group(1)))
    return questions


def normal(text: str) -> str:
    """Words and numbers only, lower case: how a key is compared with the map."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _contains(text: str, key: str) -> bool:
    return f" {normal(key)} " in f" {normal(text)} "


# --- the map ---------------------------------------------------------------------------------


def map_sections(text: str) -> dict[str, str]:
    """Each ``###`` section of the map, by its normalised heading: its text up to the next heading."""
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("#"):
            current = normal(line.lstrip("#")) if line.startswith("### ") else None
            if current is not None:
                sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def table_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line)]


LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def links(text: str) -> list[str]:
    return LINK.findall(text)


def _lab_links(text: str) -> list[str]:
    return [target for target in links(text) if target.split("#")[0].endswith(".ipynb")]


# --- anchors ---------------------------------------------------------------------------------


def _headings(markdown: str) -> list[tuple[int, str]]:
    """(level, nbconvert's id) of each heading of ``markdown`` (ids percent-encoded where needed)."""
    return [(int(level), html.unescape(i))
            for level, i in re.findall(r"<h([1-6]) id=\"([^\"]*)\"", markdown2html_mistune(markdown))]


def _heading_ids(markdown: str) -> list[str]:
    return [i for _, i in _headings(markdown)]


@cache
def notebook_anchors(path: Path) -> list[str]:
    """The anchors of a notebook's markdown headings, in order, as nbconvert writes them; where one
    differs from JupyterLab's (``unquote`` of it), it needed percent-encoding."""
    nb = nbformat.read(path, as_version=4)
    return [i for cell in nb.cells if cell.cell_type == "markdown" for i in _heading_ids(cell.source)]


@cache
def github_anchors(path: Path) -> list[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces as "-", and "-1", "-2"... on repeats."""
    found: list[str] = []
    for inner in re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", markdown2html_mistune(path.read_text()), re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", inner)).replace("¶", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        repeats = sum(1 for f in found if f == slug or re.fullmatch(re.escape(slug) + r"-\d+", f))
        found.append(f"{slug}-{repeats}" if repeats else slug)
    return found


def link_problems(source: Path, text: str, labs: Path = LABS) -> list[str]:
    """What is wrong with the relative links of ``text`` (a Markdown file at ``source``)."""
    problems = []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # a web address
        if target.startswith("#"):
            if target[1:] not in github_anchors(source):
                problems.append(f"{target}: this page has no heading with this anchor")
            continue
        path_part, _, fragment = target.partition("#")
        path = (source.parent / unquote(path_part)).resolve()
        if not path.exists():
            problems.append(f"{target}: no file {path}")
        elif path.suffix == ".ipynb":
            if path.parent != labs.resolve():
                problems.append(f"{target}: not a notebook in {labs}")
            elif not fragment:
                problems.append(f"{target}: names no heading (add #ANCHOR)")
            else:
                anchors = notebook_anchors(path)
                if unquote(fragment) != fragment or fragment not in anchors and fragment in map(unquote, anchors):
                    problems.append(f"{target}: the heading needs percent-encoding, which JupyterLab does not "
                                    f"undo: drop quotes and non-ASCII characters from it")
                elif anchors.count(fragment) != 1:
                    problems.append(f"{target}: {path.name} has {anchors.count(fragment)} headings with this anchor; "
                                    f"it has: {', '.join(a for a in anchors if unquote(a) == a)}")
        elif fragment and path.suffix == ".md" and fragment not in github_anchors(path):
            problems.append(f"{target}: {path.name} has no heading with this anchor")
    return problems


# --- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faq() -> list[Question]:
    files = faq_files()
    if not files:
        pytest.skip(f"the module FAQ is not here (set {FAQ_ENV}, or put it in {REPO.parent / 'shared' / 'faq'})")
    return [q for f in files for q in parse_faq(f.read_text())]


@pytest.fixture(scope="module")
def faq_map() -> str:
    return MAP.read_text()


def _section(faq_map: str, question: Question) -> str:
    sections = map_sections(faq_map)
    assert normal(question.text) in sections, f"docs/faq.md has no '### {question.text}'"
    return sections[normal(question.text)]


def test_the_parser_reads_questions_rows_items_and_commands():
    text = ("## Setup\n\n### Q: Which one?\n\n**A**: It depends.\n\n| A | B |\n|---|---|\n| one | two |\n\n"
            "1. **Slim**: smaller\n- Set alerts\n\n```bash\n# Remove\ndocker image prune -a\n# - Too big: shrink it\n"
            "nvidia-smi  # driver\n```\n\n```yaml\nkind: Secret\n```\n\n## Still Have Questions?\n\n- Check the docs\n")
    [q] = parse_faq(text)
    assert (q.section, q.text, q.rows) == ("Setup", "Which one?", [("one", "two")])
    assert q.items == ["Slim", "Set alerts", "Too big"]
    assert q.commands == ["docker image prune -a", "nvidia-smi"]


def test_every_question_of_the_faq_has_its_section_with_a_lab_link(faq, faq_map):
    assert faq, "no question found in the FAQ: has its format changed?"
    for question in faq:
        assert _lab_links(_section(faq_map, question)), f"'{question.text}' links to no lab section"


def test_every_table_row_is_answered_beside_a_lab_section(faq, faq_map):
    for question in faq:
        lines = table_lines(_section(faq_map, question))
        for row in question.rows:
            found = [line for line in lines if all(_contains(line, cell) for cell in row)]
            assert found, f"'{question.text}': no row of docs/faq.md answers the FAQ's row {' | '.join(row)}"
            assert _lab_links(found[0]), f"'{question.text}': the row for {' | '.join(row)} links to no lab section"


def test_every_listed_item_and_command_is_answered_beside_a_lab_section(faq, faq_map):
    for question in faq:
        lines = table_lines(_section(faq_map, question))
        for key in question.items + question.commands:
            found = [line for line in lines if _contains(line, key)]
            assert found, f"'{question.text}': no row of docs/faq.md answers the FAQ's '{key}'"
            assert _lab_links(found[0]), f"'{question.text}': the row for '{key}' links to no lab section"


def test_every_link_of_the_map_leads_to_a_lab_heading_or_a_file(faq_map):
    assert _lab_links(faq_map)
    assert link_problems(MAP, faq_map) == []


def test_the_gaps_are_listed_each_with_its_closest_lab_section(faq_map):
    gaps = faq_map.split(f"## {GAPS_HEADING}", 1)
    assert len(gaps) == 2, f"docs/faq.md has no '## {GAPS_HEADING}' section"
    entries = re.findall(r"^- .*(?:\n  .*)*", gaps[1], re.M)  # a bullet and its indented lines
    assert entries and all(_lab_links(entry) for entry in entries), "a gap without its closest lab section"


def section_text(notebook: Path, anchor: str) -> str:
    """The Markdown of a notebook's section: from the cell with the heading ``anchor`` to the next
    cell with a heading of the same level or above."""
    text, level = "", None
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        headings = {heading_id: heading_level for heading_level, heading_id in _headings(cell.source)}
        if level is None and anchor in headings:
            level = headings[anchor]
        elif level is not None and headings and min(headings.values()) <= level:
            break
        if level is not None:
            text += cell.source + "\n"
    return text


def test_every_glossary_term_links_to_a_lab_section_that_uses_it():
    glossary = GLOSSARY.read_text()
    assert link_problems(GLOSSARY, glossary) == []
    rows = [line for line in table_lines(glossary) if _lab_links(line)]
    assert len(rows) >= 20 and len(rows) == len(table_lines(glossary)) - 1, "a term without its lab section"
    for row in rows:
        term = row.strip("|").split("|")[0].strip()
        path, _, anchor = _lab_links(row)[0].partition("#")
        assert _contains(section_text((GLOSSARY.parent / path).resolve(), anchor), term), \
            f"the glossary's '{term}' links to {path}#{anchor}, which does not use the term"


def test_the_readme_links_the_map():
    readme = (REPO / "README.md").read_text()
    assert "(docs/faq.md)" in readme and "(docs/glossary.md)" in readme


@pytest.mark.parametrize("target, why", [
    ("../labs/01_image_slimming.ipynb#4.-A-fat-base", "has 0 headings"),
    ("../labs/01_image_slimming.ipynb#4.-a-slim-base", "has 0 headings"),  # GitHub's style is not JupyterLab's
    ("../labs/01_image_slimming.ipynb", "names no heading"),
    ("../labs/99_missing.ipynb#Setup", "no file"),
    ("../solutions/01_image_slimming.ipynb#Setup", "not a notebook in"),
    ("../README.md#no-such-heading", "no heading with this anchor"),
])
def test_a_broken_link_is_found(target, why):
    [problem] = link_problems(MAP, f"see [there]({target})")
    assert why in problem


def test_a_heading_that_needs_encoding_is_refused(tmp_path):
    labs = tmp_path / "labs"
    labs.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('## 3. "Quoted" — dashed\n## Plain one')])
    nbformat.write(nb, labs / "03_x.ipynb")
    page = tmp_path / "docs" / "faq.md"
    page.parent.mkdir()
    assert link_problems(page, "[a](../labs/03_x.ipynb#Plain-one)", labs) == []
    for fragment in ('3.-"Quoted"-—-dashed', "3.-%22Quoted%22-%E2%80%94-dashed"):
        [problem] = link_problems(page, f"[a](../labs/03_x.ipynb#{fragment})", labs)
        assert "percent-encoding" in problem

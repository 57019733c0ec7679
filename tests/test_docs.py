"""The README is a short map, and every relative link and anchor in it and in docs/ resolves."""

import re
from urllib.parse import unquote

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# Inline links and images: [text](target) or ![alt](target "title"); reference definitions: [x]: target
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?", re.M)


def prose(text):
    """The text outside fenced code blocks, with inline code spans blanked (a link's text may
    run over two lines, so links are read from the whole text, not line by line)."""
    kept = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return re.sub(r"`[^`]*`", "", "\n".join(kept))


def github_anchor(heading):
    """The id GitHub gives a heading: markup dropped, lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # word characters (underscore too), '-' and spaces stay
    return text.replace(" ", "-")


def anchors(path):
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = github_anchor(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path):
    text = prose(path.read_text())
    return INLINE_LINK.findall(text) + REFERENCE.findall(text)


def relative(target):
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("//")


def test_github_anchors_follow_githubs_rule():
    assert github_anchor("FLOPs, ceiling and energy") == "flops-ceiling-and-energy"
    assert github_anchor("Compilation apart, and the fast path per backend") == (
        "compilation-apart-and-the-fast-path-per-backend"
    )
    assert github_anchor("`train.isolate` and `--cores`") == "trainisolate-and---cores"
    assert github_anchor("What the workflow guarantees") == "what-the-workflow-guarantees"


def test_the_pages_are_there():
    names = {path.name for path in PAGES}
    for page in ("report", "time-to-accuracy", "flops-ceiling-energy", "compare-and-merge", "cluster"):
        assert f"{page}.md" in names
    assert {"guarantees.md", "development.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        if not relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and unquote(anchor).lower() not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_page_is_linked_from_the_readme():
    readme_links = {target.partition("#")[0] for target in links(REPO / "README.md")}
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme_links, page.name


def test_the_readme_reads_in_five_minutes():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300

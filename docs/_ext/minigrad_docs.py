"""Helpers of the documentation build (docs/conf.py): the tutorials as sphinx-gallery scripts, the
scraper that shows each figure a tutorial saved, the README's family table, and the escaping of the
plain-text math in docstrings (``|x|`` is a substitution in reST)."""
from __future__ import annotations

import glob
import os
import re
import shutil

# --- the tutorials: percent-format Markdown cells -> sphinx-gallery scripts ----------------------
def _inline(text: str) -> str:
    text = re.sub(r"(?<!`)`([^`\n]+)`(?!`)", r"``\1``", text)          # `code` -> ``code``
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`__", text)      # [text](url)
    return escape_bars(text)


def markdown_to_rest(lines: list[str]) -> list[str]:
    """The Markdown of the tutorials (headings, lists, `code`, indented formulas) as reST."""
    out, previous_blank, in_block = [], True, False
    underline = {1: "=", 2: "-", 3: "^"}
    for line in lines:
        heading = re.match(r"^(#{1,3}) (.*)$", line)
        indented = line.startswith("    ") and line.strip()
        if heading:
            title = _inline(heading.group(2).strip())
            out += [title, underline[len(heading.group(1))] * (len(title) + 4), ""]
            previous_blank, in_block = True, False
            continue
        if indented and previous_blank and not in_block and not (out and re.match(r"^\s*([*-]|\d+\.) ", _last(out))):
            out += ["::", ""]  # an indented formula block: a literal block, shown as written
            in_block = True
        if not line.strip():
            previous_blank = True
        else:
            in_block = in_block and line.startswith("    ")
            previous_blank = False
        out.append(line if in_block else _inline(line))
    return out


def _last(out):
    for line in reversed(out):
        if line.strip():
            return line
    return ""


def percent_to_gallery(source: str) -> str:
    """A percent-format tutorial as a sphinx-gallery script: the first Markdown cell becomes the
    docstring (the page's title and introduction), later ones ``# %%`` text blocks; code as is."""
    cells, current = [], None
    for line in source.splitlines():
        marker = re.match(r"^# %%(.*)$", line)
        if marker:
            current = ["markdown" if "[markdown]" in marker.group(1) else "code", []]
            cells.append(current)
        elif current is not None:
            current[1].append(line)
    out = []
    for k, (kind, lines) in enumerate(cells):
        if kind == "markdown":
            text = markdown_to_rest([re.sub(r"^# ?", "", line) for line in lines])
            if k == 0:
                out += ['r"""'] + text + ['"""', ""]
            else:
                out += ["# %%"] + [("# " + line).rstrip() for line in text] + [""]
        else:
            while lines and not lines[-1].strip():
                lines.pop()
            out += lines + [""]
    return "\n".join(out) + "\n"


def write_gallery_sources(root, src):
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    with open(os.path.join(src, "README.txt"), "w") as f:
        f.write("Tutorials\n=========\n\nThe tutorial scripts of ``tutorials/``, executed when the site was built "
                "(quick mode: fewer epochs and samples than a full run).  Each page can be downloaded as a "
                "Python script or a Jupyter notebook.\n")
    for path in sorted(glob.glob(os.path.join(root, "tutorials", "[0-9][0-9]_*.py"))):
        with open(path) as f:
            converted = percent_to_gallery(f.read())
        with open(os.path.join(src, os.path.basename(path)), "w") as f:
            f.write(converted)


class SavedFigures:
    """A sphinx-gallery scraper: the PNGs a cell wrote into MINIGRAD_FIGURES (new or rewritten)."""

    seen: dict = {}  # path -> mtime, shared by every copy (sphinx-gallery copies its scrapers)

    def __reduce__(self):  # the environment is pickled: keep only the class
        return (SavedFigures, ())

    def __repr__(self):  # sphinx-gallery caches the configuration by repr
        return "SavedFigures()"

    def __call__(self, block, block_vars, gallery_conf):
        from sphinx_gallery.scrapers import figure_rst
        written = []
        for path in sorted(glob.glob(os.path.join(os.environ["MINIGRAD_FIGURES"], "*.png"))):
            stamp = os.stat(path).st_mtime_ns
            if SavedFigures.seen.get(path) != stamp:
                SavedFigures.seen[path] = stamp
                target = next(block_vars["image_path_iterator"])
                shutil.copyfile(path, target)
                written.append(target)
        return figure_rst(written, gallery_conf["src_dir"])




def reset_figures(figures):
    shutil.rmtree(figures, ignore_errors=True)
    os.makedirs(figures, exist_ok=True)


def _get_sg_image_scraper():
    return SavedFigures()


# --- the README's family table, as a page fragment ----------------------------------------------
def family_table(root) -> str:
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    section = readme.split("## The family", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")]
    intro = [line for line in section.splitlines() if line and not line.startswith("|")]
    out = [_inline(line) for line in intro[:3]] + ["", ".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        out += [f"   * - {_inline(cells[0])}"] + [f"     - {_inline(c)}" for c in cells[1:]]
    out += [""] + [_inline(line) for line in intro[3:]]
    return "\n".join(out) + "\n"


def write_family_table(root, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(family_table(root))


def escape_bars(line: str) -> str:
    """``|x|`` means an absolute value here, never a reST substitution: escape bars outside ``code``."""
    parts = re.split(r"(``[^`]*``)", line)
    return "".join(p if p.startswith("``") else re.sub(r"(?<!\\)\|", r"\\|", p) for p in parts)


def _process_docstring(app, what, name, obj, options, lines):
    # In a simple table an escape would shift the columns: there |x| becomes ∣x∣ (U+2223), same width.
    out, block = [], []
    for line in lines + [""]:
        if line.strip():
            block.append(line)
            continue
        table = any(re.match(r"^\s*=+( +=+)+\s*$", b) for b in block)
        out += [(_in_code_or(b, lambda t: t.replace("|", "\u2223")) if table else escape_bars(b)) for b in block]
        out.append(line)
        block = []
    lines[:] = out[:-1]


def _in_code_or(line, change):
    parts = re.split(r"(``[^`]*``)", line)
    return "".join(p if p.startswith("``") else change(p) for p in parts)


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-process-docstring", _process_docstring)
    return {"parallel_read_safe": True}

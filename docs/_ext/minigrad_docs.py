"""Helpers of the documentation build (docs/conf.py): the tutorials as sphinx-gallery scripts, the
scraper that shows each figure a tutorial saved (and fails the build when one is missing), the README's
family tables, and the autodoc clean-ups (plain-text math escaped, private bases and builtin help hidden).
"""
from __future__ import annotations

import glob
import importlib
import os
import pkgutil
import re
import shutil
import sys

from docutils import nodes
from sphinx.errors import ExtensionError

# --- the tutorials: percent-format Markdown cells -> sphinx-gallery scripts ----------------------
# Math in the tutorials is Markdown math, as Jupyter renders it: $inline$ and $$display$$ (a line of
# its own, or several lines between two $$ lines).  On the site it becomes :math: and .. math::.
_CODE = r"``[^`]*``"
_MATH = r":math:`[^`]*`"
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$([^$\n]+?)\$(?![\w$])")


def _inline(text: str) -> str:
    parts = re.split(r"(`[^`\n]+`)", text)  # `code` spans are left as they are: no math, no links
    out = []
    for part in parts:
        if re.fullmatch(r"`[^`\n]+`", part):
            out.append("`" + part + "`")
            continue
        part = _INLINE_MATH.sub(lambda m: f":math:`{m.group(1).strip()}`", part)
        part = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`__", part)      # [text](url)
        out.append(part)
    return escape_bars("".join(out))


def markdown_to_rest(lines: list[str]) -> list[str]:
    """The Markdown of the tutorials (headings, lists, `code`, $math$, $$display math$$, indented
    code) as reST.  An indented block stays a literal block, highlighted as Python: an equation
    written there shows as code with error tokens, and the docs test catches it."""
    out, previous_blank, in_block = [], True, False
    underline = {1: "=", 2: "-", 3: "^"}
    lines = list(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.strip().startswith("$$"):  # display math: $$ ... $$ on one line, or a block of lines
            body = line.strip()[2:]
            chunk = [body]
            while not chunk[-1].rstrip().endswith("$$") and i < len(lines):
                chunk.append(lines[i].strip())
                i += 1
            chunk[-1] = chunk[-1].rstrip()[:-2]
            math = [c.strip() for c in chunk if c.strip()]
            if out and _last(out) and out[-1].strip():
                out.append("")
            out += [".. math::", ""] + ["   " + m for m in math] + [""]
            previous_blank, in_block = True, False
            continue
        heading = re.match(r"^(#{1,3}) (.*)$", line)
        indented = line.startswith("    ") and line.strip()
        if heading:
            title = _inline(heading.group(2).strip())
            out += [title, underline[len(heading.group(1))] * (len(title) + 4), ""]
            previous_blank, in_block = True, False
            continue
        if indented and previous_blank and not in_block and not (out and re.match(r"^\s*([*-]|\d+\.) ", _last(out))):
            out += ["::", ""]  # an indented block: code, shown as written
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


# The setup every tutorial opens with (where to write figures, quick mode): run, not shown.  The
# notebook download gets the same settings from ``first_notebook_cell`` (conf.py).
_SETUP = re.compile(r"^(QUICK|FIGURES|HAVE_DOT) = ")
_SETUP_IMPORT = re.compile(r"^import (os|sys|shutil)$")


def _hide_setup(code: list[str], rest_of_script: str) -> list[str]:
    out = []
    for line in code:
        imported = _SETUP_IMPORT.match(line)
        hide = _SETUP.match(line) or (imported and not re.search(rf"\b{imported.group(1)}\.", rest_of_script))
        out += (["# sphinx_gallery_start_ignore", line, "# sphinx_gallery_end_ignore"] if hide else [line])
    return out


def percent_to_gallery(source: str) -> str:
    """A percent-format tutorial as a sphinx-gallery script: the first Markdown cell becomes the
    docstring (the page's title and introduction), later ones ``# %%`` text blocks; code as is, less
    its setup lines (hidden: run, not shown) and its linter comments."""
    cells, current = [], None
    for line in source.splitlines():
        marker = re.match(r"^# %%(.*)$", line)
        if marker:
            current = ["markdown" if "[markdown]" in marker.group(1) else "code", []]
            cells.append(current)
        elif current is not None:
            current[1].append(re.sub(r"\s*# noqa\b.*$", "", line))
    code_cells = [k for k, (kind, _) in enumerate(cells) if kind == "code"]
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
            if code_cells and k == code_cells[0]:
                rest = "\n".join(line for j, (kd, ls) in enumerate(cells) if kd == "code" for line in ls
                                 if not (j == k and (_SETUP.match(line) or _SETUP_IMPORT.match(line))))
                lines = _hide_setup(lines, rest)
            out += lines + [""]
    return "\n".join(out) + "\n"


def tutorial_sources(root) -> list[str]:
    return sorted(glob.glob(os.path.join(root, "tutorials", "[0-9][0-9]_*.py")))


def write_gallery_sources(root, src):
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    with open(os.path.join(src, "README.txt"), "w") as f:
        f.write("Tutorials\n=========\n\nThe tutorial scripts of ``tutorials/``, executed when the site was built "
                "(quick mode: fewer epochs and samples than a full run).  Each page can be downloaded as a "
                "Python script or a Jupyter notebook.  Start with the first: each builds on the ones before.\n")
    for path in tutorial_sources(root):
        with open(path) as f:
            converted = percent_to_gallery(f.read())
        with open(os.path.join(src, os.path.basename(path)), "w") as f:
            f.write(converted)


def expected_figures(path) -> set:
    """The figures a tutorial promises: every ``"NN_name.png"`` it names, NN its own number."""
    number = os.path.basename(path)[:2]
    with open(path) as f:
        return set(re.findall(rf"""["']({number}_[\w.-]+\.png)["']""", f.read()))


# --- the figures: every PNG a cell wrote, under that cell; a missing one fails the build ---------
class SavedFigures:
    """A sphinx-gallery scraper: the PNGs a cell wrote into MINIGRAD_FIGURES (new or rewritten),
    each shown with its file name as alt text."""

    seen: dict = {}    # path -> mtime, shared by every copy (sphinx-gallery copies its scrapers)
    shown: dict = {}   # tutorial file name -> names of the figures shown on its page

    def __reduce__(self):  # the environment is pickled: keep only the class
        return (SavedFigures, ())

    def __repr__(self):  # sphinx-gallery caches the configuration by repr
        return "SavedFigures()"

    def __call__(self, block, block_vars, gallery_conf):
        rst = []
        for path in sorted(glob.glob(os.path.join(os.environ["MINIGRAD_FIGURES"], "*.png"))):
            stamp = os.stat(path).st_mtime_ns
            if SavedFigures.seen.get(path) != stamp:
                SavedFigures.seen[path] = stamp
                target = next(block_vars["image_path_iterator"])
                shutil.copyfile(path, target)
                name = os.path.basename(path)
                SavedFigures.shown.setdefault(os.path.basename(str(block_vars["src_file"])), set()).add(name)
                rel = os.path.relpath(target, gallery_conf["src_dir"]).replace(os.sep, "/")
                rst += [f".. image:: /{rel}", f"   :alt: {name}", "   :class: sphx-glr-single-img", ""]
        return ("\n" + "\n".join(rst) + "\n") if rst else ""


def check_figures(root):
    """Every figure each tutorial names was made and shown; otherwise the build stops here."""
    missing = []
    for path in tutorial_sources(root):
        name = os.path.basename(path)
        lost = expected_figures(path) - SavedFigures.shown.get(name, set())
        if lost:
            missing.append(f"{name}: {', '.join(sorted(lost))}")
    if missing:
        raise ExtensionError("tutorial figures that were not made (is Graphviz's dot installed?): "
                             + "; ".join(missing))


def reset_figures(figures):
    shutil.rmtree(figures, ignore_errors=True)
    os.makedirs(figures, exist_ok=True)


def _get_sg_image_scraper():
    return SavedFigures()


# --- the README's family tables, as a page fragment ---------------------------------------------
def _api_target(name: str):
    """(role, dotted path) of a name the family tables use: the module that defines it, where the API
    page documents it (``minigrad.regularizers``, the front door, re-exports the family but documents
    none of it)."""
    import minigrad
    front = importlib.import_module("minigrad.regularizers")
    if name in getattr(front, "__all__", ()):
        obj = getattr(front, name)
        return ("class" if isinstance(obj, type) else "func"), f"{obj.__module__}.{name}"
    for info in pkgutil.walk_packages(minigrad.__path__, "minigrad."):
        module = importlib.import_module(info.name)
        obj = getattr(module, name, None)
        if obj is not None and getattr(obj, "__module__", None) == info.name:
            return ("class" if isinstance(obj, type) else "func"), f"{info.name}.{name}"
    raise ExtensionError(f"the README's family table names {name}, which no minigrad module defines")


def _class_cell(cell: str) -> str:
    """`` `Name(args)` (note)`` -> a link to Name's API entry, then ``(args)`` and the note."""
    m = re.match(r"^`([A-Za-z_]\w*)(\([^`]*\))?`(.*)$", cell)
    if not m:
        return _inline(cell)
    role, target = _api_target(m.group(1))
    args = f"\\ ``{m.group(2)}``" if m.group(2) else ""
    return f":{role}:`{m.group(1)} <{target}>`{args}{_inline(m.group(3))}"


def family_table(root) -> str:
    """The README's "The family" section as reST: its paragraphs and tables, in order."""
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    section = readme.split("## The family", 1)[1].split("\n## ", 1)[0]
    out, table = [], None
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            if table is None:
                table = []
                out += ["", ".. list-table::", "   :header-rows: 1", ""]
            if line.startswith("|---"):
                continue
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            first = _class_cell(cells[0]) if table else _inline(cells[0])
            out += [f"   * - {first}"] + [f"     - {_inline(c)}" for c in cells[1:]]
            table.append(cells)
            continue
        if table is not None:
            out.append("")
            table = None
        out.append(_inline(line))
    return "\n".join(out).strip() + "\n"


def write_family_table(root, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(family_table(root))


# --- autodoc ----------------------------------------------------------------------------------
def escape_bars(line: str) -> str:
    """``|x|`` means an absolute value here, never a reST substitution: escape bars outside code and math."""
    parts = re.split(rf"({_CODE}|{_MATH})", line)
    return "".join(p if p.startswith(("``", ":math:")) else re.sub(r"(?<!\\)\|", r"\\|", p) for p in parts)


def drop_unicode_twins(lines: list[str]) -> list[str]:
    """The math convention of the docstrings (docs/api.rst): a key equation is written twice, an
    indented Unicode line for help() and, right after it, the same equation as ``.. math::``.  The
    page shows the typeset one only: an indented block directly above a ``.. math::`` directive
    (blank lines between), indented deeper than the directive, is dropped."""
    out = list(lines)
    for i in range(len(out) - 1, -1, -1):
        directive = re.match(r"^(\s*)\.\. math::", out[i])
        if not directive:
            continue
        indent, j = len(directive.group(1)), i - 1
        while j >= 0 and not out[j].strip():
            j -= 1
        end = j
        while j >= 0 and out[j].strip() and len(out[j]) - len(out[j].lstrip()) > indent:
            j -= 1
        if end >= 0 and end > j and (j < 0 or not out[j].strip()):
            del out[j + 1:i]
    return out


def _process_docstring(app, what, name, obj, options, lines):
    # help() of a builtin value (a str class attribute, an undocumented property) is not ours to show
    builtin = {t.__doc__ for t in (str, int, float, bool, tuple, dict, list, property) if t.__doc__}
    if "\n".join(lines).strip() in {d.strip() for d in builtin}:
        lines[:] = []
        return
    lines[:] = drop_unicode_twins(lines)
    # In a simple table an escape would shift the columns: there |x| becomes ∣x∣ (U+2223), same width.
    out, block, in_math = [], [], False
    for line in lines + [""]:
        if line.strip():
            block.append(line)
            continue
        table = any(re.match(r"^\s*=+( +=+)+\s*$", b) for b in block)
        for b in block:
            if re.match(r"^\s*\.\. math::", b):
                in_math = True
            elif in_math and not b.startswith((" ", "\t")):
                in_math = False
            out.append(b if in_math else _in_code_or(b, lambda t: t.replace("|", "\u2223")) if table
                       else escape_bars(b))
        out.append(line)
        block = []
    lines[:] = out[:-1]


def _in_code_or(line, change):
    parts = re.split(rf"({_CODE}|{_MATH})", line)
    return "".join(p if p.startswith(("``", ":math:")) else change(p) for p in parts)


def _skip_member(app, what, name, obj, skip, options):
    # an attribute or property with no documentation of its own (its value is a str: `name`) is not shown
    if what == "class" and not skip:
        own = getattr(obj, "__doc__", None) if isinstance(obj, property) else None
        if isinstance(obj, property) and obj.fget is not None:
            own = obj.fget.__doc__ if obj.__doc__ is None else obj.__doc__
        if isinstance(obj, property) and not own:
            return True
        if obj is None or isinstance(obj, (str, int, float, bool)):  # a dataclass field's default, a constant
            return True
        if type(obj).__name__ == "_tuplegetter":  # a NamedTuple's field: "Alias for field number 0"
            return True
    return None


def _public_bases(app, name, obj, options, bases):
    bases[:] = [b for b in bases if not b.__name__.startswith("_") and b is not object]


def _drop_empty_bases(app, doctree):
    """A class whose only bases were private or ``object`` keeps a bare "Bases:" line: drop it."""
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if paragraph.astext().strip() == "Bases:":
            paragraph.parent.remove(paragraph)


def setup(app):
    if shutil.which("dot") is None:  # tutorial 08 draws its graphs with it: no site without its pictures
        message = ("the docs build needs Graphviz's dot program (apt-get install graphviz, or brew install "
                   "graphviz): tutorial 08 draws its graphs with it")
        print(f"minigrad docs: {message}", file=sys.stderr)  # first, above Sphinx's crash report
        raise ExtensionError(message)
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("doctree-read", _drop_empty_bases)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app.connect("env-before-read-docs", lambda app, env, docnames: check_figures(root))
    return {"parallel_read_safe": True}

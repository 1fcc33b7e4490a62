"""Citations of the science page become links to the section they cite.

The code, the tutorials and the README cite the science in one form, ``science page §N`` or
``science page §N claim M`` (docs/science.rst; its targets are ``science-N`` and
``science-N-claim-M``).  This transform finds that text in every page (docstrings and tutorial text
included, code and literals left alone) and turns it into a cross-reference, so a citation of a
section that does not exist fails the build (an undefined label is a warning, and the build runs
with ``-W``).
"""
from __future__ import annotations

import re

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform

CITATION = re.compile(r"science page §(\d+)(?: claim (\d+))?")
_SKIP = (nodes.literal, nodes.literal_block, nodes.reference, nodes.math, nodes.math_block, nodes.title,
         nodes.raw, addnodes.pending_xref, nodes.comment)


class ScienceLinks(SphinxTransform):
    default_priority = 500

    def apply(self, **kwargs):
        for text in list(self.document.findall(nodes.Text)):
            if not CITATION.search(text) or any(isinstance(p, _SKIP) for p in _ancestors(text)):
                continue
            parent, pieces, at = text.parent, [], 0
            for m in CITATION.finditer(text):
                pieces.append(nodes.Text(text[at:m.start()]))
                label = f"science-{m.group(1)}" + (f"-claim-{m.group(2)}" if m.group(2) else "")
                ref = addnodes.pending_xref("", nodes.inline(m.group(), m.group()), refdomain="std",
                                            reftype="ref", reftarget=label, refexplicit=True, refwarn=True,
                                            refdoc=self.env.docname)
                pieces.append(ref)
                at = m.end()
            pieces.append(nodes.Text(text[at:]))
            parent.replace(text, [p for p in pieces if not (isinstance(p, nodes.Text) and not str(p))])


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def setup(app):
    app.add_transform(ScienceLinks)
    return {"parallel_read_safe": True}

"""Local Sphinx extension of the ase_bodyorder site.

* chemiscope views that load nothing from the network: chemiscope's Sphinx extension
  (``chemiscope.sphinx``) serves its viewer from the package (``chemiscope.min.js``) but
  adds a ``<script>`` for pako (gzip in the browser) from a CDN. The site's datasets are
  plain JSON, so that tag is dropped, and a gzipped dataset is a build error.
* every public object that autodoc documents must have a docstring (a warning, which
  ``-W`` makes an error).
* the package's docstrings and help texts are plain text with RST roles: a ``|`` (an
  absolute value, ``|a_i|``) is escaped so that docutils does not take it for a
  substitution, and a field list (napoleon's parameters) is closed by a blank line.
* a numpy-style ``Parameters`` section followed by plain paragraphs (as in
  :class:`~ase_bodyorder.BodyOrderCalculator`) gets a ``Notes`` heading before them, so
  that napoleon does not read the paragraphs as parameters.
* the command-line reference's parser (:func:`cli_parser`): ``ase_bodyorder.cli``'s
  own, with its help texts escaped likewise.
"""

from __future__ import annotations

import re

from sphinx.util import logging

logger = logging.getLogger(__name__)

_CDN_SCRIPT = re.compile(r'<script src="https://[^"]*"></script>\s*')


def _visit_chemiscope_html(self, node) -> None:
    from chemiscope.sphinx import visit_chemiscope_html

    if str(node["filepath"]).endswith(".gz"):
        logger.warning(
            "chemiscope view %s is gzipped: the site's views must be plain .json (pako, "
            "which would unzip it in the browser, is not served offline)",
            node["filepath"],
            location=node,
        )
    start = len(self.body)
    visit_chemiscope_html(self, node)
    html = "".join(self.body[start:])
    del self.body[start:]
    self.body.append(_CDN_SCRIPT.sub("", html))


def _depart_chemiscope_html(self, node) -> None:
    pass


def _check_docstring(app, what, name, obj, options, lines) -> None:
    """Warn about a public object documented without a docstring."""
    short = name.rsplit(".", 1)[-1]
    if short.startswith("_") or what in ("attribute", "property", "data"):
        return
    if not any(line.strip() for line in lines):
        logger.warning("public %s %s has no docstring", what, name, type="bodyorder", subtype="doc")


_LITERAL = re.compile(r"(``.*?``)")


def escape_bars(text: str, chars: str = "|") -> str:
    """``text`` with every one of ``chars`` outside ````literals```` escaped (``|``:
    RST substitutions; ``*``: emphasis)."""

    def escape(part: str) -> str:
        for char in chars:
            part = part.replace(char, "\\" + char)
        return part

    return "".join(p if p.startswith("``") else escape(p) for p in _LITERAL.split(text))


def _fix_rst(app, what, name, obj, options, lines) -> None:
    """Escape bars outside tables and close field lists with a blank line (in place)."""
    fixed: list[str] = []
    in_fields = False
    for line in lines:
        stripped = line.lstrip()
        if in_fields and stripped and not line.startswith((" ", ":")):
            fixed.append("")
        if stripped.startswith(":") and re.match(r":[^:`]+:(\s|$)", stripped):
            in_fields = True
        elif stripped and not line.startswith(" "):
            in_fields = False
        fixed.append(line if stripped.startswith(("|", "+")) else escape_bars(line))
    lines[:] = fixed


_SECTION_RULE = re.compile(r"^-{3,}$")


def _close_parameters(app, what, name, obj, options, lines) -> None:
    """Before napoleon: a ``Notes`` heading before prose after a ``Parameters`` list."""
    out: list[str] = []
    in_parameters = False
    for k, line in enumerate(lines):
        following = lines[k + 1] if k + 1 < len(lines) else ""
        if _SECTION_RULE.match(following.strip()):
            in_parameters = line.strip() in ("Parameters", "Other Parameters")
        elif (
            in_parameters
            and k > 0
            and not lines[k - 1].strip()
            and line.strip()
            and not line.startswith(" ")
            and following.strip()
            and not following.startswith(" ")
        ):
            out += ["Notes", "-----"]
            in_parameters = False
        out.append(line)
    lines[:] = out


def cli_parser():
    """The parser of ``ase-bodyorder`` (:func:`ase_bodyorder.cli.build_parser`) with its
    help texts escaped for RST, for sphinx-argparse."""
    from ase_bodyorder.cli import build_parser

    def escape(parser) -> None:
        if parser.description:
            parser.description = escape_bars(parser.description, "|*")
        for action in parser._actions:
            if action.help:
                action.help = escape_bars(action.help, "|*")
            choices = getattr(action, "choices", None)
            for sub in choices.values() if isinstance(choices, dict) else ():
                escape(sub)

    parser = build_parser()
    escape(parser)
    return parser


def setup(app):
    from chemiscope.sphinx import chemiscope as chemiscope_node
    from chemiscope.sphinx import depart_chemiscope_latex, visit_chemiscope_latex

    app.add_node(
        chemiscope_node,
        override=True,
        html=(_visit_chemiscope_html, _depart_chemiscope_html),
        latex=(visit_chemiscope_latex, depart_chemiscope_latex),
    )
    app.connect("autodoc-process-docstring", _check_docstring)
    app.connect("autodoc-process-docstring", _fix_rst)
    app.connect("autodoc-process-docstring", _close_parameters, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The site's local Sphinx extension (docs/_ext/bodyorder_docs.py): what it changes in
docstrings and help texts before docutils reads them, and the offline chemiscope views."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("chemiscope")

PATH = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "bodyorder_docs.py"


@pytest.fixture(scope="module")
def ext():
    spec = importlib.util.spec_from_file_location("bodyorder_docs", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bodyorder_docs", module)
    spec.loader.exec_module(module)
    return module


def test_bars_are_escaped_outside_literals(ext):
    assert ext.escape_bars("n_i |a_i| >= L") == "n_i \\|a_i\\| >= L"
    assert ext.escape_bars("``|x|`` and |y|") == "``|x|`` and \\|y\\|"
    assert ext.escape_bars("runs/* and |z|", "|*") == "runs/\\* and \\|z\\|"


def test_prose_after_parameters_gets_a_notes_heading(ext):
    lines = [
        "Summary.",
        "",
        "Parameters",
        "----------",
        "model",
        "    A model.",
        "stride",
        "    Every n-th structure.",
        "",
        "Results are tied to the structure they were computed for. The",
        "stride counts structures.",
    ]
    ext._close_parameters(None, "class", "X", None, {}, lines)
    assert lines[8:11] == ["", "Notes", "-----"]
    assert lines[11].startswith("Results are tied")
    untouched = ["Parameters", "----------", "model", "    A model.", "", "other", "    More."]
    copy = list(untouched)
    ext._close_parameters(None, "function", "f", None, {}, copy)
    assert copy == untouched


def test_field_lists_are_closed_by_a_blank_line(ext):
    lines = [":param x: the x", "   continued", "Then a paragraph.", ":class:`A` stays"]
    ext._fix_rst(None, "function", "f", None, {}, lines)
    assert lines == [":param x: the x", "   continued", "", "Then a paragraph.", ":class:`A` stays"]


def test_cli_parser_is_the_package_parser_with_escaped_help(ext):
    parser = ext.cli_parser()
    commands = next(a for a in parser._actions if isinstance(a.choices, dict)).choices
    assert {"decompose", "report", "md", "watch", "study"} <= set(commands)
    helps = [a.help for sub in commands.values() for a in sub._actions if a.help]
    assert any("--chemiscope" in a.option_strings for a in commands["decompose"]._actions)
    assert all("|" not in h.replace("\\|", "") for h in helps)
    assert all("*" not in h.replace("\\*", "") for h in helps)


def test_chemiscope_views_load_nothing_from_a_cdn(ext):
    from chemiscope.sphinx._nodes import generate_html_content

    html = generate_html_content("_datasets/x.json")
    assert "https://" in html  # chemiscope's template loads pako from a CDN ...
    assert "https://" not in ext._CDN_SCRIPT.sub("", html)  # ... which the site drops
    assert "chemiscope.min.js" in ext._CDN_SCRIPT.sub("", html)

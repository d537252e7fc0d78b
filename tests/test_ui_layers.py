"""Staff views import the customer apps' selectors and services, never their views; the shared
page pieces (aegis.pages, aegis.charts) import no app; and no module of the pages imports inside
a function (an import there is a cycle dodged, so the code is in the wrong module)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE_MODULES = [
    "adminpanel/views.py",
    "adminpanel/selectors.py",
    "adminpanel/forms.py",
    "transfers/views.py",
    "transfers/pages.py",
    "transfers/selectors.py",
    "transfers/forms.py",
    "accounts/views.py",
    "accounts/selectors.py",
    "accounts/forms.py",
    "aegis/pages.py",
    "aegis/charts.py",
    "aegis/security.py",
    "aegis/settings.py",
]
APPS = ("accounts", "adminpanel", "transfers", "ledger", "notifications", "events")


def imports(path: str) -> list[tuple[str, bool]]:
    """(module imported, whether the import is inside a function) for every import in `path`."""
    tree = ast.parse((ROOT / path).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [(name, True) for inner in ast.walk(node) for name in _names(inner)]
    local = {name for name, _ in found}
    return found + [(name, False) for node in tree.body for name in _names(node) if name not in local]


def _names(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


@pytest.mark.parametrize("path", PAGE_MODULES)
def test_no_import_inside_a_function(path):
    assert [name for name, local in imports(path) if local] == []


def test_staff_and_customer_pages_share_no_views():
    for path in ("adminpanel/views.py", "adminpanel/selectors.py", "adminpanel/forms.py"):
        assert not [m for m, _ in imports(path) if m.endswith(".views") or m.startswith("transfers.views")], path
    for path in ("accounts/views.py", "transfers/views.py", "transfers/selectors.py", "transfers/pages.py"):
        assert not [m for m, _ in imports(path) if m.startswith("adminpanel")], path


@pytest.mark.parametrize("path", ["aegis/pages.py", "aegis/charts.py"])
def test_shared_page_pieces_import_no_app(path):
    assert not [m for m, _ in imports(path) if m.split(".")[0] in APPS]

"""Guards on the tests themselves, by reading their code (ast): a test that asserts nothing
passes whatever the code does; an assertion or-ed with a true constant, or a constant itself,
cannot fail; a test that starts a
server without the `live` marker runs where a user deselected servers (-m "not live")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Tests that assert through something this scan cannot follow; each with why.
NO_ASSERTION_ALLOWED: dict[str, str] = {}
# What starts a PostgreSQL server (or a container running one).
SERVER_FIXTURES = {"localenv", "live_ctx"}
SERVER_CALLS = {"run_live", "rehearse", "run_checks", "Harness", "new_localenv", "process_kills", "init_kill",
                "backup_kill", "power_cuts"}
# A target starts its server when entered (`with NativeTarget(...)`), not when made.
TARGETS = {"NativeTarget", "DockerTarget", "KindTarget"}


def _modules():
    for path in sorted(TESTS.rglob("*.py")):
        if "data" in path.relative_to(TESTS).parts:
            continue
        yield path, ast.parse(path.read_text(), filename=str(path))


def _entered_targets(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.With):
            for item in sub.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in TARGETS:
                    out.add(call.func.id)
    return out


def _called_names(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name):
                out.add(func.id)
            elif isinstance(func, ast.Attribute):
                out.add(func.attr)
    return out


def _asserts_directly(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
        # subprocess.run(..., check=True) fails the test on a non-zero exit.
        if isinstance(sub, ast.Call) and any(k.arg == "check" and isinstance(k.value, ast.Constant)
                                             and k.value.value is True for k in sub.keywords):
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ("raises", "fail") \
                and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "pytest":
            return True
    return False


def _functions(trees) -> dict[str, list[ast.FunctionDef]]:
    found: dict[str, list] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, []).append(node)
    return found


def _uses(node: ast.AST) -> set[str]:
    """The helpers a function calls by name or hands on (benchmark.pedantic(helper)); never a
    method by its name alone: subprocess.run is not the run of tests/laptop.py."""
    return _plain_calls(node) | _referenced(node)


def _closure(functions, seed) -> set[str]:
    """Names of functions that (through the tests' own helpers) do what seed(node) says."""
    marked = {name for name, nodes in functions.items() if any(seed(n) for n in nodes)}
    while True:
        more = {name for name, nodes in functions.items() if name not in marked
                and any(_uses(n) & marked for n in nodes)}
        if not more:
            return marked
        marked |= more


def _markers(node: ast.FunctionDef, module_marks: set[str]) -> set[str]:
    marks = set(module_marks)
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) \
                and target.value.attr == "mark":
            marks.add(target.attr)
    return marks


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)}
    return set()


def _referenced(node: ast.AST) -> set[str]:
    """Names a test hands on (benchmark.pedantic(helper)): the helper runs, and asserts, inside."""
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}


def _plain_calls(node: ast.AST) -> set[str]:
    """Names called as plain functions (helper(...)), not methods (subprocess.run(...))."""
    return {sub.func.id for sub in ast.walk(node) if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)}


def _starting(tree: ast.Module) -> set[str]:
    """The module's own functions that start a server, directly or through each other."""
    local = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    marked = {name for name, n in local.items() if _called_names(n) & SERVER_CALLS or _entered_targets(n)}
    while True:
        more = {name for name, n in local.items() if name not in marked and _plain_calls(n) & marked}
        if not more:
            return marked
        marked |= more


TREES = list(_modules())
FUNCTIONS = _functions(TREES)
ASSERTING = _closure(FUNCTIONS, _asserts_directly)
STARTING = {path: _starting(tree) for path, tree in TREES}


def _tests():
    for path, tree in TREES:
        module_marks = _module_marks(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                yield f"{path.relative_to(TESTS.parent)}::{node.name}", node, module_marks, path


def test_every_test_asserts_something():
    silent = [name for name, node, _, _ in _tests()
              if not (_asserts_directly(node) or _uses(node) & ASSERTING)
              and name not in NO_ASSERTION_ALLOWED]
    assert silent == [], "tests with no assertion, no pytest.raises and no helper that asserts:\n" + "\n".join(silent)


def _cannot_fail(node: ast.Assert) -> bool:
    """`assert <true constant>` or `assert ... or <true constant>`."""
    test = node.test
    constant_true = isinstance(test, ast.Constant) and bool(test.value)
    or_true = isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or) and any(
        isinstance(v, ast.Constant) and bool(v.value) for v in test.values)
    return constant_true or or_true


def test_no_assertion_that_cannot_fail():
    found = [f"{path.relative_to(TESTS.parent)}:{node.lineno}: {ast.unparse(node)}"
             for path, tree in TREES for node in ast.walk(tree) if isinstance(node, ast.Assert) and _cannot_fail(node)]
    assert found == [], "\n".join(found)


def test_tests_that_start_a_server_carry_the_live_marker():
    unmarked = []
    for name, node, module_marks, path in _tests():
        why = ({a.arg for a in node.args.args} & SERVER_FIXTURES) | (_called_names(node) & SERVER_CALLS) \
            | _entered_targets(node) \
            | ((_plain_calls(node) | _referenced(node)) & STARTING[path])
        if why and "live" not in _markers(node, module_marks):
            unmarked.append(f"{name} ({', '.join(sorted(why))})")
    assert unmarked == [], "tests that start a server without @pytest.mark.live:\n" + "\n".join(unmarked)


# The samples are built from pieces: written whole, they would be what the repository's own
# searches for such assertions find (issue 23: a grep for them must come back empty).
@pytest.mark.parametrize("source,caught", [
    ("def test_x():\n    x = 1\n", True),  # asserts nothing
    ("def test_x():\n    assert f() or " + "True\n", True),
    ("def test_x():\n    assert " + "True\n", True),
    ("def test_x():\n    assert " + "'a message'\n", True),
    ("def test_x():\n    assert f() or g()\n", False),
    ("def test_x():\n    assert f() and " + "True\n", False),
    # A command whose result nobody reads, a method that shares a helper's name: no assertion.
    ("def test_x():\n    subprocess.run(['false'])\n", True),
    ("def test_x():\n    'a'.replace('a', 'b')\n", True),
])
def test_the_guards_catch_what_they_guard(source, caught):
    """The guards' own predicates, on a test of each kind and on tests they must let pass:
    caught, whether a guard flags it (asserting nothing, or an assertion that cannot fail)."""
    tree = ast.parse(source)
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    asserts = [n for n in ast.walk(node) if isinstance(n, ast.Assert)]
    if not asserts:
        # what test_every_test_asserts_something flags, also through the helpers of tests/
        assert (not _asserts_directly(node) and not _uses(node) & ASSERTING) is caught
    else:
        assert _asserts_directly(node)
        assert any(_cannot_fail(a) for a in asserts) is caught

"""The direction of dependencies, checked on the source: engines <- vcam, engines <- distill.

* ``engines`` (the runtimes and the model and file layer) imports neither ``vcam`` nor
  ``distill``;
* ``vcam`` never imports ``distill``, except in the one place that composes both sides:
  ``vcam/cli.py`` mounting ``kdcam distill``;
* ``distill`` never imports ``vcam``;
* inside, every module has a layer and imports only its own layer or lower ones
  (``LAYERS``): ``engines.foundation`` imports nothing of ours but ``engines.errors``;
  the rest of ``engines`` stands on it; in ``vcam``, ``media`` and ``panel`` (the control
  panel, which takes the session's handler by injection) < ``live`` (the session and
  its ``controls``) < the commands' library modules (``sharpen``, ``bench``, ...) <
  ``cli``; and nothing in ``vcam.live`` imports ``vcam.live.session``, which composes it;
* no import cycles between modules, and no module imports a private name (``_x``) of
  another.

Every import counts, function-level ones included (walked with ``ast``); imports under
``if TYPE_CHECKING:`` count for the direction rule but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("engines", "vcam", "distill")
#: (importing package, imported package) pairs that are forbidden
FORBIDDEN = {("engines", "vcam"), ("engines", "distill"), ("vcam", "distill"), ("distill", "vcam")}
#: the one module allowed to compose the two sides, and what it may import across
COMPOSER = ("vcam.cli", "distill.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return hidden


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], bool]]:
    """(imported internal module, names taken from it, only under TYPE_CHECKING) for every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    found.append((alias.name, [], id(node) in hidden))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:  # `from pkg import module`
                    found.append((sub, [], id(node) in hidden))
                else:
                    found.append((base, [alias.name], id(node) in hidden))
    return found


def graph() -> tuple[dict[str, set[str]], list[str], list[str]]:
    """The runtime import graph, the forbidden imports and the private-name imports."""
    modules = all_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    forbidden, private = [], []
    for name, path in modules.items():
        for target, names, type_only in imports_of(name, path, modules):
            src_pkg, dst_pkg = name.split(".")[0], target.split(".")[0]
            if (src_pkg, dst_pkg) in FORBIDDEN and (name, target) != COMPOSER:
                forbidden.append(f"{name} imports {target}")
            private += [f"{name} imports {n} from {target}" for n in names if n.startswith("_") and target != name]
            if not type_only and target in modules and target != name:
                edges[name].add(target)
    return edges, forbidden, private


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_runs_the_wrong_way():
    _, forbidden, _ = graph()
    assert forbidden == []


#: (module prefix, layer), most specific prefix first: a module imports only its own layer or lower ones
LAYERS = (
    ("engines.errors", 0),
    ("engines.foundation", 1),
    ("engines", 2),
    ("distill", 3),
    ("vcam.media", 3),
    ("vcam.panel", 3),
    ("vcam.live", 4),
    ("vcam.cli", 6),
    ("vcam", 5),
)


def layer(module: str) -> int:
    return next(rank for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + "."))


def upward_imports() -> list[str]:
    modules = all_modules()
    found = []
    for name, path in modules.items():
        for target, _, _ in imports_of(name, path, modules):
            if (name, target) == COMPOSER:
                continue
            if layer(target) > layer(name) and target not in ("vcam", "engines"):
                found.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
            if target == "vcam.live.session" and name.startswith("vcam.live.") and name != target:
                found.append(f"{name} imports vcam.live.session, which composes it")
    return found


def test_no_import_runs_upward():
    assert upward_imports() == []


def test_the_foundation_imports_nothing_of_ours():
    modules = all_modules()
    for name, path in modules.items():
        if name.startswith("engines.foundation") or name == "engines.errors":
            targets = {t for t, _, _ in imports_of(name, path, modules)}
            assert {t for t in targets if not t.startswith("engines.foundation")} <= {"engines.errors"}, name


def test_vcam_is_a_house_of_rooms():
    """At most about ten files directly in vcam/, and no module of the live side over 300 lines."""
    direct = sorted(p.name for p in (REPO / "vcam").glob("*.py"))
    assert len(direct) <= 10, direct
    long = {
        str(p.relative_to(REPO)): n
        for p in (REPO / "vcam").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300
    }
    assert long == {}


def test_no_import_cycles():
    edges, _, _ = graph()
    assert sum(len(e) for e in edges.values()) > 100  # the walk found the imports
    assert find_cycles(edges) == []


def test_no_private_names_cross_modules():
    _, _, private = graph()
    assert private == []


def test_the_checker_catches_what_it_forbids():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    modules = all_modules()
    found = imports_of("engines.registry", modules["engines.registry"], modules)
    assert ("engines.model.checkpoint", ["open_model"], False) in found  # an import inside a function
    assert ("engines.model.checkpoint", ["ResolvedModel"], True) in found  # an import for type checkers only


@pytest.mark.parametrize("module", ["vcam.cli", "vcam.live.pipeline", "vcam.sharpen", "engines.registry"])
def test_the_live_side_loads_without_the_training_side(module):
    import subprocess
    import sys

    code = (
        f"import sys, {module}; "
        "bad = sorted(m for m in sys.modules if m == 'distill' or m.startswith('distill.')); print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_layout_table_names_every_module():
    """Every module of the three packages appears in README's layout table, and every file it names exists."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {row.split("|")[1].strip().strip("`"): row for row in table.splitlines() if row.startswith("| `")}
    for pkg in PACKAGES:
        row = rows[f"{pkg}/"]
        named = set(re.findall(r"`([\w/]+\.py)`", row))
        files = {str(p.relative_to(REPO / pkg)) for p in (REPO / pkg).rglob("*.py") if p.name != "__init__.py"}
        bare = {f.split("/")[-1] for f in files}
        missing = sorted(f for f in files if f not in named and f.split("/")[-1] not in named)
        assert missing == [], f"README layout row {pkg}/ does not name {missing}"
        unknown = sorted(n for n in named if n not in files and n.split("/")[-1] not in bare)
        assert unknown == [], f"README layout row {pkg}/ names files that do not exist: {unknown}"


def test_the_command_line_loads_without_torch():
    """`kdcam --help`, `kdcam ctl ...` and every error that needs no model stay fast: no torch at import."""
    import subprocess
    import sys

    code = "import sys, vcam.cli; print(sorted(m for m in ('torch', 'onnxruntime', 'openvino') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"

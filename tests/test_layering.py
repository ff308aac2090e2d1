"""The architecture's layering rules, checked on the sources with :mod:`ast`.

Data flows one way: action -> camera trajectory -> control signals -> generator -> frames -> observation.
``model/`` (the generator and its training) is the lower layer: it never imports gymnasium, pygame, ``lv2_env`` or
``agents``; training data from the procedural worlds reaches it as files on disk. ``lv2_env`` builds the worlds
and environments on top of it, and ``agents`` drive those environments through the Gymnasium API; nothing in
``lv2_env`` imports ``agents`` (the ``lv2`` command, which wires an agent to an environment, is ``agents.cli``).
Modules import each other without cycles, and the code outside the packages (``agents/``, ``examples/``,
``benchmarks/``) uses public names only.

Apart from :func:`test_importing_model_loads_none_of_them`, which imports ``model`` in a subprocess, the tests
parse the sources and import nothing of the project, so they run in a fraction of a second. Each failure names the
offending file, line and statement.
"""

import ast
import functools
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_MODEL = {"gymnasium", "gym", "pygame", "lv2_env", "agents"}
PROJECT_PACKAGES = ("lv2_env", "model", "agents")
PUBLIC_NAMES_ONLY = ("agents", "examples", "benchmarks")
# Objects a class may reach into: its own instance or class (and its bases, through super()).
OWN_OBJECTS = {"self", "cls"}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_model_sources_do_not_import_the_env_side():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_top_levels(path) & FORBIDDEN_IN_MODEL)
        for path in (ROOT / "model").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_model_loads_none_of_them():
    code = (
        "import sys, model, model.checkpoint, model.generator, model.text, model.published; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'gymnasium', 'pygame', 'lv2_env', 'agents'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# --- Reading the sources -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One imported module as a statement names it (``import a.b, c`` gives two)."""

    line: int
    module: str  # absolute dotted name: "a.b" for ``from a.b import c`` (relative imports resolved)
    names: tuple[str, ...]  # the names of ``from a.b import c, d``; () for ``import a.b``
    text: str  # the statement, for messages


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports_in_tree(tree: ast.Module, module: str = "", is_package: bool = False) -> list[Import]:
    """Every import of ``tree`` wherever it stands (module level, functions, methods, ``if``/``try`` blocks), plus
    ``importlib.import_module("x")`` / ``__import__("x")`` with a literal name. ``module`` (dotted name of the file)
    resolves relative imports."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name, (), ast.unparse(node)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            found.append(Import(node.lineno, base, tuple(a.name for a in node.names), ast.unparse(node)))
        elif isinstance(node, ast.Call) and _dynamic_import_name(node):
            found.append(Import(node.lineno, _dynamic_import_name(node), (), ast.unparse(node)))
    return sorted(found, key=lambda imp: imp.line)


def _dynamic_import_name(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in {"import_module", "__import__"} and call.args:
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
            return arg.value
    return None


def _imports(path: Path) -> list[Import]:
    return _imports_in_tree(_tree(path), _module_name(path), path.name == "__init__.py")


def _top_level(module: str) -> str:
    return module.split(".")[0]


def _offences(paths, bad) -> list[str]:
    """``file:line: statement`` of each import of ``paths`` for which ``bad(import)`` is true."""
    return [f"{_rel(path)}:{imp.line}: {imp.text}" for path in paths for imp in _imports(path) if bad(imp)]


# --- Rules 1 and 2: who may import whom ----------------------------------------------------------------------------


def test_import_scanner_sees_imports_inside_functions_and_blocks():
    """The import rules below hold for lazy imports too: the scanner must see them wherever they stand."""
    source = (
        "import os\n"
        "def f():\n    import pygame\n"
        "class C:\n    def m(self):\n        from lv2_env.envs import world\n"
        "if True:\n    try:\n        import gymnasium as gym\n    except ImportError:\n        pass\n"
        "def g():\n    return importlib.import_module('agents.keyboard')\n"
    )
    assert [(imp.line, imp.module) for imp in _imports_in_tree(ast.parse(source))] == [
        (1, "os"), (3, "pygame"), (6, "lv2_env.envs"), (9, "gymnasium"), (13, "agents.keyboard"),
    ]


def test_model_never_imports_the_env_side_even_inside_functions():
    """``model/`` is the lower layer: not even a function-level (lazy) import of gymnasium, pygame, ``lv2_env`` or
    ``agents`` is allowed, since it would make the generator depend on the layers built on top of it."""
    offences = _offences(_sources("model"), lambda imp: _top_level(imp.module) in FORBIDDEN_IN_MODEL)
    assert not offences, "model/ imports the env side:\n" + "\n".join(offences)


def test_lv2_env_never_imports_agents():
    """Agents sit on top of the environments and reach them only through the Gymnasium API; the environments, signals,
    worlds, data, evaluation, media and the env-side verbs of the command line never depend on an agent (any
    import, lazy ones included). The ``lv2`` command, which wires an agent to an environment, lives in
    ``agents/cli/``."""
    offences = _offences(_sources("lv2_env"), lambda imp: _top_level(imp.module) == "agents")
    assert not offences, "lv2_env imports agents:\n" + "\n".join(offences)


# --- Rule 3: no import cycles --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One parsed module: where it is (for messages) and its syntax tree."""

    rel: str
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.rel.endswith("__init__.py")


Table = dict[str, Source]  # dotted module name -> its source
Graph = dict[str, dict[str, str]]  # module -> {imported module: "file:line: statement" of its first import}


@functools.lru_cache(maxsize=None)
def _project_table() -> Table:
    return {_module_name(path): Source(_rel(path), _tree(path)) for path in _sources(*PROJECT_PACKAGES)}


def _existing_module(dotted: str, table: Table) -> str | None:
    """The longest prefix of ``dotted`` that is a module of ``table`` (``a.b.missing`` -> ``a.b``)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in table:
            return ".".join(parts[:end])
    return None


def _module_level_statements(body):
    """The statements run on import: module level, including inside ``if``/``try``/``with`` (not functions)."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level_statements(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _module_level_statements(handler.body)


def _reexports(table: Table) -> dict[str, dict[str, str]]:
    """For each package ``__init__``: name -> the module that defines it, for the names the ``__init__`` imports at
    module level from its own submodules (``from pkg.sub import Name`` in ``pkg/__init__.py``), followed through
    nested packages that re-export it in turn."""
    direct = {}
    for package, source in table.items():
        if not source.is_package:
            continue
        names = direct[package] = {}
        for node in _module_level_statements(source.tree.body):
            if not isinstance(node, ast.ImportFrom):
                continue
            (imp,) = _imports_in_tree(ast.Module(body=[node], type_ignores=[]), package, is_package=True)
            base = _existing_module(imp.module, table)
            if base is None or not base.startswith(package + "."):
                continue
            for alias in node.names:
                if alias.name != "*":
                    submodule = f"{base}.{alias.name}"
                    names[alias.asname or alias.name] = submodule if submodule in table else base

    def defining(module: str, name: str, seen: frozenset = frozenset()) -> str:
        source = direct.get(module, {}).get(name)
        if source is None or source in seen:
            return module
        return source if source == f"{module}.{name}" else defining(source, name, seen | {module})

    return {package: {name: defining(package, name) for name in names} for package, names in direct.items()}


def _targets(imp: Import, table: Table, reexports: dict[str, dict[str, str]]) -> list[str]:
    """The modules of ``table`` an import statement is an edge to, by the rule of :func:`_import_graph`."""
    base = _existing_module(imp.module, table)
    if base is None:
        return []
    if not imp.names or base != imp.module:
        return [base]
    targets = []
    for name in imp.names:
        if f"{base}.{name}" in table:
            targets.append(f"{base}.{name}")
        else:
            targets.append(reexports.get(base, {}).get(name, base))
    return list(dict.fromkeys(targets))


def _import_graph(table: Table) -> Graph:
    """The module import graph of ``table``: module -> {imported module: first statement importing it}.

    Every ``import``/``from ... import`` counts, at module level or inside functions. The rule that turns a
    statement into edges:

    * ``import a.b.c`` is an edge to ``a.b.c`` (a package means its ``__init__``). The parent packages Python
      initialises on the way (``a``, ``a.b``) are not edges: otherwise every submodule importing a sibling would
      form a cycle with its package's ``__init__`` re-exporting it.
    * ``from a.b import c`` is an edge to ``a.b.c`` when that is a module file, else to ``a.b`` -- except when
      ``a.b`` is a package whose ``__init__`` re-exports ``c`` from one of its submodules: then the edge goes to
      the submodule that actually defines ``c`` (through nested re-exports). A package ``__init__`` importing its
      submodules for re-export is an edge too, so without this a submodule getting a sibling's name through the
      package (``from pkg import Sibling`` in ``pkg/mod.py``) would be a false cycle ``pkg -> pkg.mod -> pkg``.
      A name the ``__init__`` defines itself still makes the edge to the ``__init__`` (a real cycle there).
    * A module importing itself is no edge.
    """
    reexports, graph = _reexports(table), {}
    for module, source in table.items():
        edges = graph[module] = {}
        for imp in _imports_in_tree(source.tree, module, source.is_package):
            for target in _targets(imp, table, reexports):
                if target != module:
                    edges.setdefault(target, f"{source.rel}:{imp.line}: {imp.text}")
    return graph


@functools.lru_cache(maxsize=None)
def _project_graph() -> Graph:
    """The import graph of lv2_env, model and agents."""
    return _import_graph(_project_table())


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module, each sorted, in sorted order."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest_path(graph: Graph, start: str, goal: str, within: set[str], skip_edge: tuple[str, str]) -> list | None:
    """Breadth-first shortest path ``start -> ... -> goal`` inside ``within``, not using ``skip_edge``."""
    previous, queue = {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph[node]):
            if succ not in within or succ in previous or (node, succ) == skip_edge:
                continue
            previous[succ] = node
            if succ == goal:
                path = [succ]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1]
            queue.append(succ)
    return None


def _longer_cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle ``a -> b -> ... -> a`` of three or more modules for each strongly connected component that
    has one (a component made of mutual pairs only has none)."""
    cycles = []
    for component in _strongly_connected(graph):
        members, best = set(component), None
        for start in component:
            for succ in sorted(graph[start]):
                if succ in members:
                    back = _shortest_path(graph, succ, start, members, skip_edge=(succ, start))
                    if back and (best is None or len(back) + 1 < len(best)):
                        best = [start] + back
        if best:
            cycles.append(best)
    return cycles


def _describe_cycle(graph: Graph, cycle: list[str]) -> str:
    steps = [f"  {a} -> {b}   ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_cycle_finder_reports_the_cycle_path():
    graph = {"a": {"b": "x"}, "b": {"c": "x"}, "c": {"a": "x", "d": "x"}, "d": {}, "e": {"f": "x"}, "f": {"e": "x"}}
    assert _strongly_connected(graph) == [["a", "b", "c"], ["e", "f"]]
    assert _longer_cycles(graph) == [["a", "b", "c", "a"]]


def _table(sources: dict[str, str]) -> Table:
    return {_module_name(ROOT / rel): Source(rel, ast.parse(text)) for rel, text in sources.items()}


def test_graph_resolves_package_reexports_to_the_defining_module():
    """A package ``__init__`` re-exporting its submodules, one of which takes a sibling's name through the package,
    is no cycle; a submodule taking a name the ``__init__`` itself defines is one."""
    graph = _import_graph(_table({
        "pkg/__init__.py": "from pkg.a import A\nfrom pkg.b import B\nfrom pkg.c import C\nVERSION = 1\n",
        "pkg/a.py": "class A: pass\n",
        "pkg/b.py": "from pkg import A\nclass B(A): pass\n",
        "pkg/c.py": "def f():\n    from pkg import VERSION\n    return VERSION\nclass C: pass\n",
        "user.py": "import pkg.a\nfrom pkg import B, c\n",
    }))
    assert {module: sorted(edges) for module, edges in graph.items()} == {
        "pkg": ["pkg.a", "pkg.b", "pkg.c"], "pkg.a": [], "pkg.b": ["pkg.a"], "pkg.c": ["pkg"],
        "user": ["pkg.a", "pkg.b", "pkg.c"],
    }
    assert graph["pkg.c"]["pkg"] == "pkg/c.py:2: from pkg import VERSION"
    assert _strongly_connected(graph) == [["pkg", "pkg.c"]]


def test_no_two_modules_import_each_other():
    """Layers import downwards only (``model`` <- ``lv2_env`` <- ``agents``, and within a package from the more basic
    module): two modules importing each other, even lazily inside a function, means neither is the lower one."""
    graph = _project_graph()
    pairs = [
        f"{a} <-> {b}\n  {graph[a][b]}\n  {graph[b][a]}"
        for a in sorted(graph) for b in sorted(graph[a]) if a < b and a in graph.get(b, {})
    ]
    assert not pairs, "modules importing each other:\n" + "\n".join(pairs)


def test_no_longer_import_cycles():
    """No chain of imports ``a -> b -> ... -> a`` through three or more modules (see :func:`_import_graph` for how
    statements become edges); the cycle path and the statement of each step are reported."""
    graph = _project_graph()
    cycles = [_describe_cycle(graph, cycle) for cycle in _longer_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# --- Rule 4: public names only outside the packages' own code ------------------------------------------------------


def _is_private(name: str) -> bool:
    """``_x`` or ``__x``; not a dunder (``__init__``) and not the throwaway ``_``."""
    return name.startswith("_") and name != "_" and not (name.startswith("__") and name.endswith("__"))


def _assigned_names(target):
    """The ``Name`` / ``Attribute`` nodes an assignment target binds (tuples and starred targets unpacked)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _assigned_names(element)
    elif isinstance(target, ast.Starred):
        yield from _assigned_names(target.value)
    else:
        yield target


def _assignment_targets(node):
    if isinstance(node, ast.Assign):
        return [t for target in node.targets for t in _assigned_names(target)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return list(_assigned_names(node.target))
    return []


def _private_definitions(tree: ast.Module) -> set[str]:
    """Private names ``tree`` defines: functions and classes (methods too), ``self._x`` / ``cls._x`` assignments,
    and ``_x`` assigned at module level or in a class body."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        for target in _assignment_targets(node):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                if target.value.id in OWN_OBJECTS:
                    names.add(target.attr)
    scopes = [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for body in scopes:
        for node in _module_level_statements(body):
            names.update(t.id for t in _assignment_targets(node) if isinstance(t, ast.Name))
    return {name for name in names if _is_private(name)}


@functools.lru_cache(maxsize=None)
def _project_private_names() -> frozenset[str]:
    """Every private name the project's own code defines (packages, examples and benchmarks; not tests)."""
    return frozenset(
        name for path in _sources(*PROJECT_PACKAGES, *PUBLIC_NAMES_ONLY) for name in _private_definitions(_tree(path))
    )


def _is_own_object(node: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: a class's own members, which it may use."""
    if isinstance(node, ast.Name):
        return node.id in OWN_OBJECTS
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _string_arg(call: ast.Call, position: int) -> str | None:
    if len(call.args) > position:
        arg = call.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def _private_member_uses(tree: ast.Module, private: frozenset[str]) -> list[tuple[int, str]]:
    """(line, expression) of each use of a project-private member of another object: ``obj._x``, and
    ``getattr(obj, "_x")`` / ``setattr`` / ``hasattr`` / ``env.get_wrapper_attr("_x")`` / ``set_wrapper_attr``, with
    ``obj`` neither ``self``, ``cls`` nor ``super()``."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private and not _is_own_object(node.value):
            uses.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"getattr", "setattr", "hasattr", "delattr"}:
                name = _string_arg(node, 1)
                if name in private and node.args and not _is_own_object(node.args[0]):
                    uses.append((node.lineno, ast.unparse(node)))
            elif isinstance(func, ast.Attribute) and func.attr in {"get_wrapper_attr", "set_wrapper_attr"}:
                if _string_arg(node, 0) in private and not _is_own_object(func.value):
                    uses.append((node.lineno, ast.unparse(node)))
    return sorted(set(uses))


def _private_member_offences(folders) -> list[str]:
    private = _project_private_names()
    return [
        f"{_rel(path)}:{line}: {text}"
        for path in _sources(*folders) for line, text in _private_member_uses(_tree(path), private)
    ]


def test_private_member_scanner():
    source = (
        "class A:\n    def __init__(self):\n        self._x = 1\n    def f(self, other):\n"
        "        return self._x + other._x + super()._x + cls._x + other.__dict__\n"
        "def g(env):\n    return getattr(env, '_x'), env.get_wrapper_attr('_x'), env.unwrapped._x, env._y\n"
    )
    tree = ast.parse(source)
    assert _private_definitions(tree) == {"_x"}
    assert [line for line, _ in _private_member_uses(tree, frozenset({"_x"}))] == [5, 7, 7, 7]


def test_agents_examples_and_benchmarks_import_only_public_names():
    """Agents, examples and benchmarks are clients of the packages: ``from pkg import _name`` (or importing a
    ``_module``) ties them to internals that may change without notice."""

    def private_import(imp: Import) -> bool:
        return _top_level(imp.module) in PROJECT_PACKAGES and (
            any(_is_private(part) for part in imp.module.split(".")) or any(_is_private(n) for n in imp.names)
        )

    offences = _offences(_sources(*PUBLIC_NAMES_ONLY), private_import)
    assert not offences, "private names imported:\n" + "\n".join(offences)


def test_agents_examples_and_benchmarks_reach_no_private_members():
    """Agents reach worlds only through the Gymnasium API and public attributes (``env.unwrapped.renderer``, never
    ``env.unwrapped._renderer``): ``obj._name`` with ``_name`` a private name the project defines and ``obj`` not
    ``self``/``cls``, or the same through ``getattr``/``get_wrapper_attr``, is not allowed."""
    offences = _private_member_offences(PUBLIC_NAMES_ONLY)
    assert not offences, "private members of other objects used:\n" + "\n".join(offences)


def test_no_class_reaches_into_another_objects_private_members():
    """``obj._x`` with ``obj`` not ``self``/``cls``, where ``_x`` is a private name of the project, anywhere in the
    packages: a class's private members are its own business."""
    offences = _private_member_offences(PROJECT_PACKAGES)
    assert not offences, "private members reached from outside their object:\n" + "\n".join(offences)

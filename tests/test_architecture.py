"""Layering rules hold: Qt only in desktop/, trt_build above the run-time engine, no import cycles."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "desktop", "trt_build")


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or (str(Path(sys.executable).with_name("lint-imports"))
                                           if Path(sys.executable).with_name("lint-imports").exists() else None)
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([exe, "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Qt lives only in desktop/ KEPT" in result.stdout
    assert "Layers: front ends -> trt_build -> stages -> backends KEPT" in result.stdout
    assert "never imports the TensorRT build tools or a front end KEPT" in result.stdout
    text = (REPO / "pyproject.toml").read_text()
    contracts = text[text.index("[tool.importlinter]"):]
    assert "trt_build" not in "".join(line for line in contracts.splitlines() if line.startswith("ignore_imports"))


def _import_graph():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (pip install -e '.[test]')")
    # function-local imports are in grimp's graph like top-level ones; `if TYPE_CHECKING:` imports are
    # left out: they never run, so they cannot form a cycle at import or call time
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def strongly_connected(adj: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(adj[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in adj[v]:
                    out.append(sorted(comp))
    return out


def test_tarjan_finds_a_cycle_and_only_cycles():
    adj = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(strongly_connected(adj)) == [["a", "b", "c"], ["e"]]


def test_no_import_cycle_between_modules_function_local_imports_included():
    graph = _import_graph()
    modules = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    adj = {m: {x for x in graph.find_modules_directly_imported_by(m) if x in modules} for m in modules}
    assert len(modules) > 100 and any(adj.values())
    cycles = strongly_connected(adj)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_runtime_backend_reaches_no_build_tool_even_through_function_local_imports():
    graph = _import_graph()
    # the cycle issue 13 names: engine.backends.tensorrt -> trt_build.engines -> ... -> engine.backends
    for source in ("engine.backends", "engine.detectors", "engine.landmarks", "engine.embedders"):
        assert graph.find_shortest_chain(importer=source, imported="trt_build", as_packages=True) is None
    # ...while trt_build does use the runtime (so the check above is not vacuous)
    assert graph.find_shortest_chain(importer="trt_build", imported="engine.backends", as_packages=True)
    downstream = graph.find_upstream_modules("engine.backends.tensorrt")   # what it imports, transitively
    assert not {m for m in downstream if m.startswith(("trt_build", "desktop", "engine.cli"))}


def test_engine_imports_without_qt():
    code = ("import sys, engine.cli.main, engine.recognizer; "
            "print(any(m.startswith(('PySide6','PyQt')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

"""The house's rules, checked: no import cycle in fer_core, no fer_core file over 500 lines (as
ruff formats them), the run folder's file names spelled in one module, no sys.path tricks in
tests, bench or docs; ruff and mypy clean (`make lint`)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fer_core"
RUN_FILES = [
    "config.json",
    "history.csv",
    "state.json",
    "progress.json",
    "last.keras",
    "best.keras",
    "swa.keras",
    "metrics.json",
    "job.json",
    "train.log",
    "eval_job.json",
    "evaluate.log",
    "evaluation.json",
    "active.json",
    "best_before_recalibration.keras",
]


def _imports(path: Path) -> set[str]:
    """fer_core modules that ``path`` imports (at any depth: lazy imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module.split(".")[0] if node.module else None
                names = [base] if base else [alias.name for alias in node.names]
            elif node.module and node.module.startswith("fer_core."):
                names = [node.module.split(".")[1]]
            else:
                continue
            found.update(name for name in names if (PACKAGE / f"{name}.py").is_file())
    return found


def test_no_import_cycle_in_fer_core():
    graph = {path.stem: _imports(path) - {path.stem} for path in PACKAGE.glob("*.py")}
    graph.pop("__init__", None)
    graph.pop("__main__", None)
    for module in graph.values():
        module.discard("__init__")
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            assert state.get(target) != "open", f"import cycle: {' -> '.join(trail + [target])}"
            if target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_fer_core_file_over_500_lines():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, long


def test_run_folder_file_names_are_spelled_in_one_module():
    """Only fer_core/runs.py names the files of a run folder (strings in code, not prose)."""
    offenders = []
    for path in sorted(
        list(PACKAGE.glob("*.py"))
        + list((ROOT / "app_lib").glob("*.py"))
        + list((ROOT / "app_pages").glob("*.py"))
        + [ROOT / "app.py"]
    ):
        if path.name == "runs.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value in RUN_FILES
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_no_sys_path_insert_or_pythonpath_in_tests_bench_or_docs():
    pattern = re.compile(r"sys\.path\.(insert|append)|PYTHONPATH=|\"PYTHONPATH\"")
    places = [
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("bench/*.py"),
        ROOT / "README.md",
        ROOT / "Makefile",
        ROOT / "app.py",
    ]
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in places
        if path.name != Path(__file__).name
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{name} is a test dependency (requirements-dev.txt): make install-dev"
    return str(path)


def test_ruff_lint_and_format_are_clean():
    """`make lint`'s first two steps (configured in pyproject.toml)."""
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(args)}:\n{done.stdout[-3000:]}"


@pytest.mark.slow
def test_mypy_passes_on_fer_core(tmp_path):
    """`make lint`'s third step: mypy on fer_core at the level pyproject.toml sets."""
    done = subprocess.run(
        [_tool("mypy"), "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]

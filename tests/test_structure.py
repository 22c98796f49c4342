"""The house's rules, checked: fer_core in rooms whose imports only run down, no import cycle,
no fer_core file over 500 lines (as ruff formats them), the run folder's file names spelled in
one module, no sys.path tricks in tests, bench or docs; ruff and mypy clean (`make lint`)."""

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
    "eval_progress.json",
    "active.json",
    "best_before_recalibration.keras",
]


# fer_core's rooms, lowest first: a module imports only from its own room, the core modules
# (fer_core/*.py: errors, labels, storage, safe_text) and the rooms before its own.
ROOMS = [
    "data",
    "faces",
    "models",
    "recognition",
    "evaluation",
    "records",
    "training",
    "service",
    "cli",
]
CORE = {"errors", "labels", "storage", "safe_text"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> dict[str, bool]:
    """fer_core modules that ``path`` imports, each with whether it is imported at module level
    (False: only inside a function). ``from fer_core.x import name`` counts ``fer_core.x.name``
    when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    top_level = {id(node) for node in tree.body}
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = (
                ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).rstrip(".")
                if node.level
                else node.module or ""
            )
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target in modules and target != "fer_core":
                found[target] = found.get(target, False) or id(node) in top_level
                break
    return found


def _room(module: str) -> str:
    """fer_core.<room>.x -> room; fer_core.<room> -> room; fer_core.errors and fer_core -> core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (len(parts) > 2 or parts[1] in ROOMS) else "core"


def test_fer_core_is_rooms_and_every_import_runs_down():
    modules = _modules()
    rooms = {_room(name) for name in modules if name != "fer_core"}
    assert rooms == {"core", *ROOMS}, rooms
    assert {
        name.split(".")[1] for name in modules if _room(name) == "core" and name != "fer_core"
    } == CORE | {"__main__"}
    rank = {"core": -1, **{room: index for index, room in enumerate(ROOMS)}}
    upward = []
    for name, path in modules.items():
        if name in ("fer_core", "fer_core.__main__"):
            continue  # the curated API and `python -m fer_core` may reach into any room
        for target in _imports(path, modules):
            if rank[_room(target)] > rank[_room(name)]:
                upward.append(f"{name} -> {target}")
    assert not upward, upward


# fer_core modules that import Keras as they load (their layers are defined at module level):
# the only ones another module may import inside a function, so that a path that needs no
# Keras (the LiteRT inference path, `fer --help`) never loads it.
HEAVY = {"fer_core.training.trainer", "fer_core.training.checkpoints"}


def test_imports_inside_functions_are_only_of_heavy_modules():
    modules = _modules()
    lazy = [
        f"{name} -> {target}"
        for name, path in modules.items()
        for target, at_top in _imports(path, modules).items()
        if not at_top and target not in HEAVY
    ]
    assert not lazy, lazy


def test_the_command_and_the_recognizer_load_no_keras():
    code = (
        "import sys, fer_core.cli.main, fer_core.recognition.recognizer, fer_core.service.jobs; "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_no_import_cycle_in_fer_core():
    modules = _modules()
    graph = {
        name: set(_imports(path, modules)) - {name}
        for name, path in modules.items()
        if name not in ("fer_core", "fer_core.__main__")
    }
    for targets in graph.values():
        targets.discard("fer_core")
        targets -= {t for t in targets if t.count(".") == 1 and t.split(".")[1] in ROOMS}
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
    """Only fer_core/training/runs.py names the files of a run folder (strings in code, not prose)."""
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


def test_tests_mirror_the_package():
    """tests/<room>/ for each room of fer_core, tests/app/ for the pages and app_lib, and
    tests/browser/ for the real browser; at the top only the tests of the project as a whole."""
    tests = ROOT / "tests"
    folders = {
        path.name for path in tests.iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert folders <= {*ROOMS, "app", "browser"}, folders - {*ROOMS, "app", "browser"}
    assert set(ROOMS) <= folders, set(ROOMS) - folders  # every room has its tests
    top = {path.name for path in tests.glob("test_*.py")}
    assert top == {
        "test_api.py",
        "test_bench_peers.py",
        "test_docs.py",
        "test_packaging.py",
        "test_structure.py",
    }, top


def test_no_detector_name_is_spelled_outside_the_registry():
    """Issue 35: a detector's name, labels and settings live in fer_core.faces.registry; every
    other module asks it (DETECTORS, DEFAULT_DETECTOR, detector_info) instead of comparing or
    keying on the name as a string literal."""
    from fer_core.faces import DETECTORS

    sources = [ROOT / "app.py"] + [
        path
        for folder in ("fer_core", "app_lib", "app_pages", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "faces" not in path.relative_to(ROOT).parts[:2]
    ]
    spelled = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in DETECTORS
    ]
    assert not spelled, spelled


# app_lib's rooms, lowest first, as fer_core's: a module imports from its own room and the
# rooms before it (and the package itself, whose __init__ holds the process-wide set-up).
APP_ROOMS = ["ui", "server", "uploads", "model", "records", "live", "training"]


def test_app_lib_is_rooms_and_every_import_runs_down():
    package = ROOT / "app_lib"
    modules = {_module_name(path): path for path in package.rglob("*.py")}
    loose = sorted(
        name for name in modules if name.count(".") == 1 and name.split(".")[1] not in APP_ROOMS
    )
    assert not loose, f"modules outside a room: {loose}"
    assert {name.split(".")[1] for name in modules if name != "app_lib"} == set(APP_ROOMS)
    rank = {room: index for index, room in enumerate(APP_ROOMS)}
    upward = [
        f"{name} -> {target}"
        for name, path in modules.items()
        if name != "app_lib"
        for target in _imports(path, modules)
        if target != "app_lib" and rank[target.split(".")[1]] > rank[name.split(".")[1]]
    ]
    assert not upward, upward


def test_no_two_modules_share_a_file_name():
    """Issue 35: card.py, live.py, predict.py, records.py and whole_path.py each named two
    modules; a name now says one thing (package markers and pytest's conftest aside)."""
    from collections import Counter

    shared = {"__init__.py", "__main__.py", "conftest.py"}
    names = Counter(
        path.name
        for folder in ("fer_core", "app_lib", "app_pages", "bench", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if path.name not in shared and "versions" not in path.parts
    )
    names["app.py"] += 1
    assert not [name for name, count in names.items() if count > 1], names.most_common(5)

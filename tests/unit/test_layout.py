"""The package layout's rules, read from the source with ``ast`` (no Spark, no server).

- ``source/driver`` (the driver's streaming source runner) and ``source/executor``
  (``read()`` on executors) never import each other: what crosses between them sits at the
  root of ``source/``.
- ``aws/`` (the boto3 seam) imports nothing from ``source/``, ``sink/``, ``records/`` or
  ``stores/``; the top-level options import neither the source nor the sink, whose
  options live with them; the source and the sink never import each other.
- Each package's ``__init__`` docstring is its map: it names every module and sub-package.
- The pure decisions (lineage, admission, positions, planning, batch plan, stop rules, data loss,
  pacing) import neither boto3/botocore nor pyspark, not even through the modules they
  import.
- Decoding (``records/``) knows no Spark, and each of its modules imports on its own.
- The streaming planner's import loads no protobuf (it never deaggregates).
- Stores import from ``source/`` only its pure decisions (the offset's positions), never
  the reader modules.
- Nothing in the package imports ``examples`` or ``scripts``.
- No module imports a module that imports it back, directly or around a longer circle.

And for the tests: no two test files share a name, whatever folder they sit in.

Imports under ``if TYPE_CHECKING:`` never run and are not counted. An import inside a
function counts where the rule is about what a module uses (the first four rules, and
circles); what importing a module loads follows only the imports that run on import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kinesis_source", "pyspark_kinesis")
PURE = (
    "kinesis_source.source.driver.lineage",
    "kinesis_source.source.driver.admission",
    "kinesis_source.source.positions",
    "kinesis_source.source.driver.planning",
    "kinesis_source.source.executor.stop_rules",
    "kinesis_source.source.executor.walk",
    "kinesis_source.source.executor.replay_check",
    "kinesis_source.source.data_loss",
    "kinesis_source.source.driver.pacing",
    "kinesis_source.source.driver.loss_check",
    "kinesis_source.source.shard_range",
    "kinesis_source.source.driver.batch_plan",
)
SDKS = ("boto3", "botocore", "pyspark")


@dataclass
class Imports:
    on_import: set[str] = field(default_factory=set)  # run when the module is imported
    anywhere: set[str] = field(default_factory=set)  # also those inside functions


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


MODULES = module_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> set[str]:
    """Modules ``node`` imports: ``from pkg import sub`` names the submodule ``pkg.sub``."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join([*anchor, *([base] if base else [])])
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in MODULES else base)
    return found


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.found = Imports()
        self.depth = 0  # functions around the current node

    def _inside(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _inside

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for stmt in node.orelse:
                self.visit(stmt)
        else:
            self.generic_visit(node)

    def _record(self, node: ast.Import | ast.ImportFrom) -> None:
        names = _targets(node, self.module)
        self.found.anywhere |= names
        if not self.depth:
            self.found.on_import |= names

    visit_Import = visit_ImportFrom = _record


@cache
def imports_of(module: str) -> Imports:
    visitor = _ImportVisitor(module)
    visitor.visit(ast.parse(MODULES[module].read_text()))
    return visitor.found


def _parents(module: str) -> list[str]:
    """Packages whose ``__init__`` runs before ``module``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]


def loaded_by(module: str) -> set[str]:
    """Every module (ours and others') importing ``module`` loads, following the imports that
    run on import, through the parent packages too."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_parents(current))
        if current in MODULES:
            todo.extend(imports_of(current).on_import)
    return seen


def _top(name: str) -> str:
    return name.split(".")[0]


def _ours(prefix: str) -> list[str]:
    return [m for m in MODULES if m == prefix or m.startswith(prefix + ".")]


def test_the_rules_see_the_whole_package() -> None:
    # A rule over modules that do not exist would hold vacuously.
    assert set(PURE) <= set(MODULES)
    assert {"kinesis_source.stores.file", "kinesis_source.records.fast_decode"} <= set(MODULES)
    assert "pyspark" in {_top(n) for n in imports_of("kinesis_source.data_source").anywhere}
    assert "boto3" in {_top(n) for n in imports_of("kinesis_source.aws.clients").anywhere}


def test_the_pure_decisions_import_neither_boto3_nor_spark() -> None:
    for module in PURE:
        direct = {n for n in imports_of(module).anywhere if _top(n) in SDKS}
        loaded = {n for n in loaded_by(module) if _top(n) in SDKS}
        assert not direct and not loaded, f"{module} imports {sorted(direct | loaded)}"


def test_the_pure_decisions_really_load_without_boto3_or_spark() -> None:
    # What the interpreter does, not only what the source says.
    code = (
        "import sys\n"
        f"for m in {list(PURE)!r}: __import__(m)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(SDKS)!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_package_loads_no_pandas_beyond_what_spark_loads() -> None:
    # The streaming source's planner is a fresh Python process at every query's start:
    # pandas (which pyarrow imports the first time it converts a Python value) would cost
    # it about a second, serially, before the first batch. Loading the package must not.
    code = (
        "import sys\n"
        "import pyspark.sql.streaming.python_streaming_source_runner\n"
        "before = 'pandas' in sys.modules\n"
        f"for m in {sorted(MODULES)!r}: __import__(m)\n"
        "print(before, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after = out.stdout.split()
    assert after == before, "loading the package imported pandas"


def test_the_streaming_planner_loads_no_protobuf() -> None:
    # The planner (a fresh process at each query's start) never deaggregates: protobuf and
    # the generated KPL classes would cost it about 0.1 s before the first batch.
    loaded = loaded_by("kinesis_source.source.stream_reader")
    heavy = {n for n in loaded if _top(n) == "google" or n.startswith("aws_kinesis_agg")}
    assert not heavy, f"the stream reader's import loads {sorted(heavy)}"
    assert "kinesis_source.records.deaggregation" not in loaded


def test_the_streaming_planner_loads_no_read_path() -> None:
    # The planner never reads: the executor's modules (and pyarrow.compute with them) are
    # loaded by the first read() in an executor's Python worker, not at each query's start.
    loaded = loaded_by("kinesis_source.source.stream_reader")
    executor = sorted(n for n in loaded if n.startswith("kinesis_source.source.executor"))
    assert not executor, f"the stream reader's import loads {executor}"


def test_each_records_module_imports_on_its_own() -> None:
    # aws_kinesis_agg's generated classes import a sibling as a top-level module: whichever
    # of our modules a worker loads first (the sink's aggregation, the reader's
    # deaggregation) must make that work, not rely on another having run before it.
    for module in _ours("kinesis_source.records"):
        subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, check=True
        )


def test_decoding_knows_no_spark() -> None:
    for module in _ours("kinesis_source.records"):
        used = {n for n in imports_of(module).anywhere | loaded_by(module) if _top(n) == "pyspark"}
        assert not used, f"{module} imports {sorted(used)}"


def test_stores_never_import_the_reader() -> None:
    allowed = set(PURE)
    for module in _ours("kinesis_source.stores"):
        source = {n for n in imports_of(module).anywhere if n.startswith("kinesis_source.source")}
        assert source <= allowed, f"{module} imports {sorted(source - allowed)}"


def test_nothing_in_the_package_imports_the_examples_or_scripts() -> None:
    for module in MODULES:
        bad = {n for n in imports_of(module).anywhere if _top(n) in ("examples", "scripts")}
        assert not bad, f"{module} imports {sorted(bad)}"


def test_no_import_circle() -> None:
    edges = {m: {n for n in imports_of(m).anywhere if n in MODULES and n != m} for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(edges[module]):
            if state.get(nxt) == 1:
                circle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module)


def test_test_files_have_unique_names_across_the_test_folders() -> None:
    # pytest's default import mode imports each test file by its bare name.
    names = sorted(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert len(names) > 20
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]


def _imports_between(importer: str, imported: str) -> dict[str, list[str]]:
    """Modules under ``importer`` that import (anywhere, even in a function) a module under
    ``imported``, with what they import."""
    found = {}
    for module in _ours(importer):
        bad = sorted(
            n for n in imports_of(module).anywhere if n == imported or n.startswith(imported + ".")
        )
        if bad:
            found[module] = bad
    return found


def test_driver_and_executor_never_import_each_other() -> None:
    driver, executor = "kinesis_source.source.driver", "kinesis_source.source.executor"
    assert len(_ours(driver)) > 5 and len(_ours(executor)) > 5
    assert not _imports_between(driver, executor)
    assert not _imports_between(executor, driver)


def test_the_aws_seam_imports_none_of_its_callers() -> None:
    for caller in ("source", "sink", "records", "stores"):
        assert not _imports_between("kinesis_source.aws", f"kinesis_source.{caller}")


def test_options_live_with_their_owner() -> None:
    for owner in ("source", "sink"):
        assert not _imports_between("kinesis_source.options", f"kinesis_source.{owner}")
    assert not _imports_between("kinesis_source.sink", "kinesis_source.source")
    assert not _imports_between("kinesis_source.source", "kinesis_source.sink")


def test_each_package_docstring_maps_all_its_modules() -> None:
    # The map a newcomer reads first must not drift from the files: every module and
    # sub-package of a package is named in its __init__ docstring, as ``name`` or ``name/``.
    packages = [m for m, path in MODULES.items() if path.name == "__init__.py"]
    assert "kinesis_source.source.driver" in packages
    for package in packages:
        folder = MODULES[package].parent
        doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
        children = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
        children += [f"{p.name}/" for p in folder.iterdir() if (p / "__init__.py").is_file()]
        missing = [c for c in sorted(children) if f"``{c}``" not in doc]
        assert not missing, f"{package}'s docstring does not name {missing}"

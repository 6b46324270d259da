"""The five rules of the architecture (``architecture.md``), checked on the code's own import graph.

Every import is read from the syntax tree, those inside functions included, so a cycle cannot hide behind
a function-level import. Each rule is a function from the parsed tree to a list of violations; the tests
at the end plant one violation of each rule in a small tree of their own and check that it is found, so
none of these checks can pass by being unable to fail.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "CardiacMTLLib": Path("CardiacMTL/CardiacMTLLib"),
    "CardiacMTLApps": Path("CardiacMTL/CardiacMTLApps"),
    "CardiacAtlasLib": Path("CardiacAtlas/CardiacAtlasLib"),
}
# the Slicer module files: front ends Slicer loads from the module folder
SLICER_MODULES = {
    "CardiacMTL": Path("CardiacMTL/CardiacMTL.py"),
    "CardiacAtlas": Path("CardiacAtlas/CardiacAtlas.py"),
}
SCRIPT_FOLDERS = ("bench", "scripts")

# Rule 1: a module may import modules of a lower rank, or of its own rank inside its own group.
LAYERS = (
    ("CardiacMTLLib.errors", 0),
    ("CardiacMTLLib", 0),  # the package itself (__version__)
    ("CardiacMTLLib.types", 1),
    ("CardiacMTLLib.atomic", 1),
    ("CardiacMTLLib.tasks", 1),
    ("CardiacMTLLib.requirements", 1),
    ("CardiacMTLLib.weights", 0),
    ("CardiacMTLLib.io", 2),
    ("CardiacMTLLib.models", 3),
    ("CardiacMTLLib.analysis", 4),
    ("CardiacMTLLib.pipeline", 5),
    ("CardiacMTLLib.report", 6),
    ("CardiacMTLLib.synthetic", 6),
    ("CardiacMTLLib.outputs", 7),
    ("CardiacMTLLib.actions", 8),
    ("CardiacMTLLib.scene", 8),
    ("CardiacMTLLib.datasets", 9),
    ("CardiacMTLLib.evaluation", 10),
    ("CardiacMTLLib.training", 11),
    ("CardiacAtlasLib", 20),
    ("CardiacMTLApps", 30),
    ("slicer:", 30),  # the Slicer module files
)
# optional packages heavy enough that importing them inside a function (at first use) is the point
HEAVY = {
    "torch", "slicer", "sklearn", "dask", "distributed", "vtk", "vtkmodules", "scipy", "matplotlib",
    "SimpleITK", "pydicom", "highdicom", "trame", "trame_slicer", "pyarrow", "skimage", "qt", "ctk",
}  # fmt: skip
TRAINING_ONLY = ("CardiacMTLLib.training", "CardiacMTLLib.datasets", "CardiacMTLLib.evaluation")
# Rule 3: what front ends may not do themselves
FRONT_ENDS = ("CardiacMTLApps.cli", "CardiacMTLApps.web", "slicer:")
ARRAY_PACKAGES = {"numpy", "scipy", "torch"}
# a module file holds the Qt panel's own states (widgets off while an analysis runs, the confirmation
# before a new analysis replaces the user's corrections, a scene closed mid-analysis); what they decide on
# (the corrections at stake, the study kept across reloads) is the Lib's
SLICER_MODULE_MAX_LINES = 280
# Rule 4: a concept -> (pattern of the names that define it, the one module allowed to define them)
ONE_DEFINITION = {
    "Dice": (r"(?i)(^|_)dice(?!.*loss)", ("CardiacMTLLib.evaluation.metrics",)),
    "Hausdorff": (r"(?i)hausdorff", ("CardiacMTLLib.evaluation.metrics",)),
    "the ACDC split": (r"(^|_)split$|stratif", ("CardiacMTLLib.datasets.acdc",)),
    "model-folder read and write": (r"(read|write)_model_folder", ("CardiacMTLLib.models.registry",)),
    "cancellation": (r"Cancel", ("CardiacMTLLib.errors", "CardiacMTLLib.tasks")),
    "the wording of results": (r"^(diagnosis_text|qc_text|qc_lines|indices_text|summary_lines)$", ("CardiacMTLLib.report.text",)),
}  # fmt: skip
LABEL_NAMES = {"RV cavity", "LV myocardium", "LV cavity"}  # Label's display names, spelled in types only


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool = False
    lines: int = 0


@dataclass
class Import:
    source: str
    target: str  # a project module, or the top-level name of a third-party package
    names: tuple[str, ...]
    lineno: int
    in_function: bool
    project: bool


@dataclass
class Tree:
    modules: dict[str, Module] = field(default_factory=dict)
    scripts: dict[str, Module] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    cmake: dict[str, str] = field(default_factory=dict)


def read_tree(root: Path) -> Tree:
    tree = Tree()
    for top, folder in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join((top, *(parts[:-1] if is_package else parts)))
            text = path.read_text()
            tree.modules[name] = Module(name, path, ast.parse(text), is_package, text.count("\n"))
    for name, rel in SLICER_MODULES.items():
        if (root / rel).is_file():
            text = (root / rel).read_text()
            tree.modules[f"slicer:{name}"] = Module(
                f"slicer:{name}", root / rel, ast.parse(text), False, text.count("\n")
            )
            cmake = root / rel.parent / "CMakeLists.txt"
            tree.cmake[name] = cmake.read_text() if cmake.is_file() else ""
    for folder in SCRIPT_FOLDERS:
        for path in sorted((root / folder).glob("*.py")):
            tree.scripts[f"{folder}/{path.name}"] = Module(
                f"{folder}/{path.name}", path, ast.parse(path.read_text())
            )
    for module in [*tree.modules.values(), *tree.scripts.values()]:
        tree.imports += _imports_of(module, tree.modules)
    return tree


def _project_module(dotted: str, modules: dict) -> str | None:
    while dotted:
        if dotted in modules:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def _imports_of(module: Module, modules: dict) -> list[Import]:
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, (), child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
                    package = package[: len(package) - child.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                for alias in child.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:
                        add(submodule, (), child.lineno, in_function)
                    else:
                        add(base, (alias.name,), child.lineno, in_function)
            visit(child, inner)

    def add(dotted: str, names: tuple, lineno: int, in_function: bool):
        target = _project_module(dotted, modules)
        if target is not None:
            found.append(Import(module.name, target, names, lineno, in_function, True))
        elif dotted:
            found.append(Import(module.name, dotted.split(".")[0], names, lineno, in_function, False))

    visit(module.tree, False)
    return found


def rank(name: str) -> tuple[int, str]:
    matches = [
        (prefix, r)
        for prefix, r in LAYERS
        if name == prefix or name.startswith(prefix.rstrip(":") + (":" if prefix.endswith(":") else "."))
    ]
    prefix, r = max(matches, key=lambda m: len(m[0]))
    return r, prefix


def heavy_modules(tree: Tree) -> set[str]:
    """Project modules that import a heavy package at module level, directly or through another module."""
    heavy = {i.source for i in tree.imports if not i.project and not i.in_function and i.target in HEAVY}
    changed = True
    while changed:
        changed = False
        for i in tree.imports:
            if i.project and not i.in_function and i.target in heavy and i.source not in heavy:
                heavy.add(i.source)
                changed = True
    return heavy


# ------------------------------------------------------------------------------------------------ rules


def rule1_layers(tree: Tree) -> list[str]:
    """Layers point one way; no cycles; function-level imports only of heavy things; no private names."""
    problems = []
    heavy = heavy_modules(tree)
    for imp in tree.imports:
        if imp.source not in tree.modules:
            continue
        if imp.project:
            (rs, gs), (rt, gt) = rank(imp.source), rank(imp.target)
            if rt > rs or (rt == rs and gs != gt):
                problems.append(f"{imp.source} imports {imp.target}, a layer above it (line {imp.lineno})")
            lazy_ok = imp.target in heavy or imp.source.startswith("slicer:")
            if imp.in_function and not lazy_ok:
                problems.append(
                    f"{imp.source} imports {imp.target} inside a function (line {imp.lineno}); only heavy "
                    "optional packages may be imported there: import it at the top"
                )
    for imp in tree.imports:
        if imp.project and imp.source != imp.target:
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"{imp.source} imports private {', '.join(private)} of {imp.target}")
    graph: dict[str, set[str]] = {}
    for imp in tree.imports:
        if imp.project and imp.source in tree.modules and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
    for cycle in _cycles(graph):
        problems.append(f"import cycle: {' -> '.join(cycle)}")
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
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
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return result


def rule2_inference_never_imports_training(tree: Tree) -> list[str]:
    problems = []
    for imp in tree.imports:
        if not imp.project or not imp.target.startswith(TRAINING_ONLY) or imp.source not in tree.modules:
            continue
        if imp.source.startswith(TRAINING_ONLY) or imp.source.startswith("CardiacMTLApps"):
            continue
        problems.append(f"{imp.source} (inference) imports {imp.target} (line {imp.lineno})")
    for module, text in tree.cmake.items():
        for package in TRAINING_ONLY:
            folder = "/".join(package.split("."))
            if f"{folder}/" in text:
                problems.append(f"{module}/CMakeLists.txt installs {folder}/ into Slicer")
    for imp in tree.imports:  # Slicer installs neither the apps nor the trainers
        if imp.source.startswith("slicer:") and imp.project and imp.target.startswith("CardiacMTLApps"):
            problems.append(f"{imp.source} imports {imp.target}, which Slicer does not install")
    return problems


def rule3_front_ends_present(tree: Tree) -> list[str]:
    problems = []
    for imp in tree.imports:
        if imp.source.startswith(FRONT_ENDS) and not imp.project and imp.target in ARRAY_PACKAGES:
            problems.append(
                f"{imp.source} imports {imp.target} (line {imp.lineno}): computing on arrays belongs in the Lib"
            )
    for name, module in tree.modules.items():
        if not name.startswith("slicer:"):
            continue
        if module.lines > SLICER_MODULE_MAX_LINES:
            problems.append(f"{name}: {module.lines} lines, more than {SLICER_MODULE_MAX_LINES}")
        stem = name.split(":")[1]
        classes = {n.name for n in module.tree.body if isinstance(n, ast.ClassDef)}
        expected = {stem, f"{stem}Widget", f"{stem}Logic", f"{stem}Test"}
        if not expected <= classes <= expected | {f"{stem}ParameterNode"}:
            problems.append(
                f"{name}: classes {sorted(classes)}, expected Module, Widget, Logic, Test: {sorted(expected)}"
            )
        functions = [
            n.name for n in module.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        if functions:
            problems.append(f"{name}: top-level functions {functions} (logic belongs in the Lib)")
    return problems


def rule4_one_definition(tree: Tree) -> list[str]:
    problems = []
    for concept, (pattern, allowed) in ONE_DEFINITION.items():
        for name, module in tree.modules.items():
            if name in allowed:
                continue
            for node in ast.walk(module.tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and re.search(
                    pattern, node.name
                ):
                    problems.append(f"{name} defines {node.name} ({concept}: only in {' or '.join(allowed)})")
    for name, module in tree.modules.items():
        if name == "CardiacMTLLib.types":
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and node.value in LABEL_NAMES:
                problems.append(
                    f"{name}:{node.lineno} spells the label name {node.value!r} (use types.Label)"
                )
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                targets += [
                    e.id
                    for t in node.targets
                    if isinstance(t, ast.Tuple)
                    for e in t.elts
                    if isinstance(e, ast.Name)
                ]
                if any(re.search(r"CAVITY|MYOCARDIUM", t) for t in targets):
                    problems.append(f"{name}:{node.lineno} defines label values {targets} (use types.Label)")
    return problems


def rule5_results_are_dataclasses(tree: Tree) -> list[str]:
    problems = []
    types = tree.modules.get("CardiacMTLLib.types")
    if types is None:
        return ["CardiacMTLLib.types is missing"]
    for node in types.tree.body:
        if isinstance(node, ast.ClassDef):
            decorated = any(
                (isinstance(d, ast.Name) and d.id == "dataclass")
                or (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass")
                for d in node.decorator_list
            )
            enum = any(getattr(b, "id", "") in {"IntEnum", "Enum", "StrEnum"} for b in node.bases)
            if not decorated and not enum:
                problems.append(f"types.{node.name} is neither a dataclass nor an enum")
    for name, module in tree.modules.items():
        if name in ("CardiacMTLLib.outputs",) or not name.startswith("CardiacMTLLib"):
            continue
        for node in ast.walk(module.tree):  # only outputs writes the result files
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {
                "write_text",
                "open",
                "DictWriter",
            }:
                target = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
                if re.search(r"indices\.(json|csv)", target):
                    problems.append(
                        f"{name}:{node.lineno} writes {target} (the result schema is written in outputs)"
                    )
    pipeline = tree.modules.get("CardiacMTLLib.pipeline")
    analyze = (
        next(
            (n for n in ast.walk(pipeline.tree) if isinstance(n, ast.FunctionDef) and n.name == "analyze"),
            None,
        )
        if pipeline
        else None
    )
    if analyze is None or not (
        analyze.returns is not None and ast.unparse(analyze.returns) == "AnalysisResult"
    ):
        problems.append("pipeline.analyze must return an AnalysisResult")
    return problems


RULES = {
    "1 layers": rule1_layers,
    "2 inference never imports training": rule2_inference_never_imports_training,
    "3 front ends present": rule3_front_ends_present,
    "4 one definition": rule4_one_definition,
    "5 results are dataclasses": rule5_results_are_dataclasses,
}


# ------------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def repository() -> Tree:
    return read_tree(REPO_ROOT)


@pytest.mark.parametrize("rule", RULES)
def test_the_code_keeps_the_rule(repository, rule):
    problems = RULES[rule](repository)
    assert not problems, f"rule {rule}:\n" + "\n".join(problems)


def test_the_graph_is_read_with_function_level_imports(repository):
    # the checks are only as good as the graph: it must see the package's real edges, lazy ones included
    assert len(repository.modules) > 40
    lazy = [i for i in repository.imports if i.in_function and i.project]
    assert lazy, "no function-level project import found: the reader misses them"
    assert any(
        i.source == "CardiacMTLLib.pipeline" and i.target == "CardiacMTLLib.types" for i in repository.imports
    )


def test_every_package_is_installed(repository):
    text = (REPO_ROOT / "pyproject.toml").read_text()
    packages = {m.name for m in repository.modules.values() if m.is_package}
    missing = sorted(p for p in packages if f'"{p}"' not in text)
    assert not missing, f"pyproject.toml does not install {missing}"


# A tree of a few modules, and one planted violation of each rule: every check must find its own.
CLEAN = {
    "CardiacMTL/CardiacMTLLib/__init__.py": "",
    "CardiacMTL/CardiacMTLLib/errors.py": "class CardiacCancelled(Exception):\n    pass\n",
    "CardiacMTL/CardiacMTLLib/types.py": (
        "from dataclasses import dataclass\nfrom enum import IntEnum\n\n"
        "class Label(IntEnum):\n    LV_CAVITY = 3\n\n"
        "@dataclass\nclass AnalysisResult:\n    name: str = 'LV cavity'\n"
    ),
    "CardiacMTL/CardiacMTLLib/io/__init__.py": "",
    "CardiacMTL/CardiacMTLLib/io/nifti.py": "from CardiacMTLLib.types import Label\n",
    "CardiacMTL/CardiacMTLLib/analysis/__init__.py": "",
    "CardiacMTL/CardiacMTLLib/analysis/indices.py": (
        "import numpy as np\nfrom scipy import ndimage\n\nfrom CardiacMTLLib.io.nifti import Label\n\n"
        "def volume(labels):\n    return ndimage.sum(labels == Label.LV_CAVITY)\n"
    ),
    "CardiacMTL/CardiacMTLLib/pipeline.py": (
        "from CardiacMTLLib.analysis.indices import volume\nfrom CardiacMTLLib.types import AnalysisResult\n\n"
        "def analyze(cine) -> AnalysisResult:\n    return AnalysisResult()\n"
    ),
    "CardiacMTL/CardiacMTLLib/evaluation/__init__.py": "",
    "CardiacMTL/CardiacMTLLib/evaluation/metrics.py": "def dice_per_class(a, b):\n    return 1.0\n",
    "CardiacMTL/CardiacMTLApps/__init__.py": "",
    "CardiacMTL/CardiacMTLApps/cli/__init__.py": "",
    "CardiacMTL/CardiacMTLApps/cli/mtl.py": "def main():\n    from CardiacMTLLib.pipeline import analyze\n",
    "CardiacMTL/CardiacMTL.py": (
        "class CardiacMTL:\n    pass\nclass CardiacMTLWidget:\n    pass\n"
        "class CardiacMTLLogic:\n    def run(self):\n        from CardiacMTLLib.pipeline import analyze\n"
        "class CardiacMTLTest:\n    pass\n"
    ),
    "CardiacMTL/CMakeLists.txt": "set(MODULE_PYTHON_SCRIPTS\n  CardiacMTL.py\n  CardiacMTLLib/pipeline.py\n  )\n",
}
PLANTED = {
    "1 layers": {  # io imports the pipeline above it: a cycle, a lazy import and an upward arrow
        "CardiacMTL/CardiacMTLLib/io/nifti.py": "from CardiacMTLLib.types import Label\n\ndef f():\n    from CardiacMTLLib.pipeline import analyze\n"
    },
    "2 inference never imports training": {
        "CardiacMTL/CardiacMTLApps/cli/mtl.py": "from CardiacMTLLib.pipeline import analyze\n",
        "CardiacMTL/CMakeLists.txt": "set(MODULE_PYTHON_SCRIPTS\n  CardiacMTLLib/evaluation/metrics.py\n  )\n",
    },
    "3 front ends present": {
        "CardiacMTL/CardiacMTLApps/cli/mtl.py": "import numpy as np\n\ndef main():\n    return np.mean([1])\n"
    },
    "4 one definition": {"CardiacMTL/CardiacMTLLib/analysis/dice.py": "def dice(a, b):\n    return 2.0\n"},
    "5 results are dataclasses": {
        "CardiacMTL/CardiacMTLLib/pipeline.py": "def analyze(cine) -> dict:\n    return {}\n"
    },
}


def _write_tree(root: Path, files: dict) -> Tree:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return read_tree(root)


def test_a_clean_tree_passes_every_rule(tmp_path):
    tree = _write_tree(tmp_path, CLEAN)
    for rule, check in RULES.items():
        assert check(tree) == [], (rule, check(tree))


@pytest.mark.parametrize("rule", PLANTED)
def test_a_planted_violation_is_found(tmp_path, rule):
    files = dict(CLEAN)
    files.update(PLANTED[rule])
    if rule == "2 inference never imports training":
        files["CardiacMTL/CardiacMTLLib/analysis/indices.py"] = (
            "from CardiacMTLLib.evaluation.metrics import dice_per_class\n"
        )
    problems = RULES[rule](_write_tree(tmp_path, files))
    assert problems, f"rule {rule} did not see its planted violation"


def test_a_hidden_cycle_through_a_function_level_import_is_found(tmp_path):
    files = dict(CLEAN)
    files["CardiacMTL/CardiacMTLLib/types.py"] = CLEAN["CardiacMTL/CardiacMTLLib/types.py"] + (
        "\ndef later():\n    from CardiacMTLLib.io.nifti import Label\n"
    )
    problems = rule1_layers(_write_tree(tmp_path, files))
    assert any("import cycle" in p for p in problems), problems

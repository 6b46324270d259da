"""The 3D Slicer extension's layout, checked without Slicer: module files, CMake lists, .ui files, icons.

The module files import ``slicer``, ``qt``, ``ctk`` and ``vtk``, which only exist inside Slicer, so they
are read with ``ast`` rather than imported; what they use from the Lib packages is imported and checked.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import py_compile
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULES = {"CardiacMTL": "CardiacMTLLib", "CardiacAtlas": "CardiacAtlasLib"}
BASES = {
    "": "ScriptedLoadableModule",
    "Widget": "ScriptedLoadableModuleWidget",
    "Logic": "ScriptedLoadableModuleLogic",
    "Test": "ScriptedLoadableModuleTest",
}
ICONS = [
    REPO_ROOT / "Resources" / "Icons" / "CardiacMTL.png",
    REPO_ROOT / "CardiacMTL" / "Resources" / "Icons" / "CardiacMTL.png",
    REPO_ROOT / "CardiacAtlas" / "Resources" / "Icons" / "CardiacAtlas.png",
]


def _module_file(module: str) -> Path:
    return REPO_ROOT / module / f"{module}.py"


def _tree(module: str) -> ast.Module:
    return ast.parse(_module_file(module).read_text(), filename=str(_module_file(module)))


def _classes(module: str) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in _tree(module).body if isinstance(node, ast.ClassDef)}


def _import(name: str, written: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise AssertionError(f"{written}: {name} does not import: {e}") from e


def _lib_bindings(tree: ast.Module, lib: str) -> dict[str, tuple[str, object]]:
    """Local name -> (the import as written, the object it names) for every import from ``lib``.

    Imports inside functions count too: the module files import the library lazily.
    """
    bindings = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] == lib:
            for alias in node.names:
                written = f"from {node.module} import {alias.name}"
                module = _import(node.module, written)
                if hasattr(module, alias.name):
                    target = getattr(module, alias.name)
                elif hasattr(module, "__path__"):  # a submodule not imported by the package itself
                    target = _import(f"{node.module}.{alias.name}", written)
                else:
                    raise AssertionError(f"{written}: {node.module} has no {alias.name!r}")
                bindings[alias.asname or alias.name] = (written, target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == lib:
                    written = f"import {alias.name}"
                    target = _import(alias.name, written)
                    top = alias.asname or alias.name.split(".")[0]
                    bindings[top] = (written, target if alias.asname else sys.modules[top])
    return bindings


@pytest.mark.parametrize("module", MODULES)
def test_module_file_compiles(module, tmp_path):
    py_compile.compile(str(_module_file(module)), cfile=str(tmp_path / f"{module}.pyc"), doraise=True)


@pytest.mark.parametrize("module", MODULES)
def test_module_file_defines_module_widget_logic_and_test_classes(module):
    classes = _classes(module)
    for suffix, base in BASES.items():
        name = module + suffix
        assert name in classes, f"{_module_file(module).name} defines no class {name}"
        bases = [b.id for b in classes[name].bases if isinstance(b, ast.Name)]
        # Slicer's template widget also observes the scene through slicer.util.VTKObservationMixin
        expected = [[base], [base, "VTKObservationMixin"]] if suffix == "Widget" else [[base]]
        assert bases in expected, f"{name} derives from {bases}, expected one of {expected}"


@pytest.mark.parametrize("module", MODULES)
def test_module_file_keeps_the_library_out_of_module_level(module):
    # Slicer imports every module file at start-up; the Lib (and torch behind it) loads on first use
    top_level = [n for n in _tree(module).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top_level for a in n.names] + [
        n.module or "" for n in top_level if isinstance(n, ast.ImportFrom)
    ]
    assert not [n for n in names if n.split(".")[0] == MODULES[module]]


def test_logic_analyze_takes_path_out_dir_and_device():
    analyze = next(
        n for n in _classes("CardiacMTL")["CardiacMTLLogic"].body if getattr(n, "name", "") == "analyze"
    )
    assert [a.arg for a in analyze.args.args] == ["self", "path", "out_dir", "device"]
    assert ast.literal_eval(analyze.args.defaults[-1]) == "auto"


@pytest.mark.parametrize("module", MODULES)
def test_library_names_used_by_module_file_exist_and_accept_its_arguments(module):
    """Every ``from <Lib>... import name`` resolves, and every call through it binds to the signature."""
    tree = _tree(module)
    bindings = _lib_bindings(tree, MODULES[module])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bindings:
            written, target = bindings[node.value.id]
            if isinstance(target, ModuleType):
                assert hasattr(target, node.attr), f"{written}: {target.__name__} has no {node.attr!r}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in bindings:
            target = bindings[func.id][1]
        elif (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in bindings
        ):
            target = getattr(bindings[func.value.id][1], func.attr)
        else:
            continue
        if not callable(target) or any(k.arg is None for k in node.keywords):
            continue
        try:
            inspect.signature(target).bind(*node.args, **{k.arg: None for k in node.keywords})
        except TypeError as e:
            raise AssertionError(
                f"line {node.lineno}: {ast.unparse(node)} does not match {target.__qualname__}: {e}"
            ) from e


def test_cmake_file_lists_are_up_to_date():
    check = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "update_cmake_lists.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _cmake_list(cmake_text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", cmake_text, re.S)
    assert match, f"no set({variable} ...)"
    return match.group(1).split()


@pytest.mark.parametrize("module", MODULES)
def test_cmake_lists_name_every_lib_file_and_only_files_that_exist(module):
    module_dir = REPO_ROOT / module
    text = (module_dir / "CMakeLists.txt").read_text()
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    missing = [name for name in scripts + resources if not (module_dir / name).is_file()]
    assert not missing, f"{module}/CMakeLists.txt lists files that do not exist: {missing}"
    lib = module_dir / MODULES[module]
    training_only = {"training", "datasets", "evaluation"}
    on_disk = {
        p.relative_to(module_dir).as_posix()
        for p in lib.rglob("*.py")
        if "__pycache__" not in p.parts and p.relative_to(lib).parts[0] not in training_only
    }
    assert not on_disk - set(scripts), (
        f"{module}/CMakeLists.txt does not list {sorted(on_disk - set(scripts))}"
    )
    # Slicer never installs the trainers, data sets or evaluations (inference does not import them)
    assert not [s for s in scripts if s.split("/")[1:2] and s.split("/")[1] in training_only]
    if module == "CardiacMTL":  # the diagnosis ensemble is fitted on this table at run time
        assert "CardiacMTLLib/weights/acdc_features_classifier/features.csv" in resources
    assert f"{module}.py" in scripts
    assert {f"Resources/UI/{module}.ui", f"Resources/Icons/{module}.png"} <= set(resources)
    assert re.search(r"slicerMacroBuildScriptedModule\(.*WITH_GENERIC_TESTS", text, re.S)


def test_extension_cmake_adds_both_modules():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    for module in MODULES:
        assert f"add_subdirectory({module})" in text
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_ICONURL", "EXTENSION_DEPENDS"):
        assert f"set({variable} " in text
    assert "include(${Slicer_EXTENSION_CPACK})" in text


@pytest.mark.parametrize("module", MODULES)
def test_ui_file_is_designer_xml_with_the_widgets_the_module_uses(module):
    root = ET.parse(REPO_ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    assert root.tag == "ui"
    assert root.find("widget").get("class") == "qMRMLWidget"
    classes = {w.get("class") for w in root.iter("widget")}
    assert {"ctkCollapsibleButton", "QLabel"} <= classes
    object_names = {w.get("name") for w in root.iter("widget")}
    used = {
        node.attr
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "ui"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }
    assert used <= object_names, f"self.ui.{sorted(used - object_names)} not in {module}.ui"


@pytest.mark.parametrize("path", ICONS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_icon_is_a_128_pixel_square_png(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert header[12:16] == b"IHDR"
    assert struct.unpack(">II", header[16:24]) == (128, 128)


def _parameter_fields(module: str) -> dict[str, ast.AnnAssign]:
    """Annotated fields of the module's ``@parameterNodeWrapper`` class ``<Module>ParameterNode``."""
    cls = _classes(module).get(f"{module}ParameterNode")
    assert cls is not None, f"{module}.py defines no {module}ParameterNode"
    decorators = [d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in cls.decorator_list]
    assert "parameterNodeWrapper" in decorators, f"{module}ParameterNode is not a @parameterNodeWrapper"
    return {n.target.id: n for n in cls.body if isinstance(n, ast.AnnAssign)}


@pytest.mark.parametrize("module", MODULES)
def test_ui_parameter_names_are_fields_of_the_parameter_node_wrapper(module):
    fields = _parameter_fields(module)
    root = ET.parse(REPO_ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    bound = {
        p.find("string").text
        for p in root.iter("property")
        if p.get("name") == "SlicerParameterName" and p.find("string") is not None
    }
    assert bound, f"{module}.ui binds no widget to the parameter node (SlicerParameterName)"
    assert bound <= set(fields), f"{module}.ui binds {sorted(bound - set(fields))}, not fields of the wrapper"


def test_dependency_installer_leaves_slicers_own_packages_alone():
    """The module installs what pyproject.toml lists (read there, never repeated) minus what Slicer ships."""
    from CardiacMTLLib.requirements import (
        SLICER_PROVIDES,
        missing_requirements,
        project_requirements,
        requirement_name,
    )

    tree = _tree("CardiacMTL")
    specs = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and re.match(r"^[\w.-]+\s*(>=|==|~=)", n.value)
    ]
    assert not specs, f"CardiacMTL.py repeats requirements of pyproject.toml: {specs}"
    assert "CardiacMTLLib.requirements" in {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    pyproject = REPO_ROOT / "pyproject.toml"
    declared = project_requirements(pyproject)
    assert declared == project_requirements()  # the source checkout's pyproject.toml is found by default
    owned = {"numpy", "scipy", "simpleitk", "vtk"}
    assert set(SLICER_PROVIDES) == owned
    to_install = missing_requirements(pyproject, installed=set())
    names = {requirement_name(spec) for spec in to_install}
    assert not names & owned
    assert "nncf" not in names  # the int8 quantisation is made when training, not in Slicer
    assert {"torch", "nibabel", "pydicom", "scikit-learn", "matplotlib", "tqdm", "openvino"} <= names
    assert set(to_install) <= set(declared)
    assert missing_requirements(pyproject, installed={requirement_name(s) for s in declared}) == []
    assert missing_requirements(pyproject, installed=names - {"pydicom"}) == ["pydicom>=2.4"]
    # never at import time: the installer is only called from methods
    top_level_calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    assert not top_level_calls, [ast.unparse(n) for n in top_level_calls]


def test_dependency_install_asks_once_and_installs_only_what_is_missing(tmp_path):
    from CardiacMTLLib.requirements import install_missing

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["numpy>=1", "surely-not-installed-pkg>=1"]\n'
    )
    questions, installed = [], []
    assert install_missing(installed.append, lambda q: questions.append(q) or False, pyproject) is False
    assert installed == [] and len(questions) == 1 and "surely-not-installed-pkg>=1" in questions[0]
    with pytest.raises(RuntimeError, match="surely-not-installed-pkg"):  # the install did not make it appear
        install_missing(installed.append, lambda q: True, pyproject)
    assert installed == ["surely-not-installed-pkg>=1"]  # numpy is the host's, never installed from here


def test_the_question_names_a_host_package_the_install_upgrades():
    """Slicer 5.10 ships pydicom 2.4.4, and highdicom (for the DICOM exports) needs pydicom >= 3.0.1: the
    question said only that numpy, SciPy, SimpleITK and VTK were left alone."""
    import importlib.metadata

    from CardiacMTLLib.requirements import host_upgrades

    def slicer_5_10(name):
        if name == "pydicom":
            return "2.4.4"
        raise importlib.metadata.PackageNotFoundError(name)

    assert host_upgrades(["highdicom>=0.23", "tqdm"], slicer_5_10) == [
        "pydicom 2.4.4 to >= 3.0.1 (highdicom needs it)"
    ]
    assert host_upgrades(["highdicom>=0.23"], lambda name: "3.0.2") == []  # Slicer 5.12
    assert host_upgrades(["highdicom>=0.23"], lambda name: slicer_5_10("other")) == []


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and (getattr(n.func, "attr", None) or getattr(n.func, "id", None)) == name
    ]


def test_module_file_stays_thin():
    text = _module_file("CardiacMTL").read_text()
    assert text.count("\n") <= 280, (  # as test_architecture's SLICER_MODULE_MAX_LINES
        f"CardiacMTL.py has {text.count(chr(10))} lines; its logic belongs in the Lib"
    )
    tree = _tree("CardiacMTL")
    assert not [n.name for n in tree.body if isinstance(n, ast.FunctionDef)], "top-level functions"
    widget = _classes("CardiacMTL")["CardiacMTLWidget"]
    assert "VTKObservationMixin" in [b.id for b in widget.bases if isinstance(b, ast.Name)]
    init = next(n for n in widget.body if getattr(n, "name", "") == "__init__")
    assert "VTKObservationMixin.__init__(self)" in ast.unparse(init)  # addObserver needs the mixin's state


def test_sample_data_and_slice_views_are_set_up_as_slicer_expects():
    tree = _tree("CardiacMTL")
    (register,) = _calls(tree, "registerCustomSampleDataSource")
    keywords = {k.arg: k.value for k in register.keywords}
    given = [name for name in ("uris", "fileNames", "nodeNames") if name in keywords]
    values = {name: ast.literal_eval(keywords[name]) for name in given}
    # SampleDataSource takes one string as one source, else lists of one length
    lengths = {name: 1 if isinstance(value, str) else len(value) for name, value in values.items()}
    assert "uris" in lengths
    assert len(set(lengths.values())) == 1, f"SampleDataSource needs lists of one length, got {lengths}"
    assert "customDownloader" in keywords
    (layers,) = _calls(tree, "setSliceViewerLayers")
    options = {k.arg: ast.literal_eval(k.value) for k in layers.keywords if k.arg != "background"}
    assert options == {"fit": True, "rotateToVolumePlane": True}


def test_scene_logic_and_web_app_import_without_qt():
    code = (
        "import sys; import CardiacMTLLib.scene.cardiac, CardiacAtlasLib.scene, CardiacMTLApps.web.app; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('qt', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert check.returncode == 0, check.stdout + check.stderr


def test_model_catalogue_sums_match_the_shipped_files():
    import hashlib
    import json

    weights = REPO_ROOT / "CardiacMTL" / "CardiacMTLLib" / "weights"
    catalogue = json.loads((weights / "catalogue.json").read_text())
    assert catalogue["models"]
    for key, entry in catalogue["models"].items():
        for name, digest in entry["files"].items():
            data = (weights / entry.get("folder", key) / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{key}/{name}"


def runtime_files(module: str) -> set[str]:
    """The files the Lib opens at run time, relative to the module folder: every data file inside the Lib
    package (weights, feature tables, manifests, model cards), the catalogue and every file it names."""
    import json

    module_dir, lib = REPO_ROOT / module, MODULES[module]
    found = {
        p.relative_to(module_dir).as_posix()
        for p in (module_dir / lib).rglob("*")
        if p.is_file()
        and p.suffix not in (".py", ".pyc")
        and "__pycache__" not in p.parts
        and p.relative_to(module_dir / lib).parts[0] not in {"training", "datasets", "evaluation"}
    }
    catalogue = module_dir / lib / "weights" / "catalogue.json"
    if catalogue.is_file():
        for key, entry in json.loads(catalogue.read_text())["models"].items():
            found |= {f"{lib}/weights/{entry.get('folder', key)}/{name}" for name in entry["files"]}
    return found


def unlisted_runtime_files(module: str, cmake_text: str) -> list[str]:
    """The run-time files of ``module`` that its CMake lists would not install, and a missing pyproject.toml
    copy (``requirements.py`` reads it inside the installed package)."""
    listed = set(_cmake_list(cmake_text, "MODULE_PYTHON_RESOURCES")) | set(
        _cmake_list(cmake_text, "MODULE_PYTHON_SCRIPTS")
    )
    missing = sorted(runtime_files(module) - listed)
    if module == "CardiacMTL" and not re.search(
        r"^install\(FILES \$\{_pyproject\} DESTINATION \$\{Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR\}/CardiacMTLLib",
        cmake_text,
        re.M,
    ):
        missing.append("CardiacMTLLib/pyproject.toml (the copy of the requirements)")
    return missing


@pytest.mark.parametrize("module", MODULES)
def test_every_file_the_lib_opens_at_run_time_is_installed(module):
    text = (REPO_ROOT / module / "CMakeLists.txt").read_text()
    assert not unlisted_runtime_files(module, text), f"{module}/CMakeLists.txt leaves out run-time files"


def test_the_run_time_file_check_fails_without_features_csv():
    text = (REPO_ROOT / "CardiacMTL" / "CMakeLists.txt").read_text()
    entry = "  CardiacMTLLib/weights/acdc_features_classifier/features.csv\n"
    assert entry in text and "CardiacMTLLib/weights/acdc_features_classifier/features.csv" in runtime_files(
        "CardiacMTL"
    )
    assert unlisted_runtime_files("CardiacMTL", text.replace(entry, "")) == [
        "CardiacMTLLib/weights/acdc_features_classifier/features.csv"
    ]
    without_copy = text.replace("install(FILES ${_pyproject}", "# install(FILES ${_pyproject}")
    assert unlisted_runtime_files("CardiacMTL", without_copy) == [
        "CardiacMTLLib/pyproject.toml (the copy of the requirements)"
    ]
    from CardiacMTLLib.requirements import PYPROJECT_PLACES

    assert PYPROJECT_PLACES[0].parent.name == "CardiacMTLLib"  # where requirements.py looks for that copy


def test_extension_declares_the_supported_slicer_and_the_pytorch_extension():
    from CardiacMTLLib.requirements import MINIMUM_SLICER, SLICER_PYTHON

    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    assert re.search(r'set\(EXTENSION_DEPENDS "PyTorch"\)', text)
    (description,) = re.findall(r'set\(EXTENSION_DESCRIPTION "(.*?)"\)', text)
    minimum = ".".join(map(str, MINIMUM_SLICER))
    assert f"3D Slicer {minimum} or newer (Python {'.'.join(map(str, SLICER_PYTHON))})" in description
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"Slicer {minimum} or newer" in readme


def test_an_older_slicer_gets_a_message_and_the_files_it_reads_first_parse_there():
    from CardiacMTLLib.requirements import unsupported_slicer_message

    assert unsupported_slicer_message(5, 10, (3, 12)) is None
    assert unsupported_slicer_message(5, 12, (3, 12)) is None
    assert unsupported_slicer_message(6, 0, (3, 13)) is None
    message = unsupported_slicer_message(5, 8, (3, 9))
    assert "5.10 or newer" in message and "Slicer 5.8 with Python 3.9" in message
    assert "5.10 or newer" in unsupported_slicer_message(5, 12, (3, 10))  # a Python too old for the Lib
    # Slicer 5.6-5.8 run Python 3.9: what the panel runs before the check must parse there
    for path in (
        _module_file("CardiacMTL"),
        _module_file("CardiacAtlas"),
        REPO_ROOT / "CardiacMTL" / "CardiacMTLLib" / "__init__.py",
        REPO_ROOT / "CardiacMTL" / "CardiacMTLLib" / "requirements.py",
    ):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))
    setup = next(
        n for n in _classes("CardiacMTL")["CardiacMTLWidget"].body if getattr(n, "name", "") == "setup"
    )
    first = [ast.unparse(n) for n in setup.body[:4]]
    assert any("unsupported_slicer_message(slicer.app.majorVersion" in line for line in first), first


def test_torch_comes_from_the_pytorch_extension_with_its_version_and_build(monkeypatch):
    import types

    import CardiacMTLLib.requirements as requirements

    assert requirements.torch_version_requirement("torch>=2.2") == ">=2.2"
    assert requirements.torch_version_requirement("torch >=2.2,<3 ; python_version>'3'") == ">=2.2,<3"
    with pytest.raises(ValueError, match="version"):
        requirements.torch_version_requirement("torch")
    assert requirements.torch_backend(["cpu", "cu118", "cu121"]) == "cu121"
    assert requirements.torch_backend(["cpu"]) == "cpu"
    assert "CPU build" in requirements.backend_text("cpu")
    assert "CUDA 12.1" in requirements.backend_text("cu121", ["cpu", "cu121"])

    pip, questions, torch_calls = [], [], []
    missing = [["torch>=2.2", "nibabel>=5.0"], []]
    monkeypatch.setattr(requirements, "missing_requirements", lambda pyproject=None: missing.pop(0))
    util = types.SimpleNamespace(
        pip_install=pip.append, confirmOkCancelDisplay=lambda q: questions.append(q) or True
    )
    monkeypatch.setitem(
        sys.modules, "slicer", types.SimpleNamespace(modules=types.SimpleNamespace(), util=util)
    )
    with pytest.raises(RuntimeError, match="PyTorch extension"):  # never PyPI's default torch wheel
        requirements.install_into_slicer()
    assert pip == []

    class PyTorchUtilsLogic:
        @staticmethod
        def getCompatibleComputationBackends(torchVersionRequirement=None):
            return ["cpu", "cu118", "cu121"]

        def installTorch(self, **kwargs):
            torch_calls.append(kwargs)

    monkeypatch.setitem(
        sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic)
    )
    sys.modules["slicer"].modules.pytorchutils = object()
    missing[:] = [["torch>=2.2", "nibabel>=5.0"], []]
    assert requirements.install_into_slicer() is True
    assert len(questions) == 1 and "CUDA 12.1" in questions[0] and "PyTorch extension" in questions[0]
    assert torch_calls == [
        {"askConfirmation": False, "forceComputationBackend": "cu121", "torchVersionRequirement": ">=2.2"}
    ]
    assert pip == ["nibabel>=5.0"]

"""The layout's rules: no script imports another script, one device picker, one atomic writer, one image reader."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LIBRARIES = ("core", "datasets", "idphoto", "models", "tnet")


def is_script(path: Path) -> bool:
    return 'if __name__ == "__main__"' in path.read_text(encoding="utf-8")


def scripts() -> dict[str, Path]:
    """{module name: path} of every script: the top-level commands and the benchmark scripts."""
    files = [*REPO.glob("*.py"), *(REPO / "bench").glob("*.py"), *(REPO / "tools").glob("*.py")]
    return {p.stem: p for p in files if is_script(p)}


def sources() -> list[Path]:
    """Every Python file of the project but the tests."""
    files = [*REPO.glob("*.py"), *(REPO / "bench").glob("*.py"), *(REPO / "tools").glob("*.py")]
    for package in LIBRARIES:
        files += (REPO / package).rglob("*.py")
    return sorted(files)


def imported(path: Path) -> set[str]:
    """The top-level names of the modules ``path`` imports, at any depth (function bodies included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_scripts_are_found():
    found = scripts()
    assert {"train", "infer", "evaluate", "prepare_aifenge", "bench_infer", "bench_train", "bench_loader"} <= set(found)
    assert not {"cli", "utils", "loss", "matting_metrics", "common", "gpu_runner"} & set(found)


def test_no_script_imports_another_script():
    """What two scripts share lives in a library module (core/, such as core/cli.py), so that a script can
    change its command line or its flow without breaking another one."""
    names = scripts()
    offenders = [f"{path.relative_to(REPO)} imports {name}" for path in sources()
                 for name in sorted(imported(path) & set(names)) if name != path.stem]
    assert offenders == []


def test_libraries_import_no_top_level_module():
    """The libraries stand on their own: no script, and none of the checkout's top-level modules (loss.py,
    utils.py), which are not installed with them."""
    top = {p.stem for p in REPO.glob("*.py")}
    for package in LIBRARIES:
        for path in (REPO / package).rglob("*.py"):
            assert not imported(path) & top, path


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_imports() -> dict[str, set[str]]:
    """{library module: the library modules it imports, at any depth (function bodies included)}."""
    paths = {module_name(p): p for package in LIBRARIES for p in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def test_no_import_cycles_between_library_modules():
    """Even through imports inside functions: a cycle hidden there still ties two modules into one."""
    graph = library_imports()
    assert {"idphoto.pipeline", "idphoto.runner", "models.weights", "models.onnx_model"} <= set(graph)
    cycles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen and nxt > start:   # each cycle once, from its smallest module
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert cycles == []


def defined(name: str) -> list[str]:
    """Where a function or class ``name`` is defined, as 'path:line'."""
    places = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                places.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return places


def test_one_device_picker_one_atomic_writer_one_image_reader():
    assert defined("pick_device") == [p for p in defined("pick_device") if p.startswith("core/runtime.py")] != []
    for name in ("autocast", "optimizer_step", "setup_distributed"):  # each defined once, in core/runtime.py
        assert [p.split(":")[0] for p in defined(name)] == ["core/runtime.py"], (name, defined(name))
    for name in ("atomic_path", "atomic_write_bytes", "write_all", "open_image", "read_image"):
        assert [p.split(":")[0] for p in defined(name)] == ["core/fileio.py"], (name, defined(name))
    mkstemp_users = [str(p.relative_to(REPO)) for p in sources() if "mkstemp(" in p.read_text(encoding="utf-8")]
    assert sorted(mkstemp_users) == ["core/cli.py", "core/fileio.py"]  # cli.py: the writability probe, not a writer
    def reads_files(path: Path) -> bool:  # decodes image files itself (in-memory bytes do not count)
        text = path.read_text(encoding="utf-8")
        return any(call in text for call in ("Image.open(path", "Image.open(source", "cv2.imread(", "cv2.imdecode(np.fromfile"))

    assert [str(p.relative_to(REPO)) for p in sources() if p.parent.name != "bench" and reads_files(p)] == \
        ["core/fileio.py"]


def test_no_test_module_imports_another():
    """What several test modules share lives in conftest.py: a test module imported by another would also run
    its module-level fixtures there, and a change to one would silently change the other's tests."""
    tests = {p.stem for p in (REPO / "tests").glob("test_*.py")}
    offenders = [f"{p.name} imports {name}" for p in sorted((REPO / "tests").glob("test_*.py"))
                 for name in sorted(imported(p) & tests)]
    assert offenders == []


def test_no_two_public_names_in_the_libraries():
    """A public function or class is defined once across the libraries: two of one name (three decode_image, two
    check_photo) made readers guess which one a call meant. The parts every command module has (``main``,
    ``command``, ``build_parser``, ``run``: idphoto.cli and idphoto.web.serve) are the exception."""
    places: dict[str, list[str]] = {}
    for package in LIBRARIES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                    places.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    commands = {"main", "command", "build_parser", "run"}
    twice = {name: where for name, where in places.items() if len(where) > 1 and name not in commands}
    assert twice == {}


def test_one_model_loader_for_inference():
    """infer.py, evaluate.py, the app, the folder workers and the benches open a TNet the same way, so that
    evaluate.py scores what infer.py runs: one function opens a model for inference (models.load_tnet is the
    PyTorch file reader behind it, and what training starts from)."""
    import re

    loaders = [f"{p.relative_to(REPO)}:{node.name}" for p in sources()
               for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(node, ast.FunctionDef) and re.fullmatch(r"(load|open)_\w*(model|tnet)", node.name)]
    assert sorted(loaders) == ["idphoto/runner.py:open_trimap_model", "models/weights.py:load_tnet"]
    callers = ["idphoto/cli.py", "evaluate.py", "idphoto/web/serve.py", "idphoto/batch.py", "bench/bench_real_photos.py"]
    assert [c for c in callers if "open_trimap_model(" not in (REPO / c).read_text(encoding="utf-8")] == []
    # load_tnet is called only by the loader, by training (a --init to train further) and by the benches that
    # compare the PyTorch model itself with its exports
    users = sorted(str(p.relative_to(REPO)) for p in sources() if p.name != "weights.py"
                   and re.search(r"\bload_tnet\(", p.read_text(encoding="utf-8")))
    assert users == ["bench/bench_onnx.py", "bench/gpu_check.py", "idphoto/runner.py", "tnet/training.py"]


def test_the_installed_commands_are_the_scripts_commands():
    """pyproject's [project.scripts] name library functions (nothing top-level is installed), and each is the
    command of the script beside it: infer.py and app.py only import their command's main and call it."""
    import importlib
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"idphoto": "idphoto.cli:command", "idphoto-app": "idphoto.web.serve:command"}
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    for script, module in (("infer.py", "idphoto.cli"), ("app.py", "idphoto.web.serve")):
        text = (REPO / script).read_text(encoding="utf-8")
        assert f"from {module} import" in text and len(text.splitlines()) < 25, script

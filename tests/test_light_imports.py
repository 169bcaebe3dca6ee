"""Start-up cost: --help and the light modules answer without PyTorch; the package installs."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "scipy", "pymatting", "numba")


def loaded_after(code: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``code`` in a fresh interpreter; which of the heavy modules did it load?"""
    probe = code + f"\nimport sys\nprint('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED")]
    assert line, proc.stderr
    return proc, eval(line[-1][len("LOADED "):])


def script_loads(script: str, *argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a script as ``python script argv...`` would (its exit code printed as 'EXIT n'); see loaded_after."""
    return loaded_after(
        "import runpy, sys\n"
        f"sys.argv = {[script, *argv]!r}\n"
        "try:\n"
        f"    runpy.run_path({script!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print('EXIT', exc.code, file=sys.stderr)\n")


@pytest.mark.parametrize("script", ["infer.py", "evaluate.py", "prepare_aifenge.py", "train.py"])
def test_help_loads_no_torch(script):
    proc, loaded = script_loads(script, "--help")
    assert "EXIT 0" in proc.stderr and "usage:" in proc.stdout
    assert loaded == []


def test_usage_mistake_of_train_answers_before_torch():
    proc, loaded = script_loads("train.py", "--epochs", "0")
    assert "EXIT 2" in proc.stderr and "--epochs must be positive" in proc.stderr
    assert loaded == []


def test_spec_tables_and_package_names_load_no_torch():
    proc, loaded = loaded_after(
        "import idphoto, idphoto.specs, models, models.catalog\n"
        "from idphoto import SPECS, get_spec, IDPhotoError\n"
        "from idphoto.pipeline import MATTING_METHODS, DEFAULT_MAX_SIDE\n"
        "from models import BACKBONES, DECODERS\n"
        "assert get_spec('icao').size_px == (413, 531) and 'cf' in MATTING_METHODS and 'unet' in DECODERS\n"
        "assert 'mobilenetv3' in BACKBONES and 'Pipeline' in dir(idphoto)\n")
    assert proc.returncode == 0, proc.stderr
    assert loaded == []


def test_lazy_packages_still_export_everything():
    import datasets
    import idphoto
    import models

    for package in (idphoto, models, datasets):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
    with pytest.raises(AttributeError):
        idphoto.no_such_name  # noqa: B018
    from models.pspnet import BACKBONES as pspnet_backbones

    assert pspnet_backbones is models.BACKBONES


def test_normalisation_is_torchvisions_without_torchvision():
    torchvision_f = pytest.importorskip("torchvision.transforms.functional")
    import torch

    from datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor

    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    reference = torchvision_f.normalize(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.allclose(image_to_tensor(rgb), reference, atol=1e-6)
    _, loaded = loaded_after("import datasets.transforms, idphoto.pipeline")
    assert "torchvision" not in loaded


def test_pyproject_installs_the_libraries_and_no_generic_top_level_module():
    """Every package is installed; no top-level module is: names such as ``train``, ``utils`` or ``loss`` in
    site-packages would collide with other projects'. The scripts run from the checkout."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    modules, packages = set(setuptools["py-modules"]), set(setuptools["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in REPO.rglob("__init__.py")
             if p.parent.relative_to(REPO).parts[0] in {q.parent.name for q in REPO.glob("*/__init__.py")}}
    assert packages == found - {"tests"}   # subpackages too: setuptools installs only the packages listed
    assert modules == set()
    for package in packages:
        assert (REPO.joinpath(*package.split(".")) / "__init__.py").is_file()
    def name(requirement: str) -> str:
        return re.split(r"[<>=\[ ;#]", requirement.strip(), maxsplit=1)[0].lower()

    requirements = {name(line) for line in (REPO / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")}
    declared = {name(d) for d in project["project"]["dependencies"]}
    assert {"torch", "numpy", "scipy", "opencv-python-headless", "pymatting"} <= declared
    assert declared <= requirements, "requirements.txt and pyproject.toml disagree"

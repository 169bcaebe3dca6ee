"""tnet.config: the training recipe defined once. train.py's flags, the TOML recipes, the recipe a weights file
records and the augmentation arguments all come from TrainConfig's fields."""
from __future__ import annotations

import dataclasses

import pytest

import train
from conftest import REPO
from tnet.config import AUGMENTATION_KEYS, DEFAULTS, RECIPE_KEYS, TrainConfig, config_of, problems


def test_every_field_is_a_flag_with_its_default():
    args = train.parse_args([])
    assert config_of(args) == TrainConfig()          # the command line's defaults are the fields'
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"] and f.metadata["group"], f.name
    assert set(vars(args)) == {f.name for f in dataclasses.fields(TrainConfig)} | {"config", "debug"}


def test_the_recorded_and_augmentation_keys_are_fields():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(RECIPE_KEYS) - {"config"} <= names and {"lr", "patch", "dataname", "bg_prob"} <= set(RECIPE_KEYS)
    assert set(AUGMENTATION_KEYS) <= set(RECIPE_KEYS)
    assert "device" not in RECIPE_KEYS and "out" not in RECIPE_KEYS   # where a run ran is not its recipe
    import inspect

    from datasets.transforms import train_transforms

    defaults = inspect.signature(train_transforms).parameters        # the transforms' defaults are the fields'
    for name in AUGMENTATION_KEYS:
        assert defaults[name].default == getattr(DEFAULTS, name), name
    assert defaults["patch"].default == DEFAULTS.patch == 400


@pytest.mark.parametrize("recipe", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_recipe_parses_to_a_valid_config(recipe):
    args = train.parse_args(["--config", str(recipe)])
    config = config_of(args)
    assert problems(config) == []
    assert config.backbone == "mobilenetv3" and config.decoder == "unet"


def test_the_shipped_weights_recipe_is_the_recipe_file_it_names():
    """The weights record the settings of their last stage; parsing that stage's recipe today gives the same."""
    torch = pytest.importorskip("torch")
    from models import DEFAULT_WEIGHTS

    recorded = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=False)["meta"]["recipe"]
    assert set(recorded) <= set(RECIPE_KEYS)
    parsed = vars(train.parse_args(["--config", str(REPO / recorded["config"])]))
    # the data and the seed came from the command line of that run; everything the recipe file sets agrees
    for key, value in recorded.items():
        if key in ("config", "dataname", "repeat", "seed", "pretrained", "amp", "channels_last"):
            continue
        want = list(value) if isinstance(value, (list, tuple)) else value
        got = list(parsed[key]) if isinstance(parsed[key], (list, tuple)) else parsed[key]
        assert got == want, key


def test_problems_name_the_flag():
    bad = dataclasses.replace(DEFAULTS, epochs=0, bg_prob=1.5, decoder="unet")
    found = problems(bad)
    assert "--epochs must be positive" in found and "--bg-prob must be in [0, 1]" in found
    assert "--decoder unet needs --backbone mobilenetv3" in found
    assert problems(DEFAULTS) == []

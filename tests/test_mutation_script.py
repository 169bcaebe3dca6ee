"""tools/mutation.py's module table and score bookkeeping (no mutmut run: that is tools/mutation.sh's job)."""
from __future__ import annotations

import mutation
from conftest import REPO


def test_every_module_names_sources_and_tests_that_exist():
    assert set(mutation.MODULES) == {"trimap", "transforms", "loss", "metrics", "pipeline", "framing", "specs",
                                     "output", "prepare"}
    for name, m in mutation.MODULES.items():
        assert m.sources and all((REPO / s).is_file() for s in m.sources), name
        files = [t.split("::")[0] for t in m.tests if t.startswith("tests/")]
        assert files and all((REPO / t).is_file() for t in files), name
        assert "tests/test_train.py" not in files                       # no training runs in a mutation run
        for test in (t for t in m.tests if "::" in t):                  # a node id names a test of its file
            path, function = test.split("::", 1)
            assert f"def {function}(" in (REPO / path).read_text(encoding="utf-8"), (name, test)
        for pattern in m.only:                                          # each counted function exists
            module, _, mangled = pattern.rstrip("*").rpartition(".")
            source = REPO / (module.replace(".", "/") + ".py")
            assert source.as_posix().endswith(tuple(m.sources)), (name, pattern)
            assert f"def {mangled.removeprefix('x_')}(" in source.read_text(encoding="utf-8"), (name, pattern)


def test_function_names_of_mutants():
    assert mutation.function_of("idphoto.framing.x_render__mutmut_3") == "render"
    assert mutation.function_of("utils.xǁConfusionMatrixǁupdate__mutmut_12") == "ConfusionMatrix.update"
    assert mutation.function_of("loss.x_soft_dice_loss__mutmut_1") == "soft_dice_loss"


def test_rules_file_parses_and_classify_counts_equivalents_apart(tmp_path):
    rules = mutation.load_rules()
    assert rules and {r[0] for r in rules} <= {"equivalent", "accepted"}
    custom = tmp_path / "rules.txt"
    custom.write_text("# comment\n"
                      "equivalent | loss | soft_dice_loss | eps: float = 2\\.0 | a smoothing constant\n"
                      "accepted | * | ClassificationLoss.* | dtype=None | float weights only\n", encoding="utf-8")
    rules = mutation.load_rules(custom)
    result = {"module": "loss", "codes": {"loss.x_soft_dice_loss__mutmut_1": 0, "loss.x_soft_dice_loss__mutmut_2": 1,
                                          "loss.xǁClassificationLossǁ__init____mutmut_11": 0,
                                          "loss.x_soft_dice_loss__mutmut_9": 0, "loss.x_soft_dice_loss__mutmut_10": 33},
              "diffs": {"loss.x_soft_dice_loss__mutmut_1": "- eps: float = 1.0  →  + eps: float = 2.0",
                        "loss.xǁClassificationLossǁ__init____mutmut_11": "- dtype=torch.float32  →  + dtype=None",
                        "loss.x_soft_dice_loss__mutmut_9": "- a  →  + b", "loss.x_soft_dice_loss__mutmut_10": "- c  →  + d"}}
    c = mutation.classify(result, rules)
    assert [n for n, _ in c["equivalent"]] == ["loss.x_soft_dice_loss__mutmut_1"]
    assert [n for n, _ in c["accepted"]] == ["loss.xǁClassificationLossǁ__init____mutmut_11"]
    assert c["killed"] == ["loss.x_soft_dice_loss__mutmut_2"] and c["survived"] == ["loss.x_soft_dice_loss__mutmut_9"]
    assert c["no_tests"] == ["loss.x_soft_dice_loss__mutmut_10"]
    assert c["tried"] == 5 and c["counted"] == 4 and c["score"] == 25.0   # 1 killed of the 4 non-equivalent

"""idphoto.specs: the catalogue's rules parsed and checked as documented, and every spec's head placement
against the catalogue file's own figures (both found by mutation testing)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import REPO, USER_SPEC
from idphoto.specs import CATALOGUE, CUSTOM, SPECS, SpecError, custom_spec, get_spec, load_catalogue, parse_entry

GOOD = {"id": "b", "unit": "mm", "size": [30, 40], "dpi": 300, "head_height": [25, 30],
        "background": ["#ffffff"], "source": "club rules"}


@pytest.mark.parametrize("change,message", [
    ({"dpi": 0}, "field 'dpi': expected a whole number from 1 to 2400, got 0"),
    ({"dpi": 2401}, "field 'dpi': expected a whole number from 1 to 2400, got 2401"),
    ({"unit": "cm"}, "field 'unit': \"cm\" is not one of mm, in, px"),
    ({"size": [30, -1]}, "field 'size': expected [width, height], two positive numbers, got [30, -1]"),
    ({"unit": "px", "size": [300.5, 400]}, "field 'size': pixel sizes are whole numbers up to 10000, got [300.5, 400]"),
    ({"unit": "px", "size": [300, 10001]}, "field 'size': pixel sizes are whole numbers up to 10000, got [300, 10001]"),
    ({"unit": "in", "size": [2, 40], "dpi": 300}, "field 'size': [2, 40] in at 300 DPI is more than 10000 px"),
    ({"head_height": [25]}, "field 'head_height': expected [min, max] (numbers, either may be null) or null, got [25]"),
    ({"head_height": [-1, 30]}, "field 'head_height': negative value in [-1, 30]"),
    ({"head_height": [30, 25]}, "field 'head_height': min 30 is above max 25"),
    ({"head_height": [25, 41]}, "field 'head_height': [25, 41] is larger than the photo (40)"),
    ({"face_width": [20, 31]}, "field 'face_width': [20, 31] is larger than the photo (30)"),
    ({"background": ["白"]}, "field 'background': expected a list of \"#RRGGBB\" colours, got [\"白\"]"),
    ({"format": "png"}, "field 'format': \"png\": only jpeg is supported"),
    ({"source": " "}, "field 'source': say where the rule comes from (a non-empty text)"),
    ({"note": 3}, "field 'note': expected a text"),
    ({"title": 3}, "field 'title': expected a text"),
    ({"region": 3}, "field 'region': expected a text"),
    ({"document": 3}, "field 'document': expected a text"),
    ({"aliases": ["x", ""]}, "field 'aliases': expected a list of names"),
    ({"aliases": "x"}, "field 'aliases': expected a list of names"),
    ({"id": "B c"}, "field 'id': \"B c\" is not a name of lower-case letters, digits, '-', '_' or '.'"),
])
def test_a_bad_entry_is_named_by_file_entry_and_field(tmp_path, change, message):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"specs": [{**GOOD, "id": "a"}, {**GOOD, **change}]}), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_catalogue(path)
    sid = change.get("id", "b")
    prefix = "my.json: spec #2: " if "id" in change else f"my.json: spec #2 ('{sid}'): "
    assert str(info.value) == prefix + message


def test_catalogue_file_problems_are_one_line_each(tmp_path):
    def error(text):
        p = tmp_path / "c.json"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(SpecError) as info:
            load_catalogue(p)
        return str(info.value).replace(str(p), "PATH")

    assert error('{"specs": {}}') == "PATH: field 'specs': expected a list of entries"
    assert error("3") == 'PATH: expected a spec object, a list of them, or {"specs": [...]}'
    assert error("[]") == "PATH: no specs in the file"
    assert error("[5]") == "c.json: spec #1: an entry must be a JSON object, got int"
    assert error(json.dumps([GOOD, GOOD])) == "c.json: spec #2: field 'id': 'b' appears twice"
    assert error(json.dumps([{k: v for k, v in GOOD.items() if k != "source"}])) == "c.json: spec #1: field 'source': missing"
    assert error(json.dumps([{**GOOD, "head_hieght": [1, 2]}])).startswith("c.json: spec #1: field 'head_hieght': unknown field (known: aliases, background, ")
    with pytest.raises(SpecError, match="file not found"):
        load_catalogue(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match=r"bin\.json: cannot read it \(UnicodeDecodeError\)"):
        load_catalogue(tmp_path / "bin.json")
    (tmp_path / "u.json").write_text(json.dumps({**GOOD, "title": "二寸 photo", "aliases": ["Club", "MY-Card"]}, ensure_ascii=False),
                                     encoding="utf-8")
    specs, aliases = load_catalogue(tmp_path / "u.json")
    assert specs["b"].description == "二寸 photo" and aliases == {"club": "b", "my-card": "b"}


def test_a_parsed_entry_keeps_every_field():
    spec, aliases = parse_entry({**GOOD, "unit": "px", "size": [600, 800], "dpi": 200, "eyes_from_bottom": [400, None],
                                 "crown_from_top": [20, 60], "face_width": [200, 300], "file_kb": [10, 240],
                                 "region": "Nowhere", "format": "jpg", "aliases": ["Bee"], "head_height": [400, 500]}, "x")
    assert spec.px == (600, 800) and spec.size_px == (600, 800) and spec.dpi == 200
    assert spec.width_mm == pytest.approx(600 * 25.4 / 200) and spec.height_mm == pytest.approx(800 * 25.4 / 200)
    assert spec.rule_px("eyes") == pytest.approx((400, None)) and spec.rule_px("top") == pytest.approx((20, 60))
    assert spec.rule_px("face_width") == pytest.approx((200, 300)) and spec.kb == (10, 240)
    assert spec.background == ("#FFFFFF",) and spec.format == "jpeg" and spec.region == "Nowhere" and aliases == ["bee"]
    plain, none = parse_entry({k: v for k, v in GOOD.items() if k not in ("dpi", "background")}, "x")
    assert plain.dpi == 300 and plain.background == () and plain.region == "" and plain.px is None and none == []
    assert plain.description == "b"                                    # the id when there is no title


def test_custom_sizes_keep_the_rules_and_drop_the_file_size_limit():
    base, _ = parse_entry({**GOOD, "file_kb": [10, 50]}, "x")
    px = custom_spec(size_px=(500, 700), base=base)
    assert px.size_px == (500, 700) and px.dpi == 300 and px.kb is None and px.head == base.head
    assert px.width_mm == pytest.approx(500 * 25.4 / 300) and px.height_mm == pytest.approx(700 * 25.4 / 300)
    assert custom_spec(size_px=(500, 700), dpi=600, base=base).dpi == 600
    assert base.with_size_px(500, 700).dpi == 300 and base.with_size_px(500, 700, dpi=150).dpi == 150
    mm = custom_spec(size_mm=(40, 50), dpi=200, base=base)
    assert mm.size_px == (round(40 / 25.4 * 200), round(50 / 25.4 * 200)) and mm.kb is None and mm.px is None
    assert (mm.width_mm, mm.height_mm, mm.dpi) == (40, 50, 200)
    plain = custom_spec(size_px=(300, 400))   # without a base: the documented "head 60 % of the height"
    assert plain.size_px == (300, 400) and plain.head_ratio == pytest.approx(0.6, abs=0.02)
    with pytest.raises(ValueError, match="custom_spec needs size_px or size_mm"):
        custom_spec()


def test_get_spec_by_id_or_alias_in_any_case():
    from idphoto.specs import SPECS, get_spec

    assert get_spec("ICAO") is SPECS["icao"] and get_spec("cn-1inch") is SPECS["1inch"]
    with pytest.raises(KeyError) as info:
        get_spec("Nope")
    assert info.value.args == ("Nope",)


def test_limits_of_a_valid_entry():
    assert parse_entry({**GOOD, "dpi": 1}, "x")[0].dpi == 1 and parse_entry({**GOOD, "dpi": 2400}, "x")[0].dpi == 2400
    assert parse_entry({**GOOD, "size": [0.5, 40], "face_width": None}, "x")[0].width_mm == 0.5
    assert parse_entry({**GOOD, "unit": "px", "size": [10000, 10000], "head_height": None, "face_width": [10, 20]}, "x")[0].px == (10000, 10000)
    for bad in ([0, 40], [float("inf"), 40], [True, 40]):
        with pytest.raises(SpecError, match="field 'size'"):
            parse_entry({**GOOD, "size": bad}, "x")
    assert parse_entry({**GOOD, "head_height": [0, 30]}, "x")[0].head[0] == 0       # zero is not negative
    assert parse_entry({**GOOD, "head_height": [40, 40]}, "x")[0].head == (1.0, 1.0)   # as tall as the photo, one value


def test_text_table_has_aligned_columns_and_one_row_per_spec():
    from idphoto.specs import spec_row, text_table

    one, _ = parse_entry({**GOOD, "file_kb": [10, 240], "head_height": [30, 30], "background": []}, "x")
    two, _ = parse_entry({**GOOD, "id": "a-much-longer-id", "unit": "px", "size": [300, 400], "head_height": [200, None]}, "x")
    row = spec_row(one)
    assert row["kb"] == "10–240 KB" and row["head"] == "30 mm" and row["background"] == "any plain" and row["eyes"] == "–"
    assert spec_row(two)["head"] == "≥ 200 px" and spec_row(two)["kb"] == "–" and spec_row(two)["size"] == "300×400 px @ 300 DPI"
    lines = text_table([one, two]).split("\n")
    assert len(lines) == 3
    heads = ["spec", "size", "head (chin-crown)", "eyes from bottom", "crown from top", "file", "what"]
    starts = [lines[0].index(h) for h in heads]
    assert starts == sorted(starts) and starts[0] == 0
    assert lines[1].startswith("b ") and lines[2].startswith("a-much-longer-id ")
    assert lines[1].index("30 mm") == starts[2] and lines[2].index("≥ 200 px") == starts[2]     # columns line up
    assert lines[1].index("10–240 KB") == starts[5] and lines[0][starts[1] - 2:starts[1]] == "  "
    assert all(line == line.rstrip() for line in lines[1:])


# every spec's head placement, against the catalogue file's own figures
ENTRIES = {e["id"]: e for e in json.loads(CATALOGUE.read_text(encoding="utf-8"))["specs"]}
STATED = {"head": "head_height", "eyes": "eyes_from_bottom", "top": "crown_from_top", "face_width": "face_width"}


def stated_px(name: str, rule: str):
    """A rule as the catalogue file states it (in the entry's own unit), turned into pixels of the photo's
    height — read from specs.json, not through the parsed spec."""
    if name == "custom":
        lo, hi = CUSTOM.head if rule == "head" else (None, None)
        h = 531
        return None if rule != "head" else (lo * h, hi * h)
    entry = ENTRIES[name]
    r = entry.get(STATED[rule])
    if r is None:
        return None
    px_per_unit = SPECS[name].size_px[1] / entry["size"][1]
    return tuple(None if v is None else v * px_per_unit for v in r)


def spec_of(name: str):
    return custom_spec(size_px=(413, 531)) if name == "custom" else SPECS[name]


@pytest.mark.parametrize("name", [*ENTRIES, "custom"])
def test_every_specs_head_target_lies_in_its_stated_range(name):
    """The head height a spec aims for (``head_ratio``, and the head the framing plans for a face) is inside
    the range the catalogue states for it; so is the crown's target below the top edge (``top_ratio``)."""
    from conftest import synthetic_face

    from idphoto.framing import plan_by_rules

    spec = spec_of(name)
    w, h = spec.size_px
    head = stated_px(name, "head")
    if head is not None:
        lo, hi = head
        assert lo - 0.5 <= spec.head_ratio * h <= hi + 0.5, (spec.head_ratio * h, head)
    top = stated_px(name, "top")
    if top is not None:
        lo, hi = top
        assert (lo is None or spec.top_ratio * h >= lo - 0.5) and (hi is None or spec.top_ratio * h <= hi + 0.5)
    else:
        assert 0 < spec.top_ratio * h < h - spec.head_ratio * h
    plan = plan_by_rules(synthetic_face(), 100.0, (w, h), spec)
    if head is not None:
        assert head[0] - 0.5 <= plan.head_px <= head[1] + 0.5, (plan.head_px, head)
    assert 0 <= plan.top_px and plan.top_px + plan.head_px <= h
    # a custom size (--size-px) keeps the spec's rules as fractions of the height
    bigger = custom_spec(size_px=(2 * w, 2 * h), base=spec)
    assert bigger.size_px == (2 * w, 2 * h) and bigger.head_ratio == pytest.approx(spec.head_ratio)
    for rule in STATED:
        r, r2 = spec.rule_px(rule), bigger.rule_px(rule)
        assert (r is None) == (r2 is None)
        if r is not None:
            assert all((a is None and b is None) or b == pytest.approx(2 * a) for a, b in zip(r, r2))


def test_the_custom_specs_head_range_holds_the_share_it_promises():
    import re

    share = int(re.search(r"head (\d+) %", CUSTOM.description).group(1)) / 100   # "head 60 % of the height"
    lo, hi = CUSTOM.head_range
    assert lo < share < hi and lo <= CUSTOM.head_ratio <= hi


def astronaut_portrait():
    from idphoto import load_image

    img = load_image(REPO / "examples" / "astronaut.jpg")
    alpha = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(alpha, (224, 125), (78, 95), 0, 0, 360, 1.0, -1)       # head with hair
    cv2.ellipse(alpha, (230, 512), (210, 330), 0, 180, 360, 1.0, -1)   # suit
    return img, alpha


@pytest.fixture(scope="module")
def portrait():
    from idphoto.face import detect_faces

    img, alpha = astronaut_portrait()
    return img, alpha, detect_faces(img)


@pytest.mark.parametrize("name", [*ENTRIES, "custom"])
def test_a_real_portrait_framed_for_every_spec_measures_inside_its_ranges(name, portrait):
    """The astronaut (a real photo) framed for each spec: on the finished JPEG, measured as the report measures
    it (landmarks found again on the output), the head height — and the eye line, top margin and face width
    where the spec has them — lie inside the ranges the catalogue states, within 2 px."""
    from idphoto import compose_id_photo
    from idphoto.compliance import check_photo
    from idphoto.output import encode_jpeg

    img, alpha, faces = portrait
    spec = spec_of(name)
    photo = compose_id_photo(img, alpha, img / 255.0, spec, faces=faces)
    assert photo.image.shape[:2] == spec.size_px[::-1] and photo.gave_way == []
    report = check_photo(photo.image, spec, encode_jpeg(photo.image, spec.dpi), photo.alpha)
    measured = {c.rule.split()[0]: c.value for c in report.checks}
    rules = {"head": "head", "eyes": "eye", "top": "top", "face_width": "face"}
    checked = 0
    for rule, word in rules.items():
        r = stated_px(name, rule)
        if r is None:
            continue
        value = measured[word]
        assert value is not None, (rule, report.lines())
        assert (r[0] is None or value >= r[0] - 2) and (r[1] is None or value <= r[1] + 2), (rule, value, r)
        checked += 1
    assert checked >= 1


# ------------------------------------------------------------------------------------ the catalogue's specs
@pytest.mark.parametrize("name,size", [
    ("1inch", (295, 413)), ("small-1inch", (260, 378)), ("2inch", (413, 579)), ("small-2inch", (413, 531)),
    ("icao", (413, 531)), ("passport", (413, 531)), ("schengen", (413, 531)), ("uk", (413, 531)),
    ("cn-passport", (390, 567)), ("us", (600, 600)),
])
def test_spec_sizes_at_300_dpi(name, size):
    assert get_spec(name).size_px == size and get_spec(name).dpi == 300


def test_custom_specs():
    assert custom_spec(size_px=(300, 400)).size_px == (300, 400)
    assert custom_spec(size_mm=(35, 45), dpi=600).size_px == (827, 1063)
    with pytest.raises(KeyError):
        get_spec("3inch")


def test_catalogue_validates_and_holds_the_required_specs():
    raw = json.loads(CATALOGUE.read_text(encoding="utf-8"))["specs"]
    specs, aliases = load_catalogue(CATALOGUE)
    assert len(specs) == len(raw) >= 40
    for e in raw:
        assert e["source"].strip() and e["background"] and e["format"] == "jpeg"
        assert any(e.get(k) for k in ("head_height", "face_width")), e["id"]  # something sets the scale
    sizes = {k: (s.size_px, s.dpi) for k, s in specs.items()}
    assert sizes["1inch"] == ((295, 413), 300) and sizes["small-1inch"] == ((260, 378), 300)
    assert sizes["large-1inch"] == ((390, 567), 300) and sizes["2inch"] == ((413, 579), 300)
    assert sizes["small-2inch"] == ((413, 531), 300)
    assert sizes["cn-id-card"] == ((358, 441), 350) and sizes["cn-social-security"] == ((358, 441), 350)
    assert sizes["cn-passport"] == ((390, 567), 300) and sizes["cn-hk-macau-permit"] == ((390, 567), 300)
    assert sizes["cn-chsi"][0] == (480, 640)
    assert sum(s.region == "China" and "exam" in s.description.lower() for s in specs.values()) >= 2
    for key in ("icao", "schengen", "us-passport", "us-visa", "uk-passport", "ca-passport", "in-evisa",
                "jp-passport", "kr-passport", "au-passport"):
        assert key in specs
    us = specs["us-passport"]
    assert us.rule_px("head") == pytest.approx((300, 412.5)) and us.rule_px("eyes") == pytest.approx((337.5, 412.5))
    assert get_spec("passport") == specs["icao"] and get_spec("US") == specs["us-passport"]


@pytest.mark.parametrize("change,field", [
    ({"size": [30, "40"]}, "size"),
    ({"unit": "cm"}, "unit"),
    ({"head_height": [30, 25]}, "head_height"),
    ({"head_height": [25, 50]}, "head_height"),      # taller than the photo
    ({"eyes_from_bottom": [10]}, "eyes_from_bottom"),
    ({"background": ["white"]}, "background"),
    ({"file_kb": [-1, 20]}, "file_kb"),
    ({"format": "png"}, "format"),
    ({"source": " "}, "source"),
    ({"dpi": 0}, "dpi"),
    ({"id": "My Card"}, "id"),
    ({"head_hieght": [25, 30]}, "head_hieght"),      # a typo is named, not ignored
])
def test_malformed_spec_names_the_bad_field(change, field):
    with pytest.raises(SpecError, match=f"field '{field}'") as info:
        parse_entry({**USER_SPEC, **change}, "my.json: spec #1")
    assert "\n" not in str(info.value)
    spec, _ = parse_entry(USER_SPEC, "ok")
    assert spec.size_px == (354, 472) and spec.rule_px("head") == pytest.approx((25 / 40 * 472, 30 / 40 * 472))

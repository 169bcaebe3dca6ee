"""The web app and HTTP API (app.py, idphoto/web/, idphoto/service.py, idphoto/options.py).

API tests go through FastAPI's TestClient with a stand-in TNet that sees a known person (test_infer's
KnownTNet), so the matting and framing are real; the browser test drives headless Chromium against a
real uvicorn server. No test writes the uploaded photos anywhere, and none needs the network.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from idphoto import cli as infer  # the command behind infer.py
from conftest import REPO
from idphoto.options import PHOTO, PROCESS, IDPhotoOptions, OptionsError, api_names
from idphoto.web import ServerConfig, create_app
from conftest import ASTRONAUT, KnownTNet, use_known_tnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

with warnings.catch_warnings():  # starlette's notice about its future HTTP client, not about this project
    warnings.filterwarnings("ignore", message=".*httpx.*")
    from fastapi.testclient import TestClient

BLUE, RED = (0x43, 0x8E, 0xDB), (0xFF, 0x00, 0x00)  # RGB


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, bytes]:
    """Small uploads: a portrait with a face (240×240 JPEG), and the kinds of bad input."""
    portrait = Image.open(ASTRONAUT).convert("RGB").resize((240, 240))
    buf = io.BytesIO()
    portrait.save(buf, "JPEG", quality=92)
    face = buf.getvalue()
    gray = io.BytesIO()
    Image.fromarray(np.full((200, 160, 3), 180, np.uint8)).save(gray, "PNG")
    return {"face": face, "text": b"this is not an image", "truncated": face[: len(face) // 2],
            "no_face": gray.getvalue()}


def client_for(model=None, **config) -> TestClient:
    return TestClient(create_app(model or KnownTNet(), ServerConfig(**config)))


@pytest.fixture(scope="module")
def client():
    return client_for(workers=1)


def post(client, photo: bytes, endpoint="/api/idphoto", json_answer=False, name="photo.jpg", **fields):
    headers = {"Accept": "application/json"} if json_answer else {}
    return client.post(endpoint, files={"photo": (name, photo, "application/octet-stream")},
                       data={k: str(v) for k, v in fields.items()}, headers=headers)


def rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def assert_one_line_error(r, status: int, words: str):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in r.text
    assert words in body["error"], body["error"]
    return body["error"]


# ------------------------------------------------------------------------------------------- options
def parser_table(parser) -> dict:
    return {a.dest: (tuple(a.option_strings), a.default, tuple(a.choices or ()), a.nargs, a.type, a.help, a.metavar)
            for a in parser._actions if a.dest != "help"}


def test_infer_flags_are_the_options_and_its_own():
    """infer.py's flags are IDPhotoOptions' fields (and --list-specs) plus its own file/batch/print flags; app.py
    gets every option flag too, evaluate.py the model group: one definition each, same help and defaults."""
    ours = argparse.ArgumentParser()
    IDPhotoOptions.add_arguments(ours)
    ours_t = parser_table(ours)
    fields = {f.name for f in dataclasses.fields(IDPhotoOptions)}
    assert set(ours_t) == fields | {"list_specs"}
    infer_t = parser_table(infer.build_parser())
    assert set(infer_t) == set(ours_t) | set(infer.CLI_ONLY)
    import app
    import evaluate

    app_t, evaluate_t = parser_table(app.build_parser()), parser_table(evaluate.build_parser())
    model = {f.name for f in IDPhotoOptions.options(groups=("model",))}
    for dest, spec in ours_t.items():
        assert infer_t[dest] == spec and app_t[dest] == spec, dest
        if dest in model:
            assert evaluate_t[dest] == spec, dest
    for f in dataclasses.fields(IDPhotoOptions):  # the parser's default is the dataclass's
        default = ours_t[f.name][1]
        assert (tuple(default) if isinstance(default, list) else default) == f.default, f.name
        assert f.metadata["help"].strip(), f.name


def sample_value(f) -> str:
    """A non-default value of an option, as text (the form's spelling; a switch is 'true')."""
    m = f.metadata
    if m["choices"]:
        return next(c for c in reversed(m["choices"]) if c != f.default)
    return {"integer": "64", "number": "12.5", "string": "cn-passport", "boolean": "true", "int_pair": "300 400",
            "number_pair": "35 45.5"}[m["kind"]]


def test_every_infer_option_is_accepted_by_the_api(client):
    """Each per-photo option of infer.py is a form field of POST /api/idphoto, parsed to the same value as on the
    command line; each process option is an app.py flag, refused per request. So they can never drift apart."""
    import app

    fields = client.get("/openapi.json").json()["paths"]["/api/idphoto"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]
    photo_options = {f.name: f for f in IDPhotoOptions.options(PHOTO)}
    assert set(fields) - {"photo"} == set(photo_options)
    parser = infer.build_parser()
    for name, f in photo_options.items():
        text = sample_value(f)
        argv = [IDPhotoOptions.flag(name)] + ([] if f.metadata["kind"] == "boolean" else text.split())
        cli = getattr(IDPhotoOptions.from_args(parser.parse_args(["--image", "x.jpg", *argv])), name)
        api = getattr(IDPhotoOptions.from_form({name: text}), name)
        assert cli == api != f.default, name
        assert fields[name]["description"] and "--" not in fields[name]["description"], name
    app_flags = parser_table(app.build_parser())
    for f in IDPhotoOptions.options(PROCESS):
        assert f.name in app_flags
        with pytest.raises(OptionsError, match="set when the server starts"):
            IDPhotoOptions.from_form({f.name: "x"})


@pytest.mark.parametrize("argv", [
    [], ["--spec", "icao", "--bg", "blue"], ["--spec", "1inch", "--size-px", "300", "400"],
    ["--spec", "us-passport", "--size-mm", "40", "50", "--dpi", "600"], ["--spec", "2inch", "--dpi", "350"],
    ["--spec", "none", "--bg", "#F0F0F0"], ["--spec", "passport"], ["--bg", "keep", "--bg-style", "radial"],
    ["--dpi", "0"], ["--input-size", "100"], ["--refine-kernel", "-1"], ["--quality", "96"], ["--max-kb", "0"],
    ["--bg", "pink"], ["--size-px", "0", "10"], ["--size-px", "20000", "10"], ["--spec", "none", "--size-px", "9", "9"],
    ["--spec", "nope"], ["--size-mm", "35", "45", "--dpi", "72"], ["--size-px", "120", "160", "--layout", "6inch"],
])
def test_cli_and_api_judge_options_alike(client, photos, argv):
    """The same options through infer.py's parser and through the API's form: the same spec and colour, or the same
    one-line message (the API names fields without dashes)."""
    parser = infer.build_parser()
    messages = []

    def error(msg):
        messages.append(msg)
        raise SystemExit(2)

    parser.error = error
    args = parser.parse_args(["--image", "x.jpg", *argv])
    try:
        expected = infer.resolve_options(args, parser)
    except SystemExit:
        expected = None
    form, i = {}, 0
    while i < len(argv):
        n = 3 if argv[i] in ("--size-px", "--size-mm") else 2
        form[argv[i][2:]] = " ".join(argv[i + 1:i + n])
        i += n
    opts = IDPhotoOptions.from_form(form)
    if expected is None:
        with pytest.raises(OptionsError) as exc:
            opts.validate()
        assert str(exc.value) == messages[0]
        r = post(client, photos["face"], **form)
        assert_one_line_error(r, 400, api_names(messages[0]))
    else:
        resolved = opts.validate()
        assert (resolved.spec, resolved.bg) == expected


def test_options_from_form():
    opts = IDPhotoOptions.from_form({"spec": "icao", "size-px": "300x400", "max_kb": "200", "no_face_ok": "on",
                                     "layout": "", "dpi": " 350 "})
    assert (opts.spec, opts.size_px, opts.max_kb, opts.no_face_ok, opts.layout, opts.dpi) == \
        ("icao", (300, 400), 200.0, True, None, 350)
    assert IDPhotoOptions.from_form({"size_mm": "35 45.5"}).size_mm == (35.0, 45.5)
    for form, words in [({"dpi": "many"}, "--dpi: expected a whole number"), ({"sizepx": "1"}, "unknown option"),
                        ({"checkpoint": "/etc/passwd"}, "set when the server starts"),
                        ({"size_px": "300"}, "expected two whole numbers"),
                        ({"bg_style": "stripes"}, "--bg-style: invalid choice 'stripes'"), ({"no_face_ok": "maybe"}, "true or false")]:
        with pytest.raises(OptionsError, match=words):
            IDPhotoOptions.from_form(form)


# ------------------------------------------------------------------------------------------------ API
def test_idphoto_jpeg(client, photos):
    r = post(client, photos["face"], spec="2inch", bg="blue")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "JPEG" and im.size == (413, 579)
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    photo = rgb(r.content)
    for corner in (photo[:8, :8], photo[:8, -8:]):  # beside the head: the chosen colour
        assert np.abs(corner.reshape(-1, 3) - BLUE).max() <= 6
    assert np.abs(photo[int(0.4 * 579), 413 // 2] - BLUE).max() > 60  # the face, not background
    assert "trimap;dur=" in r.headers["server-timing"] and "check;dur=" in r.headers["server-timing"]
    assert r.headers["x-compliance"] in ("passed", "failed")


def test_idphoto_json_has_the_matte_images_only_when_asked(client, photos):
    r = post(client, photos["face"], json_answer=True, spec="1inch")
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert images["idphoto"] and images["trimap"] is None and images["alpha"] is None and images["cutout"] is None


def test_idphoto_json_has_every_image(client, photos):
    r = post(client, photos["face"], json_answer=True, spec="1inch", bg="red", layout="6inch", max_kb=30,
             matte_files="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["dpi"], body["spec"]) == (295, 413, 300, "1inch")
    assert body["kb"] <= 30 and body["copies"] > 0 and body["input"] == {"width": 240, "height": 240}
    assert set(body["timings"]) >= {"queue", "decode", "trimap", "alpha", "foreground", "idphoto", "encode", "check",
                                    "total"}
    report = body["report"]  # measured on the final JPEG, as infer.py's <name>_report.json
    assert report["spec"] == "1inch" and isinstance(report["passed"], bool)
    rules = {c["rule"]: c for c in report["checks"]}
    assert {"head height (chin to crown)", "DPI", "pixel size"} <= set(rules)
    assert rules["pixel size"]["passed"] is True and rules["DPI"]["passed"] is True
    assert body["images"]["idphoto_hd"] is None          # not asked for (and a 240-px photo could not give one)
    images = {k: base64.b64decode(v) for k, v in body["images"].items() if v is not None}
    idphoto = rgb(images["idphoto"])
    assert idphoto.shape == (413, 295, 3) and len(images["idphoto"]) <= 30 * 1024
    assert np.abs(idphoto[:8, :8].reshape(-1, 3) - RED).max() <= 8
    trimap = cv2.imdecode(np.frombuffer(images["trimap"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert trimap.shape == (240, 240) and set(np.unique(trimap)) == {0, 128, 255}
    cutout = cv2.imdecode(np.frombuffer(images["cutout"], np.uint8), cv2.IMREAD_UNCHANGED)
    alpha = cv2.imdecode(np.frombuffer(images["alpha"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert cutout.shape == (240, 240, 4) and np.array_equal(cutout[..., 3], alpha)
    with Image.open(io.BytesIO(images["sheet"])) as sheet:
        assert sorted(sheet.size) == [1200, 1800]


def test_matte_and_layout(client, photos):
    r = post(client, photos["face"], "/api/matte", matting="cf")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.mode == "RGBA" and im.size == (240, 240)
        a = np.asarray(im)[..., 3]
    assert a.min() == 0 and a.max() == 255
    idphoto = post(client, photos["face"], spec="1inch").content
    r = post(client, idphoto, "/api/layout", layout="6inch")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
    assert r.headers["x-dpi"] == "300" and int(r.headers["x-copies"]) >= 8
    with Image.open(io.BytesIO(r.content)) as im:
        assert sorted(im.size) == [1200, 1800]
    assert_one_line_error(post(client, idphoto, "/api/layout", layout="poster"), 400, "layout")


def test_layout_route_has_the_limits_of_the_cli(client, photos):
    """/api/layout refuses what infer.py --layout refuses: a photo under 15 mm at the DPI asked for, a sheet
    over 40 megapixels, a DPI outside 72–1200."""
    idphoto = post(client, photos["face"], spec="1inch").content          # 295×413 px at 300 DPI: 25 mm wide
    tiny = assert_one_line_error(post(client, idphoto, "/api/layout", layout="6inch", dpi="1200"), 422, "layout")
    assert "6.2 mm on its short side" in tiny and "at least 15 mm" in tiny
    big = np.full((2400, 1800, 3), 200, np.uint8)                           # 38 × 51 mm at 1200 DPI
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", dpi=(1200, 1200))
    huge = assert_one_line_error(post(client, buf.getvalue(), "/api/layout", layout="a4"), 422, "layout")
    assert "the a4 sheet at 1200 DPI would be 139 megapixels" in huge
    assert_one_line_error(post(client, idphoto, "/api/layout", layout="6inch", dpi="50"), 400, "72 to 1200")


def test_specs_healthz_and_docs(client):
    specs = client.get("/api/specs").json()
    by_name = {s["name"]: s for s in specs["specs"]}
    assert (by_name["1inch"]["width_px"], by_name["1inch"]["height_px"]) == (295, 413)
    assert by_name["us-passport"]["width_px"] == by_name["us-passport"]["height_px"] == 600
    assert by_name["icao"]["background"] and len(specs["specs"]) >= 50
    assert specs["colors"]["blue"] == "#438EDB" and set(specs["layouts"]) == {"6inch", "5inch", "a4"}
    assert specs["bg_styles"] == ["solid", "gradient", "radial"] and "haar" in specs["face_detectors"]
    assert specs["defaults"]["spec"] == "1inch" and specs["defaults"]["dpi"] is None
    assert "checkpoint" not in specs["defaults"] and "spec_file" not in specs["defaults"]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 1 and health["queue"] == 2
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/idphoto", "/api/matte", "/api/layout", "/api/specs", "/healthz"} <= set(paths)
    fields = paths["/api/idphoto"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"photo", "spec", "size_px", "bg", "max_kb", "layout", "no_face_ok"} <= set(fields)


def test_spec_file_of_the_server_is_offered_to_requests(tmp_path, monkeypatch, capsys):
    """app.py --spec-file: the user's specs are listed by /api/specs and accepted per request (as by infer.py);
    app.py --list-specs prints them and exits before loading anything."""
    import app
    import idphoto.specs as specs_mod

    monkeypatch.setattr(specs_mod, "SPECS", dict(specs_mod.SPECS))  # the catalogue is process-wide
    monkeypatch.setattr(specs_mod, "ALIASES", dict(specs_mod.ALIASES))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"id": "my-card", "unit": "mm", "size": [30, 40], "dpi": 300,
                                "head_height": [25, 30], "source": "my club's rules"}))
    assert app.main(["--spec-file", str(mine), "--list-specs"]) == 0
    assert "my-card" in capsys.readouterr().out
    c = client_for(workers=1)
    assert "my-card" in {s["name"] for s in c.get("/api/specs").json()["specs"]}
    assert IDPhotoOptions.from_form({"spec": "my-card"}).validate().spec.size_px == (354, 472)
    with pytest.raises(SystemExit):
        app.main(["--spec-file", str(tmp_path / "absent.json")])
    assert "--spec-file" in capsys.readouterr().err


def test_page_and_docs_load_nothing_from_elsewhere(client):
    import re

    for path in ("/", "/docs", "/static/app.js", "/static/app.css"):
        r = client.get(path)
        assert r.status_code == 200, path
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)|url\(([^)]+)\)|fetch\(\s*["'`]([^"'`]+)""", r.text)
        for url in (u for groups in urls for u in groups if u):
            assert not re.match(r"(https?:)?//", url.strip("'\"")), f"{path} loads {url}"
    html = client.get("/").text
    for element in ('id="photo-input"', 'id="spec"', 'id="max-kb"', 'id="layout"', 'id="dl-idphoto"',
                    'id="dl-cutout"', 'id="dl-sheet"', 'id="report"', 'id="timings"', 'id="samples"',
                    'id="head-size"', 'id="top-margin"', 'id="sheet-figure"'):
        assert element in html


def test_samples_are_the_listed_files_only(client):
    listed = client.get("/api/specs").json()["samples"]
    assert [s["name"] for s in listed] == ["astronaut.jpg", "astronaut_tilted.jpg", "astronaut_cut_at_chin.jpg"]
    for s in listed:
        r = client.get(s["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size[0] == 512
    for name in ("astronaut_alpha.png", "README.md", "nothing.jpg"):   # in examples/, or nowhere: not listed
        assert_one_line_error(client.get(f"/samples/{name}"), 404, "no sample")
    r = client.get("/samples/..%2Fapp.py")
    assert r.status_code == 404 and b"import" not in r.content


def test_head_size_moves_the_head_within_the_spec_and_the_report_passes(client, photos):
    """The API's head_size (the page's slider, infer.py's --head-size): 0 and 100 frame a smaller and a larger
    head than the default, every one inside 1inch's head rule."""
    heads = {}
    for size in ("", "0", "100"):
        r = post(client, photos["face"], json_answer=True, spec="1inch", head_size=size)
        assert r.status_code == 200, r.text
        row = next(c for c in r.json()["report"]["checks"] if c["rule"] == "head height (chin to crown)")
        assert row["passed"] is True, row
        heads[size] = row["value"]
    assert heads["0"] < heads[""] - 3 < heads["100"] - 6, heads
    assert_one_line_error(post(client, photos["face"], spec="cn-id-card", head_size="50"), 400,
                          "head_size: cn-id-card sets no range for the head height")


@pytest.mark.parametrize("photo,fields,status,words", [
    ("text", {}, 415, "not an image"),
    ("truncated", {}, 422, "truncated"),
    ("no_face", {"spec": "1inch"}, 422, "no face"),
    ("face", {"max_kb": "0.2"}, 422, "max_kb 0.2: even JPEG quality 1"),
    ("face", {"spec": "7inch"}, 400, "spec: unknown standard '7inch'; see GET /api/specs"),
    ("face", {"bg_style": "stripes"}, 400, "bg_style: invalid choice 'stripes'"),
    ("face", {"face_detector": "mtcnn"}, 400, "face_detector: invalid choice"),
    ("face", {"dpi": "30"}, 400, "dpi must be between 72 and 1200"),
    ("face", {"no_level": "maybe"}, 400, "no_level: expected true or false"),
    ("face", {"bg": "pink"}, 400, "bg: not a colour"),
    ("face", {"quality": "high"}, 400, "quality: expected a whole number"),
    ("face", {"colour": "blue"}, 400, "unknown option 'colour'"),
    ("face", {"checkpoint": "x.pth"}, 400, "set when the server starts"),
    ("face", {"size_px": "300x400", "size_mm": "35x45"}, 400, "not allowed with"),
    ("face", {"max_side": "0"}, 400, "max_side"),
])
def test_bad_input_is_a_4xx_in_one_line(client, photos, photo, fields, status, words):
    assert_one_line_error(post(client, photos[photo], **fields), status, words)


def test_strict_and_false_faces_are_422(client, photos, monkeypatch):
    """--strict's failed rules, and a face detection far narrower than the head (a patch of cheek), are one-line
    422s; without strict the same photo is made and its report says what failed."""
    import idphoto.maker
    from idphoto.face import FaceBox

    r = post(client, photos["face"], spec="icao", bg="blue", strict="true")
    assert_one_line_error(r, 422, "strict: ")
    assert "rule(s) of icao missed" in r.json()["error"] and "background colour" in r.json()["error"]
    r = post(client, photos["face"], json_answer=True, spec="icao", bg="blue")
    assert r.status_code == 200 and r.json()["report"]["passed"] is False
    colour = next(c for c in r.json()["report"]["checks"] if c["rule"] == "background colour")
    assert colour["passed"] is False
    monkeypatch.setattr(idphoto.maker, "detect_faces", lambda image, method="auto": [FaceBox(99, 45, 10, 10)])
    assert_one_line_error(post(client, photos["face"], spec="1inch"), 422, "no face found; rejected a 10×10 px")


def test_no_person_and_no_photo(photos):
    c = client_for(KnownTNet(person=False), workers=1)
    assert_one_line_error(post(c, photos["face"]), 422, "no person")
    assert_one_line_error(post(c, photos["face"], "/api/matte"), 422, "no person")
    r = c.post("/api/idphoto", files={"picture": ("a.jpg", photos["face"], "image/jpeg")})
    assert_one_line_error(r, 400, "send the image as 'photo'")
    assert_one_line_error(c.post("/api/idphoto", data={"spec": "1inch"}), 415, "multipart/form-data")
    assert_one_line_error(c.get("/api/nothing"), 404, "Not Found")
    assert_one_line_error(c.get("/api/idphoto"), 405, "Method Not Allowed")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width×height pixels but holds almost no data: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_size_limits(photos):
    c = client_for(workers=1, max_upload_mb=0.05, max_pixels=200 * 200)
    big = os.urandom(80 * 1024)
    assert_one_line_error(post(c, big), 413, "request too large")
    assert_one_line_error(post(c, photos["face"]), 413, "240×240 px is over the limit of 0.04 megapixels")
    c = client_for(workers=1)  # default limits: 15 MB, 40 megapixels
    assert_one_line_error(post(c, png_header_only(8000, 8000)), 413, "8000×8000 px is over the limit of 40 megapixels")
    assert_one_line_error(post(c, png_header_only(30000, 30000)), 413, "over the limit of 40 megapixels")
    assert_one_line_error(post(c, b"\0" * (16 * 2**20)), 413, "the limit is 15 MB")


class BlockingTNet(KnownTNet):
    """KnownTNet that waits for ``release`` before answering: a photo that takes as long as the test wants."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def forward(self, x):
        self.release.wait(30)
        return super().forward(x)


def wait_for(client, **counts):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = client.get("/healthz").json()
        if all(stats[k] == v for k, v in counts.items()):
            return stats
        time.sleep(0.02)
    raise AssertionError(f"pool never reached {counts}: {stats}")


def test_full_pool_and_queue_answer_503(photos):
    model = BlockingTNet()
    c = client_for(model, workers=1, queue=1)
    answers = [None, None]

    def send(i):
        answers[i] = post(c, photos["face"], spec="1inch")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    try:
        threads[0].start()
        wait_for(c, running=1, waiting=0)
        threads[1].start()
        wait_for(c, running=1, waiting=1)
        t = time.perf_counter()
        for _ in range(3):  # beyond the worker and the queue: refused at once, not piled up
            r = post(c, photos["face"])
            assert_one_line_error(r, 503, "busy")
            assert int(r.headers["retry-after"]) >= 1
        assert time.perf_counter() - t < 10
        assert c.get("/healthz").json()["rejected"] == 3
    finally:
        model.release.set()
        for th in threads:
            th.join(60)
    assert [a.status_code for a in answers] == [200, 200]
    assert rgb(answers[0].content).shape == (413, 295, 3)
    r = post(c, photos["face"])  # and the pool is free again
    assert r.status_code == 200


def test_request_timeout_is_504(photos):
    model = BlockingTNet()
    c = client_for(model, workers=1, timeout_s=0.5)
    try:
        t = time.perf_counter()
        assert_one_line_error(post(c, photos["face"]), 504, "longer than the server's limit of 0.5 s")
        assert time.perf_counter() - t < 10
    finally:
        model.release.set()
    wait_for(c, running=0, waiting=0, timed_out=1)  # the late photo finished and gave its slot back
    c.app.state.config.timeout_s = 60  # (0.5 s is too short for any photo on a busy machine)
    assert_one_line_error(post(c, photos["text"]), 415, "not an image")  # so the pool takes work again


def test_uploads_never_touch_the_disk(photos, tmp_path, monkeypatch, caplog):
    """An upload larger than the multipart parser's 1 MB spool threshold stays in memory (no temporary file
    is made), nothing of it is logged; --save-dir, and only it, keeps the upload and the results."""
    import tempfile

    made = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        real = getattr(tempfile, name)
        monkeypatch.setattr(tempfile, name, lambda *a, _real=real, _name=name, **k: made.append(_name) or _real(*a, **k))
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    big = buf.getvalue()
    assert len(big) > 1.5 * 2**20
    c = client_for(workers=1)
    with caplog.at_level("DEBUG"):
        r = post(c, big, name="张三 passport.png", spec="7inch")  # parsed in full, then refused
    assert_one_line_error(r, 400, "unknown standard")
    assert made == []
    assert "张三" not in caplog.text
    monkeypatch.undo()
    saved = tmp_path / "saved"
    c = client_for(workers=1, save_dir=saved)
    assert post(c, photos["face"], layout="6inch").status_code == 200
    names = sorted(p.name.split("_", 1)[1] for p in saved.iterdir())
    assert names == ["idphoto_idphoto.jpg", "idphoto_input", "idphoto_sheet.jpg"]
    assert next(saved.glob("*_input")).read_bytes() == photos["face"]


# ------------------------------------------------------------------------------------------ CLI = API
@pytest.mark.parametrize("options,sheet", [
    ({"spec": "icao", "bg": "#336699", "max_kb": "25", "layout": "5inch", "refine_kernel": "6", "matting": "cf",
      "tta": "flip", "size_mm": "33 48", "dpi": "320", "matte_files": "true"}, "5inch"),
    ({"spec": "cn-passport", "bg": "blue", "bg_style": "gradient", "no_level": "true", "face_detector": "haar",
      "quality": "90", "layout": "6inch"}, "6inch"),
    ({"spec": "2inch", "bg": "keep", "input_size": "128", "max_side": "200", "strict": "false"}, None),
])
def test_cli_and_api_give_byte_identical_files(capsys, checkpoint, monkeypatch, tmp_path, photos, options, sheet):
    """infer.py and the API, same photo and options, same stand-in model: the same bytes, file for file, and the
    same compliance report."""
    import json

    (tmp_path / "face.jpg").write_bytes(photos["face"])
    use_known_tnet(monkeypatch)
    argv = ["--image", tmp_path / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path / "cli",
            "--threads", "1"]
    kinds = {f.name: f.metadata["kind"] for f in dataclasses.fields(IDPhotoOptions)}
    for key, value in options.items():
        if kinds[key] != "boolean":
            argv += [IDPhotoOptions.flag(key), *value.split()]
        elif value == "true":  # a switch on the command line
            argv.append(IDPhotoOptions.flag(key))
    assert infer.main([str(a) for a in argv]) == 0, capsys.readouterr().err
    r = post(client_for(workers=1), photos["face"], json_answer=True, **options)
    assert r.status_code == 200, r.text
    images = {k: base64.b64decode(v) for k, v in r.json()["images"].items() if v}
    cli = tmp_path / "cli"
    matte = [("cutout", "face_cutout.png"), ("trimap", "face_trimap.png"), ("alpha", "face_alpha.png")]
    files = [("idphoto", "face_idphoto.jpg")] + ([("sheet", f"face_sheet_{sheet}.jpg")] if sheet else [])
    if options.get("matte_files") == "true":
        files += matte
    else:  # neither made them
        assert not any(kind in images or (cli / name).exists() for kind, name in matte)
    for kind, name in files:
        assert images[kind] == (cli / name).read_bytes(), kind
    assert ("sheet" in images) == bool(sheet)
    assert r.json()["report"] == json.loads((cli / "face_report.json").read_text(encoding="utf-8"))


def test_cli_process_and_api_agree_with_a_real_checkpoint(tmp_path, photos):
    """`python infer.py` in its own process, with a real (untrained, all-person) TNet checkpoint file, and the
    API with the same file loaded: the same ID photo bytes."""
    sys.path.insert(0, str(REPO / "bench"))
    from common import random_checkpoint

    from models import load_tnet

    ckpt = random_checkpoint(tmp_path / "tnet.pth")
    (tmp_path / "face.jpg").write_bytes(photos["face"])
    run = subprocess.run([sys.executable, str(REPO / "infer.py"), "--image", str(tmp_path / "face.jpg"),
                          "--checkpoint", str(ckpt), "--out-dir", str(tmp_path / "cli"), "--threads", "1",
                          "--input-size", "128", "--spec", "us", "--bg", "red", "--quality", "80"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    r = post(client_for(load_tnet(ckpt), workers=1), photos["face"], input_size=128, spec="us", bg="red", quality=80)
    assert r.status_code == 200, r.text
    assert r.content == (tmp_path / "cli" / "face_idphoto.jpg").read_bytes()


# --------------------------------------------------------------------------------------------- app.py
def test_app_usage_mistakes_are_one_line(capsys):
    import app

    with pytest.raises(SystemExit) as exc:
        app.main(["--spec", "9inch"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "--spec: unknown standard '9inch'" in err
    with socket.socket() as taken:  # a port in use: one line, exit 1, before any model is loaded
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert app.main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == f"app.py: error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


def test_app_entry_point(checkpoint):
    """`python app.py` loads the model, prints its URL and answers; the page and the API are there."""
    import urllib.request

    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", "0", "--checkpoint", str(checkpoint),
                             "--workers", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("ID photo app: http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        url = line.split()[3].rstrip("/")
        with urllib.request.urlopen(url + "/healthz", timeout=60) as resp:
            health = json.load(resp)
        assert health["status"] == "ok" and health["workers"] == 1 and str(checkpoint) in health["model"]
        with urllib.request.urlopen(url + "/", timeout=60) as resp:
            assert b'id="photo-input"' in resp.read()
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode in (0, -15), proc.stderr.read()  # uvicorn shuts down, then re-raises the SIGTERM


# --------------------------------------------------------------------------------------------- browser
@contextmanager
def live_server(app):
    """The app under a real uvicorn server on a free local port, in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def chromium():
    """Debian's chromium and chromium-driver (what .ci/run installs), else skip."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    return webdriver, Service, browser, driver


def test_page_in_a_real_browser(tmp_path):
    """Headless Chromium opens the page, uploads the astronaut, picks 2inch on blue and makes the photo: the
    ID photo appears at 413×579 px with a blue background, with the downloads, the stage timings and the
    compliance report."""
    webdriver, Service, browser, driver_path = chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1500", "--lang=en-US",
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    with live_server(create_app(KnownTNet(), ServerConfig(workers=1))) as url:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.set_page_load_timeout(60)
            driver.get(url + "/")
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#spec option[value='2inch']"))
            assert driver.find_element(By.ID, "guide").is_displayed()          # the right half guides first
            driver.find_element(By.ID, "photo-input").send_keys(str(ASTRONAUT))
            Select(driver.find_element(By.ID, "spec")).select_by_value("2inch")
            driver.find_element(By.ID, "bg-blue").click()
            Select(driver.find_element(By.ID, "layout")).select_by_value("6inch")

            def make():
                driver.execute_script("document.getElementById('out-idphoto').removeAttribute('src')")
                driver.find_element(By.ID, "make").click()
                wait.until(lambda d: d.execute_script(
                    "const i = document.getElementById('out-idphoto'); return i.complete && i.naturalWidth > 0")
                    or "error" in d.find_element(By.ID, "status").get_attribute("class"))

            make()  # by default only the ID photo: the matte images are neither made nor shown
            assert driver.find_element(By.ID, "out-idphoto").is_displayed()
            assert not driver.find_element(By.ID, "out-trimap").is_displayed()
            assert not driver.find_element(By.ID, "dl-cutout").is_displayed()
            driver.find_element(By.CSS_SELECTOR, "#matte-files").find_element(By.XPATH, "ancestor::details").click()
            driver.find_element(By.ID, "matte-files").click()
            make()
            assert "error" not in driver.find_element(By.ID, "status").get_attribute("class"), \
                driver.find_element(By.ID, "status").text
            assert not driver.find_element(By.ID, "guide").is_displayed()
            size = driver.execute_script(
                "const i = document.getElementById('out-idphoto'); return [i.naturalWidth, i.naturalHeight]")
            assert size == [413, 579]
            corner = driver.execute_script("""
                const i = document.getElementById('out-idphoto'), c = document.createElement('canvas');
                c.width = i.naturalWidth; c.height = i.naturalHeight;
                const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                return Array.from(g.getImageData(2, 2, 1, 1).data.slice(0, 3));""")
            assert max(abs(a - b) for a, b in zip(corner, BLUE)) <= 8, corner
            for kind, mime in (("idphoto", "image/jpeg"), ("cutout", "image/png"), ("sheet", "image/jpeg")):
                link = driver.find_element(By.ID, f"dl-{kind}")
                assert link.is_displayed() and link.get_attribute("href").startswith(f"data:{mime};base64,")
            for kind in ("input", "trimap", "alpha", "cutout"):
                assert driver.execute_script(f"return document.getElementById('out-{kind}').naturalWidth") == 512
            rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in
                    driver.find_elements(By.CSS_SELECTOR, "#report tbody tr")}
            assert driver.find_element(By.ID, "report").is_displayed()
            assert {"head height (chin to crown)", "pixel size", "DPI"} <= set(rows)
            assert "413×579" in rows["pixel size"].text and "pass" in rows["pixel size"].get_attribute("class")
            assert "2inch" in driver.find_element(By.ID, "report-verdict").text
            timings = driver.find_element(By.ID, "timings").text
            assert "Trimap" in timings and "Compliance check" in timings
            styles = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#bg-style option")]
            assert styles == ["solid", "gradient", "radial"]
            if driver.execute_script("return CJK"):   # the browser has a Chinese font: Chinese labels on request
                driver.find_element(By.ID, "lang").click()
                assert driver.find_element(By.ID, "make").text == "生成证件照"
                driver.find_element(By.ID, "lang").click()
            else:   # none (CI's Chromium): English only, and no label that would show as boxes
                assert not driver.find_element(By.ID, "lang").is_displayed()
                labels = " ".join(o.text for o in driver.find_elements(By.CSS_SELECTOR, "#spec option"))
                assert "1inch · 1 inch" in labels and not re.search("[\u4e00-\u9fff]", labels)
            shot = os.environ.get("APP_SCREENSHOT")  # a picture of the page with every matte image shown
            driver.save_screenshot(shot or str(tmp_path / "page.png"))
            assert (Path(shot) if shot else tmp_path / "page.png").stat().st_size > 10_000
            # a photo that can't make an ID photo: the reason shows where the photo would have been
            gray = tmp_path / "gray.png"
            Image.fromarray(np.full((200, 160, 3), 180, np.uint8)).save(gray)
            driver.find_element(By.ID, "photo-input").send_keys(str(gray))
            driver.find_element(By.ID, "make").click()
            wait.until(lambda d: d.find_element(By.ID, "refusal").is_displayed())
            refusal = driver.find_element(By.ID, "refusal").text
            assert refusal.startswith("No ID photo made from this photo:") and "no face found" in refusal, refusal
            assert not driver.find_element(By.ID, "results").is_displayed()
            driver.save_screenshot(str(tmp_path / "refused.png"))
            if os.environ.get("APP_REFUSAL_SCREENSHOT"):
                driver.save_screenshot(os.environ["APP_REFUSAL_SCREENSHOT"])
            logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "422" not in e["message"]]
            assert logs == [], logs
        finally:
            driver.quit()


def test_page_samples_sliders_sheet_preview_and_downloads(tmp_path):
    """In a 1280×900 window: a sample photo is tried without a file of one's own; the head-size slider makes a
    larger head within the spec's range (the report still passes it); the print sheet shows before it is
    downloaded; both downloads save real files; a refused sample's reason shows within the window."""
    webdriver, Service, browser, driver_path = chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--lang=en-US", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    from idphoto.runner import open_trimap_model

    # the shipped model (its OpenCV export): the slider's effect is measured on a real matte, and the README's
    # picture of the page is this test's screenshot
    with live_server(create_app(open_trimap_model(None, "cpu", 1), ServerConfig(workers=1))) as url:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            driver.set_page_load_timeout(60)
            driver.get(url + "/")
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#samples button[data-sample]"))
            samples = {b.get_attribute("data-sample"): b for b in driver.find_elements(By.CSS_SELECTOR, "#samples button")}
            assert {"astronaut.jpg", "astronaut_cut_at_chin.jpg"} <= set(samples)
            samples["astronaut.jpg"].click()
            wait.until(lambda d: "astronaut.jpg" in d.find_element(By.ID, "file-name").text)
            Select(driver.find_element(By.ID, "spec")).select_by_value("1inch")
            Select(driver.find_element(By.ID, "layout")).select_by_value("6inch")
            out = driver.find_element(By.ID, "head-size-out")
            assert out.text.startswith("auto (55.7 %–67.1 %")                  # the spec's range, before a move

            def make():
                driver.execute_script("document.getElementById('out-idphoto').removeAttribute('src')")
                driver.find_element(By.ID, "make").click()
                wait.until(lambda d: d.execute_script(
                    "const i = document.getElementById('out-idphoto'); return i.complete && i.naturalWidth > 0")
                    or d.find_element(By.ID, "refusal").is_displayed())
                rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in
                        driver.find_elements(By.CSS_SELECTOR, "#report tbody tr")}
                head = rows["head height (chin to crown)"]
                assert "pass" in head.get_attribute("class"), head.text
                return float(head.find_elements(By.TAG_NAME, "td")[1].text.split()[0])

            auto = make()
            sheet = driver.find_element(By.ID, "out-sheet")               # the sheet, seen before downloading it
            assert driver.find_element(By.ID, "sheet-figure").is_displayed()
            assert sorted(driver.execute_script("const i = arguments[0]; return [i.naturalWidth, i.naturalHeight]",
                                                sheet)) == [1200, 1800]  # 4×6 in at 300 DPI
            driver.find_element(By.ID, "head-size").send_keys(Keys.END)   # the largest head 1inch allows
            assert out.text.startswith("66.0 %") and "auto" not in out.get_attribute("class")   # 0.1 of the range inside
            largest = make()
            assert largest > auto + 3, (auto, largest)                     # in pixels of the 413-px photo
            driver.find_element(By.ID, "head-size").send_keys(Keys.HOME)
            smallest = make()
            assert smallest < auto - 3, (auto, smallest)
            for link in ("dl-idphoto", "dl-sheet"):
                driver.find_element(By.ID, link).click()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not ({"idphoto.jpg", "sheet.jpg"} <= {p.name for p in downloads.iterdir()}):
                time.sleep(0.1)
            with Image.open(downloads / "idphoto.jpg") as im:
                assert im.size == (295, 413)
            with Image.open(downloads / "sheet.jpg") as im:
                assert sorted(im.size) == [1200, 1800]
            shot = os.environ.get("APP_SHEET_SCREENSHOT")  # the README's picture of the sliders and the sheet
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(shot or str(tmp_path / "sheet.png"))
            samples = {b.get_attribute("data-sample"): b for b in driver.find_elements(By.CSS_SELECTOR, "#samples button")}
            samples["astronaut_cut_at_chin.jpg"].click()
            wait.until(lambda d: "astronaut_cut_at_chin" in d.find_element(By.ID, "file-name").text)
            driver.find_element(By.ID, "make").click()
            wait.until(lambda d: d.find_element(By.ID, "refusal").is_displayed())
            refusal = driver.find_element(By.ID, "refusal")
            assert refusal.text.startswith("No ID photo made from this photo:"), refusal.text
            box = driver.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                        "return [r.top, r.bottom, window.innerHeight]", refusal)
            assert -1 <= box[0] and box[1] <= box[2] + 1, box             # in the window: seen without scrolling
        finally:
            driver.quit()


def test_a_client_dropping_mid_upload_is_one_log_line_not_a_traceback(caplog):
    """The ASGI app is driven directly: the body's first chunk, then the client goes away."""
    import asyncio
    import logging

    app = create_app(KnownTNet(), ServerConfig(workers=1))
    messages = [{"type": "http.request", "body": b"--x\r\nContent-Disposition: form-data; name=", "more_body": True},
                {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/idphoto", "raw_path": b"/api/idphoto", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"100000")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 7860)}
    with caplog.at_level(logging.INFO, logger="idphoto.web"):
        asyncio.run(app(scope, receive, send))     # raises nothing: the disconnect is handled
    lines = [r.getMessage() for r in caplog.records if r.name == "idphoto.web"]
    assert any("client disconnected during the upload to /api/idphoto" in line for line in lines), lines
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text


def test_the_server_flags_are_server_config_fields():
    """app.py's server flags are made from idphoto.web.config.ServerConfig: the same defaults, one definition."""
    import app
    from idphoto.web.config import server_config

    parser = app.build_parser()
    assert server_config(parser.parse_args([])) == ServerConfig()
    args = parser.parse_args(["--workers", "3", "--timeout", "9", "--max-matting-side", "512", "--save-dir", "s"])
    config = server_config(args, device="cpu")
    assert (config.workers, config.queue, config.timeout_s, config.max_matting_side) == (3, 6, 9.0, 512)
    assert config.save_dir == Path("s")

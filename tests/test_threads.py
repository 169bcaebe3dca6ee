"""The web app runs photos in a pool of threads: shared detectors must give every thread the answer it
would get alone."""
from __future__ import annotations

import concurrent.futures

import pytest

from conftest import REPO
from idphoto import landmarks
from idphoto.face import detect_faces
from idphoto.image_io import load_image

PHOTOS = [REPO / "examples" / "astronaut.jpg", REPO / "examples" / "astronaut_tilted.jpg"]


def _faces(image, method):
    return [(f.x, f.y, f.w, f.h, f.landmarks) for f in detect_faces(image, method)]


@pytest.mark.parametrize("method", ["landmarks", "haar"])
def test_face_detection_in_concurrent_threads_matches_one_thread(method):
    if method == "landmarks" and not landmarks.models_available():
        pytest.skip("face landmark models not present")
    images = [load_image(p) for p in PHOTOS]
    alone = [_faces(im, method) for im in images]
    assert all(alone), "each example photo has a face"
    jobs = [i % len(images) for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: _faces(images[i], method), jobs))
    wrong = [k for k, i in enumerate(jobs) if got[k] != alone[i]]
    assert not wrong, f"{len(wrong)} of {len(jobs)} concurrent detections differ from the single-threaded ones"

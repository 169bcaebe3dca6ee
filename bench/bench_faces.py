"""Face detectors compared on the shared real photos: detection rate, eye-position error, time per photo.

    python bench/bench_faces.py --limit 200        # PFCN (first 200), Vikram (all 202), unlabeled portraits (11)

Detectors: ``landmarks`` (the shipped MediaPipe BlazeFace + Face Mesh, what infer.py uses) and ``haar``
(OpenCV's frontal-face cascade, the previous detector; it gives a box only, so its eyes are placed at fixed
fractions of the box, fitted on this same data: optimistic for Haar).

There are no hand-labelled eye positions in the shared data, so the eye error is measured against an
independent reference: MTCNN (P-Net/R-Net/O-Net, five landmarks) with the HivisionIDPhotos ONNX weights in
../shared/data/models/hivision_mtcnn_onnx, run by OpenCV. Those weights are used here for comparison only;
the product never loads them. The error is the distance between a detector's eye centres and MTCNN's, divided
by MTCNN's inter-ocular distance (the usual normalised mean error), over the photos where both found a face.
Prints one JSON line (see bench/common.py); per-set figures also go to stderr as a table.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from common import REPO, emit

SHARED = REPO.parent / "shared" / "data"
MTCNN_DIR = SHARED / "models" / "hivision_mtcnn_onnx"
SETS = {
    "pfcn": SHARED / "pfcn_portrait_seg" / "images",
    "vikram": SHARED / "vikram_human_seg" / "images",
    "unlabeled": SHARED / "unlabeled_portraits",
}


# ------------------------------------------------------------------------------------ MTCNN (reference only)
class MTCNN:
    def __init__(self, folder: Path):
        self.p, self.r, self.o = (cv2.dnn.readNetFromONNX(str(folder / f"{n}.onnx")) for n in ("pnet", "rnet", "onet"))

    @staticmethod
    def _prep(img_rgb):
        return ((img_rgb.astype(np.float32) - 127.5) * 0.0078125).transpose(2, 0, 1)[None]

    @staticmethod
    def _nms(boxes, thr, mode="union"):
        if len(boxes) == 0:
            return []
        x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order, keep = np.argsort(s), []
        while order.size:
            i = order[-1]
            keep.append(i)
            xx1, yy1 = np.maximum(x1[i], x1[order[:-1]]), np.maximum(y1[i], y1[order[:-1]])
            xx2, yy2 = np.minimum(x2[i], x2[order[:-1]]), np.minimum(y2[i], y2[order[:-1]])
            inter = np.maximum(0, xx2 - xx1 + 1) * np.maximum(0, yy2 - yy1 + 1)
            ov = inter / np.minimum(area[i], area[order[:-1]]) if mode == "min" else inter / (area[i] + area[order[:-1]] - inter)
            order = order[:-1][ov <= thr]
        return keep

    @staticmethod
    def _square(b):
        b = b.copy()
        h, w = b[:, 3] - b[:, 1] + 1, b[:, 2] - b[:, 0] + 1
        m = np.maximum(h, w)
        b[:, 0], b[:, 1] = b[:, 0] + w * 0.5 - m * 0.5, b[:, 1] + h * 0.5 - m * 0.5
        b[:, 2], b[:, 3] = b[:, 0] + m - 1, b[:, 1] + m - 1
        return b

    @staticmethod
    def _calibrate(b, off):
        w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
        b = b.copy()
        b[:, 0:4] += np.stack([w, h, w, h], 1) * off
        return b

    def _crops(self, img, boxes, size):
        out = np.zeros((len(boxes), 3, size, size), np.float32)
        for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4]):
            w, h = int(x2 - x1 + 1), int(y2 - y1 + 1)
            crop = cv2.getRectSubPix(img, (max(w, 1), max(h, 1)), ((x1 + x2) / 2, (y1 + y2) / 2))
            out[k] = self._prep(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))[0]
        return out

    @staticmethod
    def _batch(net, crops, names):
        """One crop at a time: OpenCV's importer flattens these ONNX graphs for a batch of one only."""
        outs = []
        for c in crops:
            net.setInput(c[None])
            outs.append(net.forward(names))
        return [np.concatenate([o[i] for o in outs]) for i in range(len(names))]

    def detect(self, img_bgr, min_face=40.0):
        img = cv2.cvtColor(img_bgr, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        m = 12.0 / min_face
        scales, side = [], min(h, w) * m
        while side > 12:
            scales.append(m)
            m *= 0.709
            side *= 0.709
        boxes = []
        for s in scales:
            sw, sh = math.ceil(w * s), math.ceil(h * s)
            self.p.setInput(self._prep(cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)))
            off, prob = self.p.forward(["output1", "output2"])
            prob = prob[0, 1]
            ys, xs = np.where(prob > 0.6)
            if len(ys) == 0:
                continue
            o = off[0][:, ys, xs].T
            b = np.stack([(2 * xs + 1) / s, (2 * ys + 1) / s, (2 * xs + 1 + 12) / s, (2 * ys + 1 + 12) / s, prob[ys, xs]], 1)
            b = np.concatenate([b, o], 1)
            boxes.append(b[self._nms(b, 0.5)])
        if not boxes:
            return []
        b = np.concatenate(boxes)
        b = b[self._nms(b, 0.7)]
        b = self._square(self._calibrate(b[:, :5], b[:, 5:9]))
        off, prob = self._batch(self.r, self._crops(img, b, 24), ["output1", "output2"])
        keep = prob[:, 1] > 0.7
        b, off = b[keep], off[keep]
        if not len(b):
            return []
        b[:, 4] = prob[keep, 1]
        k = self._nms(b, 0.7)
        b = self._square(self._calibrate(b[k], off[k]))
        lm, off, prob = self._batch(self.o, self._crops(img, b, 48), ["output1", "output2", "output3"])
        keep = prob[:, 1] > 0.8
        b, off, lm = b[keep], off[keep], lm[keep]
        if not len(b):
            return []
        b[:, 4] = prob[keep, 1]
        bw, bh = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
        xs = b[:, 0:1] + bw[:, None] * lm[:, 0:5]
        ys = b[:, 1:2] + bh[:, None] * lm[:, 5:10]
        b = self._calibrate(b, off)
        k = self._nms(b, 0.7, "min")
        faces = []
        for i in k:
            eyes = sorted([(xs[i, 0], ys[i, 0]), (xs[i, 1], ys[i, 1])])
            faces.append({"box": b[i, :4], "eyes": eyes, "area": (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1])})
        return sorted(faces, key=lambda f: -f["area"])


# ------------------------------------------------------------------------------------------------- runs
def images(name, limit):
    folder = SETS[name]
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
                   and "NOT_GT" not in str(p))
    return files[:limit] if limit else files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=200, help="photos per set at most (0: all)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = ap.parse_args(argv)
    if not MTCNN_DIR.is_dir():
        print(f"bench_faces: needs {MTCNN_DIR} (the shared data) for the reference", file=sys.stderr)
        return 1
    from idphoto.face import detect_faces_haar
    from idphoto.image_io import load_image
    from idphoto import landmarks

    ref = MTCNN(MTCNN_DIR)
    results, raw = {}, {}
    for name in args.sets:
        rows = []
        for path in images(name, args.limit):
            try:
                img = load_image(path)
            except Exception:  # noqa: BLE001 (an unreadable photo is skipped, as infer.py does)
                continue
            row = {"path": path.name, "shape": img.shape[:2]}
            t = time.perf_counter()
            row["lm"] = landmarks.detect(img)
            row["t_lm"] = time.perf_counter() - t
            t = time.perf_counter()
            row["haar"] = detect_faces_haar(img)
            row["t_haar"] = time.perf_counter() - t
            row["ref"] = ref.detect(img, min_face=max(20.0, min(img.shape[:2]) / 15))
            rows.append(row)
        raw[name] = rows
    # Haar's eyes: fixed fractions of its box, fitted (median) on the photos where MTCNN saw the same face
    fx, fy, fs = [], [], []
    for rows in raw.values():
        for r in rows:
            if r["haar"] and r["ref"]:
                b = r["haar"][0]
                (lx, ly), (rx, ry) = r["ref"][0]["eyes"]
                fx.append(((lx + rx) / 2 - b.x) / b.w)
                fy.append(((ly + ry) / 2 - b.y) / b.h)
                fs.append((rx - lx) / b.w)
    hx, hy, hs = (statistics.median(v) if v else 0.5 for v in (fx, fy, fs))
    for name, rows in raw.items():
        n = len(rows)
        err = {"landmarks": [], "haar": []}
        for r in rows:
            if not r["ref"]:
                continue
            (lx, ly), (rx, ry) = r["ref"][0]["eyes"]
            iod = math.hypot(rx - lx, ry - ly)
            if r["lm"]:
                m = r["lm"][0].landmarks
                err["landmarks"].append((math.dist(m.left_eye, (lx, ly)) + math.dist(m.right_eye, (rx, ry))) / 2 / iod)
            if r["haar"]:
                b = r["haar"][0]
                cx, cy, half = b.x + hx * b.w, b.y + hy * b.h, hs * b.w / 2
                err["haar"].append((math.dist((cx - half, cy), (lx, ly)) + math.dist((cx + half, cy), (rx, ry))) / 2 / iod)
        res = {"photos": n, "mtcnn_found": sum(bool(r["ref"]) for r in rows)}
        for det, key in (("landmarks", "lm"), ("haar", "haar")):
            e = err[det]
            res[det] = {
                "found": sum(bool(r[key]) for r in rows),
                "rate": round(sum(bool(r[key]) for r in rows) / n, 3) if n else None,
                "several": sum(len(r[key]) > 1 for r in rows),
                "eye_nme_median": round(statistics.median(e), 3) if e else None,
                "eye_nme_mean": round(statistics.fmean(e), 3) if e else None,
                "eye_nme_over_0.1": round(sum(v > 0.1 for v in e) / len(e), 3) if e else None,
                "ms_per_photo": round(1000 * statistics.fmean(r["t_" + key] for r in rows), 1) if n else None,
            }
        results[name] = res
        print(f"{name:10} n={n:4}  MTCNN found {res['mtcnn_found']:4}  |  " + "  |  ".join(
            f"{d}: found {res[d]['found']} ({res[d]['rate']}), eye NME median {res[d]['eye_nme_median']}, "
            f"mean {res[d]['eye_nme_mean']}, >0.1: {res[d]['eye_nme_over_0.1']}, {res[d]['ms_per_photo']} ms"
            for d in ("landmarks", "haar")), file=sys.stderr)
    emit("faces", {"limit": args.limit, "sets": args.sets},
         {"haar_eye_fractions": [round(hx, 3), round(hy, 3), round(hs, 3)], "sets": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

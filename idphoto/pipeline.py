"""Photo → trimap (TNet) → alpha (closed-form matting) → foreground.

Cost control, without changing the result where it matters:

* the model is loaded once by the caller and reused (:class:`Pipeline`);
* matting solves only a crop around the unknown band of the trimap (outside it the alpha is known:
  1 on the sure foreground, 0 on the sure background), and within it only the unknown pixels;
* the working resolution of the matting is capped at ``max_side`` pixels (a 12-megapixel phone photo
  is matted at about 1 megapixel); the alpha is upsampled back and the known regions re-imposed at
  full resolution, so the interior stays sharp and exact;
* the default matting and the foreground estimation need nothing compiled (:mod:`idphoto.matting`);
  pymatting, whose numba kernels take about 40 s to compile on a machine's first use, is imported
  only for the other ``--matting`` methods.

PyTorch and SciPy are imported when first needed, so importing this module (for its constants, as
``--help`` does) is cheap.
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.trimaps import erode_dilate, trimap_to_image

from .matting import closed_form_alpha, estimate_foreground_ml
from .runner import DEFAULT_INPUT_SIZE, model_input_size, trimap_logits

MATTING_METHODS = {
    "cf": "closed-form matting (Levin et al.), the design's choice",
    "knn": "KNN matting (pymatting)",
    "lkm": "large-kernel matting (pymatting)",
    "rw": "random-walk matting (pymatting)",
    "lbdm": "learning-based digital matting (pymatting)",
}
DEFAULT_MAX_SIDE = 1024   # longest side (px) of the region the matting solves at
CROP_MARGIN = 16          # known pixels kept around the unknown band, so the solver has constraints
SNAP = 0.5 / 255          # an upsampled alpha this close to 0 or 1 is taken as 0 or 1
FIRST_RUN_NOTE = "first run: compiling pymatting's matting kernels, once (about a minute)"


class MattingWarning(UserWarning):
    """The matting could not do its job properly (no person in the trimap, solver did not converge)."""


# ------------------------------------------------------------------------------------------------ trimap
def predict_trimap(model, image_bgr: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE, device="cpu", refine_kernel: int = 10, flip: bool = False) -> np.ndarray:
    """TNet's trimap of ``image_bgr`` at the photo's full size: H×W uint8 with values in {0, 128, 255}.

    Resize to ``input_size``² (bicubic) → RGB, ImageNet-normalised (the training normalisation) →
    forward → argmax → classes 0/1/2 scaled to 0/128/255 → erode/dilate refinement (widens the unknown band
    so the matting decides the pixels TNet was unsure of) → nearest-neighbour resize back to the photo.
    ``refine_kernel=0`` skips the refinement.
    """
    probs = class_probabilities(model, image_bgr, input_size, device, flip)
    return _refined(probs, image_bgr.shape[:2], refine_kernel)


def predict_trimap_pair(model, image_bgr: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE, device="cpu",
                        refine_kernel: int = 10, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(raw, refined) trimaps from one forward pass, both at the photo's size: TNet's own trimap (what it was
    trained to predict, so what evaluation scores) and the refined one of :func:`predict_trimap` (its
    unknown band widened by the erode/dilate, what the matting uses).

    The raw trimap is the argmax of the class probabilities resized bilinearly to the photo, so its band
    follows the network's edges at the photo's resolution instead of in steps of one network pixel (2 px
    on an 800-px photo at 384²). The refined one is the trimap of :func:`predict_trimap`, unchanged."""
    probs = class_probabilities(model, image_bgr, input_size, device, flip)
    h, w = image_bgr.shape[:2]
    raw = trimap_to_image(cv2.resize(probs, (w, h), interpolation=cv2.INTER_LINEAR).argmax(2))
    return raw, _refined(probs, (h, w), refine_kernel)


def class_probabilities(model, image_bgr: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE, device="cpu",
                        flip: bool = False) -> np.ndarray:
    """TNet's background / unknown / person probabilities at its input size: ``input_size``² × 3 float32.

    ``flip``: test-time augmentation — the photo and its mirror image go through the network as one batch
    and their class probabilities are averaged (about twice the network time)."""
    small = cv2.cvtColor(cv2.resize(image_bgr, (input_size, input_size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    logits = trimap_logits(model, np.stack([small, small[:, ::-1]]) if flip else small[None], device)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    probs = (probs[0] + probs[1][:, :, ::-1]) / 2 if flip else probs[0]
    return np.ascontiguousarray(probs.transpose(1, 2, 0), dtype=np.float32)


def _refined(probs: np.ndarray, shape: tuple[int, int], refine_kernel: int) -> np.ndarray:
    """The argmax trimap at the network's size, its unknown band widened by ``refine_kernel`` there, then
    resized (nearest neighbour) to the photo's ``shape``."""
    small = trimap_to_image(probs.argmax(2))
    refined = erode_dilate(small, refine_kernel) if refine_kernel else small
    return cv2.resize(refined, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


# ----------------------------------------------------------------------------------------------- helpers
def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of ``mask`` grown by ``margin`` and clipped to the image; None when the mask is empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, w)))


def _region_mask(shape: tuple[int, int], region: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = region
    mask = np.zeros(shape, bool)
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return mask


def _working_scale(shape: tuple[int, int], max_side: int | None, scale: float | None = None) -> float:
    """The scale the matting solves at: ``scale`` (1 when None), lowered further so that the longest side
    stays within ``max_side``."""
    longest = max(shape[:2])
    cap = 1.0 if not max_side or longest <= max_side else max_side / longest
    return min(cap, scale) if scale else cap


def import_pymatting():
    """The pymatting module, for the matting methods other than ``cf``.

    Its first import on a machine compiles all its numba kernels (about 40 s on a 2-core CPU): say so
    on stderr first, once, rather than seeming to hang.
    """
    if "pymatting" not in sys.modules and pymatting_cache_is_cold():
        print(FIRST_RUN_NOTE, file=sys.stderr, flush=True)
    import pymatting

    return pymatting


def pymatting_cache_dirs() -> list[str]:
    """Where numba keeps (or would keep) the compiled kernels of pymatting's ``laplacian`` package, in
    numba's order of preference: ``$NUMBA_CACHE_DIR/<dir>_<sha1>``, the package's own ``__pycache__``,
    the user-wide cache. Empty when pymatting is not installed."""
    import hashlib
    import importlib.util
    import os

    spec = importlib.util.find_spec("pymatting")
    if spec is None or not spec.submodule_search_locations:
        return []
    source_dir = os.path.join(os.path.abspath(list(spec.submodule_search_locations)[0]), "laplacian")
    subpath = f"{os.path.basename(source_dir)}_{hashlib.sha1(source_dir.encode()).hexdigest()}"
    dirs = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs.append(os.path.join(os.environ["NUMBA_CACHE_DIR"], subpath))
    dirs.append(os.path.join(source_dir, "__pycache__"))
    user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dirs.append(os.path.join(user_cache, "numba", subpath))
    return dirs


def pymatting_cache_is_cold() -> bool:
    """True when no compiled closed-form Laplacian kernel of pymatting is cached where numba looks first
    (then importing pymatting compiles everything)."""
    import glob
    import os

    dirs = pymatting_cache_dirs()
    if not dirs:
        return False  # not installed: the import fails at once, nothing to announce
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs = dirs[:1]  # numba then uses that folder only
    return not any(glob.glob(os.path.join(d, "cf_laplacian._cf_laplacian-*.nbi")) for d in dirs)


def _to_float_rgb(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0


# ------------------------------------------------------------------------------------------------- alpha
def estimate_alpha(image_bgr: np.ndarray, trimap: np.ndarray, method: str = "cf",
                   max_side: int | None = DEFAULT_MAX_SIDE, margin: int = CROP_MARGIN,
                   scale: float | None = None, region: tuple[int, int, int, int] | None = None,
                   guess: np.ndarray | None = None) -> np.ndarray:
    """Alpha matte (H×W float32 in [0, 1]) of ``image_bgr`` given a 0/128/255 ``trimap``.

    Only the bounding box of the unknown band (plus ``margin`` known pixels) is solved, at most
    ``max_side`` pixels on its longest side (``None``: no cap) and at ``scale`` of the photo's size when
    given (an ID photo needs the matte at its own size only); elsewhere alpha = trimap / 255.
    ``region`` (x0, y0, x1, y1): solve only the band inside it (the part of the photo an ID photo shows);
    beyond it the band takes ``guess`` (an H×W alpha, e.g. the network's own), or 0.5.
    """
    if method not in MATTING_METHODS:
        raise ValueError(f"unknown matting method {method!r}; choose one of {', '.join(MATTING_METHODS)}")
    if image_bgr.shape[:2] != trimap.shape:
        raise ValueError(f"image {image_bgr.shape[:2]} and trimap {trimap.shape} differ in size")
    alpha = (trimap >= 192).astype(np.float32)          # sure foreground 1, everything else 0 for now
    unknown = (trimap > 64) & (trimap < 192)
    if region is not None:                              # the band beyond it takes the guess, unsolved
        inside = _region_mask(unknown.shape, region)
        rest = unknown & ~inside
        alpha[rest] = 0.5 if guess is None else np.clip(guess[rest], 0.0, 1.0)
        unknown &= inside
    box = _box(unknown, margin)
    if box is None:                                      # nothing to solve
        return alpha
    img, tri = image_bgr[box], trimap[box]
    has_fg, has_bg = (tri >= 192).any(), (tri <= 64).any()
    if not (has_fg and has_bg):
        # Without both constraints the smoothest solution is a constant: 1 with only foreground known, else 0.
        warnings.warn("the trimap has no " + ("sure foreground" if not has_fg else "sure background")
                      + " next to its unknown band; alpha there is set to " + ("0" if not has_fg else "1"),
                      MattingWarning, stacklevel=2)
        alpha[box][unknown[box]] = 0.0 if not has_fg else 1.0
        return alpha
    scale = _working_scale(tri.shape, max_side, scale)
    if scale < 1.0:
        size = (max(1, round(tri.shape[1] * scale)), max(1, round(tri.shape[0] * scale)))
        img_w = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        tri_w = cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST)
    else:
        img_w, tri_w = img, tri
    try:
        if method == "cf":
            a = closed_form_alpha(img_w.astype(np.float64) / 255.0, tri_w >= 192, tri_w <= 64)
        else:
            solver = getattr(import_pymatting(), f"estimate_alpha_{method}")
            # pymatting print()s "PERFORMANCE WARNING" notes of its preconditioner; keep the CLI output clean
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", RuntimeWarning)
                a = solver(_to_float_rgb(img_w), tri_w.astype(np.float64) / 255.0)
    except ValueError as exc:  # e.g. a singular system, "Conjugate gradient descent did not converge"
        warnings.warn(f"{method} matting failed ({exc}); using a blurred trimap as alpha", MattingWarning, stacklevel=2)
        a = cv2.GaussianBlur(tri_w.astype(np.float32) / 255.0, (0, 0), 2.0)
    a = np.clip(np.nan_to_num(a.astype(np.float32), nan=0.5), 0.0, 1.0)
    if scale < 1.0:
        a = cv2.resize(a, (tri.shape[1], tri.shape[0]), interpolation=cv2.INTER_LINEAR)
        # within half an 8-bit step of 0 or 1 is 0 or 1 in every output: interpolation leaves such values between
        # solved 0s and 1s, and each would cost the foreground estimation a pixel to solve
        a[a < SNAP] = 0.0
        a[a > 1.0 - SNAP] = 1.0
    crop = alpha[box]
    crop[unknown[box]] = a[unknown[box]]  # known pixels keep their exact 0/1 at full resolution
    return alpha


def estimate_foreground(image_bgr: np.ndarray, alpha: np.ndarray,
                        max_side: int | None = DEFAULT_MAX_SIDE, margin: int = CROP_MARGIN,
                        scale: float | None = None, region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Foreground colours (H×W×3 float32 in [0, 1], BGR like the input) by multi-level estimation
    (:func:`idphoto.matting.estimate_foreground_ml`, the method of pymatting's ``estimate_foreground_ml``).

    The background colour is removed from the semi-transparent pixels, so compositing on a new colour
    leaves no fringe. Only the box around 0 < alpha < 1 is solved (capped at ``max_side``, and at ``scale``
    of the photo's size when given; within ``region`` (x0, y0, x1, y1) only when given); elsewhere the
    foreground is the photo itself.
    """
    fg = image_bgr.astype(np.float32) / 255.0
    wanted = (alpha > 0.0) & (alpha < 1.0)
    if region is not None:
        wanted &= _region_mask(wanted.shape, region)
    box = _box(wanted, margin)
    if box is None:
        return fg
    img, a = image_bgr[box], alpha[box]
    scale = _working_scale(a.shape, max_side, scale)
    if scale < 1.0:
        size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
        img_w, a_w = cv2.resize(img, size, interpolation=cv2.INTER_AREA), cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    else:
        img_w, a_w = img, a
    soft_w = (a_w > 0.0) & (a_w < 1.0)
    if region is not None:
        soft_w &= cv2.resize(wanted[box].view(np.uint8), soft_w.shape[::-1], interpolation=cv2.INTER_NEAREST).view(bool) \
            if scale < 1.0 else wanted[box]
    # upsampling reads each soft pixel's neighbours at the working size too
    needed = soft_w if scale == 1.0 else cv2.dilate(soft_w.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    f = estimate_foreground_ml(img_w.astype(np.float32) / 255.0, a_w, needed=needed)
    if scale < 1.0:
        f = cv2.resize(f, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
    soft = wanted[box]
    fg[box][soft] = f[soft]  # opaque pixels keep the photo's own (sharp, full-resolution) colours
    return fg


# ---------------------------------------------------------------------------------------------- pipeline
@dataclass
class MattingResult:
    trimap: np.ndarray       # H×W uint8 {0, 128, 255}
    alpha: np.ndarray        # H×W float32 [0, 1]
    foreground: np.ndarray   # H×W×3 float32 [0, 1], BGR
    timings: dict = field(default_factory=dict)  # stage → seconds

    def cutout_rgba(self) -> np.ndarray:
        """BGRA uint8 cut-out: estimated foreground colours with the alpha as 4th channel."""
        bgr = np.round(self.foreground * 255).astype(np.uint8)
        a = np.round(self.alpha * 255).astype(np.uint8)
        return np.dstack([bgr, a])


class Pipeline:
    """The whole chain with one model: ``Pipeline(open_trimap_model(path)).run(image_bgr)`` → :class:`MattingResult`."""

    def __init__(self, model, device="cpu", input_size: int | None = None,
                 matting: str = "cf", refine_kernel: int = 10, max_side: int | None = DEFAULT_MAX_SIDE,
                 flip: bool = False):
        if matting not in MATTING_METHODS:
            raise ValueError(f"unknown matting method {matting!r}; choose one of {', '.join(MATTING_METHODS)}")
        fixed = getattr(model, "input_size", None)  # an ONNX export takes one input size only
        input_size = input_size or model_input_size(model)
        if fixed is not None and fixed != input_size:
            from .errors import IDPhotoError

            raise IDPhotoError(f"{getattr(model, 'path', 'the model')} takes {fixed}×{fixed} inputs only: "
                               f"pass --input-size {fixed}")
        # a PyTorch module is moved and set to inference; a runtime of the torch-free protocol (``logits``) as is
        self.model = model.to(device).eval() if hasattr(model, "to") else model
        self.device, self.input_size, self.matting = device, input_size, matting
        self.flip = flip
        self.refine_kernel, self.max_side = refine_kernel, max_side

    @classmethod
    def from_options(cls, model, options, device="cpu") -> "Pipeline":
        """The pipeline of an :class:`~idphoto.options.IDPhotoOptions` (its segmentation and matting options)
        around an already loaded model, so that every caller reads a photo the same way."""
        return cls(model, device, options.input_size, options.matting, options.refine_kernel,
                   options.max_side or None, flip=options.tta == "flip")

    def run(self, image_bgr: np.ndarray, matte_scale: float | None = None,
            region: tuple[int, int, int, int] | None = None) -> MattingResult:
        """Trimap, alpha and foreground of ``image_bgr`` at its size. ``matte_scale`` (< 1): solve the alpha and
        the foreground at that share of the photo's size (and upsample them), for a result that is used
        smaller: an ID photo. None: at the photo's size, within the pipeline's ``max_side``. ``region`` (x0, y0,
        x1, y1): solve them only there; beyond it the edge is the network's own (the person's probability,
        the unknown class counted half)."""
        timings = {}
        t = time.perf_counter()
        probs = class_probabilities(self.model, image_bgr, self.input_size, self.device, self.flip)
        h, w = image_bgr.shape[:2]
        trimap = _refined(probs, (h, w), self.refine_kernel)
        guess = None
        if region is not None:
            guess = cv2.resize(probs[..., 2] + 0.5 * probs[..., 1], (w, h), interpolation=cv2.INTER_LINEAR)
        timings["trimap"] = time.perf_counter() - t
        t = time.perf_counter()
        alpha = estimate_alpha(image_bgr, trimap, self.matting, self.max_side, scale=matte_scale, region=region,
                               guess=guess)
        timings["alpha"] = time.perf_counter() - t
        t = time.perf_counter()
        foreground = estimate_foreground(image_bgr, alpha, self.max_side, scale=matte_scale, region=region)
        timings["foreground"] = time.perf_counter() - t
        return MattingResult(trimap, alpha, foreground, timings)

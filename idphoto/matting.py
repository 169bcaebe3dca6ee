"""Closed-form alpha matting and multi-level foreground estimation in NumPy/SciPy: nothing to compile.

pymatting implements both with numba kernels that are compiled when ``pymatting`` is first imported on
a machine: about 40 s, for some 30 kernels of which the default pipeline needs five. The two methods
here give the same results without that wait and are at least as fast on a photo:

* :func:`closed_form_alpha` — closed-form matting (Levin, Lischinski, Weiss 2008), the matting
  Laplacian L of 3×3 windows with pymatting's regularisation (ε = 1e-7). Only the unknown pixels are
  unknowns: the system L_uu α_u = −L_uk α_k is built from the windows that touch an unknown pixel and
  solved exactly by a sparse LU factorisation (SciPy's SuperLU on a nested-dissection ordering of the
  pixels, which keeps the fill-in of a band-shaped domain small) instead of an iterative solver.
* :func:`estimate_foreground_ml` — the multi-level foreground estimation of Germer et al. (2020)
  (pymatting's ``estimate_foreground_ml``, same regularisation, iterations and level sizes), with the
  in-place sweeps done red-black so that NumPy can vectorise them, and at each level only the pixels
  that can influence a semi-transparent pixel of the result are updated.
"""
from __future__ import annotations

import cv2
import numpy as np

CF_EPSILON = 1e-7       # regularisation of the window covariances (pymatting's default)
_WINDOW = 3             # 3×3 windows (radius 1)


# --------------------------------------------------------------------------------------------- alpha
def closed_form_alpha(image: np.ndarray, is_fg: np.ndarray, is_bg: np.ndarray,
                      epsilon: float = CF_EPSILON) -> np.ndarray:
    """Alpha (H×W float64, clipped to [0, 1]) of ``image`` (H×W×3 float in [0, 1]) given its sure
    foreground and sure background masks; every other pixel is unknown.

    Raises ValueError when the system has no unique solution (no known pixel, image under 3×3).
    """
    import scipy.sparse.linalg

    h, w = is_fg.shape
    unknown = ~(is_fg | is_bg)
    alpha = is_fg.astype(np.float64)
    if not unknown.any():
        return alpha
    if h < _WINDOW or w < _WINDOW:
        raise ValueError(f"closed-form matting needs at least {_WINDOW}×{_WINDOW} pixels, got {w}×{h}")
    if not (is_fg | is_bg).any():
        raise ValueError("closed-form matting needs some known pixels")
    L, b, pixels = _unknown_system(np.ascontiguousarray(image, np.float64), is_fg, unknown, epsilon)
    try:  # the rows come in elimination order already: no reordering by SuperLU, no pivoting (L_uu is SPD)
        lu = scipy.sparse.linalg.splu(L, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError as exc:  # "Factor is exactly singular": pixels with no path to a known one
        raise ValueError(f"closed-form matting system is singular ({exc})") from None
    x = lu.solve(b)
    if not np.isfinite(x).all():
        raise ValueError("closed-form matting gave non-finite values")
    alpha.ravel()[pixels] = x
    return np.clip(alpha, 0.0, 1.0, out=alpha)


def dissection_order(ys: np.ndarray, xs: np.ndarray, leaf: int = 4, thin_cut_from: int = 256) -> np.ndarray:
    """An elimination order of the pixels at (``ys``, ``xs``) for a matrix that couples pixels up to 2 apart
    (the 5×5 reach of 3×3 windows): geometric nested dissection.

    The pixels are grouped in 2×2 blocks, which couple only with the 8 blocks around them. The blocks are
    split by a line of blocks (a 2-pixel separator, which no coupling crosses) that comes after both
    halves, which are ordered in the same way down to ``leaf`` blocks. Eliminating the halves first
    confines the fill-in of the factorisation to them and to the short separators: on a TNet band
    20–30 px wide this halves the fill and the time of a reverse-Cuthill–McKee ordering, whose fill grows
    with the band's width. The line is the median of the longer extent; from ``thin_cut_from`` blocks on,
    the line with the fewest blocks that leaves 30–70 % on one side, on either axis, so that a cut does
    not run along a stretch of the band. The solution is the same whatever the order.
    """
    wb = int(xs.max()) // 2 + 1
    blocks, block_of = np.unique((ys // 2) * wb + xs // 2, return_inverse=True)
    order = []

    def cuts(y, x, n):
        """Candidate (coordinates, line) splits, the best first."""
        axes = (y, x) if y.max() - y.min() >= x.max() - x.min() else (x, y)
        if n >= thin_cut_from:
            best = None
            for c in axes:
                c0 = c.min()
                count = np.bincount(c - c0)
                below = np.cumsum(count) - count
                ok = np.flatnonzero((below >= 0.3 * n) & (below <= 0.7 * n) & (below > 0) & (below + count < n))
                if ok.size and (best is None or count[ok].min() < best[0]):
                    best = (count[ok].min(), c, c0 + ok[np.argmin(count[ok])])
            if best is not None:
                yield best[1:]
        for c in axes:
            yield c, np.partition(c, n // 2)[n // 2]

    def split(idx, y, x):
        if idx.size > leaf:
            for c, m in cuts(y, x, idx.size):
                lo, hi = c < m, c > m
                if lo.any() and hi.any():
                    split(idx[lo], y[lo], x[lo])
                    split(idx[hi], y[hi], x[hi])
                    order.append(idx[c == m])
                    return
        order.append(idx)  # small, or more than half on one line either way: left whole

    split(np.arange(blocks.size), *np.divmod(blocks, wb))
    rank = np.empty(blocks.size, np.int64)
    rank[np.concatenate(order)] = np.arange(blocks.size)
    return np.argsort(rank[block_of.ravel()], kind="stable")


def _unknown_system(image, is_fg, unknown, epsilon):
    """(L_uu as CSC, right-hand side −L_uk α_k, flat index of the unknown pixel of each row), the rows and
    columns in the elimination order of :func:`dissection_order`.

    The Laplacian entry of two pixels i, j sums, over the windows holding both, δ_ij − (1 + (I_i − μ)ᵀ
    (Σ + ε/9·Id)⁻¹ (I_j − μ)) / 9 with μ, Σ the window's colour mean and covariance. Only windows with
    an unknown pixel contribute to the rows of unknown pixels; each row has at most 5×5 entries.
    """
    import scipy.sparse

    h, w = unknown.shape
    n_win = _WINDOW * _WINDOW
    # windows (by centre, inside the image) that hold at least one unknown pixel
    centres = cv2.dilate(unknown.view(np.uint8), np.ones((_WINDOW, _WINDOW), np.uint8)).view(bool)
    centres[0, :] = centres[-1, :] = False
    centres[:, 0] = centres[:, -1] = False
    k = np.flatnonzero(centres)
    values = _window_laplacians(image, k, w, epsilon)

    # flat indices in the image padded by 2 on every side, so that no neighbour index leaves the image
    wp = w + 4
    window_at = np.full((h + 4) * wp, k.size, np.int64)
    ky, kx = np.divmod(k, w)
    window_at[(ky + 2) * wp + kx + 2] = np.arange(k.size)
    flat_unknown = np.flatnonzero(unknown)
    n_u = flat_unknown.size
    py, px = np.divmod(flat_unknown[dissection_order(*np.divmod(flat_unknown, w))], w)
    centre = (py + 2) * wp + px + 2
    # per unknown pixel a 5×5 stencil of its couplings (offsets −2…2 in y and x): the pixel is pixel a of
    # the window centred 1 − a_y, 1 − a_x from it, whose row a lands on the 3×3 block of the stencil at
    # 2 − a_y, 2 − a_x
    stencil = np.zeros((n_u, 5, 5))
    for a in range(n_win):
        ay, ax = divmod(a, _WINDOW)
        rows = np.take(values[a], window_at[centre - ((ay - 1) * wp + ax - 1)], axis=0)
        stencil[:, 2 - ay:5 - ay, 2 - ax:5 - ax] += rows.reshape(n_u, _WINDOW, _WINDOW)
    stencil = stencil.reshape(n_u, 25)

    row_of = np.full((h + 4) * wp, -1, np.int64)                          # the padding is neither unknown nor foreground
    row_of[centre] = np.arange(n_u)
    neighbours = centre[:, None] + ((np.arange(25) // 5 - 2) * wp + np.arange(25) % 5 - 2)
    j = row_of[neighbours]
    fg = np.pad(is_fg, 2).ravel()[neighbours]
    rhs = -(stencil * fg).sum(axis=1)                                      # −L_uk α_k with α_k = 1 on the foreground
    coupled = j >= 0
    indptr = np.concatenate([[0], np.cumsum(coupled.sum(axis=1))])
    # the CSR arrays of a symmetric matrix are its CSC arrays (SuperLU sorts the row indices)
    L = scipy.sparse.csc_matrix((stencil[coupled], j[coupled], indptr), shape=(n_u, n_u))
    return L, rhs, py * w + px


def _window_laplacians(image, k, w, epsilon):
    """The Laplacian contributions of the 3×3 windows centred at the flat indices ``k`` of an image ``w``
    pixels wide, as a 9 × (windows + 1) × 9 array: [a, i, b] couples pixels a and b (raster order) of
    window i; the last window is all zeros (a stand-in for windows that do not exist).

    Written out per colour channel (covariance, its inverse by cofactors, as pymatting does): NumPy's
    batched ``inv``/``matmul`` on thousands of 3×3 matrices are several times slower.
    """
    n_win = _WINDOW * _WINDOW
    wy, wx = np.divmod(np.arange(n_win), _WINDOW)
    members = k[:, None] + ((wy - 1) * w + (wx - 1))[None, :]
    flat = image.reshape(-1, 3)
    c0, c1, c2 = (flat[:, ch][members] for ch in range(3))                # windows × 9, one per channel
    for c in (c0, c1, c2):
        c -= c.mean(axis=1, keepdims=True)
    s = 1.0 / n_win
    a00 = (np.einsum("ij,ij->i", c0, c0) + epsilon) * s                   # covariance + ε/9 · Id
    a11 = (np.einsum("ij,ij->i", c1, c1) + epsilon) * s
    a22 = (np.einsum("ij,ij->i", c2, c2) + epsilon) * s
    a01 = np.einsum("ij,ij->i", c0, c1) * s
    a02 = np.einsum("ij,ij->i", c0, c2) * s
    a12 = np.einsum("ij,ij->i", c1, c2) * s
    m00, m01, m02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    m11, m12, m22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    inv_det = 1.0 / (a00 * m00 + a01 * m01 + a02 * m02)
    m00, m01, m02, m11, m12, m22 = (m[:, None] * inv_det[:, None] for m in (m00, m01, m02, m11, m12, m22))
    d0 = m00 * c0 + m01 * c1 + m02 * c2                                   # (Σ + ε/9 · Id)⁻¹ (I − μ)
    d1 = m01 * c0 + m11 * c1 + m12 * c2
    d2 = m02 * c0 + m12 * c1 + m22 * c2
    n = k.size
    values = np.empty((n_win, n + 1, n_win))
    values[:, n] = 0.0
    for a in range(n_win):                                                # δ_ab − (1 + d_a · c_b) / 9
        v = values[a, :n]
        np.multiply(d0[:, a:a + 1], c0, out=v)
        v += d1[:, a:a + 1] * c1
        v += d2[:, a:a + 1] * c2
        v += 1.0
        v *= -s
        v[:, a] += 1.0
    return values


# ---------------------------------------------------------------------------------------- foreground
def estimate_foreground_ml(image: np.ndarray, alpha: np.ndarray, regularization: float = 1e-5,
                           n_small_iterations: int = 10, n_big_iterations: int = 2, small_size: int = 32,
                           gradient_weight: float = 1.0, needed: np.ndarray | None = None) -> np.ndarray:
    """Foreground colours (H×W×C float32 in [0, 1]) of ``image`` (float in [0, 1]) given ``alpha``.

    Coarse to fine over ⌈log2(max(H, W))⌉ + 1 levels (nearest-neighbour resampling); at each level every
    pixel's foreground F and background B solve the 2×2 least-squares system of the compositing equation
    α F + (1 − α) B = I, smoothed towards the 4 neighbours with weight ``regularization`` + |Δα|.

    The result is exact on the ``needed`` pixels (default: those with 0 < α < 1; the others hold the
    photo's colour or no useful one): at the fine levels only the pixels within reach of them are
    updated (a red-black sweep moves information one pixel per half-sweep), which gives them exactly
    the values of a full update. Pass ``needed=np.ones(...)`` for every pixel.
    """
    image = np.ascontiguousarray(image, np.float32)
    alpha = np.ascontiguousarray(alpha, np.float32)
    h0, w0, depth = image.shape
    fg_mask, bg_mask = alpha > 0.9, alpha < 0.1
    f_mean = image[fg_mask].sum(0) / (fg_mask.sum() + 1e-5)
    b_mean = image[bg_mask].sum(0) / (bg_mask.sum() + 1e-5)
    n_levels = max(1, int(np.ceil(np.log2(max(w0, h0, 2)))))
    sizes = [(round(h0 ** (i / n_levels)), round(w0 ** (i / n_levels))) for i in range(n_levels + 1)]
    iterations = [n_small_iterations if h <= small_size and w <= small_size else n_big_iterations for h, w in sizes]
    if needed is None:
        needed = (alpha > 0) & (alpha < 1)
    active = _active_pixels(sizes, iterations, np.ascontiguousarray(needed, bool))

    # F and B side by side (H×W×2C): one gather reads a neighbour's foreground and background together
    FB = np.concatenate([f_mean, b_mean]).astype(np.float32).reshape(1, 1, 2 * depth)
    for (h, w), n_iter, region in zip(sizes, iterations, active):
        if (h, w) == (h0, w0):
            I, a = image, alpha
        else:
            ys, xs = _nearest(h0, h), _nearest(w0, w)
            I, a = image[ys[:, None], xs], alpha[ys[:, None], xs]
        ys, xs = _nearest(FB.shape[0], h), _nearest(FB.shape[1], w)
        FB = FB[ys[:, None], xs]
        if region.mean() > 0.5:    # mostly active: whole-level arrays are cheaper than index lists
            region = np.ones((h, w), bool)
        _sweeps(I, a, FB, region, n_iter, regularization, gradient_weight)
    return np.ascontiguousarray(FB[:, :, :depth])


def _nearest(n_src: int, n_dst: int) -> np.ndarray:
    """Source index of each destination index for nearest-neighbour resampling (pymatting's rule)."""
    return np.minimum(np.arange(n_dst) * n_src // n_dst, n_src - 1)


def _active_pixels(sizes, iterations, needed_last):
    """Per level, the pixels to update so that the ``needed_last`` pixels of the last level are exact.

    Walking from fine to coarse: a pixel's value after k half-sweeps depends on the initial values
    within k pixels, so a level updates everything within 2·iterations + 1 of what it must deliver, and
    needs exact initial values — from the coarser level's nearest pixels — on that region plus its edge.
    """
    regions = [None] * len(sizes)
    needed = needed_last
    for i in range(len(sizes) - 1, 0, -1):
        r = 2 * iterations[i] + 1
        region = cv2.dilate(needed.view(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).view(bool)
        regions[i] = region
        read = cv2.dilate(region.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
        (h, w), (hc, wc) = sizes[i], sizes[i - 1]
        ys, xs = np.nonzero(read)
        needed = np.zeros((hc, wc), bool)
        needed[_nearest(hc, h)[ys], _nearest(wc, w)[xs]] = True
    regions[0] = needed
    return regions


def _sweeps(I, a, FB, region, n_iter, regularization, gradient_weight):
    """``n_iter`` red-black Gauss–Seidel sweeps over the pixels of ``region``, updating F and B (side by
    side in ``FB``) in place."""
    h, w, depth = I.shape
    yy, xx = np.nonzero(region)
    p = yy * w + xx
    neighbours = np.stack([yy * w + np.maximum(xx - 1, 0), yy * w + np.minimum(xx + 1, w - 1),
                           np.maximum(yy - 1, 0) * w + xx, np.minimum(yy + 1, h - 1) * w + xx], axis=1)
    af = a.ravel()
    a0 = af[p]
    weight = regularization + gradient_weight * np.abs(a0[:, None] - af[neighbours])
    total = weight.sum(axis=1)
    a1 = 1.0 - a0
    m00, m11, m01 = a0 * a0 + total, a1 * a1 + total, a0 * a1
    inv_det = 1.0 / (m00 * m11 - m01 * m01)
    i00, i01, i11 = (inv_det * m11)[:, None], (-inv_det * m01)[:, None], (inv_det * m00)[:, None]
    colours = I.reshape(-1, depth)[p]
    data = np.concatenate([a0[:, None] * colours, a1[:, None] * colours], axis=1)   # α I | (1 − α) I
    flat = FB.reshape(-1, 2 * depth)
    red = ((yy + xx) & 1) == 0
    halves = [(p[sel], neighbours[sel], weight[sel], i00[sel], i01[sel], i11[sel], data[sel])
              for sel in (np.flatnonzero(red), np.flatnonzero(~red))]
    out = [np.empty((len(h_[0]), 2 * depth), np.float32) for h_ in halves]
    for _ in range(n_iter):
        for (pix, nb, wt, c00, c01, c11, d), new in zip(halves, out):
            r = d + np.einsum("nk,nkc->nc", wt, flat[nb])
            rf, rb = r[:, :depth], r[:, depth:]
            np.clip(c00 * rf + c01 * rb, 0.0, 1.0, out=new[:, :depth])
            np.clip(c01 * rf + c11 * rb, 0.0, 1.0, out=new[:, depth:])
            flat[pix] = new

"""Trimaps: background 0 / unknown 128 / person 255, from masks and alpha mattes (NumPy and OpenCV only)."""
from __future__ import annotations

import cv2
import numpy as np

TRIMAP_VALUES = np.array([0, 128, 255], dtype=np.uint8)  # class 0 background, 1 unknown, 2 foreground


def erode_dilate(mask: np.ndarray, kernel_size: int = 10) -> np.ndarray:
    """Trimap {0, 128, 255} from a mask or a trimap, with an elliptical kernel.

    Dilate → every pixel > 5 becomes part of the (possible) person; erode → only pixels that stay
    ≥ 250 are sure foreground; the band between the two is unknown (128): a band about ``kernel_size``
    pixels wide around every edge, where hair and motion blur make the alpha soft. Applied to a predicted
    trimap it widens the unknown band, so the matting gets to decide the pixels the network was unsure of.
    Use ``kernel_size=6`` for the "smooth" variant (a narrower band).
    """
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"erode_dilate needs a 2-D uint8 mask, got {mask.dtype} of shape {mask.shape}")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    dilated = cv2.dilate(mask, kernel) > 5
    eroded = cv2.erode(mask, kernel) >= 250
    trimap = np.zeros_like(mask)
    trimap[dilated] = 128
    trimap[eroded] = 255
    return trimap


def make_trimap(alpha: np.ndarray, threshold: int = 50, kernel_size: int = 10) -> np.ndarray:
    """The training trimap of an alpha matte: mask = alpha > threshold, then :func:`erode_dilate`."""
    mask = np.where(alpha > threshold, 255, 0).astype(np.uint8)
    return erode_dilate(mask, kernel_size)


def trimap_to_image(classes) -> np.ndarray:
    """Class map 0/1/2 (numpy or tensor) → trimap image 0/128/255 (uint8).

    The network's argmax gives classes 0/1/2; written as they are, they look black and the unknown band
    can't be told from the person, so every trimap that leaves the program goes through this scaling."""
    if hasattr(classes, "detach"):  # a torch.Tensor
        classes = classes.detach().cpu().numpy()
    return TRIMAP_VALUES[np.asarray(classes, dtype=np.int64)]


def trimap_to_classes(trimap: np.ndarray) -> np.ndarray:
    """Trimap image 0/128/255 → class map 0/1/2 (uint8); values in between go to the nearest class."""
    return np.digitize(trimap, (64, 192)).astype(np.uint8)

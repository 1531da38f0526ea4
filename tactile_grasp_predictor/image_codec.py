"""ROS image encodings and compressed images ⇄ RGB uint8 arrays (numpy + OpenCV).

The one place where ``sensor_msgs/Image`` fields become the core's image convention:
``H x W x 3`` uint8 **RGB**, C-contiguous, owning its memory (never a view of a message
buffer). Every failure raises :class:`~tactile_grasp_predictor.errors.FrameError` naming
the field.

Example:
    >>> import numpy as np
    >>> rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    >>> step, data = encode_image(rgb, "bgr8")
    >>> bool((decode_image("bgr8", 2, 3, step, data) == rgb).all())
    True

"""

from __future__ import annotations

import cv2
import numpy as np

from tactile_grasp_predictor.errors import FrameError

#: encoding → (channels, channel order) of the 8-bit encodings we accept.
_LAYOUTS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "rgb"),
    "bgr8": (3, "bgr"),
    "8uc3": (3, "bgr"),  # passthrough from OpenCV: BGR
    "mono8": (1, "mono"),
    "8uc1": (1, "mono"),
    "rgba8": (4, "rgba"),
    "bgra8": (4, "bgra"),
    "8uc4": (4, "bgra"),
}

_CV_CODES = {"bgr": cv2.COLOR_BGR2RGB, "mono": cv2.COLOR_GRAY2RGB, "rgba": cv2.COLOR_RGBA2RGB,
             "bgra": cv2.COLOR_BGRA2RGB}

#: Encodings :func:`decode_image` accepts.
SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "8UC3", "mono8", "8UC1", "rgba8", "bgra8", "8UC4")

#: Largest accepted image side in pixels (guards memory against corrupt headers).
MAX_SIDE = 16384


def _layout(encoding: str) -> tuple[int, str]:
    layout = _LAYOUTS.get(encoding.strip().lower()) if isinstance(encoding, str) else None
    if layout is None:
        raise FrameError(
            f"Image.encoding: {encoding!r} is not supported (use one of {', '.join(SUPPORTED_ENCODINGS)})"
        )
    return layout


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | np.ndarray,
    is_bigendian: int = 0,
) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``'s fields to ``H x W x 3`` uint8 RGB (a fresh array).

    Rows may be padded (``step > width * channels``); ``mono8`` is replicated to three
    channels; alpha is dropped. ``is_bigendian`` is irrelevant for 8-bit encodings and
    only checked to be 0 or 1.
    """
    channels, order = _layout(encoding)
    for name, v in (("height", height), ("width", width), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise FrameError(f"Image.{name}: must be an integer, got {type(v).__name__}")
    height, width, step = int(height), int(width), int(step)
    if not (0 < height <= MAX_SIDE) or not (0 < width <= MAX_SIDE):
        raise FrameError(f"Image.height/width: {height} x {width} is empty or larger than {MAX_SIDE}")
    if int(is_bigendian) not in (0, 1):
        raise FrameError(f"Image.is_bigendian: must be 0 or 1, got {is_bigendian!r}")
    row = width * channels
    if step < row:
        raise FrameError(f"Image.step: {step} < width {width} x {channels} channels ({encoding})")
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        buf = np.frombuffer(data, dtype=np.uint8)
    else:
        try:  # e.g. array.array or a sequence of ints from a ROS message
            buf = np.asarray(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError) as e:
            raise FrameError(f"Image.data: cannot read {type(data).__name__} as bytes ({e})") from e
    if buf.size != step * height:
        raise FrameError(
            f"Image.data: {buf.size} bytes, expected step {step} x height {height} = {step * height}"
        )
    rows = buf.reshape(height, step)[:, :row].reshape(height, width, channels)  # H x W x C
    out = _to_rgb(np.ascontiguousarray(rows), order)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    return out


def _to_rgb(pixels: np.ndarray, order: str) -> np.ndarray:
    """Convert a contiguous ``H x W x C`` uint8 array in ``order`` to an RGB array owning its memory."""
    if order == "rgb":
        return pixels if pixels.flags.owndata else pixels.copy()
    # OpenCV converts ~20x faster than numpy's strided copies (0.1 vs 2.5 ms at 640 x 480)
    src = pixels[:, :, 0] if order == "mono" else pixels
    return np.ascontiguousarray(cv2.cvtColor(src, _CV_CODES[order]))


def decode_compressed(format: str, data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to ``H x W x 3`` uint8 RGB.

    ``format`` is the message's field, e.g. ``"jpeg"``, ``"png"`` or image_transport's
    ``"bgr8; jpeg compressed bgr8"``.
    """
    fmt = format.lower() if isinstance(format, str) else ""
    if not any(k in fmt for k in ("jpeg", "jpg", "png")):
        raise FrameError(f"CompressedImage.format: {format!r} is not jpeg or png")
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buf = np.frombuffer(bytes(data), dtype=np.uint8)
    if buf.size == 0:
        raise FrameError("CompressedImage.data: empty")
    img = cv2.imdecode(buf.reshape(-1), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3:
        raise FrameError(f"CompressedImage.data: {buf.size} bytes do not decode as {format!r}")
    return np.ascontiguousarray(img[:, :, ::-1])  # BGR → RGB


def encode_image(rgb: np.ndarray, encoding: str) -> tuple[int, bytes]:
    """``H x W x 3`` uint8 RGB → ``(step, data)`` for a ``sensor_msgs/Image`` of ``encoding``.

    ``mono8`` uses the ITU-R BT.601 luma weights; alpha channels are 255.
    """
    channels, order = _layout(encoding)
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise FrameError(f"image: expected H x W x 3 uint8 RGB, got shape {shape} dtype {dtype}")
    h, w, _ = rgb.shape
    if h == 0 or w == 0:
        raise FrameError(f"image: empty {h} x {w}")
    if order == "rgb":
        out = rgb
    elif order == "bgr":
        out = rgb[:, :, ::-1]
    elif order == "mono":
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # H x W
        out = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]
    else:
        alpha = np.full((h, w, 1), 255, np.uint8)
        out = np.concatenate([rgb if order == "rgba" else rgb[:, :, ::-1], alpha], axis=2)
    return w * channels, np.ascontiguousarray(out).tobytes()

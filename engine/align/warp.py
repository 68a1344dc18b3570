"""Fused face warping: bilinear affine warp + colour order + normalisation + HWC->CHW.

`warp_to_tensor` writes a batch of aligned faces straight into an embedder's (N, 3, h, w)
float32 input in one parallel Numba pass over the N*h output rows, instead of N
cv2.warpAffine calls plus full-size numpy passes (flip, cast, normalise, transpose).

Semantics are cv2.warpAffine(..., INTER_LINEAR, BORDER_CONSTANT, 0) of the OpenCV 4.x line
the project pins: M is inverted in float64 (cv2.invertAffineTransform's formula), each
destination pixel (x, y) maps to a source position rounded to 1/1024 then truncated to 1/32
pixel, the 4 taps are weighted by products of those 1/32 fractions with integer rounding,
and taps outside the image count as 0. The result is bit-identical to OpenCV 4.x (checked
on 59 M pixels of LFW crops, tails and borders included). OpenCV 5.0 switched to a float32
kernel whose rounding differs by <= 4 levels on ~1-8% of pixels.
"""
from __future__ import annotations

import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .template import _parse_size

# Numba's parallel kernels run on its threading layer: OpenMP or TBB are safe to enter from two
# threads at once, but the "workqueue" fallback (no libgomp/TBB on the machine) aborts the process
# on concurrent launches. The pipeline's worker and a drop-to-enrol pool thread can warp at the
# same time, so launches are serialised: uncontended, the lock costs ~0.1 us per call.
_LAUNCH = threading.Lock()
# OpenMP's threads spin while they wait for work by default; libgomp reads this when Numba first
# loads its OpenMP threading layer (the first parallel launch), so setting it here is in time.
# Spinning burnt the CPU other threads needed: 16 faces took 7.9 ms with spinning threads on a
# busy 2-core machine, 1.5 ms passive (cv2.warpAffine + numpy: 1.5 ms). A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Below this many faces the kernel runs on the calling thread alone: waking Numba's pool costs more
# than it saves for one or two 112x112 faces, and on a busy 2-core machine (ONNX Runtime and the
# capture threads on the other core) it cost 8.0 ms of CPU per face against 0.5 ms single-threaded
# (measured; see the docstring of `_launch`).
PARALLEL_MIN_FACES = 4


def _launch(n_faces: int, *args) -> None:
    """Run `_warp_kernel(*args)` under the launch lock, on one thread for fewer than
    `PARALLEL_MIN_FACES` faces (``numba.set_num_threads`` is per calling thread; restored after).
    Measured here, one face, 200 calls: ``align`` 0.52 ms CPU (0.57 ms wall) on one thread vs
    8.0 ms CPU (8.3 ms wall) on Numba's two, while the machine ran other work."""
    with _LAUNCH:
        if n_faces >= PARALLEL_MIN_FACES:
            _warp_kernel(*args)
            return
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            _warp_kernel(*args)
        finally:
            numba.set_num_threads(before)


@intrinsic
def _load_u64(typingctx, arr, idx):
    """Bytes idx..idx+7 of a 1-D uint8 array as one unaligned little-endian (x86/ARM) load:
    both horizontal taps of a BGR pixel pair at once. Caller ensures idx + 8 <= arr.size."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint8 and arr.ndim == 1):
        return None
    sig = types.uint64(arr, types.uint64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.pointer_add(builder, ary.data, args[1], ir.IntType(64).as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen


# Rows per prange chunk share one set of scratch buffers; 64 chunks keep both cores busy
# even when some rows take the slower border path.
_CHUNKS = 64


# inline="always" inlines in Numba IR so LLVM sees one loop nest; as plain calls these were
# opaque per-pixel function-pointer calls costing ~5x in runtime.
@njit(cache=True, fastmath=False, inline="always")
def _fixed(v):
    """OpenCV's saturate_cast<int>(double): round half to even, clamped to int32."""
    return int(min(max(np.rint(v), -2147483648.0), 2147483647.0))


@njit(cache=True, fastmath=False)
def _deltas(minv, w):
    """(N, 2, w) int64 per-column offsets saturate_cast<int>(m0 * x * 1024) and the m3 one,
    OpenCV's adelta / bdelta tables: shared by all rows of a face, so computed once."""
    out = np.empty((minv.shape[0], 2, w), np.int64)
    for n in range(minv.shape[0]):
        for x in range(w):
            out[n, 0, x] = _fixed(minv[n, 0] * x * 1024.0)
            out[n, 1, x] = _fixed(minv[n, 3] * x * 1024.0)
    return out


@njit(cache=True, fastmath=False, inline="always")
def _gather_row(flat, height, width, minv, deltas, n, y, w, ofs, wts, g0, g1):
    """Fetch the bilinear taps and weights of output row y of face n.

    flat: (H*W*3,) uint8 image; minv: (N, 6) float64 inverse matrices; deltas: their
    per-column terms from `_deltas`. Coordinates follow OpenCV 4.x warpAffine exactly: 10
    fractional bits (AB_BITS) rounded from float64, then 5 (INTER_BITS), so tap weights are
    products of i/32 fractions. Fills wts (4, w) float32 with the weights times 1024 (exact
    integers) and g0 / g1 (w,) uint64 with the 6 bytes (B, G, R of the left tap, then the
    right; byte k at bits 8k) of the top / bottom tap row, 0 outside the image. Only this
    gather is non-contiguous, so the `_lerp` loops vectorise. (OpenCV also clamps integer
    coordinates to int16, which only matters for images wider or taller than 32767 px.)
    """
    x0 = _fixed((minv[n, 1] * y + minv[n, 2]) * 1024.0) + 16  # + half of a 1/32 step
    y0 = _fixed((minv[n, 4] * y + minv[n, 5]) * 1024.0) + 16
    dx, dy = deltas[n, 0], deltas[n, 1]
    ix_a, ix_b = (x0 + dx[0]) >> 10, (x0 + dx[w - 1]) >> 10
    iy_a, iy_b = (y0 + dy[0]) >> 10, (y0 + dy[w - 1]) >> 10
    stride = width * 3
    # Source positions are monotone in x, so if both row ends keep every tap inside, all
    # pixels between do. Keeping the bottom tap row above the image's last row also keeps
    # the 8-byte loads (2 spare bytes) inside the buffer.
    interior = (min(ix_a, ix_b) >= 0 and max(ix_a, ix_b) < width - 1
                and min(iy_a, iy_b) >= 0 and max(iy_a, iy_b) < height - 2)
    for x in range(w):  # branch-free so that it vectorises; ofs is only read if interior
        sx = (x0 + dx[x]) >> 5  # position in 1/32 pixel
        sy = (y0 + dy[x]) >> 5
        a, b = np.float32(sx & 31), np.float32(sy & 31)
        wts[0, x] = (32 - a) * (32 - b)
        wts[1, x] = a * (32 - b)
        wts[2, x] = (32 - a) * b
        wts[3, x] = a * b
        ofs[x] = (sy >> 5) * stride + (sx >> 5) * 3
    if interior:
        for x in range(w):
            g0[x] = _load_u64(flat, np.uint64(ofs[x]))
            g1[x] = _load_u64(flat, np.uint64(ofs[x] + stride))
        return
    for x in range(w):  # border row: per-pixel bounds checks
        ix = (x0 + dx[x]) >> 10
        iy = (y0 + dy[x]) >> 10
        a = b = np.uint64(0)
        if 0 <= ix < width - 1 and 0 <= iy < height - 2:
            a = _load_u64(flat, np.uint64(iy * stride + ix * 3))
            b = _load_u64(flat, np.uint64((iy + 1) * stride + ix * 3))
        elif -1 <= ix < width and -1 <= iy < height:
            for k in range(6):
                ok_x = ix >= 0 if k < 3 else ix + 1 < width
                o = iy * stride + ix * 3 + k
                if ok_x and iy >= 0:
                    a |= np.uint64(flat[o]) << np.uint64(8 * k)
                if ok_x and iy + 1 < height:
                    b |= np.uint64(flat[o + stride]) << np.uint64(8 * k)
        g0[x] = a
        g1[x] = b


@njit(cache=True, fastmath=False, inline="always")
def _lerp(g0, g1, wts, c, x):
    """Rounded bilinear value (float32 holding 0..255) of source channel c at pixel x:
    (sum of weight*tap + 512) >> 10, OpenCV's (sum w15*p + 2^14) >> 15 with w15 = 32*w.
    Every product and partial sum is an integer < 2^24, so float32 computes it exactly and
    LLVM vectorises it better than int64 arithmetic."""
    s0, s1 = np.uint64(8 * c), np.uint64(8 * c + 24)
    p00, p01 = np.float32(np.uint8(g0[x] >> s0)), np.float32(np.uint8(g0[x] >> s1))
    p10, p11 = np.float32(np.uint8(g1[x] >> s0)), np.float32(np.uint8(g1[x] >> s1))
    acc = wts[0, x] * p00 + wts[1, x] * p01 + wts[2, x] * p10 + wts[3, x] * p11
    return np.floor((acc + np.float32(512.0)) * np.float32(1.0 / 1024.0))


@njit(parallel=True, cache=True, fastmath=False)
def _warp_kernel(img, minv, deltas, mean, std, rgb, tensor, crops):
    """Warp every (face, row) in parallel into exactly one non-empty output.

    tensor (N, 3, h, w) float32 gets (sample - mean[c]) / std[c], channels reversed
    when rgb; crops (N, h, w, 3) uint8 gets the sample in BGR. One kernel serves both so
    the sampling code exists, and is JIT-compiled, once; the unused output is passed empty.
    """
    as_tensor = tensor.shape[0] > 0
    n_faces = tensor.shape[0] if as_tensor else crops.shape[0]
    h = tensor.shape[2] if as_tensor else crops.shape[1]
    w = tensor.shape[3] if as_tensor else crops.shape[2]
    height, width = img.shape[0], img.shape[1]
    flat = img.reshape(-1)
    n_rows = n_faces * h
    n_chunks = min(n_rows, _CHUNKS)
    for ch in prange(n_chunks):
        ofs = np.empty(w, np.int64)
        wts = np.empty((4, w), np.float32)
        g0, g1 = np.empty(w, np.uint64), np.empty(w, np.uint64)
        for r in range(ch * n_rows // n_chunks, (ch + 1) * n_rows // n_chunks):
            n = r // h
            y = r - n * h
            _gather_row(flat, height, width, minv, deltas, n, y, w, ofs, wts, g0, g1)
            for c in range(3):
                if as_tensor:
                    sc = 2 - c if rgb else c
                    mu, sd = mean[c], std[c]
                    for x in range(w):  # same float32 ops as numpy's (x - mean) / std
                        tensor[n, c, y, x] = (_lerp(g0, g1, wts, sc, x) - mu) / sd
                else:
                    for x in range(w):
                        crops[n, y, x, c] = np.uint8(_lerp(g0, g1, wts, c, x))


@njit(cache=True, fastmath=False)
def _invert(M):
    """(N, 2, 3) float64 forward -> (N, 6) float64 inverse, in the operation order of
    OpenCV's warpAffine; singular M gives zeros, as there. Compiled: numpy took ~16 us."""
    out = np.empty((M.shape[0], 6), np.float64)
    for i in range(M.shape[0]):
        a, b, c, d, e, f = M[i, 0, 0], M[i, 0, 1], M[i, 0, 2], M[i, 1, 0], M[i, 1, 1], M[i, 1, 2]
        det = a * e - b * d
        rdet = 1.0 / det if det != 0.0 else 0.0
        i00, i01, i10, i11 = e * rdet, b * -rdet, d * -rdet, a * rdet
        out[i, 0], out[i, 1], out[i, 2] = i00, i01, -i00 * c - i01 * f
        out[i, 3], out[i, 4], out[i, 5] = i10, i11, -i10 * c - i11 * f
    return out


def _prepare(image, M, size, mean=0.0, std=1.0):
    """Validate the shared arguments -> (image C-contiguous, M float64, w, h, mean, std)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"image must have shape (H, W, 3) BGR, got {image.shape}")
    m = np.asarray(M)
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise ValueError(f"M must have shape (N, 2, 3), got {m.shape}")
    if not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
        raise ValueError(f"M must be a numeric array, got dtype {m.dtype}")
    m = m.astype(np.float64)
    if not np.isfinite(m).all():
        raise ValueError("M contains NaN or infinite values")
    norm = []
    for name, val in (("mean", mean), ("std", std)):
        arr = np.asarray(val, dtype=np.float32)
        arr = np.full(3, arr, np.float32) if arr.ndim == 0 else arr
        if arr.shape != (3,) or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be a finite scalar or 3 values, got {val!r}")
        norm.append(arr)
    if not norm[1].all():
        raise ValueError(f"std must be non-zero, got {std!r}")
    w, h = _parse_size(size)
    # ascontiguousarray: no copy for the usual C-contiguous frame. Always a read-only view: Numba
    # compiles (or loads from its cache) one kernel per argument type, and read-only is a type of
    # its own, so a live frame (read-only) after a writable one (a photo, a warm-up frame) cost a
    # second kernel on the engine thread at the session's first embedding: 4.2 s of CPU compiling
    # it on a fresh install, ~10 ms loading it from Numba's cache later (measured here).
    img = np.ascontiguousarray(image).view()
    img.flags.writeable = False
    return img, m, w, h, norm[0], norm[1]


def _check_out(out, want: tuple[int, ...]) -> np.ndarray:
    """A new float32 array of shape want, or `out` once it is verified to fit."""
    if out is None:
        return np.empty(want, dtype=np.float32)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != want:
        got = (out.dtype, out.shape) if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a float32 array of shape {want}, got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out


_NO_TENSOR = np.empty((0, 3, 1, 1), np.float32)
_NO_CROPS = np.empty((0, 1, 1, 3), np.uint8)


def warp_to_tensor(
    image: np.ndarray,
    M: np.ndarray,
    size: tuple[int, int] = (112, 112),
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    rgb: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Warp N faces out of one BGR frame straight into a (N, 3, h, w) float32 tensor.

    image: (H, W, 3) uint8 BGR (a non-contiguous view is copied once). M: (N, 2, 3) forward
    matrices, image pixels -> crop pixels (e.g. `estimate_transforms`); N may be 0.
    size: (width, height) like cv2's dsize. mean/std: scalars or 3 values per *output*
    channel, in the output colour order (RGB when rgb=True); value = (pixel - mean) / std
    in float32, pixel being the rounded 0..255 warp result, so the result equals
    `warp_reference` bit for bit. out: optional C-contiguous float32 (N, 3, h, w) buffer
    to reuse across frames. Returns `out` or a new array.
    """
    img, m64, w, h, mean32, std32 = _prepare(image, M, size, mean, std)
    out = _check_out(out, (m64.shape[0], 3, h, w))
    if m64.shape[0]:
        minv = _invert(m64)
        _launch(m64.shape[0], img, minv, _deltas(minv, w), mean32, std32, bool(rgb), out, _NO_CROPS)
    return out


def warp_crops(image: np.ndarray, M: np.ndarray, size: tuple[int, int] = (112, 112)) -> np.ndarray:
    """Aligned BGR uint8 crops (N, h, w, 3) with `warp_to_tensor`'s sampling, i.e. stacked
    cv2.warpAffine(image, M[i], size, INTER_LINEAR, BORDER_CONSTANT 0); for JPEG storage."""
    img, m64, w, h, mean32, std32 = _prepare(image, M, size)
    crops = np.empty((m64.shape[0], h, w, 3), dtype=np.uint8)
    if m64.shape[0]:
        minv = _invert(m64)
        _launch(m64.shape[0], img, minv, _deltas(minv, w), mean32, std32, False, _NO_TENSOR, crops)
    return crops

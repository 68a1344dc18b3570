"""engine.align: template, Umeyama fit, fused Numba warp vs cv2.warpAffine."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.align import (
    ARCFACE_TEMPLATE_112,
    estimate_transforms,
    scaled_template,
    umeyama,
    warp_crops,
    warp_reference,
    warp_to_tensor,
)
from tests.conftest import shared_path

# The kernel reproduces OpenCV 4.x's fixed-point INTER_LINEAR bit for bit (the pinned line);
# OpenCV 5.0's float kernel rounds differently, by up to 4 grey levels on sharp edges.
CV4 = cv2.__version__.startswith("4.")
TOL = 0 if CV4 else 4

# YuNet (face_detection_yunet_2023mar_int8bq) output on Aaron_Eckhart_0001.jpg, 250x250:
# left eye, right eye, nose, left mouth, right mouth (image's left first).
YUNET_KPS = np.array(
    [[104.32, 109.00], [148.03, 108.45], [130.66, 133.47], [110.68, 153.28], [147.03, 151.41]],
    dtype=np.float32,
)


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ M[:, :2].T + M[:, 2]


def cv2_tensor(img, M, size, mean, std, rgb):
    """Independent spelling of the reference: cv2 crops, then plain numpy in HWC order."""
    crops = np.stack([cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0) for m in M])
    x = crops[..., ::-1] if rgb else crops
    x = (x.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), crops


def face_transforms(kps: np.ndarray) -> np.ndarray:
    """Aligning M for kps plus variants: rotated, zoomed out, shifted partly off the image."""
    base = estimate_transforms(kps[None], ARCFACE_TEMPLATE_112)[0].astype(np.float64)
    full = np.vstack([base, [0, 0, 1]])
    extra = [similarity(1, 0.4, -30, 10), similarity(0.5, -0.3, 40, 20),
             similarity(1.7, 0.0, -150, -60), similarity(1.0, np.pi, 230, 200)]
    return np.stack([base] + [(np.vstack([e, [0, 0, 1]]) @ full)[:2] for e in extra])


# ---------------------------------------------------------------- template


def test_template_values_and_scaling():
    assert ARCFACE_TEMPLATE_112.shape == (5, 2) and ARCFACE_TEMPLATE_112.dtype == np.float32
    assert ARCFACE_TEMPLATE_112[0, 0] < ARCFACE_TEMPLATE_112[1, 0]  # left eye on image left
    np.testing.assert_array_equal(scaled_template((112, 112)), ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(scaled_template((224, 224)), ARCFACE_TEMPLATE_112 * 2, rtol=1e-6)
    np.testing.assert_allclose(scaled_template(56), ARCFACE_TEMPLATE_112 / 2, rtol=1e-6)
    for bad in [(0, 0), (-112, -112), (112, 96), (112.0, 112.0), "112", (112,), None]:
        with pytest.raises(ValueError):
            scaled_template(bad)


# ---------------------------------------------------------------- similarity


def test_umeyama_recovers_known_similarity():
    rng = np.random.default_rng(1)
    for _ in range(20):
        angle = rng.uniform(-np.pi, np.pi)
        truth = similarity(rng.uniform(0.2, 5), angle, *rng.uniform(-500, 500, 2))
        src = rng.uniform(0, 640, size=(int(rng.integers(2, 9)), 2))
        M = umeyama(src, apply(truth, src))
        assert M.shape == (2, 3) and M.dtype == np.float64
        np.testing.assert_allclose(M, truth, rtol=1e-9, atol=1e-7)


def test_umeyama_is_least_squares_without_reflection():
    # In 2-D the LS similarity has a closed form with complex numbers, z = <s, d> / <s, s>;
    # it is an independent check of the SVD route, including mirrored (det < 0) inputs.
    rng = np.random.default_rng(2)
    for k in range(40):
        src = rng.normal(size=(5, 2)) * 40 + 100
        dst = rng.normal(size=(5, 2)) * 30 + 50
        if k % 2:
            dst = src * [-1.3, 1.3] + 7  # pure reflection: the best proper rotation is wanted
        s = (src - src.mean(0)) @ [1, 1j]
        d = (dst - dst.mean(0)) @ [1, 1j]
        z = np.vdot(s, d) / np.vdot(s, s)
        t = dst.mean(0) @ [1, 1j] - z * (src.mean(0) @ [1, 1j])
        want = np.array([[z.real, -z.imag, t.real], [z.imag, z.real, t.imag]])
        M = umeyama(src, dst)
        assert np.linalg.det(M[:, :2]) >= 0  # never a flip
        np.testing.assert_allclose(M, want, rtol=1e-9, atol=1e-9)


def test_umeyama_rejects_bad_input():
    pts = np.random.default_rng(3).normal(size=(5, 2))
    with pytest.raises(ValueError, match="coincide"):
        umeyama(np.ones((5, 2)) * 7, pts)
    with pytest.raises(ValueError, match="degenerate"):
        umeyama(pts, np.full((5, 2), 3.0))
    bad_nan = pts.copy()
    bad_nan[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        umeyama(bad_nan, pts)
    with pytest.raises(ValueError, match="shape"):
        umeyama(pts[:, :1], pts)
    with pytest.raises(ValueError, match="same shape"):
        umeyama(pts[:4], pts)
    with pytest.raises(ValueError, match="at least 2"):
        umeyama(pts[:1], pts[:1])


def test_estimate_transforms_maps_yunet_points_onto_template():
    kps = np.stack([YUNET_KPS, YUNET_KPS * 2 + [300, 40]])
    M = estimate_transforms(kps, ARCFACE_TEMPLATE_112)
    assert M.shape == (2, 2, 3) and M.dtype == np.float32
    for i in range(2):
        mapped = apply(M[i].astype(np.float64), kps[i].astype(np.float64))
        err = np.linalg.norm(mapped - ARCFACE_TEMPLATE_112, axis=1)
        assert err.mean() < 2.5 and err.max() < 4.0, err  # 5 real points never fit exactly
        want = umeyama(kps[i], ARCFACE_TEMPLATE_112)
        np.testing.assert_allclose(M[i], want, rtol=1e-5, atol=1e-4)
    # Eyes land on the template's eye row, so the face is upright in the crop.
    eyes = apply(M[0].astype(np.float64), YUNET_KPS[:2].astype(np.float64))
    assert abs(eyes[:, 1] - 51.6).max() < 2
    assert estimate_transforms(np.zeros((0, 5, 2)), ARCFACE_TEMPLATE_112).shape == (0, 2, 3)
    with pytest.raises(ValueError, match="points per face"):
        estimate_transforms(kps[:, :4], ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="item 1"):
        estimate_transforms(np.stack([YUNET_KPS, np.zeros((5, 2))]), ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="shape"):
        estimate_transforms(YUNET_KPS, ARCFACE_TEMPLATE_112)  # missing batch axis


# ---------------------------------------------------------------- warp, synthetic image


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:90, 0:130]
    img = np.stack([xx * 1.9, yy * 2.8, (xx + yy) % 256], axis=-1)
    img = img + rng.integers(0, 20, (90, 130, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_warp_synthetic_exact_cases(synthetic):
    ident = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    crop = warp_crops(synthetic, ident, (60, 40))
    np.testing.assert_array_equal(crop[0], synthetic[:40, :60])
    shifted = warp_crops(synthetic, ident + [[0, 0, -10], [0, 0, 5]], (60, 40))[0]
    np.testing.assert_array_equal(shifted[5:, :], synthetic[:35, 10:70])
    assert not shifted[:5].any()  # rows above the image: BORDER_CONSTANT 0
    t = warp_to_tensor(synthetic, ident, (60, 40), rgb=False)
    np.testing.assert_array_equal(t[0], synthetic[:40, :60].transpose(2, 0, 1).astype(np.float32))


def test_warp_synthetic_matches_cv2(synthetic):
    rng = np.random.default_rng(5)
    M = np.stack([similarity(rng.uniform(0.3, 3), rng.uniform(-3, 3), *rng.uniform(-150, 60, 2))
                  for _ in range(12)] + [np.zeros((2, 3))])  # singular M: cv2 samples (0, 0)
    for size in [(112, 112), (37, 61)]:
        want_t, want_c = cv2_tensor(synthetic, M, size, (10.0, 20.0, 30.0), (2.0, 4.0, 8.0), True)
        got_t = warp_to_tensor(synthetic, M, size, mean=(10, 20, 30), std=(2, 4, 8), rgb=True)
        assert got_t.shape == (len(M), 3, size[1], size[0])
        got_c = warp_crops(synthetic, M, size)
        diff = np.abs(got_c.astype(int) - want_c)
        assert diff.mean() < 0.05 and diff.max() <= TOL
        np.testing.assert_allclose(got_t, want_t, rtol=0, atol=TOL / 2.0)
        np.testing.assert_array_equal(warp_reference(synthetic, M, size, (10, 20, 30), (2, 4, 8)),
                                      want_t)


def test_warp_batch_of_zero_and_out_buffer(synthetic):
    empty = np.zeros((0, 2, 3), np.float32)
    t = warp_to_tensor(synthetic, empty)
    assert t.shape == (0, 3, 112, 112) and t.dtype == np.float32
    assert warp_crops(synthetic, empty, (50, 60)).shape == (0, 60, 50, 3)
    assert warp_reference(synthetic, empty).shape == (0, 3, 112, 112)
    M = np.array([similarity(0.7, 0.2, 5, -3)], np.float32)
    buf = np.full((1, 3, 112, 112), np.nan, np.float32)
    assert warp_to_tensor(synthetic, M, out=buf) is buf
    np.testing.assert_array_equal(buf, warp_to_tensor(synthetic, M))
    assert np.abs(buf - warp_reference(synthetic, M)).max() <= TOL


def test_warp_non_contiguous_image(synthetic):
    M = np.array([similarity(1.2, 0.3, -20, 10)])
    view = synthetic[::2, ::-1]  # neither C-contiguous nor positive strides
    np.testing.assert_array_equal(warp_crops(view, M), warp_crops(np.ascontiguousarray(view), M))
    bgra = np.dstack([synthetic, synthetic[..., :1]])
    np.testing.assert_array_equal(warp_crops(bgra[..., :3], M), warp_crops(synthetic, M))


def test_warp_one_kernel_for_writable_and_read_only_frames(synthetic):
    """Live frames are read-only, photos and warm-up frames writable: Numba types the two apart,
    and a second kernel compiled (or loaded) mid-session stalled the engine thread."""
    from engine.align import warp as warp_module

    M = np.array([similarity(1.1, 0.1, -5, 3)])
    frozen = synthetic.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(warp_to_tensor(frozen, M), warp_to_tensor(synthetic, M))
    np.testing.assert_array_equal(warp_crops(frozen, M), warp_crops(synthetic, M))
    images = {sig[0] for sig in warp_module._warp_kernel.signatures}
    assert len(images) == 1 and next(iter(images)).mutable is False
    assert synthetic.flags.writeable  # the caller's array is untouched


def test_warp_rejects_bad_input(synthetic):
    M = np.array([similarity(1, 0, 0, 0)], np.float32)
    cases = [
        (cv2.cvtColor(synthetic, cv2.COLOR_BGR2GRAY), M, {}, "shape"),
        (synthetic.astype(np.float32), M, {}, "uint8"),
        (np.dstack([synthetic, synthetic[..., :1]]), M, {}, "shape"),
        (synthetic, M[0], {}, r"\(N, 2, 3\)"),
        (synthetic, np.zeros((1, 3, 3)), {}, r"\(N, 2, 3\)"),
        (synthetic, M * np.nan, {}, "NaN"),
        (synthetic, M, {"out": np.zeros((1, 3, 112, 112), np.float64)}, "out"),
        (synthetic, M, {"out": np.zeros((2, 3, 112, 112), np.float32)}, "out"),
        (synthetic, M, {"out": np.zeros((1, 112, 112, 3), np.float32)}, "out"),
        (synthetic, M, {"std": (1, 0, 1)}, "std"),
        (synthetic, M, {"mean": (1, 2)}, "mean"),
        (synthetic, M, {"size": (0, 112)}, "size"),
    ]
    for img, mats, kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            warp_to_tensor(img, mats, **kw)
    with pytest.raises(ValueError, match="uint8"):
        warp_crops(synthetic.astype(np.float32), M)
    with pytest.raises(ValueError, match="uint8"):
        warp_reference(synthetic.astype(np.float32), M)


# ---------------------------------------------------------------- warp, real LFW image


@pytest.fixture(scope="module")
def lfw_image() -> np.ndarray:
    path = shared_path("data", "lfw", "lfw-deepfunneled", "Aaron_Eckhart", "Aaron_Eckhart_0001.jpg")
    img = cv2.imread(str(path))
    assert img is not None and img.shape == (250, 250, 3), f"cannot read {path}"
    return img


def test_warp_lfw_parity_with_cv2(lfw_image):
    # float32 as estimate_transforms returns; both sides must see the same matrices (a float64
    # copy moves the sample grid by ~1e-6 px, enough to flip a rounding here and there).
    M = face_transforms(YUNET_KPS).astype(np.float32)
    for rgb, mean, std in [(True, 127.5, 127.5), (False, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))]:
        want, crops = cv2_tensor(lfw_image, M, (112, 112), mean, std, rgb)
        got = warp_to_tensor(lfw_image, M, mean=np.broadcast_to(mean, 3),
                             std=np.broadcast_to(std, 3), rgb=rgb)
        grey = np.abs(got - want) * np.asarray(std, np.float32).reshape(-1)[0]
        assert grey.mean() < 1.0 and grey.max() <= TOL, (grey.mean(), grey.max())
        assert (grey <= 1.0).mean() > 0.99  # within one grey level (cv2 rounds to uint8 first)
    # The transforms really cover the border path: some crops are partly black.
    assert (crops[3:] == 0).all(axis=-1).any()
    diff = np.abs(warp_crops(lfw_image, M).astype(int) - crops)
    assert diff.mean() < 1.0 and diff.max() <= TOL


def test_warp_lfw_channel_order_and_normalisation(lfw_image):
    M = face_transforms(YUNET_KPS)[:1]
    crop = cv2.warpAffine(lfw_image, M[0], (112, 112)).astype(np.float32)
    x = warp_to_tensor(lfw_image, M, mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 8.0), rgb=True)[0]
    np.testing.assert_allclose(x[0], (crop[..., 2] - 1) / 2, atol=1.5)  # R first, mean[0]
    np.testing.assert_allclose(x[2], (crop[..., 0] - 3) / 8, atol=0.5)  # B last, mean[2]
    y = warp_to_tensor(lfw_image, M, mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 8.0), rgb=False)[0]
    np.testing.assert_allclose(y[0], (crop[..., 0] - 1) / 2, atol=1.5)
    assert x[1].mean() == pytest.approx((crop[..., 1].mean() - 2) / 4, abs=0.05)

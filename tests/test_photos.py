"""Photos as people take them, on real LFW faces: big faces (upscaled 2-16x, up to the whole
image), phone orientation (EXIF), Motion-Photo JPEGs, grey images, tight crops -- identified
as the right person -- and `identify --annotate` into the images' own folder."""
from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.bench.photos import first_people, upscale
from engine.config import DetectorConfig, RecognizerConfig
from engine.detectors.multiscale import PyramidDetector, pyramid_scales
from engine.gallery.index import GalleryIndex
from engine.imageio import read_image
from engine.recognizer import Recognizer, match_faces
from tests.conftest import shared_path
from tests.test_cli import facescope

PEOPLE = 6


@pytest.fixture(scope="module")
def lfw() -> Path:
    return shared_path("data", "lfw")


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    # the still-image detector: native size + pyramid
    return Recognizer.from_config(RecognizerConfig(detector=DetectorConfig(input_size=None)))


@pytest.fixture(scope="module")
def people(lfw, rec):
    """(name, first image path, second image) of the first PEOPLE people, and a gallery index of
    their first images."""
    chosen = first_people(lfw, PEOPLE)
    index = GalleryIndex(rec.embedder.dim)
    for pid, (name, first, _) in enumerate(chosen):
        faces = rec.largest(read_image(first))
        assert len(faces) == 1, f"{first}: no face to enrol"
        index.add(np.array([pid]), np.array([pid]), faces.embeddings)
        index.set_name(pid, name)
    return [(name, first, read_image(second)) for name, first, second in chosen], index


def name_of_largest(rec: Recognizer, image: np.ndarray, index) -> tuple[str | None, float]:
    faces = rec.detect(image)
    assert len(faces), "no face found"
    faces = match_faces(rec.embed(image, faces), index, rec.threshold)
    i = faces.largest()
    return faces.names[i], float(faces.similarities[i])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    area = lambda x: float(np.prod(x[2:] - x[:2]))  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_still_detector_is_the_pyramid_and_video_is_not(rec):
    assert isinstance(rec.detector, PyramidDetector)
    video = Recognizer.from_config(RecognizerConfig(detector=DetectorConfig(input_size=(640, 384))))
    assert not isinstance(video.detector, PyramidDetector)  # the real-time path is one fixed scale
    assert pyramid_scales((250, 250), 1920) == [1.0]  # LFW-sized images: the native pass only
    assert pyramid_scales((4000, 3000), 1920) == [0.48, 0.24, 0.12, 0.06]


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
def test_big_faces_are_found_where_they_are_and_named(rec, people, scale):
    """A face scaled up to ~1600 px (16x; the whole 4000x4000 image): the pyramid's box is the
    1x box scaled (the single native pass puts it elsewhere from ~500 px up), and the name is right."""
    probes, index = people
    wrong = []
    for name, _, image in probes:
        small = rec.detect(image)
        ref = small.boxes[small.largest()] * scale
        big = upscale(image, scale)
        faces = rec.detect(big)
        assert iou(faces.boxes[faces.largest()], ref) > 0.7, f"{name} at {scale}x: box off"
        got, sim = name_of_largest(rec, big, index)
        if got != name:
            wrong.append(f"{name}: {got} ({sim:.2f})")
    assert not wrong, f"{scale}x: {wrong}"


def phone_jpeg(upright_bgr: np.ndarray, orientation: int) -> bytes:
    """What a phone writes: the sensor's pixels (turned the other way) and the EXIF tag that
    tells a viewer how to turn them upright (6: 90 deg clockwise, 8: counter-clockwise, 3: 180)."""
    stored = {3: np.rot90(upright_bgr, 2), 6: np.rot90(upright_bgr, 1), 8: np.rot90(upright_bgr, -1)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(stored[:, :, ::-1])).save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_rotated_photo_is_identified(tmp_path, rec, people, orientation):
    probes, index = people
    for i, (name, _, image) in enumerate(probes[:3]):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(phone_jpeg(upscale(image, 4), orientation))  # a 1000 px portrait
        got, sim = name_of_largest(rec, read_image(path), index)
        assert got == name, f"orientation {orientation}: {name} read as {got} ({sim:.2f})"


def test_grey_image_and_tight_crop_are_identified(tmp_path, rec, people):
    probes, index = people
    for name, _, image in probes[:3]:
        grey = tmp_path / "grey.png"
        cv2.imwrite(str(grey), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        assert read_image(grey).shape == image.shape
        assert name_of_largest(rec, read_image(grey), index)[0] == name
        faces = rec.detect(image)
        x0, y0, x1, y1 = faces.boxes[faces.largest()].round().astype(int)
        tight = upscale(image[max(y0, 0):y1, max(x0, 0):x1], 4)  # the face is the whole ~400 px image
        got, sim = name_of_largest(rec, tight, index)
        assert got == name, f"tight crop of {name}: {got} ({sim:.2f})"


def test_identify_photos_in_their_own_folder(tmp_path, lfw, people):
    """The CLI on a folder of phone-like photos: EXIF portrait, a Motion Photo (video appended),
    a grey PNG, a truncated JPEG (refused, the others still identified); annotated copies go
    into the same folder and no input changes."""
    probes, _ = people
    name, first, image = probes[0]
    db = tmp_path / "g.db"
    facescope("enroll", "--gallery", db, "--name", name, first)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "portrait.jpg").write_bytes(phone_jpeg(upscale(image, 8)[:, 250:1750], 6))  # 1500x2000 upright
    ok, jpg = cv2.imencode(".jpg", upscale(image, 2))
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(200_000)
    (photos / "motion.jpg").write_bytes(jpg.tobytes() + video)
    cv2.imwrite(str(photos / "grey.png"), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    (photos / "cut.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    inputs = sorted(photos.iterdir())
    before = {p.name: p.read_bytes() for p in inputs}
    res = tmp_path / "ident.json"
    out = facescope("identify", "--gallery", db, *inputs, "--json", res, "--annotate", photos, check=False)
    assert out.returncode == 1 and "cut.jpg: truncated" in out.stdout and "Traceback" not in out.stderr
    found = {Path(f["image"]).name: f["name"] for f in json.loads(res.read_text())["faces"]}
    assert found == {"portrait.jpg": name, "motion.jpg": name, "grey.png": name}
    assert {p.name: p.read_bytes() for p in inputs} == before
    assert sorted(p.name for p in photos.glob("*_annotated.jpg")) == [
        "grey_annotated.jpg", "motion_annotated.jpg", "portrait_annotated.jpg"]
    annotated = read_image(photos / "portrait_annotated.jpg")
    assert annotated.shape[:2] == (2000, 1500)  # drawn on the upright portrait, not the stored landscape


def test_annotated_path_never_lands_on_an_input(tmp_path):
    from engine.cli.enroll_cmd import annotated_path

    a, b = tmp_path / "x" / "a.jpg", tmp_path / "y" / "a.png"
    taken = tmp_path / "a_annotated.jpg"  # an input that is itself an earlier annotated copy
    inputs = {p.resolve() for p in (a, b, taken)}
    written: set[Path] = set()
    first = annotated_path(tmp_path, a, inputs, written)
    written.add(first.resolve())
    second = annotated_path(tmp_path, b, inputs, written)
    assert (first.name, second.name) == ("a_annotated-2.jpg", "a_annotated-3.jpg")
    assert annotated_path(tmp_path / "x", a, {a.resolve()}, set()).name == "a_annotated.jpg"


def test_yolo_in_the_pyramid(people):
    """The same wrapper around the shipped YOLO (box-only; its single native pass finds no face at
    all in an 8x LFW photo): the pyramid finds the face where it is, once (no part of it kept as
    another face)."""
    from engine.detectors.multiscale import detector_for

    det = detector_for(DetectorConfig(name="yolo", input_size=None))
    assert isinstance(det, PyramidDetector) and det.name == "yolo"
    for name, _, image in people[0][:3]:
        small = det(image)
        ref = small.boxes[small.largest()] * 8
        faces = det(upscale(image, 8))
        hits = [iou(b, ref) for b in faces.boxes]
        assert max(hits) > 0.7, f"{name}: {hits}"
        inside = [b for b in faces.boxes if iou(b, ref) <= 0.7 and b[0] >= ref[0] and b[2] <= ref[2]
                  and b[1] >= ref[1] and b[3] <= ref[3]]
        assert not inside, f"{name}: parts of the face kept as faces: {inside}"


def test_pyramid_settings(rec, people):
    """min_face_size counts source pixels on every level; the wrapper refuses a fixed-size detector."""
    from engine.detectors import create_detector
    from engine.detectors.multiscale import detector_for

    _, _, image = people[0][0]
    big = upscale(image, 8)  # face ~800 px: found on the coarse levels only
    side = lambda f: np.minimum(f.boxes[:, 2] - f.boxes[:, 0], f.boxes[:, 3] - f.boxes[:, 1])  # noqa: E731
    assert side(rec.detect(big)).max() > 600
    kept = detector_for(DetectorConfig(input_size=None, min_face_size=600))(big)
    assert len(kept) >= 1 and side(kept).min() >= 600
    with pytest.raises(ValueError, match="native-size"):
        PyramidDetector(create_detector("yunet", DetectorConfig(input_size=(640, 384))), DetectorConfig())
    with pytest.raises(ValueError, match="pyramid must be"):
        DetectorConfig(pyramid="yes")


def test_shrink_keeps_source_coordinates():
    """Levels are made by halvings that drop an odd row/column: a point still maps back to
    where it is in the source (within one level pixel)."""
    from engine.detectors.multiscale import shrink

    image = np.zeros((3001, 4003, 3), np.uint8)
    cv2.circle(image, (3500, 2600), 40, (255, 255, 255), -1)
    level, covered = image, (4003.0, 3001.0)
    for s in (0.48, 0.24, 0.12, 0.06):
        level, covered = shrink(level, covered, s)
        assert abs(level.shape[1] - 4003 * s) <= 2 and abs(level.shape[0] - 3001 * s) <= 2
        ys, xs = np.nonzero(level[:, :, 0] > 60)
        weights = level[ys, xs, 0].astype(float)
        cx, cy = np.average(xs + 0.5, weights=weights), np.average(ys + 0.5, weights=weights)
        sx, sy = level.shape[1] / covered[0], level.shape[0] / covered[1]
        assert abs(cx / sx - 3500.5) < 1 / sx and abs(cy / sy - 2600.5) < 1 / sy, (s, cx / sx, cy / sy)

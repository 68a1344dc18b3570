"""Shared fixtures: locating ../shared (real data) and skipping cleanly without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACESCOPE_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared, or skip the calling test with a clear message when absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs real data at {path} (../shared is absent in a user's clone)")
    return path


@pytest.fixture(scope="session", autouse=True)
def session_model_cache(tmp_path_factory):
    """Prepared models (engine.models.prepare) go to a folder of this test session, never the user's
    cache: tests export models of their own, with new weights each run, and their prepared copies
    piled up there (~14 MB a run). Preparing the shipped ones again costs ~1.5 s a session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FACESCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
    yield
    mp.undo()


DEMO_MJPEG_FRAMES = 40


@pytest.fixture(scope="session")
def demo_frames() -> list:
    """Frames 50-89 of the shipped demo video (faces in them), (528, 720, 3) uint8 BGR: the pictures
    the MJPEG tests encode (tests/test_jpeg_packets.py, tests/test_decode_on_demand.py)."""
    import cv2

    cap = cv2.VideoCapture(str(REPO / "resources" / "demo" / "megamind.avi"))
    frames = [cap.read()[1] for _ in range(50 + DEMO_MJPEG_FRAMES)][50:]
    cap.release()
    assert all(f is not None for f in frames)
    return frames


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return shared_path("data", "lfw")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto broker on 127.0.0.1 (``tests.mqtt_broker.Broker``), stopped after the test."""
    from tests.mqtt_broker import MOSQUITTO, Broker

    if MOSQUITTO is None:
        pytest.skip("mosquitto binary absent (apt-get install mosquitto)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()

"""``facescope run`` while it runs, as a long camera run is used: its events reach the file as they
happen (wall-clock stamped, private to the user), and a person erased from the gallery by another
process stops being named within seconds, without a restart (engine.gallery.watch). Real
processes, a real clip paced like a camera, a real gallery file changed by the real CLI."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime

import cv2
import pytest

from tests.conftest import REPO, shared_path
from tests.test_cli import facescope

RELOAD_S = 2.5  # the run polls every 1 s; one more second for a paced frame and a loaded machine


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """The megamind clip played twice (540 frames, 21.6 s paced): Roxanne and Bernard come back in the
    second pass, long after an erasure made during the first."""
    src = shared_path("data", "video", "megamind.avi")
    out = tmp_path_factory.mktemp("clip") / "megamind2.avi"
    cap = cv2.VideoCapture(str(src))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    for f in frames + frames:
        writer.write(f)
    writer.release()
    return out


@pytest.fixture(scope="module")
def demo_gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    facescope("demo", "--frames", "1", "--out", folder, "--gallery", folder / "g.db")  # Roxanne and Bernard
    return folder / "g.db"


def _lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]


def _wait(path, proc, pred, timeout_s: float) -> list[dict]:
    """Events of ``path`` once one satisfies ``pred``, read while ``proc`` still runs."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        lines = _lines(path)
        if any(pred(e) for e in lines):
            return lines
        assert proc.poll() is None, f"the run ended first:\n{proc.communicate()[1]}"
        time.sleep(0.1)
    raise AssertionError(f"no such event within {timeout_s} s: {lines}")


@pytest.mark.parametrize("sources", [1, 2], ids=["one-source", "two-sources"])
def test_events_flush_live_and_an_erasure_applies_without_restart(long_clip, demo_gallery, tmp_path, sources):
    db = tmp_path / "g.db"
    db.write_bytes(demo_gallery.read_bytes())
    events = tmp_path / "events.jsonl"
    events.write_text('{"kind": "earlier run"}\n')
    events.chmod(0o644)
    src = ["--source", long_clip] if sources == 1 else \
        ["--source", long_clip, "--source-name", "cam0", "--source", long_clip, "--source-name", "cam1"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", *map(str, src), "--realtime",
                             "--gallery", str(db), "--events", str(events), "--no-sightings"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # 1. flushed as it happens: the run is still going (the clip lasts 21.6 s) when the line is there
        _wait(events, proc, lambda e: e.get("kind") == "identified" and e.get("name") == "Roxanne", 120)
        assert stat.S_IMODE(events.stat().st_mode) == 0o600  # names of people: the user's only
        # 2. erased by another process while the run goes on
        facescope("gallery", "delete", "--gallery", db, "Roxanne")
        erased = time.time()
        _wait(events, proc, lambda e: e.get("epoch", 0) > erased + RELOAD_S and e.get("name") == "Bernard", 60)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    lines = _lines(events)
    assert lines[0] == {"kind": "earlier run"}  # appended to, nothing lost
    for e in lines[1:]:
        assert start - 1 <= e["epoch"] <= time.time() + 1
        stamped = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        assert stamped.tzinfo is not None and abs(stamped.timestamp() - e["epoch"]) < 1e-5
        assert e["source"] in ({str(long_clip)} if sources == 1 else {"cam0", "cam1"})
    late = [e for e in lines[1:] if e["epoch"] > erased + RELOAD_S]
    assert not [e for e in late if e["name"] == "Roxanne"], late  # erased: never named again
    assert {e.get("source") for e in late if e["name"] == "Bernard"} == set(
        [str(long_clip)] if sources == 1 else ["cam0", "cam1"])  # the others are still named, on every source


@pytest.mark.parametrize("sources", [1, 2], ids=["one-source", "two-sources"])
def test_an_erasure_takes_back_the_retained_mqtt_state_and_home_assistant_sensor(long_clip, demo_gallery,
                                                                                 tmp_path, broker, sources):
    """``facescope run --mqtt ... --mqtt-retain --ha-discovery`` keeps each person's presence state and
    sensor on the broker; deleting Roxanne from the gallery while it runs removes hers (the run sees
    the deletion, ``Publisher.erase``), and her face, seen again after, never brings them back."""
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'facescope[mqtt]')")
    from tests.mqtt_broker import Subscriber

    db = tmp_path / "g.db"
    db.write_bytes(demo_gallery.read_bytes())
    events = tmp_path / "events.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    src = ["--source", long_clip] if sources == 1 else \
        ["--source", long_clip, "--source-name", "cam0", "--source", long_clip, "--source-name", "cam1"]
    live = Subscriber(broker.port)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "run", *map(str, src), "--realtime",
                             "--gallery", str(db), "--events", str(events), "--no-sightings",
                             "--mqtt", broker.url("fs"), "--mqtt-retain", "--ha-discovery"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(events, proc, lambda e: e.get("kind") == "identified" and e.get("name") == "Roxanne", 120)
        live.wait_for(lambda m: m[0] == "fs/person/roxanne/state", 30)  # published (the sink has its own thread)
        live.close()
        seen = Subscriber(broker.port)  # subscribed after it was published: what the broker keeps
        seen.wait_for(lambda m: m[0] == "fs/person/roxanne/state" and m[2])
        seen.wait_for(lambda m: m[0] == "homeassistant/binary_sensor/facescope_fs_roxanne/config" and m[2])
        seen.close()
        facescope("gallery", "delete", "--gallery", db, "Roxanne")
        proc.wait(timeout=120)  # the clip's second pass shows her face again
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    late = Subscriber(broker.port)
    late.wait_for(lambda m: m[0] == "fs/person/bernard/state" and m[2])
    late.wait_for(lambda m: m[0] == "homeassistant/binary_sensor/facescope_fs_bernard/config" and m[2])
    time.sleep(0.3)  # retained messages come in one burst at subscription
    assert not [m for m in late.msgs if "roxanne" in m[0]], [m[0] for m in late.msgs]
    late.close()

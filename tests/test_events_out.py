"""Events out (engine/events_out): a real mosquitto broker, a real local HTTP server, the CLI end to end."""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.errors import FacescopeError
from engine.events_out import Publisher, event_payload, slug, source_name
from engine.events_out.webhook import WebhookConfig, WebhookSink, parse_header
from tests.mqtt_broker import PASSWORD, Subscriber, free_port

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "megamind.avi"
TOKEN = "tok-abcdef-123456"

paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'facescope[mqtt]')")


def ev(kind, tid, name=None, sim=None):
    return {"kind": kind, "track_id": tid, "frame": 1, "t": 0.5, "media_s": 0.04, "name": name, "similarity": sim}


def make_mqtt(url, **kw):
    from engine.events_out.mqtt import MqttConfig, MqttSink

    return MqttSink(MqttConfig(url, reconnect_min_s=1, reconnect_max_s=2, **kw))


def test_payload_and_slug():
    p = event_payload(ev("identified", 3, "Roxanne Ritchi", 0.61234), "rtsp://cam:***@h/s", now=1_800_000_000.25)
    assert p["person"] == "Roxanne Ritchi" and p["track_id"] == 3 and p["similarity"] == 0.6123
    assert p["time"] == "2027-01-15T08:00:00.250Z" and p["epoch"] == 1_800_000_000.25
    assert p["crop_path"] is None and p["source"] == "rtsp://cam:***@h/s"
    assert event_payload({**ev("lost", 1), "crop_path": "/x/1.jpg"}, "s")["crop_path"] == "/x/1.jpg"
    assert p["source_name"] == "h/s"
    assert source_name("/videos/door.mp4") == "door.mp4" and source_name("0") == "webcam0"
    assert source_name("rtsp://u:***@10.0.0.5:554/live?token=***") == "10.0.0.5/live"


def test_event_line_stamps_wall_clock_time():
    """The ``--events`` record: the event, its source, ``epoch`` and the same millisecond as ISO 8601
    UTC (a float's microseconds would truncate 629.387 to 629.386)."""
    from engine.events import Event, WallClock, event_line, iso_utc

    line = event_line(Event("identified", 4, 12, 5.0, 0.48, "Roxanne", 0.7), 1796597629.3869, "door")
    assert line["epoch"] == 1796597629.387 and line["time"] == "2026-12-06T22:53:49.387Z"
    assert line["source"] == "door" and line["name"] == "Roxanne" and line["t"] == 5.0
    assert "source" not in event_line(Event("lost", 4, 13, 5.1, None), 0.0)
    assert iso_utc(1_800_000_000.9996) == "2027-01-15T08:00:01.000Z"  # the carry into the next second
    clock = WallClock()
    assert abs(clock.epoch(time.perf_counter()) - time.time()) < 0.05
    assert slug("Roxanne Ritchi") == "roxanne_ritchi" and slug(None) == "unknown" and slug("") == "unknown"


def test_slug_gives_each_person_their_own_topic():
    """Names a gallery holds side by side never share a topic (one person's presence would switch
    another's), and a name in another script or one called "Unknown" never lands on the unknown faces'
    topic; plain names read as themselves, sources keep their readable form."""
    names = ["Ann Lee", "Ann-Lee", "Ann_Lee", "Ann  Lee", "Ann.Lee", " Ann Lee", "José", "Jose", "王伟", "王芳",
             "Мария", "Unknown", "unknown person", "a/b+#", "Zoë", "Zoe"]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names), dict(zip(names, slugs, strict=True))
    assert all(re.fullmatch(r"[0-9a-z_]+", s) for s in slugs) and "unknown" not in slugs
    assert slug("Ann Lee") == "ann_lee" and slug("ann lee") == "ann_lee"  # case only: one gallery name
    assert re.fullmatch(r"jose_[0-9a-f]{6}", slug("José")) and re.fullmatch(r"name_[0-9a-f]{6}", slug("王伟"))
    assert slug("José") == slug("José")  # stable: a retained topic is found again by a later run
    assert slug("door.mp4", "source", exact=False) == "door_mp4"
    assert slug("10.0.0.5/live", "source", exact=False) == "10_0_0_5_live"
    assert re.fullmatch(r"name_[0-9a-f]{6}", slug("玄関", "source", exact=False))
    assert slug(None, "source", exact=False) == "source"


def test_mqtt_topics_retained_state_and_discovery(broker, caplog):
    caplog.set_level(logging.DEBUG)
    sub = Subscriber(broker.port)
    sink = make_mqtt(broker.url(), retain=True, ha_discovery=True)
    with Publisher([sink], "megamind.avi") as pub:
        pub.publish(ev("appear", 1))
        pub.publish(ev("identified", 1, "Roxanne", 0.7))
        pub.publish(ev("appear", 2, "Bernard", 0.5))
        pub.publish(ev("identified", 2, "Bernard", 0.5))
        pub.publish(ev("lost", 2, "Bernard"))
        sub.wait_for(lambda m: m[0] == "fs/person/bernard/state" and m[1]["present"] is False)
        pub.publish(ev("identified", 3, "王伟", 0.6))  # a name with no ASCII letters: its own topic
        sub.wait_for(lambda m: m[0] == f"fs/person/{slug('王伟')}/state")
    events = [m for m in sub.msgs if m[0] == "fs/megamind_avi/event"]
    assert [m[1]["kind"] for m in events] == ["appear", "identified", "appear", "identified", "lost", "identified"]
    assert events[1][1]["person"] == "Roxanne" and events[1][1]["similarity"] == 0.7 and not events[1][2]
    rox = [m[1]["present"] for m in sub.msgs if m[0] == "fs/person/roxanne/state"]
    unk = [m[1]["present"] for m in sub.msgs if m[0] == "fs/person/unknown/state"]
    assert rox == [True] and unk == [True, False]  # track 1: unknown, then identified as Roxanne; not 王伟
    cfg = sub.wait_for(lambda m: m[0] == "homeassistant/binary_sensor/facescope_fs_roxanne/config")[0][1]
    assert cfg["state_topic"] == "fs/person/roxanne/state" and cfg["device_class"] == "presence"
    assert cfg["name"] == "facescope Roxanne"
    wang = sub.wait_for(lambda m: m[0] == f"homeassistant/binary_sensor/facescope_fs_{slug('王伟')}/config")[0][1]
    assert wang["name"] == "facescope 王伟"  # the sensor is named as the gallery spells the name
    assert sink.stats.sent == 6 and sink.stats.dropped == 0
    sub.close()
    # a late subscriber sees the retained state and discovery configs
    late = Subscriber(broker.port)
    got = late.wait_for(lambda m: m[0] == "fs/person/roxanne/state")
    assert got[0][2] and got[0][1]["present"] is True and got[0][1]["person"] == "Roxanne"
    late.wait_for(lambda m: m[0].startswith("homeassistant/binary_sensor/") and m[2])
    assert not [m for m in late.msgs if m[0].endswith("/event")]  # events are not retained
    late.close()
    assert PASSWORD not in caplog.text


def test_mqtt_erase_takes_back_the_retained_state_and_sensor_of_an_erased_person(broker, caplog):
    """A person erased from the gallery while a run publishes (``GalleryWatch.names_gone`` ->
    ``Publisher.erase``): their retained presence state and Home Assistant sensor are deleted from
    the broker, their track's following events (unnamed, ``EventLog.forget``) do not bring them
    back, and everyone else's stay."""
    caplog.set_level(logging.INFO)
    sub = Subscriber(broker.port)
    sink = make_mqtt(broker.url(), retain=True, ha_discovery=True)
    with Publisher([sink], "door") as pub:
        pub.publish(ev("appear", 1, "Roxanne Ritchi", 0.7))
        pub.publish(ev("identified", 1, "Roxanne Ritchi", 0.7))
        pub.publish(ev("appear", 2, "Bernard", 0.6))
        pub.publish(ev("identified", 2, "Bernard", 0.6))
        sub.wait_for(lambda m: m[0] == "fs/person/bernard/state")
        pub.erase({"Roxanne Ritchi"})
        pub.publish(ev("identified", 1, None))  # her track, hidden or seen, now unnamed
        pub.publish(ev("lost", 1, None))
        sub.wait_for(lambda m: m[0] == "fs/person/unknown/state" and m[1]["present"] is False)
    deleted = [m[0] for m in sub.msgs if m[1] is None]
    assert deleted == ["homeassistant/binary_sensor/facescope_fs_roxanne_ritchi/config",  # the sensor first
                       "fs/person/roxanne_ritchi/state"]
    rox = [m for m in sub.msgs if m[0] == "fs/person/roxanne_ritchi/state"]
    assert [m[1] and m[1]["present"] for m in rox] == [True, None]  # never set "absent" again after
    sub.close()
    late = Subscriber(broker.port)
    late.wait_for(lambda m: m[0] == "fs/person/bernard/state" and m[2])
    late.wait_for(lambda m: m[0] == "homeassistant/binary_sensor/facescope_fs_bernard/config" and m[2])
    time.sleep(0.3)  # retained messages come in one burst at subscription
    assert not [m for m in late.msgs if "roxanne" in m[0]], late.msgs
    late.close()
    assert "retained topics of 1 erased person(s) cleared" in caplog.text
    assert "Roxanne" not in caplog.text and PASSWORD not in caplog.text


def test_mqtt_several_sources_each_on_their_own_topic(broker):
    """Several sources (``facescope run --source A --source B``): each event names its source, and two
    cameras whose derived names differ only by host (``10.0.0.5/live``, ``10.0.0.6/live``) publish on
    two topics, not one ``live``."""
    sub = Subscriber(broker.port)
    sink = make_mqtt(broker.url())
    with Publisher([sink], None) as pub:
        pub.publish({**ev("appear", 1), "source": "10.0.0.5/live"})
        pub.publish({**ev("appear", 1), "source": "10.0.0.6/live"})
        pub.publish({**ev("appear", 2), "source": "door"})
        sub.wait_for(lambda m: m[0] == "fs/door/event")
    events = {m[0]: m[1]["source"] for m in sub.msgs if m[0].endswith("/event")}
    assert events == {"fs/10_0_0_5_live/event": "10.0.0.5/live", "fs/10_0_0_6_live/event": "10.0.0.6/live",
                      "fs/door/event": "door"}
    sub.close()


def test_mqtt_broker_goes_away_and_comes_back(broker, caplog):
    caplog.set_level(logging.DEBUG)
    sink = make_mqtt(broker.url())
    with Publisher([sink], "cam1") as pub:
        sub = Subscriber(broker.port)
        pub.publish(ev("appear", 1))
        sub.wait_for(lambda m: m[1].get("track_id") == 1)
        sub.close()
        broker.stop()
        end = time.monotonic() + 5
        while sink.client.is_connected() and time.monotonic() < end:
            time.sleep(0.05)
        assert not sink.client.is_connected()
        t0 = time.perf_counter()
        pub.publish(ev("appear", 2))  # queued while the broker is down
        assert time.perf_counter() - t0 < 0.05
        broker.start()
        sub = Subscriber(broker.port)
        got = sub.wait_for(lambda m: m[1].get("track_id") == 2, timeout=20)
        assert got[0][0] == "fs/cam1/event"
        sub.close()
    assert sink.connects >= 2 and sink.stats.sent == 2
    assert PASSWORD not in caplog.text


def test_dead_broker_never_slows_the_producer(caplog):
    caplog.set_level(logging.DEBUG)
    url = f"mqtt://cam:{PASSWORD}@127.0.0.1:{free_port()}/fs"  # nothing listens there
    sink = make_mqtt(url, queue_size=100)
    hook = WebhookSink(WebhookConfig(f"http://127.0.0.1:{free_port()}/x", headers={"X-Token": TOKEN}, queue_size=100))
    with Publisher([sink, hook], "cam1", drain_s=5.0) as pub:
        t0 = time.perf_counter()
        for i in range(10_000):
            pub.publish(ev("appear", i))
        dt = time.perf_counter() - t0
        time.sleep(0.3)  # the first connection attempts fail
        t1 = time.perf_counter()
    t_close = time.perf_counter() - t1
    assert t_close < 1.5  # failing sinks do not wait out drain_s at exit
    assert hook.stats.sent == 0 and hook.stats.dropped + hook.stats.failed == 10_000
    print(f"10,000 events pushed to a dead broker and a dead webhook in {dt * 1000:.1f} ms "
          f"({dt / 10_000 * 1e6:.1f} us/event); dropped {sink.stats.dropped} + {hook.stats.dropped}; "
          f"closed in {t_close * 1000:.0f} ms")
    assert dt < 2.0  # measured ~0.1 s on the 2-core dev machine; a blocking sink would take forever
    assert sink.stats.sent == 0 and sink.stats.dropped >= 10_000 - 1  # all but the one waiting for a connection
    assert sink.stats.dropped + sink.stats.failed == 10_000
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_mqtt_config_errors_mask_password():
    from engine.events_out.mqtt import MqttConfig

    for bad in (f"http://u:{PASSWORD}@h/x", f"mqtt://u:{PASSWORD}@h:99999/x", f"mqtt://u:{PASSWORD}@/x"):
        with pytest.raises(FacescopeError) as e:
            MqttConfig(bad)
        assert PASSWORD not in str(e.value) and "***" in str(e.value)
    c = MqttConfig("mqtt://u%40x:p%3Aw@h")
    assert c.credentials == ("u@x", "p:w") and c.prefix == "facescope" and c.port == 1883


# ------------------------------------------------------------------------------------------ webhooks
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.hits.append((time.monotonic(), dict(self.headers), body))
            status = srv.statuses.pop(0) if srv.statuses else 200
        if srv.hang_s:
            time.sleep(srv.hang_s)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    srv.hits, srv.statuses, srv.hang_s, srv.lock = [], [], 0.0, threading.Lock()
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_webhook_posts_json_with_headers(server, caplog):
    caplog.set_level(logging.DEBUG)
    sink = WebhookSink(WebhookConfig(server.url, headers=dict([parse_header(f"Authorization: Bearer {TOKEN}")])))
    with Publisher([sink], "cam1") as pub:
        pub.publish(ev("identified", 4, "Bernard", 0.55))
        pub.publish(ev("lost", 4, "Bernard"))
    assert sink.stats.sent == 2 and len(server.hits) == 2
    _, headers, body = server.hits[0]
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["Content-Type"] == "application/json"
    assert body["person"] == "Bernard" and body["kind"] == "identified" and body["track_id"] == 4
    assert body["time"].endswith("Z") and "crop_path" in body
    assert TOKEN not in caplog.text


def test_webhook_retries_500_then_200(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.statuses = [500, 503]
    sink = WebhookSink(WebhookConfig(server.url, headers={"Authorization": f"Bearer {TOKEN}"}, backoff_s=0.1))
    with Publisher([sink], "cam1") as pub:
        pub.publish(ev("appear", 1))
    times = [h[0] for h in server.hits]
    assert len(times) == 3 and sink.stats.sent == 1 and sink.stats.failed == 0
    assert times[1] - times[0] >= 0.09 and times[2] - times[1] >= 0.19  # 0.1 s then 0.2 s (doubling)
    assert "HTTP 500" in caplog.text and TOKEN not in caplog.text


def test_webhook_4xx_is_not_retried_and_gives_up(server):
    server.statuses = [404]
    sink = WebhookSink(WebhookConfig(server.url, backoff_s=0.01))
    with Publisher([sink], "cam1") as pub:
        pub.publish(ev("appear", 1))
    assert len(server.hits) == 1 and sink.stats.failed == 1 and sink.last_error == "HTTP 404"


def test_webhook_hung_endpoint_hits_the_timeout(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.hang_s = 3.0
    url = server.url + f"?token={TOKEN}"
    sink = WebhookSink(WebhookConfig(url, timeout_s=0.3, retries=1, backoff_s=0.05))
    sink.start()
    t0 = time.perf_counter()
    sink.put(event_payload(ev("appear", 1), "cam1"))
    for _ in range(100):  # the producer is never held up by the hung endpoint
        sink.put(event_payload(ev("appear", 2), "cam1"))
    assert time.perf_counter() - t0 < 0.05
    end = time.monotonic() + 10
    while sink.stats.failed == 0 and time.monotonic() < end:
        time.sleep(0.02)
    dt = time.perf_counter() - t0
    sink.close(drain_s=0)
    assert sink.stats.failed >= 1 and 0.6 <= dt < 2.5  # two tries of 0.3 s + 0.05 s backoff
    assert "timed out" in (sink.last_error or "")
    assert TOKEN not in caplog.text and TOKEN not in (sink.last_error or "") and TOKEN not in sink.display


def test_webhook_bad_config():
    with pytest.raises(FacescopeError) as e:
        WebhookConfig(f"ftp://u:{TOKEN}@h/x")
    assert TOKEN not in str(e.value)
    with pytest.raises(FacescopeError) as e:
        parse_header(f"Bearer{TOKEN}")
    assert TOKEN not in str(e.value)
    with pytest.raises(FacescopeError):
        WebhookConfig("http://h/x", timeout_s=0)


# ------------------------------------------------------------------------------------------ CLI
def test_parser_imports_no_paho_and_missing_extra_is_one_line(monkeypatch):
    code = ("import sys; from engine.cli.main import build_parser; build_parser(); "
            "print('paho' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from argparse import Namespace

    from engine.cli.extras import MissingExtraError
    from engine.events_out.cli import open_publisher

    monkeypatch.setitem(sys.modules, "paho", None)  # import paho -> ImportError, as when it is absent
    args = Namespace(mqtt=f"mqtt://u:{PASSWORD}@127.0.0.1:1/x", mqtt_retain=False, ha_discovery=False,
                     webhook=[], webhook_header=[])
    with pytest.raises(MissingExtraError) as e, open_publisher(args, "cam"):
        pass
    assert "mqtt extra" in str(e.value) and "facescope[mqtt]" in str(e.value) and PASSWORD not in str(e.value)


@pytest.mark.skipif(not DEMO.exists(), reason="resources/demo/megamind.avi absent")
def test_run_cli_delivers_identified_events_to_mqtt_and_webhook(broker, server, tmp_path):
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))

    def facescope(*args):
        r = subprocess.run([sys.executable, "-m", "engine.cli.main", *map(str, args)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        return r

    facescope("demo", "--frames", "1", "--out", tmp_path)  # enrols Roxanne and Bernard from the demo manifest
    gallery = tmp_path / "demo_gallery.db"
    sub = Subscriber(broker.port)
    r = facescope("run", "--source", DEMO, "--gallery", gallery, "--mqtt", broker.url("home"), "--mqtt-retain",
                  "--ha-discovery", "--webhook", server.url, "--webhook-header", f"Authorization: Bearer {TOKEN}")
    mqtt_named = {m[1]["person"] for m in sub.wait_for(lambda m: m[0] == "home/megamind_avi/event"
                                                        and m[1]["kind"] == "identified" and m[1]["person"])}
    sub.wait_for(lambda m: m[0] == "homeassistant/binary_sensor/facescope_home_roxanne/config")
    sub.close()
    hook_named = {h[2]["person"] for h in server.hits if h[2]["kind"] == "identified" and h[2]["person"]}
    assert mqtt_named == hook_named == {"Roxanne", "Bernard"}
    assert all(h[1]["Authorization"] == f"Bearer {TOKEN}" for h in server.hits)
    first = next(h[2] for h in server.hits if h[2]["kind"] == "identified")
    assert first["source"].endswith("megamind.avi") and first["similarity"] > 0 and first["time"].endswith("Z")
    assert "crop_path" in first
    out = r.stdout + r.stderr
    assert PASSWORD not in out and TOKEN not in out
    assert "events to mqtt://cam:***@127.0.0.1" in out and " 0 dropped, 0 failed" in out

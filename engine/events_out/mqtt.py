"""MQTT sink (paho-mqtt 2): events per source, presence state per person, Home Assistant discovery.

Topics, under the URL's path as prefix (``mqtt://user:pass@host:1883/facescope``; default
``facescope``):

- ``<prefix>/<source>/event``: every event's payload (not retained);
- ``<prefix>/person/<name|unknown>/state`` (``name`` slugged, one topic per person:
  :func:`engine.events_out.payload.slug`): ``{"present": bool, ...}`` when a person's first track
  appears / is identified and when their last track is lost (retained with ``retain=True``, so a
  subscriber that connects later sees who is there);
- with ``ha_discovery``: ``homeassistant/binary_sensor/facescope_<name>/config`` (retained, as Home
  Assistant expects), a presence binary sensor per person reading the state topic.

paho's network loop runs on its own thread and reconnects with exponential backoff
(``reconnect_delay_set``); the worker thread waits for the connection while events queue up behind
it (bounded, oldest dropped). The password goes to paho only: logs and errors show the URL masked.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from engine.capture.source import mask_url, redact
from engine.errors import FacescopeError
from engine.events_out.payload import slug, source_slug
from engine.events_out.worker import QueueWorker

log = logging.getLogger(__name__)

HA_PREFIX = "homeassistant"


@dataclass(frozen=True)
class MqttConfig:
    """``url``: ``mqtt://[user[:password]@]host[:port][/prefix]`` (``mqtts://`` for TLS, port 8883).
    ``username``/``password`` override the URL's. ``reconnect_min_s``..``reconnect_max_s``: paho's
    backoff between reconnection attempts (doubling)."""

    url: str
    retain: bool = False
    ha_discovery: bool = False
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    qos: int = 0
    queue_size: int = 1000
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError as e:
            raise FacescopeError(f"malformed MQTT URL {mask_url(self.url)}: {redact(str(e), self.url)}") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise FacescopeError(f"MQTT URL must be mqtt://[user:password@]host[:port][/prefix], "
                                 f"got {mask_url(self.url)}")
        if self.qos not in (0, 1, 2) or self.queue_size < 1 or not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise FacescopeError("MQTT: qos must be 0, 1 or 2, queue size >= 1, 0 < reconnect min <= max")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def prefix(self) -> str:
        path = urlsplit(self.url).path.strip("/")
        return path or "facescope"

    @property
    def credentials(self) -> tuple[str | None, str | None]:
        parts = urlsplit(self.url)
        user = self.username if self.username is not None else (unquote(parts.username) if parts.username else None)
        pw = self.password if self.password is not None else (unquote(parts.password) if parts.password else None)
        return user, pw


class MqttSink(QueueWorker):
    name = "mqtt"

    def __init__(self, config: MqttConfig) -> None:
        import paho.mqtt.client as paho  # the mqtt extra; the CLI checks for it first (need_extra)

        super().__init__(config.queue_size)
        self.config = config
        self.display = mask_url(config.url)
        self._present: dict[str, set[tuple[str, int]]] = {}  # person slug -> (source, track id) alive
        self._announced: set[str] = set()
        self.connects = 0
        self.last_error: str | None = None
        cid = config.client_id or f"facescope-{uuid.uuid4().hex[:8]}"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cid)
        user, pw = config.credentials
        if user is not None:
            self.client.username_pw_set(user, pw)
        if urlsplit(config.url).scheme == "mqtts":
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=max(int(config.reconnect_min_s), 1),
                                        max_delay=max(int(config.reconnect_max_s), 1))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail

    # paho's thread ------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = str(reason_code)
            log.warning("MQTT %s: connection refused (%s)", self.display, reason_code)
            return
        self.connects += 1
        self.last_error = None
        log.info("MQTT %s: connected", self.display)

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = "connection failed"
        log.debug("MQTT %s: connection failed; retrying with backoff", self.display)

    @property
    def healthy(self) -> bool:
        # connected, or still making the first attempt (a short run closes before it completes)
        return self.client.is_connected() or (self.connects == 0 and self.last_error is None)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self.closing:
            log.warning("MQTT %s: disconnected (%s); reconnecting", self.display, reason_code)

    # lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        # connect_async: the first connection is made on paho's thread too, so an unreachable broker
        # costs the pipeline nothing; loop_start retries with the backoff set above
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self.client.loop_start()
        super().start()

    def on_close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    # worker thread ------------------------------------------------------------------------------
    def _publish(self, topic: str, payload: dict | bytes, retain: bool) -> bool:
        """``payload``: a dict sent as JSON, or bytes as they are (``b""`` retained deletes a retained message)."""
        while not self.client.is_connected():
            if self.wait(0.05):
                return False
        data = payload if isinstance(payload, bytes) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=self.config.qos, retain=retain)
        return info.rc == 0

    def erase(self, names) -> None:
        """People erased from the gallery (or renamed away: ``GalleryWatch.names_gone``): queue the
        removal of what this sink keeps on the broker under their names -- the retained presence
        state (with ``retain``) and the Home Assistant sensor (with ``ha_discovery``; an empty
        retained config is how MQTT discovery removes an entity). Queued behind the events before
        it; their tracks' later events count as unknown. Each name has its own topic
        (:func:`engine.events_out.payload.slug`)."""
        people = sorted({slug(n) for n in names if n})
        if people:
            self.put({"erase": people})

    def handle(self, item: dict) -> bool:
        cfg = self.config
        if "erase" in item:
            return self._erase(item["erase"])
        source = source_slug(item["source_name"])
        ok = self._publish(f"{cfg.prefix}/{source}/event", item, retain=False)
        for person, present in self._presence_changes(item):
            if cfg.ha_discovery and person not in self._announced:
                ok &= self._announce(person, (item["person"] if present else None) or person)
            state = {"present": present, "person": item["person"] if present else None, "source": item["source"],
                     "track_id": item["track_id"], "similarity": item["similarity"], "time": item["time"],
                     "epoch": item["epoch"], "crop_path": item["crop_path"]}
            ok &= self._publish(self._state_topic(person), state, retain=cfg.retain)
        return ok

    def _erase(self, people: list[str]) -> bool:
        cfg, ok = self.config, True
        for person in people:
            self._present.pop(person, None)  # a later "lost" of their track must not re-create the state
            self._announced.discard(person)
            if cfg.ha_discovery:  # the sensor first, so Home Assistant never reads the emptied state
                ok &= self._publish(f"{HA_PREFIX}/binary_sensor/{self._uid(person)}/config", b"", retain=True)
            if cfg.retain:
                ok &= self._publish(self._state_topic(person), b"", retain=True)
        if cfg.retain or cfg.ha_discovery:
            log.info("MQTT %s: retained topics of %d erased person(s) cleared", self.display, len(people))
        return ok

    def _uid(self, person: str | None) -> str:
        """facescope_<prefix> (the device), facescope_<prefix>_<person> (a person's sensor)."""
        device = f"facescope_{slug(self.config.prefix, exact=False)}"
        return device if person is None else f"{device}_{person}"

    def _state_topic(self, person: str) -> str:
        return f"{self.config.prefix}/person/{person}/state"

    def _presence_changes(self, item: dict) -> list[tuple[str, bool]]:
        """(person slug, present) for each person whose presence changes with this event: the first
        of their tracks identified, or the last one lost (or renamed away). Unknown faces count under
        ``unknown``."""
        key = (item["source"], item["track_id"])
        was = next((p for p, tracks in self._present.items() if key in tracks), None)
        now = None if item["kind"] == "lost" else slug(item["person"])
        if was == now:
            return []
        changes = []
        if was is not None:
            self._present[was].discard(key)
            if not self._present[was]:
                changes.append((was, False))
        if now is not None:
            tracks = self._present.setdefault(now, set())
            if not tracks:
                changes.append((now, True))
            tracks.add(key)
        return changes

    def _announce(self, person: str, display: str) -> bool:
        """Home Assistant MQTT discovery: one presence binary sensor per person (retained config),
        ``person`` the topic slug, ``display`` the name as the gallery spells it (the sensor's name)."""
        uid = self._uid(person)
        config = {
            "name": f"facescope {display}",
            "unique_id": uid,
            "object_id": uid,
            "state_topic": self._state_topic(person),
            "value_template": "{{ 'ON' if value_json.present else 'OFF' }}",
            "json_attributes_topic": self._state_topic(person),
            "device_class": "presence",
            "device": {"identifiers": [self._uid(None)], "name": "facescope",
                       "manufacturer": "facescope"},
        }
        ok = self._publish(f"{HA_PREFIX}/binary_sensor/{uid}/config", config, retain=True)
        if ok:
            self._announced.add(person)
        return ok

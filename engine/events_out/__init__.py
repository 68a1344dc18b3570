"""Events out: the run's appear / identified / lost events published to MQTT and HTTP webhooks.

Every sink runs on its own thread behind a bounded queue (:mod:`engine.events_out.worker`): the
pipeline thread only appends a dict, so a dead broker or a hung endpoint never slows recognition;
when a queue is full the oldest event is dropped and counted. Optional dependencies (paho-mqtt) are
imported only when a sink is built.
"""
from engine.events_out.payload import event_payload, slug, source_name
from engine.events_out.publisher import Publisher, Sink
from engine.events_out.worker import QueueWorker, SinkStats

__all__ = ["Publisher", "QueueWorker", "Sink", "SinkStats", "event_payload", "slug", "source_name"]

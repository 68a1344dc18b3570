"""The ``facescope run`` options of events out, and the publisher they build.

Building the parser imports nothing optional: paho-mqtt is imported only when ``--mqtt`` is given,
and a missing one ends in one line naming the ``mqtt`` extra.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager


def add_event_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("events out (MQTT, webhooks)")
    g.add_argument("--mqtt", metavar="URL",
                   help="publish events to this broker: mqtt://[user:password@]host[:port][/prefix] (needs the "
                        "mqtt extra); topics <prefix>/<source>/event and <prefix>/person/<name>/state")
    g.add_argument("--mqtt-retain", action="store_true", help="retain each person's presence state on the broker")
    g.add_argument("--ha-discovery", action="store_true",
                   help="announce a Home Assistant presence sensor per person (MQTT discovery)")
    g.add_argument("--webhook", metavar="URL", action="append", default=[],
                   help="POST each event as JSON to this URL (retried with backoff); may be repeated")
    g.add_argument("--webhook-header", metavar="'NAME: VALUE'", action="append", default=[],
                   help="extra header on every webhook POST, e.g. 'Authorization: Bearer TOKEN' (never logged)")


@contextmanager
def open_publisher(args: argparse.Namespace, source: str | None, drain_s: float = 5.0):
    """A started :class:`~engine.events_out.Publisher` for the options given, or None when there is
    none (``source``: the masked source of a single-source run; None when each event names its own:
    several sources); on exit the sinks get ``drain_s`` seconds to deliver what is queued, and one line per sink
    says what was sent and dropped (destinations masked)."""
    from engine.errors import FacescopeError

    if (args.mqtt_retain or args.ha_discovery) and not args.mqtt:
        raise FacescopeError("--mqtt-retain and --ha-discovery need --mqtt URL")
    if args.webhook_header and not args.webhook:
        raise FacescopeError("--webhook-header needs --webhook URL")
    if not args.mqtt and not args.webhook:
        yield None
        return
    from engine.events_out.publisher import Publisher
    from engine.events_out.webhook import WebhookConfig, WebhookSink, parse_header

    sinks = []
    if args.mqtt:
        from engine.cli.extras import need_extra
        from engine.events_out.mqtt import MqttConfig, MqttSink

        need_extra("mqtt", "facescope run --mqtt")
        sinks.append(MqttSink(MqttConfig(args.mqtt, retain=args.mqtt_retain, ha_discovery=args.ha_discovery)))
    headers = dict(parse_header(h) for h in args.webhook_header)
    sinks += [WebhookSink(WebhookConfig(url, headers=headers)) for url in args.webhook]
    pub = Publisher(sinks, source, drain_s=drain_s)
    with pub:
        yield pub
        stats = pub.close()
    for display, st in stats.items():
        print(f"events to {display}: {st.sent} sent, {st.dropped} dropped, {st.failed} failed")

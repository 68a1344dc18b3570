"""A real MQTT broker for the tests: mosquitto on a free 127.0.0.1 port with a password, and a
subscriber that records what it receives (paho-mqtt, imported when one is made)."""
from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)
PASSWORD = "s3cr3t-broker-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on a free 127.0.0.1 port with a password file (user ``cam``); restartable."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        pwfile = tmp / "passwd"
        pwfile.write_text("")
        subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pwfile),
                        "cam", PASSWORD], check=True, capture_output=True)
        pwfile.chmod(0o600)
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
                             f"persistence false\n"
                             # as root mosquitto switches to user 'mosquitto', who cannot read pytest's tmp dir
                             f"user {getpass.getuser()}\n")
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def url(self, prefix="fs") -> str:
        return f"mqtt://cam:{PASSWORD}@127.0.0.1:{self.port}/{prefix}"


class Subscriber:
    def __init__(self, port: int, topics: str = "#") -> None:
        import paho.mqtt.client as paho

        self.msgs: list[tuple[str, dict, bool]] = []
        self.lock = threading.Lock()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.username_pw_set("cam", PASSWORD)
        c.on_message = lambda cl, u, m: self._add(m)
        ready = threading.Event()
        c.on_subscribe = lambda *a: ready.set()
        c.on_connect = lambda cl, *a: cl.subscribe(topics, qos=1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(10), "subscriber never subscribed"
        self.client = c

    def _add(self, m) -> None:
        with self.lock:
            # an empty retained message is how MQTT deletes one: None
            self.msgs.append((m.topic, json.loads(m.payload) if m.payload else None, bool(m.retain)))

    def wait_for(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                hits = [m for m in self.msgs if pred(m)]
            if hits:
                return hits
            time.sleep(0.02)
        raise AssertionError(f"no matching message; got {[m[0] for m in self.msgs]}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

"""HTTP webhook sink: one JSON POST per event, retried with exponential backoff.

Uses the standard library's urllib (no extra dependency; one POST per event on a private thread
needs neither connection pooling nor async). Headers (``Authorization: Bearer ...``) and secrets in
the URL (password, ``token=`` query values) are never logged nor put in an error message: the URL
is shown through :func:`engine.capture.source.mask_url` and library error text through ``redact``.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from engine.capture.source import mask_url, redact
from engine.errors import FacescopeError
from engine.events_out.worker import QueueWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookConfig:
    """``timeout_s`` bounds each POST (connect + response); a failed POST (connection error, timeout,
    HTTP 5xx or 429) is retried up to ``retries`` times after ``backoff_s * 2**attempt`` seconds
    (capped at ``backoff_max_s``); other 4xx answers are not retried. ``queue_size`` events wait at
    most; beyond that the oldest is dropped and counted."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    queue_size: int = 1000

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FacescopeError(f"webhook URL must be http(s)://host/..., got {mask_url(self.url)}")
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0 or self.queue_size < 1:
            raise FacescopeError("webhook: timeout must be > 0, retries and backoff >= 0, queue size >= 1")


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> (name, value); the value is never echoed in the error."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise FacescopeError("webhook header must be 'Name: value', e.g. 'Authorization: Bearer TOKEN'")
    return name.strip(), value.strip()


class WebhookSink(QueueWorker):
    name = "webhook"

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config.queue_size)
        self.config = config
        self.display = mask_url(config.url)
        self.last_error: str | None = None
        self._last_ok = True

    @property
    def healthy(self) -> bool:
        """False after the endpoint could not be reached (refused, timed out) until it answers again."""
        return self._last_ok

    def _post(self, body: bytes) -> int:
        headers = {"Content-Type": "application/json", "User-Agent": "facescope"}
        headers.update(self.config.headers)
        req = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                resp.read()
                return resp.status
        except urllib.error.HTTPError as e:
            e.close()
            return e.code

    def erase(self, names) -> None:
        """Nothing to take back: a webhook keeps no state at its end that facescope could remove
        (the erased person's tracks are reported as unknown by the events that follow)."""

    def handle(self, item: dict) -> bool:
        body = json.dumps(item).encode()
        cfg = self.config
        for attempt in range(cfg.retries + 1):
            try:
                status = self._post(body)
                self._last_ok = True  # the endpoint answers (a 5xx is retried, and worth waiting for at exit)
                if 200 <= status < 300:
                    return True
                why = f"HTTP {status}"
                retry = status >= 500 or status == 429
            except (OSError, ValueError) as e:  # URLError, timeouts, refused connections
                why = redact(f"{type(e).__name__}: {e}", cfg.url)
                retry = True
                self._last_ok = False  # unreachable: close() does not wait for it
            self.last_error = why
            if not retry or attempt == cfg.retries:
                log.warning("webhook %s: event not delivered after %d tries (%s)", self.display, attempt + 1, why)
                return False
            delay = min(cfg.backoff_s * 2 ** attempt, cfg.backoff_max_s)
            log.debug("webhook %s: %s; retry %d in %.2f s", self.display, why, attempt + 1, delay)
            if self.wait(delay):
                return False
        return False

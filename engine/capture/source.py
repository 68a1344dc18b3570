"""What the user typed as a video source, parsed and checked before anything is opened.

``parse_source("0")`` is webcam 0; ``rtsp://user:pw@cam/stream`` a network stream; an existing
file a video file (anything FFmpeg decodes, a single image included); an existing directory a
folder of images played in natural order (``img2`` before ``img10``). Anything else raises
:class:`SourceError` naming what was wrong. Only ``display`` (passwords masked) may appear in
logs and errors: the raw ``value`` of a URL can hold credentials.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from engine.errors import FacescopeError
from engine.util.imagefiles import IMAGE_SUFFIXES, is_image_path

KINDS = ("webcam", "url", "file", "folder")
URL_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp", "rtmp", "rtmps")
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig", re.IGNORECASE)
_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")


class SourceError(FacescopeError):
    """A video source that cannot be parsed, found, opened or kept running."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source. ``value``: int webcam index, URL or absolute path (str).
    ``display``: the text to show the user, with any URL password replaced by ``***``."""

    kind: str
    value: int | str = field(repr=False)  # repr() must not leak a URL's password into logs
    display: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"source kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "webcam") != isinstance(self.value, int):
            raise ValueError(f"a {self.kind} source needs a {'int' if self.kind == 'webcam' else 'str'} value")

    @property
    def is_live(self) -> bool:
        """Webcams and streams run on their own clock: frames cannot be paused, only dropped."""
        return self.kind in ("webcam", "url")

    def __str__(self) -> str:
        return self.display


def mask_url(url: str) -> str:
    """``url`` with its password and secret-looking query values (``password=``, ``token=``...)
    replaced by ``***``; text that does not parse as a URL is returned unchanged."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. an invalid port: nothing we can safely rebuild, so show no netloc
        return re.sub(r"//[^/]*@", "//***@", url)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_QUERY_KEY.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_QUERY_KEY.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url`` (its password, secret-looking query values), as written and
    percent-decoded, longest first; [] when it has none or does not parse."""
    try:
        parts = urlsplit(url)
        password, query = parts.password, parts.query
    except ValueError:  # e.g. a bad port: find the userinfo by hand
        m = re.search(r"//[^/:@]*:([^/@]*)@", url)
        password, query = (m.group(1) if m else None), url.partition("?")[2]
    found = {password} if password else set()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if _SECRET_QUERY_KEY.search(key) and value:
            found.add(value)
    found |= {unquote(s) for s in found} | {quote(s, safe="") for s in found}
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """``text`` (an exception message, a log line from a library) with ``url`` shown masked and
    every other copy of its secrets replaced by ``***``: for text we did not write ourselves."""
    secrets = url_secrets(url)
    if not secrets:
        return text
    text = text.replace(url, mask_url(url))
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive, hidden names skipped), in natural order."""
    files = [p for p in Path(folder).iterdir() if is_image_path(p) and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def parse_source(text: str | int | os.PathLike) -> SourceSpec:
    """Parse what the user typed (CLI ``--source``, the app's source box) into a SourceSpec.

    An integer string is always a webcam index, even if a file of that name exists: ``./0`` names
    the file. Raises SourceError with a message meant for the user.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    elif isinstance(text, os.PathLike):
        text = os.fspath(text)
    if not isinstance(text, str):
        raise SourceError(f"a source must be text (webcam index, URL, file or folder), got {type(text).__name__}")
    raw = text.strip()
    if not raw:
        raise SourceError("empty source: give a webcam index (0), a URL (rtsp://...), a video file "
                          "or a folder of images")
    if re.fullmatch(r"[+-]?\d+", raw):
        index = int(raw)
        if index < 0:
            raise SourceError(f"webcam index must be >= 0, got {index}")
        return SourceSpec("webcam", index, f"webcam {index}")
    if m := _DEV_VIDEO.match(raw):  # Linux device node: the same camera as its index
        return SourceSpec("webcam", int(m.group(1)), f"webcam {int(m.group(1))} ({raw})")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", raw)
    if scheme:
        return _parse_url(raw, scheme.group(1).lower())
    path = Path(raw).expanduser()
    if path.is_dir():
        try:
            images = list_images(path)
        except OSError as e:
            raise SourceError(f"cannot list folder {path}: {e.strerror or e}") from None
        if not images:
            raise SourceError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return SourceSpec("folder", str(path.resolve()), str(path))
    if path.is_file():
        return SourceSpec("file", str(path.resolve()), str(path))
    if path.exists():
        raise SourceError(f"{path} is neither a regular file nor a folder")
    raise SourceError(f"no such file or folder: {path}")


def _parse_url(raw: str, scheme: str) -> SourceSpec:
    display = mask_url(raw)
    if scheme not in URL_SCHEMES:
        raise SourceError(f"unsupported URL scheme {scheme!r} in {display} (use one of {', '.join(URL_SCHEMES)})")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError as e:
        raise SourceError(f"malformed URL {display}: {e}") from None
    if not parts.hostname and scheme != "udp":  # udp://@:1234 (listen on all interfaces) has none
        raise SourceError(f"URL {display} names no host")
    return SourceSpec("url", raw, display)

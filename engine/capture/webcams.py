"""Webcams as users know them: listed by device name, opened with the mode asked for.

Listing: :func:`list_cameras` asks ``cv2-enumerate-cameras`` (one small, maintained package
that reads V4L2 device names on Linux, DirectShow/MSMF on Windows and AVFoundation on macOS)
for the cameras of the OS's preferred backend, and returns :class:`CameraEntry` rows (index,
device name, backend, device path, USB vendor/product ids). ``facescope cameras`` prints them.

Opening: a webcam opened with no settings starts at the driver's default mode, for most UVC
cameras 640x480 (OpenCV asks nothing), and 1920x1080 at 30 fps usually needs the MJPG pixel
format (uncompressed YUYV 1080p does not fit USB 2 bandwidth at 30 fps). :class:`WebcamSettings`
says what to ask for; :func:`plan_open` turns it into the backend and the ordered property list
(FOURCC first: drivers pick the frame sizes and rates a pixel format offers, so setting the
size before the format can be undone by it); :func:`open_webcam` applies the plan and reads
back what the camera actually gave (:class:`Negotiated`), which is logged and shown, since a
camera may silently choose another mode.

Backends per OS (``backend="auto"``): V4L2 on Linux (GStreamer's v4l2src adds a pipeline for
nothing here), MSMF on Windows (DirectShow is the fallback that opens some older cameras
faster: ``backend="dshow"``), AVFoundation on macOS.

Never run on real hardware (no camera on the development machines): the plan, parsing and the
"no such camera" error are tested; the property round-trip on a real device is not.
"""
from __future__ import annotations

import logging
import platform
import re
from dataclasses import dataclass

import cv2

from engine.capture.source import SourceError
from engine.util.check import check

log = logging.getLogger(__name__)

BACKENDS = {  # name -> OpenCV's VideoCaptureAPIs id
    "any": cv2.CAP_ANY,
    "v4l2": cv2.CAP_V4L2,
    "gstreamer": cv2.CAP_GSTREAMER,
    "dshow": cv2.CAP_DSHOW,
    "msmf": cv2.CAP_MSMF,
    "avfoundation": cv2.CAP_AVFOUNDATION,
}
OS_BACKEND = {"Linux": "v4l2", "Windows": "msmf", "Darwin": "avfoundation"}
_FOURCC = re.compile(r"^[A-Za-z0-9 ]{4}$")


def default_backend(system: str | None = None) -> str:
    """The capture backend that opens fast on ``system`` (``platform.system()`` by default)."""
    return OS_BACKEND.get(system or platform.system(), "any")


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (or ``1080p``/``720p``/``480p``) -> (1920, 1080); ValueError otherwise."""
    t = str(text).strip().lower()
    named = {"2160p": (3840, 2160), "4k": (3840, 2160), "1080p": (1920, 1080), "720p": (1280, 720),
             "480p": (640, 480)}
    if t in named:
        return named[t]
    m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", t)
    if not m:
        raise ValueError(f"resolution must be WIDTHxHEIGHT (e.g. 1920x1080) or 1080p/720p/480p, got {text!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class WebcamSettings:
    """What to ask a webcam for; None leaves a property at the driver's default.

    ``resolution`` (width, height) pixels; ``fps`` frames per second; ``fourcc`` the pixel
    format, 4 characters (``MJPG`` for 1080p30 on USB 2, ``YUYV`` uncompressed); ``backend`` a
    name of :data:`BACKENDS` or ``auto`` (:func:`default_backend`). ``auto_mjpg``: with no
    ``fourcc`` given, ask MJPG when the mode asked is above 1280x720 or above 30 fps (what
    cameras need for it); False never asks a format the user did not name.
    """

    resolution: tuple[int, int] | None = None
    fps: float | None = None
    fourcc: str | None = None
    backend: str = "auto"
    auto_mjpg: bool = True

    def __post_init__(self) -> None:
        if self.resolution is not None:
            check(len(self.resolution) == 2 and all(int(v) == v and 16 <= v <= 16384 for v in self.resolution),
                  f"webcam resolution must be two integers in [16, 16384], got {self.resolution}")
        check(self.fps is None or 0 < self.fps <= 1000, f"webcam fps must be in (0, 1000], got {self.fps}")
        check(self.fourcc is None or bool(_FOURCC.match(self.fourcc)),
              f"webcam pixel format must be 4 letters/digits (e.g. MJPG, YUYV), got {self.fourcc!r}")
        check(self.backend == "auto" or self.backend in BACKENDS,
              f"webcam backend must be auto or one of {', '.join(BACKENDS)}, got {self.backend!r}")

    @classmethod
    def from_dict(cls, d: dict) -> WebcamSettings:
        """From a sources file's ``webcam`` table: ``{"resolution": "1920x1080", "fps": 30,
        "fourcc": "MJPG", "backend": "auto"}`` (unknown keys are an error)."""
        unknown = set(d) - {"resolution", "fps", "fourcc", "backend", "auto_mjpg"}
        if unknown:
            raise ValueError(f"unknown webcam settings {sorted(unknown)}; known: resolution, fps, fourcc, backend")
        res = d.get("resolution")
        if isinstance(res, str):
            res = parse_resolution(res)
        return cls(tuple(res) if res is not None else None, d.get("fps"), d.get("fourcc"),
                   d.get("backend", "auto"), d.get("auto_mjpg", True))


@dataclass(frozen=True)
class OpenPlan:
    """How a webcam is opened: ``backend`` (OpenCV API id and name) and ``props``, the
    ``(CAP_PROP_*, value)`` pairs to set in order right after opening."""

    backend_id: int
    backend_name: str
    props: tuple[tuple[int, float], ...]


def plan_open(settings: WebcamSettings | None, system: str | None = None) -> OpenPlan:
    """The backend and property list for ``settings`` on ``system`` (pure: no camera touched)."""
    s = settings or WebcamSettings()
    name = default_backend(system) if s.backend == "auto" else s.backend
    fourcc = s.fourcc
    if fourcc is None and s.auto_mjpg and (
            (s.resolution is not None and s.resolution[0] * s.resolution[1] > 1280 * 720)
            or (s.fps is not None and s.fps > 30)):
        fourcc = "MJPG"
    props: list[tuple[int, float]] = []
    if fourcc is not None:  # first: the format decides which sizes and rates exist
        props.append((cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter_fourcc(*fourcc.upper()))))
    if s.resolution is not None:
        w, h = s.resolution
        props += [(cv2.CAP_PROP_FRAME_WIDTH, float(w)), (cv2.CAP_PROP_FRAME_HEIGHT, float(h))]
    if s.fps is not None:
        props.append((cv2.CAP_PROP_FPS, float(s.fps)))
    return OpenPlan(BACKENDS[name], name, tuple(props))


def fourcc_text(code: float) -> str:
    """OpenCV's numeric FOURCC (``CAP_PROP_FOURCC``) as its 4 characters; "" for 0/unknown."""
    n = int(code)
    if n <= 0:
        return ""
    text = "".join(chr((n >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() else ""


@dataclass(frozen=True)
class Negotiated:
    """What the camera gave after the plan was applied (read back from the backend)."""

    backend: str
    resolution: tuple[int, int]
    fps: float
    fourcc: str

    def describe(self) -> str:
        fmt = f" {self.fourcc}" if self.fourcc else ""
        return f"{self.resolution[0]}x{self.resolution[1]} @ {self.fps:g} fps{fmt} ({self.backend})"


def read_back(cap: cv2.VideoCapture, backend: str) -> Negotiated:
    """The mode an opened capture reports (width, height, fps, pixel format)."""
    try:
        name = cap.getBackendName()
    except cv2.error:
        name = backend
    return Negotiated(name, (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
                      float(cap.get(cv2.CAP_PROP_FPS)), fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))


def open_webcam(index: int, settings: WebcamSettings | None = None, system: str | None = None,
                display: str | None = None) -> tuple[cv2.VideoCapture, Negotiated]:
    """Open webcam ``index`` with ``settings`` (see :func:`plan_open`), or raise SourceError
    with one clear line when no such camera opens. Returns the capture and what it gave; a
    mode other than the one asked for is logged as a warning (cameras choose the nearest)."""
    plan = plan_open(settings, system)
    label = display or f"webcam {index}"
    cap = cv2.VideoCapture(int(index), plan.backend_id)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open {label}: no camera with index {index} on the {plan.backend_name} backend "
                          "(or it is in use by another program, or access is not permitted); "
                          "`facescope cameras` lists the cameras found")
    for prop, value in plan.props:
        if not cap.set(prop, value):
            log.info("%s: the %s backend refused property %d = %g", label, plan.backend_name, prop, value)
    got = read_back(cap, plan.backend_name)
    s = settings or WebcamSettings()
    asked = [(s.resolution, got.resolution), (s.fps, got.fps)]
    if any(want is not None and (tuple(want) if isinstance(want, tuple) else want) != have for want, have in asked):
        log.warning("%s: asked %s, the camera gave %s", label, describe_request(s), got.describe())
    else:
        log.info("%s: %s", label, got.describe())
    return cap, got


def describe_request(s: WebcamSettings) -> str:
    res = f"{s.resolution[0]}x{s.resolution[1]}" if s.resolution else "default size"
    fps = f" @ {s.fps:g} fps" if s.fps else ""
    return f"{res}{fps}{' ' + s.fourcc if s.fourcc else ''}"


@dataclass(frozen=True)
class CameraEntry:
    """One camera as the OS names it: ``index`` to pass as ``--source``, ``name`` (e.g. "HD Pro
    Webcam C920"), ``backend`` name, ``path`` (``/dev/video0``, a Windows device path, or None),
    ``usb_id`` ("046d:082d") when known."""

    index: int
    name: str
    backend: str
    path: str | None = None
    usb_id: str | None = None


def entries_from(infos, backend: str) -> list[CameraEntry]:
    """``cv2_enumerate_cameras.CameraInfo`` objects -> CameraEntry rows, sorted by index."""
    out = []
    for i in infos:
        usb = f"{i.vid:04x}:{i.pid:04x}" if i.vid is not None and i.pid is not None else None
        out.append(CameraEntry(int(i.index), str(i.name or f"camera {i.index}"), backend, i.path or None, usb))
    return sorted(out, key=lambda e: e.index)


def list_cameras(backend: str = "auto", system: str | None = None) -> list[CameraEntry]:
    """The cameras the OS reports on ``backend`` (``auto``: :func:`default_backend`). An empty
    list when there is none. Raises ValueError for a backend the listing cannot query here."""
    from cv2_enumerate_cameras import enumerate_cameras, supported_backends

    name = default_backend(system) if backend == "auto" else backend
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    api = BACKENDS[name]
    if api not in supported_backends:
        known = [n for n, v in BACKENDS.items() if v in supported_backends]
        raise ValueError(f"cannot list cameras on the {name} backend on this OS; use one of {', '.join(known)}")
    return entries_from(enumerate_cameras(api), name)


def format_cameras(entries: list[CameraEntry]) -> str:
    """The ``facescope cameras`` table."""
    if not entries:
        return "no cameras found (none connected, or no permission to open /dev/video* on Linux)"
    lines = [f"{'index':>5}  {'name':<36} {'backend':<12} {'usb id':<10} path"]
    for e in entries:
        lines.append(f"{e.index:>5}  {e.name:<36} {e.backend:<12} {e.usb_id or '-':<10} {e.path or '-'}")
    lines.append("use the index: facescope run --source INDEX [--webcam-size 1920x1080 --webcam-fps 30]")
    return "\n".join(lines)

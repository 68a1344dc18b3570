"""A minimal RTSP server for the capture tests: streams a video file as H.264 (or MJPEG) over RTSP.

Run with a Python that has GStreamer's introspection bindings (Debian: /usr/bin/python3 with
python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly} (avi, rtp, x264)
and gstreamer1.0-libav (the clip's MPEG-4 decoder)):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file resources/demo/megamind.avi

serves rtsp://127.0.0.1:8554/demo and prints ``READY <port>`` once it listens (``--codec mjpeg``: RTP/JPEG,
as an IP camera's MJPEG mode sends it). Every client gets
its own pipeline from the start of the file, paced in real time (RTP timestamps drive the sink).
Exit code 3 and a message on stderr when the bindings or an element are missing.
"""
from __future__ import annotations

import argparse
import signal
import sys

# per codec: the encoder, then the RTP payloader (key-int-max: an H.264 keyframe every 0.5 s, so that a
# (re)connecting client can decode within half a second)
CODECS = {"h264": ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=12 bitrate=2000",
                   "rtph264pay name=pay0 pt=96 config-interval=1"),
          "mjpeg": ("jpegenc quality=85", "rtpjpegpay name=pay0 pt=26")}


def _can_encode(Gst, location: str, encoder: str) -> bool:
    """Preroll the file through decoder and encoder once, so that a missing codec is reported
    here (exit 3) rather than as a stream that never delivers a frame."""
    check = Gst.parse_launch(f'filesrc location="{location}" ! decodebin ! videoconvert ! {encoder} ! fakesink')
    check.set_state(Gst.State.PAUSED)
    msg = check.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.ASYNC_DONE | Gst.MessageType.ERROR)
    check.set_state(Gst.State.NULL)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        detail = msg.parse_error()[0].message if msg is not None else "no preroll within 10 s"
        print(f"MISSING cannot decode/encode {location} with GStreamer: {detail}", file=sys.stderr, flush=True)
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--path", default="/demo")
    ap.add_argument("--codec", choices=sorted(CODECS), default="h264")
    args = ap.parse_args()
    try:
        import gi
        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as e:
        print(f"MISSING GStreamer RTSP server bindings: {e}", file=sys.stderr, flush=True)
        return 3
    Gst.init(None)
    encoder, payloader = CODECS[args.codec]
    elements = ("filesrc", "decodebin", "videoconvert", encoder.split()[0], payloader.split()[0])
    missing = [name for name in elements if Gst.ElementFactory.find(name) is None]
    if missing:
        print(f"MISSING GStreamer elements: {', '.join(missing)}", file=sys.stderr, flush=True)
        return 3
    location = args.file.replace('"', '\\"')
    if not _can_encode(Gst, location, encoder):
        return 3
    launch = (f'( filesrc location="{location}" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! '
              f"{encoder} ! {payloader} )")
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"MISSING could not listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 4
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

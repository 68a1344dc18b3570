"""``--gate`` / ``--detect-every`` / ``--detect-every-s`` / ``--decode``: detector gating for the real-time commands."""
from __future__ import annotations

import argparse

from engine.track.gating import GATE_MODES, GateConfig

_DEFAULT = GateConfig()
DECODE_MODES = ("on-demand", "full")


def add_gate_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector gating")
    g.add_argument("--gate", choices=GATE_MODES, default=_DEFAULT.mode,
                   help="adaptive (default): run the face detector only when something moved outside the tracked "
                        "faces, a track was poorly predicted, or --detect-every says so, and carry tracks by "
                        "prediction in between; every-frame: detect on every frame (the behaviour before gating)")
    g.add_argument("--detect-every", type=int, metavar="N", default=_DEFAULT.max_skip_frames + 1,
                   help=f"adaptive: detect at least every N frames (default {_DEFAULT.max_skip_frames + 1}; "
                        "1 = every frame)")
    g.add_argument("--detect-every-s", type=float, metavar="SECONDS", default=_DEFAULT.max_skip_s,
                   help=f"adaptive: detect at least every SECONDS of video time (default {_DEFAULT.max_skip_s:g}): "
                        "the bound on how late a face that appears without motion is found")
    g.add_argument("--no-follow", dest="follow", action="store_false",
                   help="adaptive: do not follow tracked faces by template matching on skipped frames (their "
                        "boxes are then the motion model's predictions; poorly predicted faces are detected sooner)")
    g.add_argument("--decode", choices=DECODE_MODES, default="on-demand",
                   help="MJPEG files and streams: on-demand (default) decodes each frame to a small grey preview "
                        "for the gate and to full size only when a stage needs its pixels (a detected frame); full "
                        "decodes every frame at once on its capture thread (the behaviour before; --out implies it)")


def decode_on_demand(args: argparse.Namespace) -> bool:
    """``CaptureConfig.decode_on_demand`` of ``--decode``: full where every frame is decoded anyway
    (drawn with ``--out``, detected with ``--gate every-frame``: a preview would only add to it)."""
    return args.decode == "on-demand" and not getattr(args, "out", None) and args.gate != "every-frame"


def gate_config(args: argparse.Namespace) -> GateConfig:
    """The GateConfig of the options (ValueError on invalid values)."""
    if args.detect_every < 1:
        raise ValueError(f"--detect-every must be >= 1, got {args.detect_every}")
    return GateConfig(mode=args.gate, max_skip_frames=args.detect_every - 1, max_skip_s=args.detect_every_s,
                      follow=args.follow)

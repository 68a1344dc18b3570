"""``facescope`` entry point: argparse with one module per command family.

Expected failures (bad images, wrong model files, unknown persons, ...) print one line
``facescope: error: ...`` and exit 2; unexpected ones keep their traceback.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli import (
    bench_cmd,
    cameras_cmd,
    demo_cmd,
    doctor_cmd,
    embedder_cmds,
    enroll_cmd,
    eval_cmd,
    gallery_cmd,
    gui_cmd,
    models_cmd,
    run_cmd,
    sightings_cmd,
    synth_cmd,
    train_cmd,
    trt_cmd,
    unknowns_cmd,
)
from engine.errors import FacescopeError

COMMANDS = (gui_cmd, demo_cmd, run_cmd, enroll_cmd, gallery_cmd, sightings_cmd, eval_cmd, bench_cmd, synth_cmd,
            models_cmd, train_cmd, trt_cmd, doctor_cmd, embedder_cmds, unknowns_cmd, cameras_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facescope",
        description="Real-time face recognition: enrol faces, identify them, evaluate and benchmark the models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `facescope` opens the window
        args.func = gui_cmd.run
    from engine.gallery.audit import default_frontend, set_default_frontend

    before = default_frontend()  # restored after: main() also runs in-process (tests, scripts)
    set_default_frontend("gui" if args.func is gui_cmd.run else "cli")  # recorded in the gallery's audit trail
    try:
        return int(args.func(args) or 0)
    except FacescopeError as exc:
        print(f"facescope: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as exc:
        # Library validation errors carry user-facing messages too (invalid config, unknown person).
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"facescope: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("facescope: interrupted", file=sys.stderr)
        return 130
    finally:
        set_default_frontend(before)


if __name__ == "__main__":
    sys.exit(main())

"""``facescope bench corpus``: the bad-input corpus through every command and the window's open paths."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import write_json

DOC = Path("docs/bad_input.md")


def register(bench: argparse._SubParsersAction) -> None:
    """Add ``corpus`` to ``facescope bench``'s sub-commands."""
    c = bench.add_parser("corpus", help="bad inputs (broken images, videos, models, galleries) through every "
                                        "command and the window: one clear error each, nothing written",
                         description="Generate the bad-input corpus in --out (from a real photo and clip in "
                                     "--shared), run each input through every command that takes it as a real "
                                     "subprocess and through the GUI's open paths (offscreen), and write the "
                                     "summary table (--doc) and the cases (--json). Exit 1 when a case fails.")
    c.add_argument("--out", required=True, help="folder for the corpus and the galleries it runs on (emptied)")
    c.add_argument("--shared", default="../shared", help="the real data folder (default ../shared)")
    c.add_argument("--json", metavar="PATH")
    c.add_argument("--doc", default=str(DOC), help=f"markdown summary table (default {DOC}; '' = none)")
    c.add_argument("--quick", action="store_true", help="a reduced corpus: one case per kind of input and front end")
    c.add_argument("--no-gui", action="store_true", help="skip the window's open paths (no PySide6)")
    c.add_argument("--jobs", type=int, default=2, help="commands run at once (default 2)")
    c.set_defaults(func=run_corpus_cmd)


def run_corpus_cmd(args: argparse.Namespace) -> int:
    from engine.bench.corpus_report import markdown, summary, to_json
    from engine.bench.corpus_run import run_corpus
    from engine.resources import resources_dir

    if args.jobs < 1:
        raise ValueError("--jobs must be >= 1")
    gui = not args.no_gui
    if gui:
        from engine.cli.extras import need_extra

        need_extra("gui", "bench corpus (or --no-gui)")

    def show(r) -> None:
        flag = "ok  " if r.passed else "FAIL"
        print(f"{flag} {r.command:<18} {r.input:<22} exit {r.rc:<3} {r.message[:110]}", flush=True)

    results = run_corpus(args.out, args.shared, resources_dir(), quick=args.quick, jobs=args.jobs, gui=gui,
                         progress=show)
    s = summary(results)
    print(f"{s['inputs_tried']} inputs tried ({s['distinct_inputs']} files): "
          f"{s['clear_errors']}/{s['expected_errors']} clear errors, {s['accepted']}/{s['expected_accepted']} "
          f"valid accepted, {s['tracebacks']} tracebacks, "
          f"{s['gallery_changed_on_failure']} galleries changed on failure")
    command = "facescope bench corpus --out " + str(args.out) + (" --quick" if args.quick else "") + \
        (" --no-gui" if not gui else "")
    if args.doc:
        doc = Path(args.doc)
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(markdown(results, command))
        print(f"wrote {doc}")
    write_json(args.json, to_json(results))
    return 0 if s["failed"] == 0 else 1

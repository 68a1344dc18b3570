"""``facescope bench --source A --source B ...``: several sources paced like cameras, one engine
(:mod:`engine.bench.multi`). The gallery holds the enrolled people of every clip's truth
(``SOURCE.json`` next to each clip), or ``--gallery``. ``--no-latency-pass`` reads the files as fast
as the engine takes them instead of pacing them (every frame: accuracy and CPU per frame on a
machine too busy to keep the camera rate)."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def run_multi_bench(args: argparse.Namespace, fill_gallery) -> int:
    """``fill_gallery(rec, gallery, source_path, truth)``: enrols a clip's people (bench_cmd's, passed in
    rather than imported back: no import cycle between the two command modules)."""
    from engine.bench.multi import bench_multi, format_multi
    from engine.cli.common import build_tracking_recognizer, write_json
    from engine.cli.enroll_cmd import open_gallery
    from engine.cli.gate_args import decode_on_demand, gate_config
    from engine.errors import FacescopeError
    from engine.multi import multi_pipeline_config

    if args.baseline:
        raise FacescopeError("--baseline runs with one --source (the single-source benchmark)")
    if args.truth:
        raise FacescopeError("--truth names one clip's truth: with several sources each clip's SOURCE.json is used")
    sources = [Path(s) for s in args.source]
    for s in sources:
        if not s.is_file():
            from engine.capture.source import mask_url

            raise FacescopeError(f"--source must be a video file, got {mask_url(str(s))}")
    truths = []
    for s in sources:
        path = s.with_suffix(s.suffix + ".json")
        if path.is_file():
            from engine.synth import load_truth

            truths.append(load_truth(path))
        else:
            truths.append(None)
    rec = build_tracking_recognizer(args, multi=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.gallery:
            gallery = open_gallery(args.gallery, rec.embedder, create=False)
        else:
            gallery = open_gallery(str(Path(tmp) / "bench.db"), rec.embedder, create=True)
            for s, truth in zip(sources, truths, strict=True):
                fill_gallery(rec, gallery, s, truth)
            wanted = sum(p.get("enrolled", True) for t in truths if t for p in t["identities"])
            if wanted and len(gallery.index) == 0:  # scoring against an empty gallery would read as 0 % named
                raise FacescopeError("no enrolment image of the clips' truth could be read (their paths are "
                                     "relative to the folder synth-clip ran in: run the benchmark from there)")
        with gallery:
            result = bench_multi(rec, sources, gallery.index, truths, args.frames,
                                 multi_pipeline_config(gate=gate_config(args)), paced=not args.no_latency_pass,
                                 on_demand=decode_on_demand(args))
    print(format_multi(result))
    write_json(args.json, result)
    return 0

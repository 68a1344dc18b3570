"""The ``--events`` JSON-lines file (engine.events_out.jsonl) when the disk says no: a full disk
(``/dev/full``) and a file-size limit hit in the middle of a line (``RLIMIT_FSIZE`` in a child
process: a real short write). The file keeps whole lines only, the problem is said once, the run
is not ended, and writing resumes when it can."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events_out.jsonl import JsonlFile
from tests.conftest import REPO

LINE = {"kind": "identified", "track_id": 7, "frame": 12, "name": "Roxanne", "similarity": 0.7,
        "time": "2026-12-06T22:53:49.387Z", "epoch": 1796597629.387}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system (Linux has one)")
def test_a_full_disk_drops_events_with_one_message_and_leaves_a_device_alone():
    before = os.stat("/dev/full").st_mode
    said = []
    with JsonlFile("/dev/full", say=said.append) as f:
        assert f.write(LINE) is False and f.write(LINE) is False
        assert f.dropped == 2 and f.written == 0
        assert len(said) == 1 and "No space left on device" in said[0] and "dropped" in said[0]
    assert "2 of 2 events could not be written" in said[-1]
    assert os.stat("/dev/full").st_mode == before  # not a regular file: never chmod-ed


CHILD = r"""
import json, resource, signal, sys
sys.path.insert(0, sys.argv[3])
from engine.events_out.jsonl import JsonlFile
line = json.loads(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
said = []
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
one = len(json.dumps(line)) + 1
with JsonlFile(sys.argv[1], say=said.append) as f:
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 * one + one // 2, hard))  # room for 3.5 lines
    results = [f.write(line) for _ in range(6)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    results += [f.write(line) for _ in range(2)]
print(json.dumps({"results": results, "said": said}))
"""


def test_a_line_cut_by_a_size_limit_is_removed_and_writing_resumes(tmp_path):
    path = tmp_path / "events.jsonl"
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(LINE), str(REPO)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["results"] == [True, True, True, False, False, False, True, True]  # the 4th line only half fitted
    lines = path.read_text().splitlines()
    assert [json.loads(s) for s in lines] == [LINE] * 5  # whole lines only: the cut half was removed
    assert path.read_text().endswith("\n")
    said = r["said"]
    assert "cannot write" in said[0] and "writing again (3 events dropped so far)" in said[1]
    assert "3 of 8 events could not be written" in said[-1] and len(said) == 3

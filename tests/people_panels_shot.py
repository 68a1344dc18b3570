"""Screenshot of the people panels (docs/people_panels.png) from a real run; not a test.

    xvfb-run -a env QT_QPA_PLATFORM=xcb python tests/people_panels_shot.py --lfw ../shared/data/lfw \
        --out docs/people_panels.png

A synthetic clip of LFW faces (2 enrolled people, 3 strangers) runs three times through a real
``LiveSession`` (real models, a real gallery file): the strangers' sightings form groups. Then the
real window opens on that gallery with its panels, plays the clip once more on its worker thread,
and the window (live view, unknown people and history side by side) is grabbed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(workdir: Path, lfw: Path) -> tuple[Path, Path]:
    from engine.capture import CaptureConfig, parse_source
    from engine.live import LiveSession, realtime_recognizer
    from engine.synth.clip import make_clip

    clip = workdir / "street.avi"
    make_clip(clip, lfw, faces=2, unknown_faces=3, frames=150, size=(960, 540), seed=3, gallery_images=3)
    truth = json.loads(Path(f"{clip}.json").read_text())
    gallery = workdir / "people.db"
    s = LiveSession(gallery, realtime_recognizer(), capture_config=CaptureConfig(realtime=False))
    s.open()
    for ident in (i for i in truth["identities"] if i["enrolled"]):
        print(ident["name"], s.enrol_images([clip.parent / p for p in ident["enrol_images"]],
                                            ident["name"].replace("_", " ")))
    for _ in range(3):
        for _r in s.run(parse_source(str(clip))):
            pass
        s.flush_sightings(force=True)
    print("regroup:", s.regroup_unknowns())
    s.close()
    return clip, gallery


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "people_panels.png")
    args = ap.parse_args()
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication, QDockWidget

    from desktop.main_window import MainWindow
    from desktop.panels import attach_panels
    from engine.capture import CaptureConfig

    app = QApplication.instance() or QApplication([])
    args.out, lfw = args.out.resolve(), args.lfw.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the clip's source shows as "street.avi"
        clip, gallery = build(Path(tmp), lfw)
        settings = QSettings(str(Path(tmp) / "facescope.ini"), QSettings.Format.IniFormat)
        win = MainWindow(gallery_path=gallery, capture_config=CaptureConfig(realtime=True, loop=True),
                         settings=settings, probe_webcams=False)
        attach_panels(win)
        win.resize(1500, 900)
        docks = {d.windowTitle(): d for d in win.findChildren(QDockWidget)}
        right = Qt.DockWidgetArea.RightDockWidgetArea
        for title in ("Unknown people", "History"):
            win.addDockWidget(right, docks[title])  # out of the Gallery tabs: both in view
        win.splitDockWidget(docks["Unknown people"], docks["History"], Qt.Orientation.Horizontal)
        docks["Gallery"].hide()
        docks["Monitor"].hide()
        win.resizeDocks([docks["Unknown people"], docks["History"]], [390, 430], Qt.Orientation.Horizontal)
        win.show()
        win.start(clip.name)
        end = time.monotonic() + 8.0
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)
        win.people_timer.stop()  # no refresh between the selection and the grab
        h = win.history_panel
        h.select(next((i for i in h.sighting_ids() if h.rows[i].name), h.sighting_ids()[0]))
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ok = win.grab().save(str(args.out), "PNG")
        print(f"{'wrote' if ok else 'FAILED to write'} {args.out}: {len(win.unknowns_panel.group_ids())} groups, "
              f"{len(win.history_panel.sighting_ids())} sightings, last frame {win.latest and win.latest.frame.index}")
        win.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

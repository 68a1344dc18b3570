"""People panels (P9 GUI): unknowns (name / merge / ignore), history (filters, enrol, correct, similar),
"Not NAME" in the live view and the gallery panel. Real window widgets (offscreen), real gallery
SQLite files, real sightings made by the real pipeline on a synthetic clip of LFW faces
(`facescope synth-clip`: 2 enrolled people and 2 strangers, three passes), real models."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from engine.capture import parse_source
from tests import people_clip
from tests.people_clip import PASSES, enrolled_names, run_pass, strangers, truth_name

# the real-sightings fixtures (shared with the Qt-free tests/test_live_people.py)
recognizer, clip, base_gallery, session = (people_clip.recognizer, people_clip.clip, people_clip.base_gallery,
                                           people_clip.session)


@pytest.fixture
def window(qtbot, session, tmp_path):
    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow
    from desktop.panels import attach_panels

    settings = QSettings(str(tmp_path / "facescope.ini"), QSettings.Format.IniFormat)
    win = MainWindow(session=session, settings=settings, probe_webcams=False)
    qtbot.addWidget(win)
    attach_panels(win)
    win.resize(1200, 700)
    win.show()
    qtbot.waitExposed(win)
    assert win.ensure_engine()  # engine_ready: the panels regroup and read the gallery
    win.people_timer.stop()  # the tests drive the refreshes themselves
    errors = []
    for panel in (win.unknowns_panel, win.history_panel):
        panel._show_error = lambda title, text: errors.append((title, text))
    win.errors = errors
    yield win
    win.close()


# ---------------------------------------------------------------------------------------------- unknowns
def test_unknowns_panel_tiles_show_every_group_with_its_crops(qtbot, window):
    from engine.sightings import unknowns

    panel = window.unknowns_panel
    groups = unknowns.groups(window.session.gallery)
    assert panel.group_ids() == [g.id for g in groups] and len(groups) >= 2
    qtbot.waitUntil(lambda: panel.crops_shown == sum(len(g.best) for g in groups), timeout=5000)
    tile = panel.tiles[groups[0].id]
    assert "people.avi" in tile.details.text() and "first" in tile.details.text()
    assert f"{len(groups)} unknown group(s)" in panel.status.text()
    kept = dict(panel.tiles)
    panel.refresh()  # nothing changed: the same tiles (no rebuild, no new decoding)
    assert all(panel.tiles[g] is t for g, t in kept.items())
    panel.shown = 1  # paging: older groups behind "Show more"
    panel.refresh()
    assert panel.group_ids() == [groups[0].id] and panel.more_button.isVisibleTo(panel)
    panel.more_button.click()
    assert panel.group_ids() == [g.id for g in groups][:25] and not panel.more_button.isVisibleTo(panel)
    assert not window.errors


def test_naming_a_group_enrols_its_best_crops_and_the_next_frames_show_the_name(qtbot, window, clip):
    from engine.sightings import store, unknowns

    clip_path, truth = clip
    s, panel = window.session, window.unknowns_panel
    gid = panel.group_ids()[0]
    best = panel.tiles[gid].info.best
    panel._ask_name = lambda title, label, names, default: "Stranger One"  # the dialog's answer
    shown, named_at, who = [], None, None

    def on_result(r):
        nonlocal named_at
        window.show_result(r)
        shown.append((r, window.view.faces))
        if named_at is None and r.frame.index == 40:  # mid-run, strangers in view: the Name… button
            panel.tiles[gid].name_button.click()
            named_at = r.frame.index

    run_pass(s, clip_path, on_result)
    assert named_at == 40 and gid not in panel.group_ids() and not window.errors
    faces = s.gallery.faces("Stranger One")
    assert len(faces) == min(5, len(best))
    conn = s.gallery.db.conn
    for f in faces:  # the group's best crops, each with its sighting named in the source
        sid = int(f.source.rsplit("sighting ", 1)[1].rstrip(")"))
        assert sid in best
        np.testing.assert_array_equal(s.gallery.face_crop(f.id), store.crop(conn, sid))
    assert gid not in [g.id for g in unknowns.groups(s.gallery, include_ignored=True)]
    # the name shows on the very next frames, on one stranger only, and stays
    after = [(r, f) for r, f in shown if r.frame.index > named_at]
    labelled = {truth_name(truth, r, i) for r, f in after for i in range(len(f)) if f.names[i] == "Stranger One"}
    labelled.discard(None)
    assert len(labelled) == 1 and labelled <= set(strangers(truth)), labelled
    who = labelled.pop()
    first = next(r.frame.index for r, f in after if "Stranger One" in f.names)
    assert first <= named_at + 2, f"the name came {first - named_at} frames after naming"
    visible = [(r, f) for r, f in after
               if any(truth_name(truth, r, i) == who for i in range(len(f)))]
    ok = sum(any(truth_name(truth, r, i) == who and f.names[i] == "Stranger One" for i in range(len(f)))
             for r, f in visible)
    assert ok >= 0.9 * len(visible), (ok, len(visible))


def test_is_this_x_suggestion_is_accepted_with_one_click(qtbot, window, clip, lfw_dir):
    """A stranger's other LFW photo enrolled as "Ellen": her group's tile asks "Is this Ellen?"
    when its centre sits just below the match threshold (here the panel's threshold is set 0.05
    above the measured similarity); one click enrols the group into that existing person."""
    from engine.sightings import unknowns
    from engine.sightings.grouping import GroupingConfig

    s, panel = window.session, window.unknowns_panel
    stranger = next(i for i in clip[1]["identities"] if not i["enrolled"] and i["name"] == "Ellen_DeGeneres")
    other = [p for p in sorted((lfw_dir / "lfw-deepfunneled" / stranger["name"]).glob("*.jpg"))
             if p.name != Path(stranger["sprite_image"]).name]
    assert s.enrol_images(other[:1], "Ellen")[0] == 1
    hints = {g.id: g.suggestion for g in unknowns.groups(s.gallery, 2.0, config=GroupingConfig(suggest_within=2.0))}
    gid, (who, sim) = max(((g, h) for g, h in hints.items() if h and h[0] == "Ellen"), key=lambda x: x[1][1])
    panel.refresh()
    assert all(t.suggest_button is None for t in panel.tiles.values())  # at the real threshold: no hint
    panel.threshold = sim + 0.05
    panel.refresh()
    button = panel.tiles[gid].suggest_button
    assert button is not None and button.text() == "Is this Ellen? Yes"
    assert all(t.suggest_button is None for g, t in panel.tiles.items() if g != gid)
    n = panel.tiles[gid].info.sightings
    button.click()
    assert gid not in panel.group_ids() and len(s.gallery.faces("Ellen")) == 1 + min(5, n)
    assert not window.errors


def test_ignored_group_is_gone_and_does_not_form_again(qtbot, window, clip):
    """Ignore a stranger; their old visits then leave (retention), and they come back three times
    (two earlier visits' stored faces, then live on the clip): with none of the old grouped
    sightings left, only the ignored group's anchor keeps a new group from forming."""
    from engine.sightings import Sighting, store, unknowns

    s, panel = window.session, window.unknowns_panel
    conn, dim = s.gallery.db.conn, s.gallery.dim
    before = panel.group_ids()
    gid = before[-1]
    panel.tiles[gid].ignore_button.click()
    assert gid not in panel.group_ids() and len(panel.group_ids()) == len(before) - 1
    old = [r for r in store.list_sightings(conn) if r.group_id == gid]
    back = [Sighting(-1, r.source, r.first_seen - 86400 * (k + 1), r.last_seen - 86400 * (k + 1), r.frames,
                     store.crop(conn, r.id), store.embeddings(conn, dim, "id = ?", [r.id])[1][0], r.quality)
            for k, r in enumerate(old[:2])]
    assert store.delete(s.gallery, ids=[r.id for r in old]) == len(old) >= 2  # purged by retention
    store.record(s.gallery, back)
    written = s.sightings_written
    run_pass(s, clip[0])  # and live again today
    assert s.sightings_written > written
    panel.poll()  # new sightings: a background regroup starts
    assert s.regrouping or s.last_regroup is not None
    s.wait_regroup(60)  # (the window's timer: session.flush_sightings applies it)
    assert panel.poll()  # applied: the panel shows the groups again
    assert sorted(panel.group_ids()) == sorted(g for g in before if g != gid)  # no new group for them
    ignored = {g.id: g for g in unknowns.groups(s.gallery, include_ignored=True)}[gid]
    assert ignored.status == "ignored" and ignored.sightings == 3  # all three absorbed by the anchor
    assert not window.errors


def test_merging_two_ticked_groups(qtbot, window):
    panel = window.unknowns_panel
    a, b = panel.group_ids()[:2]
    total = panel.tiles[a].info.sightings + panel.tiles[b].info.sightings
    assert not panel.merge_button.isEnabled()
    panel.tiles[a].check.setChecked(True)
    assert not panel.merge_button.isEnabled()  # two are needed
    panel.tiles[b].check.setChecked(True)
    assert panel.merge_button.isEnabled()
    panel.merge_button.click()
    ids = panel.group_ids()
    assert len([g for g in (a, b) if g in ids]) == 1
    kept = a if a in ids else b
    assert panel.tiles[kept].info.sightings == total
    window.session.regroup_unknowns()  # a manual merge stays merged
    panel.refresh()
    assert kept in panel.group_ids() and panel.tiles[kept].info.sightings == total
    assert not window.errors


# ---------------------------------------------------------------------------------------------- corrections
def test_not_this_person_from_the_live_view(qtbot, window, clip):
    from PySide6.QtCore import QPointF

    from engine.gallery import negatives

    clip_path, truth = clip
    s, view = window.session, window.view
    name = enrolled_names(truth)[0]
    done, after = [], []

    def on_result(r):
        window.show_result(r)
        if done:
            after.append((r, view.faces))
            return
        f = view.faces
        hit = [i for i in range(len(f)) if f.names[i] == name]
        if hit and r.frame.index >= 10:
            i = hit[0]
            box = f.boxes[i]
            centre = view.image_to_widget(QPointF(float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2))
            menu = view.face_menu(centre)  # what a right click opens
            action = next(a for a in menu.actions() if a.text() == f"Not {name}")
            action.trigger()
            done.append((int(f.track_ids[i]), truth_name(truth, r, i)))

    run_pass(s, clip_path, on_result)
    assert done, f"{name} was never shown"
    tid, who = done[0]
    assert negatives.count(s.gallery, name) == 1 and s.gallery.index.negative_count == 1
    assert after and all(f.names[i] != name for r, f in after for i in range(len(f)) if f.track_ids[i] == tid)
    # nor on that face's later tracks (the negative sticks), while the other enrolled person keeps a name
    wrong = sum(f.names[i] == name for r, f in after for i in range(len(f)))
    assert wrong == 0, f"{wrong} faces still shown as {name} after 'Not {name}'"
    other = enrolled_names(truth)[1]
    assert any(other in f.names for _, f in after)
    assert "is not" in window.note_label.text() and not window.errors
    assert who == name.replace(" ", "_")


def test_not_this_person_on_a_gallery_face_moves_it_to_the_negatives(qtbot, window, clip):
    from desktop.gallery_panel import GalleryPanel
    from engine.gallery import negatives

    g, panel = window.session.gallery, window.findChild(GalleryPanel)
    panel._confirm = lambda title, text: True
    name = enrolled_names(clip[1])[0]
    assert panel.select_person(name)
    fids = panel.face_ids()
    panel.faces_list.setCurrentRow(0)
    assert panel.not_person_selected_face()
    assert [f.id for f in g.faces(name)] == fids[1:] and fids[0] not in g.index.face_ids.tolist()
    assert negatives.count(g, name) == 1 and g.index.negative_count == 1
    assert g.audit_entries()[-1].action == "not_person" and g.verify_audit().ok


# ---------------------------------------------------------------------------------------------- history
def test_history_filters_by_person_source_and_time(qtbot, window, clip):
    import dataclasses

    from engine.sightings import Sighting, store

    s, h = window.session, window.history_panel
    conn = s.gallery.db.conn
    name = enrolled_names(clip[1])[0]
    everything = store.list_sightings(conn)
    h.set_filter(None, "", None)
    assert h.sighting_ids() == [r.id for r in everything][:200] and len(everything) >= 2 * PASSES
    qtbot.waitUntil(lambda: all(not h.list.item(i).icon().isNull() for i in range(h.list.count())), timeout=5000)
    h.set_filter(name, "", None)
    mine = [r.id for r in everything if r.name == name]
    assert h.sighting_ids() == mine and mine
    h.set_filter("Unknown only", "", None)
    assert h.sighting_ids() == [r.id for r in everything if r.name is None]
    h.set_filter(None, "no-such-camera", None)
    assert h.sighting_ids() == []
    h.set_filter(None, "people.avi", None)
    assert len(h.sighting_ids()) == len(everything)
    # an old sighting (the same face, two days ago) only in the wider time ranges
    r0 = everything[0]
    emb = store.embeddings(conn, s.gallery.dim, "id = ?", [r0.id])[1][0]
    old = dataclasses.replace(Sighting(-1, "rtsp://cam/door", 0, 0, 5, store.crop(conn, r0.id), emb, 0.8),
                              first_seen=time.time() - 2 * 86400 - 60, last_seen=time.time() - 2 * 86400)
    (oid,) = store.record(s.gallery, [old])
    h.set_filter(None, "", 86400.0)
    assert oid not in h.sighting_ids() and len(h.sighting_ids()) == len(everything)
    h.set_filter(None, "", 7 * 86400.0)
    assert oid in h.sighting_ids()
    h.set_filter(None, "cam/door", 7 * 86400.0)
    assert h.sighting_ids() == [oid]
    assert not window.errors


def test_history_enrol_correct_and_find_similar(qtbot, window, clip):
    from engine.gallery import negatives
    from engine.sightings import store

    s, h = window.session, window.history_panel
    conn = s.gallery.db.conn
    h._ask_name = lambda title, label, names, default: "Visitor"
    h.set_filter("Unknown only", "", None)
    sid = h.sighting_ids()[0]
    assert h.select(sid) and h.enrol_button.isEnabled() and not h.not_button.isEnabled()
    h.enrol_button.click()
    (face,) = s.gallery.faces("Visitor")
    emb = store.embeddings(conn, s.gallery.dim, "id = ?", [sid])[1][0]
    np.testing.assert_array_equal(s.gallery.embeddings("Visitor")[1][0], emb)
    diff = np.abs(s.gallery.face_crop(face.id).astype(int) - store.crop(conn, sid).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 16  # the same crop, JPEG-encoded once more
    assert "Visitor" in [h.person_combo.itemText(i) for i in range(h.person_combo.count())]
    # find similar: itself first, then the same stranger's other sightings
    group = next(r.group_id for r in store.list_sightings(conn, ids=[sid]))
    assert h.select(sid)
    h.similar_button.click()
    ids = h.sighting_ids()
    assert h.similar_to == sid and h.back_button.isVisibleTo(h) and "similarity 1.00" in h.list.item(0).text()
    same = {r.id for r in store.list_sightings(conn, unknown=True) if r.group_id == group and group is not None}
    assert sid in same and set(ids[:len(same)]) == same and len(ids) > len(same)  # its group first
    assert any(r.name for r in (h.rows[i] for i in ids[len(same):]))  # then the less similar, named ones
    # correct a named sighting: "not NAME" stores a negative and the sighting turns unknown
    name = enrolled_names(clip[1])[0]
    h.set_filter(name, "", None)
    nid = h.sighting_ids()[0]
    assert h.select(nid) and h.not_button.isEnabled() and h.not_button.text() == f"Not {name}"
    h.not_button.click()
    assert negatives.count(s.gallery, name) == 1
    assert nid not in h.sighting_ids()
    assert store.list_sightings(conn, ids=[nid])[0].name is None
    assert not window.errors


def test_the_window_timer_writes_sightings_regroups_off_thread_and_refreshes(qtbot, window, clip):
    """The window's own loop: its timer writes the finished sightings, the regroup computes on a
    worker thread, and both panels show the new sightings without a call from the test."""
    s, panel, h = window.session, window.unknowns_panel, window.history_panel
    counts = {g: t.info.sightings for g, t in panel.tiles.items()}
    rows = len(h.sighting_ids())
    for r in s.run(parse_source(str(clip[0]))):  # a pass whose sightings are not written by the test
        window.show_result(r)
    assert s.sightings_written == 0 or rows == len(h.sighting_ids())
    window.people_timer.start()
    qtbot.waitUntil(lambda: s.sightings_written > 0 and len(h.sighting_ids()) > rows, timeout=15000)
    qtbot.waitUntil(lambda: {g: t.info.sightings for g, t in panel.tiles.items()}
                    == {g: n + 1 for g, n in counts.items()}, timeout=30000)
    assert s.last_regroup is not None and not window.errors


def test_a_person_erased_by_another_process_is_not_named_on_the_next_frames(qtbot, window, clip, monkeypatch):
    """``gallery delete`` from another process (its own connection) mid-run: the window's timer
    reloads the gallery, the live view stops naming that person from the next frame on and the
    gallery panel no longer lists them (engine.gallery.watch, LiveSession.watch_gallery)."""
    from desktop.gallery_panel import GalleryPanel
    from engine.gallery import Gallery, watch

    monkeypatch.setattr(watch, "POLL_S", 0.01)
    clip_path, truth = clip
    s = window.session
    shown, erased_at, who = [], None, None

    def on_result(r):
        nonlocal erased_at, who
        window.show_result(r)
        names = [n for n in window.view.faces.names if n is not None]
        shown.append((r.frame.index, names))
        if erased_at is None and names:
            who = names[0]
            with Gallery.open(s.gallery.path, s.gallery.embedder_id, s.gallery.dim, create=False) as other:
                other.delete_person(who)
            time.sleep(0.02)
            window._flush_sightings()  # the window's 1 s timer
            erased_at = r.frame.index

    run_pass(s, clip_path, on_result)
    assert erased_at is not None and who in enrolled_names(truth)
    later = [names for i, names in shown if i > erased_at]
    assert later and not any(who in names for names in later), (who, later[:5])
    assert any(names for names in later)  # the other enrolled person is still named
    assert who not in window.findChild(GalleryPanel).person_names() and not window.errors

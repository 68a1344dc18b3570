"""engine.metrics: hand-computed cases, a brute-force reference, LFW files, plots."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from engine.metrics import (
    find_lfw_root,
    format_table,
    identification_rates,
    kfold_accuracy,
    list_identity_folder,
    plot_roc,
    read_pairs,
    roc,
    split_gallery_probe,
    tar_at_far,
    threshold_for_far,
)
from tests.conftest import shared_path

# ---------------------------------------------------------------- verification

def _f32_above(x: float) -> float:
    """Smallest float32 strictly above x: thresholds must hold when compared in float32."""
    x = np.float64(x)  # a Python float would be compared in float32 (NEP 50)
    y = np.float32(x)
    while y <= x:
        y = np.nextafter(y, np.float32(np.inf))
    return float(y)


def test_threshold_for_far_holds_for_float32_similarities():
    sims = np.random.default_rng(0).random(100_000).astype(np.float32)
    t = threshold_for_far(sims, 0.01)
    assert (sims >= t).sum() <= 1000 and (sims.astype(np.float64) >= t).sum() <= 1000

def test_kfold_perfectly_separable():
    rng = np.random.default_rng(0)
    same = np.tile([True, False], 50)
    scores = np.where(same, rng.uniform(0.6, 1.0, 100), rng.uniform(-1.0, 0.4, 100))
    res = kfold_accuracy(scores, same, np.arange(100) % 5)
    assert res.accuracy == 1.0 and res.accuracy_std == 0.0
    assert res.fold_accuracies == (1.0,) * 5 and res.folds == (0, 1, 2, 3, 4)
    assert all(0.4 <= t <= 0.6 for t in res.fold_thresholds)


def test_kfold_by_hand():
    # fold 0: 0.9 same, 0.3 diff, 0.6 diff;  fold 1: 0.7 same, 0.5 same, 0.2 diff
    scores = [0.9, 0.3, 0.6, 0.7, 0.5, 0.2]
    same = [True, False, False, True, True, False]
    res = kfold_accuracy(scores, same, [0, 0, 0, 1, 1, 1])
    # test fold 0, trained on fold 1: best t = (0.2+0.5)/2 = 0.35 -> 0.6 wrongly "same": 2/3
    # test fold 1, trained on fold 0: best t = (0.6+0.9)/2 = 0.75 -> 0.7, 0.5 missed: 1/3
    assert res.fold_thresholds == pytest.approx((0.35, 0.75))
    assert res.fold_accuracies == pytest.approx((2 / 3, 1 / 3))
    assert res.accuracy == pytest.approx(0.5)
    assert res.accuracy_std == pytest.approx(1 / 6)      # population std (ddof=0)
    assert res.to_json()["mean_threshold"] == pytest.approx(0.55)


def _brute_kfold(scores, same, folds):
    """O(P*T) reference: try every candidate threshold on every training pair."""
    accs = []
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        u = np.unique(scores[tr])
        cands = np.r_[u[0], (u[:-1] + u[1:]) / 2, u[-1] + 1.0]
        train_acc = [np.mean((scores[tr] >= t) == same[tr]) for t in cands]
        t = cands[int(np.argmax(train_acc))]
        accs.append(np.mean((scores[te] >= t) == same[te]))
    return np.array(accs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kfold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 400
    same = rng.random(n) < 0.5
    scores = np.round(rng.normal(same * 1.0, 0.8), 1)     # rounding creates many ties
    folds = rng.integers(0, 10, n)
    res = kfold_accuracy(scores, same, folds)
    ref = _brute_kfold(scores, same, folds)
    np.testing.assert_allclose(res.fold_accuracies, ref, rtol=0, atol=1e-12)
    assert res.accuracy == pytest.approx(ref.mean())
    assert res.accuracy_std == pytest.approx(ref.std())


def test_roc_small():
    fpr, tpr, thr = roc([0.9, 0.8, 0.8, 0.3], [True, False, True, False])
    assert thr[0] == np.inf and list(thr[1:]) == [0.9, 0.8, 0.3]
    assert list(tpr) == [0.0, 0.5, 1.0, 1.0]
    assert list(fpr) == [0.0, 0.0, 0.5, 1.0]


def test_tar_at_far_exact():
    gen = [0.9, 0.8, 0.7, 0.4]
    imp = [0.85, 0.6, 0.5, 0.3, 0.2]
    scores, same = np.r_[gen, imp], np.r_[[True] * 4, [False] * 5]
    # far * 5 impostors = allowed false accepts k; threshold just above the (k+1)-th highest
    for far, tar, above in [(0.0, 0.25, 0.85), (0.1, 0.25, 0.85), (0.2, 0.75, 0.6),
                            (0.4, 0.75, 0.5), (0.6, 1.0, 0.3)]:
        got_tar, t = tar_at_far(scores, same, far)
        assert got_tar == tar and t == _f32_above(above), far


@pytest.mark.parametrize("far", [0.0, 1e-3, 0.01, 0.05, 0.29, 0.5])
def test_threshold_for_far_guarantees_count(far):
    imp = np.round(np.random.default_rng(4).normal(size=1000), 2)   # ties
    t = threshold_for_far(imp, far)
    k = math.floor(far * 1000 + 1e-9)
    assert np.sum(imp >= t) <= k
    assert np.sum(imp >= np.nextafter(np.float32(t), np.float32(-np.inf))) > k  # no lower float32 would do


def test_threshold_for_far_float_rounding():
    imp = np.arange(100.0)            # 0.29 * 100 = 28.999999999999996 must still allow 29
    assert threshold_for_far(imp, 0.29) == _f32_above(70.0)


def test_verification_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        roc([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="shape"):
        roc([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="both"):
        tar_at_far([0.1, 0.2], [True, True], 0.1)
    with pytest.raises(ValueError, match="far"):
        tar_at_far([0.1, 0.2], [True, False], 1.5)
    with pytest.raises(ValueError, match="folds"):
        kfold_accuracy([0.1, 0.2], [True, False], [0, 0])
    with pytest.raises(ValueError, match="fold 1"):        # training split lacks a class
        kfold_accuracy([0.1, 0.2, 0.3], [True, False, True], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        threshold_for_far([], 0.1)


# ---------------------------------------------------------------- identification
def _unit(*comps):
    v = np.zeros(4)
    v[:len(comps)] = comps
    v[3] = math.sqrt(1 - sum(c * c for c in comps))
    return v


def test_identification_constructed():
    gallery = 3.0 * np.eye(4)[:3]                      # ids 0, 1, 2 on axes; not unit length
    probes = np.array([_unit(0.9), _unit(0, 0.7), _unit(0, 0, 0.5), _unit(0.3, 0.6),  # genuine
                       _unit(0.8), _unit(0, 0, 0.55), _unit(0, 0.4), _unit(0.2)])     # impostors
    labels = [0, 1, 2, 0, 7, 7, 7, 7]    # the 4th genuine probe matches id 1 best: wrong
    for chunk in (None, 1, 3):
        res = identification_rates(gallery, [0, 1, 2], probes, labels,
                                   fprs=(0.5, 0.25, 0.2, 0.1), chunk_size=chunk)
        # impostor maxima 0.8, 0.55, 0.4, 0.2 -> thresholds just above 0.4, 0.55, 0.8, 0.8
        assert res.tpr_at_fpr == {0.5: 0.75, 0.25: 0.5, 0.2: 0.25, 0.1: 0.25}
        assert res.fpr_actual == {0.5: 0.5, 0.25: 0.25, 0.2: 0.0, 0.1: 0.0}
        assert res.thresholds[0.5] == pytest.approx(0.4)
        assert res.rank1 == 0.75
        assert (res.n_gallery, res.n_identities, res.n_genuine, res.n_impostor) == (3, 3, 4, 4)
    js = res.to_json()
    assert js["tpr_at_fpr"] == {"0.5": 0.75, "0.25": 0.5, "0.2": 0.25, "0.1": 0.25}
    with pytest.raises(ValueError, match="impostor"):
        identification_rates(gallery, [0, 1, 2], probes[:4], labels[:4])
    with pytest.raises(ValueError, match="genuine"):
        identification_rates(gallery, [0, 1, 2], probes[4:], labels[4:])
    with pytest.raises(ValueError, match="zero"):
        identification_rates(np.zeros((3, 4)), [0, 1, 2], probes, labels)
    with pytest.raises(ValueError, match="disagree"):
        identification_rates(gallery, [0, 1], probes, labels)


def test_split_gallery_probe():
    labels = np.array([2, 0, 1, 0, 2, 3, 0])   # id0: 1,3,6  id1: 2  id2: 0,4  id3: 5
    g, p, i = split_gallery_probe(labels)
    assert (g.tolist(), p.tolist(), i.tolist()) == ([0, 1], [3, 4, 6], [2, 5])
    g, p, i = split_gallery_probe(labels, gallery_per_identity=2)
    assert (g.tolist(), p.tolist(), i.tolist()) == ([1, 3], [6], [0, 2, 4, 5])
    g, p, i = split_gallery_probe(labels, max_identities=1, max_impostors=1)
    assert (g.tolist(), p.tolist(), i.tolist()) == ([1], [3, 6], [2])
    g, p, i = split_gallery_probe(labels, seed=5)
    assert sorted(np.r_[g, p, i].tolist()) == list(range(7))
    assert sorted(labels[g].tolist()) == [0, 2] and i.tolist() == [2, 5]
    assert all(np.array_equal(a, b) for a, b in zip((g, p, i), split_gallery_probe(labels, seed=5), strict=True))
    big = np.repeat(np.arange(50), 5)
    seeded = {tuple(split_gallery_probe(big, seed=s)[0]) for s in range(5)}
    assert len(seeded) > 1                       # the seed really randomises the gallery image
    with pytest.raises(ValueError):
        split_gallery_probe(labels, gallery_per_identity=0)
    with pytest.raises(ValueError):
        split_gallery_probe(labels.astype(float))


# ---------------------------------------------------------------- LFW files
def _write_pairs(path, text):
    path.write_text(text)
    return path


def test_read_pairs_small(tmp_path):
    pairs_txt = _write_pairs(tmp_path / "pairs.txt", "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n"
                             "Bob 2 3\nCy 1 Ann 12\n\n")
    pairs = read_pairs(pairs_txt, tmp_path / "img")
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1].path1 == tmp_path / "img" / "Ann" / "Ann_0001.jpg"
    assert pairs[3].path2 == tmp_path / "img" / "Ann" / "Ann_0012.jpg"
    loose = read_pairs(_write_pairs(tmp_path / "p2.txt", "Cy 1 Ann 2\nBob 2 3\n"), tmp_path)
    assert [(p.same, p.fold) for p in loose] == [(False, 0), (True, 0)]
    with pytest.raises(FileNotFoundError, match="Ann_0001"):
        read_pairs(pairs_txt, tmp_path / "img", check_exists=True)


@pytest.mark.parametrize("text, where", [
    ("2 1\nAnn 1 2\nAnn 1 Bob 3\nBob 1 Cy 2\nCy 1 Ann 2\n", ":4:"),   # diff line in same block
    ("1 1\nAnn 1 x\nAnn 1 Bob 3\n", ":2:"),                          # non-integer number
    ("1 1\nAnn 1 2\nAnn 1 Bob\n", ":3:"),                            # wrong field count
    ("Ann 1 2\nAnn 0 Bob 1\n", ":2:"),                               # numbers are 1-based
    ("2 1\nAnn 1 2\nAnn 1 Bob 3\n", "promises 4"),                   # too few lines
])
def test_read_pairs_malformed(tmp_path, text, where):
    with pytest.raises(ValueError, match=where):
        read_pairs(_write_pairs(tmp_path / "pairs.txt", text), tmp_path)


def test_find_lfw_root_and_identity_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.txt"):
        find_lfw_root(tmp_path)
    (tmp_path / "pairs.txt").write_text("10 300\n")
    with pytest.raises(FileNotFoundError, match="lfw-deepfunneled"):
        find_lfw_root(tmp_path)
    (tmp_path / "Ann").mkdir()
    (tmp_path / "Ann" / "Ann_0001.jpg").write_bytes(b"x")
    assert find_lfw_root(tmp_path) == (tmp_path / "pairs.txt", tmp_path)
    (tmp_path / "lfw" / "Bob").mkdir(parents=True)
    (tmp_path / "lfw" / "Bob" / "Bob_0001.JPG").write_bytes(b"x")
    assert find_lfw_root(tmp_path / "pairs.txt") == (tmp_path / "pairs.txt", tmp_path / "lfw")

    root = tmp_path / "ids"
    for rel in ["B/b2.png", "B/b1.JPG", "B/notes.txt", "A/a.jpeg", "C/readme.md", "top.jpg"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    paths, labels, names = list_identity_folder(root)
    assert [p.relative_to(root).as_posix() for p in paths] == ["A/a.jpeg", "B/b1.JPG", "B/b2.png"]
    assert labels.tolist() == [0, 1, 1] and labels.dtype == np.int64 and names == ["A", "B"]
    with pytest.raises(FileNotFoundError):
        list_identity_folder(root / "C")


def test_real_lfw_pairs():
    lfw = shared_path("data", "lfw")
    pairs_txt, images = find_lfw_root(lfw)
    pairs = read_pairs(pairs_txt, images, check_exists=True)     # every path exists
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    assert np.bincount([p.fold for p in pairs]).tolist() == [600] * 10
    assert len({q for p in pairs for q in (p.path1, p.path2)}) == 7701


# ---------------------------------------------------------------- plots
def test_plot_roc_and_table(tmp_path):
    import matplotlib
    backend = matplotlib.get_backend()
    fpr, tpr, _ = roc([0.9, 0.8, 0.7, 0.2, 0.1], [True, True, False, True, False])
    out = plot_roc({"model A": (fpr, tpr), "chance": ([0, 1], [0, 1])},
                   tmp_path / "sub" / "roc.png", title="test")
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert struct.unpack(">II", png[16:24]) == (600, 500)   # IHDR width, height: 6 x 5 in at 100 dpi
    assert matplotlib.get_backend() == backend
    with pytest.raises(ValueError):
        plot_roc({"bad": ([0, 1], [0])}, tmp_path / "x.png")
    table = format_table([{"model": "sface", "acc": 0.991, "n": 6000},
                          {"model": "mobilefacenet", "acc": 0.98933, "n": None}],
                         ["model", "acc", "n"])
    assert table.splitlines() == ["model             acc     n",
                                  "-------------  ------  ----",
                                  "sface          0.9910  6000",
                                  "mobilefacenet  0.9893     -"]

"""Face-recognition training losses: every formula checked against a hand computation."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="loss tests need the train extra (torch)")

from engine.train.losses import LOSSES, create_loss
from engine.train.losses.criteria import FocalLoss, OHEMLoss
from engine.train.losses.heads import (
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    NormFaceHead,
    SoftmaxHead,
    SphereFaceHead,
)
from engine.train.losses.metric import ContrastiveLoss, TripletLoss, pairwise_distances

F = torch.nn.functional
RAD = math.pi / 180
HEAD_LOSSES = ["softmax", "normface", "sphereface", "cosface", "arcface", "combined", "focal", "ohem"]
METRIC_LOSSES = ["contrastive", "triplet", "triplet-semihard", "triplet-batchhard"]


def unit(deg: float, r: float = 1.0) -> list[float]:
    return [r * math.cos(deg * RAD), r * math.sin(deg * RAD)]


def chord(deg: float) -> float:
    """Euclidean distance between two unit vectors deg degrees apart."""
    return 2 * math.sin(deg * RAD / 2)


def two_class_head(cls, **kw):
    """2-D head with class 0 along +x and class 1 along +y (|W| = 3: rows are normalised anyway)."""
    head = cls(2, 2, **kw)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 3.0]]))
    return head.train()


def at(deg: float, r: float = 1.0) -> torch.Tensor:
    return torch.tensor([unit(deg, r)])


Y0 = torch.tensor([0])


# ---- margin heads ----------------------------------------------------------------------------

def test_arcface_adds_the_angle_to_the_target_only():
    s, m = 64.0, 0.5
    logits = two_class_head(ArcFaceHead, s=s, m=m)(at(30, r=5.0), Y0)  # theta_0 = 30 deg, theta_1 = 60 deg
    assert logits[0, 0].item() == pytest.approx(s * math.cos(30 * RAD + m), abs=1e-4)
    assert logits[0, 1].item() == pytest.approx(s * math.cos(60 * RAD), abs=1e-4)


def test_arcface_fallback_past_pi_is_insightfaces_cos_minus_m_sin_pi_minus_m():
    s, m = 64.0, 0.5
    head = two_class_head(ArcFaceHead, s=s, m=m)
    # theta_0 = 170 deg: theta + m = 199.6 deg > 180, and cos(170) < cos(pi - m) = th
    c = math.cos(170 * RAD)
    assert c < math.cos(math.pi - m)
    assert head(at(170), Y0)[0, 0].item() == pytest.approx(s * (c - m * math.sin(math.pi - m)), abs=1e-4)
    # theta_0 = 150 deg: theta + m = 178.6 deg < 180, the plain formula still applies
    assert head(at(150), Y0)[0, 0].item() == pytest.approx(s * math.cos(150 * RAD + m), abs=1e-4)


def test_arcface_easy_margin_only_where_cos_is_positive():
    s, m = 10.0, 0.5
    head = two_class_head(ArcFaceHead, s=s, m=m, easy_margin=True)
    assert head(at(60), Y0)[0, 0].item() == pytest.approx(s * math.cos(60 * RAD + m), abs=1e-4)
    assert head(at(120), Y0)[0, 0].item() == pytest.approx(s * math.cos(120 * RAD), abs=1e-4)


def test_cosface_subtracts_m_from_the_target_cosine():
    s, m = 30.0, 0.35
    logits = two_class_head(CosFaceHead, s=s, m=m)(at(30, r=2.0), Y0)
    assert logits[0].tolist() == pytest.approx([s * (math.cos(30 * RAD) - m), s * math.cos(60 * RAD)], abs=1e-4)


def test_normface_is_the_scaled_cosine_of_normalised_x_and_w():
    x, w = torch.randn(5, 8), torch.randn(3, 8)
    head = NormFaceHead(8, 3, s=16).train()
    with torch.no_grad():
        head.weight.copy_(w)
    expected = 16 * (x / x.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).t()
    assert torch.allclose(head(x, torch.tensor([0, 1, 2, 0, 1])), expected, atol=1e-5)


def test_combined_margin_reduces_to_normface_and_to_arcface():
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(0)
    plain = CombinedMarginHead(8, 3, s=16, m1=1.0, m2=0.0, m3=0.0).train()
    torch.manual_seed(0)
    norm = NormFaceHead(8, 3, s=16).train()
    assert torch.allclose(plain(x, y), norm(x, y), atol=1e-4)
    s, m = 64.0, 0.5
    arc_like = two_class_head(CombinedMarginHead, s=s, m1=1.0, m2=m, m3=0.0)
    arc = two_class_head(ArcFaceHead, s=s, m=m)
    for deg in (10, 30, 90):  # theta + m < pi: ArcFace's fallback is not in play
        expected = s * math.cos(deg * RAD + m)
        assert arc_like(at(deg), Y0)[0, 0].item() == pytest.approx(expected, abs=1e-3)
        assert arc(at(deg), Y0)[0, 0].item() == pytest.approx(expected, abs=1e-3)
    # m1 and m3 together: s * (cos(2 * 20 deg + 0.1) - 0.2)
    general = two_class_head(CombinedMarginHead, s=s, m1=2.0, m2=0.1, m3=0.2)
    assert general(at(20), Y0)[0, 0].item() == pytest.approx(s * (math.cos(40 * RAD + 0.1) - 0.2), abs=1e-3)


def test_sphereface_psi_for_m4_including_k_above_zero():
    head = SphereFaceHead(2, 2, m=4)
    # psi(theta) = (-1)^k cos(4 theta) - 2k, k = floor(4 theta / pi), written out per angle
    cases = {0: 1.0, 20: math.cos(80 * RAD), 60: -math.cos(240 * RAD) - 2, 100: math.cos(400 * RAD) - 4,
             150: -math.cos(600 * RAD) - 6, 180: -7.0}
    got = head.psi(torch.tensor([math.cos(d * RAD) for d in cases]))
    assert got.tolist() == pytest.approx(list(cases.values()), abs=1e-4)
    # continuous and decreasing over [0, pi], unlike cos(4 theta)
    psi = head.psi(torch.cos(torch.linspace(0, math.pi, 721, dtype=torch.float64)))
    assert (psi.diff() <= 1e-9).all() and psi.diff().abs().max() < 0.05


def test_sphereface_lambda_anneals_per_training_call_and_is_checkpointed():
    head = two_class_head(SphereFaceHead, m=4, base=1000, gamma=0.12, power=1, lambda_min=5)
    assert [head.lambda_at(i) for i in (0, 1, 10, 1000, 2000)] == pytest.approx(
        [1000, 1000 / 1.12, 1000 / 2.2, 1000 / 121, 5.0])
    x = at(60, r=2.0)  # |x| = 2, theta_0 = 60 deg (psi = -1.5), theta_1 = 30 deg
    for call in (1, 2, 3):
        lamb = 1000 / (1 + 0.12 * call)
        logits = head(x, Y0)
        assert int(head.it) == call and head.lamb == pytest.approx(lamb)
        assert logits[0, 0].item() == pytest.approx(2 * (lamb * 0.5 - 1.5) / (1 + lamb), abs=1e-4)
        assert logits[0, 1].item() == pytest.approx(2 * math.cos(30 * RAD), abs=1e-5)  # |x| cos, no margin
    head(x)  # no labels: prediction, no step
    head.eval()(x, Y0)
    assert int(head.it) == 3 and int(head.state_dict()["it"]) == 3
    # eval logits are |x| cos(theta_j): scale with |x|
    assert head(at(60, r=7.0))[0].tolist() == pytest.approx([3.5, 7 * math.cos(30 * RAD)], abs=1e-4)


# ---- criteria -----------------------------------------------------------------------------------

def test_softmax_loss_is_cross_entropy_of_a_linear_layer():
    torch.manual_seed(0)
    x, y = torch.randn(8, 16), torch.randint(0, 4, (8,))
    loss = create_loss("softmax", 16, 4)
    with torch.no_grad():
        loss.head.bias.copy_(torch.randn(4))
    expected = F.cross_entropy(x @ loss.head.weight.t() + loss.head.bias, y)
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert isinstance(loss.head, SoftmaxHead)


def test_focal_loss_gamma0_is_ce_and_gamma2_matches_hand_value():
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    assert FocalLoss(0.0)(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    p1, p2 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))  # p_t = sigmoid(logit gap)
    expected = (-(1 - p1) ** 2 * math.log(p1) - (1 - p2) ** 2 * math.log(p2)) / 2
    assert FocalLoss(2.0)(logits, y).item() == pytest.approx(expected, rel=1e-5)


def test_ohem_keeps_exactly_the_hardest_samples():
    # label 0 everywhere; per-sample CE = log(1 + e^-gap), hardest = smallest gap
    gaps = torch.tensor([3.0, -1.0, 0.5, 2.0, -2.0])
    logits, y = torch.stack([gaps, torch.zeros(5)], 1).requires_grad_(), torch.zeros(5, dtype=torch.long)
    ce = [math.log1p(math.exp(-g)) for g in gaps.tolist()]
    loss = OHEMLoss(keep_ratio=0.5)(logits, y)  # ceil(2.5) = 3 kept: samples 4, 1, 2
    assert loss.item() == pytest.approx((ce[4] + ce[1] + ce[2]) / 3, rel=1e-6)
    loss.backward()
    assert (logits.grad[[0, 3]] == 0).all() and (logits.grad[[1, 2, 4]] != 0).all()
    assert OHEMLoss(keep_ratio=0.1, min_kept=2)(logits, y).item() == pytest.approx((ce[4] + ce[1]) / 2, rel=1e-6)
    assert OHEMLoss(keep_ratio=1.0)(logits, y).item() == pytest.approx(sum(ce) / 5, rel=1e-6)
    assert OHEMLoss(keep_ratio=0.35).num_kept(20) == 7


# ---- metric losses ------------------------------------------------------------------------------

def test_contrastive_on_hand_placed_points():
    # angles 0, 60 (label 0), 90, 180 (label 1); scaled by 3 to check the normalisation
    x = torch.tensor([unit(a, 3.0) for a in (0, 60, 90, 180)])
    y = torch.tensor([0, 0, 1, 1])
    mg = 1.5
    terms = [chord(60) ** 2, max(0, mg - chord(90)) ** 2, max(0, mg - chord(180)) ** 2,  # 0-1, 0-2, 0-3
             max(0, mg - chord(30)) ** 2, max(0, mg - chord(120)) ** 2,  # 1-2, 1-3
             chord(90) ** 2]  # 2-3
    assert ContrastiveLoss(mg)(x, y).item() == pytest.approx(sum(terms) / 6, rel=1e-5)


# angles (deg) and labels of a hand-placed batch: three of class 0, two of class 1
TRIPLET_ANGLES, TRIPLET_LABELS = (0, 40, 100, 60, 180), torch.tensor([0, 0, 0, 1, 1])


def triplet_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([unit(a) for a in TRIPLET_ANGLES], requires_grad=True), TRIPLET_LABELS


def hand_loss(triplets, margin=0.2) -> float:
    ang = TRIPLET_ANGLES
    return sum(max(0.0, chord(abs(ang[a] - ang[p])) - chord(abs(ang[a] - ang[n])) + margin)
               for a, p, n in triplets) / len(triplets)


def mined(loss: TripletLoss, x, y) -> list[tuple[int, int, int]]:
    return sorted(zip(*(t.tolist() for t in loss.select(pairwise_distances(x), y)), strict=True))


def test_triplet_batch_hard_picks_farthest_positive_and_nearest_negative():
    x, y = triplet_batch()
    # by hand from the angle table: anchor 0 -> farthest positive 2 (100 deg), nearest negative 3 (60 deg), ...
    expected = [(0, 2, 3), (1, 2, 3), (2, 0, 3), (3, 4, 1), (4, 3, 2)]
    loss = TripletLoss(0.2, "batch_hard")
    assert mined(loss, x, y) == expected
    assert loss(x, y).item() == pytest.approx(hand_loss(expected), rel=1e-5)


def test_triplet_semi_hard_picks_the_nearest_farther_negative_else_the_hardest():
    x, y = triplet_batch()
    # per anchor-positive pair, the nearest negative farther than the positive; (2, 0) and (3, 4) have
    # none (d_ap = 100 / 120 deg beyond every negative) and fall back to the nearest negative
    expected = [(0, 1, 3), (0, 2, 4), (1, 0, 4), (1, 2, 4), (2, 0, 3), (2, 1, 4), (3, 4, 1), (4, 3, 1)]
    loss = TripletLoss(0.2, "semi_hard")
    assert mined(loss, x, y) == expected
    assert loss(x, y).item() == pytest.approx(hand_loss(expected), rel=1e-5)
    assert hand_loss(expected) == pytest.approx((1.048 + 1.585 + 0.053) / 8, abs=1e-3)


def test_triplet_random_mining_is_seeded_and_only_picks_valid_pairs():
    torch.manual_seed(0)
    x, y = torch.randn(12, 8), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4])  # label 4: no positive
    d = pairwise_distances(x)
    picks = [mined(TripletLoss(mining="random", seed=7), x, y) for _ in range(2)]
    assert picks[0] == picks[1]
    assert TripletLoss(mining="random", seed=7)(x, y).item() == TripletLoss(mining="random", seed=7)(x, y).item()
    seen = set()
    gen = TripletLoss(mining="random", seed=7)
    for _ in range(30):
        a, p, n = gen.select(d, y)
        assert a.tolist() == list(range(11))  # the lone label-4 sample is skipped as an anchor
        assert (y[a] == y[p]).all() and (a != p).all() and (y[a] != y[n]).all()
        seen.update(zip(a.tolist(), p.tolist(), n.tolist(), strict=True))
    assert len(seen) > 11  # it does vary from call to call


def test_metric_losses_without_valid_pairs_return_a_differentiable_zero():
    x = torch.randn(4, 8, requires_grad=True)
    for loss in (TripletLoss(mining="batch_hard"), TripletLoss(mining="semi_hard"), TripletLoss(mining="random")):
        value = loss(x, torch.zeros(4, dtype=torch.long))
        assert value.item() == 0.0
        value.backward()
    assert ContrastiveLoss()(x[:1], torch.zeros(1, dtype=torch.long)).item() == 0.0


# ---- registry and factory -----------------------------------------------------------------------

def test_registry_names():
    assert set(LOSSES.names()) == set(HEAD_LOSSES + METRIC_LOSSES)


@pytest.mark.parametrize("name", HEAD_LOSSES + METRIC_LOSSES)
def test_every_loss_is_finite_with_gradients_to_embeddings_and_head(name):
    torch.manual_seed(0)
    x, y = torch.randn(8, 16, requires_grad=True), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = create_loss(name, 16, 4)
    assert loss.metric == (name in METRIC_LOSSES)
    value = loss(x, y)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    if loss.metric:
        assert loss.head is None and not list(loss.parameters())
    else:
        w = loss.head.weight.grad
        assert w is not None and torch.isfinite(w).all() and w.abs().sum() > 0


@pytest.mark.parametrize("name", ["normface", "sphereface", "cosface", "arcface", "combined"])
def test_head_logits_have_no_margin_in_eval_mode_or_without_labels(name):
    torch.manual_seed(0)
    x, y = torch.randn(8, 16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = create_loss(name, 16, 4)
    plain = loss.logits(x)
    if name != "normface":  # the one cosine head without a margin
        assert not torch.allclose(loss.head(x, y), plain)  # training with labels: margin on
    loss.eval()
    assert torch.allclose(loss.head(x, y), plain) and torch.allclose(loss.logits(x), plain)
    if name != "sphereface":
        cos = F.normalize(x) @ F.normalize(loss.head.weight).t()
        assert torch.allclose(plain, loss.head.s * cos, atol=1e-5)


def test_create_loss_passes_kwargs_and_picks_heads():
    arc = create_loss("arcface", 128, 10, s=30, m=0.4)
    assert isinstance(arc.head, ArcFaceHead) and (arc.head.s, arc.head.m) == (30.0, 0.4)
    assert arc.head.weight.shape == (10, 128)
    focal = create_loss("focal", 16, 4, head="cosface", gamma=1.0, m=0.2)
    assert isinstance(focal.head, CosFaceHead) and focal.head.m == 0.2 and focal.criterion.gamma == 1.0
    assert isinstance(create_loss("ohem", 16, 4).head, ArcFaceHead)
    assert create_loss("triplet-semihard", 16).criterion.mining == "semi_hard"
    assert create_loss("triplet", 16).criterion.mining == "random"


@pytest.mark.parametrize("name, num_classes, kwargs, match", [
    ("nope", 4, {}, "unknown loss"),
    ("arcface", None, {}, "needs num_classes"),
    ("focal", None, {}, "needs num_classes"),
    ("arcface", 4, {"s": 0}, "scale s"),
    ("normface", 4, {"s": -1}, "scale s"),
    ("arcface", 4, {"m": -0.1}, "margin m"),
    ("cosface", 4, {"m": -0.1}, "margin m"),
    ("combined", 4, {"m1": 0}, "m1"),
    ("sphereface", 4, {"m": 1.5}, "margin m"),
    ("sphereface", 4, {"lambda_min": -1}, "lambda_min"),
    ("arcface", 0, {}, "num_classes"),
    ("ohem", 4, {"keep_ratio": 0}, "keep_ratio"),
    ("ohem", 4, {"keep_ratio": 1.5}, "keep_ratio"),
    ("ohem", 4, {"min_kept": 0}, "min_kept"),
    ("focal", 4, {"gamma": -1}, "gamma"),
    ("focal", 4, {"head": "nope"}, "unknown loss head"),
    ("contrastive", None, {"margin": 0}, "margin"),
    ("triplet", None, {"margin": -0.1}, "margin"),
    ("triplet", None, {"mining": "hardest"}, "mining"),
])
def test_create_loss_rejects_invalid_configs(name, num_classes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_loss(name, 16, num_classes, **kwargs)

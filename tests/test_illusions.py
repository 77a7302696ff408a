"""dgm.views and dgm.illusions: views and their orthogonality, multi-view and factorized noise estimates, SDEdit, RePaint."""

from __future__ import annotations

import math

import pytest
import torch

from dgm import views
from dgm.diffusion import ddim_sample, ddpm_sample, guided, linear_schedule, on_steps, q_sample, respace
from dgm.illusions import (
    GaussianBands,
    MotionBlurBands,
    composed_eps,
    factorized_eps,
    inpaint,
    judge,
    multiview_eps,
    repaint_schedule,
    sdedit,
    view_baseline,
)
from dgm.views import VIEWS, is_orthogonal, is_permutation, make_view, noise_statistics, view_matrix

ORTHOGONAL = [name for name in VIEWS if make_view(name).orthogonal]
FAILURES = [name for name in VIEWS if not make_view(name).orthogonal]
PERMUTATIONS = [name for name in ORTHOGONAL if name != "negate"]


def images(n=3, seed=0, size=28):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class LabelModel(torch.nn.Module):
    """A noise 'model' that depends on the image, the step and the label in a known, non-symmetric way."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, 28 * 28).view(1, 1, 28, 28))
        self.calls = 0

    def forward(self, x, t, labels):
        self.calls += 1
        return 0.3 * x + self.weight * (labels.view(-1, 1, 1, 1).float() + 1) + 1e-3 * t.view(-1, 1, 1, 1).float()


def test_the_registry_has_the_views_the_course_uses():
    assert set(ORTHOGONAL) == {
        "identity", "flip", "mirror", "rot90", "rot180", "rot270", "negate", "skew",
        "patch_permutation", "jigsaw", "inner_circle", "square_hinge",
    }
    assert set(FAILURES) == {"blur", "rescale", "rotate_bilinear"}


@pytest.mark.parametrize("name", ORTHOGONAL)
def test_orthogonal_views_invert_exactly_and_keep_the_norm(name):
    view = make_view(name)
    x = images(4)
    seen = view.view(x)
    assert seen.shape == x.shape
    assert torch.equal(view.inverse(seen), x)
    assert torch.allclose(seen.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    assert is_orthogonal(view)


@pytest.mark.parametrize("name", PERMUTATIONS)
def test_permutation_views_have_permutation_index_maps(name):
    view = make_view(name)
    perm = view.permutation(28, 28)
    assert torch.equal(perm.sort().values, torch.arange(28 * 28))
    assert is_permutation(view)
    matrix = view_matrix(view)
    x = images(1)
    assert torch.allclose((matrix @ x.double().flatten()).view_as(x).float(), view.view(x))


def test_negate_is_orthogonal_but_not_a_permutation_and_views_do_what_they_say():
    x = images(2)
    assert not is_permutation(make_view("negate"))
    assert torch.equal(make_view("flip").view(x), x.flip(2))
    assert torch.equal(make_view("mirror").view(x), x.flip(3))
    for quarter_turns in (1, 2, 3):
        assert torch.equal(make_view(f"rot{90 * quarter_turns}").view(x), torch.rot90(x, quarter_turns, dims=(2, 3)))
    assert not torch.equal(make_view("rot90").view(x), make_view("rot270").view(x))


def test_inner_circle_is_an_involution_that_keeps_the_ring():
    view = make_view("inner_circle")
    x = images(2)
    assert torch.equal(view.view(view.view(x)), x)
    assert torch.equal(view.view(x)[..., 0, :], x[..., 0, :])  # the border is outside the disc
    assert not torch.equal(view.view(x), x)


def test_seeded_permutations_depend_on_the_seed_and_jigsaw_turns_pieces():
    x = images(1)
    a, b = make_view("patch_permutation", seed=0), make_view("patch_permutation", seed=1)
    assert torch.equal(a.view(x), make_view("patch_permutation", seed=0).view(x))
    assert not torch.equal(a.view(x), b.view(x))
    jigsaw = make_view("jigsaw", seed=0)
    assert not torch.equal(jigsaw.view(x), a.view(x))  # same tiles in the same order, but turned
    assert (make_view("rot90").view(x) != x).any()


@pytest.mark.parametrize("name", ORTHOGONAL)
def test_orthogonal_views_keep_standard_normal_noise_standard_normal(name):
    stats = noise_statistics(make_view(name), n=400)
    # 400 * 784 draws: sampling error about 0.002 on each statistic
    assert abs(stats["mean"]) < 0.01
    assert abs(stats["variance"] - 1) < 0.01
    assert abs(stats["neighbour_correlation"]) < 0.01


@pytest.mark.parametrize("name", FAILURES)
def test_failure_views_are_not_orthogonal_and_spoil_the_noise(name):
    view = make_view(name)
    assert not is_orthogonal(view)
    stats = noise_statistics(view, n=400)
    assert abs(stats["variance"] - 1) > 0.1 or abs(stats["neighbour_correlation"]) > 0.1


def test_blur_is_invertible_but_not_orthogonal():
    view = make_view("blur")
    x = images(2).double()
    assert torch.allclose(view.inverse(view.view(x)), x, atol=1e-8)
    assert view.view(x).norm() < x.norm()


def test_views_refuse_what_they_cannot_handle():
    with pytest.raises(ValueError, match="view: expected one of"):
        make_view("spin")
    with pytest.raises(ValueError, match="square"):
        make_view("rot90").view(torch.zeros(1, 1, 28, 14))
    with pytest.raises(ValueError, match="tiles"):
        make_view("jigsaw", patch=5).view(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="quarter_turns"):
        views.Rotate(4)
    with pytest.raises(ValueError, match="x: expected float images"):
        make_view("flip").view(torch.zeros(28, 28))


# --- noise estimates -----------------------------------------------------------------------------


def test_multiview_with_only_the_identity_is_the_plain_sampler_bit_for_bit():
    model = LabelModel()
    schedule = linear_schedule(50)
    labels = torch.tensor([3, 7])
    plain = ddim_sample(guided(model, labels, 2.0, 10), schedule, (2, 1, 28, 28), steps=10, generator=5)
    one_view = multiview_eps(model, [make_view("identity")], labels[:, None], 2.0, 10)
    assert torch.equal(ddim_sample(one_view, schedule, (2, 1, 28, 28), steps=10, generator=5), plain)
    plain_ddpm = ddpm_sample(guided(model, labels, 2.0, 10), schedule, (2, 1, 28, 28), generator=5)
    assert torch.equal(ddpm_sample(one_view, schedule, (2, 1, 28, 28), generator=5), plain_ddpm)


def test_multiview_averages_the_unviewed_estimates_of_each_view_in_one_call():
    model = LabelModel()
    views = [make_view("identity"), make_view("flip")]
    labels = torch.tensor([[1, 4], [2, 8]])
    x, t = images(2), torch.tensor([5, 5])
    eps = multiview_eps(model, views, labels, 3.0, 10)(x, t)
    assert model.calls == 1
    by_hand = 0.5 * (
        guided(model, labels[:, 0], 3.0, 10)(x, t) + guided(model, labels[:, 1], 3.0, 10)(x.flip(2), t).flip(2)
    )
    assert torch.allclose(eps, by_hand, atol=1e-6)


def test_multiview_refuses_mismatched_views_and_classes():
    model = LabelModel()
    with pytest.raises(ValueError, match=r"labels: expected an integer tensor \(B, 2\)"):
        multiview_eps(model, [make_view("identity"), make_view("flip")], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        multiview_eps(model, [make_view("identity"), make_view("flip")], torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="views"):
        multiview_eps(model, [], torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        multiview_eps(model, [make_view("identity")], torch.tensor([[1.0]]))


@pytest.mark.parametrize("decomposition", [GaussianBands((2.0,)), GaussianBands((1.0, 3.0)), MotionBlurBands(9)])
def test_decompositions_sum_to_the_input_and_are_linear(decomposition):
    x, y = images(2, seed=1).double(), images(2, seed=2).double()
    parts = decomposition.components(x)
    assert len(parts) == len(decomposition)
    assert torch.allclose(sum(parts), x, atol=1e-12)
    for a, b, both in zip(parts, decomposition.components(y), decomposition.components(2 * x - 3 * y)):
        assert torch.allclose(both, 2 * a - 3 * b, atol=1e-12)


def test_gaussian_bands_split_low_from_high_frequencies():
    low, high = GaussianBands((2.0,)).components(torch.ones(1, 1, 28, 28, dtype=torch.float64))
    assert torch.allclose(low, torch.ones_like(low)) and torch.allclose(high, torch.zeros_like(high), atol=1e-12)
    checker = ((torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2 * 2 - 1).double().view(1, 1, 28, 28)
    low, high = GaussianBands((2.0,)).components(checker)
    assert low.abs().max() < 0.01 and torch.allclose(high, checker - low)


def test_factorized_estimate_takes_each_band_from_its_own_class():
    model = LabelModel()
    bands = GaussianBands((2.0,))
    labels = torch.tensor([[1, 6]])
    x, t = images(1), torch.tensor([3])
    eps = factorized_eps(model, bands, labels, 2.0, 10)(x, t)
    low = bands.components(guided(model, labels[:, 0], 2.0, 10)(x, t))[0]
    high = bands.components(guided(model, labels[:, 1], 2.0, 10)(x, t))[1]
    assert torch.allclose(eps, low + high, atol=1e-6)
    same = factorized_eps(model, bands, torch.tensor([[4, 4]]), 2.0, 10)(x, t)
    assert torch.allclose(same, guided(model, torch.tensor([4]), 2.0, 10)(x, t), atol=1e-5)
    per_band = factorized_eps(model, bands, labels, (5.0, 1.5), 10)(x, t)
    low = bands.components(guided(model, labels[:, 0], 5.0, 10)(x, t))[0]
    high = bands.components(guided(model, labels[:, 1], 1.5, 10)(x, t))[1]
    assert torch.allclose(per_band, low + high, atol=1e-6)
    assert torch.allclose(factorized_eps(model, bands, labels, (2.0, 2.0), 10)(x, t), eps, atol=1e-6)
    with pytest.raises(ValueError, match=r"scale: expected one guidance scale or 2 \(one per component\), got 3"):
        factorized_eps(model, bands, labels, (1.0, 2.0, 3.0), 10)


def test_composition_of_one_expert_is_guidance_and_of_two_adds_their_directions():
    model = LabelModel()
    x, t = images(2), torch.tensor([1, 2])
    one = composed_eps(model, torch.tensor([[3], [5]]), 2.5, 10)(x, t)
    assert torch.allclose(one, guided(model, torch.tensor([3, 5]), 2.5, 10)(x, t), atol=1e-6)
    two = composed_eps(model, torch.tensor([[3, 1], [5, 0]]), 1.5, 10)(x, t)
    null = model(x, t, torch.tensor([10, 10]))
    expected = null + 1.5 * (model(x, t, torch.tensor([3, 5])) - null + model(x, t, torch.tensor([1, 0])) - null)
    assert torch.allclose(two, expected, atol=1e-5)


# --- editing -------------------------------------------------------------------------------------


def test_respacing_keeps_the_marginals_and_maps_steps_back():
    schedule = linear_schedule(1000)
    short, original = respace(schedule, 50)
    assert short.T == 50 and original[0] == 0 and original[-1] == 999 and (original.diff() > 0).all()
    assert torch.allclose(short.alpha_bars, schedule.alpha_bars[original], rtol=1e-5)
    seen = []
    on_steps(lambda x, t: seen.append(t) or x, original)(torch.zeros(2, 1, 2, 2), torch.tensor([0, 49]))
    assert seen[0].tolist() == [0, 999]


def test_repaint_schedule_has_the_papers_length_and_moves_one_step_at_a_time():
    walk = repaint_schedule(250, 10, 10)
    assert len(walk) == 4571
    assert walk[0] == 249 and walk[-1] == -1
    assert all(abs(a - b) == 1 for a, b in zip(walk[:-1], walk[1:]))
    assert repaint_schedule(20, 5, 1) == list(range(19, -2, -1))
    with pytest.raises(ValueError, match="jump_length"):
        repaint_schedule(20, 0, 3)


def test_sdedit_keeps_the_input_at_zero_and_forgets_it_at_T():
    model = LabelModel()
    schedule = linear_schedule(100)
    eps_fn = guided(model, torch.tensor([2, 2]), 1.0)
    x0 = images(2)
    assert torch.equal(sdedit(eps_fn, schedule, x0, 0), x0)
    full = sdedit(eps_fn, schedule, x0, 100, steps=20, generator=3)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    x_T = q_sample(schedule, x0, torch.full((2,), 99), noise)
    assert torch.equal(full, ddim_sample(eps_fn, schedule, x0.shape, steps=20, x_T=x_T))
    other = sdedit(eps_fn, schedule, images(2, seed=9), 100, steps=20, generator=3)
    partial = sdedit(eps_fn, schedule, x0, 30, steps=20, generator=3)
    other_partial = sdedit(eps_fn, schedule, images(2, seed=9), 30, steps=20, generator=3)
    # the input's influence: tiny at t0 = T (sqrt(alpha_bar_T) ~ 0.005), large part-way
    assert (full - other).abs().mean() < 0.01 < 0.1 < (partial - other_partial).abs().mean()
    with pytest.raises(ValueError, match="t0"):
        sdedit(eps_fn, schedule, x0, 101)


def test_inpainting_keeps_the_known_pixels_and_an_oracle_fills_the_rest():
    schedule = linear_schedule(200)
    target = images(1, seed=4)

    def oracle(x_t, t):  # the exact noise for a data set of one image
        a = schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * target) / (1 - a).sqrt()

    known = torch.zeros(1, 1, 28, 28)
    known[..., :14, :] = 1
    masked = target * known  # the unknown half is zeroed: the oracle must bring it back
    result = inpaint(oracle, schedule, masked, known, steps=20, jump_length=5, resamplings=3, generator=0)
    assert torch.equal(result[..., :14, :], masked[..., :14, :])
    assert torch.allclose(result[..., 14:, :], target[..., 14:, :], atol=1e-3)


class TopRowsReader(torch.nn.Module):
    """A 'classifier' that reads class 1 when the top rows are bright, class 7 otherwise."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        top = x[:, 0, :4].mean((1, 2))
        logits = torch.full((len(x), 10), -10.0)
        logits[:, 1], logits[:, 7] = 10 * top, 10 * (1 - top)
        return logits


def test_judge_scores_success_alignment_and_concealment():
    image = -torch.ones(1, 1, 28, 28)
    image[..., :4, :] = 1  # bright top rows: class 1 upright, class 7 upside down
    verdict = judge(image, [make_view("identity"), make_view("flip")], torch.tensor([[1, 7]]), TopRowsReader())
    assert verdict["probabilities"].shape == (1, 2, 10)
    assert verdict["success"].tolist() == [True]
    assert verdict["alignment"].item() > 0.99 and verdict["concealment"].item() > 0.99
    wrong = judge(image, [make_view("identity"), make_view("flip")], torch.tensor([[7, 1]]), TopRowsReader())
    assert wrong["success"].tolist() == [False] and wrong["alignment"].item() < 0.01
    assert math.isclose(verdict["probabilities"][0, 0].sum().item(), 1.0, rel_tol=1e-6)
    assert verdict["strict_success"].tolist() == [True] and wrong["strict_success"].tolist() == [False]
    toss_up = image.clone()
    toss_up[..., :4, :] = 0.04  # 0.52 on the classifier's [0, 1] scale: p(1) = 1 / (1 + e^-0.4) = 0.60 upright
    close = judge(toss_up, [make_view("identity"), make_view("flip")], torch.tensor([[1, 7]]), TopRowsReader())
    assert close["success"].tolist() == [True] and close["strict_success"].tolist() == [False]
    assert close["alignment"].item() == pytest.approx(1 / (1 + math.exp(-0.4)), rel=1e-4)
    lenient = judge(toss_up, [make_view("identity"), make_view("flip")], torch.tensor([[1, 7]]), TopRowsReader(), confidence=0.5)
    assert lenient["strict_success"].tolist() == [True]
    with pytest.raises(ValueError, match=r"confidence: expected a probability in \(0, 1\), got 1.5"):
        judge(image, [make_view("identity")], torch.tensor([[1]]), TopRowsReader(), confidence=1.5)


def test_judge_with_a_realism_check_fails_views_it_rejects_and_keeps_the_class_verdict_apart():
    image = -torch.ones(2, 1, 28, 28)
    image[..., :4, :] = 1  # class 1 upright, 7 upside down
    image[1, ..., 14, 27] = 0.5  # a mark on the right edge: what our stand-in realism check rejects

    def no_mark_on_row_14(x01):  # looks only at the view it is given, in [0, 1]; the flip moves row 14 to 13
        return x01[:, 0, 14, 27] == 0

    views = [make_view("identity"), make_view("flip")]
    verdict = judge(image, views, torch.tensor([[1, 7], [1, 7]]), TopRowsReader(), realism=no_mark_on_row_14)
    assert verdict["classified"].tolist() == [True, True]
    assert verdict["realistic"].tolist() == [[True, True], [False, True]]  # the flip moves the mark away
    assert verdict["success"].tolist() == [True, False] and verdict["strict_success"].tolist() == [True, False]
    without = judge(image, views, torch.tensor([[1, 7], [1, 7]]), TopRowsReader())
    assert without["success"].tolist() == [True, True] and without["realistic"].all()


def test_view_baseline_counts_how_often_plain_samples_already_read_as_the_other_class():
    labels = torch.arange(10).repeat_interleave(2)
    images = -torch.ones(20, 1, 28, 28)  # dark: read as 7 both ways
    images[labels == 1, :, :4] = 1  # both 1s: bright top, read as 1 upright and 7 flipped
    images[12, :, -4:] = 1  # one of the two 6s: bright bottom, read as 1 once flipped
    flipped = view_baseline(images, labels, make_view("flip"), TopRowsReader())
    expected = torch.zeros(10, 10)
    expected[:, 7] = 1.0
    expected[6, 1] = expected[6, 7] = 0.5
    assert torch.equal(flipped, expected)
    upright = view_baseline(images, labels, make_view("identity"), TopRowsReader())
    assert upright[1, 1] == 1.0 and upright[6, 1] == 0.0 and torch.allclose(upright.sum(1), torch.ones(10))
    with pytest.raises(ValueError, match=r"labels: expected samples of every class 0..9, none of \[2, 3, 4, 5, 6, 7, 8, 9\]"):
        view_baseline(images[:4], labels[:4], make_view("flip"), TopRowsReader())


def test_rescale_keeps_block_averages_and_its_bilinear_form_is_smooth():
    x = images(2)
    half = make_view("rescale").view(x)
    assert torch.allclose(half[..., ::2, ::2], torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)
    assert torch.equal(half[..., ::2, ::2], half[..., 1::2, 1::2])  # each average repeated over its 2 x 2 block
    far = make_view("rescale", size=7, mode="bilinear")
    seen = far.view(x)
    assert seen.shape == x.shape and torch.allclose(seen.mean((2, 3)), x.mean((2, 3)), atol=0.05)
    assert seen.diff(dim=-1).abs().mean() < half.diff(dim=-1).abs().mean() / 2  # no block edges
    assert torch.allclose(far.view(seen), seen, atol=0.2) and torch.equal(far.inverse(x), seen)
    with pytest.raises(ValueError, match="mode: expected 'nearest' or 'bilinear', got 'cubic'"):
        make_view("rescale", mode="cubic")

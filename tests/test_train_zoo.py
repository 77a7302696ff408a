"""dgm.train (minibatches, the fit loop, checkpoints) and dgm.zoo (cards, sha256 checks)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from dgm import train, zoo


def regression_data(n: int = 256):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_batches_cover_every_example_once_per_epoch_and_repeat_with_a_seed():
    x = torch.arange(10)
    stream = train.batches(x, batch_size=5, seed=1)
    epoch = torch.cat([next(stream)[0], next(stream)[0]])
    assert sorted(epoch.tolist()) == list(range(10))
    again = train.batches(x, batch_size=5, seed=1)
    assert torch.equal(next(again)[0], epoch[:5])


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match="different lengths"):
        next(train.batches(torch.zeros(3), torch.zeros(4), batch_size=2))
    with pytest.raises(ValueError, match="batch_size"):
        next(train.batches(torch.zeros(3), batch_size=4))


def test_fit_learns_a_linear_map_and_repeats_exactly():
    x, y = regression_data()

    def run():
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        result = train.fit(model, mse, train.batches(x, y, batch_size=32, seed=0), steps=300, lr=0.05, progress=False)
        return model, result

    (model, result), (again, _) = run(), run()
    assert result.steps == 300 and len(result.losses) == 300
    assert result.losses[-1] < 1e-3 < result.losses[0]
    torch.testing.assert_close(model.weight.data, torch.tensor([[1.0, -2.0, 0.5]]), atol=0.02, rtol=0)
    assert torch.equal(model.weight, again.weight), "a seeded CPU run must repeat exactly"


def test_fit_needs_a_budget_and_stops_on_a_non_finite_loss():
    x, y = regression_data()
    data = train.batches(x, y, batch_size=32)
    with pytest.raises(ValueError, match="give a budget"):
        train.fit(nn.Linear(3, 1), mse, data)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        train.fit(nn.Linear(3, 1), lambda m, b: torch.tensor(float("nan"), requires_grad=True), data, steps=5, progress=False)


def test_budget_counts_steps_and_resumes_where_it_stopped():
    assert list(train.Budget(steps=4, progress=False)) == [0, 1, 2, 3]
    resumed = train.Budget(steps=5, progress=False, done_steps=3)
    assert list(resumed) == [3, 4] and resumed.fraction_done() == 1.0
    for bad, message in [({}, "give a budget"), ({"steps": 0}, "steps"), ({"steps": True}, "steps"), ({"seconds": -1}, "seconds")]:
        with pytest.raises(ValueError, match=message):
            train.Budget(**bad)


def test_budget_stops_on_time_and_leaves_paused_time_out():
    budget = train.Budget(seconds=0.2, progress=False)
    steps = 0
    for step in budget:
        if step == 0:
            with budget.paused():
                time.sleep(0.3)  # longer than the whole budget, yet not counted
        time.sleep(0.01)
        steps += 1
        budget.log(loss=1.0)
    assert 5 <= steps <= 25, f"about 0.2 s of 10 ms steps, got {steps}"
    assert 0.2 <= budget.elapsed < 0.3 and budget.fraction_done() >= 1.0


def test_fit_resumes_from_its_checkpoint(tmp_path):
    x, y = regression_data()
    path = tmp_path / "run.pt"
    model = nn.Linear(3, 1)
    train.fit(model, mse, train.batches(x, y, batch_size=32), steps=10, checkpoint=path, progress=False)
    state = train.load_checkpoint(path)
    assert state["step"] == 10 and len(state["losses"]) == 10
    resumed = nn.Linear(3, 1)
    result = train.fit(resumed, mse, train.batches(x, y, batch_size=32), steps=25, checkpoint=path, progress=False)
    assert result.steps == 25 and len(result.losses) == 25
    assert result.losses[:10] == state["losses"], "the history before the interruption is kept"


def test_ema_lags_behind_the_model():
    x, y = regression_data()
    model = nn.Linear(3, 1)
    start = model.weight.detach().clone()
    result = train.fit(model, mse, train.batches(x, y, batch_size=32), steps=20, lr=0.05, ema_decay=0.9, progress=False)
    moved = (model.weight - start).norm()
    lagged = (result.ema.weight - start).norm()
    assert 0 < lagged < moved


def test_ema_warms_up_instead_of_clinging_to_the_initial_weights():
    x, y = regression_data()
    model = nn.Linear(3, 1)
    start = model.weight.detach().clone()
    result = train.fit(model, mse, train.batches(x, y, batch_size=32), steps=1, lr=0.05, ema_decay=0.999, progress=False)
    # after one step the decay is min(0.999, 1 / 10): the average is 90% the new weights, not 0.1%
    assert torch.allclose(result.ema.weight, 0.1 * start + 0.9 * model.weight.detach(), atol=1e-6)


def test_binarized_batches_draw_fresh_seeded_bits():
    images = torch.full((64, 1, 4, 4), 0.3)
    first = next(train.binarized_batches(images, batch_size=64, seed=0))[0]
    again = train.binarized_batches(images, batch_size=64, seed=0)
    assert torch.equal(first, next(again)[0]), "the same seed repeats exactly"
    assert not torch.equal(first, next(again)[0]), "every batch is binarized afresh"
    assert set(first.unique().tolist()) == {0.0, 1.0} and abs(first.mean().item() - 0.3) < 0.05
    ones = next(train.binarized_batches(torch.ones(8, 1, 2, 2), batch_size=8))[0]
    assert torch.equal(ones, torch.ones(8, 1, 2, 2))


def test_learning_curve_records_the_metric_and_leaves_its_own_time_out_of_the_clock(capsys):
    x, y = regression_data()
    model = nn.Linear(3, 1)

    def slow_mse(current):
        time.sleep(0.3)  # an evaluation much slower than the 20 training steps between two calls
        return mse(current, (x, y)).item()

    curve = train.LearningCurve(slow_mse, "test MSE")
    train.fit(model, mse, train.batches(x, y, batch_size=32), steps=60, lr=0.05, callback=curve, callback_every=20, progress=False)
    assert [step for _, step, _ in curve.points] == [20, 40, 60]
    seconds = [t for t, _, _ in curve.points]
    values = [value for _, _, value in curve.points]
    # Between two points: 20 tiny training steps (milliseconds) and one 0.3 s evaluation, which must not count.
    assert seconds == sorted(seconds) and seconds[-1] - seconds[0] < 0.25, "evaluation time must not count as training time"
    assert values[-1] < values[0] and values[-1] == round(mse(model, (x, y)).item(), 2)
    assert curve.first_time_below(values[1]) == seconds[1] and curve.first_time_below(-1.0) is None
    assert "step 60:" in capsys.readouterr().out


# --- zoo --------------------------------------------------------------------------------


def tiny_build() -> nn.Module:
    return nn.Linear(2, 1)


def tiny_train(seconds):
    torch.manual_seed(0)
    return tiny_build(), {"data": "none", "steps": 0, "metrics": {"answer": 42}}


@pytest.fixture
def tiny_zoo(monkeypatch, tmp_path):
    entry = zoo.ZooModel("tiny", "test_train_zoo:tiny_build", "test_train_zoo:tiny_train", "a test model")
    monkeypatch.setitem(zoo.MODELS, "tiny", entry)
    return tmp_path


def test_zoo_train_writes_a_card_and_load_verifies_it(tiny_zoo):
    card = zoo.train("tiny", folder=tiny_zoo)
    assert card["metrics"] == {"answer": 42} and card["command"] == "python -m dgm.zoo train tiny"
    assert json.loads((tiny_zoo / "tiny.json").read_text())["sha256"] == card["sha256"]
    model = zoo.load("tiny", folder=tiny_zoo)
    torch.manual_seed(0)
    assert torch.equal(model.weight, nn.Linear(2, 1).weight)
    assert not model.training


def test_zoo_refuses_a_checkpoint_whose_sha256_does_not_match(tiny_zoo):
    zoo.train("tiny", folder=tiny_zoo)
    raw = bytearray((tiny_zoo / "tiny.pt").read_bytes())
    raw[-10] ^= 0xFF
    (tiny_zoo / "tiny.pt").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="refusing to load"):
        zoo.load("tiny", folder=tiny_zoo)


def test_zoo_errors_name_the_fix(tiny_zoo):
    with pytest.raises(FileNotFoundError, match="python -m dgm.zoo train tiny"):
        zoo.load("tiny", folder=tiny_zoo)
    with pytest.raises(ValueError, match="no zoo model 'nope'"):
        zoo.load("nope")


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_every_registered_model_is_shipped_small_and_verified(name):
    card = zoo.card(name)
    assert card["bytes"] < 10 * 2**20, "zoo checkpoints stay small"
    assert {"data", "command", "steps", "metrics", "sha256"} <= set(card)
    zoo.load(name)  # verifies the sha256


def test_train_steps_runs_every_step_in_train_mode_and_watches_in_eval_mode():
    from dgm.train import Budget, train_steps

    first, second = nn.Linear(2, 1), nn.Dropout(0.5)
    seen_modes, watched = [], []

    def step(batch):
        (x,), (y,) = batch  # nested batches arrive as they were made
        seen_modes.append((first.training, second.training))
        return {"sum": float(x.sum() + y.sum())}

    def watch(done):
        watched.append((done, first.training, second.training))

    data = zip(iter([(torch.ones(3),)] * 5), iter([(torch.zeros(3),)] * 5))
    history = train_steps(step, [first, second], data, Budget(steps=4, progress=False), device="cpu",
                          callback=watch, callback_at={0, 2, 4})
    assert history == [{"sum": 3.0}] * 4
    assert seen_modes == [(True, True)] * 4
    assert watched == [(0, False, False), (2, False, False), (4, False, False)]
    assert not first.training and not second.training, "the models are left in eval mode"


def test_train_steps_stops_at_a_non_finite_number_and_names_the_step():
    from dgm.train import Budget, train_steps

    values = iter([1.0, 2.0, float("nan"), 4.0])
    with pytest.raises(FloatingPointError, match="non-finite at step 2"):
        train_steps(lambda batch: {"loss": next(values)}, [], iter([(torch.zeros(1),)] * 4), Budget(steps=4, progress=False))


def quoted_forms(metrics: dict) -> set[str]:
    """Every way the README may print a card's metrics: each value to 1-4 decimals or as a percentage
    (0-2 decimals), and the numbers in the metrics' names (the guidance scales of ``fid_scale_1.5``)."""
    forms = set()
    for key, value in metrics.items():
        forms |= {f"{value:.{k}f}" for k in range(1, 5)} | {f"{100 * value:.{k}f}%" for k in range(3)}
        forms |= set(re.findall(r"\d+\.\d+", key))
    return forms


def test_the_readme_zoo_table_quotes_the_shipped_cards():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {name: cells for name, cells in re.findall(r"^\| `([\w-]+)` \|(.*)\|\s*$", readme, re.M) if name in zoo.MODELS}
    assert set(rows) == set(zoo.MODELS), f"the README's zoo table lacks {sorted(set(zoo.MODELS) - set(rows))}"
    for name, cells in rows.items():
        quoted = cells.split("|")[-1].replace("ln 10 = 2.303", "")  # the entropy's ceiling, a constant
        numbers = re.findall(r"\d+(?:\.\d+)?%", quoted) + re.findall(r"(?<![\w.])\d+\.\d+(?![\d.%])", quoted)
        assert numbers, f"{name}: the README quotes no metric"
        wrong = [number for number in numbers if number not in quoted_forms(zoo.card(name)["metrics"])]
        assert not wrong, f"{name}: the README quotes {wrong}, which its card ({name}.json) does not hold"

"""The LR schedule: HF's linear warmup/decay curve, fitted to a time budget, restored on resume."""

from __future__ import annotations

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from notellm.train.loop import SchedulePlan, affordable_total_steps, fitted_total_steps, refit_due


def _lrs(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


def test_plan_matches_transformers_linear_schedule():
    def make():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    ref_opt, our_opt = make(), make()
    reference = get_linear_schedule_with_warmup(ref_opt, 3, 20)
    ours = torch.optim.lr_scheduler.LambdaLR(our_opt, SchedulePlan(total=20, warmup_ratio=0.15))  # ceil(3.0) = 3
    assert _lrs(ours, our_opt, 22) == pytest.approx(_lrs(reference, ref_opt, 22))


def test_fitted_total_steps_arithmetic():
    # 3 steps done at 10 s/step; 100 s left * 0.95 slack = 9 more steps.
    assert fitted_total_steps(3, 10.0, 100.0, 1000) == 12
    assert fitted_total_steps(3, 10.0, 100.0, 8) == 8  # never longer than the planned schedule
    assert fitted_total_steps(3, 10.0, -5.0, 1000) == 4  # out of time: at least one more step, then max_seconds stops
    assert fitted_total_steps(13, 2.0, 100.0, 1000) == 60  # the machine got quieter: a later fit lengthens it


def test_refit_schedule():
    due = [s for s in range(1, 40) if refit_due(s, calibration_steps=3, refit_every=10)]
    assert due == [3, 13, 23, 33]
    assert [s for s in range(1, 40) if refit_due(s, 3, 0)] == [3]  # fit once


def test_shortened_plan_survives_state_dict_round_trip():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plan = SchedulePlan(total=1000, warmup_ratio=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    plan.total = 40
    state = scheduler.state_dict()
    fresh_plan = SchedulePlan(total=1000, warmup_ratio=0.1)
    fresh = torch.optim.lr_scheduler.LambdaLR(optimizer, fresh_plan)
    fresh.load_state_dict(state)
    assert fresh_plan.total == 40


def test_affordable_steps_pay_only_their_own_validations():
    # Seen on a 2-core fp32 machine: 27 s/step, 25 s per validation, 587 s left, 2,242 planned steps, eval every
    # 100. Reserving the planned schedule's 22 validations (550 s) left one step; the fitted schedule runs one
    # validation (its end), so 0.95 * (587 - 25) / 27 = 19 more steps fit.
    assert affordable_total_steps(3, 27.0, 587.0, 2242, 25.0, 100) == 3 + 19
    # by hand: 10 s/step, 10 s per validation, eval every 5, 200 s left from step 0, 1000 planned:
    # n steps run n//5 validations (the last one at n when 5 | n, else one more at the end):
    # the answer is the largest n with int(0.95 * (200 - 10 * evals(n)) / 10) >= n
    n = affordable_total_steps(0, 10.0, 200.0, 1000, 10.0, 5)
    evals = [m // 5 + (m % 5 != 0) for m in (n, n + 1)]  # every 5 steps and at the end
    assert int(0.95 * (200.0 - 10.0 * evals[0]) / 10.0) >= n and int(0.95 * (200.0 - 10.0 * evals[1]) / 10.0) < n + 1
    assert n == 15
    assert affordable_total_steps(0, 10.0, 200.0, 1000, 10.0, 0) == 19  # no validation set: time for steps only

"""Training losses (hand-computed cases) and the paper's schedules."""

import math

import pytest
import torch
from torch import nn

from flownet2_core.models.builders import flownet2, flownet2_c, flownet2_sd
from flownet2_core.train.losses import FUSION_WEIGHTS, PAPER_WEIGHTS, MultiScaleEPE, pool_flow
from flownet2_core.train.schedules import SCHEDULES, make_optimizer, make_scheduler, scaled


class _Unit(nn.Module):
    """Stands in for a model: only states the unit of its training outputs."""

    def __init__(self, scale):
        super().__init__()
        self.train_flow_scale = scale


def _outputs(h, w, value, n=5):
    """Five predictions (finest first, strides 4 … 64) filled with ``value`` (u, v)."""
    return [torch.tensor(value, dtype=torch.float32).reshape(1, 2, 1, 1).expand(1, 2, h // 4 // 2**k, w // 4 // 2**k)
            for k in range(n)]


def test_paper_weights_are_the_specs():
    assert PAPER_WEIGHTS == (0.005, 0.01, 0.02, 0.08, 0.32)  # flow2 … flow6
    assert len(FUSION_WEIGHTS) == 3


def test_constant_error_hand_computed():
    # Ground truth (3, 4) px everywhere; predictions 0 in flow/20 units: EPE = 5 px = 0.25 units at
    # every pixel of every scale, summed over pixels: 0.25 × Σ α_s × pixels_s.
    flow = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1).expand(1, 2, 128, 128).clone()
    loss = MultiScaleEPE()(_outputs(128, 128, (0.0, 0.0)), flow, model=_Unit(20.0))
    pixels = [32 ** 2, 16 ** 2, 8 ** 2, 4 ** 2, 2 ** 2]   # per sample at strides 4 … 64
    assert loss.item() == pytest.approx(0.25 * sum(w * n for w, n in zip(PAPER_WEIGHTS, pixels)), rel=1e-4)
    # A perfect prediction in the model's units gives 0 (up to the gradient guard's 1e-6).
    loss = MultiScaleEPE()(_outputs(128, 128, (3 / 20, 4 / 20)), flow, model=_Unit(20.0))
    assert loss.item() < 1e-4


def test_loss_asks_the_model_for_its_units():
    flow = torch.full((1, 2, 128, 128), 2.0)
    # FlowNetSD predicts 20 × flow, FlowNetC flow / 20, the fusion net pixels: each right answer scores 0.
    assert MultiScaleEPE()(_outputs(128, 128, (40.0, 40.0)), flow, model=flownet2_sd(width=0.0625)).item() < 1e-4
    assert MultiScaleEPE()(_outputs(128, 128, (0.1, 0.1)), flow, model=flownet2_c(width=0.0625)).item() < 1e-4
    fusion = [torch.full((1, 2, 128 // 2**k, 128 // 2**k), 2.0) for k in range(3)]
    assert MultiScaleEPE()(fusion, flow, model=flownet2(width=0.0625)).item() < 1e-4
    # The same numbers read in the wrong unit are far off.
    assert MultiScaleEPE()(_outputs(128, 128, (0.1, 0.1)), flow, model=flownet2_sd(width=0.0625)).item() > 1e-3
    with pytest.raises(ValueError, match="train_flow_scale"):
        MultiScaleEPE()(_outputs(128, 128, (0, 0)), flow, model=nn.Linear(1, 1))


def test_invalid_pixels_take_no_part_and_pooling_averages_valid_ones():
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0, :, :4] = 20.0          # left half moves 20 px right …
    valid = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    valid[..., :, 4:] = False          # … and only the left half is valid
    pooled, has = pool_flow(flow, valid, 4)
    assert has[0, 0].tolist() == [[True, False], [True, False]]
    assert pooled[0, 0, :, 0].tolist() == [20.0, 20.0]
    # One prediction at stride 4 saying 1 unit (20 px) everywhere: zero loss, invalid half ignored.
    pred = [torch.ones(1, 2, 2, 2) * torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1)]
    loss = MultiScaleEPE(weights=[1.0])(pred, flow, valid, model=_Unit(20.0))
    assert loss.item() < 1e-4
    valid[:] = True                    # now the right half (0 px) counts: error 1 unit at 2 of 4
    loss = MultiScaleEPE(weights=[1.0])(pred, flow, valid, model=_Unit(20.0))
    assert loss.item() == pytest.approx(2.0, rel=1e-4)
    # Per sample, then the mean over samples: a half-valid sample counts as much as a full one.
    two = torch.cat([valid, valid.clone().fill_(False)])
    two[1, :, :, :4] = True
    loss = MultiScaleEPE(weights=[1.0])([pred[0].repeat(2, 1, 1, 1)], flow.repeat(2, 1, 1, 1), two,
                                        model=_Unit(20.0))
    assert loss.item() == pytest.approx((2.0 + 0.0) / 2, rel=1e-4)


def test_robust_loss_hand_computed():
    flow = torch.zeros(1, 2, 4, 4)
    pred = [torch.full((1, 2, 4, 4), 0.0)]
    pred[0][:, 0] = 0.3                # error 0.3 units at stride 1
    loss = MultiScaleEPE(weights=[1.0], robust=True)(pred, flow, model=_Unit(20.0))
    assert loss.item() == pytest.approx(16 * (0.3 + 0.01) ** 0.4, rel=1e-4)


def test_gradient_finite_at_zero_error():
    pred = [torch.zeros(1, 2, 4, 4, requires_grad=True)]
    MultiScaleEPE(weights=[1.0], robust=True)(pred, torch.zeros(1, 2, 4, 4), model=_Unit(20.0)).backward()
    assert torch.isfinite(pred[0].grad).all()


def test_loss_errors():
    flow = torch.zeros(1, 2, 64, 64)
    with pytest.raises(ValueError, match="2 weights for 5 outputs"):
        MultiScaleEPE(weights=[1, 1])(_outputs(64, 64, (0, 0)), flow, model=_Unit(20.0))
    with pytest.raises(ValueError, match="integer downscale"):
        MultiScaleEPE(weights=[1.0])([torch.zeros(1, 2, 5, 5)], flow, model=_Unit(20.0))


def test_schedules_milestones_and_scaling():
    assert SCHEDULES["short"].milestones == (300_000, 400_000, 500_000) and SCHEDULES["short"].stop == 600_000
    assert SCHEDULES["long"].milestones == (400_000, 600_000, 800_000, 1_000_000)
    assert SCHEDULES["long"].stop == 1_200_000 and SCHEDULES["long"].lr == 1e-4
    assert SCHEDULES["fine"].lr == 1e-5 and SCHEDULES["fine"].stop == 600_000
    s = scaled("long", 0.001)
    assert s.milestones == (400, 600, 800, 1000) and s.stop == 1200
    assert s.lr_at(399) == 1e-4 and s.lr_at(400) == 5e-5 and s.lr_at(1000) == pytest.approx(6.25e-6)
    with pytest.raises(ValueError):
        scaled("long", 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        scaled("longer", 1)


def test_scheduler_follows_the_schedule():
    s = scaled("short", 1e-4)          # milestones 30, 40, 50; stop 60
    p = nn.Parameter(torch.zeros(1))
    opt = make_optimizer([p], s)
    sched = make_scheduler(opt, s)
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["weight_decay"] == 4e-4
    seen = []
    for it in range(s.stop):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(math.isclose(seen[i], s.lr_at(i)) for i in range(s.stop))
    assert seen[29] == 1e-4 and seen[30] == 5e-5 and seen[59] == 1.25e-5
    with pytest.raises(ValueError, match="every parameter is frozen"):
        make_optimizer([nn.Parameter(torch.zeros(1), requires_grad=False)], s)

"""tndsl.integrations.curvlinops against the real curvlinops package (skipped where it is absent)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

curvlinops = pytest.importorskip("curvlinops")
from curvlinops import EKFACLinearOperator, KFACInverseLinearOperator, KFACLinearOperator  # noqa: E402

from tndsl.curvature import input_factor, input_sum  # noqa: E402
from tndsl.integrations.curvlinops import use_tndsl  # noqa: E402

CONVS = [  # kernel_size, stride, padding, dilation, groups
    (3, 1, 1, 1, 1),
    ((3, 2), (2, 1), (1, 0), (1, 2), 2),
    (2, 2, 0, 1, 1),
    (3, 1, "same", 2, 2),
    ((1, 3), 1, "valid", 1, 1),
]


def _model(conv: tuple, bias: bool) -> nn.Module:
    """A Conv2d with the hyperparameters ``conv``, then a weight-sharing Linear over the
    spatial positions (3-d input) and a plain Linear."""
    kernel, stride, padding, dilation, groups = conv
    layer = nn.Conv2d(4, 4, kernel, stride, padding, dilation, groups, bias)
    out = layer(torch.zeros(1, 4, 7, 6)).shape
    return nn.Sequential(
        layer, nn.ReLU(), nn.Flatten(2), nn.Linear(out[2] * out[3], 3, bias=bias), nn.Flatten(), nn.Linear(12, 5)
    ).double()


def _data(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(n, 4, 7, 6, generator=g, dtype=torch.float64), torch.randint(0, 5, (n,), generator=g)) for _ in range(2)]


def _operators(model: nn.Module, data: list, **options) -> tuple[KFACLinearOperator, KFACLinearOperator]:
    params = [p for p in model.parameters() if p.requires_grad]
    theirs = KFACLinearOperator(model, nn.CrossEntropyLoss(reduction=options.pop("reduction", "mean")), params, data, **options)
    theirs.compute_kronecker_factors()
    with use_tndsl():
        ours = KFACLinearOperator(model, theirs._loss_func, params, data, **options)
        ours.compute_kronecker_factors()
    return theirs, ours


def _assert_same_factors(theirs: KFACLinearOperator, ours: KFACLinearOperator) -> None:
    for mine, other in ((ours._input_covariances, theirs._input_covariances), (ours._gradient_covariances, theirs._gradient_covariances)):
        assert mine.keys() == other.keys() and mine
        for name in mine:
            assert torch.allclose(mine[name], other[name], atol=1e-12), name


@pytest.mark.parametrize("conv", CONVS, ids=str)
@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_factors_and_products_equal_curvlinops(conv, approx, monkeypatch):
    """Equal factors, matrix-vector and inverse matrix-vector products, for both bias
    treatments and loss reductions (alternating over the grid to keep it short)."""
    import tndsl.integrations.curvlinops as adapter

    calls: list[nn.Module] = []
    monkeypatch.setattr(adapter, "input_sum", lambda layer, *a, **k: calls.append(layer) or input_sum(layer, *a, **k))
    index = CONVS.index(conv)
    separate, bias = index % 2 == 0, index != 2
    reduction, fisher = ("mean", "mc") if index % 2 else ("sum", "type-2")
    torch.manual_seed(index)
    model = _model(conv, bias)
    theirs, ours = _operators(
        model, _data(), kfac_approx=approx, separate_weight_and_bias=separate, reduction=reduction, fisher_type=fisher,
        check_deterministic=False,
    )
    _assert_same_factors(theirs, ours)
    assert {type(layer) for layer in calls} == {nn.Conv2d, nn.Linear}  # tndsl computed them
    v = torch.randn(theirs.shape[1], dtype=torch.float64)
    assert torch.allclose(ours @ v, theirs @ v, atol=1e-10)
    inverse = [KFACInverseLinearOperator(op, damping=1e-2) @ v for op in (theirs, ours)]
    assert torch.allclose(inverse[0], inverse[1], atol=1e-8)


def test_patch_is_undone_and_ekfac_uses_it():
    """Hooks and the supported layers are restored; EKFAC (a subclass) gets the same factors."""
    hooks = (KFACLinearOperator._hook_accumulate_input_covariance, KFACLinearOperator._accumulate_gradient_covariance)
    supported = KFACLinearOperator._SUPPORTED_MODULES
    model, data = _model(CONVS[1], True), _data()
    params = list(model.parameters())
    theirs = EKFACLinearOperator(model, nn.CrossEntropyLoss(), params, data, check_deterministic=False)
    theirs.compute_kronecker_factors()
    with use_tndsl():
        assert KFACLinearOperator._SUPPORTED_MODULES != supported
        assert EKFACLinearOperator._SUPPORTED_MODULES == supported
        ours = EKFACLinearOperator(model, nn.CrossEntropyLoss(), params, data, check_deterministic=False)
        ours.compute_kronecker_factors()
    _assert_same_factors(theirs, ours)
    assert (KFACLinearOperator._hook_accumulate_input_covariance, KFACLinearOperator._accumulate_gradient_covariance) == hooks
    assert KFACLinearOperator._SUPPORTED_MODULES is supported and "_SUPPORTED_MODULES" not in EKFACLinearOperator.__dict__


def test_conv1d_and_conv3d_beyond_curvlinops():
    """Conv1d equals curvlinops' own Conv2d with a unit-height kernel on unit-height inputs;
    Conv3d's input factor is tndsl.curvature's (patches averaged over groups)."""
    torch.manual_seed(7)
    conv1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2).double()
    conv2 = nn.Conv2d(4, 6, (1, 3), stride=(1, 2), padding=(0, 1), groups=2).double()
    with torch.no_grad():
        conv2.weight.copy_(conv1.weight[:, :, None]), conv2.bias.copy_(conv1.bias)
    x = torch.randn(5, 4, 9, dtype=torch.float64)
    y = torch.randint(0, 5, (5,))
    heads = [nn.Linear(6 * 5, 5).double() for _ in range(2)]
    heads[1].load_state_dict(heads[0].state_dict())
    flat = nn.Sequential(conv2, nn.Flatten(), heads[0])
    theirs = KFACLinearOperator(flat, nn.CrossEntropyLoss(), list(flat.parameters()), [(x[:, :, None], y)], check_deterministic=False)
    with pytest.raises(NotImplementedError):
        KFACLinearOperator(nn.Sequential(conv1), nn.MSELoss(), list(conv1.parameters()), [(x, x)], check_deterministic=False)
    with use_tndsl():
        line = nn.Sequential(conv1, nn.Flatten(), heads[1])
        ours = KFACLinearOperator(line, nn.CrossEntropyLoss(), list(line.parameters()), [(x, y)], check_deterministic=False)
        ours.compute_kronecker_factors()
        conv3 = nn.Conv3d(4, 2, (2, 1, 3), padding=(1, 0, 0), groups=2, bias=False).double()
        cube = torch.randn(3, 4, 3, 2, 5, dtype=torch.float64)
        target = torch.randn(3, 2, 4, 2, 3, dtype=torch.float64)
        op3 = KFACLinearOperator(conv3, nn.MSELoss(reduction="sum"), [conv3.weight], [(cube, target)], check_deterministic=False)
        op3.compute_kronecker_factors()
    theirs.compute_kronecker_factors()
    _assert_same_factors(theirs, ours)
    v = torch.randn(theirs.shape[1], dtype=torch.float64)
    assert torch.allclose(ours @ v, theirs @ v, atol=1e-10)
    mean_patches = nn.Conv3d(2, 2, (2, 1, 3), padding=(1, 0, 0), bias=False)
    averaged = cube.reshape(3, 2, 2, 3, 2, 5).mean(1)
    expected = input_factor(mean_patches, averaged) / (4 * 2 * 3)  # curvlinops divides by the positions
    assert torch.allclose(op3._input_covariances[""], expected, atol=1e-12)
    assert op3._gradient_covariances[""].shape == (2, 2)

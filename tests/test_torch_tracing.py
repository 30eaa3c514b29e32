"""Planning where torch traces: meta and fake tensors, torch.compile (fullgraph, dynamic
batch without recompiling) on a fresh program, and torch.jit.trace of a function."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters
from torch._subclasses.fake_tensor import FakeTensorMode

import tndsl
from tndsl.backend.constants import dense_slice
from tndsl.backend.dynamic import Sym, free_groups, parametric
from tndsl.backend.ops import Op, Plan

ROOT_GALLERY = Path(__file__).resolve().parent.parent / "gallery"
CONV = ROOT_GALLERY / "conv.tn"


def _args(n: int = 2):
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 3, 9, 7, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)


def _expected(x, w, b):
    return F.conv2d(x, w, b, stride=2, padding=1)


def test_meta_tensors_give_the_shape():
    conv = tndsl.load(CONV)
    y = conv.Y2(*(t.to("meta") for t in _args()))
    assert y.device.type == "meta" and y.shape == (2, 4, 5, 4)


def test_fake_tensors_give_the_shape_and_leave_no_fake_plan_behind():
    conv = tndsl.load(CONV)
    with FakeTensorMode():
        y = conv.Y2(torch.empty(2, 3, 9, 7), torch.empty(4, 3, 3, 2), torch.empty(4))
    assert y.shape == (2, 4, 5, 4)
    assert not conv.Y2._cache and not len(conv.Y2._constants)  # planned under the mode, cached nothing
    torch.testing.assert_close(conv.Y2(*_args()), _expected(*_args()))  # real tensors: a real plan


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compile_fullgraph_plans_inside_the_trace(backend):
    torch._dynamo.reset()
    conv = tndsl.load(CONV)  # fresh: the first call plans under dynamo
    compiled = torch.compile(conv.Y2, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(*_args()), _expected(*_args()))
    torch.testing.assert_close(compiled(*_args()), _expected(*_args()))
    other = tndsl.load(CONV)  # a second program compiles on its own (its handle differs)
    torch.testing.assert_close(torch.compile(other.Y2, fullgraph=True, backend=backend)(*_args()), _expected(*_args()))


def _graphs(compiled, calls) -> int:
    """How many graphs dynamo made for ``calls`` (each checked against its expected value)."""
    counters.clear()
    for args, kwargs, expected in calls:
        torch.testing.assert_close(compiled(*args, **kwargs), expected)
    return counters["stats"]["unique_graphs"]


def test_compile_dynamic_batch_sizes_do_not_recompile_a_conv():
    """Under dynamic=True the batch (and channel) sizes stay symbolic: one graph for three
    batch sizes. Sizes are chosen apart from the other axes' (dynamo shares one symbol
    between equal sizes)."""
    torch._dynamo.reset()
    conv = tndsl.load(CONV)
    compiled = torch.compile(conv.Y2, fullgraph=True, dynamic=True, backend="aot_eager")
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(5, 3, 3, 2, generator=g), torch.randn(5, generator=g)
    calls = []
    for n in (6, 7, 9):
        x = torch.randn(n, 3, 11, 10, generator=g)
        calls.append(((x, w, b), {}, _expected(x, w, b)))
    assert _graphs(compiled, calls) == 1


def test_compile_dynamic_batch_sizes_do_not_recompile_kfac_reduce():
    """The batch leg is summed here and the factor divides by it: the generated code reads
    the batch size for the scale (alpha = c / a0.shape[0])."""
    torch._dynamo.reset()
    function = tndsl.load(ROOT_GALLERY / "kfac_reduce.tn").Omega2
    compiled = torch.compile(function, fullgraph=True, dynamic=True, backend="aot_eager")
    sizes = {"g": 2, "k1": 2, "k2": 3}
    calls = []
    for n in (3, 5, 6):
        x = torch.randn(n, 4, 9, 10)
        calls.append(((x,), sizes, tndsl.load(ROOT_GALLERY / "kfac_reduce.tn").Omega2(x, **sizes)))
    assert _graphs(compiled, calls) == 1


def test_compile_dynamic_specialises_sizes_the_plan_depends_on():
    """Spatial sizes set Π: each one is its own graph, and each graph is right."""
    torch._dynamo.reset()
    conv = tndsl.load(CONV)
    compiled = torch.compile(conv.Y2, fullgraph=True, dynamic=True, backend="aot_eager")
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(5, 3, 3, 2, generator=g), torch.randn(5, generator=g)
    calls = []
    for i in (11, 12, 13):
        x = torch.randn(6, 3, i, 10, generator=g)
        calls.append(((x, w, b), {}, _expected(x, w, b)))
    assert _graphs(compiled, calls) == 3


def test_free_axes_and_their_groups():
    """Batch, channel and output-channel axes may stay symbolic; axes Π touches may not."""
    assert free_groups(tndsl.load(CONV).Y2.network) == [((0, 0),), ((0, 1), (1, 1)), ((1, 0), (2, 0))]
    assert free_groups(tndsl.load(ROOT_GALLERY / "kfac_reduce.tn").Omega2.network) == [((0, 0),)]


def test_a_plan_that_differs_with_the_size_stays_specialised():
    """Plans that differ in structure, or in a parameter no monomial of the size gives,
    are not made symbolic."""
    a = Plan("f", ("a0",), (Op("reshape", ("a0",), "t1", (("shape", (8, -1)),)),), "t1")
    doubled = Plan("f", ("a0",), (Op("reshape", ("a0",), "t1", (("shape", (2 * 9, -1)),)),), "t1")
    plus_one = Plan("f", ("a0",), (Op("reshape", ("a0",), "t1", (("shape", (9 + 3, -1)),)),), "t1")
    other = Plan("f", ("a0",), (Op("sum", ("a0",), "t1", (("dims", (0,)),)),), "t1")
    assert parametric(a, [((0, 0), 8, other)], True) is None
    assert parametric(a, [((0, 0), 8, plus_one)], True) is None
    assert parametric(a, [((0, 0), 4, doubled)], True) is None  # 8 = 2 * 4 but 18 != 2 * 5
    shape = parametric(a, [((0, 0), 8, Plan("f", ("a0",), (Op("reshape", ("a0",), "t1", (("shape", (9, -1)),)),), "t1"))],
                       True).ops[0].param("shape")
    assert shape == (Sym(1, (((0, 0), 1),)), -1) and shape[0].code() == "(a0.shape[0])"


def test_compile_a_module_holding_a_function_with_grad():
    """Backward through a compiled call; dynamo's pass, aot_autograd's forward and
    backward share one plan."""
    torch._dynamo.reset()
    conv = tndsl.load(CONV)
    x, w, b = _args()
    w.requires_grad_(True)
    compiled = torch.compile(lambda x, w, b: conv.Y2(x, w, b).square().sum(), fullgraph=True, backend="aot_eager")
    compiled(x, w, b).backward()
    assert len(conv.Y2._cache) == 1 and len(conv.Y2._published) == 1
    expected = torch.func.grad(lambda w: _expected(x, w, b).square().sum())(w.detach())
    torch.testing.assert_close(w.grad, expected)


def test_jit_trace_of_a_function():
    conv = tndsl.load(CONV)
    traced = torch.jit.trace(conv.Y2, _args())
    torch.testing.assert_close(traced(*_args()), _expected(*_args()))


def test_index_gather_plans_under_fake_tensors_and_compile():
    vjp = ROOT_GALLERY / "randomized_vjp.tn"
    x, v, j = torch.randn(2, 3, 9, 8), torch.randn(2, 4, 5, 4), torch.tensor([0, 3, 7, 19, 11, 2])
    expected = tndsl.load(vjp).RW2(x, v, j)
    assert "gather_windows" in str(tndsl.load(vjp).RW2.plan(x, v, j))  # window offsets are a plan-time constant
    with FakeTensorMode():
        y = tndsl.load(vjp).RW2(torch.empty(2, 3, 9, 8), torch.empty(2, 4, 5, 4), torch.zeros(6, dtype=torch.long))
    assert y.shape == expected.shape
    torch._dynamo.reset()
    compiled = torch.compile(tndsl.load(vjp).RW2, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, v, j), expected)


@pytest.mark.parametrize("start, step, size_in, size_out", [(0, 1, 4, 4), (1, 2, 9, 4), (-1, 2, 7, 5), (3, 3, 5, 3)])
def test_dense_slice_from_integer_formulas(start, step, size_in, size_out):
    expected = torch.zeros(size_in, size_out)
    for o in range(size_out):
        if 0 <= start + step * o < size_in:
            expected[start + step * o, o] = 1
    torch.testing.assert_close(dense_slice(start, step, size_in, size_out, torch.float32, "cpu"), expected)
    with FakeTensorMode():
        assert dense_slice(start, step, size_in, size_out, torch.float32, "cpu").shape == (size_in, size_out)


def test_a_bad_call_under_compile_names_the_tn_call_error():
    """Dynamo wraps an error raised while it traces: its message and context are tndsl's."""
    torch._dynamo.reset()
    compiled = torch.compile(tndsl.load(CONV).Y2, fullgraph=True, backend="eager")
    with pytest.raises(Exception, match="size mismatch for leg 'ci'") as raised:
        compiled(torch.randn(2, 3, 9, 7), torch.randn(4, 5, 3, 2), torch.randn(4))
    assert isinstance(raised.value.__context__, tndsl.TnCallError)


def test_compile_follows_autocast_inside_and_around_the_compiled_function():
    """An autocast region opened inside the compiled function, one around the call, and
    no autocast: the dtype F.conv2d gives in each (plans are cached per autocast state)."""
    torch._dynamo.reset()
    conv = tndsl.load(CONV)
    x, w, b = _args()

    def inside(x, w, b):
        with torch.autocast("cpu", torch.bfloat16):
            return conv.Y2(x, w, b)

    assert torch.compile(inside, fullgraph=True, backend="eager")(x, w, b).dtype == torch.bfloat16
    compiled = torch.compile(conv.Y2, fullgraph=True, backend="eager")
    with torch.autocast("cpu", torch.bfloat16):
        assert compiled(x, w, b).dtype == torch.bfloat16
    torch.testing.assert_close(compiled(x, w, b), _expected(x, w, b))


class _Block(torch.nn.Module):
    """A conv layer and a KFAC-reduce factor of its input, both tndsl functions."""

    def __init__(self):
        super().__init__()
        self.conv = tndsl.load(CONV).Y2
        self.factor = tndsl.load(ROOT_GALLERY / "kfac_reduce.tn").Omega2
        self.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 2))
        self.bias = torch.nn.Parameter(torch.randn(4))

    def forward(self, x):
        return self.conv(x, self.weight, self.bias), self.factor(x[:, :2], g=2, k1=2, k2=3)


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_with_a_static_batch(strict):
    block = _Block()
    x = torch.randn(2, 3, 9, 10)
    exported = torch.export.export(block, (x,), strict=strict).module()
    for got, expected in zip(exported(x), block(x)):
        torch.testing.assert_close(got, expected)


def test_torch_export_non_strict_with_a_dynamic_batch():
    block = _Block()
    batch = torch.export.Dim("n", min=2, max=64)
    exported = torch.export.export(block, (torch.randn(4, 3, 9, 10),), dynamic_shapes={"x": {0: batch}}).module()
    for n in (3, 5):
        x = torch.randn(n, 3, 9, 10)
        for got, expected in zip(exported(x), block(x)):
            torch.testing.assert_close(got, expected)


def test_jit_trace_plans_with_int_sizes_quietly():
    """Traced sizes are read as the constants they are: no TracerWarning from planning,
    one plan (keyed by int sizes) shared with plain calls."""
    conv = tndsl.load(CONV)
    x, w, b = _args()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(conv.Y2, (x, w, b))
    torch.testing.assert_close(traced(x, w, b), conv.Y2(x, w, b))
    assert len(conv.Y2._cache) == 1

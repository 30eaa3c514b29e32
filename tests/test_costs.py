"""Plan costs: shapes from meta execution, FLOPs and bytes against hand counts, torch calls."""

from __future__ import annotations

import torch

import tndsl
from tndsl.backend.ops import Op
from tndsl.tools.costs import format_count, plan_steps, torch_call

GALLERY = "gallery"


def _steps(function, *shapes, **sizes):
    tensors = [torch.zeros(()).expand(shape) for shape in shapes]
    return plan_steps(function.plan(*tensors, **sizes), shapes)


def test_matrix_chain_counts() -> None:
    program = tndsl.load(f"{GALLERY}/matrix_chain.tn")
    steps = _steps(program.M, (30, 40), (40, 1), (1, 50), (50, 20))
    assert [s.call for s in steps] == ["torch.einsum"] * 3
    assert sorted(s.flops for s in steps) == sorted([2 * 30 * 40 * 1, 2 * 1 * 50 * 20, 2 * 30 * 1 * 20])
    first = next(s for s in steps if s.shape == (30, 1))
    assert first.bytes == 4 * (30 * 40 + 40 * 1 + 30 * 1)


def test_convolution_counts() -> None:
    program = tndsl.load(f"{GALLERY}/conv.tn")
    steps = [s for s in _steps(program.Y2, (2, 3, 9, 7), (4, 3, 3, 2), (4,)) if not s.view]
    (conv,) = steps  # the bias is F.conv2d's own argument
    assert conv.call == "F.conv2d" and conv.shape == (2, 4, 5, 4)
    assert conv.flops == 2 * (2 * 4 * 5 * 4) * (3 * 3 * 2)
    assert conv.bytes == 4 * (2 * 3 * 9 * 7 + 4 * 3 * 3 * 2 + 4 + 2 * 4 * 5 * 4)


def test_kfc_unfold_is_a_view_and_the_im2col_copy_is_counted() -> None:
    program = tndsl.load(f"{GALLERY}/kfc.tn")
    steps = _steps(program.Omega2, (3, 4, 7, 6), g=2, k1=3, k2=2)
    unfolds = [s for s in steps if s.op.prim == "unfold"]
    assert len(unfolds) == 2 and all(s.view and s.bytes == 0 and s.call == "Tensor.unfold" for s in unfolds)
    copies = [s for s in steps if s.op.prim == "reshape" and not s.view]
    assert len(copies) == 1 and copies[0].bytes > 0  # reshaping the unfolded windows copies them
    (gram,) = [s for s in steps if s.op.prim == "gram"]
    assert gram.call == "torch.baddbmm" and gram.shape == (2, 12, 12)
    assert gram.flops == 2 * (2 * 12 * 12) * (3 * 4 * 4)  # g, (c k1 k2)², n·o1·o2 summed


def test_kfac_reduce_folds_patterns_into_matmuls() -> None:
    program = tndsl.load(f"{GALLERY}/kfac_reduce.tn")
    steps = _steps(program.Omega2, (3, 4, 9, 10), g=2, k1=2, k2=3)
    # Σₒ Π is a folded [I, K] constant applied to one axis at a time (as a matmul or an einsum,
    # whichever order the cost model prefers): the smallest first step shrinks i1 (9 → 2)
    constants = {s.op.out for s in steps if s.op.prim == "permute" and s.op.inputs[0].startswith("c")}  # transposed
    folds = [
        s for s in steps
        if s.op.prim in ("matmul", "einsum") and any(n.startswith("c") or n in constants for n in s.op.inputs)
    ]
    assert len(folds) == 2 and not [s for s in steps if s.op.prim == "unfold"]
    assert all(s.flops <= 2 * (3 * 2 * 2 * 9 * 10) * 3 for s in folds)  # each touches X's entries once per kernel tap


def test_torch_calls_for_every_kind_of_step() -> None:
    cases = {
        Op("conv_transpose", ("a", "b"), "t", (("dims", 1), ("stride", (1,)), ("padding", (0,)), ("output_padding", (0,)),
                                                ("groups", 1), ("dilation", (1,)))): "F.conv_transpose1d",
        Op("conv_weight", ("a", "b"), "t", (("dims", 3), ("weight", (1, 1, 1, 1, 1)), ("stride", (1,) * 3),
                                             ("padding", (0,) * 3), ("dilation", (1,) * 3), ("groups", 1))): "torch.nn.grad.conv3d_weight",
        Op("pad", ("a",), "t", (("pads", (1, 1)),)): "F.pad",
        Op("permute", ("a",), "t", (("dims", (1, 0)),)): "Tensor.permute",
        Op("index", ("a",), "t", (("index", (None, ())),)): "Tensor[...]",
        Op("scale", ("a",), "t", (("factor", 2.0),)): "*",
        Op("to", ("a",), "t", (("dtype", "float64"),)): "Tensor.to",
        Op("embed_diagonal", ("a",), "t", (("shape", (2, 2)), ("view", (2,)), ("strides", (3,)))): "Tensor.as_strided",
        Op("gram_chunked", ("a", "z"), "t", (("axis", 1), ("total", 4), ("step", 2), ("dims", ()), ("shape", (1, 2, -1)),
                                             ("transposed", False), ("alpha", 1.0))): "torch.baddbmm",
    }
    for op, call in cases.items():
        assert torch_call(op) == call, op


def test_format_count() -> None:
    assert format_count(5760, "FLOP") == "5.76 kFLOP"
    assert format_count(640, "B") == "640 B"
    assert format_count(2.5e9, "B") == "2.5 GB"


def test_einsum_layout_counts_the_copies_torch_makes() -> None:
    """torch.einsum reshapes its operands to [batch, own, summed] / [batch, summed, own]:
    an operand whose groups are not consecutive in memory is copied; the pair step asks
    for the result in the operands' order where that spares the copy."""
    from tndsl.backend.cost import einsum_layout

    assert einsum_layout([(3, 4), (4, 5)], "ab,bc->ac") == (0, 0)
    assert einsum_layout([(4, 3), (4, 5)], "ab,ac->bc") == (0, 3 * 4)  # the left one summed-first: transposed
    windows, samples = (8, 64, 784, 3, 3), (8, 16, 784)
    assert einsum_layout([windows, samples], "abcde,afc->fbde") == (8 * 64 * 784 * 9 + 8 * 16 * 784, 0)  # n, s apart
    rows = (8, 784, 3, 3, 64)
    assert einsum_layout([samples, rows], "abc,acdef->bdef")[0] == 8 * 16 * 784  # the small one only
    assert einsum_layout([samples, rows], "abc,acdef->bfde")[0] == 8 * 16 * 784 + 8 * 784 * 9 * 64  # c before k
    program = tndsl.compile("input A[n, s, k, c]\ninput B[n, d, s]\nG[d, c, k] = A[n, s, k, c] * B[n, d, s]")
    plan = program.G.plan(torch.empty(8, 50, 9, 64), torch.empty(8, 16, 50))
    (einsum,) = [op for op in plan.ops if op.prim == "einsum"]
    shapes = {"a0": (8, 50, 9, 64), "a1": (8, 16, 50)}
    assert einsum_layout([shapes[name] for name in einsum.inputs], einsum.param("equation"))[0] == 8 * 16 * 50  # B only
    assert plan.ops[-1].prim == "permute"  # to [d, c, k], a view

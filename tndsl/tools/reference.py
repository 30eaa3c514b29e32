"""An independent dense reference for any network: materialize everything, one einsum per term.

:func:`dense_reference` evaluates a :class:`~tndsl.ir.Network` the slow, obvious way, so that
the planner and its lowerings (:mod:`tndsl.plan`) can be checked against it:

1. sizes come from :func:`tndsl.sizes.solve` (the same rules the compiler uses);
2. every Π is materialized densely with :meth:`PatternSpec.dense`, every ``delta`` as a dense
   copy tensor (ones on the generalized diagonal; one leg: a vector of ones);
3. each term is ONE ``opt_einsum.contract`` over all its operands (diagonals of repeated
   labels included), scaled by its coefficient and broadcast along output legs it lacks;
4. the terms are summed and the output groups are flattened row-major.

It shares nothing with the planner but the IR and the size solver; it is meant for small
shapes (a delta with k legs of size n costs n**k memory).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import opt_einsum as oe
import torch

from ..backend.constants import constant_value
from ..backend.einsum import einsum_equation
from ..backend.signature import promote
from ..ir import Kind, Network, Term, TnCallError, sizes_of, solve

__all__ = ["dense_reference"]


def dense_reference(
    network: Network,
    tensors: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    keywords: Mapping[str, int] | None = None,
) -> torch.Tensor:
    """Evaluate ``network`` densely on ``tensors`` (in input order, or by input name).

    ``keywords`` are the keyword sizes (``size k`` declarations), by keyword name.
    """
    if isinstance(tensors, Mapping):
        missing = [spec.name for spec in network.inputs if spec.name not in tensors]
        if missing:
            raise TnCallError(f"dense reference of '{network.name}': missing tensor(s) {', '.join(missing)}", network.span)
        args = [tensors[spec.name] for spec in network.inputs]
    else:
        args = list(tensors)
        if len(args) != len(network.inputs):
            raise TnCallError(
                f"dense reference of '{network.name}': expected {len(network.inputs)} tensors, got {len(args)}",
                network.span,
            )
    for spec, value in zip(network.inputs, args):
        if value.dim() != len(spec.axes):
            raise TnCallError(
                f"dense reference of '{network.name}': argument '{spec.name}' needs {len(spec.axes)} axes, "
                f"got shape {tuple(value.shape)}",
                network.span,
            )
    values, unknown = solve(network, [tuple(t.shape) for t in args], dict(keywords or {}))
    if unknown:
        raise TnCallError(f"dense reference of '{network.name}': unknown sizes {', '.join(unknown)}", network.span)
    sizes = sizes_of(values)
    dtype, device = promote([value for spec, value in zip(network.inputs, args) if not spec.target])
    by_name = {spec.name: value.to(dtype) for spec, value in zip(network.inputs, args) if not spec.target}
    indices = {spec.name: value for spec, value in zip(network.inputs, args) if spec.target}

    legs = network.output_legs
    flat = tuple(sizes[leg] for leg in legs)
    total = torch.zeros(flat, dtype=dtype, device=device)
    for term in network.terms:
        total = total + _term(term, network, by_name, indices, sizes, dtype, device, legs)
    grouped = tuple(math.prod(sizes[leg] for leg in group) for group in network.output)
    return total.reshape(grouped)


def _term(term: Term, network: Network, by_name, indices, sizes, dtype, device, legs) -> torch.Tensor:
    operands: list[torch.Tensor] = []
    labels: list[tuple[str, ...]] = []
    for tensor in term.tensors:
        if tensor.kind is Kind.INPUT:
            # split grouped axes into the legs this use names (labels differ per use)
            operands.append(by_name[tensor.name].reshape(tuple(sizes[leg] for leg in tensor.legs)))
        elif tensor.kind is Kind.INDEX:  # the one-hot selection tensor, materialized
            classes = math.prod(sizes[leg] for leg in network.input(tensor.name).target)
            one_hot = torch.nn.functional.one_hot(indices[tensor.name].long(), classes).to(dtype)
            operands.append(one_hot.reshape(tuple(sizes[leg] for leg in tensor.legs)))
        else:
            try:
                operands.append(constant_value(network, tensor, sizes, dtype, device))
            except ValueError as error:
                raise TnCallError(f"in '{network.name}': {error}", tensor.span) from None
        labels.append(tensor.legs)
    present = {label for group in labels for label in group}
    keep = tuple(label for label in legs if label in present)
    if operands:
        equation = einsum_equation(labels, keep, symbol=oe.get_symbol)
        value = oe.contract(equation, *operands, backend="torch")
    else:
        value = torch.ones((), dtype=dtype, device=device)
    coeff = term.coeff.evaluate(sizes)
    if coeff != 1.0:  # as the compiled code: an integral coefficient keeps an integer dtype
        value = value * (int(coeff) if coeff.is_integer() and abs(coeff) < 2**53 else coeff)
    # broadcast along the output legs the term lacks
    index = tuple(slice(None) if label in present else None for label in legs)
    value = value[index] if index else value
    return value.expand(tuple(sizes[label] for label in legs))

"""The convolution gallery: every program loads, documents itself and passes ``tndsl check``.

Also: float32 runs, N = 1, 2, 3 coverage, and KFAC-reduce for transpose convolution against
an explicit unfold-based reference (F.unfold of the zero-stuffed input, kernel flipped).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndsl
from tndsl.tools.check import check_file, format_table, parse_check_lines

GALLERY = Path(__file__).resolve().parent.parent / "gallery"

#: The convolution gallery (issue 3): one file per op.
CONV_FILES = (
    "conv.tn",
    "conv_groups.tn",
    "conv_depthwise.tn",
    "patchify.tn",
    "downsample.tn",
    "unfold.tn",
    "conv_transpose.tn",
    "conv_transpose_unfold.tn",
    "conv_input_vjp.tn",
    "conv_weight_vjp.tn",
    "conv_input_jvp.tn",
    "conv_weight_jvp.tn",
    "kfc.tn",
    "kfac_reduce.tn",
    "conv_transpose_kfac_reduce.tn",
    "ggn_diagonal.tn",
)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")



def test_gallery_has_at_least_twelve_convolution_programs():
    assert len(CONV_FILES) >= 12
    for name in CONV_FILES:
        assert (GALLERY / name).is_file(), name


@pytest.mark.parametrize("path", sorted(GALLERY.glob("*.tn")), ids=lambda p: p.name)
def test_every_gallery_file_loads(path: Path):
    program = tndsl.load(path)
    assert list(program), f"{path.name} defines nothing"


@pytest.mark.parametrize("name", CONV_FILES)
def test_header_says_what_where_and_which_pytorch_call(name: str):
    text = (GALLERY / name).read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert header and header[0].startswith(f"# {name} — "), "first line: '# FILE — what it is'"
    joined = "\n".join(header)
    for key in ("What:", "Where:", "PyTorch:"):
        assert key in joined, f"{name}: header lacks {key!r}"
    assert re.search(r"torch\.|none", joined.split("PyTorch:", 1)[1]), "PyTorch: names a call or says none exists"


@pytest.mark.parametrize("name", CONV_FILES)
def test_check_float64(name: str):
    rows = check_file(GALLERY / name)
    assert rows and all(row.passed for row in rows), format_table(rows)
    assert all(row.dense_error is not None for row in rows)


@pytest.mark.parametrize("name", CONV_FILES)
def test_check_float32(name: str):
    rows = check_file(GALLERY / name, dtype=torch.float32)
    assert rows and all(row.passed for row in rows), format_table(rows)


@pytest.mark.parametrize("name", CONV_FILES)
def test_every_definition_has_a_pytorch_reference_and_all_dimensions(name: str):
    program = tndsl.load(GALLERY / name)
    specs = parse_check_lines(program.text, name)
    assert sorted(spec.definition for spec in specs) == sorted(program)
    references = [spec.reference for spec in specs]
    assert "dense" not in references  # every conv op has a PyTorch reference
    # the main op of the file exists for N = 1, 2, 3 (patchify adds a 2-d patch view)
    dims = {re.search(r"([123])d$", ref).group(1) for ref in references}
    assert dims == {"1", "2", "3"}


# -- KFAC-reduce for transpose convolution vs an explicit unfold-based reference -----------
def _transpose_unfold_via_zero_stuffing(x, kernel, stride, padding, output_padding, dilation):
    """The transpose convolution's unfolded input, from F.unfold of the zero-stuffed input.

    conv_transpose(X, W)[i] = Σ_k Z[i + p − k·d] W[k] with Z the input with stride − 1 zeros
    between entries. Padding Z by L = d(K−1) − p on the left and L + output_padding on the
    right makes it a stride-1 correlation with the flipped kernel: F.unfold's patch entry k'
    is kernel position K − 1 − k'.
    """
    n, c, o1, o2 = x.shape
    k1, k2 = kernel
    z = x.new_zeros(n, c, (o1 - 1) * stride + 1, (o2 - 1) * stride + 1)
    z[:, :, ::stride, ::stride] = x
    l1, l2 = dilation * (k1 - 1) - padding, dilation * (k2 - 1) - padding
    z = F.pad(z, (l2, l2 + output_padding, l1, l1 + output_padding))  # negative pads crop
    patches = F.unfold(z, (k1, k2), dilation=dilation)  # [n, c·k1·k2, I1·I2]
    patches = patches.reshape(n, c, k1, k2, -1).flip(2, 3)
    return patches.reshape(n, c * k1 * k2, -1)


def _kfac_reduce_reference(x, kernel, stride, padding, output_padding, dilation, groups):
    u = _transpose_unfold_via_zero_stuffing(x, kernel, stride, padding, output_padding, dilation)
    n, rows, columns = u.shape
    mean = u.reshape(n, groups, rows // groups, columns).mean(dim=3)  # average over output pixels
    return torch.einsum("nga,ngb->gab", mean, mean) / n


def _with_pattern(network, **params):
    spec = tndsl.PatternSpec.create(**params)
    return tndsl.Function(dataclasses.replace(network, patterns=(("P", spec),)))


@pytest.mark.parametrize(
    "stride, padding, output_padding, dilation, kernel, groups",
    [
        (2, 1, 1, 2, (3, 2), 2),  # the file's own parameters
        (1, 0, 0, 1, (3, 3), 1),
        (2, 0, 0, 1, (2, 2), 1),  # dense: kernel = stride
        (3, 0, 2, 1, (2, 1), 2),  # stride > kernel
        (3, 2, 1, 2, (3, 2), 4),  # depthwise (4 channels, 4 groups)
        (2, 2, 1, 1, (2, 3), 1),  # padding > d(K-1): the zero-stuffed input is cropped
    ],
)
def test_conv_transpose_kfac_reduce_vs_unfold_of_zero_stuffed_input(stride, padding, output_padding, dilation, kernel, groups):
    program = tndsl.load(GALLERY / "conv_transpose_kfac_reduce.tn")
    function = _with_pattern(
        program.networks["Omega2"], stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 4, 5, generator=generator, dtype=torch.float64)
    value = function(x, g=groups, k1=kernel[0], k2=kernel[1])
    expected = _kfac_reduce_reference(x, kernel, stride, padding, output_padding, dilation, groups)
    assert value.shape == expected.shape
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    # the unfold itself, as laid out in the file (groups inside the channel axis)
    unfold = _with_pattern(
        program.networks["U2"], stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    u = unfold(x, g=groups, k1=kernel[0], k2=kernel[1])
    torch.testing.assert_close(
        u, _transpose_unfold_via_zero_stuffing(x, kernel, stride, padding, output_padding, dilation), rtol=0, atol=0
    )


def test_zero_stuffing_reference_is_the_transpose_convolution():
    """Sanity of the test's own reference: W_mat @ U equals F.conv_transpose2d."""
    generator = torch.Generator().manual_seed(3)
    for stride, padding, op, dilation in itertools.product((1, 2, 3), (0, 1, 2), (0, 1), (1, 2)):
        sizes = [(o - 1) * stride - 2 * padding + dilation * (k - 1) + 1 + op for o, k in ((4, 3), (3, 2))]
        if op >= stride or min(sizes) < 1:
            continue
        x = torch.randn(2, 3, 4, 3, generator=generator, dtype=torch.float64)
        w = torch.randn(3, 2, 3, 2, generator=generator, dtype=torch.float64)
        y = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=op, dilation=dilation)
        u = _transpose_unfold_via_zero_stuffing(x, (3, 2), stride, padding, op, dilation)
        ours = torch.einsum("ca,nal->ncl", w.permute(1, 0, 2, 3).reshape(2, -1), u).reshape(y.shape)
        torch.testing.assert_close(ours, y, rtol=1e-10, atol=1e-12)

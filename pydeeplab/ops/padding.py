"""Output size and padding of windowed operators (conv, depthwise conv, pooling).

These are TFLite's ``ComputeOutSize`` and ``ComputePaddingHeightWidth``
(tensorflow/lite/kernels/padding.h), which match TensorFlow's
``GetWindowedOutputSize``:

- SAME:  ``out = ceil(in / stride)``
- VALID: ``out = (in + stride - effective_filter) / stride`` (C division)

where ``effective_filter = (filter - 1) * dilation + 1``. The padding is the
total ``(out - 1) * stride + effective_filter - in`` (at least 0), of which
``total // 2`` goes before (top/left) and the rest after; the reference
kernels only ever use the "before" amount and skip taps that fall outside the
input, so an extra odd pixel of padding always lands at the bottom/right.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tflite.schema import Padding


#: The largest dilation factor or pooling window TFLite accepts (INT16_MAX, as its
#: depthwise_conv.cc checks); beyond it a window only covers padding.
MAX_WINDOW = 32767

def _c_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as C's ``/`` on ints."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def compute_out_size(padding: Padding, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """The output extent of one spatial dimension (TFLite ``ComputeOutSize``).

    Returns 0 for a zero stride, as TFLite does; the VALID size can be zero or
    negative when the (dilated) filter is larger than the input, which callers
    must reject.
    """
    effective = (filter_size - 1) * dilation + 1
    if stride == 0:
        return 0
    if padding == Padding.SAME:
        return _c_div(in_size + stride - 1, stride)
    if padding == Padding.VALID:
        return _c_div(in_size + stride - effective, stride)
    return 0


@dataclass(frozen=True)
class PaddingValues:
    """The output size and the padding of one spatial dimension.

    ``before`` is TFLite's ``padding_values.height`` (or ``.width``), the number of
    implicit zeros before the first input element; ``after`` the number after
    the last one that the last window reaches (``before + offset`` in TFLite's
    terms, where ``offset`` is the odd remainder of the total).
    """

    out: int
    before: int
    after: int


def compute_padding(padding: Padding, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> PaddingValues:
    """Output size and padding of one dimension (TFLite ``ComputePaddingWithOffset``)."""
    out = compute_out_size(padding, in_size, filter_size, stride, dilation)
    effective = (filter_size - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    # C's total / 2 and total % 2 on a non-negative total are Python's // and %.
    return PaddingValues(out=out, before=total // 2, after=total // 2 + total % 2)


def compute_padding_hw(
    padding: Padding,
    in_hw: tuple[int, int],
    filter_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    dilation_hw: tuple[int, int] = (1, 1),
) -> tuple[PaddingValues, PaddingValues]:
    """Height and width padding of a 2-D window (TFLite ``ComputePaddingHeightWidth``)."""
    return (
        compute_padding(padding, in_hw[0], filter_hw[0], stride_hw[0], dilation_hw[0]),
        compute_padding(padding, in_hw[1], filter_hw[1], stride_hw[1], dilation_hw[1]),
    )

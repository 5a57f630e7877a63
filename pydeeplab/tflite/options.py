"""Builtin operator options as typed, frozen dataclasses.

Each options table of ``schema.fbs`` that pydeeplab understands is a dataclass
whose fields are declared in schema slot order with ``slot(kind, default)``.
The reader and the writer both walk these declarations, so a field's slot and
encoding are stated exactly once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .schema import Activation, BuiltinOperator, BuiltinOptionsType, MirrorPadMode, Padding, TensorType

#: struct formats of the scalar field kinds; "vector:int32" is a vector of int32.
SCALAR_KINDS = {"bool": "<?", "int8": "<b", "int32": "<i", "float32": "<f"}


def slot(kind: str, default, enum_type=None):
    """Declare an options field: its flatbuffer encoding, default and optional enum type."""
    return dataclasses.field(default=default, metadata={"kind": kind, "enum": enum_type})


@dataclass(frozen=True)
class Conv2DOptions:
    padding: Padding = slot("int8", Padding.SAME, Padding)
    stride_w: int = slot("int32", 0)
    stride_h: int = slot("int32", 0)
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    dilation_w_factor: int = slot("int32", 1)
    dilation_h_factor: int = slot("int32", 1)
    quantized_bias_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class DepthwiseConv2DOptions:
    padding: Padding = slot("int8", Padding.SAME, Padding)
    stride_w: int = slot("int32", 0)
    stride_h: int = slot("int32", 0)
    depth_multiplier: int = slot("int32", 0)
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    dilation_w_factor: int = slot("int32", 1)
    dilation_h_factor: int = slot("int32", 1)


@dataclass(frozen=True)
class Pool2DOptions:
    padding: Padding = slot("int8", Padding.SAME, Padding)
    stride_w: int = slot("int32", 0)
    stride_h: int = slot("int32", 0)
    filter_width: int = slot("int32", 0)
    filter_height: int = slot("int32", 0)
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)


@dataclass(frozen=True)
class FullyConnectedOptions:
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    weights_format: int = slot("int8", 0)
    keep_num_dims: bool = slot("bool", False)
    asymmetric_quantize_inputs: bool = slot("bool", False)
    quantized_bias_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class SoftmaxOptions:
    beta: float = slot("float32", 0.0)


@dataclass(frozen=True)
class ConcatenationOptions:
    axis: int = slot("int32", 0)
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)


@dataclass(frozen=True)
class AddOptions:
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    pot_scale_int16: bool = slot("bool", True)


@dataclass(frozen=True)
class SubOptions:
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    pot_scale_int16: bool = slot("bool", True)


@dataclass(frozen=True)
class MulOptions:
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)


@dataclass(frozen=True)
class ResizeBilinearOptions:
    new_height: int = slot("int32", 0)  # deprecated in the schema; the size comes from input 1
    new_width: int = slot("int32", 0)
    align_corners: bool = slot("bool", False)
    half_pixel_centers: bool = slot("bool", False)


@dataclass(frozen=True)
class ResizeNearestNeighborOptions:
    align_corners: bool = slot("bool", False)
    half_pixel_centers: bool = slot("bool", False)


@dataclass(frozen=True)
class ReshapeOptions:
    new_shape: tuple[int, ...] | None = slot("vector:int32", None)


@dataclass(frozen=True)
class SqueezeOptions:
    squeeze_dims: tuple[int, ...] | None = slot("vector:int32", None)


@dataclass(frozen=True)
class ReducerOptions:
    keep_dims: bool = slot("bool", False)


@dataclass(frozen=True)
class ArgMaxOptions:
    output_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class ArgMinOptions:
    output_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class TransposeConvOptions:
    padding: Padding = slot("int8", Padding.SAME, Padding)
    stride_w: int = slot("int32", 0)
    stride_h: int = slot("int32", 0)
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)
    quantized_bias_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class StridedSliceOptions:
    begin_mask: int = slot("int32", 0)
    end_mask: int = slot("int32", 0)
    ellipsis_mask: int = slot("int32", 0)
    new_axis_mask: int = slot("int32", 0)
    shrink_axis_mask: int = slot("int32", 0)
    offset: bool = slot("bool", False)


@dataclass(frozen=True)
class DivOptions:
    fused_activation_function: Activation = slot("int8", Activation.NONE, Activation)


@dataclass(frozen=True)
class SpaceToDepthOptions:
    block_size: int = slot("int32", 0)


@dataclass(frozen=True)
class DepthToSpaceOptions:
    block_size: int = slot("int32", 0)


@dataclass(frozen=True)
class GatherOptions:
    axis: int = slot("int32", 0)
    batch_dims: int = slot("int32", 0)


@dataclass(frozen=True)
class CastOptions:
    in_data_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)
    out_data_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)


@dataclass(frozen=True)
class ShapeOptions:
    out_type: TensorType = slot("int8", TensorType.FLOAT32, TensorType)  # FLOAT32 (0) means "not set": int32


@dataclass(frozen=True)
class PackOptions:
    values_count: int = slot("int32", 0)
    axis: int = slot("int32", 0)


@dataclass(frozen=True)
class UnpackOptions:
    num: int = slot("int32", 0)
    axis: int = slot("int32", 0)


@dataclass(frozen=True)
class LeakyReluOptions:
    alpha: float = slot("float32", 0.0)


@dataclass(frozen=True)
class SplitOptions:
    num_splits: int = slot("int32", 0)


@dataclass(frozen=True)
class SplitVOptions:
    num_splits: int = slot("int32", 0)


@dataclass(frozen=True)
class MirrorPadOptions:
    mode: MirrorPadMode = slot("int8", MirrorPadMode.REFLECT, MirrorPadMode)


@dataclass(frozen=True)
class BatchMatMulOptions:
    adj_x: bool = slot("bool", False)
    adj_y: bool = slot("bool", False)
    asymmetric_quantize_inputs: bool = slot("bool", False)


@dataclass(frozen=True)
class GeluOptions:
    approximate: bool = slot("bool", False)


@dataclass(frozen=True)
class EmptyOptions:
    """An options table with no fields (PAD, TILE, QUANTIZE, ...)."""


#: union type -> dataclass, for every options table we parse.
OPTIONS_CLASSES: dict[BuiltinOptionsType, type] = {
    BuiltinOptionsType.Conv2DOptions: Conv2DOptions,
    BuiltinOptionsType.DepthwiseConv2DOptions: DepthwiseConv2DOptions,
    BuiltinOptionsType.Pool2DOptions: Pool2DOptions,
    BuiltinOptionsType.FullyConnectedOptions: FullyConnectedOptions,
    BuiltinOptionsType.SoftmaxOptions: SoftmaxOptions,
    BuiltinOptionsType.ConcatenationOptions: ConcatenationOptions,
    BuiltinOptionsType.AddOptions: AddOptions,
    BuiltinOptionsType.ResizeBilinearOptions: ResizeBilinearOptions,
    BuiltinOptionsType.ReshapeOptions: ReshapeOptions,
    BuiltinOptionsType.MulOptions: MulOptions,
    BuiltinOptionsType.PadOptions: EmptyOptions,
    BuiltinOptionsType.BatchToSpaceNDOptions: EmptyOptions,
    BuiltinOptionsType.SpaceToBatchNDOptions: EmptyOptions,
    BuiltinOptionsType.ReducerOptions: ReducerOptions,
    BuiltinOptionsType.SubOptions: SubOptions,
    BuiltinOptionsType.SqueezeOptions: SqueezeOptions,
    BuiltinOptionsType.StridedSliceOptions: StridedSliceOptions,
    BuiltinOptionsType.DequantizeOptions: EmptyOptions,
    BuiltinOptionsType.ArgMaxOptions: ArgMaxOptions,
    BuiltinOptionsType.TransposeConvOptions: TransposeConvOptions,
    BuiltinOptionsType.TileOptions: EmptyOptions,
    BuiltinOptionsType.ResizeNearestNeighborOptions: ResizeNearestNeighborOptions,
    BuiltinOptionsType.QuantizeOptions: EmptyOptions,
    BuiltinOptionsType.HardSwishOptions: EmptyOptions,
    BuiltinOptionsType.SpaceToDepthOptions: SpaceToDepthOptions,
    BuiltinOptionsType.DepthToSpaceOptions: DepthToSpaceOptions,
    BuiltinOptionsType.GatherOptions: GatherOptions,
    BuiltinOptionsType.TransposeOptions: EmptyOptions,
    BuiltinOptionsType.DivOptions: DivOptions,
    BuiltinOptionsType.ExpOptions: EmptyOptions,
    BuiltinOptionsType.LogSoftmaxOptions: EmptyOptions,
    BuiltinOptionsType.CastOptions: CastOptions,
    BuiltinOptionsType.MaximumMinimumOptions: EmptyOptions,
    BuiltinOptionsType.ShapeOptions: ShapeOptions,
    BuiltinOptionsType.PackOptions: PackOptions,
    BuiltinOptionsType.UnpackOptions: UnpackOptions,
    BuiltinOptionsType.LeakyReluOptions: LeakyReluOptions,
    BuiltinOptionsType.SquaredDifferenceOptions: EmptyOptions,
    BuiltinOptionsType.SplitOptions: SplitOptions,
    BuiltinOptionsType.SplitVOptions: SplitVOptions,
    BuiltinOptionsType.SliceOptions: EmptyOptions,
    BuiltinOptionsType.ExpandDimsOptions: EmptyOptions,
    BuiltinOptionsType.MirrorPadOptions: MirrorPadOptions,
    BuiltinOptionsType.GeluOptions: GeluOptions,
    BuiltinOptionsType.BatchMatMulOptions: BatchMatMulOptions,
    BuiltinOptionsType.ArgMinOptions: ArgMinOptions,
    BuiltinOptionsType.AbsOptions: EmptyOptions,
    BuiltinOptionsType.NegOptions: EmptyOptions,
    BuiltinOptionsType.SquareOptions: EmptyOptions,
    BuiltinOptionsType.PowOptions: EmptyOptions,
    BuiltinOptionsType.BroadcastToOptions: EmptyOptions,
    BuiltinOptionsType.SignOptions: EmptyOptions,
    BuiltinOptionsType.LogicalNotOptions: EmptyOptions,
    BuiltinOptionsType.CosOptions: EmptyOptions,
    BuiltinOptionsType.GatherNdOptions: EmptyOptions,
    BuiltinOptionsType.EqualOptions: EmptyOptions,
    BuiltinOptionsType.NotEqualOptions: EmptyOptions,
    BuiltinOptionsType.LessOptions: EmptyOptions,
    BuiltinOptionsType.LessEqualOptions: EmptyOptions,
    BuiltinOptionsType.GreaterOptions: EmptyOptions,
    BuiltinOptionsType.GreaterEqualOptions: EmptyOptions,
    BuiltinOptionsType.SelectOptions: EmptyOptions,
    BuiltinOptionsType.SelectV2Options: EmptyOptions,
}

#: operator -> the options union type its builtin_options must carry (absent: NONE is fine).
OPERATOR_OPTIONS: dict[BuiltinOperator, BuiltinOptionsType] = {
    BuiltinOperator.CONV_2D: BuiltinOptionsType.Conv2DOptions,
    BuiltinOperator.DEPTHWISE_CONV_2D: BuiltinOptionsType.DepthwiseConv2DOptions,
    BuiltinOperator.AVERAGE_POOL_2D: BuiltinOptionsType.Pool2DOptions,
    BuiltinOperator.MAX_POOL_2D: BuiltinOptionsType.Pool2DOptions,
    BuiltinOperator.FULLY_CONNECTED: BuiltinOptionsType.FullyConnectedOptions,
    BuiltinOperator.SOFTMAX: BuiltinOptionsType.SoftmaxOptions,
    BuiltinOperator.CONCATENATION: BuiltinOptionsType.ConcatenationOptions,
    BuiltinOperator.ADD: BuiltinOptionsType.AddOptions,
    BuiltinOperator.SUB: BuiltinOptionsType.SubOptions,
    BuiltinOperator.MUL: BuiltinOptionsType.MulOptions,
    BuiltinOperator.RESIZE_BILINEAR: BuiltinOptionsType.ResizeBilinearOptions,
    BuiltinOperator.RESIZE_NEAREST_NEIGHBOR: BuiltinOptionsType.ResizeNearestNeighborOptions,
    BuiltinOperator.RESHAPE: BuiltinOptionsType.ReshapeOptions,
    BuiltinOperator.SQUEEZE: BuiltinOptionsType.SqueezeOptions,
    BuiltinOperator.MEAN: BuiltinOptionsType.ReducerOptions,
    BuiltinOperator.SUM: BuiltinOptionsType.ReducerOptions,
    BuiltinOperator.REDUCE_MAX: BuiltinOptionsType.ReducerOptions,
    BuiltinOperator.ARG_MAX: BuiltinOptionsType.ArgMaxOptions,
    BuiltinOperator.TRANSPOSE_CONV: BuiltinOptionsType.TransposeConvOptions,
    BuiltinOperator.STRIDED_SLICE: BuiltinOptionsType.StridedSliceOptions,
    BuiltinOperator.PAD: BuiltinOptionsType.PadOptions,
    BuiltinOperator.SPACE_TO_BATCH_ND: BuiltinOptionsType.SpaceToBatchNDOptions,
    BuiltinOperator.BATCH_TO_SPACE_ND: BuiltinOptionsType.BatchToSpaceNDOptions,
    BuiltinOperator.TILE: BuiltinOptionsType.TileOptions,
    BuiltinOperator.QUANTIZE: BuiltinOptionsType.QuantizeOptions,
    BuiltinOperator.DEQUANTIZE: BuiltinOptionsType.DequantizeOptions,
    BuiltinOperator.HARD_SWISH: BuiltinOptionsType.HardSwishOptions,
    BuiltinOperator.SPACE_TO_DEPTH: BuiltinOptionsType.SpaceToDepthOptions,
    BuiltinOperator.DEPTH_TO_SPACE: BuiltinOptionsType.DepthToSpaceOptions,
    BuiltinOperator.GATHER: BuiltinOptionsType.GatherOptions,
    BuiltinOperator.TRANSPOSE: BuiltinOptionsType.TransposeOptions,
    BuiltinOperator.DIV: BuiltinOptionsType.DivOptions,
    BuiltinOperator.EXP: BuiltinOptionsType.ExpOptions,
    BuiltinOperator.LOG_SOFTMAX: BuiltinOptionsType.LogSoftmaxOptions,
    BuiltinOperator.CAST: BuiltinOptionsType.CastOptions,
    BuiltinOperator.MAXIMUM: BuiltinOptionsType.MaximumMinimumOptions,
    BuiltinOperator.MINIMUM: BuiltinOptionsType.MaximumMinimumOptions,
    BuiltinOperator.SHAPE: BuiltinOptionsType.ShapeOptions,
    BuiltinOperator.PACK: BuiltinOptionsType.PackOptions,
    BuiltinOperator.UNPACK: BuiltinOptionsType.UnpackOptions,
    BuiltinOperator.LEAKY_RELU: BuiltinOptionsType.LeakyReluOptions,
    BuiltinOperator.SQUARED_DIFFERENCE: BuiltinOptionsType.SquaredDifferenceOptions,
    BuiltinOperator.SPLIT: BuiltinOptionsType.SplitOptions,
    BuiltinOperator.SPLIT_V: BuiltinOptionsType.SplitVOptions,
    BuiltinOperator.SLICE: BuiltinOptionsType.SliceOptions,
    BuiltinOperator.EXPAND_DIMS: BuiltinOptionsType.ExpandDimsOptions,
    BuiltinOperator.MIRROR_PAD: BuiltinOptionsType.MirrorPadOptions,
    BuiltinOperator.GELU: BuiltinOptionsType.GeluOptions,
    BuiltinOperator.BATCH_MATMUL: BuiltinOptionsType.BatchMatMulOptions,
    BuiltinOperator.ARG_MIN: BuiltinOptionsType.ArgMinOptions,
    BuiltinOperator.REDUCE_MIN: BuiltinOptionsType.ReducerOptions,
    BuiltinOperator.ABS: BuiltinOptionsType.AbsOptions,
    BuiltinOperator.NEG: BuiltinOptionsType.NegOptions,
    BuiltinOperator.SQUARE: BuiltinOptionsType.SquareOptions,
    BuiltinOperator.POW: BuiltinOptionsType.PowOptions,
    BuiltinOperator.BROADCAST_TO: BuiltinOptionsType.BroadcastToOptions,
    BuiltinOperator.SIGN: BuiltinOptionsType.SignOptions,
    BuiltinOperator.LOGICAL_NOT: BuiltinOptionsType.LogicalNotOptions,
    BuiltinOperator.COS: BuiltinOptionsType.CosOptions,
    BuiltinOperator.GATHER_ND: BuiltinOptionsType.GatherNdOptions,
    BuiltinOperator.EQUAL: BuiltinOptionsType.EqualOptions,
    BuiltinOperator.NOT_EQUAL: BuiltinOptionsType.NotEqualOptions,
    BuiltinOperator.LESS: BuiltinOptionsType.LessOptions,
    BuiltinOperator.LESS_EQUAL: BuiltinOptionsType.LessEqualOptions,
    BuiltinOperator.GREATER: BuiltinOptionsType.GreaterOptions,
    BuiltinOperator.GREATER_EQUAL: BuiltinOptionsType.GreaterEqualOptions,
    BuiltinOperator.SELECT: BuiltinOptionsType.SelectOptions,
    BuiltinOperator.SELECT_V2: BuiltinOptionsType.SelectV2Options,
}


def default_options(op: BuiltinOperator):
    """The options an operator has when its model stores none (all schema defaults)."""
    union = OPERATOR_OPTIONS.get(op)
    return OPTIONS_CLASSES[union]() if union is not None else None


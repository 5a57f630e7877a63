"""The ``tflite_runtime.interpreter.Interpreter`` API on pydeeplab's executor.

``allocate_tensors`` plans the graph once: it propagates shapes, prepares every
operator (options checked, constants such as padding and quantized multipliers
computed, weights re-arranged), works out each intermediate tensor's lifetime,
and places all activations in one arena so that tensors whose lifetimes do not
overlap share memory. ``invoke`` then only loops over ready-made closures.
"""

from __future__ import annotations

import enum
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np

from .backends import resolve_backend
from .compiling import compile_helper
from .delegate import Delegate, load_delegate  # noqa: F401  (LiteRT's module has them: a drop-in for it)
from .errors import ModelError, UnsupportedOperatorError
from .folding import fold
from .fusion import (Fusion, HardSwish, ResizeArgMax, ResizeDequantize, affine_fusions, atrous_chains, conv_adds,
                     multiply_adds, plan_fusions, pooled_projections, squeeze_excites)
from .ops import REGISTRY, OpContext, TensorSpec
from .ops.base import Prepare, Prepared, Run
from .ops.custom import check_custom_op, lookup_custom_op
from .replay import Replays
from .signature import SignatureRunner
from .tflite.model import Model, Operator, Tensor
from .tflite.reader import model_file_bytes, read_model
from .threads import blas_threads, keep_workers_apart, start_numba_threads
from .tflite.schema import Activation, BuiltinOperator, tensor_type_of

#: Refuse plans whose activations need more than this (a corrupt shape, not a real model).
MAX_ARENA_BYTES = 8 << 30
_ALIGN = 64


@enum.unique
class OpResolverType(enum.Enum):
    """LiteRT's choice of kernel set, accepted for compatibility.

    pydeeplab has one kernel set per backend, so every value runs the same kernels:
    integer operators are bit-identical to LiteRT's ``BUILTIN_REF`` whatever is
    chosen, float operators within the numerical contract of all of them. Values of
    LiteRT's own ``OpResolverType`` are accepted too (matched by name).
    """

    AUTO = 0
    BUILTIN = 1
    BUILTIN_REF = 2
    BUILTIN_WITHOUT_DEFAULT_DELEGATES = 3


def _op_resolver_type(value) -> OpResolverType:
    """``value`` as our OpResolverType, refused as LiteRT refuses what it does not know."""
    if isinstance(value, OpResolverType):
        return value
    foreign = isinstance(value, enum.Enum) and type(value).__name__ == "OpResolverType"
    if foreign and value.name in OpResolverType.__members__:
        return OpResolverType[value.name]
    raise ValueError(f"Unrecognized passed in op resolver type: {value}. "
                     f"Pass one of pydeeplab.OpResolverType: {', '.join(OpResolverType.__members__)}")


#: LiteRT's words when an array handed out by ``tensor()`` is still alive (user code matches on them).
_HELD_VIEW_MESSAGE = (
    "There is at least 1 reference to internal data in the interpreter in the form of a numpy array or "
    "slice. Be sure to only hold the function returned from tensor() if you are using raw data access. "
    "(pydeeplab: {what} would move or overwrite the tensors such an array shows; delete it first.)"
)


class _ViewToken:
    """Referenced by every array :meth:`Interpreter.tensor` hands out, so its reference count tells
    whether any such array (or a slice of one) is still alive: LiteRT's own check, where the
    arrays' base is its wrapper object and ``sys.getrefcount(wrapper) == 2`` means none is."""


class _TensorView:
    """The owner (NumPy ``base``) of one handed-out array: exposes the tensor's memory and holds the token."""

    def __init__(self, array: np.ndarray, token: _ViewToken):
        self.__array_interface__ = array.__array_interface__
        self._array = array  # keeps the arena alive as long as the view
        self._token = token


class InterpreterStateError(RuntimeError, ValueError):
    """A call out of order (e.g. invoke before allocate_tensors).

    tflite_runtime raises RuntimeError for some of these and ValueError for
    others; this is both, so either ``except`` clause catches it.
    """


@dataclass
class _Step:
    """One planned operator: what invoke runs."""

    index: int
    opcode: BuiltinOperator
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    run: Run
    folded: bool = False  # computed once at plan time (all inputs constant): not run by invoke
    unfused_run: Run | None = None  # a fused producer's own run (pydeeplab.fusion), for run_op
    # The arrays run() reads and writes, bound once the arena is placed.
    in_arrays: list[np.ndarray | None] = field(default_factory=list)
    out_arrays: list[np.ndarray] = field(default_factory=list)


class Interpreter:
    """Runs a TFLite model with pydeeplab's kernels; a drop-in for tflite_runtime's Interpreter.

    Args:
        model_path: path of a ``.tflite`` file; or
        model_content: the model's bytes.
        num_threads: threads for the Numba kernels (default: all cores Numba sees); an int >= 1.
        experimental_op_resolver_type: a :class:`OpResolverType`, validated as LiteRT does; every
            value runs pydeeplab's one kernel set (integer results are those of ``BUILTIN_REF``).
        experimental_preserve_all_tensors: keep every intermediate tensor readable after
            invoke (no memory reuse), as TFLite does with the same flag.
        experimental_delegates: delegates are ignored with a warning: a delegate changes where
            a graph runs, not what it computes, so the model runs on pydeeplab's kernels instead
            (a model that cannot run without its delegate, such as an Edge TPU graph, is refused
            for its custom operator). ``pydeeplab.load_delegate`` loads none (see there).
        experimental_disable_delegate_clustering, experimental_default_delegate_latest_features,
        experimental_compress_quantization_zero_points, experimental_disable_delegate_node_fusion,
        experimental_force_delegate_node_profiling: LiteRT's delegate and storage switches,
            accepted for compatibility; they do not change what pydeeplab computes.
        backend: ``"auto"`` (the default: Numba when it loads, else NumPy with one warning,
            see :mod:`pydeeplab.backends`), ``"numba"`` (fast JIT kernels; fails if Numba
            cannot load) or ``"numpy"`` (the readable reference). ``self.backend`` is the one chosen.
        custom_ops: implementations of custom operators for this interpreter only,
            ``{custom_code: prepare}``; they take precedence over those registered with
            :func:`pydeeplab.register_custom_op` (see docs/custom_ops.md).

    Models with several signatures have several subgraphs: :meth:`invoke` runs subgraph 0,
    as LiteRT does; :meth:`get_signature_runner` runs the subgraph its signature names.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        model_content: bytes | None = None,
        experimental_delegates=None,
        num_threads: int | None = None,
        experimental_op_resolver_type=OpResolverType.AUTO,
        experimental_preserve_all_tensors: bool = False,
        experimental_disable_delegate_clustering: bool = False,
        experimental_default_delegate_latest_features: bool = False,
        experimental_compress_quantization_zero_points: bool = False,
        experimental_disable_delegate_node_fusion: bool = False,
        experimental_force_delegate_node_profiling: bool = False,
        *,
        backend: str = "auto",
        custom_ops: Mapping[str, Prepare] | None = None,
    ):
        resolved = resolve_backend(backend)  # ValueError for an unknown name, before the model is read
        self.op_resolver_type = _op_resolver_type(experimental_op_resolver_type)
        if num_threads is not None:  # LiteRT's checks and words (bool passes, as it is an int)
            if not isinstance(num_threads, int):
                raise ValueError(f"type of num_threads should be int, not {type(num_threads).__name__}")
            if num_threads < 1:
                raise ValueError(f"num_threads should >= 1, got {num_threads}")
        # LiteRT tests truth, not None: an empty path or empty bytes count as not given.
        path_given, content_given = _given(model_path), _given(model_content)
        if path_given and not content_given:
            self.model: Model = _load(model_path)
        elif content_given and not path_given:
            self.model = _read(model_content)
        elif not content_given and not path_given:
            raise ValueError("`model_path` or `model_content` must be specified.")
        else:
            raise ValueError("Can't both provide `model_path` and `model_content`")
        self._experimental_compress_quantization_zero_points = experimental_compress_quantization_zero_points
        self._delegates = list(experimental_delegates or [])
        if self._delegates:
            warnings.warn(f"pydeeplab ignores the {len(self._delegates)} delegate(s) passed in "
                          "(experimental_delegates): the model runs on pydeeplab's own kernels",
                          RuntimeWarning, stacklevel=2)
        self.backend = resolved
        self._custom_ops = dict(custom_ops or {})
        for name, prepare in self._custom_ops.items():
            check_custom_op(name, prepare)
        self._num_threads = num_threads
        self._preserve = experimental_preserve_all_tensors
        # For a helper process that compiles the kernels of the first run with this one (_first_run).
        self._source = (os.path.abspath(model_path), None) if path_given else (None, model_content)
        self._first_run_done = False
        self._views = _ViewToken()
        if self.backend == "numba":  # (as resolved: "auto" picks it too)
            start_numba_threads()  # before any kernel: see pydeeplab.threads (OpenMP spin count)
        self._setup(0)
        # LiteRT resolves every subgraph's operators when it builds the interpreter.
        self._subgraph_plans: dict[int, Interpreter] = {0: self}
        for k in range(1, len(self.model.subgraphs)):
            self._subgraph_plans[k] = self._plan_for_subgraph(k)

    def _setup(self, subgraph_index: int) -> None:
        """Prepare to plan subgraph ``subgraph_index`` (nothing allocated yet)."""
        self._graph = self.model.subgraphs[subgraph_index]
        self._subgraph_index = subgraph_index
        self._check_supported()
        self._shapes: list[tuple[int, ...]] = [t.shape for t in self._graph.tensors]
        self._arrays: list[np.ndarray | None] = [None] * len(self._graph.tensors)
        self._steps: list[_Step] = []
        self._program: list[_Step] = []  # the steps invoke runs: _steps without the folded ones
        self._replays: Replays | None = None  # invoke's runs of _program (numba backend, main graph)
        self._folded: dict[int, np.ndarray] = {}  # tensor -> value computed at plan time
        self._allocated = False
        self._lock = threading.RLock()

    def _plan_for_subgraph(self, k: int) -> Interpreter:
        """An executor of subgraph ``k`` of the same model, with this interpreter's settings."""
        other = object.__new__(type(self))
        for name in ("model", "op_resolver_type", "backend", "_num_threads", "_preserve", "_delegates",
                     "_experimental_compress_quantization_zero_points", "_custom_ops"):
            setattr(other, name, getattr(self, name))
        other._views = _ViewToken()  # its own arena: views of subgraph 0 do not pin it
        try:
            other._setup(k)
        except UnsupportedOperatorError as exc:
            raise UnsupportedOperatorError(f"subgraph {k} ({other.model.subgraphs[k].name!r}): {exc}") from None
        other._subgraph_plans = self._subgraph_plans
        return other

    def _subgraph(self, subgraph_index: int) -> Interpreter:
        """The executor of one subgraph (``self`` for subgraph 0), LiteRT's error when there is none."""
        n = len(self.model.subgraphs)
        if not isinstance(subgraph_index, (int, np.integer)) or not 0 <= subgraph_index < n:
            raise ValueError(f"Invalid subgraph index {subgraph_index} exceeds max subgraph index {n}")
        return self._subgraph_plans[int(subgraph_index)]

    # -- planning ------------------------------------------------------------------

    def _prepare_of(self, op) -> Prepare | None:
        """The prepare function of an operator: a builtin's, or a custom operator's implementation."""
        if op.builtin == BuiltinOperator.CUSTOM:
            return lookup_custom_op(op.code.custom_code, self._custom_ops)
        return REGISTRY.get(op.builtin)

    def _check_supported(self) -> None:
        missing: dict[str, list[int]] = {}
        custom: dict[str, list[int]] = {}
        for op in self._graph.operators:
            if self._prepare_of(op) is None:
                if op.builtin == BuiltinOperator.CUSTOM:
                    custom.setdefault(op.code.custom_code or "", []).append(op.index)
                else:
                    missing.setdefault(op.name, []).append(op.index)
        if not (missing or custom):
            return
        parts = []
        if missing:
            listing = "; ".join(f"{name} (operators {', '.join(map(str, idx))})" for name, idx in missing.items())
            parts.append(f"the model uses operators pydeeplab does not implement: {listing}")
        if custom:
            listing = "; ".join(f"CUSTOM({name}) (operators {', '.join(map(str, idx))})" for name, idx in custom.items())
            first = next(iter(custom))
            parts.append(f"the model uses custom operators that have no implementation: {listing}. "
                         f"Register one with pydeeplab.register_custom_op({first!r}, prepare) or pass "
                         f"Interpreter(..., custom_ops={{{first!r}: prepare}}); see docs/custom_ops.md")
        raise UnsupportedOperatorError("; ".join(parts))

    def allocate_tensors(self) -> None:
        """Plan the graph for the current input shapes and allocate every tensor."""
        self._ensure_safe("allocate_tensors()")
        with self._lock:
            self._allocated = False
            tensors = self._graph.tensors
            shapes = list(self._shapes)
            written = self._check_dataflow()
            for i in self._graph.inputs:  # no prepare may see a tensor larger than the plan allows
                self._check_size(tensors[i], shapes[i])
            steps = []
            folded: dict[int, np.ndarray] = {}
            as_written = self._preserve or self.backend != "numba"  # no fusion: every tensor as the graph says
            # A RELU (or HARD_SWISH) that a convolution can apply itself, or an ARG_MAX (a DEQUANTIZE)
            # that a resize can compute itself, is skipped (pydeeplab.fusion).
            fusions = {} if as_written else plan_fusions(self._graph)
            fused: list[Fusion | HardSwish | ResizeArgMax | ResizeDequantize] = []
            # A dilated conv written as SPACE_TO_BATCH_ND, conv, BATCH_TO_SPACE_ND runs as one conv.
            chains = {} if as_written else atrous_chains(self._graph)
            # A batch norm left after a float conv (MUL, ADD by per-channel constants) goes into its weights.
            affines = {} if as_written else affine_fusions(self._graph)
            # ASPP's projection sums its image-pooling branch (the same at every pixel) into its bias; an
            # ADD of a MUL's product does the MUL too; an ADD of a 1x1 conv's output (a MobileNet residual)
            # is added by the conv as it stores it; a squeeze-and-excite gate (pool, 1x1 convs, LOGISTIC) is one
            # step. They read other tensors than the graph says.
            replans = {} if as_written else {**pooled_projections(self._graph), **multiply_adds(self._graph)}
            if not as_written:
                replans.update(conv_adds(self._graph, set(replans)))
                replans.update(squeeze_excites(self._graph, set(replans)))
            dropped: set[int] = set()  # operators planned, then left out of the run by a later one
            rewritten: dict[int, Operator] = {}  # by operator index: the operator as it runs
            inner: list[int] = []  # tensors inside a chain or a folded batch norm, which nothing writes
            contexts: dict[int, OpContext] = {}  # the operators planned so far, as planned
            for op in self._graph.operators:
                chain = chains.get(op.index)
                as_conv = None if chain is None else chain.as_conv(self._graph, shapes[op.inputs[0]])
                if as_conv is not None:
                    rewritten[chain.conv.index], inner_shapes = as_conv
                    rewritten[op.index] = rewritten[chain.batch_to_space.index] = None
                    for i, shape in inner_shapes.items():
                        shapes[i] = shape
                    inner.extend(chain.inner)
                op = rewritten.get(op.index, op)
                if op is None:
                    continue
                convolution = op.builtin in (BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D)
                affine = affines.get(op.outputs[0]) if convolution and len(op.inputs) > 2 else None
                folding = None
                if affine is not None and op.inputs[2] >= 0 and op.options.fused_activation_function == Activation.NONE:
                    folding = affine.fold(op, *(folded.get(i, tensors[i].data) for i in op.inputs[1:3]))
                if folding is not None:
                    op = rewritten[op.index] = replace(op, outputs=affine.add.outputs, options=folding[2])
                    rewritten[affine.mul.index] = rewritten[affine.add.index] = None
                    inner.extend(affine.inner)
                ctx = OpContext(
                    index=op.index,
                    opcode=BuiltinOperator(op.builtin),
                    version=op.code.version,
                    options=op.options,
                    inputs=tuple(None if i < 0 else self._spec(tensors[i], shapes[i], folded.get(i))
                                 for i in op.inputs),
                    outputs=tuple(self._spec(tensors[i], shapes[i]) for i in op.outputs),
                    backend=self.backend,
                    max_tensor_bytes=MAX_ARENA_BYTES,
                    custom_code=op.code.custom_code,
                    custom_options=op.custom_options,
                )
                if folding is not None:
                    w, b = (replace(spec, data=data) for spec, data in zip(ctx.inputs[1:3], folding[:2]))
                    ctx = replace(ctx, inputs=(ctx.inputs[0], w, b, *ctx.inputs[3:]))
                _check_quantization(ctx)
                fusion = fusions.get(op.index)
                if fusion is not None and not (ctx.inputs and ctx.outputs and fusion.applies(ctx)):
                    fusion = None  # (an operator without inputs or outputs: its prepare says so)
                if fusion is not None:
                    ctx = replace(ctx, options=fusion.options(op.options))
                    fused.append(fusion)
                try:
                    prepared = self._prepare_of(op)(ctx)
                except MemoryError:
                    raise ctx.error("its tables do not fit in memory (a corrupt shape or option?)") from None
                except (ModelError, InterpreterStateError):
                    raise
                except Exception as exc:
                    if op.builtin != BuiltinOperator.CUSTOM:
                        raise
                    raise ctx.error(f"its prepare function failed: {type(exc).__name__}: {exc}") from exc
                if not isinstance(prepared, Prepared):
                    raise ctx.error(f"prepare returned {type(prepared).__name__}, not "
                                    f"Prepared(output_shapes, run)")
                if len(prepared.output_shapes) != len(op.outputs):
                    raise ctx.error(f"prepared {len(prepared.output_shapes)} output shapes for {len(op.outputs)} outputs")
                for i, shape in zip(op.outputs, prepared.output_shapes):
                    shapes[i] = tuple(int(d) for d in shape)
                    self._check_size(tensors[i], shapes[i])
                values = fold(ctx, prepared)
                if values is not None:
                    folded.update(zip(op.outputs, values))
                step = _Step(op.index, ctx.opcode, op.inputs, op.outputs, prepared.run, values is not None)
                fused_run = None if fusion is None else fusion.run(ctx, prepared)
                if fused_run is not None:
                    step.run, step.unfused_run = fused_run, prepared.run
                elif fusion is not None:  # the producer's kernel cannot: both run
                    fused.remove(fusion)
                contexts[op.index] = ctx
                replan = replans.get(op.index)
                planned = None if replan is None or values is not None else replan.plan(ctx, shapes, contexts)
                if planned is not None:
                    step.run, step.inputs, step.unfused_run = planned[0], planned[1], prepared.run
                    dropped.update(planned[2])
                    inner.extend(planned[3])
                steps.append(step)
            for f in fused:  # the producer writes the absorbed operator's output; the tensor between is gone
                written[f.output], written[f.inner] = f.producer, -2
            for conv in rewritten.values():  # a chain's (a batch norm's) output is written by its convolution
                for i in () if conv is None else conv.outputs:
                    written[i] = conv.index
            for i in inner:
                written[i] = -2
            self._arrays = arrays = self._place(shapes, written, folded, steps)
            for f in fused:
                if f.inner_reads_as_output:
                    arrays[f.inner] = arrays[f.output]
            for i in inner:  # reads as zeros (LiteRT's intermediates hold whatever the arena held)
                arrays[i] = np.broadcast_to(np.zeros((), tensors[i].type.dtype), shapes[i])
            for step in steps:
                step.in_arrays = [None if i < 0 else arrays[i] for i in step.inputs]
                step.out_arrays = [arrays[i] for i in step.outputs]
            step_of = {step.index: step for step in steps}
            for f in fused:
                step_of[f.producer].out_arrays = [arrays[f.output]]
            self._shapes = shapes
            self._steps = steps
            skipped = {f.absorbed for f in fused} | dropped
            self._program = [s for s in steps if not s.folded and s.index not in skipped]
            self._replays = Replays(self._program) if self.backend == "numba" and self._subgraph_index == 0 else None
            self._folded = folded
            self._allocated = True

    @staticmethod
    def _nbytes(t: Tensor, shape: tuple[int, ...]) -> int:
        """Bytes of tensor ``t`` at ``shape`` (Python integers: a corrupt shape must not wrap around)."""
        if t.type.dtype is None:
            raise ModelError(f"tensor {t.index} ({t.name!r}) has type {t.type.name}, which pydeeplab cannot compute with")
        return math.prod(shape) * t.type.dtype.itemsize

    def _check_size(self, t: Tensor, shape: tuple[int, ...]) -> int:
        """The bytes of ``t`` at ``shape``, refusing more than the plan allows."""
        nbytes = self._nbytes(t, shape)
        if nbytes > MAX_ARENA_BYTES:
            raise ModelError(f"tensor {t.index} ({t.name!r}) of shape {list(shape)} needs {nbytes} bytes, "
                             f"more than pydeeplab allows ({MAX_ARENA_BYTES})")
        return nbytes

    def _spec(self, t: Tensor, shape: tuple[int, ...], folded: np.ndarray | None = None) -> TensorSpec:
        self._nbytes(t, shape)  # a type we can compute with
        if t.sparse:
            raise ModelError(f"tensor {t.index} ({t.name!r}) is sparse; sparse tensors are not supported")
        return TensorSpec(t.index, t.name, t.type, shape, t.quantization, t.data if folded is None else folded)

    def _check_dataflow(self) -> list[int]:
        """Check that every tensor is written once, before it is read. Returns the writer of each tensor.

        The writer is -1 for graph inputs, variables and constants, the operator index
        otherwise, and -2 for tensors nobody writes (which no operator may then read).
        """
        g = self._graph
        writer = [-2] * len(g.tensors)
        for i in g.inputs:
            writer[i] = -1
        for t in g.tensors:  # a variable is state: it holds a value (zero at first) before any operator runs
            if t.is_variable and t.data is None:
                writer[t.index] = -1
        for t in g.tensors:
            if t.data is not None:
                if writer[t.index] == -1:
                    raise ModelError(f"tensor {t.index} ({t.name!r}) is both a graph input and a constant")
                writer[t.index] = -1
        problems = []
        for op in g.operators:
            for i in op.inputs:
                if i >= 0 and (writer[i] == -2 or writer[i] >= op.index):
                    problems.append(f"operator {op.index} ({op.name}) reads tensor {i} before any operator writes it")
            for i in op.outputs:
                if writer[i] != -2:
                    who = "a graph input or constant" if writer[i] == -1 else f"operator {writer[i]}"
                    problems.append(f"operator {op.index} ({op.name}) writes tensor {i}, already written by {who}")
                else:
                    writer[i] = op.index
        for i in g.outputs:
            if writer[i] == -2:
                problems.append(f"graph output tensor {i} is never written")
        if problems:
            shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
            raise ModelError("the graph is not a valid dataflow graph: " + "; ".join(shown))
        return writer

    def _place(self, shapes: list[tuple[int, ...]], writer: list[int],
               folded: dict[int, np.ndarray], steps: list[_Step]) -> list[np.ndarray | None]:
        """Give every non-constant tensor an array; intermediates share one arena by lifetime.

        Constants, and the tensors folded at plan time, keep their own arrays, outside the arena.
        Lifetimes are those of the planned ``steps`` (a fused operator may read a tensor later
        than the graph as written does).
        """
        g = self._graph
        n_ops = len(g.operators)
        last_use = [-1] * len(g.tensors)
        for step in steps:
            for i in step.inputs:
                if i >= 0:
                    last_use[i] = max(last_use[i], step.index)
        for i in g.outputs:
            last_use[i] = n_ops
        arrays: list[np.ndarray | None] = [None] * len(g.tensors)
        blocks = []  # (size, first, last, tensor)
        total = 0
        for t in g.tensors:
            if t.data is not None:
                arrays[t.index] = t.data
                continue
            if t.index in folded:
                arrays[t.index] = folded[t.index]
                continue
            if writer[t.index] == -2:
                continue
            nbytes = self._check_size(t, shapes[t.index])
            total += nbytes
            first = writer[t.index]
            whole_run = t.index in g.inputs or t.is_variable  # set from outside, or state kept between runs
            last = n_ops if (self._preserve or whole_run) else max(last_use[t.index], first)
            if whole_run:
                first = -1
            blocks.append((nbytes, first, last, t.index))
        if total > MAX_ARENA_BYTES:
            raise ModelError(f"the model's activations need {total} bytes, more than pydeeplab allows ({MAX_ARENA_BYTES})")
        offsets, arena_size = _first_fit(blocks)
        # Every tensor starts on a 64-byte boundary (a cache line, the widest vector load).
        raw = np.empty(max(arena_size, 1) + _ALIGN, dtype=np.uint8)
        start = -raw.ctypes.data % _ALIGN
        arena = raw[start : start + max(arena_size, 1)]
        self._arena = arena
        for nbytes, _, _, index in blocks:
            t = g.tensors[index]
            off = offsets[index]
            arrays[index] = arena[off : off + nbytes].view(t.type.dtype).reshape(shapes[index])
            if t.is_variable:
                arrays[index][...] = _variable_reset_value(t)
        return arrays

    # -- running -------------------------------------------------------------------

    def _require_allocated(self, what: str) -> None:
        if not self._allocated:
            raise InterpreterStateError(f"{what}: tensors are not allocated. Call allocate_tensors() first")

    def _safe_to_run(self) -> bool:
        """True when no array handed out by :meth:`tensor` is alive (LiteRT's test, same name)."""
        # One reference is self._views, one the argument of getrefcount; each live view adds one.
        return sys.getrefcount(self._views) == 2

    def _ensure_safe(self, what: str = "this call") -> None:
        if not self._safe_to_run():
            raise InterpreterStateError(_HELD_VIEW_MESSAGE.format(what=what))

    def invoke(self) -> None:
        """Run the graph (subgraph 0) on the tensors set with set_tensor.

        Raises RuntimeError while an array from ``tensor(i)()`` is held, as LiteRT does.
        """
        self._ensure_safe("invoke()")
        self._invoke()

    def _invoke(self) -> None:
        with self._lock:
            self._require_allocated("Invoke called on model that is not ready")
            with self._threads(), self._first_run():
                if self._replays is not None:
                    self._replays.run()  # (after two recorded runs, most steps without Python: see pydeeplab.replay)
                else:
                    for step in self._program:
                        step.run(step.in_arrays, step.out_arrays)

    def _first_run(self):
        """The first run of the model's kernels (numba backend): where they are not in the cache yet, a
        helper process compiles them too, from the other end (:func:`pydeeplab.compiling.compile_helper`)."""
        if self.backend != "numba" or self._subgraph_index != 0 or self._first_run_done:
            return nullcontext()
        self._first_run_done = True

        def spec() -> dict:
            path, content = self._source
            if path is None:
                fd, path = tempfile.mkstemp(prefix="pydeeplab-model-", suffix=".tflite")
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
            return {"model": path, "temporary": content is not None, "threads": self._num_threads,
                    "preserve": self._preserve, "shapes": {i: list(self._shapes[i]) for i in self._graph.inputs}}

        return compile_helper(spec)

    def invoke_profiled(self) -> list[tuple[int, str, float]]:
        """Run the graph like :meth:`invoke`, timing each operator: [(index, operator, seconds)]. Step by
        step, as invoke's first runs (later ones replay most steps' recorded kernel launches without
        Python between them: :mod:`pydeeplab.replay`), so each time includes its step's Python."""
        with self._lock:
            self._require_allocated("Invoke called on model that is not ready")
            times = []
            with self._threads():
                for step in self._program:
                    start = time.perf_counter()
                    step.run(step.in_arrays, step.out_arrays)
                    times.append((step.index, step.opcode.name, time.perf_counter() - start))
            return times

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """The thread policy of one run (see pydeeplab.threads): who may use how many cores."""
        if self.backend == "numpy":
            if self._num_threads is None:
                yield
            else:
                with blas_threads(self._num_threads):
                    yield
            return
        import numba

        from .kernels.parallel import team

        n = max(1, min(self._num_threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
        with team(n), blas_threads(1):  # the kernels call BLAS from Numba's threads, one BLAS thread each
            keep_workers_apart(n)  # (see pydeeplab.threads: where a sleeping worker wakes)
            yield

    def run_op(self, op_index: int, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """Run one planned operator on given input arrays; returns fresh output arrays.

        This is the isolated mode of ``verify``: each operator fed another
        runtime's input tensors, so one operator's error cannot hide in the next.
        """
        with self._lock:
            self._require_allocated("run_op")
            step = self._steps[op_index]
            outs = [np.empty(self._shapes[i], self._graph.tensors[i].type.dtype) for i in step.outputs]
            with self._threads():  # the operator alone, as written, even where a fusion took it
                (step.unfused_run or step.run)(list(inputs), outs)
            return outs

    # -- the tflite_runtime API ------------------------------------------------------

    def _check_index(self, index: int) -> Tensor:
        n = len(self._graph.tensors)
        if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise ValueError(f"Invalid tensor index {index} exceeds max tensor index {n}")
        return self._graph.tensors[int(index)]

    def _details(self, index: int) -> dict:
        t = self._graph.tensors[index]
        q = t.quantization
        scales = q.scales.astype(np.float32) if q is not None else np.zeros(0, np.float32)
        zero_points = q.zero_points.astype(np.int32) if q is not None else np.zeros(0, np.int32)
        dtype = t.type.dtype
        return {
            "name": t.name,
            "index": index,
            "shape": np.array(self._shapes[index], dtype=np.int32),
            "shape_signature": np.array(t.shape_signature, dtype=np.int32),
            "dtype": dtype.type if dtype is not None else None,
            "quantization": (q.scale, q.zero_point) if q is not None and q.scales.size else (0.0, 0),
            "quantization_parameters": {
                "scales": scales,
                "zero_points": zero_points,
                "quantized_dimension": q.quantized_dimension if q is not None else 0,
                "block_size": 0,
            },
            "sparsity_parameters": {},
        }

    def get_input_details(self) -> list[dict]:
        return [self._details(i) for i in self._graph.inputs]

    def get_output_details(self) -> list[dict]:
        return [self._details(i) for i in self._graph.outputs]

    def get_tensor_details(self, subgraph_index: int = 0) -> list[dict]:
        """Details (as :meth:`get_input_details`) of every tensor of a subgraph."""
        n = len(self.model.subgraphs)
        if not isinstance(subgraph_index, (int, np.integer)) or not 0 <= subgraph_index < n:
            raise ValueError(f"subgraph_index is out of range: {subgraph_index} for the model, "
                             f"which has {n} subgraphs.")
        plan = self._subgraph(subgraph_index)
        return [plan._details(i) for i in range(len(plan._graph.tensors))]

    def _get_tensor_details(self, tensor_index: int, subgraph_index: int) -> dict:
        """Details of one tensor of one subgraph (LiteRT's private helper, used by its signature runner)."""
        plan = self._subgraph(subgraph_index)
        n = len(plan._graph.tensors)
        if not isinstance(tensor_index, (int, np.integer)) or not 0 <= tensor_index < n:
            raise ValueError(f"Invalid tensor index {tensor_index} exceeds max tensor index {n} "
                             f"(of subgraph {subgraph_index})")
        return plan._details(int(tensor_index))

    def num_subgraphs(self) -> int:
        """The number of subgraphs in the model (one per signature in multi-signature models)."""
        return len(self.model.subgraphs)

    def _get_op_details(self, op_index: int) -> dict:
        """Index, name, input and output tensor indices and their types of one operator of subgraph 0.

        Absent optional inputs (-1) are listed in ``inputs`` but have no entry in ``operand_types``.
        """
        ops = self._graph.operators
        if not isinstance(op_index, (int, np.integer)) or not 0 <= op_index < len(ops):
            raise ValueError(f"Invalid node index {op_index}: the model's subgraph 0 has {len(ops)} operators")
        op, tensors = ops[int(op_index)], self._graph.tensors
        return {
            "index": int(op_index),
            "op_name": op.name,
            "inputs": np.array(op.inputs, dtype=np.int32),
            "outputs": np.array(op.outputs, dtype=np.int32),
            "operand_types": [_scalar_type(tensors[i]) for i in op.inputs if i >= 0],
            "result_types": [_scalar_type(tensors[i]) for i in op.outputs if i >= 0],
        }

    def _get_ops_details(self) -> list[dict]:
        return [self._get_op_details(i) for i in range(len(self._graph.operators))]

    def set_tensor(self, tensor_index: int, value) -> None:
        """Copy ``value`` into an input tensor; dtype and shape must match exactly."""
        with self._lock:
            t = self._check_index(tensor_index)
            if not self._allocated:
                raise InterpreterStateError("Cannot set tensor: Tensor is unallocated. Try calling allocate_tensors() first")
            value = np.asarray(value)
            if value.dtype != t.type.dtype:
                got = _type_name(value.dtype)
                raise ValueError(
                    f"Cannot set tensor: Got value of type {got} but expected type {t.type.name} "
                    f"for input {tensor_index}, name: {t.name} "
                )
            target = self._arrays[tensor_index]
            if target is None or t.data is not None or tensor_index in self._folded:
                raise ValueError(f"Cannot set tensor: tensor {tensor_index} ({t.name!r}) is a constant or unused tensor")
            if value.ndim != target.ndim:
                raise ValueError(
                    f"Cannot set tensor: Dimension mismatch. Got {value.ndim} but expected {target.ndim} "
                    f"for input {tensor_index}."
                )
            for d, (got, want) in enumerate(zip(value.shape, target.shape)):
                if got != want:
                    raise ValueError(
                        f"Cannot set tensor: Dimension mismatch. Got {got} but expected {want} "
                        f"for dimension {d} of input {tensor_index}."
                    )
            target[...] = value

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of a tensor's current value."""
        if subgraph_index != 0:
            return self._subgraph(subgraph_index).get_tensor(tensor_index)
        with self._lock:
            self._check_index(tensor_index)
            array = self._arrays[tensor_index]
            if array is None:
                raise ValueError("Tensor data is null. Run allocate_tensors() first")
            return np.array(array, copy=True)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]:
        """A function returning a live view of the tensor.

        As in LiteRT, hold the function, not the array: while an array it returned (or a
        slice of one) is alive, invoke, allocate_tensors and resize_tensor_input raise
        RuntimeError, since they would change the memory the array shows.
        """
        self._check_index(tensor_index)

        def view() -> np.ndarray:
            array = self._arrays[tensor_index]
            if array is None:
                raise ValueError("Tensor data is null. Run allocate_tensors() first")
            return np.asarray(_TensorView(array, self._views))

        return view

    def resize_tensor_input(self, input_index: int, tensor_size, strict: bool = False) -> None:
        """Change the shape of a graph input; call allocate_tensors() before the next invoke."""
        self._ensure_safe("resize_tensor_input()")
        self._resize_input(input_index, tensor_size, strict)

    def _resize_input(self, input_index: int, tensor_size, strict: bool = False) -> None:
        with self._lock:
            t = self._check_index(input_index)
            if input_index not in self._graph.inputs:
                raise ValueError(f"Tensor {input_index} ({t.name!r}) is not an input of the graph and cannot be resized")
            shape = np.asarray(tensor_size)
            if shape.ndim != 1 or not np.issubdtype(shape.dtype, np.integer) or (shape < 0).any():
                raise ValueError(f"Cannot resize input {input_index} to {tensor_size!r}: need non-negative integer dimensions")
            shape = tuple(int(d) for d in shape)
            if strict:
                sig = t.shape_signature
                if len(sig) != len(shape) or any(s != -1 and s != d for s, d in zip(sig, shape)):
                    raise ValueError("Attempting to resize dimension of a fixed-size tensor with strict=True")
            if shape != self._shapes[input_index]:  # an unchanged shape keeps the plan, as in TFLite
                self._shapes[input_index] = shape
                self._allocated = False

    def reset_all_variables(self) -> None:
        """Set every variable tensor (``is_variable``: state kept between invokes) back to zero,
        as TFLite's ResetVariableTensors does (int8 variables to their zero point)."""
        with self._lock:
            for plan in self._subgraph_plans.values():
                for t in plan._graph.tensors:
                    array = plan._arrays[t.index]
                    if t.is_variable and array is not None and t.data is None:
                        array[...] = _variable_reset_value(t)

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """{signature key: {"inputs": [names], "outputs": [names]}} ({} for a model without signatures)."""
        return {
            s.key: {"inputs": list(s.inputs), "outputs": list(s.outputs)} for s in self.model.signature_defs
        }

    def _get_full_signature_list(self) -> dict[str, dict[str, dict[str, int]]]:
        """{signature key: {"inputs": {name: tensor index}, "outputs": {...}}}, as LiteRT's."""
        return {s.key: {"inputs": dict(s.inputs), "outputs": dict(s.outputs)} for s in self.model.signature_defs}

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """A callable running one signature: ``runner(x=array, ...)`` -> {output name: array}.

        ``signature_key`` may be None only when the model has exactly one signature.
        """
        if signature_key is None:
            n = len(self.model.signature_defs)
            if n != 1:
                raise ValueError(f"SignatureDef signature_key is None and model has {n} Signatures. "
                                 "None is only allowed when the model has 1 SignatureDef")
            signature_key = self.model.signature_defs[0].key
        return SignatureRunner(interpreter=self, signature_key=signature_key)

    @property
    def experimental_compress_quantization_zero_points(self) -> bool:
        return self._experimental_compress_quantization_zero_points


class InterpreterWithCustomOps(Interpreter):
    """LiteRT's interpreter with custom-op registerers, for code written against it.

    LiteRT's registerers are C symbols or functions taking a C op-resolver pointer;
    pydeeplab's custom operators are Python (:func:`pydeeplab.register_custom_op`). Here
    each registerer is a Python callable taking no arguments that registers its
    operators (e.g. ``lambda: pydeeplab.register_custom_op("MyOp", prepare)``); it is
    called once, before the model's operators are resolved. A symbol name (str) is
    refused with LiteRT's words. ``custom_ops={...}`` (passed on to Interpreter) is the
    per-interpreter alternative.
    """

    def __init__(self, custom_op_registerers=None, **kwargs):
        self._custom_op_registerers = list(custom_op_registerers or [])
        for registerer in self._custom_op_registerers:
            if isinstance(registerer, str):
                raise ValueError(f"Looking up symbol '{registerer}' failed: pydeeplab registers custom "
                                 "operators from Python; pass a function that registers them instead of "
                                 "a symbol name")
            if not callable(registerer):
                raise ValueError(f"custom_op_registerers holds {registerer!r}, which is neither a "
                                 "function nor a symbol name")
        for registerer in self._custom_op_registerers:
            registerer()
        super().__init__(**kwargs)


def _given(value) -> bool:
    """LiteRT's truth test of a model argument (None and empty are not given), safe for any buffer."""
    if value is None:
        return False
    try:
        return len(value) > 0
    except TypeError:  # no length: a path object or a wrong type, refused further on
        return True


def _load(path: str | os.PathLike) -> Model:
    """Read a model file, with LiteRT's words for a file that cannot be opened or parsed."""
    return _read(model_file_bytes(path))


def _read(content: bytes) -> Model:
    try:
        return read_model(content)
    except UnsupportedOperatorError:
        raise
    except ModelError as exc:
        raise ModelError(f"The model is not a valid Flatbuffer buffer: {exc}") from exc


def _variable_reset_value(t: Tensor) -> int:
    """What TFLite resets a variable to: zero, or for int8 its zero point (the quantized 0.0)."""
    return t.quantization.zero_point if t.type.dtype == np.int8 and t.quantization is not None else 0


def _scalar_type(t: Tensor) -> type | None:
    return t.type.dtype.type if t.type.dtype is not None else None


def _type_name(dtype: np.dtype) -> str:
    """The TFLite name of a NumPy dtype, as tflite_runtime names it in its messages."""
    if dtype.kind in "USO":
        return "STRING"
    try:
        return tensor_type_of(dtype).name
    except ValueError:
        return str(dtype).upper()


def _check_quantization(ctx: OpContext) -> None:
    """Quantized 8/16-bit tensors need finite positive scales and zero points their type can hold."""
    for role, specs in (("input", ctx.inputs), ("output", ctx.outputs)):
        for k, spec in enumerate(specs):
            if spec is None or not spec.is_quantized or spec.dtype.kind not in "iu" or spec.dtype.itemsize > 2:
                continue
            q = spec.quantization
            what = f"{role} {k} (tensor {spec.index})"
            bad = q.scales[~(np.isfinite(q.scales) & (q.scales > 0))]
            if bad.size:
                raise ctx.error(f"{what} has quantization scale {bad[0]}; scales must be finite and > 0")
            info = np.iinfo(spec.dtype)
            out = q.zero_points[(q.zero_points < info.min) | (q.zero_points > info.max)]
            if out.size:
                raise ctx.error(f"{what} has zero point {out[0]}, outside the {spec.type.name} range "
                                f"[{info.min}, {info.max}]")


def _first_fit(blocks: list[tuple[int, int, int, int]]) -> tuple[dict[int, int], int]:
    """Assign arena offsets: largest tensors first, each at the lowest offset free for its lifetime.

    ``blocks`` are (bytes, first op, last op, tensor). Two tensors may share bytes
    only if their [first, last] intervals are disjoint.
    """
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets = {}
    size = 0
    for nbytes, first, last, index in sorted(blocks, key=lambda b: (-b[0], b[1], b[3])):
        busy = sorted((o, e) for o, e, f, l in placed if not (l < first or last < f))
        offset = 0
        for o, e in busy:
            if offset + nbytes <= o:
                break
            offset = max(offset, _round_up(e))
        placed.append((offset, offset + nbytes, first, last))
        offsets[index] = offset
        size = max(size, offset + nbytes)
    return offsets, size


def _round_up(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN

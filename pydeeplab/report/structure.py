"""DeepLab's blocks recognised on a real graph: backbone stages, atrous rates, ASPP, decoder, logits.

Nothing here is written per model: the structure is read from the data flow and
the operators' geometry, in the vocabulary of docs/deeplab.md.

* **Geometry** (per tensor): the *effective output stride* (input size / feature
  size, read through SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND as the atrous trick
  they encode), and the *receptive field*: ``rf_out = rf_in + (k_eff - 1) * jump``
  for a convolution or pooling with effective kernel ``k_eff = (k - 1) * rate + 1``
  applied to a map whose pixels are ``jump`` input pixels apart (its output stride).
  A global pooling (AVERAGE_POOL_2D over the whole map, MEAN over H and W) sees the
  whole image.
* **ASPP**: a merge (CONCATENATION, or a tree of ADDs) of at least two non-trivial
  parallel branches that start from the same feature map. Each branch is a
  chain of single-input operators; it is named after what it holds: image
  pooling (a global pooling), atrous 3x3 at rate r, or 1x1. MobileNetV2's
  residual ADDs are not ASPPs: one of their two branches is the identity.
* **Decoder** (v3+): a later CONCATENATION that joins the upsampled ASPP output
  with a branch coming from an earlier, higher-resolution backbone tensor.
* **Logits**: the last convolution; **final**: what follows it (resize, ARG_MAX).
* **Backbone stages**: the backbone's operators grouped by output stride, with
  the atrous rates each stage uses.

Operators whose inputs are all constant (DEQUANTIZE of float16 weights, for
example) are weight preparation, not part of the data flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..tflite.model import Subgraph
from ..tflite.schema import BuiltinOperator as Op

_CONVS = (Op.CONV_2D, Op.DEPTHWISE_CONV_2D)
_POOLS = (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D)
_RESIZES = (Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR)


@dataclass
class OpGeometry:
    """What one operator does to resolution and field of view (``None`` for non-image tensors)."""

    index: int
    output_stride: float | None = None
    receptive_field: float | None = None
    rate: int = 1  # atrous rate: dilation, times the SPACE_TO_BATCH_ND block around it
    kernel: tuple[int, int] | None = None
    stride: int = 1
    global_pool: bool = False
    weight_prep: bool = False  # all inputs constant: weight preparation, not data flow


@dataclass
class Branch:
    kind: str  # "image pooling", "atrous 3x3 rate 6", "1x1", ...
    ops: list[int]


@dataclass
class Stage:
    output_stride: float
    ops: list[int]
    rates: list[int]
    shape: tuple[int, ...]


@dataclass
class Structure:
    """The DeepLab reading of a graph. ``blocks`` maps every operator index to its block name."""

    variant: str
    input_size: int | None
    output_stride: float | None  # of the features the head works on
    stages: list[Stage] = field(default_factory=list)
    atrous_start: int | None = None  # first operator with rate > 1
    atrous_rates: list[int] = field(default_factory=list)
    atrous_encoding: str = ""  # "dilation", "SPACE_TO_BATCH_ND", or both
    aspp_source: int | None = None  # tensor the ASPP branches start from
    aspp_merge: int | None = None  # operator joining them
    aspp_branches: list[Branch] = field(default_factory=list)
    aspp_projection: list[int] = field(default_factory=list)
    decoder: list[int] = field(default_factory=list)
    decoder_low_level: Branch | None = None
    logits: int | None = None
    final: list[int] = field(default_factory=list)
    blocks: dict[int, str] = field(default_factory=dict)
    geometry: list[OpGeometry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _snap(x: float) -> float | None:
    """The nearest power of two when within 10% of ``x`` (512/31 is "16"), else None."""
    if x <= 0:
        return None
    p = 2.0 ** round(np.log2(x))
    return p if abs(x - p) <= 0.1 * p else None


def output_stride(size: int, h: int) -> float:
    """Input size / feature size, read as DeepLab does: 513 -> 33 is stride 16 ((513-1)/(33-1))."""
    for x in (((size - 1) / (h - 1)) if h > 1 else 0.0, size / h):
        snapped = _snap(x)
        if snapped is not None:
            return snapped
    return round(size / h, 2)


class _Flow:
    """Producers, consumers and constant-ness of a subgraph's tensors."""

    def __init__(self, g: Subgraph):
        self.g = g
        n = len(g.tensors)
        self.const = [t.data is not None for t in g.tensors]
        self.producer: list[int | None] = [None] * n
        for op in g.operators:
            data = [i for i in op.inputs if i >= 0 and not self.const[i]]
            if not data and op.inputs:
                for o in op.outputs:
                    self.const[o] = True
            for o in op.outputs:
                self.producer[o] = op.index
        self.consumers: list[list[int]] = [[] for _ in range(n)]
        for op in g.operators:
            for i in self.data_inputs(op.index):
                self.consumers[i].append(op.index)

    def data_inputs(self, k: int) -> list[int]:
        return [i for i in self.g.operators[k].inputs if i >= 0 and not self.const[i]]

    def trace(self, t: int) -> tuple[list[int], int]:
        """Follow ``t`` back along single-input operators while nothing else reads the tensors.

        Returns (operators of the chain in order, tensor it starts from).
        """
        chain = []
        while True:
            p = self.producer[t]
            if p is None or len(self.consumers[t]) > 1:  # a graph input, or where branches fork
                return chain, t
            ins = self.data_inputs(p)
            if len(ins) != 1:
                return chain, t
            chain.insert(0, p)
            t = ins[0]

    def merge_leaves(self, k: int) -> list[int]:
        """The tensors a merge joins: a CONCATENATION's inputs, or the leaves of a tree of ADDs."""
        op = self.g.operators[k]
        if op.builtin != Op.ADD:
            return self.data_inputs(k)
        leaves = []
        for i in self.data_inputs(k):
            p = self.producer[i]
            if p is not None and self.g.operators[p].builtin == Op.ADD and len(self.consumers[i]) == 1:
                leaves += self.merge_leaves(p)
            else:
                leaves.append(i)
        return leaves


def _hw(shape: tuple[int, ...]) -> tuple[int, int] | None:
    return (shape[1], shape[2]) if len(shape) == 4 else None


def geometry(g: Subgraph, flow: _Flow | None = None) -> list[OpGeometry]:
    """Output stride and receptive field of every operator's first output (see the module docstring)."""
    flow = flow or _Flow(g)
    t = g.tensors
    image = next((i for i in g.inputs if len(t[i].shape) == 4), None)
    size = t[image].shape[1] if image is not None else None
    os_: dict[int, float] = {}
    rf: dict[int, float] = {}
    block: dict[int, int] = {}
    if image is not None:
        os_[image], rf[image], block[image] = 1.0, 1.0, 1
    out = []
    for op in g.operators:
        geo = OpGeometry(op.index)
        out.append(geo)
        ins = flow.data_inputs(op.index)
        if not ins:
            geo.weight_prep = True
            continue
        known = [i for i in ins if i in os_]
        o = op.outputs[0]
        if not known or size is None:
            continue
        s_in = max(os_[i] for i in known)
        r_in = max(rf[i] for i in known)
        b_in = max(block.get(i, 1) for i in known)
        oshape = t[o].shape
        code = op.builtin
        jump = s_in
        r_out, b_out = r_in, b_in
        opts = op.options
        if code in _CONVS or code in _POOLS:
            if code in _CONVS and len(op.inputs) > 1 and op.inputs[1] >= 0:
                w = t[op.inputs[1]].shape
                k = (w[1], w[2]) if len(w) == 4 else (1, 1)
            else:
                k = (getattr(opts, "filter_height", 1), getattr(opts, "filter_width", 1))
            d = getattr(opts, "dilation_h_factor", 1) or 1
            s = getattr(opts, "stride_h", 1) or 1
            geo.kernel, geo.stride, geo.rate = k, s, d * b_in
            hw = _hw(oshape)
            if code in _POOLS and hw == (1, 1) and (_hw(t[ins[0]].shape) or (1, 1)) != (1, 1):
                geo.global_pool = True
                r_out = float(size)
            else:
                r_out = r_in + (max(k) - 1) * geo.rate * jump
        elif code == Op.MEAN:
            hw = _hw(oshape) if len(oshape) == 4 else None
            if hw in (None, (1, 1)):
                geo.global_pool = True
                r_out = float(size)
        elif code == Op.SPACE_TO_BATCH_ND and len(op.inputs) > 1 and t[op.inputs[1]].data is not None:
            b_out = b_in * int(np.asarray(t[op.inputs[1]].data).ravel()[0])
        elif code == Op.BATCH_TO_SPACE_ND and len(op.inputs) > 1 and t[op.inputs[1]].data is not None:
            b_out = max(1, b_in // int(np.asarray(t[op.inputs[1]].data).ravel()[0]))
        hw = _hw(oshape)
        if code in (Op.SPACE_TO_BATCH_ND, Op.BATCH_TO_SPACE_ND) or (b_out > 1 and code not in _RESIZES):
            s_out = s_in if code not in _CONVS + _POOLS else s_in * geo.stride
        elif hw is not None and hw[0] > 0:
            s_out = output_stride(size, hw[0]) if hw[0] > 1 or not geo.global_pool else float(size)
        else:
            s_out = s_in
        for k_out in op.outputs:
            os_[k_out], rf[k_out], block[k_out] = s_out, r_out, b_out
        geo.output_stride, geo.receptive_field = s_out, r_out
    return out


def _branch_kind(g: Subgraph, ops: list[int], geo: list[OpGeometry]) -> str:
    if any(geo[k].global_pool for k in ops):
        return "image pooling"
    rates = sorted({geo[k].rate for k in ops if geo[k].rate > 1})
    kernels = [geo[k].kernel for k in ops if g.operators[k].builtin in _CONVS and geo[k].kernel]
    if rates:
        k = max(kernels, key=max) if kernels else (3, 3)
        return f"atrous {k[0]}x{k[1]} rate {', '.join(map(str, rates))}"
    if kernels:
        k = max(kernels, key=max)
        return f"{k[0]}x{k[1]}"
    return " + ".join(g.operators[k].name for k in ops) or "identity"


def recognise(g: Subgraph) -> Structure:
    """The DeepLab structure of graph ``g`` (best effort; ``variant`` says what was found)."""
    flow = _Flow(g)
    geo = geometry(g, flow)
    t = g.tensors
    image = next((i for i in g.inputs if len(t[i].shape) == 4), None)
    size = t[image].shape[1] if image is not None else None
    compute = [op.index for op in g.operators if not geo[op.index].weight_prep]
    st = Structure(variant="unknown", input_size=size, output_stride=None, geometry=geo)

    # -- ASPP: the best merge of >= 2 non-trivial branches from one source tensor.
    best = None
    for k in compute:
        code = g.operators[k].builtin
        if code not in (Op.CONCATENATION, Op.ADD):
            continue
        if code == Op.ADD and any(g.operators[c].builtin == Op.ADD for o in g.operators[k].outputs
                                  for c in flow.consumers[o] if len(flow.consumers[o]) == 1):
            continue  # an inner node of an ADD tree: its root speaks for it
        groups: dict[int, list[list[int]]] = {}
        for leaf in flow.merge_leaves(k):
            chain, src = flow.trace(leaf)
            groups.setdefault(src, []).append(chain)
        for src, chains in groups.items():
            nontrivial = [c for c in chains if c]
            if len(nontrivial) < 2 or len(chains) != len(nontrivial) or _hw(t[src].shape) in (None, (1, 1)):
                continue
            branches = [Branch(_branch_kind(g, c, geo), c) for c in nontrivial]
            special = any(b.kind == "image pooling" or b.kind.startswith("atrous") for b in branches)
            score = (special, k)
            if best is None or score > best[0]:
                best = (score, k, src, branches)
    if best is not None:
        _, st.aspp_merge, st.aspp_source, st.aspp_branches = best
        src_op = flow.producer[st.aspp_source]
        st.output_stride = geo[src_op].output_stride if src_op is not None else 1.0

    # -- logits: the last convolution; final: what follows it.
    convs = [k for k in compute
             if g.operators[k].builtin in _CONVS or g.operators[k].name.startswith("CUSTOM(Convolution")]
    st.logits = convs[-1] if convs else None
    if st.aspp_merge is not None and st.logits is not None and st.logits < st.aspp_merge:
        st.logits = st.aspp_merge  # v2: the branches are the classifiers; their sum is the logits
    if st.logits is not None:
        st.final = [k for k in compute if k > st.logits]

    # -- after the ASPP merge: projection, then a decoder if a later concat joins an earlier feature map.
    if st.aspp_merge is not None and st.logits is not None:
        src_op = flow.producer[st.aspp_source]
        after = [k for k in compute if st.aspp_merge < k < st.logits]
        branch_ops = {k for b in st.aspp_branches for k in b.ops}
        for k in after:
            if g.operators[k].builtin != Op.CONCATENATION:
                continue
            for leaf in flow.data_inputs(k):
                chain, src = flow.trace(leaf)
                p = flow.producer[src]
                if (p is not None and src_op is not None and p < src_op and _hw(t[src].shape)
                        and _hw(t[src].shape)[0] > _hw(t[st.aspp_source].shape)[0]):
                    st.decoder_low_level = Branch(f"low-level features at output stride "
                                                  f"{format_stride(geo[p].output_stride)}", chain)
                    break
            if st.decoder_low_level is not None:
                low = set(st.decoder_low_level.ops)
                between = [j for j in after if j < k and j not in low and j not in branch_ops]
                # The upsampling of the ASPP output to the low-level resolution is the decoder's first step.
                up = {j for j in between if g.operators[j].builtin in _RESIZES}
                st.aspp_projection = [j for j in between if j not in up]
                st.decoder = sorted(low | up | {j for j in after if j >= k})
                break
        if st.decoder_low_level is None:
            st.aspp_projection = [j for j in after if j not in branch_ops]

    # -- backbone: the compute operators before the head.
    head = set(st.final) | ({st.logits} if st.logits is not None else set()) | set(st.decoder) | set(st.aspp_projection)
    if st.aspp_merge is not None:
        head |= {k for b in st.aspp_branches for k in b.ops} | {st.aspp_merge}
        end = flow.producer[st.aspp_source]
        backbone = [k for k in compute if k not in head and (end is None or k <= end)]
        extra = [k for k in compute if k not in head and k not in backbone]
    else:
        backbone = [k for k in compute if k not in head]
        extra = []
    stage_of: dict[float, Stage] = {}
    for k in backbone:
        s = geo[k].output_stride
        if s is None:
            continue
        if s not in stage_of:
            stage_of[s] = Stage(s, [], [], t[g.operators[k].outputs[0]].shape)
        stage = stage_of[s]
        stage.ops.append(k)
        stage.shape = t[g.operators[k].outputs[0]].shape
        if geo[k].rate > 1 and geo[k].rate not in stage.rates:
            stage.rates.append(geo[k].rate)
    st.stages = sorted(stage_of.values(), key=lambda s: s.ops[0])
    atrous = [k for k in compute if geo[k].rate > 1 and (g.operators[k].builtin in _CONVS)]
    if atrous:
        st.atrous_start = atrous[0]
        st.atrous_rates = sorted({geo[k].rate for k in atrous})
        encodings = set()
        for k in atrous:
            d = getattr(g.operators[k].options, "dilation_h_factor", 1) or 1
            encodings.add("dilation" if d > 1 else "SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND")
        st.atrous_encoding = " and ".join(sorted(encodings))
    if st.output_stride is None and st.logits is not None:
        st.output_stride = geo[st.logits].output_stride

    # -- names
    for k in compute:
        st.blocks[k] = "other"
    for i, stage in enumerate(st.stages):
        for k in stage.ops:
            st.blocks[k] = f"backbone stage {i + 1} (output stride {format_stride(stage.output_stride)})"
    for k in extra:
        st.blocks[k] = "head"
    for b in st.aspp_branches:
        for k in b.ops:
            st.blocks[k] = f"ASPP: {b.kind}"
    if st.aspp_merge is not None:
        st.blocks[st.aspp_merge] = "ASPP: merge"
        for k in compute:  # inner nodes of an ADD tree
            if st.blocks[k] == "other" and g.operators[k].builtin == Op.ADD and st.aspp_merge > k > min(
                    (j for b in st.aspp_branches for j in b.ops), default=k):
                st.blocks[k] = "ASPP: merge"
    for k in st.aspp_projection:
        st.blocks[k] = "ASPP: projection"
    for k in st.decoder:
        st.blocks[k] = "decoder"
    if st.decoder_low_level is not None:
        for k in st.decoder_low_level.ops:
            st.blocks[k] = "decoder: low-level features"
    if st.logits is not None:
        st.blocks[st.logits] = "logits"
    for k in st.final:
        st.blocks[k] = "final: upsampling / labels"
    for op in g.operators:
        if geo[op.index].weight_prep:
            st.blocks[op.index] = "weight preparation"

    # -- which DeepLab
    pooling = any(b.kind == "image pooling" for b in st.aspp_branches)
    if st.decoder:
        st.variant = "DeepLab v3+ (ASPP with image pooling, decoder)" if pooling else "DeepLab v3+-like (decoder)"
    elif st.aspp_merge is not None and pooling:
        st.variant = "DeepLab v3 (ASPP with image pooling)"
    elif st.aspp_merge is not None and g.operators[st.aspp_merge].builtin == Op.ADD:
        st.variant = "DeepLab v2 (ASPP: atrous branches summed)"
    elif st.aspp_merge is not None:
        st.variant = "multi-branch head (ASPP-like)"
    elif atrous:
        st.variant = "DeepLab v1 (atrous backbone, no ASPP)"
    if len(st.aspp_branches) == 2 and pooling and not any(b.kind.startswith("atrous") for b in st.aspp_branches):
        st.notes.append("mobile ASPP: a 1x1 branch plus image pooling, no atrous branches (as in the "
                        "MobileNetV2 DeepLab v3 models)")
    return st


def format_stride(s: float | None) -> str:
    """An output stride as text: 16, 14.33, or ? when unknown."""
    if s is None:
        return "?"
    return str(int(s)) if float(s).is_integer() else f"{s:g}"

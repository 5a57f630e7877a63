"""Broken and hostile models: the fuzzer's seed corpus, exhaustive byte corruption of the
small models, targeted malformed graphs, and the fuzz harness itself (tools/fuzz.py).

A case passes when pydeeplab either runs the model or raises ModelError/ValueError with a
message. Cases that may allocate a lot of memory or crash a kernel run in a worker
process of tools/fuzz.py (an address-space limit, a deadline, a segfault caught as a
signal); only the reader, which allocates nothing proportional to declared sizes, runs
in this process on corrupted bytes.

A failure names the case; rerun it with ``python tools/fuzz.py --replay <case>.json``
after saving it with ``--save``, or directly with the seed and index it prints.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from oracle import T, compare, single_op_model

from pydeeplab import Interpreter, ModelError, read_model
from pydeeplab.ops import REGISTRY
from pydeeplab.tflite.options import (
    AddOptions, ConcatenationOptions, Conv2DOptions, Pool2DOptions, ReshapeOptions, ResizeNearestNeighborOptions)
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

REPO = Path(__file__).resolve().parent.parent


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("pydeeplab_fuzz", REPO / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()

#: the seed corpus: cases 0..N-1 of campaign 0 (the same numbers as `tools/fuzz.py --seed 0`)
CORPUS_CASES = 300
SYNTHETIC = list(fuzz.synthetic_seeds())


@pytest.fixture(scope="module")
def corpus():
    return fuzz.Corpus.default(real_invoke=0.5)


def _options(*extra: str):
    return fuzz.parse_args(["--workers", "1", "--threads", "1", "--backend", "numba", *extra])


def _describe(crashes: list[dict]) -> str:
    lines = []
    for c in crashes[:20]:
        o = c["outcome"]
        lines.append(f"{c['name']} ({c['model']}/{c['mutator']}: {c['description'][:200]}) -> {o['kind']} "
                     f"at {o.get('stage')}: {o.get('type')}: {o.get('message', '')[:300]}")
        if o.get("traceback"):
            lines.append("    " + " | ".join(o["traceback"].strip().splitlines()[-3:]))
    return "\n".join(lines)


def _run_in_worker(cases: list, tmp_path: Path, *extra: str, corpus=None):
    """Run cases in a fresh worker process (warmed up on ``corpus``'s seeds, none by default)."""
    opts = _options("--save", str(tmp_path / "crashes"), *extra)
    campaign = fuzz.Campaign(corpus or fuzz.Corpus({}, {}), opts)
    try:
        campaign.run(cases, progress=False)
    finally:
        campaign.close()
    return campaign


# -- the seed models ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHETIC)
def test_seed_models_run_like_litert(name):
    """The synthesized seeds are valid models: LiteRT runs them, and so does pydeeplab, alike."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    from ai_edge_litert.interpreter import OpResolverType

    data = fuzz.synthetic_seeds()[name]
    missing = {op.name for op in read_model(data).main.operators if op.builtin not in REGISTRY}
    if missing:
        pytest.skip(f"operators not implemented yet: {sorted(missing)}")
    lite = LiteRT(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    lite.allocate_tensors()
    rng = np.random.default_rng(5)
    feeds = [(rng.standard_normal(d["shape"]) if d["dtype"] == np.float32 else
              rng.integers(np.iinfo(d["dtype"]).min, np.iinfo(d["dtype"]).max + 1, d["shape"])).astype(d["dtype"])
             for d in lite.get_input_details()]
    for d, f in zip(lite.get_input_details(), feeds):
        lite.set_tensor(d["index"], f)
    lite.invoke()
    refs = [lite.get_tensor(d["index"]) for d in lite.get_output_details()]
    for backend in ("numpy", "numba"):
        ours = Interpreter(model_content=data, backend=backend)
        ours.allocate_tensors()
        for d, f in zip(ours.get_input_details(), feeds):
            ours.set_tensor(d["index"], f)
        ours.invoke()
        for k, (d, ref) in enumerate(zip(ours.get_output_details(), refs)):
            compare(ours.get_tensor(d["index"]), ref, f"{name} output {k} [{backend}]")


def test_layout_and_cases_are_deterministic(corpus):
    for name, data in fuzz.synthetic_seeds().items():
        lay = fuzz.layout(data)
        assert all(0 <= s < e <= len(data) for s, e, _, _ in lay.regions), name
        assert all(0 <= p <= len(data) - 4 for p in lay.offsets + lay.veclens), name
        covered = np.zeros(len(data), bool)
        for s, e, _, _ in lay.regions:
            covered[s:e] = True
        assert covered.mean() > 0.8, f"{name}: the layout misses {1 - covered.mean():.0%} of the bytes"
    assert fuzz.synthetic_seeds() == fuzz.synthetic_seeds()
    for k, mutator in enumerate(fuzz.WEIGHTS):
        a = corpus.case(k, 7, mutator=mutator)
        b = corpus.case(k, 7, mutator=mutator)
        assert (a.data, a.description, a.resize, a.model) == (b.data, b.description, b.resize, b.model), mutator


# -- exhaustive byte corruption: the reader, in this process -----------------------------------


def _read_all(cases) -> tuple[int, list, list]:
    """read_model on every case: (count, cases that loaded, failures of the wrong kind)."""
    n, loaded, wrong = 0, [], []
    for case in cases:
        n += 1
        try:
            read_model(case.data)
        except ModelError as exc:
            if not str(exc).strip():
                wrong.append((case.description, "ModelError without a message"))
        except Exception as exc:  # noqa: BLE001 - anything else is the bug we look for
            wrong.append((case.description, f"{type(exc).__name__}: {exc}"))
        else:
            loaded.append(case)
    return n, loaded, wrong


@pytest.mark.parametrize("name", ["mini_float", "mini_uint8", "zoo_shape", "zoo_uint8"])
def test_every_truncation_offset_length_and_vtable(name, tmp_path):
    """Truncation at every table/vector boundary, every offset and vector length set to bad
    values, every vtable entry broken: the reader raises ModelError or reads a model; the
    models it reads (a sample) then go through allocate + invoke in a worker."""
    data = fuzz.synthetic_seeds()[name]
    n, loaded, wrong = _read_all(fuzz.systematic_cases(name, data, start=100_000))
    assert n > 800
    assert not wrong, f"{len(wrong)} of {n} corruptions of {name} escaped as other errors: {wrong[:10]}"
    sample = loaded[:: max(1, len(loaded) // 40)]
    campaign = _run_in_worker(sample, tmp_path, corpus=fuzz.Corpus({name: data}, {}))
    assert not campaign.crashes, _describe(campaign.crashes)


@pytest.mark.parametrize("name", fuzz.MODEL_NAMES)
def test_real_models_truncated_at_boundaries(name, model_path):
    data = model_path(name).read_bytes()
    lay = fuzz.layout(data)
    cuts = lay.boundaries()[::25]  # a deterministic sample of ~80 of the ~2000 boundaries
    cases = [fuzz.Case(i, -1, name, "truncate", f"truncate at {c}", data[:c]) for i, c in enumerate(cuts)]
    n, loaded, wrong = _read_all(cases)
    assert not wrong, wrong[:10]
    assert not loaded, [c.description for c in loaded]  # a truncated model always lacks something


@pytest.mark.parametrize("name", fuzz.MODEL_NAMES)
def test_real_models_offsets_and_lengths(name, model_path):
    data = model_path(name).read_bytes()
    # every 97th systematic corruption: ~150 cases touching every kind of table
    cases = itertools.islice(fuzz.systematic_cases(name, data), 0, None, 97)
    n, loaded, wrong = _read_all(cases)
    assert n > 100
    assert not wrong, wrong[:10]


# -- the seed corpus: random mutations, load + allocate + invoke in a worker ---------------------


def test_seed_corpus(corpus, tmp_path):
    """Cases 0..299 of campaign 0: bytes, structure and API mutations of every seed model.
    Reproduce one with `python tools/fuzz.py --seed 0 --start <index> --cases 1 --save DIR`."""
    campaign = _run_in_worker(list(range(CORPUS_CASES)), tmp_path, corpus=corpus)
    counts = campaign.counts
    assert sum(counts.values()) == CORPUS_CASES
    assert not campaign.crashes, f"{len(campaign.crashes)} crashes:\n" + _describe(campaign.crashes)
    # The corpus must exercise every stage, not only the reader's refusals.
    assert counts["ok"] >= 30 and counts["ModelError"] >= 100, dict(counts)
    stages = {r["stage"] for r in campaign.results.values() if r["kind"] == "ModelError"}
    assert {"load", "allocate"} <= stages, stages


# -- the harness ---------------------------------------------------------------------------------


def test_harness_catches_segfaults_hangs_memory_and_exceptions(tmp_path):
    ok = fuzz.Case(5, 0, "mini_float", "none", "the seed, unchanged", fuzz.synthetic_seeds()["mini_float"])
    cases = [fuzz.Case(i, 0, "-", kind, "selftest", b"") for i, kind in enumerate(fuzz.SELFTEST)] + [ok]
    campaign = _run_in_worker(cases, tmp_path, "--timeout", "1", "--rss-limit", "0.6", corpus=fuzz.Corpus({}, {}))
    assert campaign.results["case-0-0000004"].get("note", "").startswith("first run took over")
    assert campaign.slow_first_runs >= 1  # a slow first run (a JIT compile) is not a hang
    kinds = {c["mutator"]: c["outcome"]["kind"] for c in campaign.crashes}
    assert kinds == {"selftest-segv": "signal", "selftest-hang": "timeout", "selftest-memory": "memory",
                     "selftest-exception": "exception"}
    segv = next(c for c in campaign.crashes if c["mutator"] == "selftest-segv")
    assert "Segmentation fault" in segv["outcome"]["traceback"]  # faulthandler names the crash site
    assert campaign.results[ok.name]["kind"] == "ok"  # the restarted worker serves the next case
    saved = sorted(p.name for p in (tmp_path / "crashes").iterdir())
    assert len(saved) == 8 and all(p.startswith("case-0-") for p in saved)


# -- targeted malformed models: validation at load and plan time ---------------------------------


def _conv_graph(cin: int = 3, w_cin: int = 3, x_type=TensorType.FLOAT32, n_inputs: int = 3) -> bytes:
    b = ModelBuilder()
    x = b.add_tensor("x", x_type, (1, 8, 8, cin))
    w = b.add_constant("w", np.ones((4, 3, 3, w_cin), np.float32))
    bias = b.add_constant("bias", np.zeros(4, np.float32))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 8, 8, 4))
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, bias][:n_inputs], [y], Conv2DOptions(stride_w=1, stride_h=1))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def _plan(data: bytes) -> None:
    it = Interpreter(model_content=data)
    it.allocate_tensors()


@pytest.mark.parametrize("data, message", [
    (_conv_graph(n_inputs=1), r"CONV_2D.*expects 2 to 3 inputs, has 1"),
    (_conv_graph(x_type=TensorType.INT32), r"CONV_2D.*input type INT32"),
    (_conv_graph(cin=3, w_cin=5), r"CONV_2D.*filter has 5 input channels, the input has 3"),
], ids=["arity", "dtype", "channels"])
def test_conv_validation(data, message):
    with pytest.raises(ModelError, match=message):
        _plan(data)


def test_concat_dims_must_agree():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4, 4, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 5, 4, 2))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 4, 4, 5))
    b.add_operator(BuiltinOperator.CONCATENATION, [x, y], [z], ConcatenationOptions(axis=3))
    b.set_inputs([x, y])
    b.set_outputs([z])
    with pytest.raises(ModelError, match=r"operator 0 \(CONCATENATION\).*\(1, 5, 4, 2\).*\(1, 4, 4, 3\)"):
        _plan(b.finish())


def test_add_shapes_must_broadcast():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4, 4, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4, 4, 5))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 4, 4, 5))
    b.add_operator(BuiltinOperator.ADD, [x, y], [z], AddOptions())
    b.set_inputs([x, y])
    b.set_outputs([z])
    with pytest.raises(ModelError, match=r"operator 0 \(ADD\)"):
        _plan(b.finish())


def test_dataflow_problems_are_listed_in_one_error():
    """A cycle (each operator reads the other's output), a tensor nobody writes, and an
    output written twice: one ModelError that lists every problem."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 4))
    ghost = b.add_tensor("ghost", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.ADD, [x, z], [y], AddOptions())
    b.add_operator(BuiltinOperator.ADD, [y, ghost], [z], AddOptions())
    b.add_operator(BuiltinOperator.ADD, [x, x], [z], AddOptions())
    b.set_inputs([x])
    b.set_outputs([z])
    with pytest.raises(ModelError) as err:
        _plan(b.finish())
    message = str(err.value)
    assert "operator 0 (ADD) reads tensor 2 before any operator writes it" in message
    assert "operator 1 (ADD) reads tensor 3 before any operator writes it" in message
    assert "operator 2 (ADD) writes tensor 2, already written by operator 1" in message


def test_graph_output_never_written():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(ModelError, match="graph output tensor 1 is never written"):
        _plan(b.finish())


def _model_with_external_buffer(offset: int, size: int) -> bytes:
    """A model whose tensor 0 uses a buffer stored outside the flatbuffer (Buffer.offset/size)."""
    good = ModelBuilder()
    x = good.add_tensor("x", TensorType.FLOAT32, (1, 4))
    c = good.add_constant("c", np.ones((1, 4), np.float32))
    y = good.add_tensor("y", TensorType.FLOAT32, (1, 4))
    good.add_operator(BuiltinOperator.ADD, [x, c], [y], AddOptions())
    good.set_inputs([x])
    good.set_outputs([y])
    data = bytearray(good.finish())
    # Rewrite the constant's Buffer table in place: its data vector becomes offset/size
    # fields, which the writer never produces. Buffer fields: data=0, offset=1, size=2.
    fb = flatbuffers.Builder(64)
    fb.StartObject(3)
    fb.PrependUint64Slot(1, offset, 0)
    fb.PrependUint64Slot(2, size, 0)
    fb.Finish(fb.EndObject())
    table = bytes(fb.Output())
    # Append the new table and point element 1 of the model's buffers vector (slot 4) at it.
    vector = next(s for s, _, kind, what in fuzz.layout(bytes(data)).regions if kind == "vector" and what == "model.4")
    elem = vector + 4 + 4 * 1
    while len(data) % 8:
        data.append(0)
    target = len(data) + int.from_bytes(table[:4], "little")
    data += table
    data[elem:elem + 4] = (target - elem).to_bytes(4, "little")
    return bytes(data)


def test_buffer_beyond_the_file():
    inside = _model_with_external_buffer(8, 16)  # 16 bytes of the file itself: a valid external buffer
    assert read_model(inside).main.tensors[1].data.shape == (1, 4)
    with pytest.raises(ModelError, match=r"buffer 1: offset 1000000 \(\+16 bytes\) lies outside the file"):
        read_model(_model_with_external_buffer(1_000_000, 16))
    with pytest.raises(ModelError, match="lies outside the file"):
        read_model(_model_with_external_buffer(2**63, 2**63))


def test_vector_longer_than_the_file():
    data = fuzz.synthetic_seeds()["mini_float"]
    lay = fuzz.layout(data)
    buf = bytearray(data)
    buf[lay.veclens[0]:lay.veclens[0] + 4] = (0x7FFFFFFF).to_bytes(4, "little")
    with pytest.raises(ModelError, match="declares 2147483647 elements, more than the file holds"):
        read_model(bytes(buf))


def test_constant_size_must_match_shape():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    c = b.add_tensor("c", TensorType.FLOAT32, (1, 5), buffer=b.add_buffer(np.ones(4, np.float32).tobytes()))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.ADD, [x, c], [y], AddOptions())
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(ModelError, match=r"tensor 1 \('c'\): its buffer has 16 bytes, shape \[1, 5\] of FLOAT32 needs 20"):
        read_model(b.finish())


# -- bugs found by the fuzzer: minimal reproductions ----------------------------------------------
#
# Each test below failed when it was written (the fuzzer found the crash); the fix the
# report suggests is in its docstring. They run in a worker process when the bug
# allocates gigabytes, so that a failure cannot take the test session down.


def _pool_model(shape=(1, 8, 8, 4)) -> bytes:
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, shape)
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4, 4, 4))
    b.add_operator(BuiltinOperator.MAX_POOL_2D, [x], [y],
                   Pool2DOptions(padding=Padding.SAME, stride_w=2, stride_h=2, filter_width=2, filter_height=2))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def _resize_nearest_model(size) -> bytes:
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4, 4, 2))
    s = b.add_constant("size", np.asarray(size, np.int32))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 8, 8, 2))
    b.add_operator(BuiltinOperator.RESIZE_NEAREST_NEIGHBOR, [x, s], [y], ResizeNearestNeighborOptions())
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def test_bug_unused_graph_input_of_a_non_numeric_type():
    """BUG (fuzz graph_io): a graph input of type STRING/VARIANT/INT4/... that no operator
    reads reaches Interpreter._place, which does ``t.type.dtype.itemsize`` on a None dtype:
    AttributeError. Fix: in Interpreter._place (or _check_dataflow), raise ModelError for
    any non-constant graph input/output tensor whose ``type.dtype`` is None, naming it."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    s = b.add_tensor("s", TensorType.STRING, (1, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.ADD, [x, x], [y], AddOptions())
    b.set_inputs([x, s])
    b.set_outputs([y])
    with pytest.raises(ModelError, match=r"tensor 1 \('s'\).*STRING"):
        _plan(b.finish())


def test_bug_huge_shapes_allocate_in_prepare(tmp_path):
    """BUG (fuzz resize/huge_shape/const_values): prepare functions build per-position
    tables for shapes the plan has not bounded yet, so allocate_tensors raises MemoryError
    (or uses gigabytes) instead of ModelError:

    - MAX_POOL_2D/AVERAGE_POOL_2D on a [1, 8, 2**31-1, 4] input (resize_tensor_input or a
      mutated shape): ops/pool.py window_counts allocates 8 GiB;
    - RESIZE_NEAREST_NEIGHBOR to a constant size [2**31-1, 8]: ops/resize.py
      nearest_indices allocates 8 GiB (RESIZE_BILINEAR's taps alike).

    Fix: in Interpreter.allocate_tensors, check the byte size of every graph input before
    the first prepare and of every prepared output right after its prepare (against
    MAX_ARENA_BYTES), so that no prepare sees a tensor larger than the plan allows; ops whose
    output size comes from a constant (RESIZE_*, TRANSPOSE_CONV, TILE, PAD, ...) check it the
    same way before building tables (e.g. an OpContext helper ``ctx.check_size(shape, dtype)``);
    and turn a MemoryError during planning into ModelError as the last line of defence."""
    cases = [
        fuzz.Case(0, 0, "pool", "resize", "pool input resized to [1, 8, 2**31-1, 4]", _pool_model(),
                  resize=(0, [1, 8, 2**31 - 1, 4]), invoke=False),
        fuzz.Case(1, 0, "pool", "huge_shape", "pool input declared [1, 8, 2**31-1, 4]",
                  _pool_model((1, 8, 2**31 - 1, 4)), invoke=False),
        fuzz.Case(2, 0, "resize", "const_values", "resize to [2**31-1, 8]", _resize_nearest_model([2**31 - 1, 8]),
                  invoke=False),
    ]
    campaign = _run_in_worker(cases, tmp_path, "--rss-limit", "1")
    assert not campaign.crashes, _describe(campaign.crashes)
    assert all(r["kind"] == "ModelError" for r in campaign.results.values()), campaign.results


def test_bug_element_count_wraps_around(tmp_path):
    """BUG (fuzz huge_shape): Interpreter._place computes a tensor's size with
    ``np.prod(shape, dtype=np.int64)``, which wraps around: a [65536]*4 activation "needs
    0 bytes", passes the MAX_ARENA_BYTES check, and fails later in NumPy ("cannot reshape
    array of size 0"). Fix: multiply Python ints (``math.prod(shape) * itemsize``) in
    Interpreter._place, and likewise in reader._constant_view and wherever an element
    count is formed from a shape the model declares."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (65536,) * 4)
    y = b.add_tensor("y", TensorType.FLOAT32, (65536,) * 4)
    b.add_operator(BuiltinOperator.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    case = fuzz.Case(0, 0, "relu", "huge_shape", "[65536]*4 activation", b.finish(), invoke=False)
    campaign = _run_in_worker([case], tmp_path)
    result = campaign.results[case.name]
    assert result["kind"] == "ModelError" and "bytes" in result["message"], result


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("zero_point", [65536, -129, 2**40])
def test_bug_zero_point_outside_the_type(backend, zero_point):
    """BUG (fuzz quant): a uint8 activation whose zero point lies outside [0, 255] reaches
    ops/conv.py _depthwise_conv_2d_numba, where ``np.full(cin, zp, dtype=uint8)`` raises
    OverflowError. Fix: check every quantized tensor's zero points against its type's
    range where the quantization parameters are read for an op (e.g. in conv.py's
    quantization stage, or once for all ops in a shared helper of pydeeplab/quantization.py),
    raising ctx.error("input zero point 65536 is outside the UINT8 range [0, 255]")."""
    from pydeeplab.tflite.model import Quantization

    ir = fuzz.to_ir(fuzz.synthetic_seeds()["mini_uint8"])
    op = next(op for op in ir.ops if op.opcode == BuiltinOperator.DEPTHWISE_CONV_2D)
    t = ir.tensors[op.inputs[0]]
    t.quant = Quantization(scales=np.array(t.quant.scales), zero_points=np.array([zero_point], np.int64))
    with pytest.raises(ModelError, match="zero point"):
        Interpreter(model_content=fuzz.from_ir(ir), backend=backend).allocate_tensors()


def test_bug_ops_details_of_a_non_numeric_tensor():
    """BUG (fuzz tensor_type): Interpreter._get_ops_details does ``tensors[i].type.dtype.type``
    and raises AttributeError when an operator's tensor has a type without a NumPy dtype
    (STRING, VARIANT, RESOURCE, INT4, BFLOAT16). The model loads (the operator is known);
    allocate_tensors would refuse it, but details are read before that (verify, inspect).
    Fix: in _get_ops_details, None (or np.object_, as for strings in LiteRT) where
    ``type.dtype`` is None, as _details already does for tensors."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.STRING, (1, 4))
    b.add_operator(BuiltinOperator.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    it = Interpreter(model_content=b.finish())
    details = it._get_ops_details()
    assert details[0]["op_name"] == "RELU" and len(details[0]["result_types"]) == 1
    with pytest.raises(ModelError, match="STRING"):
        it.allocate_tensors()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflowing scale arithmetic, refused afterwards
@pytest.mark.parametrize("name", ["mini_uint8", "mini_int8", "zoo_uint8", "zoo_shape_int8"])
def test_every_quantization_parameter_broken(name, tmp_path):
    """Each quantized tensor in turn with scale 0, negative, NaN, inf, denormal or huge,
    and with a zero point outside its type: planned in this process (prepare only does
    small arithmetic), and a sample invoked in a worker."""
    cases = list(fuzz.quantization_sweep(name, fuzz.synthetic_seeds()[name]))
    wrong = []
    for case in cases:
        result = fuzz.execute(case.data, invoke=False)
        if result["kind"] not in fuzz.ALLOWED:
            wrong.append(f"{case.description}: {fuzz.Campaign.signature(result)}: {result['message'][:200]}")
    assert not wrong, "\n".join(wrong)
    campaign = _run_in_worker(cases[::7], tmp_path)
    assert not campaign.crashes, _describe(campaign.crashes)


def test_bug_mean_with_a_zero_output_scale():
    """BUG (fuzz quant): a quantized MEAN whose output scale is 0 raises ZeroDivisionError
    in ops/reduce.py mean_multiplier. Fix: check in prepare_mean (reduce.py ``_quant``, or a
    helper shared by every op that reads quantization) that scales are finite and > 0,
    raising ctx.error; conv.py already does ("... quantization scale must be positive")."""
    from pydeeplab.tflite.model import Quantization

    ir = fuzz.to_ir(fuzz.synthetic_seeds()["zoo_uint8"])
    op = next(op for op in ir.ops if op.opcode == BuiltinOperator.MEAN)
    t = ir.tensors[op.outputs[0]]
    t.quant = Quantization(scales=np.zeros(1, np.float32), zero_points=np.array(t.quant.zero_points))
    with pytest.raises(ModelError, match=r"MEAN.*scale"):
        Interpreter(model_content=fuzz.from_ir(ir)).allocate_tensors()


def test_bug_numpy_backend_pads_for_taps_that_never_touch_the_input(tmp_path):
    """BUG (fuzz options, numpy backend): a SAME convolution or pool whose dilated filter is
    huge (dilation_h_factor 2**30, or filter_width 2**30). The numba kernels skip the taps
    outside the input and run; the numpy reference (reference/pool.py ``_windows``, and
    reference/conv.py before it skipped those taps too) pads the input to the whole dilated extent and raises
    MemoryError (154 TiB for the 257 model). LiteRT refuses both at allocate_tensors
    (depthwise_conv.cc: ``dilation_height_factor <= INT16_MAX``; the pool fails to prepare).
    Fix: refuse them in prepare as TFLite does (dilation factors <= 32767 in
    ops/conv.py; a filter no larger than the padded input can use in ops/pool.py), and/or
    pad in the numpy reference only as far as taps that can reach the input."""
    ir = fuzz.to_ir(fuzz.synthetic_seeds()["mini_float"])
    k = next(k for k, op in enumerate(ir.ops) if op.opcode == BuiltinOperator.DEPTHWISE_CONV_2D)
    ir.ops[k].options = dataclasses.replace(ir.ops[k].options, dilation_h_factor=2**30)
    conv = fuzz.from_ir(ir)
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 8, 8, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 8, 8, 4))
    b.add_operator(BuiltinOperator.AVERAGE_POOL_2D, [x], [y],
                   Pool2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, filter_width=2**30, filter_height=3))
    b.set_inputs([x])
    b.set_outputs([y])
    pool = b.finish()
    cases = [fuzz.Case(0, 0, "mini_float", "options", "depthwise dilation_h 2**30", conv),
             fuzz.Case(1, 0, "pool", "options", "average pool filter_width 2**30", pool)]
    campaign = _run_in_worker(cases, tmp_path, "--backend", "numpy")
    assert not campaign.crashes, _describe(campaign.crashes)


def test_differential_max_error_in_chunks():
    """The differential's error over finite reference values, computed a chunk at a time (a whole large
    output in float64 exceeded a worker's memory): the same as over the whole array, any chunk size."""
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(1000).astype(np.float32)
    ref[::17] = np.inf
    ours = ref + rng.standard_normal(1000).astype(np.float32) * 1e-3
    finite = np.isfinite(ref)
    whole = float(np.abs(ours[finite].astype(np.float64) - ref[finite]).max())
    for chunk in (1, 7, 64, 1000, 4096):
        assert fuzz._max_error(ours, ref, finite, chunk) == whole
    assert fuzz._max_error(ours, ref, np.zeros(1000, bool), 64) == 0.0
    assert fuzz._max_error(None, ref, finite, 64) == float(np.abs(ref[finite]).max())  # (max |ref|)


def test_differential_judges_by_the_operators_fed_litert_inputs():
    """An output outside the contract is a mismatch only where an operator fed LiteRT's own inputs is
    (float errors grow along a chain of operators each within it): noted when every operator is within,
    counted, naming the operator, when one is not. An operator fed values near the float32 limit (3e38:
    sums overflow to inf in one order and not another) is not judged."""
    model = single_op_model(BuiltinOperator.RESHAPE, [T(np.zeros((1, 4), np.float32))], [T(None, np.float32, (4,))],
                            ReshapeOptions(new_shape=(4,)))

    def judged(x, shift=None, off=0.0):
        """The differential of our run on x, our operator's outputs shifted by ``shift``, the output by ``off``."""
        ours = Interpreter(model_content=model)
        ours.allocate_tensors()
        ours.set_tensor(ours.get_input_details()[0]["index"], x)
        ours.invoke()
        out = ours.get_tensor(ours.get_output_details()[0]["index"])
        if shift is not None:  # our operator itself off
            real = ours.run_op
            ours.run_op = lambda index, feeds: [shift(y) for y in real(index, feeds)]
            out = shift(out)
        return fuzz._differential(model, [(0, x)], [out + np.float32(off)], ours)

    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    assert judged(x) == {"kind": "ok", "stage": "done", "litert": "agrees"}
    noted = judged(x, off=1e-3)  # as a long chain of operators, each within the contract, could end
    assert noted["kind"] == "ok" and noted["litert"].startswith("noted: output 0: max error 0.001"), noted

    counted = judged(x, lambda y: y + np.float32(1e-3))
    assert counted["kind"] == "mismatch", counted
    assert counted["message"].startswith("output 0: max error 0.001") and \
        "; operator 0 (RESHAPE) fed LiteRT's inputs: max error 0.001" in counted["message"], counted
    counted = judged(x, lambda y: np.where(np.arange(4) == 2, np.nan, y))
    assert counted["message"] == ("output 0: non-finite values differ; operator 0 (RESHAPE) fed LiteRT's inputs: "
                                  "non-finite values differ"), counted

    inf = lambda y: np.where(np.arange(4) == 1, np.inf, y)  # noqa: E731
    near = judged(np.full((1, 4), 3e38, np.float32), inf)
    assert near["kind"] == "ok" and near["litert"].endswith(
        "(not judged, fed values near the float32 limit: operators 0)"), near
    assert judged(np.full((1, 4), 1.0, np.float32), inf)["kind"] == "mismatch"
    assert fuzz._near_float_limit(np.array([1.0, -3e38, np.inf], np.float32))
    assert not fuzz._near_float_limit(np.array([np.inf, -np.inf, np.nan, 9e37], np.float32))
    assert not fuzz._near_float_limit(np.array([2**31 - 1], np.int32))

"""pydeeplab/replay.py and the recording in kernels/parallel.py: runs of the plan from recorded launches."""

import threading

import numpy as np
import pytest
from numba import njit

import pydeeplab
from pydeeplab.kernels import parallel
from pydeeplab.kernels.parallel import FRAME_BYTES, in_parallel, recorded_call, recording, replay, replayable, team
from pydeeplab.replay import PLAIN_RUNS, Replays
from pydeeplab.tflite.options import Conv2DOptions, DepthwiseConv2DOptions
from pydeeplab.tflite.schema import BuiltinOperator as B
from pydeeplab.tflite.schema import Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

RECORDED = PLAIN_RUNS + 2  # runs before a replay


@njit(nogil=True)
def _add_rows(x, value, out, t, nt):
    """out = x + value over the rows of part t of nt."""
    for i in range(x.shape[0] * t // nt, x.shape[0] * (t + 1) // nt):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] + value


@pytest.mark.parametrize("nt", [1, 2])
def test_a_recorded_launch_runs_again_on_the_memory_it_was_recorded_on(nt):
    x, out = np.arange(12.0).reshape(6, 2), np.zeros((6, 2))
    run = in_parallel(_add_rows)
    with team(2), recording() as launches:
        run(x, 1.5, out, nt=nt)
    assert len(launches) == 1 and launches[0].nt == nt and launches[0].record != 0
    np.testing.assert_array_equal(out, x + 1.5)
    x += 10.0  # new values in the same memory: the replay reads them
    with team(2):
        replay(np.array([launches[0].row()], np.int64), nt)
    np.testing.assert_array_equal(out, x + 1.5)


def test_launches_are_the_same_only_on_the_same_memory_and_values():
    x, out = np.zeros((4, 2)), np.zeros((4, 2))
    run = in_parallel(_add_rows)
    with recording() as made:
        run(x, 1.0, out, nt=1)
        run(x, 1.0, out, nt=1)
        run(x.copy(), 1.0, out, nt=1)  # another array
        run(x, 2.0, out, nt=1)  # another value
        run(x, 1.0, out, nt=2)  # another number of parts
    first = made[0]
    assert first.same_as(made[1])
    assert not any(first.same_as(other) for other in made[2:])


def test_a_launch_outside_a_recording_keeps_nothing():
    x, out = np.zeros((4, 2)), np.zeros((4, 2))
    with recording() as made:
        pass
    in_parallel(_add_rows)(x, 1.0, out, nt=1)
    assert made == [] and FRAME_BYTES >= 1024


def test_calls_are_recorded_in_order_among_the_launches_and_the_same_only_on_the_same_memory():
    x, out = np.zeros((4, 2)), np.zeros((4, 2))
    run = in_parallel(_add_rows)
    with recording() as made:
        run(x, 1.0, out, nt=1)
        recorded_call(np.multiply, out, 2.0, out)
        recorded_call(np.multiply, out, 2.0, out)
        recorded_call(np.multiply, out.copy(), 2.0, out)  # another array
        recorded_call(np.add, out, 2.0, out)  # another function
    np.testing.assert_array_equal(out, np.full((4, 2), 10.0))  # ((1 * 2) * 2) * 2 + 2
    launch, call = made[0], made[1]
    assert [type(m).__name__ for m in made] == ["Launch", "Call", "Call", "Call", "Call"]
    assert call.same_as(made[2]) and not call.same_as(made[3]) and not call.same_as(made[4])
    assert not call.same_as(launch) and not launch.same_as(call)


def test_a_launch_without_the_jit_is_recorded_as_one_that_cannot_be_replayed(monkeypatch):
    x, out = np.zeros((4, 2)), np.zeros((4, 2))
    run = in_parallel(_add_rows)
    monkeypatch.setattr(parallel.config, "DISABLE_JIT", True)
    with recording() as made:
        run(x, 1.0, out, nt=2)
        run(x, 1.0, out, nt=2)
    np.testing.assert_array_equal(out, x + 1.0)
    assert len(made) == 2 and made[0].record == 0 and not made[0].same_as(made[1])


class _Step:
    """A step as the interpreter keeps one: its run and its arrays."""

    def __init__(self, run, in_arrays, out_arrays):
        self.run, self.in_arrays, self.out_arrays = run, in_arrays, out_arrays


def _steps():
    """Four steps on x -> a -> b -> c -> d: a marked launch on fixed arrays, a marked launch on a
    temporary copy of its input at every run, a run that is not marked (NumPy), and a marked run of
    two launches around a recorded call."""
    x, a, b, c, d = (np.zeros((4, 3)) for _ in range(5))
    add = in_parallel(_add_rows)
    copying = in_parallel(_add_rows)
    first, second = in_parallel(_add_rows), in_parallel(_add_rows)
    fixed = replayable(lambda ins, outs: add(ins[0], 1.0, outs[0], nt=1))
    temporary = replayable(lambda ins, outs: copying(ins[0].copy(), 2.0, outs[0], nt=1))

    def numpy_run(ins, outs):
        np.multiply(ins[0], 3.0, out=outs[0])

    @replayable
    def around_a_call(ins, outs):  # d = (c + 1) * 2 + 1
        first(ins[0], 1.0, outs[0], nt=2)
        recorded_call(np.multiply, outs[0], 2.0, outs[0])
        second(outs[0], 1.0, outs[0], nt=2)

    return x, d, [_Step(fixed, [x], [a]), _Step(temporary, [a], [b]), _Step(numpy_run, [b], [c]),
                  _Step(around_a_call, [c], [d])]


@pytest.mark.parametrize("threads", [1, 2])
def test_only_marked_steps_whose_two_recordings_agree_are_replayed(threads):
    x, d, steps = _steps()
    replays = Replays(steps)
    with team(threads):
        for k in range(RECORDED + 3):
            x[...] = k
            replays.run()
            np.testing.assert_array_equal(d, ((k + 3.0) * 3.0 + 1.0) * 2.0 + 1.0, err_msg=f"run {k}")
        assert replays.replayed_steps == 2


def test_each_thread_records_its_own_runs():
    x, d, steps = _steps()
    replays = Replays(steps)
    with team(1):
        for _ in range(RECORDED):
            replays.run()
        assert replays.replayed_steps == 2
    seen = []

    def other() -> None:
        with team(1):
            seen.append(replays.replayed_steps)
            replays.run()

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert seen == [0]


def _model(rng) -> bytes:
    """x -> CONV_2D -> DEPTHWISE -> LOGISTIC (two launches around NumPy's exp) -> CONV_2D."""
    b = ModelBuilder(description="replay")
    f32 = TensorType.FLOAT32
    x = b.add_tensor("x", f32, (1, 12, 10, 3))
    t = [b.add_tensor(f"t{k}", f32, (1, 12, 10, 8)) for k in range(4)]
    w = b.add_constant("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))
    w2 = b.add_constant("w2", rng.standard_normal((8, 1, 1, 8)).astype(np.float32))
    dw = b.add_constant("dw", rng.standard_normal((1, 3, 3, 8)).astype(np.float32))
    bias = b.add_constant("bias", rng.standard_normal(8).astype(np.float32))
    same = Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1)
    b.add_operator(B.CONV_2D, [x, w, bias], [t[0]], same)
    b.add_operator(B.DEPTHWISE_CONV_2D, [t[0], dw, bias], [t[1]],
                   DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, depth_multiplier=1))
    b.add_operator(B.LOGISTIC, [t[1]], [t[2]])
    b.add_operator(B.CONV_2D, [t[2], w2, bias], [t[3]], same)
    b.set_inputs([x])
    b.set_outputs([t[3]])
    return b.finish()


def _outputs(it) -> list[np.ndarray]:
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _feed(it, seed) -> None:
    rng = np.random.default_rng(seed)
    for d in it.get_input_details():
        if d["dtype"] == np.float32:
            it.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(np.float32))
        else:
            it.set_tensor(d["index"], rng.integers(0, 256, d["shape"]).astype(d["dtype"]))


def _replayed(it) -> int:
    with it._threads():
        return it._replays.replayed_steps


def _same_as_step_by_step(it, seeds) -> None:
    """Replayed invokes give the bits of the step-by-step path (invoke_profiled) on each new input."""
    for seed in seeds:
        _feed(it, seed)
        it.invoke()
        replayed = _outputs(it)
        _feed(it, seed + 1000)
        it.invoke()
        _feed(it, seed)
        it.invoke_profiled()
        for a, b in zip(replayed, _outputs(it)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2])
def test_an_interpreter_replays_its_launches_with_the_same_bits(threads):
    it = pydeeplab.Interpreter(model_content=_model(np.random.default_rng(0)), num_threads=threads)
    it.allocate_tensors()
    for seed in range(RECORDED):
        assert _replayed(it) == 0
        _feed(it, seed)
        it.invoke()
    assert _replayed(it) == len(it._program)
    _same_as_step_by_step(it, [7, 8])


def test_placing_the_arena_again_drops_the_recordings():
    it = pydeeplab.Interpreter(model_content=_model(np.random.default_rng(1)), num_threads=1)
    it.allocate_tensors()
    for seed in range(RECORDED):
        _feed(it, seed)
        it.invoke()
    assert _replayed(it) > 0
    it.resize_tensor_input(0, [1, 14, 9, 3])
    it.allocate_tensors()
    assert _replayed(it) == 0
    for seed in range(RECORDED):
        _feed(it, seed)
        it.invoke()
    assert _replayed(it) > 0
    _same_as_step_by_step(it, [3])


def test_the_numpy_backend_runs_its_steps_as_planned():
    it = pydeeplab.Interpreter(model_content=_model(np.random.default_rng(2)), backend="numpy")
    it.allocate_tensors()
    assert it._replays is None


@pytest.mark.parametrize("name", ["deeplabv3_257_mv_gpu", "deeplabv3_mnv2_dm05_pascal_quant", "selfie_segmenter"])
@pytest.mark.parametrize("threads", [1, 2])
def test_real_models_replay_most_steps_with_the_same_bits(model_path, name, threads):
    it = pydeeplab.Interpreter(model_path=str(model_path(name)), num_threads=threads)
    it.allocate_tensors()
    for seed in range(RECORDED):
        _feed(it, seed)
        it.invoke()
    assert _replayed(it) >= len(it._program) * 2 // 3
    _same_as_step_by_step(it, [11, 12])

"""Custom operators: MediaPipe's and MLPerf's, and the registry users extend.

Oracles that are not ours: LiteRT on a builtin rewrite (Convolution2DTransposeBias
as TRANSPOSE_CONV with bias; MaxPoolingWithArgmax2D's values as MAX_POOL_2D; the
MLPerf segmenter cut before ResizeArgmax) and, where no builtin exists, direct
loop formulations written from the public sources (one scalar loop per output,
as the C++ does), on small constructed cases.
"""

import struct

import numpy as np
import pytest
from oracle import run_litert

import pydeeplab
from pydeeplab import ModelError, OpContext, Prepared, UnsupportedOperatorError
from pydeeplab.errors import CustomOpRegistrationError
from pydeeplab.tflite.options import Pool2DOptions
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.surgery import litert_equivalent
from pydeeplab.tflite.writer import ModelBuilder

BACKENDS = ("numpy", "numba")


def _custom_model(name: str, options: bytes, inputs: list[tuple[np.ndarray, bool]],
                  outputs: list[tuple[TensorType, tuple[int, ...]]]) -> bytes:
    """One custom operator; inputs are (value, is_constant)."""
    b = ModelBuilder(description=name)
    idx, graph_inputs = [], []
    for k, (value, const) in enumerate(inputs):
        if const:
            idx.append(b.add_constant(f"c{k}", value))
        else:
            i = b.add_tensor(f"x{k}", TensorType.FLOAT32 if value.dtype == np.float32 else TensorType.UINT8,
                             value.shape)
            idx.append(i)
            graph_inputs.append(i)
    outs = [b.add_tensor(f"y{k}", t, shape) for k, (t, shape) in enumerate(outputs)]
    b.add_operator(BuiltinOperator.CUSTOM, idx, outs, custom_code=name, custom_options=options)
    b.set_inputs(graph_inputs)
    b.set_outputs(outs)
    return b.finish()


def _run(model: bytes, feeds: list[np.ndarray], backend: str) -> list[np.ndarray]:
    it = pydeeplab.Interpreter(model_content=model, backend=backend)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


# --------------------------------------------------------------------------- Convolution2DTransposeBias


def _transpose_conv_bias_loops(x, w, bias, stride, pad):
    """mediapipe transpose_conv_bias.cc, loop for loop (float64 accumulation)."""
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    sh, sw = stride
    pad_h = max(0, kh - (h - 1) % sh - 1) if pad == 1 else 0
    pad_w = max(0, kw - (wd - 1) % sw - 1) if pad == 1 else 0
    oh, ow = sh * (h - 1) + kh - pad_h, sw * (wd - 1) + kw - pad_w
    out = np.tile(bias.astype(np.float64), (n, oh, ow, 1))
    for b in range(n):
        for iy in range(h):
            for ix in range(wd):
                for fy in range(kh):
                    for fx in range(kw):
                        oy, ox = iy * sh - pad_h // 2 + fy, ix * sw - pad_w // 2 + fx
                        if 0 <= oy < oh and 0 <= ox < ow:
                            out[b, oy, ox] += w[:, fy, fx, :] @ x[b, iy, ix].astype(np.float64)
    return out


@pytest.mark.parametrize("geometry", [
    # (H, W, KH, KW, stride_h, stride_w, padding)
    (5, 6, 4, 4, 2, 2, 1), (4, 4, 3, 3, 2, 2, 1), (3, 5, 2, 2, 2, 2, 2), (4, 3, 3, 2, 1, 2, 2), (5, 5, 5, 3, 3, 2, 1),
    # kernel = stride (the numba backend's matrix product into blocks), and one it crops (the general kernel)
    (4, 6, 2, 2, 2, 2, 1), (3, 4, 3, 2, 3, 2, 1), (5, 4, 2, 2, 2, 2, 1),
])
def test_convolution_2d_transpose_bias(geometry):
    h, w, kh, kw, sh, sw, pad = geometry
    rng = np.random.default_rng(sum(geometry))
    x = rng.standard_normal((1, h, w, 3)).astype(np.float32)
    weights = rng.standard_normal((5, kh, kw, 3)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    expected = _transpose_conv_bias_loops(x, weights, bias, (sh, sw), pad)
    options = struct.pack("<3i", pad, sw, sh)
    model = _custom_model("Convolution2DTransposeBias", options,
                          [(x, False), (weights, True), (bias, True)], [(TensorType.FLOAT32, expected.shape)])
    tol = 1e-5 * (1 + np.abs(expected).max())
    ours = {backend: _run(model, [x], backend)[0] for backend in BACKENDS}
    for out in ours.values():
        assert out.shape == expected.shape
        assert np.abs(out - expected).max() <= tol
    # LiteRT, with the operator rewritten to TRANSPOSE_CONV + bias: the same numbers wherever the
    # builtin, which derives its padding from the output size, crops the same rows and columns.
    eq = litert_equivalent(model)
    assert eq.rewritten == {0: "Convolution2DTransposeBias"} and not eq.cut
    (theirs,) = run_litert(eq.content, [x])
    if _builtin_crop_agrees(h, kh, sh, expected.shape[1], pad) and _builtin_crop_agrees(w, kw, sw, expected.shape[2], pad):
        for out in ours.values():
            assert np.abs(out - theirs).max() <= tol


def _builtin_crop_agrees(size, k, s, out, pad) -> bool:
    """Whether TRANSPOSE_CONV's top padding (ComputePaddingHeightWidth on the output size) is MediaPipe's."""
    if pad != 1:
        return True
    builtin = max((-(-out // s) - 1) * s + k - out, 0) // 2
    return builtin == max(0, k - (size - 1) % s - 1) // 2


def test_convolution_2d_transpose_bias_refuses_clearly():
    x = np.zeros((1, 4, 4, 3), np.float32)
    w, b = np.zeros((2, 3, 3, 3), np.float32), np.zeros(2, np.float32)
    for options, message in ((b"\x01\x00", "custom options hold 2 bytes"),
                             (struct.pack("<3i", 1, 0, 2), "stride_w is 0")):
        model = _custom_model("Convolution2DTransposeBias", options, [(x, False), (w, True), (b, True)],
                              [(TensorType.FLOAT32, (1, 8, 8, 2))])
        with pytest.raises(ModelError, match=message):
            pydeeplab.Interpreter(model_content=model).allocate_tensors()


def _selfie_input(image_path) -> np.ndarray:
    from PIL import Image

    rgb = Image.open(image_path("grace_hopper.bmp")).convert("RGB").resize((256, 256), Image.BILINEAR)
    return (np.asarray(rgb, dtype=np.float32) / 255)[None]  # the model's metadata: [0, 1] input


def test_selfie_segmenter_against_litert_rewrite(model_path, image_path):
    content = model_path("selfie_segmenter").read_bytes()
    x = _selfie_input(image_path)
    eq = litert_equivalent(content)
    assert list(eq.rewritten.values()) == ["Convolution2DTransposeBias"] and not eq.cut
    (theirs,) = run_litert(eq.content, [x], resolver="default")
    for backend in BACKENDS:
        (ours,) = _run(content, [x], backend)
        assert np.abs(ours - theirs).max() <= 1e-4 * (1 + np.abs(theirs).max()), backend
        assert np.mean((ours > 0.5) == (theirs > 0.5)) >= 0.9999


def test_selfie_segmenter_against_mediapipe(model_path, image_path):
    """MediaPipe's own runtime (its custom op kernel) on the same [0, 1] input, end to end."""
    vision = pytest.importorskip("mediapipe.tasks.python.vision")
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions

    path = model_path("selfie_segmenter")
    x = _selfie_input(image_path)
    rgb = np.ascontiguousarray(np.round(x[0] * 255).astype(np.uint8))
    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                           output_confidence_masks=True, output_category_mask=False)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    theirs = result.confidence_masks[0].numpy_view().reshape(256, 256)
    (ours,) = _run(path.read_bytes(), [x], "numba")
    assert np.abs(ours[0, :, :, 0] - theirs).max() <= 5e-5  # measured 1.9e-5 (the data README: ~2e-5)
    # The two oracles agree with each other too: MediaPipe and LiteRT on the TRANSPOSE_CONV rewrite.
    (lite,) = run_litert(litert_equivalent(path.read_bytes()).content, [x], resolver="default")
    assert np.abs(lite[0, :, :, 0] - theirs).max() <= 5e-5


# --------------------------------------------------------------------------- MediaPipe pooling


def _pool_options(padding, sw, sh, fw, fh, act=0) -> bytes:
    return struct.pack("<6i", padding, sw, sh, fw, fh, act)


def _max_pool_argmax_loops(x, fh, fw, sh, sw, padding):
    """max_pool_argmax.cc, loop for loop."""
    n, h, w, c = x.shape
    if padding == 1:
        oh, ow = (h + sh - 1) // sh, (w + sw - 1) // sw
    else:
        oh, ow = (h - fh + sh) // sh, (w - fw + sw) // sw
    ph = max(0, ((oh - 1) * sh + fh - h) // 2)
    pw = max(0, ((ow - 1) * sw + fw - w) // 2)
    out = np.zeros((n, oh, ow, c), np.float32)
    idx = np.zeros((n, oh, ow, c), np.float32)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    y0, x0 = oy * sh - ph, ox * sw - pw
                    best, my, mx = np.finfo(np.float32).min, 0, 0
                    for fy in range(max(0, -y0), min(fh, h - y0)):
                        for fx in range(max(0, -x0), min(fw, w - x0)):
                            if x[b, y0 + fy, x0 + fx, ch] > best:
                                best, my, mx = x[b, y0 + fy, x0 + fx, ch], fy, fx
                    out[b, oy, ox, ch] = best
                    idx[b, oy, ox, ch] = np.float32(my * fw + mx) + np.float32(0.1)
    return out, idx


@pytest.mark.parametrize("case", [(6, 6, 2, 2, 2, 2, 2), (7, 5, 3, 3, 2, 2, 1), (5, 6, 2, 3, 1, 2, 1)])
def test_max_pooling_with_argmax(case):
    h, w, fh, fw, sh, sw, padding = case
    rng = np.random.default_rng(h * w)
    x = rng.integers(-3, 4, (2, h, w, 3)).astype(np.float32)  # small integers: ties in most windows
    values, indices = _max_pool_argmax_loops(x, fh, fw, sh, sw, padding)
    model = _custom_model("MaxPoolingWithArgmax2D", _pool_options(padding, sw, sh, fw, fh), [(x, False)],
                          [(TensorType.FLOAT32, values.shape)] * 2)
    for backend in BACKENDS:
        out, idx = _run(model, [x], backend)
        np.testing.assert_array_equal(out, values)
        np.testing.assert_array_equal(idx, indices)
    # The pooled values are LiteRT's MAX_POOL_2D with the same window.
    b = ModelBuilder()
    xi = b.add_tensor("x", TensorType.FLOAT32, x.shape)
    yi = b.add_tensor("y", TensorType.FLOAT32, values.shape)
    b.add_operator(BuiltinOperator.MAX_POOL_2D, [xi], [yi], Pool2DOptions(
        padding=Padding.SAME if padding == 1 else Padding.VALID, stride_w=sw, stride_h=sh,
        filter_width=fw, filter_height=fh))
    b.set_inputs([xi])
    b.set_outputs([yi])
    (theirs,) = run_litert(b.finish(), [x])
    np.testing.assert_array_equal(values, theirs)


def _max_unpool_loops(x, indices, fh, fw, sh, sw):
    """max_unpooling.cc, loop for loop (C integer conversion and division)."""
    n, h, w, c = x.shape
    oh, ow = h * fh, w * fw
    ph, pw = max(0, ((h - 1) * sh + fh - oh) // 2), max(0, ((w - 1) * sw + fw - ow) // 2)
    out = np.zeros((n, oh, ow, c), np.float32)
    for b in range(n):
        for y in range(h):
            for xx in range(w):
                for ch in range(c):
                    k = int(indices[b, y, xx, ch])  # truncation toward zero
                    dy, dx = abs(k) // fw * (1 if k >= 0 else -1), abs(k) % fw * (1 if k >= 0 else -1)
                    oy, ox = y * sh - ph + dy, xx * sw - pw + dx
                    if 0 <= oy < oh and 0 <= ox < ow:
                        out[b, oy, ox, ch] = x[b, y, xx, ch]
    return out


def test_max_unpooling_round_trip_and_bad_indices():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 6, 2)).astype(np.float32)
    pooled, indices = _max_pool_argmax_loops(x, 2, 2, 2, 2, 2)
    # Every index a pooling produced, then hostile ones: negative, too large, fractional, duplicates.
    hostile = indices.copy()
    hostile[0, 0, 0, 0], hostile[0, 1, 1, 1], hostile[0, 2, 2, 0] = -1.5, 7.9, 3.99
    hostile[0, 3, 0, :] = 1.1
    for idx in (indices, hostile):
        expected = _max_unpool_loops(pooled, idx, 2, 2, 2, 2)
        model = _custom_model("MaxUnpooling2D", _pool_options(2, 2, 2, 2, 2), [(pooled, False), (idx, False)],
                              [(TensorType.FLOAT32, expected.shape)])
        for backend in BACKENDS:
            (out,) = _run(model, [pooled, idx], backend)
            np.testing.assert_array_equal(out, expected)
    # The round trip puts each window's maximum back where it was, zeros elsewhere.
    back = _max_unpool_loops(pooled, indices, 2, 2, 2, 2)
    assert np.array_equal(np.where(back != 0, x, 0), back)


# --------------------------------------------------------------------------- ResizeArgmax


def _resize_argmax_loops(x):
    """resize_argmax_op.cc (portable path), block by block, on a square NHWC input."""
    _, h, w, c = x.shape
    a = [[int(np.argmax(x[0, y, xx])) for xx in range(w)] for y in range(h)]
    out = np.zeros((1, 4 * h, 4 * w), np.int32)
    for y in range(h):
        for xx in range(w):
            if y == h - 1 or xx == w - 1 or a[y][xx] == a[y][xx + 1] == a[y + 1][xx] == a[y + 1][xx + 1]:
                out[0, 4 * y : 4 * y + 4, 4 * xx : 4 * xx + 4] = a[y][xx]
                continue
            best, pick = [0] * 16, [0] * 16
            for ch in range(c):
                tl, tr = int(x[0, y, xx, ch]), int(x[0, y, xx + 1, ch])
                bl, br = int(x[0, y + 1, xx, ch]), int(x[0, y + 1, xx + 1, ch])
                top = [tl, (tl * 3 + tr) // 4, (tl + tr) // 2, (tl + tr * 3) // 4]
                bot = [bl, (bl * 3 + br) // 4, (bl + br) // 2, (bl + br * 3) // 4]
                vals = top + [(t * 3 + u) // 4 for t, u in zip(top, bot)] + [(t + u) // 2 for t, u in zip(top, bot)] \
                    + [(t + u * 3) // 4 for t, u in zip(top, bot)]
                for i in range(16):
                    if vals[i] > best[i]:
                        best[i], pick[i] = vals[i], ch
            out[0, 4 * y : 4 * y + 4, 4 * xx : 4 * xx + 4] = np.reshape(pick, (4, 4))
    return out


def _resize_argmax_cases():
    rng = np.random.default_rng(7)
    yield rng.integers(0, 256, (1, 6, 6, 5)).astype(np.uint8)  # random logits
    yield rng.integers(0, 3, (1, 5, 5, 4)).astype(np.uint8)  # ties everywhere, zeros
    flat = np.zeros((1, 4, 4, 3), np.uint8)  # all zero: class 0 everywhere
    yield flat
    two = np.zeros((1, 5, 5, 3), np.uint8)  # a class boundary: blended blocks along it
    two[0, :, :2, 0], two[0, :, 2:, 2], two[0, 2, 2, 1] = 200, 180, 255
    yield two


def test_resize_argmax_constructed_cases():
    for x in _resize_argmax_cases():
        expected = _resize_argmax_loops(x)
        size = np.int32([4 * x.shape[1], 4 * x.shape[2]])
        model = _custom_model("ResizeArgmax", b"", [(x, False), (size, True), (np.int32([3]), True)],
                              [(TensorType.INT32, expected.shape)])
        for backend in BACKENDS:
            (out,) = _run(model, [x], backend)
            np.testing.assert_array_equal(out, expected)


def test_resize_argmax_refuses_other_axes():
    x = np.zeros((1, 4, 4, 3), np.uint8)
    model = _custom_model("ResizeArgmax", b"", [(x, False), (np.int32([16, 16]), True), (np.int32([1]), True)],
                          [(TensorType.INT32, (1, 16, 16))])
    with pytest.raises(ModelError, match=r"ResizeArgmax\): axis is \[1\]"):
        pydeeplab.Interpreter(model_content=model).allocate_tensors()


def test_mobile_segmenter_against_litert_cut(model_path, image_path):
    """LiteRT runs the model cut before ResizeArgmax: logits bit-exact; then the op on those logits."""
    from pydeeplab.verification import make_inputs

    content = model_path("mobile_segmenter_r3_quant").read_bytes()
    eq = litert_equivalent(content)
    assert not eq.rewritten and len(eq.cut) == 1
    g = pydeeplab.read_model(content).main
    last = g.operators[max(eq.cut)]
    logits_index = last.inputs[0]
    x = make_inputs(g, image_path("ade20k/ADE_val_00000001.jpg"))
    (logits,) = run_litert(eq.content, x, resolver="ref")
    for backend in BACKENDS:
        it = pydeeplab.Interpreter(model_content=content, backend=backend,
                                   experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x[0])
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(logits_index), logits)
        labels = it.get_tensor(it.get_output_details()[0]["index"])
        # The op's own definition on a sample of blocks (the loop formulation is slow on 128x128).
        crop = logits[:, 40:56, 60:76]
        np.testing.assert_array_equal(labels[:, 160:220, 240:300],
                                      _resize_argmax_loops(crop)[:, :60, :60], err_msg=backend)


# --------------------------------------------------------------------------- the registry


def _times(ctx: OpContext) -> Prepared:
    """A user's custom op: y = x * factor, factor an int32 in the custom options."""
    ctx.expect_io(1)
    if len(ctx.custom_options or b"") != 4:
        raise ctx.error("custom options must hold one int32 factor")
    (factor,) = struct.unpack("<i", ctx.custom_options)

    def run(inputs, outputs):
        np.multiply(inputs[0], factor, out=outputs[0])

    return Prepared((ctx.inputs[0].shape,), run)


def _times_model(name: str = "Times", options: bytes = struct.pack("<i", 3)) -> bytes:
    x = np.zeros((2, 3), np.float32)
    return _custom_model(name, options, [(x, False)], [(TensorType.FLOAT32, (2, 3))])


def test_registered_custom_op_runs():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(UnsupportedOperatorError, match=r"CUSTOM\(Times\).*register_custom_op\('Times'"):
        pydeeplab.Interpreter(model_content=_times_model())
    pydeeplab.register_custom_op("Times", _times)
    try:
        for backend in BACKENDS:
            np.testing.assert_array_equal(_run(_times_model(), [x], backend)[0], 3 * x)
        with pytest.raises(CustomOpRegistrationError, match="already registered"):
            pydeeplab.register_custom_op("Times", _times)
        with pytest.raises(ModelError, match=r"operator 0 \(Times\): custom options must hold"):
            pydeeplab.Interpreter(model_content=_times_model(options=b"")).allocate_tensors()
    finally:
        pydeeplab.unregister_custom_op("Times")


def test_interpreter_custom_ops_argument_takes_precedence():
    x = np.ones((2, 3), np.float32)

    def negate(ctx):
        return Prepared((ctx.inputs[0].shape,), lambda inputs, outputs: np.negative(inputs[0], out=outputs[0]))

    it = pydeeplab.Interpreter(model_content=_times_model("Convolution2DTransposeBias"),
                               custom_ops={"Convolution2DTransposeBias": negate})
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), -x)


def test_bad_registrations_are_refused_clearly():
    with pytest.raises(CustomOpRegistrationError, match="non-empty string"):
        pydeeplab.register_custom_op("", _times)
    with pytest.raises(CustomOpRegistrationError, match="prepare must be a function"):
        pydeeplab.register_custom_op("X", "not a function")
    with pytest.raises(CustomOpRegistrationError, match="prepare must be a function"):
        pydeeplab.Interpreter(model_content=_times_model(), custom_ops={"Times": 3})
    with pytest.raises(CustomOpRegistrationError, match="not registered"):
        pydeeplab.unregister_custom_op("NoSuchOp")
    # A prepare that returns the wrong thing, or fails, is named in the error.
    for prepare, message in ((lambda ctx: (ctx.inputs[0].shape,), "prepare returned tuple"),
                             (lambda ctx: 1 / 0, "its prepare function failed: ZeroDivisionError")):
        it = pydeeplab.Interpreter(model_content=_times_model(), custom_ops={"Times": prepare})
        with pytest.raises(ModelError, match=rf"operator 0 \(Times\): {message}"):
            it.allocate_tensors()


def test_verify_holds_a_custom_op_against_its_builtin_rewrite(tmp_path):
    from pydeeplab.verification import format_report, verify

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    weights, bias = rng.standard_normal((2, 3, 3, 3)).astype(np.float32), np.float32([0.5, -0.5])
    model = _custom_model("Convolution2DTransposeBias", struct.pack("<3i", 1, 2, 2),
                          [(x, False), (weights, True), (bias, True)], [(TensorType.FLOAT32, (1, 8, 8, 2))])
    path = tmp_path / "tcb.tflite"
    path.write_bytes(model)
    report = verify(path, backend="numpy")
    assert report.ok and len(report.isolated) == 1
    assert report.isolated[0].note == "held against LiteRT's builtin rewrite of Convolution2DTransposeBias"
    assert report.isolated[0].max_abs <= report.isolated[0].tolerance
    assert "builtin rewrite" in format_report(report)

"""The conformance sweep (tools/sweep.py) as CI runs it: every operator's fixed grid plus
Hypothesis-drawn cases with a fixed seed, each case run by LiteRT (BUILTIN_REF) and by
both of our backends. Float within 1e-5 * (1 + max|ref|), integer identical.

Per-operator counts are printed at the end of the module (even under ``-q``). A failing
case fails its operator's test, listing (up to 20 of) the failing cases with the one-line
command that reproduces each; there is no list of tolerated failures. An operator not in
``pydeeplab.ops.REGISTRY`` is skipped, saying so.

Long local run: ``python tools/sweep.py --deep 10000``.
"""

import sys
from pathlib import Path

import pytest

# tools/ is not an installed package: import the sweep from the repository's tools folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import sweep  # noqa: E402

from pydeeplab.ops import REGISTRY  # noqa: E402
from pydeeplab.tflite.schema import BuiltinOperator  # noqa: E402


@pytest.fixture(scope="module")
def totals(request):
    """One Sweep that collects every operator's counts; its table is printed at module end."""
    s = sweep.Sweep()
    yield s
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n\nconformance sweep (LiteRT BUILTIN_REF vs numpy and numba backends)\n" + s.table())


@pytest.mark.parametrize("op", sweep.OPS)
def test_sweep(op, totals):
    if BuiltinOperator[op] not in REGISTRY:
        pytest.skip(f"{op} is not implemented (not in pydeeplab.ops.REGISTRY)")
    s = sweep.Sweep()
    sweep.run_grid(s, op)
    sweep.run_random(s, op, sweep.examples_for(op), sweep.CI_SEED)
    for key, n in s.counts.items():
        totals.counts[key] += n
    totals.failures += s.failures
    totals.seconds += s.seconds
    ran = sum(n for (_, _, status), n in s.counts.items() if status in ("pass", "rejected"))
    assert ran > 0
    if s.failures:
        lines = [f"{len(s.failures)} of {s.total} {op} cases fail:"]
        for r in s.failures[:20]:
            lines.append(f"  {r.status} ({r.dtype}): {r.message}\n    python tools/sweep.py --case '{r.key}'")
        pytest.fail("\n".join(lines), pytrace=False)


def test_cases_are_reproducible():
    """A case rebuilt from its key has the same data (the printed reproduction is exact)."""
    import numpy as np

    for op in ("CONV_2D", "CONCATENATION", "MEAN"):
        dtype, params = sweep.grid_cases(op)[4]
        a, b = sweep.make_case(op, dtype, params), sweep.make_case(op, dtype, params)
        assert a.key() == b.key()
        for x, y in zip(a.inputs + a.outputs, b.inputs + b.outputs):
            if x is None:
                continue
            if x.value is not None:
                assert np.array_equal(x.array(), y.array())
            assert (x.quant is None) == (y.quant is None)
            if x.quant is not None:
                assert np.array_equal(x.quant.scales, y.quant.scales)
                assert np.array_equal(x.quant.zero_points, y.quant.zero_points)


def test_grid_covers_the_issue():
    """The fixed grid holds the parameter values the conformance issue lists."""
    conv = [p for d, p in sweep.grid_cases("CONV_2D")]
    assert {p["kh"] for p in conv} >= {1, 3, 5}
    assert {p["stride"][0] for p in conv} >= {1, 2}
    assert {p["dilation"][0] for p in conv} >= {1, 2, 4, 6, 12, 18}
    assert {p["padding"] for p in conv} == {"SAME", "VALID"}
    assert {p["act"] for p in conv} == set(sweep.ACTIVATIONS)
    assert {p["h"] % 2 for p in conv} == {0, 1}
    dw = [p for d, p in sweep.grid_cases("DEPTHWISE_CONV_2D")]
    assert {p["multiplier"] for p in dw} == {1, 2} and {p["dilation"][0] for p in dw} >= {1, 2, 4, 6, 12, 18}
    rs = [p for d, p in sweep.grid_cases("RESIZE_BILINEAR")]
    assert {(p["align_corners"], p["half_pixel_centers"]) for p in rs} == {(a, h) for a in (0, 1) for h in (0, 1)}
    assert any(p["size"][0] > p["h"] for p in rs) and any(p["size"][0] < p["h"] for p in rs)
    assert any(p["size"][0] % p["h"] for p in rs)  # non-integer ratios
    cat = [p for d, p in sweep.grid_cases("CONCATENATION")]
    assert {(len(p["shape"]), p["axis"]) for p in cat} >= {(4, a) for a in range(4)}
    for op in sweep.OPS:
        assert {d for d, _ in sweep.grid_cases(op)} == set(sweep.OP_DTYPES[op]), op

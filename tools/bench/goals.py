"""The goals of issue 12 ("speed, round two"), evaluated from one run's report.

Every goal row says what was compared, the goal, the measured figure, and whether it
is met, NOT met (and by how much) or not measured (and why).
"""

from __future__ import annotations

import statistics

from .host import ceiling
from .runtimes import LABELS

#: The models the issue names for the thread-scaling goal (the float 257 and pascal_quant models).
FLOAT_MODEL = "deeplabv3_257_mv_gpu"
QUANT_MODEL = "deeplabv3_mnv2_pascal_quant"

#: 1 thread, pydeeplab numba / LiteRT XNNPACK, per model class (the class is read from the graph).
RATIO_LIMITS = {"float": 1.0, "uint8": 1.25, "int8": 1.5}
CLASS_TEXT = {"float": "float (float32 I/O, float or fp16-dequantized weights)", "uint8": "uint8",
              "int8": "int8 per-channel (float I/O through QUANTIZE/DEQUANTIZE)",
              "hybrid": "hybrid (float activations, int8 weights: dynamic-range quantization; the issue sets no "
                        "goal for this class, its ratio is in the latency tables)"}
#: 2 threads over 1, numba, on :data:`FLOAT_MODEL` and :data:`QUANT_MODEL`.
THREAD_SPEEDUP = 1.7
#: Fresh process to the first result: empty Numba cache (first-ever compile), and warm cache.
COLD_LIMIT_S = 10.0
WARM_LIMIT_S = 1.0
#: The numpy backend on a uint8 model, peak RSS above its import: the issue asks that it not hold
#: float64 im2col blocks of "hundreds of MB", so under 200 MB. (Measured on 2026-11-30 after
#: blocking: 80 MB on dm05, 83 MB on pascal_quant, 140 MB on ade20k; the numba backend's own
#: figure is given beside it for comparison.)
NUMPY_UINT8_LIMIT_MB = 200.0
#: What the CLI says on stderr while its kernels compile (pydeeplab.compiling.COMPILING_MESSAGE).
COMPILE_MESSAGE = "compiling kernels"


def _median(report: dict, model: str, runtime: str, threads: int = 1, stat: str = "median_ms") -> float | None:
    """A latency statistic (the median unless ``stat`` names another) of one runtime, None if not measured."""
    for r in report.get("latency", []):
        if r["model"] == model and r["runtime"] == runtime and r["threads"] == threads and stat in r:
            return r[stat]
    return None


def _latency_error(report: dict, model: str, runtime: str, threads: int = 1) -> str | None:
    for r in report.get("latency", []):
        if r["model"] == model and r["runtime"] == runtime and r["threads"] == threads and "error" in r:
            return r["error"]
    return None


def _paired(report: dict, model: str, runtime: str, a: int, b: int) -> str:
    """The ratio of ``runtime``'s runs on ``a`` threads to its runs on ``b``, round by round (the two runs
    of one round paired: a host spell slows both), as a note; "" where the runs were not kept or were
    not timed in the same rounds."""
    if report.get("config", {}).get("latency_in_children"):
        return ""
    runs = {}
    for r in report.get("latency", []):
        if r["model"] == model and r["runtime"] == runtime and r["threads"] in (a, b) and r.get("samples_ms"):
            runs[r["threads"]] = r["samples_ms"]
    pairs = [x / y for x, y in zip(runs.get(a, []), runs.get(b, [])) if y > 0]
    if len(pairs) < 4:
        return ""
    q1, median, q3 = statistics.quantiles(pairs, n=4)
    return (f"round by round (each round's two runs paired): median {median:.2f}x, middle half {q1:.2f}-{q3:.2f}x "
            f"over {len(pairs)} rounds")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def model_label(report: dict, model: str) -> str:
    """A model's name as tables print it: with its origin when it is not a shared file as is."""
    facts = next((f for f in report.get("models", []) if f["model"] == model), {})
    return f"{model} ({facts['label']})" if facts.get("label") else model


def evaluate_goals(report: dict) -> list[dict]:
    """The goals of issue 12 with their measured values, one dict per goal and model.

    Keys: ``goal_id`` (latency, threads, cold, warm, compile_message, numpy_memory), ``model``,
    ``what``, ``against``, ``goal`` (text), ``limit``, ``unit`` ("x", "s", "MB" or "" for yes/no),
    ``measured`` (None when not measured), ``of_mins`` (the same ratio from the fastest runs),
    ``met`` (True, False or None), ``margin`` (how far from the limit, in the unit: positive = missed by)
    and ``note`` (why not measured, what was compared).
    """
    goals: list[dict] = []
    models = report.get("models", [])

    def add(goal_id: str, model: str | None, what: str, against: str, goal: str, limit: float, unit: str,
            value: float | None, higher_is_better: bool = False, of_mins: float | None = None, note: str = "",
            strict: bool = False) -> None:
        if value is None:
            met, margin = None, None
        else:
            margin = (limit - value) if higher_is_better else (value - limit)
            met = (margin < 0) if strict else (margin <= 0)
        goals.append({"goal_id": goal_id, "model": model, "what": what, "against": against, "goal": goal,
                      "limit": limit, "unit": unit, "measured": value, "of_mins": of_mins, "met": met,
                      "margin": margin, "note": note})

    # Goals of the sections this run measured; within them, a missing figure is "not measured" with why.
    sections = report.get("config", {}).get("sections", ["latency", "memory", "cold"])
    for f in models if "latency" in sections else ():
        cls = f.get("class")
        if cls not in RATIO_LIMITS:
            continue
        m = f["model"]
        limit = RATIO_LIMITS[cls]
        ours, peer = _median(report, m, "numba"), _median(report, m, "xnnpack")
        value = _ratio(ours, peer)
        mins = _ratio(_median(report, m, "numba", stat="min_ms"), _median(report, m, "xnnpack", stat="min_ms"))
        note = ""
        if value is None:
            note = (_latency_error(report, m, "xnnpack") or _latency_error(report, m, "numba")
                    or "numba or XNNPACK not among the runtimes timed")
        elif f.get("litert"):
            note = f["litert"]
        add("latency", m, f"{model_label(report, m)}: {cls}, numba 1 thread", LABELS["xnnpack"] + ", 1 thread",
            f"<= {limit:.2f}x", limit, "x", value, of_mins=mins, note=note)
    names = {f["model"] for f in models}
    for m in (FLOAT_MODEL, QUANT_MODEL):
        if m not in names or "latency" not in sections:
            continue
        one, two = _median(report, m, "numba", 1), _median(report, m, "numba", 2)
        mins = _ratio(_median(report, m, "numba", 1, "min_ms"), _median(report, m, "numba", 2, "min_ms"))
        xnnpack = _ratio(_median(report, m, "xnnpack", 1), _median(report, m, "xnnpack", 2))
        notes = [] if one and two else ["1 and 2 threads not both timed"]
        paired = _paired(report, m, "numba", 1, 2)
        if paired:
            notes.append(paired)
        if xnnpack:
            notes.append(f"LiteRT XNNPACK's own 2 threads vs 1 in this run: {xnnpack:.2f}x")
        overlap = report.get("cpu_overlap", {})
        if overlap:
            notes.append("two threads busy at once took " + ", ".join(
                f"{c['median']:.2f}x (90th percentile {c['p90']:.2f}x) at the {when}" for when, c in overlap.items())
                + " the time of one (the host check)")
        cores = report.get("core_overlap", {})
        if cores:
            notes.append("the host's ceiling for compute-bound work on 2 threads: " + ", ".join(
                f"{ceiling(c):.2f}x at the {when}" for when, c in cores.items()) + " (2 / the median of the host check "
                "on multiply-add-bound work)")
        add("threads", m, f"{m}: numba 2 threads vs 1", "itself", f">= {THREAD_SPEEDUP:.2f}x faster",
            THREAD_SPEEDUP, "x", _ratio(one, two), higher_is_better=True, of_mins=mins, note="; ".join(notes))
    cold = report.get("cold", [])
    for f in models if "cold" in sections else ():
        if f.get("latency_only"):
            continue
        m = f["model"]
        rows = {r.get("numba_cache"): r for r in cold if r["model"] == m and r["runtime"] == "numba"}
        empty, warm = rows.get("empty_cache", {}), rows.get("warm", {})
        why = lambda r: r.get("error") or "not measured (--no-compile, or numba not timed)"  # noqa: E731
        add("cold", m, f"{model_label(report, m)}: first image, empty Numba cache", "-",
            f"<= {COLD_LIMIT_S:.0f} s", COLD_LIMIT_S, "s", empty.get("total_s"),
            note="" if "total_s" in empty else why(empty))
        warm_note = "" if "total_s" in warm else why(warm)
        if warm.get("compiled"):
            warm_note = f"a kernel compiled despite the warm cache: {warm['compiled']}"
        add("warm", m, f"{model_label(report, m)}: first image, warm Numba cache", "-",
            f"< {WARM_LIMIT_S:.0f} s", WARM_LIMIT_S, "s", warm.get("total_s"), of_mins=warm.get("min_total_s"),
            note=warm_note, strict=True)
        if "total_s" in empty:
            # The CLI prints its message when compile_notice fires; a process that printed it itself counts too.
            said = empty.get("stderr", "")
            fired = bool(empty.get("compiled")) or COMPILE_MESSAGE in said
            note = (f"first kernel compiled: {empty['compiled']}" if empty.get("compiled")
                    else "no compile seen by pydeeplab.compiling.compile_notice")
            add("compile_message", m, f"{model_label(report, m)}: first run announces its compile", "-",
                "the CLI's 'compiling kernels, first run only' (compile_notice fires)", 1.0, "", float(fired),
                higher_is_better=True, note=note + (f"; stderr: {said[:80]!r}" if said else ""))
    memory = {(r["model"], r["runtime"]): r for r in report.get("memory", []) if r["model"]}
    for f in models if "memory" in sections else ():
        if f.get("class") != "uint8" or f.get("latency_only"):
            continue
        m = f["model"]
        r = memory.get((m, "numpy"))
        value = r.get("above_import_mb") if r else None
        numba = memory.get((m, "numba"), {}).get("above_import_mb")
        note = f"numba backend: {numba:.1f} MB above its import" if numba is not None else ""
        add("numpy_memory", m, f"{model_label(report, m)}: numpy backend, peak RSS above its import", "-",
            f"< {NUMPY_UINT8_LIMIT_MB:.0f} MB (no float64 im2col blocks)", NUMPY_UINT8_LIMIT_MB, "MB", value,
            note=note if value is not None else ((r or {}).get("error") or "numpy backend not measured"), strict=True)
    return goals

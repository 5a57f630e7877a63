"""The report of one run as Markdown: what the command prints, and the whole of BENCHMARKS.md.

Every figure comes from the report dict; the prose around them is here, with the figures
filled in, so that the document is regenerated, never edited by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .goals import (CLASS_TEXT, COLD_LIMIT_S, FLOAT_MODEL, NUMPY_UINT8_LIMIT_MB, QUANT_MODEL, RATIO_LIMITS,
                    THREAD_SPEEDUP, WARM_LIMIT_S, _median, _ratio, model_label)
from .host import describe
from .runtimes import LABELS, PYDEEPLAB_RUNTIMES, RUNTIMES

#: A 1-minute load average at the start above this says other processes were running.
BUSY_LOAD = 0.5
#: The sections a written BENCHMARKS.md always has (a section without figures says why).
DOCUMENT_SECTIONS = ("## How this was measured", "## Goals", "## Models", "## Latency", "## Start-up",
                     "## Peak memory", "## Per-operator profiles")


def _table(header: Sequence[str], rows: list[Sequence]) -> str:
    """A Markdown table (readable as is in a terminal)."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c).replace("|", "\\|") for c in row]
                                          for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def _fmt(x: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def _loads(loads: list | None) -> str:
    return "?" if not loads else ", ".join(f"{x:.2f}" for x in loads)


def _check_text(check: dict | None) -> str:
    if not check:
        return ""
    if "error" in check:
        return f"vs {check['against']}: {check['error']}"
    if "max_abs_diff" in check:
        labels = f", labels {100 * check['labels_equal']:.3f}% equal" if "labels_equal" in check else ""
        return f"max abs diff {check['max_abs_diff']:.2g}{labels} vs {check['against']}"
    return f"{100 * check['equal_fraction']:.3f}% = {check['against']}"


def _value(g: dict, x: float | None) -> str:
    if x is None:
        return "-"
    if g["unit"] == "":
        return "yes" if x >= 1 else "no"
    return f"{x:.2f}{'x' if g['unit'] == 'x' else ' ' + g['unit']}"


def goal_status(g: dict) -> str:
    """"met", "NOT met, by ..." or "not measured" for a goal row of :func:`bench.goals.evaluate_goals`."""
    if g["met"] is None:
        return "not measured"
    if g["unit"] == "":
        return "met" if g["met"] else "NOT met"
    by = abs(g["margin"])
    amount = f"{by:.2f}{'x' if g['unit'] == 'x' else ' ' + g['unit']} ({100 * by / g['limit']:.0f}% of the goal)"
    return f"met, {amount} to spare" if g["met"] else f"NOT met, by {amount}"


def _machine_lines(report: dict) -> list[str]:
    m = report["machine"]
    v = m["versions"]
    commit = report.get("commit")
    out = []
    if report.get("command"):
        out.append(f"- **Command**: `{report['command']}`")
    out.append(f"- **Date**: {report['date']}" + (f", commit `{commit['short']}`"
                                                   + (" with uncommitted changes" if commit.get("dirty") else "")
                                                   if commit else ", commit not known (not a git checkout)"))
    out.append(f"- **Machine**: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
               f"{' '.join(m['simd']) or 'no AVX'}; {m['platform']}")
    out.append(f"- **Versions**: Python {m['python']}, " + ", ".join(
        f"{k} {val or 'not installed'}" for k, val in v.items()))
    out.append(f"- **Numba threading layer**: {m.get('numba_threading_layer', 'not started in this process')}"
               + (f", {m['numba_num_threads']} threads" if m.get("numba_num_threads") else ""))
    blas = report["blas"]
    libs = blas.get("libraries")
    if libs:
        out.append("- **BLAS and OpenMP in use** (threadpoolctl `threadpool_info()`): " + "; ".join(
            f"{lib.get('user_api')}: {lib.get('internal_api')}" + (f" {lib['version']}" if lib.get("version") else "")
            + (f", kernel {lib['architecture']}" if lib.get("architecture") else "")
            + f", {lib.get('num_threads')} threads by default"
            + (f", threading {lib['threading_layer']}" if lib.get("threading_layer") else "")
            + f" ({Path(lib.get('filepath') or '?').name})" for lib in libs)
            + ". The BLAS thread count is set to the measured thread count before every pydeeplab run.")
    else:
        out.append(f"- **BLAS**: {blas.get('note') or 'threadpoolctl not installed: kernel not known'}.")
    env = m["environment"]
    out.append("- **Environment**: " + (", ".join(f"`{k}={val}`" for k, val in env.items())
                                        or "no BLAS, OpenMP or Numba variables set") + ".")
    for w in report.get("warnings", []):
        out.append(f"- **{w}**")
    out.append(f"- **Load average** (1, 5, 15 min): {_loads(report.get('load_average_start'))} at the start, "
               f"{_loads(report.get('load_average_end'))} at the end.")
    start = report.get("load_average_start")
    if start and start[0] >= BUSY_LOAD:
        out.append(f"- **Not a quiet machine**: a load average of {start[0]:.2f} over the last minute before the run "
                   f"started, on {m['usable_cores']} usable cores, means other processes were running: the figures "
                   "are slower and noisier than on a quiet machine (see also the fastest-run ratios).")
    for when, check in report.get("cpu_overlap", {}).items():
        out.append(f"- **CPUs at once** (the host check, tools/bench/host.py), at the {when}: "
                   f"{describe(check)}.")
    for when, check in report.get("core_overlap", {}).items():
        out.append(f"- **Cores at once** (the host check on compute-bound work), at the {when}: {describe(check)}.")
    c = report["config"]
    out.append(f"- **Input**: {c['image']}; {c['repeat']} timed runs per runtime and thread count after "
               f"{c['warmup']} warm-up (fewer, at least 3, past {c['budget_s']:.0f} s), alternating rounds in one "
               f"process, each run after a pause of {c.get('pause_s', 0.02) * 1e3:.0f} ms and on until the other runtimes' "
               "threads are idle; figures are medians.")
    for n in report.get("notes", []):
        out.append(f"- **Note**: {n}")
    return out


def _goals_section(report: dict) -> list[str]:
    goals = report.get("goals", [])
    out = ["## Goals (issue 12), from this run", ""]
    out.append("1 thread, pydeeplab numba / LiteRT XNNPACK, by model class (read from the graph): "
               + ", ".join(f"{cls} <= {lim:.2f}x" for cls, lim in RATIO_LIMITS.items())
               + f"; 2 threads >= {THREAD_SPEEDUP:.1f}x over 1 on {FLOAT_MODEL} and {QUANT_MODEL}; first image in "
               f"a fresh process <= {COLD_LIMIT_S:.0f} s with an empty Numba cache and < {WARM_LIMIT_S:.0f} s with "
               f"a warm one, for every model; the numpy backend on uint8 models < {NUMPY_UINT8_LIMIT_MB:.0f} MB "
               "above its import. Peak memory has no ratio goal: see its table.")
    out.append("")
    if not goals:
        return out + ["No goal could be evaluated: no section of this run measured one.", ""]
    counts = {k: sum(1 for g in goals if g["met"] is v) for k, v in (("met", True), ("NOT met", False),
                                                                     ("not measured", None))}
    out += [f"**{counts['met']} met, {counts['NOT met']} NOT met, {counts['not measured']} not measured** "
            f"(of {len(goals)}).", ""]
    rows = [[g["what"], g["against"], g["goal"], _value(g, g["measured"]), goal_status(g), _value(g, g.get("of_mins")),
             g.get("note", "")[:200]] for g in goals]
    out += [_table(["what", "against", "goal", "measured", "status", "from the fastest runs", "note"], rows), ""]
    missed = [g for g in goals if g["met"] is False]
    if missed:
        out.append("Not met:")
        for g in missed:
            out.append(f"- {g['what']}: {_value(g, g['measured'])} against {g['goal']}: {goal_status(g)}."
                       + _latency_gap(report, g))
        out.append("")
    return out


def _latency_gap(report: dict, g: dict) -> str:
    """For a missed latency goal: the time the goal allows, and where the time goes (its profile)."""
    if g["goal_id"] != "latency":
        return ""
    ours, peer = _median(report, g["model"], "numba"), _median(report, g["model"], "xnnpack")
    text = (f" The goal allows {g['limit'] * peer:.1f} ms against XNNPACK's {peer:.1f} ms: "
            f"{ours - g['limit'] * peer:.1f} ms of the {ours:.1f} ms to go.")
    p = next((p for p in report.get("profile", []) if p["model"] == g["model"] and p.get("backend") == "numba"
              and "by_type" in p), None)
    if p is None:
        return text + " No per-operator profile in this run."
    parts = [f"{t['op']} {100 * t['share']:.0f}% ({t['ms']:.1f} ms" + (f", {t['gmacs_per_s']:.0f} GMAC/s)"
                                                                        if t.get("gmacs_per_s") else ")")
             for t in p["by_type"][:3]]
    return text + " Where the time goes (profile below): " + ", ".join(parts) + "."


def _models_section(report: dict) -> list[str]:
    rows = []
    for f in report["models"]:
        rows.append([model_label(report, f["model"]), f.get("class", "?"), f.get("class_why", ""),
                     ", ".join(f["inputs"]), f"{f['macs'] / 1e9:.2f}", f["operators"],
                     f.get("litert") or "LiteRT runs it as is"])
    return ["## Models", "",
            "The class sets the goal; it is read from the graph (the dtype the convolutions read, float16 "
            "weights behind DEQUANTIZE, QUANTIZE/DEQUANTIZE at the ends), not from the file name. "
            + " ".join(f"{k}: {v}." for k, v in CLASS_TEXT.items()), "",
            _table(["model", "class", "read from the graph", "inputs", "G MACs", "operators", "LiteRT"], rows), ""]


def _opening(report: dict, section: str, title: str) -> tuple[object, list[str]]:
    """A section's measurements (None if not measured) and its first lines: the heading, and
    where nothing was measured the line that says so."""
    data = report.get(section)
    out = [f"## {title}", ""]
    if data is None:
        out += [f"Not measured in this run (section `{section}` not selected).", ""]
    return data, out


def _latency_section(report: dict) -> list[str]:
    lat, out = _opening(report, "latency", "Latency, per model")
    if lat is None:
        return out
    facts = {f["model"]: f for f in report["models"]}
    for model in facts:
        rows = [r for r in lat if r["model"] == model]
        if not rows:
            continue
        f = facts[model]
        out += [f"### {model_label(report, model)}: {f.get('class', '?')}, {', '.join(f['inputs'])}, "
                f"{f['macs'] / 1e9:.2f} G MACs, {f['operators']} operators", ""]
        if f.get("litert"):
            out += [f"LiteRT: {f['litert']}.", ""]
        table = []
        for r in rows:
            ours = {rt: _median(report, model, rt, r["threads"]) for rt in PYDEEPLAB_RUNTIMES}
            if "error" in r:
                table.append([LABELS[r["runtime"]], r["threads"], "-", "-", "-", "-", "-", "", r["error"][:200]])
                continue
            ratios = [_fmt(_ratio(ours[rt], r["median_ms"]), ".2f", "x") for rt in PYDEEPLAB_RUNTIMES]
            gmacs = f["macs"] / (r["median_ms"] * 1e6) if f["macs"] else None
            note = _check_text(r.get("check"))
            if r.get("onnx", {}).get("converter"):
                note += f"; converted by {r['onnx']['converter']} {r['onnx'].get('converter_version') or ''}".rstrip()
            table.append([LABELS[r["runtime"]], r["threads"], _fmt(r["median_ms"]), _fmt(r["min_ms"]),
                          r.get("samples", "?"), *ratios, _fmt(gmacs, ".1f"), note])
        out += [_table(["runtime", "threads", "median ms", "min ms", "runs", "numba / it", "numpy / it",
                        "GMAC/s", "output check / note"], table), ""]
        speed = []
        for rt in RUNTIMES:
            t = {n: _median(report, model, rt, n) for n in report["config"]["threads"]}
            ns = sorted(n for n, x in t.items() if x is not None)
            if len(ns) >= 2:
                speed.append([LABELS[rt], *[_fmt(t[n]) for n in ns],
                              *[_fmt(_ratio(t[ns[0]], t[n]), ".2f", "x") for n in ns[1:]]])
        if speed:
            ns = sorted(report["config"]["threads"])
            out += [_table(["runtime", *[f"{n} thread{'s' * (n > 1)} ms" for n in ns],
                            *[f"speed-up {ns[0]}->{n}" for n in ns[1:]]], speed), ""]
    return out


def _startup_section(report: dict) -> list[str]:
    cold, out = _opening(report, "cold", "Start-up (fresh `python -c` to the first result, the runtime's "
                                         "default threads: every core)")
    if cold is None:
        return out
    out += ["Empty cache: `NUMBA_CACHE_DIR` set to a new folder, so every kernel the model needs is compiled "
            "(a new user's first image); warm cache: the median of the runs after one that filled it. Python's "
            "bytecode is cached in both, as after an install (pip compiles it then): each model's first run writes "
            "it to a folder of the bench's (`PYTHONPYCACHEPREFIX`; `PYTHONDONTWRITEBYTECODE`, where set, lifted "
            "for these processes).", ""]
    rows = []
    for r in cold:
        what = LABELS[r["runtime"]] + ({"warm": ", warm Numba cache", "empty_cache": ", empty Numba cache"}
                                       .get(r.get("numba_cache"), ""))
        if "error" in r:
            rows.append([model_label(report, r["model"]), what, "-", "-", "-", "-", "-", "-", r["error"][:200]])
            continue
        note = f"{r.get('runs', '?')} run(s)"
        if r.get("stderr"):
            note += f"; stderr: {r['stderr'].splitlines()[0][:100]}"
        rows.append([model_label(report, r["model"]), what, *(_fmt(r.get(k), ".2f") for k in (
            "total_s", "min_total_s", "python_start_s", "import_s", "load_s", "first_invoke_s")), note])
    return out + [_table(["model", "runtime", "total s (median)", "min s", "python start", "imports", "load+plan",
                          "first invoke", "note"], rows), ""]


def _memory_section(report: dict) -> list[str]:
    mem, out = _opening(report, "memory", "Peak memory (VmHWM of a fresh process: import, load, one image; 1 thread)")
    if mem is None:
        return out
    rows = [["(none)", r["runtime"], _fmt(r.get("peak_mb")), "", "", r.get("error", "")]
            for r in mem if r["model"] is None]
    for r in mem:
        if r["model"] is None:
            continue
        peer = next((x.get("peak_mb") for x in mem if x["model"] == r["model"] and x["runtime"] == "xnnpack"), None)
        rows.append([model_label(report, r["model"]), LABELS[r["runtime"]], _fmt(r.get("peak_mb")),
                     _fmt(r.get("above_import_mb")), _fmt(_ratio(r.get("peak_mb"), peer), ".2f", "x"),
                     r.get("error", "")[:200]])
    return out + [_table(["model", "runtime", "peak MB", "MB above its import", "vs LiteRT default", "note"], rows), ""]


def _profile_section(report: dict) -> list[str]:
    profiles, out = _opening(report, "profile", "Per-operator profiles")
    if profiles is None:
        return out
    out += ["pydeeplab's interpreter timed per operator (`invoke_profiled`, medians) on the models furthest "
            "from their goal, worst first.", ""]
    for p in profiles:
        out += [f"### {model_label(report, p['model'])}, {p['backend']} backend, {p['threads']} thread(s)", ""]
        if "error" in p:
            out += [p["error"], ""]
            continue
        ratio = _ratio(_median(report, p["model"], "numba"), _median(report, p["model"], "xnnpack"))
        out += [f"Sum of per-operator medians over {p['runs']} run(s): {p['total_ms']:.2f} ms"
                + (f"; numba / XNNPACK {ratio:.2f}x" if ratio else "") + ".", ""]
        out += [_table(["operator", "count", "ms", "share", "G MACs", "GMAC/s"],
                       [[t["op"], t["count"], f"{t['ms']:.2f}", f"{100 * t['share']:.1f}%",
                         _fmt(t["macs"] / 1e9 if t["macs"] else None, ".3f"), _fmt(t["gmacs_per_s"])]
                        for t in p["by_type"]]), ""]
        out += [_table(["#", "operator", "dtype", "in -> out", "kernel/stride/dilation", "ms", "share", "GMAC/s"],
                       [[t["index"], t["op"], t.get("dtype"), f"{t.get('in')} -> {t.get('out')}",
                         " ".join(f"{k} {t[k]}" for k in ("kernel", "stride", "dilation") if k in t),
                         f"{t['ms']:.2f}", f"{100 * t['share']:.1f}%", _fmt(t["gmacs_per_s"])]
                        for t in p["top"]]), ""]
    return out


def format_report(report: dict) -> str:
    """The report as Markdown, the whole BENCHMARKS.md: how it was measured, goals, models,
    latency, start-up, memory, per-operator profiles."""
    out = ["# Benchmarks", "",
           "<!-- Generated by tools/bench.py from one run: do not edit by hand. Regenerate with "
           "`python tools/bench.py --write BENCHMARKS.md`, or from a saved run with "
           "`python tools/bench.py --from-json bench.json --write BENCHMARKS.md`. -->", "",
           "pydeeplab's two backends (`numba`, `numpy`) against LiteRT with XNNPACK (its default), LiteRT's "
           "built-in kernels without XNNPACK, its reference kernels and ONNX Runtime where installed: the same "
           "input, the same thread count, alternating rounds in one process after warm-up; memory and start-up "
           "each in fresh processes. Every figure below is from the one run described here.", "",
           "## How this was measured", "", *_machine_lines(report), ""]
    out += _goals_section(report)
    out += _models_section(report)
    out += _latency_section(report)
    out += _startup_section(report)
    out += _memory_section(report)
    out += _profile_section(report)
    return "\n".join(out).rstrip() + "\n"


def write_document(report: dict, path: str | os.PathLike) -> Path:
    """Write :func:`format_report` of ``report`` to ``path`` atomically (a temporary file beside it, renamed)."""
    from pydeeplab.atomic import write_text

    write_text(path, format_report(report))
    return Path(path)

"""The report as one self-contained HTML file: inline CSS, a few lines of JS, PNG images as data: URIs.

Nothing is fetched from anywhere: the file opens from disk in any browser. Plots
are inline SVG drawn here; pictures are PNGs encoded with Pillow.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np
from PIL import Image

from ..summary import _fmt_options
from .gather import THUMBNAIL_SIZE, ReportData
from .structure import Structure, format_stride

#: The sections every report has, in order (id, title); tests check them in the rendered page.
SECTIONS = (
    ("summary", "Model"),
    ("structure", "DeepLab structure"),
    ("segmentation", "Segmentation"),
    ("operators", "Operators"),
    ("litert", "Error against LiteRT"),
    ("quantization", "Quantization error"),
)

# A perceptually ordered colour ramp (dark blue -> teal -> yellow), interpolated at 256 steps.
_RAMP_ANCHORS = np.array([[48, 18, 59], [40, 120, 142], [53, 183, 121], [180, 222, 44], [253, 231, 37]], np.float32)
_RAMP = np.stack([np.interp(np.linspace(0, 4, 256), np.arange(5), _RAMP_ANCHORS[:, c]) for c in range(3)],
                 axis=1).astype(np.uint8)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c8cdd8;font-size:13px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde;padding:6px 24px;z-index:2}
nav a{margin-right:14px;color:#2456a6;text-decoration:none;font-size:14px}
section{background:#fff;margin:16px 24px;padding:12px 20px;border-radius:6px;box-shadow:0 1px 2px #0002}
h2{font-size:17px;margin:6px 0 10px}h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:12px}td,th{padding:3px 6px;border-bottom:1px solid #e6e8ee;text-align:left;
vertical-align:top}th{background:#eef1f6;position:sticky;top:33px}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{color:#555}.flow{display:flex;flex-wrap:wrap;align-items:stretch;gap:6px}
.blk{border:1px solid #99a;border-radius:5px;padding:6px 8px;font-size:12px;background:#f3f6fb;min-width:110px}
.blk b{display:block;font-size:12px;margin-bottom:2px}.arrow{align-self:center;color:#889;font-size:18px}
.aspp{display:flex;flex-direction:column;gap:4px}.aspp .blk{background:#fff6e6;border-color:#d9a441}
.dec{background:#eaf7ee!important;border-color:#4a9d63!important}
.head{background:#f9ecf2!important;border-color:#b0577f!important}
.atrous{color:#b03a2e;font-weight:600}td.pics{white-space:nowrap}
.pics img{image-rendering:pixelated;margin-right:2px;border:1px solid #ccd}
.imgs{display:flex;gap:14px;flex-wrap:wrap}.imgs figure{margin:0}.imgs figcaption{font-size:12px;color:#555}
.legend span{display:inline-block;margin:2px 10px 2px 0;font-size:13px}.legend i{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:-1px;border:1px solid #0003}.err{color:#a12}.ok{color:#176b2c}
.note{color:#555;font-size:13px}input[type=search]{padding:3px 6px;margin-bottom:6px;width:260px}
tr.hide{display:none}svg text{font-size:11px;fill:#333}
"""

_JS = """
(function(){
  var box=document.getElementById('opfilter');
  document.body.setAttribute('data-report-ready','1');
  if(!box){return;}
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    var rows=document.querySelectorAll('#optable tbody tr');
    for(var i=0;i<rows.length;i++){
      rows[i].classList.toggle('hide', q!=='' && rows[i].textContent.toLowerCase().indexOf(q)<0);
    }
  });
})();
"""


def png_data_uri(rgb: np.ndarray, max_side: int | None = None, nearest: bool = False) -> str:
    """An HxWx3 (or HxW) uint8 array as a ``data:image/png;base64,`` URI, optionally shrunk to ``max_side``."""
    im = Image.fromarray(np.ascontiguousarray(rgb))
    if max_side is not None and max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                       Image.NEAREST if nearest else Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def heat(x: np.ndarray) -> np.ndarray:
    """An HxW float map as an HxWx3 uint8 image on the colour ramp, scaled to its own min..max."""
    x = np.nan_to_num(np.asarray(x, np.float32))
    lo, hi = float(x.min()), float(x.max())
    idx = np.zeros(x.shape, np.uint8) if hi <= lo else ((x - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)
    return _RAMP[idx]


def svg_plot(series: list[tuple[str, str, list[tuple[float, float]]]], *, xlabel: str, ylabel: str,
             log: bool = True, width: int = 900, height: int = 260, marks: list[tuple[float, str]] = ()) -> str:
    """A line plot of ``(label, colour, [(x, y)])`` series as inline SVG; y on a log scale when ``log``.

    Points with y <= 0 on a log scale are drawn on the bottom edge (exact agreement). ``marks`` are
    vertical lines (x, label), e.g. where a DeepLab block starts.
    """
    pts = [(x, y) for _, _, s in series for x, y in s if y is not None and math.isfinite(y)]
    if not pts:
        return '<p class="note">nothing to plot</p>'
    left, right, top, bottom = 62, 14, 12, 34
    xs = [p[0] for p in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    if log:
        pos = [y for _, y in pts if y > 0]
        y0 = math.floor(math.log10(min(pos))) if pos else -1
        y1 = math.ceil(math.log10(max(pos))) if pos else 0
        y1 = max(y1, y0 + 1)
    else:
        y0, y1 = min(0.0, min(p[1] for p in pts)), max(p[1] for p in pts) or 1.0

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        v = (math.log10(y) if y > 0 else y0) if log else y
        return top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
           'fill="#fbfcfe" stroke="#ccd"/>']
    ticks = range(int(y0), int(y1) + 1) if log else np.linspace(y0, y1, 5)
    for t in ticks:
        y = top + (1 - (t - y0) / (y1 - y0)) * (height - top - bottom)
        label = f"1e{t}" if log else f"{t:.3g}"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ee"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for x, label in marks:
        X = sx(x)
        out.append(f'<line x1="{X:.1f}" x2="{X:.1f}" y1="{top}" y2="{height - bottom}" stroke="#c9b" '
                   f'stroke-dasharray="3,3"><title>{html.escape(label)}</title></line>')
    for k in np.linspace(x0, x1, min(11, int(x1 - x0) + 1)):
        out.append(f'<text x="{sx(k):.1f}" y="{height - bottom + 14}" text-anchor="middle">{k:.0f}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 4}" text-anchor="middle">'
               f"{html.escape(xlabel)}</text>")
    out.append(f'<text x="12" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(top + height - bottom) / 2})">{html.escape(ylabel)}</text>')
    for i, (label, colour, s) in enumerate(series):
        good = [(x, y) for x, y in s if y is not None and math.isfinite(y)]
        if not good:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{path}"/>')
        for x, y in good:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{colour}">'
                       f'<title>{html.escape(label)}: operator {x:.0f}: {y:.3g}</title></circle>')
        lx = left + 10 + i * 210
        out.append(f'<rect x="{lx}" y="{top + 6}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="{top + 15}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _e(x) -> str:
    return html.escape(str(x))


def _shape(s) -> str:
    return "x".join(map(str, s)) if s is not None else "-"


def _num(x, fmt: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def _summary_section(d: ReportData) -> str:
    s = d.summary
    tot = s["totals"]
    rows = [("model file", d.model_path), ("image", d.image_path or "seeded random input"),
            ("description", s["description"] or "-"),
            ("inputs", "; ".join(f"{x['name']} {x['dtype']} {_shape(x['shape'])}" for x in s["inputs"])),
            ("outputs", "; ".join(f"{x['name']} {x['dtype']} {_shape(x['shape'])}" for x in s["outputs"])),
            ("operators", f"{tot['operators']}: " + ", ".join(f"{k} {v}" for k, v in tot["by_type"].items())),
            ("parameters", f"{tot['parameters']:,} ({tot['weight_bytes']:,} bytes)"),
            ("multiply-accumulates", f"{tot['macs']:,} ({tot['macs'] / 1e9:.2f} G)"),
            ("arithmetic", _arithmetic(d)),
            ("pydeeplab backend", d.backend),
            ("time", f"invoke {d.timings.get('invoke_s', 0) * 1e3:.1f} ms (per-operator profile, one run); "
                     f"whole report {d.timings.get('total_s', 0):.1f} s")]
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _blk(title: str, lines: list[str], cls: str = "") -> str:
    return f'<div class="blk {cls}"><b>{_e(title)}</b>' + "<br>".join(lines) + "</div>"


def _ops_range(ops: list[int]) -> str:
    if not ops:
        return ""
    return f"op {ops[0]}" if len(ops) == 1 else f"ops {ops[0]}&ndash;{ops[-1]} ({len(ops)})"


def _structure_section(d: ReportData) -> str:
    st: Structure = d.structure
    g = st.geometry
    parts = [f"<p><b>{_e(st.variant)}</b>; input {st.input_size}x{st.input_size}; features for the head at output "
             f"stride {format_stride(st.output_stride)}.</p>"]
    if st.atrous_start is not None:
        parts.append(f'<p class="atrous">Atrous convolution starts at operator {st.atrous_start} '
                     f"(rates {', '.join(map(str, st.atrous_rates))}, encoded as {_e(st.atrous_encoding)}).</p>")
    for n in st.notes:
        parts.append(f'<p class="note">{_e(n)}</p>')
    flow = [_blk("input", [f"{st.input_size}x{st.input_size}"])]
    for i, stage in enumerate(st.stages):
        lines = [_ops_range(stage.ops), f"output stride {format_stride(stage.output_stride)}", _shape(stage.shape[1:])]
        if stage.rates:
            lines.append(f'<span class="atrous">atrous rate {", ".join(map(str, stage.rates))}</span>')
        flow.append(_blk(f"backbone stage {i + 1}", lines))
    if st.aspp_branches:
        branches = "".join(_blk(b.kind, [_ops_range(b.ops)] + [f"{_e(d.ops[k].op)}" for k in b.ops[:4]]
                                ) for b in st.aspp_branches)
        flow.append(f'<div class="aspp"><div class="note">ASPP branches from tensor {st.aspp_source}</div>'
                    f"{branches}</div>")
        merge_op = d.ops[st.aspp_merge].op if st.aspp_merge is not None else ""
        flow.append(_blk("ASPP merge", [f"op {st.aspp_merge} {_e(merge_op)}"] +
                         ([f"projection {_ops_range(st.aspp_projection)}"] if st.aspp_projection else [])))
    if st.decoder:
        low = st.decoder_low_level
        flow.append(_blk("decoder", [_ops_range(st.decoder), _e(low.kind) if low else ""], "dec"))
    if st.logits is not None:
        lg = g[st.logits]
        flow.append(_blk("logits", [f"op {st.logits} {_e(d.ops[st.logits].op)}", _shape(d.ops[st.logits].output[1:]),
                                    f"receptive field {_num(lg.receptive_field, '.0f')} px"], "head"))
    if st.final:
        flow.append(_blk("final", [", ".join(f"{k} {_e(d.ops[k].op)}" for k in st.final)], "head"))
    parts.append('<div class="flow">' + '<span class="arrow">&rarr;</span>'.join(flow) + "</div>")
    # The field of view and the resolution along the network.
    rf = [(k, g[k].receptive_field) for k in range(len(g)) if g[k].receptive_field is not None]
    os_ = [(k, g[k].output_stride) for k in range(len(g)) if g[k].output_stride is not None]
    parts.append("<h3>Receptive field and output stride along the network</h3>")
    parts.append(svg_plot([("receptive field (px)", "#2456a6", rf), ("output stride", "#c0392b", os_)],
                          xlabel="operator", ylabel="pixels of the input", marks=_marks(d)))
    return "".join(parts)


def _marks(d: ReportData) -> list[tuple[float, str]]:
    marks, prev = [], None
    for row in d.ops:
        b = row.block.split(":")[0].split("(")[0].strip()
        if b and b != prev and b != "weight preparation":
            marks.append((row.index, row.block))
            prev = b
    return marks


def _segmentation_section(d: ReportData) -> str:
    s = d.segmentation
    figs = []
    for im, cap in ((s.input_image, "input (at the model's size)"), (s.class_map, "class map"), (s.overlay, "overlay")):
        if im is not None:
            figs.append(f'<figure><img alt="{_e(cap)}" src="{png_data_uri(im, 320)}"><figcaption>{_e(cap)}'
                        "</figcaption></figure>")
    parts = [f'<div class="imgs">{"".join(figs)}</div>'] if figs else []
    if s.legend:
        parts.append('<div class="legend">' + "".join(
            f'<span><i style="background:rgb{c}"></i>{_e(n)} {100 * f:.1f}%</span>' for n, c, f in s.legend) + "</div>")
    if s.error:
        parts.append(f'<p class="note">{_e(s.error)}</p>')
    return "".join(parts)


def _operators_section(d: ReportData) -> str:
    head = ("#", "block", "operator", "inputs &rarr; output", "options", "MACs", "ms", "output stride",
            "receptive field", "rate", "vs LiteRT (isolated)", "quant. rmse/scale (isolated)",
            "output: channel mean and channels")
    lite = {r["index"]: r for r in d.comparison.litert_isolated}
    quant = {r["index"]: r for r in d.comparison.quant_isolated}
    rows = []
    for r in d.ops:
        if r.block == "weight preparation":
            continue
        pics = "".join(f'<img title="{_e(cap)}" alt="{_e(cap)}" src="{png_data_uri(heat(x), THUMBNAIL_SIZE, True)}">'
                       for cap, x in r.thumbnails)
        ins = " ".join(_shape(s) for s in r.inputs[:2])
        rate = f'<span class="atrous">{r.rate}</span>' if r.rate > 1 else "1"
        rows.append(f"<tr><td class=n>{r.index}</td><td>{_e(r.block)}</td><td>{_e(r.op)}</td>"
                    f"<td>{_e(ins)} &rarr; {_e(_shape(r.output))} {_e(r.dtype)}</td>"
                    f"<td>{_e(_fmt_options(r.options))}</td>"
                    f"<td class=n>{r.macs:,}</td><td class=n>{_num(r.time_ms, '.2f')}</td>"
                    f"<td class=n>{_e(format_stride(r.output_stride))}</td>"
                    f"<td class=n>{_num(r.receptive_field, '.0f')}</td>"
                    f"<td class=n>{rate}</td><td class=n>{_lite_cell(lite.get(r.index))}</td>"
                    f"<td class=n>{_num((quant.get(r.index) or {}).get('rmse_over_scale'), '.3f')}</td>"
                    f"<td class=pics>{pics}</td></tr>")
    hidden = sum(1 for r in d.ops if r.block == "weight preparation")
    note = (f'<p class="note">{hidden} weight-preparation operators (all inputs constant, e.g. DEQUANTIZE of '
            "float16 weights) are left out.</p>") if hidden else ""
    return (f'{note}<input type="search" id="opfilter" placeholder="filter: CONV_2D, ASPP, decoder, stage 3 ...">'
            f'<table id="optable"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            '<p class="note">Pictures: the operator\'s output (dequantized) on the report\'s image, each scaled to its '
            "own range; the channels shown are the most varied ones. Times: one profiled run, "
            "Interpreter.invoke_profiled.</p>")


def _lite_cell(r: dict | None) -> str:
    """One operator's isolated LiteRT error: exact / differing elements (integer), max abs (float)."""
    if r is None:
        return "-"
    if r["dtype"][0] in "iu":
        text = "exact" if r["lsb_count"] == 0 else f"{r['lsb_count']} differ"
    else:
        text = _num(r["max_abs"])
    return text if r["ok"] else f'<span class="err">{text} FAIL</span>'


def _err_value(r: dict) -> float:
    """One number per LiteRT record: max abs error (float) or the fraction of differing elements (integer)."""
    if r["dtype"][0] in "iu":
        n = math.prod(r["shape"]) or 1
        return r["lsb_count"] / n
    return r["max_abs"]


def _litert_section(d: ReportData) -> str:
    c = d.comparison
    if c.litert_error:
        return f'<p class="note">{_e(c.litert_error)}</p>'
    if not c.litert_isolated:
        return '<p class="note">not run (--no-litert)</p>'
    verdict = ('<p class="ok">every operator within the numerical contract</p>' if c.litert_ok else
               '<p class="err">some operators are outside the numerical contract (marked FAIL)</p>')
    series = [("isolated", "#2456a6", [(r["index"], _err_value(r)) for r in c.litert_isolated]),
              ("cascaded", "#c0392b", [(r["index"], _err_value(r)) for r in c.litert_cascaded])]
    plot = svg_plot(series, xlabel="operator", ylabel="max abs error / differing fraction", marks=_marks(d))
    rows = []
    for a, b in zip(c.litert_isolated, c.litert_cascaded):
        integer = a["dtype"][0] in "iu"
        def cell(r):
            return f"{r['lsb_count']} (&le; {r['lsb_max']} LSB)" if integer else _num(r["max_abs"])
        agree = next((x["argmax_agreement"] for x in (a, b) if x["argmax_agreement"] is not None), None)
        rows.append(f"<tr><td class=n>{a['index']}</td><td>{_e(a['op'])}</td>"
                    f"<td>{_e(_shape(a['shape']))} {_e(a['dtype'])}"
                    f"</td><td class=n>{cell(a)}</td><td class=n>{cell(b)}</td><td>"
                    f"{'ok' if a['ok'] and b['ok'] else '<span class=err>FAIL</span>'}"
                    f"{'' if agree is None else f' labels {agree:.6f}'}</td></tr>")
    return (f"{verdict}<p class='note'>Against LiteRT's reference kernels (BUILTIN_REF), on the same input. "
            "Isolated: each operator fed LiteRT's own inputs; cascaded: pydeeplab's own chain. Integer tensors: "
            "count of differing elements (0 = bit-identical); float: max abs error.</p>"
            f"{plot}<table><thead><tr><th>#</th><th>operator</th><th>output</th><th>isolated</th><th>cascaded</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _arithmetic(d: ReportData) -> str:
    """What the model computes in: float, quantized, or hybrid (float activations, int8 weights)."""
    hybrid = sum(1 for o in d.summary["operators"] if o.get("hybrid"))
    if hybrid:
        return (f"hybrid: float32 activations, int8 weights ({hybrid} operators quantize their input at every "
                "run: dynamic-range quantization)")
    return "quantized (integer kernels)" if d.quantized else "float"


def _quant_section(d: ReportData) -> str:
    c = d.comparison
    if not d.quantized:
        return '<p class="note">a float model: there is no quantization error to show.</p>'
    if c.quant_error:
        return f'<p class="err">the float shadow could not run: {_e(c.quant_error)}</p>'
    if not c.quant_isolated:
        return '<p class="note">not run (--no-quantization)</p>'
    series = [("isolated rmse/scale", "#2456a6",
               [(r["index"], r["rmse_over_scale"]) for r in c.quant_isolated if r["rmse_over_scale"] is not None]),
              ("cascaded rmse/scale", "#c0392b",
               [(r["index"], r["rmse_over_scale"]) for r in c.quant_cascaded if r["rmse_over_scale"] is not None])]
    plot = svg_plot(series, xlabel="operator", ylabel="rmse / output scale", marks=_marks(d))
    rows = []
    for a, b in zip(c.quant_isolated, c.quant_cascaded):
        rows.append(f"<tr><td class=n>{a['index']}</td><td>{_e(a['op'])}</td><td>{_e(_shape(a['shape']))}</td>"
                    f"<td class=n>{_num(a['scale'])}</td>"
                    + "".join(f"<td class=n>{_num(r['rmse_over_scale'], '.3f')}</td><td class=n>{_num(r['mean_error'])}"
                              f"</td><td class=n>{_num(r['max_abs_error'])}</td>" for r in (a, b))
                    + f"<td>{_num(b['label_agreement'], '.4f')}</td></tr>")
    kind = "hybrid" if any(o.get("hybrid") for o in d.summary["operators"]) else "integer"
    agree = ("" if c.quant_label_agreement is None else
             f"<p><b>Final labels: the {kind} model and its float shadow agree on "
             f"{100 * c.quant_label_agreement:.2f}% of pixels.</b></p>")
    return (f"{agree}<p class='note'>Error = dequantized integer output &minus; float output of the same operator in "
            "the float shadow (the same graph with dequantized weights, no requantization). Isolated: the float "
            "operator is fed the dequantized integer inputs (the error this operator adds); cascaded: the float "
            "graph runs on its own (the error accumulated so far). rmse/scale &asymp; 0.29 is rounding alone.</p>"
            f"{plot}<table><thead><tr><th>#</th><th>operator</th><th>output</th><th>scale</th>"
            "<th>isolated rmse/scale</th><th>mean err</th><th>max abs</th><th>cascaded rmse/scale</th><th>mean err</th>"
            f"<th>max abs</th><th>labels</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def render(d: ReportData) -> str:
    """The whole report as an HTML string (UTF-8, self-contained)."""
    bodies = {"summary": _summary_section(d), "structure": _structure_section(d),
              "segmentation": _segmentation_section(d), "operators": _operators_section(d),
              "litert": _litert_section(d), "quantization": _quant_section(d)}
    name = d.model_path.replace("\\", "/").rsplit("/", 1)[-1]
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{bodies[sid]}</section>' for sid, title in SECTIONS)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>pydeeplab report: {_e(name)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>pydeeplab report: {_e(name)}</h1><p>{_e(d.structure.variant)} &middot; made with "
            f"<code>pydeeplab report {_e(name)}{' --image ' + _e(d.image_path) if d.image_path else ''}</code></p>"
            f"</header><nav>{nav}</nav>{sections}<script>{_JS}</script></body></html>\n")

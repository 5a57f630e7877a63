"""The ``pydeeplab`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from .errors import BackendUnavailableError, ModelError

EPILOG = {
    "inspect": "example:\n  pydeeplab inspect ../shared/data/models/deeplabv3_257_mv_gpu.tflite\n"
               "  pydeeplab inspect model.tflite --json > summary.json",
    "verify": "example:\n  pydeeplab verify ../shared/data/models/deeplabv3_257_mv_gpu.tflite "
              "--image ../shared/data/images/cat.bmp\n"
              "  pydeeplab verify deeplabv3_mnv2_pascal_quant.tflite --against builtin --json\n"
              "  pydeeplab verify deeplabv3_mnv2_pascal_quant.tflite --against builtin --tolerance 0\n"
              "  pydeeplab verify deeplabv3_mnv2_pascal_quant.tflite --against float --image bird.bmp\n"
              "  pydeeplab verify model_uint8.tflite --against model_float.tflite\n\n"
              "--against float (or OTHER.tflite) prints the quantization error per operator, as TF's\n"
              "QuantizationDebugger: rmse, rmse/scale (~0.29 is rounding alone), mean error, max abs error,\n"
              "isolated (the float op fed the dequantized integer inputs) and cascaded, and the final label\n"
              "agreement; it needs no LiteRT and exits 0.\n\n"
              "exit status: 0 when every operator is within tolerance, 1 when one is not, 2 on errors",
    "report": "examples:\n  pydeeplab report ../shared/data/models/deeplabv3_mnv2_pascal_quant.tflite \\\n"
              "      --image ../shared/data/images/bird_segmentation.bmp --out report.html\n"
              "  pydeeplab report model.tflite --image photo.jpg --out r.html --no-litert --thumbnails 20\n\n"
              "One self-contained HTML file (inline CSS/JS, images as data: URIs; opens from disk in any browser):\n"
              "the model as DeepLab blocks (backbone stages and output stride, where atrous convolution starts\n"
              "and at which rates, ASPP branches, decoder, logits, final resize), every operator with shapes,\n"
              "options, MACs, time, receptive field, output stride and pictures of its output, the input, class\n"
              "map and overlay with a legend, the error of every operator against LiteRT (isolated and\n"
              "cascaded; when ai-edge-litert is installed), and for quantized models the quantization error\n"
              "per operator against the float shadow (as `verify --against float`).\n\n"
              "exit status: 0 when the report was written, 2 on errors",
    "segment": "examples:\n  pydeeplab segment photo.jpg\n"
               "  pydeeplab segment ../shared/data/images --model deeplabv3_mnv2_pascal_quant --overlay --out results\n"
               "  pydeeplab segment a.jpg b.png --model ./my_model.tflite --format npy --keep-aspect --jobs 2\n"
               "  pydeeplab segment portrait.jpg --model selfie_segmenter.tflite --overlay\n"
               "  pydeeplab segment photo.jpg --model unknown.tflite --mean 127.5 --std 127.5 --labels labels.txt\n\n"
               "Any segmentation .tflite works: normalization, class names and the output kind (scores, a one-channel\n"
               "foreground probability, class ids) come from its TFLite metadata, else pydeeplab's manifest, else\n"
               "the output tensor; --mean/--std/--labels/--output-kind override them.\n\n"
               "For each image, in --out: NAME_labels.png (palette PNG: pixel value = class id, PASCAL colors),\n"
               "NAME_overlay.png with --overlay, and NAME.json (class pixel fractions, model, timings).\n"
               "Masks have the image's resolution. Files are written atomically; inputs are never modified.\n\n"
               "Models: a path to a .tflite file, or a name looked up in the models/ subfolder of each folder of\n"
               "$PYDEEPLAB_DATA (separated by the system's path separator) and in that folder itself, then the\n"
               "checkout's weights/ folder, then the per-user cache\n"
               "(~/.cache/pydeeplab); `pydeeplab fetch --list` shows the names.\n\n"
               "Animated input: an animated GIF (or APNG/WebP), or with --clip a folder of numbered frames\n"
               "(frame_0001.png, ...), gives NAME_overlay.gif with the same frame count and durations, and\n"
               "NAME_labels/frame_NNNN.png (or .npy) per frame:\n"
               "  pydeeplab segment clip.gif --out results\n"
               "  pydeeplab segment frames/ --clip --frame-ms 40 --format npy\n\n"
               "On a Dask cluster (pip install 'pydeeplab[dask]'; images and --out on a shared file system):\n"
               "  pydeeplab segment /data/photos --out /data/masks --scheduler tcp://10.0.0.5:8786 --resume\n"
               "--resume skips the images whose outputs all exist, so a killed run continues where it stopped.\n\n"
               "exit status: 0 when every image was segmented, 1 when any failed (each is named), 2 on errors",
    "evaluate": "example:\n  pydeeplab evaluate --model deeplabv3_mnv2_pascal_quant \\\n"
                "      --images ../shared/data/images/bird_segmentation.bmp \\\n"
                "      --masks ../shared/data/images/bird_segmentation_mask.bmp\n"
                "  pydeeplab evaluate --model deeplabv3_257 --images VOC/JPEGImages --masks VOC/SegmentationClass --json\n"
                "  pydeeplab evaluate --model deeplabv3_mnv2_pascal_quant --dataset VOCdevkit/VOC2012 --split val --jobs 2\n"
                "  pydeeplab evaluate --model m.tflite --dataset cityscapes --scheduler tcp://10.0.0.5:8786 --json\n\n"
                "--dataset DIR recognises PASCAL VOC (ImageSets/Segmentation/<split>.txt, JPEGImages/, SegmentationClass/),\n"
                "ADE20K (images/, annotations/; 0 = other, ignored) and Cityscapes (leftImg8bit/<split>/<city>/,\n"
                "gtFine/<split>/<city>/*_gtFine_labelIds.png, mapped to the 19 train ids) and streams it: one image\n"
                "at a time, broken files named and skipped. A model whose classes are not the dataset's needs\n"
                "--label-map FILE: lines '<mask value> <class id>' (or a JSON object); unlisted values are ignored.\n"
                "--json then prints miou, pixel_accuracy, per_class_iou, confusion, images (+ model, label_set, broken).\n\n"
                "  pydeeplab evaluate --model deeplabv3_mnv2_ade20k_uint8 --images ADE/images --masks ADE/annotations\n\n"
                "MLPerf's ADE20K models (label set ade20k_mlperf: 0 other + ADE20K classes 1..31) are evaluated on\n"
                "ADE20K's 150-class annotations: ids 0 and above 31 are ignored, as MLPerf's data preparation does.\n\n"
                "An image NAME.ext is paired with the mask NAME_mask.*, NAME_labels.*, NAME_label.*, NAME_gt.* or\n"
                "NAME.* in --masks (palette or grayscale PNG/BMP, or .npy; value = class id, 255 = ignore).\n"
                "Reports the confusion matrix, per-class IoU, mean IoU and pixel accuracy (PASCAL convention:\n"
                "255 ignored), and Coral's agreement: same / (a.size + b.size - same), with the model's raw\n"
                "output resized to the mask by nearest and 255 read as background. A mask must have its image's\n"
                "size (after EXIF orientation) and hold class ids of the model's label set or 255.\n\n"
                "exit status: 0 when every pair was evaluated, 1 when any failed (each is named), 2 on errors",
    "fetch": "examples:\n  pydeeplab fetch --list\n  pydeeplab fetch deeplabv3_257\n"
             "  pydeeplab fetch deeplabv3_mnv2_pascal_quant --dir ~/models\n\n"
             "Saves into --dir, else the models/ subfolder of the first folder of $PYDEEPLAB_DATA, else the\n"
             "checkout's weights/ folder\n"
             "(when pydeeplab runs from a source checkout), else the per-user cache ($XDG_CACHE_HOME/pydeeplab,\n"
             "default ~/.cache/pydeeplab). The download goes to a temporary file, is checked against the\n"
             "manifest's SHA-256 and only then renamed into place. Without network: download the URL that\n"
             "`fetch --list` shows elsewhere and copy the file into one of those folders.\n\n"
             "exit status: 0 when every model is present, 1 when a download failed",
}


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .summary import format_summary, summarize
    from .tflite.reader import load_model

    from .backends import describe_backend

    summary = summarize(load_model(args.model))
    summary["backend"] = describe_backend(args.backend)  # which kernels would run it here, and why
    print(json.dumps(summary, indent=2) if args.json else f"{format_summary(summary)}\nbackend: {summary['backend']}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verification import format_report, verify

    modes = ("isolated", "cascaded") if args.mode == "both" else (args.mode,)
    if args.against not in ("ref", "builtin"):  # float shadow or another model: quantization error
        import os

        from .quantization_error import format_quantization_error, quantization_error

        if args.tolerance is not None:
            print("pydeeplab verify: error: --tolerance applies to --against builtin, not to the quantization "
                  "error", file=sys.stderr)
            return 2
        if args.against != "float" and not os.path.isfile(args.against):
            print(f"pydeeplab verify: error: --against takes ref, builtin, float or the path of a .tflite file; "
                  f"{args.against!r} is none of them", file=sys.stderr)
            return 2

        qe = quantization_error(args.model, args.image, against=args.against, backend=args.backend, modes=modes,
                                num_threads=args.threads, progress=not args.json)
        print(json.dumps(qe.to_dict(), indent=2) if args.json else format_quantization_error(qe))
        return 0
    report = verify(args.model, args.image, against=args.against, backend=args.backend, modes=modes,
                    num_threads=args.threads, lsb_tolerance=args.tolerance)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .report import report

    stages = ["planning", "running the model", "pictures", "segmentation", "LiteRT comparison", "quantization error"]
    with tqdm(total=len(stages), desc="report", unit="stage", disable=args.quiet or None, leave=False) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        page = report(args.model, args.image, args.out, backend=args.backend, num_threads=args.threads,
                      litert=not args.no_litert, quantization=not args.no_quantization,
                      max_thumbnail_ops=args.thumbnails, progress=progress)
    print(f"wrote {args.out} ({len(page.encode('utf-8')) / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def _print_err(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _cmd_segment(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from tqdm import tqdm

    from .segment import Segmenter, expand_inputs, plan_jobs, run_jobs

    from .animation import frames_clip, is_animated, open_clip

    clips = {}
    if args.clip:
        inputs = []
        for name in args.inputs:
            p = Path(name)
            if p.is_dir():
                clips[p] = frames_clip(p, args.frame_ms)
            inputs.append(p)
    else:
        inputs = expand_inputs(args.inputs)
    for p in inputs:
        if p not in clips and is_animated(p):
            try:
                clips[p] = open_clip(p)
            except ValueError:
                pass  # segmented as a still image, which reports what is wrong with the file
    if not inputs:
        print(f"pydeeplab segment: no images in {', '.join(args.inputs)}", file=sys.stderr)
        return 1
    threads = args.threads
    if threads is None and args.jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
    segmenter = Segmenter(args.model, backend=args.backend, num_threads=threads, keep_aspect=args.keep_aspect,
                          **_model_settings(args))
    out_dir = Path(args.out)
    jobs = plan_jobs(inputs, out_dir, args.format, args.alpha if args.overlay else None, clips)
    failed = skipped = 0
    with tqdm(total=len(jobs), unit="image", desc="segment", disable=args.quiet or None, leave=False) as bar:
        for result in run_jobs(segmenter, jobs, workers=args.jobs, num_threads=threads, scheduler=args.scheduler,
                               resume=args.resume):
            bar.update(1)
            if result.skipped:
                skipped += 1
            elif result.error is not None:
                failed += 1
                _print_err(f"pydeeplab segment: error: {result.error}")
            elif not args.quiet:
                top = list(result.summary["classes"].items())[:3]
                classes = ", ".join(f"{name} {100 * f:.1f}%" for name, f in top)
                tqdm.write(f"{result.job.input}: {classes}  ({result.summary['timings_ms']['total']:.0f} ms)")
    done = len(jobs) - failed - skipped
    print(f"{done} of {len(jobs)} images segmented with {segmenter.info.name} into {out_dir}"
          + (f"; {skipped} already done (--resume)" if skipped else "")
          + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_result, pair_images_and_masks
    from .segment import Segmenter

    if args.dataset is not None:
        return _evaluate_dataset(args)
    if args.images is None or args.masks is None:
        print("pydeeplab evaluate: error: give --dataset DIR, or --images and --masks (see --help)", file=sys.stderr)
        raise SystemExit(2)  # a usage error, as argparse reports its own
    if args.jobs > 1 or args.scheduler:
        print("pydeeplab evaluate: error: --jobs and --scheduler work with --dataset", file=sys.stderr)
        raise SystemExit(2)
    pairs, skipped = pair_images_and_masks(args.images, args.masks)
    if not pairs:
        print(f"pydeeplab evaluate: no image in {args.images} has a mask in {args.masks}"
              + (f" ({'; '.join(skipped)})" if skipped else ""), file=sys.stderr)
        return 1
    segmenter = Segmenter(args.model, backend=args.backend, num_threads=args.threads, keep_aspect=args.keep_aspect,
                          **_model_settings(args))
    result = evaluate(segmenter, pairs, skipped, progress=not args.json)
    for message in result.failed:
        _print_err(f"pydeeplab evaluate: error: {message}")
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    print(f"{len(result.images)} of {len(pairs)} image and mask pairs evaluated"
          + (f"; {len(result.failed)} failed" if result.failed else ""), file=sys.stderr)
    return 1 if result.failed else 0


def _evaluate_dataset(args: argparse.Namespace) -> int:
    from .datasets import check_label_set, load_label_map, open_dataset
    from .distributed import evaluate_dataset
    from .evaluate import format_dataset_result
    from .segment import Segmenter

    dataset = open_dataset(args.dataset, args.split).limited(args.limit)
    if not dataset.samples:
        print(f"pydeeplab evaluate: no images in the {args.split} split of {args.dataset}", file=sys.stderr)
        return 1
    threads = args.threads if args.threads is not None or args.scheduler else (
        max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None)
    segmenter = Segmenter(args.model, backend=args.backend, num_threads=threads, keep_aspect=args.keep_aspect,
                          **_model_settings(args))
    names = tuple(segmenter.class_names)
    if args.label_map:
        dataset = dataset.with_label_map(load_label_map(args.label_map), names, segmenter.label_set.name)
    else:
        check_label_set(dataset, names, segmenter.info.name)
    result = evaluate_dataset(segmenter, dataset, jobs=args.jobs, scheduler=args.scheduler, threads=threads,
                              progress=not args.json,
                              on_broken=lambda message: _print_err(f"pydeeplab evaluate: broken, skipped: {message}"))
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_dataset_result(result))
    print(f"{result.images} of {len(dataset.samples)} images evaluated"
          + (f"; {len(result.broken)} broken, skipped" if result.broken else ""), file=sys.stderr)
    return 1 if result.broken else 0


def _model_settings(args: argparse.Namespace) -> dict:
    """The Segmenter's model settings from --mean/--std/--labels/--output-kind (None: from the model)."""
    return {"mean": args.mean, "std": args.std, "labels": args.labels, "output": args.output_kind,
            "resample": args.resample}


def _add_model_settings(p: argparse.ArgumentParser) -> None:
    from .models import OUTPUT_KINDS

    g = p.add_argument_group("model settings (default: the model's TFLite metadata, else the manifest, "
                             "else what the output tensor says)")
    g.add_argument("--mean", type=_numbers, default=None, metavar="M[,M,M]",
                   help="float input normalization (x - mean) / std: one value or R,G,B")
    g.add_argument("--std", type=_numbers, default=None, metavar="S[,S,S]", help="see --mean")
    g.add_argument("--labels", default=None, metavar="FILE|SET",
                   help="class names: a text file (one a line, line i = class i) or a label set "
                        "(pascal_voc, cityscapes, person, ade20k_mlperf)")
    g.add_argument("--output-kind", choices=OUTPUT_KINDS, default=None,
                   help="how to read the output: logits, probabilities (softmaxed), probability or logit "
                        "(one foreground channel: p > 0.5), labels (class ids)")
    g.add_argument("--resample", choices=["antialias", "bilinear"], default="antialias",
                   help="resizing to the model input: antialias (default, Pillow) or bilinear "
                        "(sampling, as MediaPipe's ImageSegmenter: reproduces its masks)")


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .models import FetchError, ModelNotFoundError, default_download_dir, fetch, find_model, load_manifest

    if args.list:
        for info in load_manifest():
            try:
                where = str(find_model(info.name)[0])
            except (FileNotFoundError, ModelError) as exc:
                where = "not downloaded" if isinstance(exc, FileNotFoundError) else f"bad file: {exc}"
            size = f"{info.input_size[0]}x{info.input_size[1]}" if info.input_size else "?"
            print(f"{info.name}\n  {info.description}\n  input {size} {info.input_dtype}, {info.preprocessing}; "
                  f"output {info.output}; labels {info.labels}\n  url {info.url}\n  sha256 {info.sha256}\n  file {where}")
        print(f"\nfetch saves into {args.dir or default_download_dir()}")
        return 0
    if not args.names:
        print("pydeeplab fetch: name a model (see pydeeplab fetch --list)", file=sys.stderr)
        return 2
    status = 0
    for name in args.names:
        try:
            path, downloaded = fetch(name, args.dir, force=args.force, progress=True)
        except (FetchError, ModelNotFoundError) as exc:
            print(f"pydeeplab fetch: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{'downloaded' if downloaded else 'already present'}: {path}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydeeplab",
        description="DeepLab semantic segmentation as TensorFlow Lite runs it, in NumPy and Numba.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version and the backend that runs the kernels here (and why), then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=fn)
        return p

    p = command("inspect", "show a model's inputs, outputs, operators, options and multiply-accumulates", _cmd_inspect)
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _backend_argument(p)

    p = command("verify", "compare every operator of a model with the TFLite runtime (LiteRT)", _cmd_verify)
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--image", help="an image to feed (default: seeded random input)")
    p.add_argument("--against", default="ref", metavar="ref|builtin|float|OTHER.tflite",
                   help="LiteRT's reference kernels (ref, the default) or its optimized built-in kernels; "
                        "float: quantization error per operator against the model's float shadow; "
                        "OTHER.tflite: against a float version of the model, tensors matched by name")
    p.add_argument("--mode", choices=["isolated", "cascaded", "both"], default="both",
                   help="isolated: each op fed LiteRT's inputs; cascaded: our own chain (default both)")
    _backend_argument(p)
    p.add_argument("--threads", type=int, default=None, help="threads for both runtimes")
    p.add_argument("--tolerance", type=_lsb_count, default=None, metavar="N",
                   help="with --against builtin: LSB an isolated integer output may differ (default 1); "
                        "against ref integers must be identical")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("report", "write a self-contained HTML study and verification report of a model on an image",
                _cmd_report)
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--image", help="the image to run (default: seeded random input, no segmentation pictures)")
    p.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    _backend_argument(p)
    p.add_argument("--threads", type=_positive_int, default=None, help="threads for the kernels and LiteRT")
    p.add_argument("--thumbnails", type=_positive_int, default=48, metavar="N",
                   help="at most N operators get pictures of their output (default 48)")
    p.add_argument("--no-litert", action="store_true", help="skip the comparison with LiteRT")
    p.add_argument("--no-quantization", action="store_true", help="skip the float shadow of a quantized model")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = command("segment", "segment images: label PNGs, overlays and JSON summaries", _cmd_segment)
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="image files, or folders of images (not recursive)")
    p.add_argument("--model", default="deeplabv3_257", help="model name or .tflite path (default deeplabv3_257)")
    p.add_argument("--out", default="segmentation", metavar="DIR", help="output folder (default ./segmentation)")
    p.add_argument("--overlay", action="store_true", help="also write NAME_overlay.png: the classes tinted on the photo")
    p.add_argument("--alpha", type=_unit_float, default=0.5, metavar="A", help="overlay opacity 0..1 (default 0.5)")
    p.add_argument("--format", choices=["png", "npy", "json"], default="png",
                   help="label mask as palette PNG (default), .npy array, or json: the summary only")
    p.add_argument("--keep-aspect", action="store_true",
                   help="fit the image into the model input keeping its aspect ratio (padding), not stretched")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N", help="images processed in parallel (processes)")
    _backend_argument(p)
    p.add_argument("--threads", type=_positive_int, default=None, help="threads per process for the kernels")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on the Dask distributed cluster of this scheduler (e.g. tcp://10.0.0.5:8786)")
    p.add_argument("--resume", action="store_true", help="skip images whose outputs all exist (a killed run continues)")
    p.add_argument("--clip", action="store_true",
                   help="take each folder as one clip of numbered frames: an animated overlay GIF out")
    p.add_argument("--frame-ms", type=_positive_int, default=100, metavar="MS",
                   help="frame duration of a --clip folder in milliseconds (default 100)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar nor per-image lines")
    _add_model_settings(p)

    p = command("evaluate", "measure a model against ground-truth masks: IoU, accuracy, Coral agreement", _cmd_evaluate)
    p.add_argument("--model", required=True, help="model name or .tflite path")
    p.add_argument("--images", metavar="DIR|FILE", help="an image or a folder of images")
    p.add_argument("--masks", metavar="DIR|FILE", help="its mask or the folder of masks")
    p.add_argument("--dataset", metavar="DIR", help="a PASCAL VOC, ADE20K or Cityscapes folder (instead of --images)")
    p.add_argument("--split", default="val", help="the dataset split (default val)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="K", help="only the first K images")
    p.add_argument("--label-map", metavar="FILE", help="dataset mask value -> model class id, for another label set")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N", help="images in parallel (local processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on the Dask distributed cluster of this scheduler (e.g. tcp://10.0.0.5:8786)")
    p.add_argument("--keep-aspect", action="store_true", help="letterbox images instead of stretching them")
    _backend_argument(p)
    p.add_argument("--threads", type=_positive_int, default=None, help="threads for the kernels")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_model_settings(p)

    p = command("fetch", "download a known model into the models folder, checking its SHA-256", _cmd_fetch)
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (see --list)")
    p.add_argument("--list", action="store_true", help="list the known models, their URLs and where they are")
    p.add_argument("--dir", default=None, help="folder to save into (default: see below)")
    p.add_argument("--force", action="store_true", help="download even if a good copy is present")

    return parser


def _backend_argument(p: argparse.ArgumentParser) -> None:
    from .backends import CHOICES

    p.add_argument("--backend", choices=CHOICES, default="auto",
                   help="numba (fast kernels), numpy (the reference, no Numba needed) or auto (the default: "
                        "numba when it loads, else numpy with a warning)")


class _VersionAction(argparse.Action):
    """``--version``: the version, then which backend runs here and why (probing Numba takes a moment)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__
        from .backends import describe_backend

        print(f"pydeeplab {__version__}\nbackend: {describe_backend('auto')}")
        parser.exit()


def _int_at_least(minimum: int):
    """An argparse ``type`` accepting a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_lsb_count = _int_at_least(0)


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or three comma-separated numbers: {text!r}") from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"give one value or three (R,G,B), not {len(values)}: {text!r}")
    return values


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _plain_warnings(command: str):
    """A ``warnings.showwarning`` that prints pydeeplab's own warnings as CLI messages
    (``pydeeplab segment: warning: ...``) rather than with a source file and line."""
    import warnings

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not category.__module__.startswith("pydeeplab"):
            return default(message, category, filename, lineno, file, line)
        _print_err(f"pydeeplab {command}: warning: {message}")

    return show


def _compile_notice(args: argparse.Namespace):
    """Say on stderr, once, when a command starts compiling the Numba kernels (a cold cache)."""
    from contextlib import nullcontext

    if getattr(args, "backend", "numpy") == "numpy":
        return nullcontext()  # commands without kernels, or the NumPy backend: nothing compiles
    from .compiling import COMPILING_MESSAGE, compile_notice

    return compile_notice(lambda _name: _print_err(f"pydeeplab: {COMPILING_MESSAGE}"))


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    before, warnings.showwarning = warnings.showwarning, _plain_warnings(args.command)
    try:
        with _compile_notice(args):
            return args.func(args)
    except (ModelError, BackendUnavailableError, OSError, ValueError, RuntimeError) as exc:
        print(f"pydeeplab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = before


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``atlaskit book | run | chapters | data``.

Examples
--------
::

    atlaskit book                                   # execute every chapter, render HTML
    atlaskit book --repository https://github.com/<owner>/<repo> --branch book --binderhub https://mybinder.org
    atlaskit run 01_cytoself -p scale full -p data real -p data_dir /data/opencell
    atlaskit chapters                               # list chapters and their parameters
    atlaskit data list                              # registered files and where they are found
    atlaskit data fetch --all                       # fill the cache (e.g. before an offline workshop)
    atlaskit data unpack images.zip data/images     # extract an archive safely (no traversal, no links)
    atlaskit place --run _build/runs/01_cytoself/atlas-ci-sim-seed0.h5ad --images crops.npz  # new protein on the atlas
    atlaskit export-weights _build/runs/04_deepyeast/<run> -o deepyeast.safetensors  # a model as safetensors
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atlaskit.errors import AtlaskitError, ParameterError


def _parameter_pairs(pairs: list[list[str]] | None) -> dict[str, str]:
    return {name: value for name, value in (pairs or [])}


def _launch(args: argparse.Namespace, *, html: bool, hint: str):
    """The :class:`atlaskit.book.Launch` the launch options describe (None without --repository).

    Refused before anything runs: options without ``--repository``, or with no HTML to render
    (``hint`` says which flag to change).
    """
    from atlaskit.book import Launch

    if args.repository is None:
        given = [f"--{name}" for name in ("binderhub", "jupyterhub") if getattr(args, name)]
        given += ["--colab"] * bool(args.colab) + ["--branch"] * (args.branch is not None)
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise ParameterError(f"{', '.join(given)} {verb} --repository URL (the repository the buttons open)")
        return None
    launch = Launch(args.repository, args.branch or "main", args.binderhub, args.jupyterhub, args.colab)
    if not html:
        raise ParameterError(f"launch options only change the HTML: {hint}")
    return launch


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _add_launch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("launch buttons (the HTML pages; building stays offline)")
    g.add_argument("--repository", metavar="URL", help="repository the pages link to, https://<host>/<owner>/<name>")
    g.add_argument("--branch", help="branch holding the executed chapters (book/chapters/*.ipynb; default main)")
    g.add_argument("--binderhub", metavar="URL", help="a BinderHub, e.g. https://mybinder.org")
    g.add_argument("--jupyterhub", metavar="URL", help="a JupyterHub with nbgitpuller")
    g.add_argument("--colab", action="store_true", help="a Google Colab button (GitHub repositories)")


def _check_book_pages(html: bool, hint: str) -> None:
    """Refuse HTML where there are no book pages (an installed wheel has chapters, not the book)."""
    from atlaskit import book

    if html and not (book.ROOT / "_config.yml").is_file():
        raise AtlaskitError(f"the HTML book is rendered in a checkout of the atlaskit repository "
                            f"(no _config.yml in {book.ROOT}); {hint}")


def cmd_book(args: argparse.Namespace) -> int:
    from atlaskit import book

    launch = _launch(args, html=not args.no_html, hint="drop --no-html")  # before an hour of chapters
    _check_book_pages(not args.no_html, "add --no-html to execute the chapters only")
    book.build_book(args.chapter or None, html=not args.no_html, launch=launch, jobs=args.jobs)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from atlaskit import book
    from atlaskit._atomic import check_writable_file

    launch = _launch(args, html=args.html, hint="add --html")
    _check_book_pages(args.html, "drop --html")
    # Everything that can be checked in a second is checked before the chapter runs (an hour at
    # scale full): the chapter, its parameters, and that the executed notebook can be written.
    name, source = book.resolve_chapter(args.chapter)
    book.validate_parameters(name, source, _parameter_pairs(args.parameter))
    output = Path(args.output).expanduser() if args.output else book.CHAPTERS_OUT / f"{name}.ipynb"
    check_writable_file(output, "the executed notebook")
    # which cell runs and one line per training epoch, on this terminal only (not in the notebook)
    result = book.execute_chapter(args.chapter, _parameter_pairs(args.parameter), output=output, progress=sys.stderr)
    print(f"✓ {result.chapter} in {result.seconds:.0f} s → {result.output}")
    if args.html:
        print(f"✓ book at {book.build_html(launch=launch) / 'index.html'}")
    return 0


def cmd_chapters(args: argparse.Namespace) -> int:
    from atlaskit import book

    sources = book.chapter_sources()
    if not sources:
        raise AtlaskitError(book.no_chapters_message())
    for name, source in sources.items():
        params = book.chapter_parameters(source)
        print(f"{name}\n    " + "\n    ".join(f"-p {k} {v!r}" for k, v in params.items()))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from atlaskit.data import registry

    table = registry.status()
    if args.group:
        table = table[table["name"].str.startswith(args.group)]
    with __import__("pandas").option_context("display.max_rows", None, "display.width", 160):
        print(table.to_string(index=False))
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from atlaskit.data import registry

    names = list(args.names)
    if args.all:
        names = list(registry.entries())
    for group in args.group or []:
        names += [n for n, e in registry.entries().items() if e.group == group]
    if not names:
        raise AtlaskitError("name the files to fetch, or use --all or --group GROUP (see `atlaskit data list`)")
    for name in dict.fromkeys(names):
        path = registry.fetch(name, fill_cache=args.fill_cache)
        print(f"{name} → {path}")
    if args.fill_cache:
        print(f"cache: {registry.cache_dir()} (copy this folder to other machines, or name it in $ATLASKIT_MIRROR there)")
    return 0


def cmd_data_unpack(args: argparse.Namespace) -> int:
    from atlaskit.data import archives

    limits = {"max_bytes": args.max_bytes, "max_members": args.max_members, "max_ratio": args.max_ratio}
    limits = {k: v for k, v in limits.items() if v is not None}  # unset: the module's defaults
    if limits.get("max_ratio") == 0:
        limits["max_ratio"] = None  # --max-ratio 0: no ratio limit
    files = archives.safe_extract(args.archive, args.dest, check_space=not args.skip_space_check, **limits)
    shown = 20
    for name in files[:shown]:
        print(name)
    if len(files) > shown:
        print(f"... and {len(files) - shown} more")
    total = sum((Path(args.dest) / name).stat().st_size for name in files)
    print(f"✓ {len(files)} file(s), {total} bytes → {args.dest}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """deepGPS batch prediction (the openGPS "Predict" analogue) with a model the chapter 02 trained."""
    from atlaskit.commands.predict import predict_fasta

    def progress(done: int, total: int, stage: str) -> None:  # many proteins: a line every 10 %
        if total >= 20 and (done == total or done % max(1, total // 10) == 0):
            print(f"compare: {done}/{total} {stage}", file=sys.stderr, flush=True)

    result = predict_fasta(
        args.fasta, out_dir=args.out, variant=args.model, checkpoint=args.checkpoint, nucleus=args.nucleus,
        device=args.device, esm_weights=args.esm_weights, overwrite=args.overwrite,
        compare=args.compare, atlas_run=args.atlas_run, progress=progress,
    )
    for row in result.skipped.itertuples(index=False):
        who = f"record {row.id!r}" if isinstance(row.id, str) else "file"
        print(f"skipped {who} (line {row.line}): {row.reason}", file=sys.stderr)
    print(f"model: deepGPS-{args.model} from {result.model_folder}")
    print(f"✓ {len(result.table)} protein(s) predicted, {len(result.skipped)} record(s) skipped → "
          f"{result.out_dir / 'predictions.csv'} and one PNG per protein")
    if result.comparison is not None:
        from atlaskit.studies.deepgps.compare import comparison_text

        print(f"\nyour images against the generated ones (PSNR in dB, SSIM"
              f"{'; cytoself distance and rank' if 'atlas_rank' in result.comparison else ''}) "
              f"→ {result.out_dir / 'comparison.csv'}:")
        print(comparison_text(result.comparison), end="")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Apply a saved study model to real images and print accuracy, per-class recall and the confusion."""
    from atlaskit.commands.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(
        args.checkpoint, args.images, list_file=args.list, batch_size=args.batch_size, device=args.device
    )
    print(report.to_text(), end="")
    return 0


def cmd_place(args: argparse.Namespace) -> int:
    """cytoself: images of a new protein placed on chapter 01's atlas, with its nearest proteins' families."""
    from atlaskit.commands.place import place_images, placement_text

    placement, name, run_dir, atlas_path = place_images(args.run, args.images, atlas=args.atlas, k=args.k)
    print(placement_text(placement, name, run_dir, atlas_path), end="")
    return 0


def cmd_export_weights(args: argparse.Namespace) -> int:
    """A saved model of any study (run folder or checkpoint) as a .safetensors file that atlaskit.load reads."""
    from atlaskit.loading import export_weights, load

    out = export_weights(args.checkpoint, args.output)
    model = load(out)
    classes = f", {len(model.classes)} classes" if model.classes else ""
    print(f"✓ {model.study} model ({type(model).__name__}{classes}) → {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlaskit", description="The Protein Localization Atlas book and its tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("book", help="execute chapters at default parameters and render the HTML book")
    p.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    p.add_argument("--no-html", action="store_true", help="execute chapters only")
    p.add_argument("-j", "--jobs", type=_positive_int, default=1, metavar="N",
                   help="chapters executed at once, each with cores/N threads (default 1)")
    _add_launch_options(p)
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("run", help="execute one chapter with parameters")
    p.add_argument("chapter", help="chapter name, number or title, e.g. 01_cytoself, 01 or cytoself")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="set a parameter")
    p.add_argument("-o", "--output", help="executed notebook path (default book/chapters/<chapter>.ipynb)")
    p.add_argument("--html", action="store_true", help="rebuild the HTML book afterwards")
    _add_launch_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("chapters", help="list chapters and their parameters")
    p.set_defaults(func=cmd_chapters)

    p = sub.add_parser("evaluate", help="measure a saved model on real images (the sim-to-real check)")
    p.add_argument("study", choices=["deepyeast"], help="the study whose model is evaluated")
    p.add_argument("--checkpoint", required=True, help="model checkpoint written by the chapter (its path is printed there)")
    p.add_argument("--images", required=True,
                   help=".npz with images (N, 2, 64, 64) in [0, 1] (GFP, RFP) and labels (class names), "
                        "or a DeepYeast-format image folder")
    p.add_argument("--list", help="split list of an image folder (default: the folder's HOwt_test.txt)")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_evaluate)

    data = sub.add_parser("data", help="registered data files").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("list", help="registered files and where each is found (cache, mirror or missing)")
    p.add_argument("--group", help="only names starting with this prefix")
    p.set_defaults(func=cmd_data_list)
    p = data.add_parser("fetch", help="fetch files into the cache (or find them in the mirror)")
    p.add_argument("names", nargs="*", help="registered names, e.g. opencell/annotations-flat.csv")
    p.add_argument("--all", action="store_true", help="every registered file")
    p.add_argument("--group", action="append", help="every file of a group, e.g. hpa/kaggle2018-sample")
    p.add_argument("--fill-cache", action="store_true",
                   help="copy files found in a mirror into the cache too, so that the cache folder alone "
                        "holds them (prefetching for offline laptops)")
    p.set_defaults(func=cmd_data_fetch)
    p = data.add_parser("unpack", help="extract a zip or tar archive safely (refuses traversal, links, bombs)")
    p.add_argument("archive", help=".zip, .tar, .tar.gz/.tgz, .tar.bz2 or .tar.xz")
    p.add_argument("dest", help="folder to create (it must not exist, or be empty)")
    p.add_argument("--max-bytes", type=int, default=None,
                   help="largest total uncompressed size accepted (default 64 GiB)")
    p.add_argument("--max-members", type=int, default=None,
                   help="largest number of members accepted (default 1000000)")
    p.add_argument("--max-ratio", type=_nonnegative_float, default=None,
                   help="largest ratio of uncompressed size to archive size (default 100; 0: no limit)")
    p.add_argument("--skip-space-check", action="store_true",
                   help="do not refuse an archive whose content exceeds the destination's free space")
    p.set_defaults(func=cmd_data_unpack)
    p = sub.add_parser("predict", help="deepGPS: labels and generated images for the proteins of a FASTA file")
    p.add_argument("--fasta", required=True, help="protein sequences (FASTA; bad records are reported and skipped)")
    p.add_argument("--nucleus", help="nucleus image (PNG/TIFF/.npy); default: the one saved with the model")
    p.add_argument("--model", default="single-2", choices=["single-2", "single-4", "all"], help="deepGPS variant")
    p.add_argument("--checkpoint", help="a chapter-02 run folder (or its last.pt); default: the most recent run")
    p.add_argument("--out", default="deepgps-predictions", help="output folder (default ./deepgps-predictions)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier prediction in --out (its table and images) instead of refusing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--esm-weights", help="ESM2 weights file, for a model trained on ESM2 embeddings")
    p.add_argument("--compare", metavar="IMAGES",
                   help="folder of your own images, <id>_protein.png and <id>_nucleus.png (or .tif/.npy) per "
                        "FASTA record: each protein is generated from its nucleus image and compared with your "
                        "protein image (PSNR, SSIM) in comparison.csv")
    p.add_argument("--atlas-run", metavar="RUN",
                   help="with --compare: a chapter-01 cytoself run folder; adds the distance between your image "
                        "and the generated one in its embedding, and its rank among the other proteins' images")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("place", help="cytoself: place images of a new protein on chapter 01's atlas")
    p.add_argument("--run", help="a chapter-01 run folder (_build/runs/01_cytoself/full-r0-…) or its .h5ad atlas")
    p.add_argument("--atlas", help="the atlas .h5ad (default: the one of the run's data set beside the run)")
    p.add_argument("--images", required=True,
                   help=".npz with images (N, 3, 100, 100) (protein, nucleus distance, raw nucleus), "
                        "or a cytoself-format folder of one protein")
    p.add_argument("--k", type=_positive_int, default=10, help="nearest atlas proteins listed (default 10)")
    p.set_defaults(func=cmd_place)
    p = sub.add_parser("export-weights", help="a saved model (any study) as a .safetensors file for atlaskit.load")
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN",
                   help="a chapter run folder, its best.pt/last.pt, or DeepYeast's deepyeast-model.pt")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="the weights file to write")
    p.set_defaults(func=cmd_export_weights)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``with`` and ``finally`` cleans up (temporary
    folders, the kernel and its connection file) before the process ends."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.func(args)
    except AtlaskitError as error:
        print(f"atlaskit: error: {error}", file=sys.stderr)
        return 2
    except _Terminated:
        print("atlaskit: terminated (SIGTERM); temporary files removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("atlaskit: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # the environment (read-only or full disk, a file where a folder should be)
        print(f"atlaskit: error: {_describe_os_error(error)}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_OS_HINTS = {
    "ENOSPC": "the disk is full: free space or point the path elsewhere",
    "EDQUOT": "the disk quota is exhausted",
    "EROFS": "the file system is read-only",
    "EACCES": "permission denied: choose a folder you can write, or fix its permissions",
    "EPERM": "operation not permitted",
    "ENOTDIR": "a file stands where a folder is expected",
    "EISDIR": "a folder stands where a file is expected",
    "ENAMETOOLONG": "a file name is too long",
}


def _describe_os_error(error: OSError) -> str:
    """One line for an environment error: what failed, on which path, and what it means."""
    import errno

    code = errno.errorcode.get(error.errno or 0, "")
    paths = " → ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    what = error.strerror or str(error) or type(error).__name__
    hint = _OS_HINTS.get(code)
    return f"{what}" + (f": {paths}" if paths else "") + (f" ({hint})" if hint else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

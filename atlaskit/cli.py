"""Command line: ``atlaskit book | run | chapters | data``.

Examples
--------
::

    atlaskit book                                   # execute every chapter, render HTML
    atlaskit run 01_cytoself -p scale full -p data real -p data_dir /data/opencell
    atlaskit chapters                               # list chapters and their parameters
    atlaskit data list                              # registered files and where they are found
    atlaskit data fetch --all                       # fill the cache (e.g. before an offline workshop)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atlaskit.errors import AtlaskitError


def _parameter_pairs(pairs: list[list[str]] | None) -> dict[str, str]:
    return {name: value for name, value in (pairs or [])}


def cmd_book(args: argparse.Namespace) -> int:
    from atlaskit import book

    book.build_book(args.chapter or None, html=not args.no_html)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from atlaskit import book

    result = book.execute_chapter(
        args.chapter, _parameter_pairs(args.parameter), output=Path(args.output) if args.output else None
    )
    print(f"✓ {result.chapter} in {result.seconds:.0f} s → {result.output}")
    if args.html:
        print(f"✓ book at {book.build_html() / 'index.html'}")
    return 0


def cmd_chapters(args: argparse.Namespace) -> int:
    from atlaskit import book

    for name, source in book.chapter_sources().items():
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
    for name in names:
        path = registry.fetch(name)
        print(f"{name} → {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlaskit", description="The Protein Localization Atlas book and its tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("book", help="execute chapters at default parameters and render the HTML book")
    p.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    p.add_argument("--no-html", action="store_true", help="execute chapters only")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("run", help="execute one chapter with parameters")
    p.add_argument("chapter", help="chapter name, number or title, e.g. 01_cytoself, 01 or cytoself")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="set a parameter")
    p.add_argument("-o", "--output", help="executed notebook path (default book/chapters/<chapter>.ipynb)")
    p.add_argument("--html", action="store_true", help="rebuild the HTML book afterwards")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("chapters", help="list chapters and their parameters")
    p.set_defaults(func=cmd_chapters)

    data = sub.add_parser("data", help="registered data files").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("list", help="registered files and where each is found (cache, mirror or missing)")
    p.add_argument("--group", help="only names starting with this prefix")
    p.set_defaults(func=cmd_data_list)
    p = data.add_parser("fetch", help="fetch files into the cache (or find them in the mirror)")
    p.add_argument("names", nargs="*", help="registered names, e.g. opencell/annotations-flat.csv")
    p.add_argument("--all", action="store_true", help="every registered file")
    p.add_argument("--group", action="append", help="every file of a group, e.g. hpa/kaggle2018-sample")
    p.set_defaults(func=cmd_data_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AtlaskitError as error:
        print(f"atlaskit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("atlaskit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `humdex` command line: thin subcommands over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from humdex import __version__
from humdex.errors import EXIT_USER_ERROR, HumdexError


def _print_report(report: object, verb: str) -> int:
    added, unchanged, failed = report.added, report.unchanged, report.failed  # type: ignore[attr-defined]
    print(f"{verb} {len(added)} songs, {len(unchanged)} unchanged, {len(failed)} failed")
    for path, reason in failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return EXIT_USER_ERROR if failed and not (added or unchanged) else 0


def cmd_index(args: argparse.Namespace) -> int:
    from humdex.catalog.catalog import Catalog
    from humdex.learned.shipped import default_model_path
    from humdex.search import prepare_default_search
    from humdex.settings import settings

    for name in settings().models:  # a bad HUMDEX_MODELS fails here, before the catalog changes
        default_model_path(name)
    catalog = Catalog.open(args.db, create=args.command == "index")
    report = catalog.add_files(args.paths, manifest=args.manifest, progress=not args.quiet,
                               pitch_method=args.pitch, separate=args.separate)
    if report.added or not report.failed:  # only rejected files: nothing new to fingerprint
        prepare_default_search(catalog, progress=not args.quiet)
    code = _print_report(report, "indexed")
    print(f"catalog {args.db}: {len(catalog)} songs")
    return code


def cmd_remove(args: argparse.Namespace) -> int:
    from humdex.catalog.catalog import Catalog

    catalog = Catalog.open(args.db)
    catalog.remove(args.song_ids)
    print(f"removed {len(args.song_ids)} songs; catalog {args.db}: {len(catalog)} songs")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from humdex.catalog.catalog import Catalog

    songs = Catalog.open(args.db).songs()
    if args.json:
        print(json.dumps([{k: getattr(s, k) for k in ("song_id", "title", "artist", "kind",
                                                       "duration_s", "source")} for s in songs],
                         ensure_ascii=False, indent=1))
        return 0
    for s in songs:
        label = " - ".join(x for x in (s.artist, s.title) if x)
        print(f"{s.song_id}\t{s.kind}\t{s.duration_s:7.1f} s\t{label}")
    print(f"{len(songs)} songs")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from humdex.catalog.catalog import Catalog
    from humdex.search import load_query, search

    catalog = Catalog.open(args.db)
    query = load_query(args.query, pitch_method=args.pitch)
    result = search(query, catalog, top=args.top, from_start=args.from_start,
                    **({"method": args.method} if args.method else {}))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return 0
    print(f"query {result.query}: {result.timing_ms['total']:.0f} ms "
          f"(pitch {result.timing_ms['pitch']:.0f}, search {result.timing_ms['search']:.0f})")
    for h in result.hits:
        where = f"{h.start_s:6.1f}-{h.end_s:6.1f} s" if h.start_s is not None else ""
        print(f"{h.rank:3d}. {h.song_id:<24} {h.score:.3f}  {where}  {h.title or ''}")
    if not result.hits:
        print("no songs in the catalog")
    elif not result.decision.match:
        print(f"no match: no song scores {result.rule.min_score:.2f} or more while leading the next "
              f"ones by {result.rule.min_margin:.2f}, so the song is probably not in the catalog "
              "(the list above is only the nearest melodies)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from humdex.catalog.integrity import cmd_check as check

    return check(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from humdex.compare import compare, plot_comparison

    comparison = compare(Path(args.a), Path(args.b), pitch_method=args.pitch)
    if args.plot:
        plot_comparison(comparison, Path(args.plot))
    if args.json:
        print(json.dumps(comparison.to_json(), ensure_ascii=False))
    else:
        print(comparison.summary())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from humdex.evaluate import evaluate_cli

    return evaluate_cli(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from humdex.demo import run_demo

    return run_demo(args)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="catalog folder")


def _add_pitch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pitch", default=None,
                   help="pitch tracker for audio: crepe-tiny | crepe-full | swift | pyin | salience "
                        "(default: humdex.frontend.pitch's: salience for songs' mixes, swift otherwise)")


# subcommands whose arguments live beside their code: name -> (module, function(subparsers) -> parser).
# Their modules import torch, scipy.signal or fastapi (seconds): main() loads them only when the
# command line names that subcommand, or names none of the built-in ones (help, errors).
_PLUGGED_PARSERS = {"serve": (".service.server", "add_serve_parser"),
                    "synth": (".synth.cli", "add_synth_parser"),
                    "train": (".training.train", "add_train_parser"),
                    "mine": (".training.mining", "add_mine_parser"),
                    "selftrain": (".training.selftrain", "add_selftrain_parser"),
                    "chad": (".training.chad_download", "add_chad_parser"),
                    "review": (".training.review", "add_review_parser")}


_BUILTIN_COMMANDS = ("index", "add", "remove", "list", "check", "search", "compare", "eval", "demo")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with `only` a command name, the plugged subcommands other than it are left out."""
    parser = argparse.ArgumentParser(prog="humdex", description=__doc__)
    parser.add_argument("--version", action="version", version=f"humdex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("index", "index song files/folders into a catalog (created if needed)", cmd_index),
        ("add", "add song files to an existing catalog", cmd_index),
        ("remove", "remove songs from a catalog by id", cmd_remove),
        ("list", "list the songs of a catalog", cmd_list),
        ("check", "check a catalog's files (and --repair what can be rebuilt)", cmd_check),
        ("search", "find the song a hummed/sung query comes from", cmd_search),
        ("compare", "score a recording against another recording or a MIDI file", cmd_compare),
        ("eval", "measure hit rates on a list of queries or the MIR-QBSH corpus", cmd_eval),
        ("demo", "build a demo catalog from music21's melodies and search sung queries", cmd_demo),
    ]
    p = {name: sub.add_parser(name, help=text, description=text) for name, text, _ in commands}
    for name, _, func in commands:
        p[name].set_defaults(func=func)
    for name in ("index", "add"):
        p[name].add_argument("paths", nargs="+", help="song files or folders (MIDI, audio, .pv, f0 CSV)")
        _add_db(p[name])
        p[name].add_argument("--manifest", help="CSV path,song_id[,title[,artist]] overriding ids")
        p[name].add_argument("--quiet", action="store_true", help="no progress bar")
        p[name].add_argument("--separate", choices=("none", "spleeter"), default="none",
                             help="audio songs: track the melody on Spleeter's vocal stem")
        _add_pitch(p[name])
    p["remove"].add_argument("song_ids", nargs="+")
    _add_db(p["remove"])
    _add_db(p["list"])
    _add_db(p["check"])
    p["check"].add_argument("--repair", action="store_true",
                            help="rebuild corrupt data from the song files, corrupt fingerprint "
                                 "stores, remove leftover temporary files")
    p["check"].add_argument("--quiet", action="store_true", help="no progress bar")
    p["list"].add_argument("--json", action="store_true")
    p["search"].add_argument("query", help="audio file, .pv or f0 CSV (time_s,f0_hz)")
    _add_db(p["search"])
    p["search"].add_argument("--top", type=_positive_int, default=10, help="songs to list (>= 1)")
    p["search"].add_argument("--json", action="store_true", help="print one JSON object")
    p["search"].add_argument("--from-start", action="store_true",
                             help="queries start at the song's start (MIREX MIR-QBSH protocol)")
    p["search"].add_argument("--method", default=None,
                             choices=("classical", "learned", "hybrid", "auto"),
                             help="classical pitch matcher, learned fingerprints, learned "
                                  "candidates + DTW rerank, or auto (the default: learned for "
                                  "audio catalogs, hybrid for melody catalogs)")
    _add_pitch(p["search"])
    p["compare"].add_argument("a", help="query recording or pitch file")
    p["compare"].add_argument("b", help="song: recording, pitch file or MIDI/score")
    p["compare"].add_argument("--plot", help="write a picture of the alignment (PNG)")
    p["compare"].add_argument("--json", action="store_true")
    _add_pitch(p["compare"])
    from humdex.evaluate import add_eval_arguments

    add_eval_arguments(p["eval"])
    for name, (module, adder) in _PLUGGED_PARSERS.items():
        if only is None or only == name:
            getattr(import_module(module, __package__), adder)(sub)
    p["demo"].add_argument("--db", default="humdex-demo/catalog", help="demo catalog folder")
    p["demo"].add_argument("--songs", type=int, default=1000, help="melodies in the catalog")
    p["demo"].add_argument("--queries", type=int, default=12, help="sung queries to search")
    p["demo"].add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first if first in _BUILTIN_COMMANDS or first in _PLUGGED_PARSERS
                        else None).parse_args(argv)
    args.command_line = ["humdex", *argv]  # a training run stores it as its recipe
    try:
        return int(args.func(args))
    except HumdexError as err:
        print(f"humdex: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("humdex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

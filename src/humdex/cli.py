"""The `humdex` command line: thin subcommands over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from humdex import __version__
from humdex.errors import EXIT_USER_ERROR, HumdexError
from humdex.frontend.stem import DEFAULT_SEPARATE, SEPARATIONS


def _print_report(report: object, verb: str) -> int:
    added, unchanged, failed = report.added, report.unchanged, report.failed  # type: ignore[attr-defined]
    print(f"{verb} {len(added)} songs, {len(unchanged)} unchanged, {len(failed)} failed")
    for path, reason in failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return EXIT_USER_ERROR if failed and not (added or unchanged) else 0


def cmd_index(args: argparse.Namespace) -> int:
    from humdex.catalog.catalog import Catalog
    from humdex.cluster import executor_for
    from humdex.learned.shipped import model_path
    from humdex.learned.store_spec import check_store, use_store
    from humdex.search import prepare_default_search
    from humdex.settings import settings

    for name in settings().models:  # a bad HUMDEX_MODELS fails here, before the catalog changes
        model_path(name)
    store = check_store(args.store) if args.store else None  # so does a bad --store
    with executor_for(args.ray) as executor:  # and a missing Ray or an unreachable cluster
        catalog = Catalog.open(args.db, create=args.command == "index")
        if store:
            use_store(catalog, store)
        report = catalog.add_files(args.paths, manifest=args.manifest, progress=not args.quiet,
                                   pitch_method=args.pitch, separate=args.separate, executor=executor)
        if report.added or not report.failed:  # only rejected files: nothing new to fingerprint
            prepare_default_search(catalog, progress=not args.quiet, executor=executor)
    code = _print_report(report, "indexed")
    print(f"catalog {args.db}: {len(catalog)} songs")
    return code


def _add_ray(p: argparse.ArgumentParser, what: str) -> None:
    from humdex.cluster import LOCAL

    p.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                   help=f"{what} on a Ray cluster: ADDRESS host:6379, ray://host:10001 or auto "
                        f"(the one `ray start` runs here); without it a Ray instance on this "
                        f"machine for this run (pip install 'humdex[ray]')")


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
    from humdex.learned.store_spec import check_store, require_store
    from humdex.search import load_query, prewarm, resolve_method, search

    catalog = Catalog.open(args.db)
    if args.store:
        require_store(catalog, check_store(args.store))
    snap = catalog.snapshot()
    loading = prewarm(snap, resolve_method(snap, args.method or "auto"), args.pitch, catalog.db_dir)
    try:
        query = load_query(args.query, pitch_method=args.pitch)
        result = search(query, catalog, top=args.top, from_start=args.from_start,
                        **({"method": args.method} if args.method else {}))
    finally:  # never exit while a loader runs native code: a daemon thread killed there aborts
        for thread in loading:  # the process ("terminate called without an active exception")
            thread.join()
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


def cmd_serve(args: argparse.Namespace) -> int:
    from humdex.service.server import run_serve

    return run_serve(args)


def cmd_synth(args: argparse.Namespace) -> int:
    from humdex.synth.cli import run_synth

    return run_synth(args)


def cmd_train(args: argparse.Namespace) -> int:
    from humdex.training.train import run_train

    return run_train(args)


def cmd_mine(args: argparse.Namespace) -> int:
    from humdex.training.mining import run_mine

    return run_mine(args)


def cmd_mine_hums(args: argparse.Namespace) -> int:
    from humdex.training.mining import run_mine_hums

    return run_mine_hums(args)


def cmd_selftrain(args: argparse.Namespace) -> int:
    from humdex.training.selftrain import run_selftrain

    return run_selftrain(args)


def cmd_chad(args: argparse.Namespace) -> int:
    from humdex.training.chad_download import run_chad

    return run_chad(args)


def cmd_review(args: argparse.Namespace) -> int:
    from humdex.training.review import run_review

    return run_review(args)


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


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="where song fingerprints live: faiss (default), faiss:f16|sq8|pq|hnswpq, "
                        "milvus:///path/file.db (milvus-lite) or http://host:19530 (Milvus), "
                        "either with ?index=HNSW|IVF_FLAT|IVF_SQ8|IVF_PQ|FLAT; "
                        "the catalog remembers it")


def _add_pitch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pitch", default=None,
                   help="pitch tracker for audio: crepe-tiny | crepe-full | swift | pyin | salience | melody-net "
                        "(default: humdex.frontend.pitch's: melody-net for songs' mixes, swift otherwise)")


# subcommands whose parsers need a constant from a module that imports torch, fastapi or scipy
# (seconds): main() builds them only when the command line names that subcommand, or names none
# of the built-in ones (help, errors)
def _add_access(p: argparse.ArgumentParser) -> None:
    """Who may change a served catalog (humdex.service.access)."""
    from humdex.service.access import TOKEN_ENV

    p.add_argument("--token", default=None,
                   help=f"token that adding/removing songs needs (default: ${TOKEN_ENV}; generated "
                        "and printed when --host is not loopback)")
    p.add_argument("--no-token", action="store_true",
                   help="let anyone who reaches the server add and remove songs (not recommended "
                        "beyond loopback)")
    p.add_argument("--allowed-host", action="append", default=[],
                   help="another name clients reach this server by (repeatable); other Host "
                        "headers are refused")
    p.add_argument("--cors-origin", action="append", default=[],
                   help="an origin whose web pages may call this API (repeatable; CORS is off otherwise)")


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the web page and REST API over a catalog",
                              description="Run the humdex web service (page at /, API docs at /docs).")
    p.add_argument("--db", required=True, help="catalog folder")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threshold", type=float, default=None,
                   help="score a best match needs (default: the calibrated rule of the catalog's "
                        "search method, humdex.nomatch.config_for)")
    p.add_argument("--min-margin", type=float, default=None,
                   help="how far the best score must lead the next ones "
                        "(default: calibrated per search method)")
    p.add_argument("--max-upload-mb", type=float, default=None,
                   help="largest query upload in MB (default 20)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--review", default=None, metavar="MINED_DIR",
                   help="also serve the review queue of a mined folder (humdex mine --out) at /review")
    _add_access(p)
    p.set_defaults(func=cmd_serve)


def _synth_parser(sub_: Any) -> None:
    from humdex.synth.cli import DEFAULT_OUT

    text = "render training data (CHAD layout) or benchmark queries with the synthesizer"
    p = sub_.add_parser("synth", help=text, description=text)
    sub = p.add_subparsers(dest="synth_command", required=True, metavar="MODE")
    c = sub.add_parser("corpus", help="render aligned hum/song/cover fragments in CHAD's layout")
    c.add_argument("--out", default=DEFAULT_OUT, help=f"corpus folder (default {DEFAULT_OUT})")
    c.add_argument("--hours", type=float, default=1.0, help="hours of fragment audio to reach")
    c.add_argument("--split", default="train", choices=["train", "validation", "test"])
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=1, help="worker processes")
    c.add_argument("--full-songs", default="originals", choices=["none", "originals", "all"],
                   help="also write full-length songs to songs/ (default: originals)")  # fmt: skip
    c.add_argument("--pool", default=None, help="melody pool .npz (default: the shipped pool)")
    c.add_argument("--songs", default="synth", choices=["synth", "records"],
                   help="how originals and covers sound: synth (numpy voice + band, default) or records "
                        "(sampled instruments via fluidsynth: lead, chords, bass, drums; `make system-deps`)")  # fmt: skip
    c.add_argument("--sound", default="train", choices=["train", "wide", "heldout", "proxy"],
                   help="records only: a training sound (FluidR3_GM: train, or wide with ~50 lead "
                        "programs), the held-out evaluation sound (TimGM6mb, programs and styles never used "
                        "in training) or proxy, the development stand-in for unheard sound "
                        "(csound's GM bank)")  # fmt: skip
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    q = sub.add_parser("queries", help="render hums/whistles of MIDI files + a query list for `humdex eval`")
    q.add_argument("midi", nargs="+", help="MIDI/score files or folders (song id = file stem)")
    q.add_argument("--out", required=True, help="folder for queries/*.wav and queries.tsv")
    q.add_argument("--per-song", type=int, default=1, help="queries per song and kind")
    q.add_argument("--kinds", default="hum,whistle", help="comma list of hum, whistle, sing")
    q.add_argument("--duration", type=float, default=8.0, help="seconds per query recording")
    q.add_argument("--anywhere", action="store_true", help="start anywhere in the song, not at its start")
    q.add_argument("--clean", action="store_true", help="no microphone/room channel")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)


def _train_parser(sub: Any) -> None:
    text = ("train a fingerprint encoder on CHAD-layout folders: the rendered corpus (humdex synth "
            "corpus), a CHAD download (humdex chad download), mined fragments (humdex mine), in any mixture")
    p = sub.add_parser("train", help=text, description=text)
    p.add_argument("chad", nargs="+", help="CHAD-layout folders: metadata.csv + fragments/ each")
    p.add_argument("--without-covers", action="store_true",
                   help="leave cover versions out (hums + originals only: M0 of `humdex selftrain`)")
    p.add_argument("--out", required=True, help="run folder: ckpt.pt, config.json, curves.png")
    p.add_argument("--window", choices=("short", "long"), default="short",
                   help="M_short (3 s / 0.25 s hop) or M_long (8 s / 0.64 s hop)")
    p.add_argument("--feature", choices=("crepe", "cqt", "contour"), default="crepe",
                   help="model input: CREPE activation (80 bins), CQT (84 bins), or contour: the melody "
                        "humdex's front end tracks (songs: the mix's lead; hums: the voice), as a "
                        "pseudo-activation, i.e. what the default search feeds the model")
    p.add_argument("--width", type=int, default=16, help="base channels (ResNet18: 64)")
    p.add_argument("--init", default=None,
                   help="start from this model: a shipped name (short, long ...) or a .pt file; "
                        "its window, width and feature replace --window and --width")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget (else --steps)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--k-groups", type=int, default=32)
    p.add_argument("--per-group", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--mine", action="store_true", help="multi-similarity mining")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--max-fragments", type=int, default=None)
    p.add_argument("--cache", default=None, help="activation cache folder (default CHAD/.humdex_cache)")
    p.add_argument("--workers", type=int, default=1, help="processes computing the features once (cached)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", default=None, help="also write a shippable float16 model here")
    p.set_defaults(func=cmd_train)


def _mine_parser(sub: Any) -> None:
    from humdex.training.mining import MineConfig

    text = "mine aligned fragments of cover groups into a CHAD-layout training folder"
    p = sub.add_parser("mine", help=text, description=text)
    p.add_argument("groups", help="CSV: group_id,role(original|cover),path[,id][,interval]")
    p.add_argument("--model", default=None, help="encoder checkpoint (default: the shipped M_short)")
    p.add_argument("--out", required=True, help="output folder (CHAD layout; resumable)")
    d = MineConfig()
    p.add_argument("--accept", type=float, default=d.accept, help=f"accept at this score (default {d.accept})")
    p.add_argument("--review", type=float, default=d.review,
                   help=f"send to review from this score up to --accept (default {d.review})")
    p.add_argument("--calibrate", type=float, default=d.calibrate, metavar="SHARE",
                   help="thresholds from the model's scores of unrelated pairs (a fragment against another "
                        "group's cover): accept lets SHARE of them through (e.g. 0.02), review 5x as many; "
                        "--accept/--review are then ignored")
    p.add_argument("--fragment-s", type=float, default=d.fragment_s,
                   help="length of the original's fragments when GROUPS.csv gives none")
    p.add_argument("--fragment-hop-s", type=float, default=d.fragment_hop_s)
    p.add_argument("--separate", choices=("none", "spleeter"), default=d.separate,
                   help="fingerprint Spleeter's vocal stem instead of the mix")
    p.add_argument("--frames", choices=("model", "contour"), default=d.frames,
                   help="feed a CREPE model what the front end tracks (contour: the default search's "
                        "path, for models trained with --feature contour) instead of CREPE activations")
    p.add_argument("--workers", type=int, default=1, help="groups mined in parallel processes")
    _add_ray(p, "mine the groups (instead of --workers)")
    p.add_argument("--cache", default=None, help="feature cache folder (default OUT/.cache)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_mine)
    text = "turn a user's labelled hums (query list: path<TAB>song_id) into training pairs aligned to the songs"
    h = sub.add_parser("mine-hums", help=text, description=text)
    h.add_argument("queries", help="query list: query_path<TAB>song_id per line (as for humdex eval)")
    h.add_argument("--songs", required=True, help="folder of the songs' audio, named SONG_ID.wav (or .mp3, ...)")
    h.add_argument("--model", default=None)
    h.add_argument("--out", required=True, help="output folder (CHAD layout; resumable)")
    h.add_argument("--accept", type=float, default=d.accept)
    h.add_argument("--review", type=float, default=d.review)
    h.add_argument("--frames", choices=("model", "contour"), default=d.frames)
    h.add_argument("--quiet", action="store_true")
    h.set_defaults(func=cmd_mine_hums)


def _selftrain_parser(sub: Any) -> None:
    from humdex.training.selftrain import SelfTrainConfig

    text = "self-training rounds: M0 on hums, mine cover groups, retrain on hums + mined covers, repeat"
    p = sub.add_parser("selftrain", help=text, description=text)
    p.add_argument("hums", nargs="+", help="CHAD-layout folders of hums + originals (covers are left out)")
    p.add_argument("--groups", required=True, help="GROUPS.csv of cover groups to mine (see humdex mine)")
    p.add_argument("--out", required=True, help="rounds folder (resumable)")
    d = SelfTrainConfig()
    p.add_argument("--rounds", type=int, default=d.rounds, help="retrainings after M0 (default 2: M0, M1, M2)")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps per round")
    p.add_argument("--feature", choices=("crepe", "cqt", "contour"), default=d.feature,
                   help="contour: train on the melody the front end tracks and mine with it (the default search's path)")
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--from", dest="start", default=None, metavar="MODEL",
                   help="M0 fine-tunes this shipped model name or .pt file (its architecture; --width ignored)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--k-groups", type=int, default=d.k_groups)
    p.add_argument("--per-group", type=int, default=d.per_group)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--val-queries", type=int, default=d.val_queries, help="validation hums searched per evaluation")
    p.add_argument("--init", choices=("previous", "scratch"), default=d.init,
                   help="start M_k from M_{k-1}'s weights (default) or from scratch (M0's --from, if given)")
    p.add_argument("--accept", type=float, default=d.mine.accept)
    p.add_argument("--review", type=float, default=d.mine.review)
    p.add_argument("--calibrate", type=float, default=d.mine.calibrate, metavar="SHARE",
                   help="each round's thresholds from its model's scores of unrelated pairs (see humdex mine)")
    p.add_argument("--separate", choices=("none", "spleeter"), default="none")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--truth", default=None,
                   help="songs.csv with the renderer's time maps: judge each round's mining")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_selftrain)


def _chad_parser(sub_: Any) -> None:
    text = "CHAD dataset tooling: validate its metadata, download and cut its audio, ingest its hums"
    p = sub_.add_parser("chad", help=text, description=text)
    sub = p.add_subparsers(dest="chad_command", required=True, metavar="MODE")
    v = sub.add_parser("validate", help="check a CHAD metadata CSV and count what it holds")
    v.add_argument("metadata")
    d = sub.add_parser("download", help="fetch (yt-dlp) and cut CHAD's originals/covers at exact intervals")
    d.add_argument("metadata")
    d.add_argument("--out", required=True, help="CHAD-layout folder (resumable)")
    d.add_argument("--types", default="original,cover", help="comma list: original, cover")
    d.add_argument("--workers", type=int, default=4, help="videos fetched at once")
    d.add_argument("--rate", type=float, default=0.5, help="fetch starts per second at most")
    d.add_argument("--drop-sources", action="store_true", help="delete each full video once cut")
    d.add_argument("--quiet", action="store_true")
    h = sub.add_parser("ingest-hums", help="unpack the Hugging Face hummings tar into a CHAD folder")
    h.add_argument("tar")
    h.add_argument("--out", required=True)
    h.add_argument("--metadata", default=None, help="CHAD metadata CSV: add its humming rows")
    p.set_defaults(func=cmd_chad)


def _review_parser(sub: Any) -> None:
    text = "decide the uncertain mined pairs: same / different / skip (terminal, or a web page with --serve)"
    p = sub.add_parser("review", help=text, description=text)
    p.add_argument("folder", help="a mined folder (humdex mine --out)")
    p.add_argument("--serve", action="store_true", help="serve the review page instead of asking here")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--log-level", default="warning")
    _add_access(p)
    p.set_defaults(func=cmd_review)


def cmd_milvus_server(args: argparse.Namespace) -> int:
    from humdex.learned.milvus_local import run_server

    return run_server(Path(args.data), args.port)


def _milvus_server_parser(sub: Any) -> None:
    text = "run a local Milvus standalone server for --store http://127.0.0.1:PORT (pip install 'humdex[milvus-server]')"
    p = sub.add_parser("milvus-server", help=text, description=text)
    p.add_argument("--data", required=True, help="its folder (binaries, data, logs)")
    p.add_argument("--port", type=int, default=19530)
    p.set_defaults(func=cmd_milvus_server)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", nargs="*", metavar="mirqbsh CORPUS_DIR",
                   help="evaluate on the MIR-QBSH corpus in its distributed layout")
    p.add_argument("--db", required=True, help="catalog folder")
    p.add_argument("--queries", help="TSV list: query_path<TAB>song_id")
    p.add_argument("--use-pv", action="store_true", help="MIR-QBSH: use the .pv pitch files")
    p.add_argument("--from-start", action="store_true",
                   help="queries start at the song's start (default for mirqbsh)")
    p.add_argument("--anywhere", action="store_true", help="mirqbsh: don't assume from-start")
    p.add_argument("--pitch", default=None, help="pitch tracker for audio queries")
    p.add_argument("--method", default=None,
                   choices=("classical", "learned", "hybrid", "auto"),
                   help="search method (default: humdex.search's default)")
    p.add_argument("--report", default="eval_report.json", help="JSON report path")
    p.add_argument("--quiet", action="store_true")


_LAZY_PARSERS: dict[str, Callable[[Any], None]] = {
    "serve": _serve_parser, "synth": _synth_parser, "train": _train_parser, "mine": _mine_parser,
    "mine-hums": _mine_parser, "selftrain": _selftrain_parser, "chad": _chad_parser,
    "review": _review_parser, "milvus-server": _milvus_server_parser}


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
        p[name].add_argument("--separate", choices=SEPARATIONS, default=DEFAULT_SEPARATE,
                             help="audio songs: keep the melody of Spleeter's vocal stem and the mix's (both, "
                                  "the default), the stem's alone (spleeter; the mix's where the lead is an "
                                  "instrument) or the mix's alone (none: ~3x faster, a few songs fewer found)")
        _add_pitch(p[name])
        _add_store(p[name])
        if only in (None, name):  # (humdex.cluster's import: 25 ms of every other command's start)
            _add_ray(p[name], "read, track and fingerprint the songs")
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
                             help="classical pitch matcher, learned fingerprints, learned and "
                                  "classical candidates + DTW rerank, or auto (the default: what "
                                  "measured best, hybrid today)")
    _add_pitch(p["search"])
    _add_store(p["search"])
    p["compare"].add_argument("a", help="query recording or pitch file")
    p["compare"].add_argument("b", help="song: recording, pitch file or MIDI/score")
    p["compare"].add_argument("--plot", help="write a picture of the alignment (PNG)")
    p["compare"].add_argument("--json", action="store_true")
    _add_pitch(p["compare"])
    _eval_arguments(p["eval"])
    for adder in dict.fromkeys(adder for name, adder in _LAZY_PARSERS.items() if only in (None, name)):
        adder(sub)
    p["demo"].add_argument("--db", default="humdex-demo/catalog", help="demo catalog folder")
    p["demo"].add_argument("--songs", type=int, default=1000, help="melodies in the catalog")
    p["demo"].add_argument("--queries", type=int, default=12, help="sung queries to search")
    p["demo"].add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from humdex.settings import configure_native_runtime

    configure_native_runtime()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first if first in _BUILTIN_COMMANDS or first in _LAZY_PARSERS
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

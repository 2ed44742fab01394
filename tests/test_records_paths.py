"""benchmarks/records_benchmark.py `paths`: which catalog and environment each audio path uses,
and the per-kind row it writes from an eval report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from humdex.settings import settings

_SPEC = importlib.util.spec_from_file_location(
    "records_benchmark", Path(__file__).resolve().parents[1] / "benchmarks" / "records_benchmark.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_each_path_sets_the_environment_the_product_reads() -> None:
    """The paths' environments are valid humdex settings and select what each path claims."""
    got = {path: settings(env) for path, (_, env) in bench.PATHS.items()}
    assert got["contour"].models == ("short",) and got["contour"].audio_songs == "contour"
    assert got["cqt"].models == ("cqt",)
    assert got["activation"].audio_songs == "activation" and got["activation"].query_input == "crepe"
    assert got["spleeter"] == got["contour"]  # only its catalog differs
    assert bench.INDEX_FLAGS[bench.PATHS["spleeter"][0]] == ["--separate", "spleeter"]


def test_classical_runs_only_on_a_path_with_its_own_catalog() -> None:
    methods = ["learned", "auto", "classical"]
    assert bench.path_methods("contour", methods) == methods
    assert bench.path_methods("spleeter", methods) == methods
    assert bench.path_methods("cqt", methods) == ["learned", "auto"]
    assert bench.path_methods("activation", methods) == ["learned", "auto"]


def test_the_row_counts_ranks_per_query_kind(tmp_path: Path) -> None:
    queries = [("a_hum.wav", 1), ("b_hum.wav", None), ("c_whistle.wav", 3), ("d_sing.wav", 12)]
    report = {"queries": [{"query": q, "rank": r} for q, r in queries]}
    cells = bench.kind_row(report)
    assert cells["hum top-1"] == 0.5 and cells["hum top-10"] == 0.5
    assert cells["whistle top-1"] == 0.0 and cells["whistle top-10"] == 1.0
    assert cells["sing top-10"] == 0.0
    assert cells["all top-10"] == 0.5 and cells["MRR"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 4, abs=1e-3)
    row = bench.format_row("cqt", "auto", cells)
    assert row == "| cqt | auto | 0.500 / 0.500 | 0.000 / 1.000 | 0.000 / 0.000 | 0.250 / 0.500 / 0.354 |"
    (tmp_path / "catalog.json").write_text(json.dumps({"songs": [{"source": "/x/b.wav"}, {"source": "/x/a.wav"}]}))
    assert bench.catalog_songs(tmp_path) == ["/x/b.wav", "/x/a.wav"]


def test_the_lead_split_reads_each_song_s_render_info(tmp_path: Path) -> None:
    (tmp_path / "s1.json").write_text(json.dumps({"lead": "vocal:ah"}))
    (tmp_path / "s2.json").write_text(json.dumps({"lead": 73}))
    report = {"queries": [{"song_id": "s1", "rank": 2}, {"song_id": "s1", "rank": None},
                          {"song_id": "s2", "rank": 11}]}
    split = bench.lead_split(report, tmp_path)
    assert split["sung lead"] == (2, 0.5, 0.25)
    assert split["instrument lead"][:2] == (1, 0.0) and split["instrument lead"][2] == pytest.approx(1 / 11)

"""Self-training rounds: M0 on hums + originals, mine covers, M1 on hums + mined covers; resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from humdex.cli import main
from humdex.synth.cli import _jobs
from humdex.synth.corpus import CorpusConfig, collect_metadata, write_group
from humdex.synth.fragments import FragmentConfig
from humdex.training.chad import read_metadata


@pytest.mark.slow
def test_selftrain_rounds_keep_their_data_and_resume(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUMDEX_INT8", "0")
    corpus = tmp_path / "corpus"
    jobs = _jobs("train", 5, None)
    for i in range(2):
        write_group(corpus, jobs(i), CorpusConfig(full_songs="all", covers_per_group=(1, 1),
                                                  queries_per_fragment=(1, 1),
                                                  fragments=FragmentConfig(max_fragments=2)))
    collect_metadata(corpus)
    songs = read_metadata(corpus / "songs.csv")
    lines = ["group_id,role,path,id"] + [f"{r.group_id},{r.audio_type},songs/{r.group_id}/{r.id}.wav,{r.id}"
                                         for r in songs]
    (corpus / "groups.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rounds"
    args = ["selftrain", str(corpus), "--groups", str(corpus / "groups.csv"), "--out", str(out),
            "--steps", "2", "--width", "4", "--k-groups", "2", "--per-group", "2", "--eval-every", "2",
            "--truth", str(corpus / "songs.csv"), "--accept", "0.3", "--review", "0.2"]
    assert main([*args, "--rounds", "1"]) == 0
    r0 = json.loads((out / "round0" / "metrics.json").read_text())
    assert r0["mined_fragments_used"] == 0 and sum(r0["mined"].values()) > 0
    assert 0 <= r0["mining_quality"]["recall"] <= 1
    r1 = json.loads((out / "round1" / "metrics.json").read_text())  # M1 trained on round 0's mined covers
    assert r1["mined_fragments_used"] > 0 and r1["train_fragments"] > r0["train_fragments"]
    assert (out / "round1" / "mined" / "metadata.csv").is_file() and (out / "rounds.png").stat().st_size > 1000
    # a kill during round 1's mining: its metrics and one mined group are missing -> only those redone
    stamp = (out / "round0" / "metrics.json").stat().st_mtime_ns
    (out / "round1" / "metrics.json").unlink()
    metas = sorted((out / "round1" / "mined" / "meta").glob("*.csv"))
    kept = metas[0].stat().st_mtime_ns
    metas[-1].unlink()
    assert main([*args, "--rounds", "1"]) == 0
    assert (out / "round0" / "metrics.json").stat().st_mtime_ns == stamp
    assert metas[0].stat().st_mtime_ns == kept and metas[-1].is_file()
    rounds = json.loads((out / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1]
    assert np.isfinite(rounds[1]["train_cpu_s"])


@pytest.mark.slow
def test_selftrain_on_tracked_contours_fine_tunes_a_shipped_model(tmp_path, capsys) -> None:
    """--feature contour --from short: M0 keeps the shipped model's architecture and starts from
    its weights; the rounds' mining feeds it tracked contours, as the default search does."""
    import torch

    from humdex.learned.shipped import default_model_path

    corpus = tmp_path / "corpus"
    jobs = _jobs("train", 6, None)
    write_group(corpus, jobs(0), CorpusConfig(full_songs="all", covers_per_group=(1, 1), queries_per_fragment=(1, 1),
                                              fragments=FragmentConfig(max_fragments=2)))
    collect_metadata(corpus)
    lines = ["group_id,role,path,id"] + [f"{r.group_id},{r.audio_type},songs/{r.group_id}/{r.id}.wav,{r.id}"
                                         for r in read_metadata(corpus / "songs.csv")]
    (corpus / "groups.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rounds"
    args = ["selftrain", str(corpus), "--groups", str(corpus / "groups.csv"), "--out", str(out), "--rounds", "0",
            "--steps", "1", "--k-groups", "2", "--per-group", "2", "--eval-every", "1", "--feature", "contour"]
    assert main([*args, "--from", "cqt"]) == 2
    assert "cannot be trained on crepe features" in capsys.readouterr().err
    assert main([*args, "--from", "short", "--lr", "1e-9"]) == 0
    shipped = torch.load(default_model_path("short"), map_location="cpu", weights_only=True)
    m0 = torch.load(out / "round0" / "model" / "ckpt.pt", map_location="cpu", weights_only=True)
    assert m0["config"] == shipped["config"]  # the shipped architecture, --width ignored
    for name, w in shipped["model"].items():  # its weights, moved by one step at lr 1e-9
        if w.is_floating_point() and "running" not in name:
            assert torch.allclose(m0["model"][name].float(), w.float(), atol=1e-3), name
    contours = [np.load(p) for p in (out / "cache_mine_features").iterdir()]
    assert len(contours) == 2 and all(c.ndim == 1 for c in contours)
    assert sum(json.loads((out / "round0" / "metrics.json").read_text())["mined"].values()) > 0

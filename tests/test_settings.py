"""humdex.settings: the one place that reads the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from humdex.errors import HumdexError
from humdex.settings import settings


def test_defaults_and_every_variable() -> None:
    base = settings({})
    assert base.models == ("short",) and base.int8 and base.query_scales is None
    assert base.audio_songs == "contour" and base.query_input == "contour"
    assert 1 <= base.threads <= 8
    got = settings({"HUMDEX_THREADS": "3", "HUMDEX_INT8": "0", "HUMDEX_MODELS": " short, long ,",
                    "HUMDEX_AUDIO_SONGS": "activation", "HUMDEX_QUERY_INPUT": "crepe",
                    "HUMDEX_QUERY_SCALES": "0.8,1.0,1.25", "XDG_CACHE_HOME": "/x"})
    assert (got.threads, got.int8, got.models) == (3, False, ("short", "long"))
    assert (got.audio_songs, got.query_input, got.query_scales) == ("activation", "crepe", (0.8, 1.0, 1.25))
    assert got.cache_dir == Path("/x/humdex")
    assert settings({"HUMDEX_THREADS": "0"}).threads == base.threads  # not a count: the default


@pytest.mark.parametrize("name,value", [("HUMDEX_QUERY_SCALES", "fast"), ("HUMDEX_QUERY_SCALES", "0,1"),
                                        ("HUMDEX_AUDIO_SONGS", "mix"), ("HUMDEX_QUERY_INPUT", "pyin")])
def test_a_value_humdex_cannot_use_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(HumdexError, match=name):
        settings({name: value})


def test_the_cli_answers_a_bad_variable_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HUMDEX_QUERY_SCALES": "fast"}
    done = subprocess.run([sys.executable, "-m", "humdex", "index", str(tmp_path), "--db", str(tmp_path / "db")],
                          env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 2 and "HUMDEX_QUERY_SCALES" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "db").exists()

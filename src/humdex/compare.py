"""Compare one query with one song: score, where they align, and a picture of the alignment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humdex.catalog.ingest import read_song_melody
from humdex.frontend.contour import Contour
from humdex.search import load_query


@dataclass(frozen=True, eq=False)
class Comparison:
    """How well query `a` matches song `b` (score in [0, 1]) and where in `b` it lies."""

    a: str
    b: str
    score: float
    start_s: float | None
    end_s: float | None
    key_st: float | None  # semitones added to the query to reach the song's key
    query: Contour
    reference: Contour

    def to_json(self) -> dict[str, Any]:
        rounded = {k: None if v is None else round(v, 3)
                   for k, v in (("score", self.score), ("start_s", self.start_s),
                                ("end_s", self.end_s), ("key_st", self.key_st))}
        return {"a": self.a, "b": self.b, **rounded}

    def summary(self) -> str:
        if self.start_s is None:
            return f"{self.a} vs {self.b}: no alignment found (score 0)"
        return (f"{self.a} vs {self.b}: score {self.score:.3f}; the query aligns with "
                f"{self.start_s:.1f}-{self.end_s:.1f} s of {self.b}, transposed by "
                f"{self.key_st:+.1f} semitones")


def compare(a: Path, b: Path, pitch_method: str | None = None) -> Comparison:
    """Score recording/pitch file `a` against song `b` (recording, pitch file, MIDI or score)."""
    from humdex.classical.matcher import ReferenceSet, match

    query = load_query(a, pitch_method)
    # a recording's mix melody, as before Spleeter became the catalog's default: one melody, so
    # that the alignment's times are the recording's own (and no separation for a quick compare)
    reference = read_song_melody(b, pitch_method, separate="none").trimmed()
    matches = match(query.contour, ReferenceSet.from_contours([reference]), top=1)
    if not matches:
        return Comparison(a.name, b.name, 0.0, None, None, None, query.contour, reference)
    m = matches[0]
    return Comparison(a.name, b.name, m.score, m.start_s, m.end_s, m.key_st, query.contour,
                      reference)


def plot_comparison(comparison: Comparison, out_png: Path) -> None:
    """Draw the song's melody with the query laid over the aligned span (linear time map)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = comparison
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), constrained_layout=True)
    ref_t = c.reference.times_s()
    top.plot(ref_t, c.reference.midi, color="0.3", lw=1.2, label=f"{c.b} (song)")
    q = c.query.trimmed()
    if c.start_s is not None and c.end_s is not None and c.key_st is not None:
        top.axvspan(c.start_s, c.end_s, color="tab:orange", alpha=0.15, label="aligned span")
        t = c.start_s + (q.times_s() / max(q.duration_s, 1e-9)) * (c.end_s - c.start_s)
        top.plot(t, q.midi + c.key_st, color="tab:orange", lw=1.5,
                 label=f"{c.a} (query, {c.key_st:+.1f} st)")
    top.set(xlabel="song time (s)", ylabel="pitch (MIDI)",
            title=f"{c.a} vs {c.b}: score {c.score:.3f}")
    top.legend(loc="upper right", fontsize=8)
    bottom.plot(q.times_s(), q.midi, color="tab:orange", lw=1.2)
    bottom.set(xlabel="query time (s)", ylabel="pitch (MIDI)", title="query pitch contour")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)

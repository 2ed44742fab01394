"""Tests for humdex.frontend.pitchfile: MIR-QBSH .pv and time,f0 CSV readers."""

from __future__ import annotations

import numpy as np
import pytest

from humdex.errors import AudioError
from humdex.frontend import pitchfile


def test_read_pv(tmp_path):
    path = tmp_path / "q.pv"
    path.write_text("0\n0\n60.5\n62\n0\n64.25\n")
    contour = pitchfile.read_pv(path)
    assert contour.hop_s == pytest.approx(0.032)
    np.testing.assert_array_equal(contour.voiced, [False, False, True, True, False, True])
    np.testing.assert_allclose(contour.midi[contour.voiced], [60.5, 62, 64.25])
    assert pitchfile.read_pitch_file(path).midi.tobytes() == contour.midi.tobytes()


def test_read_pv_other_hop(tmp_path):
    path = tmp_path / "q.pv"
    path.write_text("60\n61\n")
    assert pitchfile.read_pv(path, hop_s=0.01).hop_s == pytest.approx(0.01)


def test_pv_with_crlf_and_blank_trailing_lines(tmp_path):
    path = tmp_path / "q.PV"
    path.write_bytes(b"0.000000\r\n55.0\r\n55.5\r\n\r\n")
    assert pitchfile.read_pitch_file(path).voiced.sum() == 2


def f0_rows(times, f0):
    return [f"{t:.6f},{f:.3f}" for t, f in zip(times, f0)]


@pytest.mark.parametrize("header", [None, "time_s,f0_hz", '"time","frequency"'])
@pytest.mark.parametrize("sep", [",", "\t", " "])
def test_read_f0_csv_header_and_separators(tmp_path, header, sep):
    times = np.arange(50) * 0.01
    f0 = np.where(np.arange(50) < 20, 0.0, 440.0)
    lines = [r.replace(",", sep) for r in f0_rows(times, f0)]
    if header:
        lines.insert(0, header)
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    contour = pitchfile.read_f0_csv(path)
    assert contour.hop_s == pytest.approx(0.01)
    assert len(contour.midi) == 50
    assert not contour.voiced[:20].any() and contour.voiced[20:].all()
    np.testing.assert_allclose(contour.midi[20:], 69.0, atol=1e-4)


def test_f0_csv_negative_and_nonuniform_times_resampled(tmp_path):
    # a 5.8 ms export (like Vocadito / Sonic Annotator) with negative f0 for unvoiced frames
    times = np.arange(200) * 0.0058
    f0 = 220.0 * 2 ** (times / 1.16)  # one octave over the file
    f0[:30] = -f0[:30]
    path = tmp_path / "melody.csv"
    path.write_text("\n".join(f0_rows(times, f0)))
    contour = pitchfile.read_pitch_file(path)
    assert contour.hop_s == pytest.approx(0.01)
    assert len(contour.midi) == int(times[-1] / 0.01) + 1
    grid = np.arange(len(contour.midi)) * 0.01
    voiced = contour.voiced
    assert not voiced[grid < 0.16].any() and voiced[grid > 0.18].all()
    want = 57.0 + 12 * grid / 1.16
    assert np.nanmax(np.abs(contour.midi - want)) < 0.06  # nearest of 5.8 ms frames


def test_f0_csv_gap_in_times_is_unvoiced(tmp_path):
    times = np.concatenate([np.arange(20) * 0.01, 1.0 + np.arange(20) * 0.01])
    path = tmp_path / "gap.csv"
    path.write_text("\n".join(f0_rows(times, np.full(40, 300.0))))
    contour = pitchfile.read_f0_csv(path)
    grid = np.arange(len(contour.midi)) * 0.01
    assert not contour.voiced[(grid > 0.3) & (grid < 0.9)].any()
    assert contour.voiced[grid >= 1.0].all()


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("empty.csv", "", "empty"),
        ("blank.pv", "\n\n", "empty"),
        ("header_only.csv", "time,f0\n", "no numbers"),
        ("garbage.csv", "time,f0\n0.0,100\nhello,world\n", "non-numeric"),
        ("one_col.csv", "0.1\n0.2\n", "two columns"),
        ("two_col.pv", "0 60\n", "one number per line"),
        ("hz.pv", "440\n450\n", "above MIDI"),
        ("silent.pv", "0\n0\n0\n", "no voiced frames"),
        ("silent.csv", "0,0\n0.01,-1\n0.02,0\n", "no voiced frames"),
        ("backwards.csv", "0.2,100\n0.1,100\n", "increasing"),
    ],
)
def test_bad_pitch_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AudioError, match=message) as info:
        pitchfile.read_pitch_file(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_binary_and_missing_and_unknown_suffix(tmp_path):
    (tmp_path / "bin.pv").write_bytes(bytes(range(256)))
    with pytest.raises(AudioError, match="bin.pv"):
        pitchfile.read_pitch_file(tmp_path / "bin.pv")
    with pytest.raises(AudioError, match="not found"):
        pitchfile.read_pitch_file(tmp_path / "missing.pv")
    with pytest.raises(AudioError, match="not a pitch file"):
        pitchfile.read_pitch_file(tmp_path / "x.wav")
    assert pitchfile.is_pitch_file("A.PV") and pitchfile.is_pitch_file("b.csv")
    assert not pitchfile.is_pitch_file("c.wav")

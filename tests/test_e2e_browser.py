"""End to end in real headless Chromium: the page records a hum through the fake microphone,
uploads a file, and says "no match"; the server runs as a subprocess on 127.0.0.1.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver).
Set HUMDEX_SCREENSHOT=docs/screenshot.png to save a picture of the page with a real result.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from service_data import TUNES, build_catalog, hum, random_tune, write_midi

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver)"),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(proc: subprocess.Popen, probe_url: str, log: Path, timeout_s: float = 60) -> None:
    """Until `probe_url` answers 200; fails with the server's log if it exits or never answers."""
    deadline = time.time() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(probe_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, f"server did not start: {log.read_text()[-2000:]}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`humdex serve` on a free loopback port over a catalog of the test tunes."""
    db = build_catalog(tmp_path_factory.mktemp("e2e"))
    port = _free_port()
    log = open(db.parent / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "humdex", "serve", "--db", str(db),
                             "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, f"{url}/health", db.parent / "server.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _hum_file(path: Path, tune: list[tuple[int, float]], seed: int) -> Path:
    """A 48 kHz 16-bit WAV: 2.5 s of quiet (the page's countdown), the hum, 3 s of quiet (the fake
    microphone plays it from getUserMedia on, in a loop)."""
    audio = hum(tune, first=2, n_notes=12, sample_rate=48000, seed=seed)
    lead, tail = np.zeros(120000, np.float32), np.zeros(144000, np.float32)
    sf.write(path, np.concatenate([lead, audio, tail]), 48000, subtype="PCM_16")
    return path


def _browser(tmp_path: Path, fake_audio: Path | None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--disable-quic",
                 "--disable-component-update", "--disable-sync", "--window-size=1100,1150",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    if fake_audio is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


def _wait_done(driver: webdriver.Chrome, timeout_s: float = 90) -> str:
    """Wait until the page has an answer or an error; returns the body's data-state."""
    WebDriverWait(driver, timeout_s).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def _top_song(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#results tbody tr").get_attribute("data-song-id")


def test_microphone_hum_finds_the_song(server: str, tmp_path: Path) -> None:
    driver = _browser(tmp_path, _hum_file(tmp_path / "mic.wav", TUNES["frere_jacques"], seed=5))
    try:
        driver.get(f"{server}/?record_s=30&countdown_s=2")
        WebDriverWait(driver, 20).until(
            lambda d: "5 songs" in d.find_element(By.ID, "catalog-summary").text)
        driver.find_element(By.ID, "record").click()
        WebDriverWait(driver, 10).until(
            lambda d: d.find_element(By.ID, "countdown").text in ("2", "1"))
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "recording")
        started = time.monotonic()
        time.sleep(1.0)
        level = driver.find_element(By.ID, "level").value_of_css_property("width")
        assert float(level.removesuffix("px")) > 0, "the level meter shows the hum"
        time.sleep(max(0.0, 8.0 - (time.monotonic() - started)))
        driver.find_element(By.ID, "stop").click()  # well before the 30 s auto-stop
        assert _wait_done(driver) == "done", driver.find_element(By.ID, "status").text
        verdict = driver.find_element(By.ID, "verdict").text
        assert _top_song(driver) == "frere_jacques", verdict
        assert verdict.startswith("Best match: Frère Jacques")
        assert "recording.webm" in driver.find_element(By.ID, "timing").text  # MediaRecorder's webm
        where = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr td")[3].text
        assert "\u2013" in where and "\u2014" not in where
        drawn = driver.execute_script(
            "const c = document.getElementById('contour');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let song = 0, query = 0;"
            "for (let i = 0; i < d.length; i += 4) {"
            "  if (d[i] < 80 && d[i + 2] > 150) song++;"       # blue: the song's melody
            "  if (d[i] > 200 && d[i + 1] > 90 && d[i + 1] < 160 && d[i + 2] < 80) query++; }"
            "return [song, query];")
        assert drawn[0] > 200 and drawn[1] > 200, f"contour pixels (song, query) = {drawn}"
        shot = os.environ.get("HUMDEX_SCREENSHOT")
        if shot:
            Path(shot).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(shot)
    finally:
        driver.quit()


def test_file_upload_finds_the_song(server: str, tmp_path: Path) -> None:
    path = tmp_path / "my hum.flac"
    sf.write(path, hum(TUNES["happy_birthday"], seed=2, transpose=5), 16000)
    driver = _browser(tmp_path, None)
    try:
        driver.get(server)
        driver.find_element(By.ID, "file-input").send_keys(str(path))
        assert _wait_done(driver) == "done", driver.find_element(By.ID, "status").text
        assert _top_song(driver) == "happy_birthday"
        assert "my hum.flac" in driver.find_element(By.ID, "timing").text
    finally:
        driver.quit()


def test_no_match_bad_file_then_add_the_song_and_find_it(server: str, tmp_path: Path) -> None:
    path = tmp_path / "unknown.wav"
    sf.write(path, hum(random_tune(3), seed=3), 16000)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio" * 100)
    driver = _browser(tmp_path, None)
    try:
        driver.get(server)
        driver.find_element(By.ID, "file-input").send_keys(str(path))
        assert _wait_done(driver) == "done"
        verdict = driver.find_element(By.ID, "verdict")
        assert verdict.text.startswith("No match"), verdict.text
        assert "nomatch" in verdict.get_attribute("class")
        driver.find_element(By.ID, "file-input").send_keys(str(junk))
        WebDriverWait(driver, 30).until(
            lambda d: "Could not search" in d.find_element(By.ID, "status").text)
        assert "junk.mp3" in driver.find_element(By.ID, "status").text
        assert not driver.find_element(By.ID, "answer").is_displayed()
        # add the unknown tune to the catalog from the page: now the same hum is a match
        driver.find_element(By.CSS_SELECTOR, "#catalog summary").click()
        midi = write_midi(tmp_path / "Strange Tune.mid", random_tune(3))
        driver.find_element(By.ID, "song-file").send_keys(str(midi))
        driver.find_element(By.ID, "song-title").send_keys("A strange tune")
        driver.find_element(By.CSS_SELECTOR, "#add-song button").click()
        WebDriverWait(driver, 30).until(
            lambda d: "Added Strange Tune" in d.find_element(By.ID, "catalog-status").text)
        WebDriverWait(driver, 10).until(lambda d: "6 songs" in d.find_element(By.ID, "catalog-summary").text)
        driver.find_element(By.ID, "file-input").send_keys(str(path))
        assert _wait_done(driver) == "done"
        assert _top_song(driver) == "Strange Tune"
        assert driver.find_element(By.ID, "verdict").text.startswith("Best match: A strange tune")
        driver.find_element(By.CSS_SELECTOR, '#song-list li[data-song-id="Strange Tune"] button').click()
        driver.switch_to.alert.accept()
        WebDriverWait(driver, 10).until(lambda d: "5 songs" in d.find_element(By.ID, "catalog-summary").text)
    finally:
        driver.quit()
    assert httpx.get(f"{server}/health").json()["songs"] == 5

"""The review page in real headless Chromium: a pair shows with both contours drawn, answers are stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from humdex.training.chad import read_metadata
from review_data import mined_folder
from test_e2e_browser import _browser, _free_port, _wait_until_up
from test_e2e_browser import pytestmark as browser_marks

pytestmark = browser_marks
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def test_review_page_stores_answers(tmp_path: Path) -> None:
    root = mined_folder(tmp_path / "mined")
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "humdex", "review", str(root), "--serve",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    driver = None
    try:
        _wait_until_up(proc, f"{url}/review/api/queue", tmp_path / "server.log")
        driver = _browser(tmp_path, None)
        driver.get(f"{url}/review")
        state = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        WebDriverWait(driver, 60).until(lambda d: state(d) == "ready")
        assert driver.find_element(By.ID, "pair").get_attribute("data-id") == "c1"
        assert "2 pairs" in driver.find_element(By.ID, "remaining").text
        assert driver.find_element(By.ID, "candidate-audio").get_attribute("src").endswith("/g1/0/c1")
        blue, orange = driver.execute_script(
            "const c = document.getElementById('review-contour');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let b = 0, o = 0;"
            "for (let i = 0; i < d.length; i += 4) {"
            "  if (d[i] < 60 && d[i + 2] > 180) b++;"
            "  if (d[i] > 200 && d[i + 1] > 110 && d[i + 1] < 160 && d[i + 2] < 60) o++; }"
            "return [b, o];")
        assert blue > 200 and orange > 200, (blue, orange)
        driver.find_element(By.ID, "same").click()
        WebDriverWait(driver, 60).until(
            lambda d: state(d) == "ready" and d.find_element(By.ID, "pair").get_attribute("data-id") == "c2")
        driver.find_element(By.ID, "different").click()
        WebDriverWait(driver, 30).until(lambda d: state(d) == "empty")
        rows = {r.id: r for r in read_metadata(root / "metadata.csv")}
        assert (rows["c1"].extra["status"], rows["c1"].check_by_crowdsource) == ("same", True)
        assert (rows["c2"].extra["status"], rows["c2"].check_by_crowdsource) == ("different", True)
        assert rows["c3"].extra["status"] == "accepted"
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=20)
        log.close()

"""The web page in a real browser: headless Chromium (Debian's package) driven by Selenium uploads a generated
captcha, and the page shows the word the service reads and one attention overlay per character."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.loopback import free_port
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.deploy.onnx_export import export_onnx
from imcaption.deploy.onnx_reader import OnnxRecognizer
from imcaption.serve.app import create_app
from imcaption.serve.models import load_served_model
from tests.test_serve import LiveServer

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# CI installs the browser (.ci/run); there, a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("IMCAPTION_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        if REQUIRED:
            pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1200"):
        options.add_argument(flag)
    # No host but loopback resolves: a page that leans on a CDN breaks here as it would on an offline machine.
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


# Where each overlay canvas glows most: the column (as a fraction of the width) with the most red over green.
GLOW_COLUMN = """
return [...document.querySelectorAll('#attention canvas')].map((canvas) => {
  const { width, height } = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  const columns = new Array(width).fill(0);
  for (let i = 0; i < data.length; i += 4) columns[(i / 4) % width] += data[i] - data[i + 1];
  return (columns.indexOf(Math.max(...columns)) + 0.5) / width;
});
"""


def test_the_page_reads_an_uploaded_captcha_and_draws_attention(
    browser, trained_sat: Path, easy_dataset: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = export_onnx(trained_sat, tmp_path / "sat.onnx")
    dataset = CaptchaDataset.open(easy_dataset)
    image = dataset.image_path(list(dataset.split("val").indices)[0])
    reading = OnnxRecognizer.load(model).read(image, attention=True)
    expected = reading.word
    # The column of each character's strongest attention, as a fraction of the width.
    cols = reading.attention.shape[2]
    peaks = [(reading.attention[i].sum(axis=0).argmax() + 0.5) / cols for i in range(len(expected))]
    with LiveServer(create_app(load_served_model(model)), free_port()) as server:
        browser.get(server.url + "/")
        WebDriverWait(browser, 20).until(lambda d: "sat" in d.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "file").send_keys(str(image))
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.state") == "done")
        assert browser.find_element(By.ID, "word").text == expected
        chips = browser.find_elements(By.CSS_SELECTOR, "#characters .char")
        assert len(chips) == len(expected) and all("%" in chip.text for chip in chips)
        glows = browser.execute_script(GLOW_COLUMN)
        assert len(glows) == len(expected)
        for glow, peak in zip(glows, peaks, strict=True):  # each glow sits where the model looked, within a cell
            assert abs(glow - peak) <= 1 / cols, (glows, peaks)
        screenshot = tmp_path / "page.png"
        screenshot.write_bytes(base64.b64decode(browser.get_screenshot_as_base64()))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 5_000
        if os.environ.get("IMCAPTION_SCREENSHOTS"):
            shutil.copy(screenshot, Path(os.environ["IMCAPTION_SCREENSHOTS"]) / "web_page.png")


def test_the_api_docs_render_with_no_internet(browser, trained_sat: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with LiveServer(create_app(load_served_model(trained_sat, "pytorch")), free_port()) as server:
        browser.get(server.url + "/docs")
        operations = ".swagger-ui .opblock .opblock-summary-path"
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, operations))
        paths = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, operations)}
        assert {"/v1/read", "/v1/caption", "/healthz"} <= paths, paths
        browser.get(server.url + "/redoc")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".redoc-wrap"))
        WebDriverWait(browser, 30).until(lambda d: "/v1/read" in d.find_element(By.TAG_NAME, "body").text)

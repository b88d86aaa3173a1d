"""The web dashboard in a real browser (Debian's headless Chromium, driven by Selenium
through ChromeDriver) against a real ``jobyard up``: a bad key refused, sign-in, the jobs
list with a train job, its curves gaining points, pause and resume from the page, an
evaluate job's confusion matrix, and the page running under its Content-Security-Policy
with no violation. ``JY_SCREENSHOTS=<dir>`` keeps screenshots (docs/ has them)."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard import embedded
from jobyard.client import Client
from tests.e2e.conftest import Up, start_up

pytestmark = pytest.mark.e2e
UI_BUILT = (Path(__file__).parents[2] / "api" / "ui" / "index.html").is_file()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    started = start_up(tmp_path_factory.mktemp("ui") / "data", embedded.free_port())
    yield started
    started.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # a failure, not a skip: a run without the browser must not pass as one that tested it
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("needs Debian's chromium and chromium-driver (./dev.sh test installs them)")
    if not UI_BUILT:
        pytest.fail("the dashboard is not built (./dev.sh builds it: npm ci && npm run build)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _wait(driver, until, timeout=60, what=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: until(d), message=what
    )


def _text(driver, css):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def _click(driver, css, confirm=False):
    from selenium.webdriver.common.by import By

    _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).is_enabled(), what=css)
    driver.find_element(By.CSS_SELECTOR, css).click()
    if confirm:
        _wait(driver, lambda d: d.switch_to.alert, 10, "the confirmation").accept()


def _shot(driver, name):
    folder = os.environ.get("JY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def _points(driver, chart):
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.ID, chart)
    return int(boxes[0].get_attribute("data-points") or 0) if boxes else 0


def test_sign_in_watch_pause_resume_and_the_confusion_matrix(up, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    base = up.base_url.removesuffix("/api/v2")
    with urllib.request.urlopen(f"{base}/ui/") as page:
        policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy

    with Client(up.base_url, up.api_key or "", "demo") as jy:
        job = jy.jobs.submit(
            {
                "kind": "experiment",
                "action": "train",
                "network_arch": "classification_pyt",
                "name": "watched-in-the-browser",
                "specs": {"train": {"num_epochs": 12, "min_epoch_seconds": 1.0}},
            },
            over_defaults=True,
        )

        driver.get(f"{base}/ui/")
        _wait(driver, lambda d: d.find_elements(By.ID, "sign-in"), what="the sign-in form")
        driver.find_element(By.ID, "org").send_keys("demo")
        driver.find_element(By.ID, "key").send_keys("nvapi-not-a-key")
        _click(driver, "#sign-in")
        _wait(driver, lambda d: _text(d, "#login-error"), what="the refusal")
        assert driver.execute_script("return sessionStorage.getItem('jobyard.token')") is None

        driver.find_element(By.ID, "key").clear()
        driver.find_element(By.ID, "key").send_keys(up.api_key or "")
        _click(driver, "#sign-in")
        _wait(driver, lambda d: "watched-in-the-browser" in _text(d, "#jobs-table"), what="the job")
        assert "#/jobs" in driver.current_url and (up.api_key or "") not in driver.current_url
        _shot(driver, "dashboard-jobs.png")

        driver.find_element(By.LINK_TEXT, "watched-in-the-browser").click()
        _wait(driver, lambda d: _points(d, "chart-loss") >= 2, 60, "a curve")
        seen = _points(driver, "chart-loss")
        _wait(driver, lambda d: _points(d, "chart-loss") > seen, 30, "the curve growing")

        _click(driver, "#do-pause", confirm=True)
        try:
            _wait(driver, lambda d: "Paused" in _text(d, "#job-status"), 60, "Paused")
        except Exception:
            shown = f"{_text(driver, '#job-status')!r} / {_text(driver, '#notice')!r}"
            raise AssertionError(f"page: {shown}; job: {job.refresh().status}") from None
        assert job.refresh().status == "Paused"
        _click(driver, "#do-resume", confirm=True)
        _wait(driver, lambda d: "Done" in _text(d, "#job-status"), 90, "Done after resume")
        # the page's next refresh brings the last points and events (every 2 s)
        _wait(driver, lambda d: _points(d, "chart-accuracy") == 12, 10, "all 12 points")
        assert "epoch 12/12" in _text(driver, "#epoch-text")
        assert _text(driver, "#log")
        _wait(driver, lambda d: "epoch 12 · accuracy/val" in _text(d, "#events"), 10, "events")
        _shot(driver, "dashboard-job.png")

        evaluation = jy.jobs.submit(
            {"kind": "experiment", "action": "evaluate", "parent_job_id": job.id},
            over_defaults=True,
        )
        driver.get(f"{base}/ui/#/jobs/{evaluation.id}")
        _wait(driver, lambda d: d.find_elements(By.ID, "confusion-matrix"), 90, "the matrix")
        rows = driver.find_elements(By.CSS_SELECTOR, "#confusion-matrix tr")
        assert len(rows) == 11  # a header and one row per digit
        _shot(driver, "dashboard-evaluate.png")

    violations = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
    ]
    assert violations == [], violations

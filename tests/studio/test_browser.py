"""Seen in a real browser: a task pre-annotated by `preannotate`, opened in Label Studio's
labeling page in headless Chromium (Debian's `chromium` + `chromium-driver`, driven with
Selenium), shows every predicted span with its label. The screenshot is kept in
build/screenshots/labeling.png (docs/labeling.png in the README is a copy of one).

Skips, saying why, where Chromium or Selenium is not installed (`.ci/run` installs
Chromium with apt-get where apt-get is available; Selenium is in the dev extra)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import ANNOTATIONS, ROOT
from test_studio import server, studio  # noqa: F401 - the same fixtures (a Label Studio for this module)

pytestmark = [pytest.mark.server, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "build" / "screenshots" / "labeling.png"
TITLE = "Seen in a browser"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
PAGE_TIMEOUT = 120.0


@pytest.fixture
def chromium(tmp_path):
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.skip(f"no Chromium here ({', '.join(missing)} missing): install it with `apt-get install -y chromium "
                    "chromium-driver` (.ci/run does, where apt-get is available)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


def wait_until(condition, what: str, timeout: float = PAGE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_predicted_spans_show_with_their_labels(server, studio, tiny_model_dir, chromium, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    from training.inference import load_model

    # one task, pre-annotated by the model
    task = json.loads((ANNOTATIONS / "tasks.json").read_text(encoding="utf-8"))[0]
    task["data"]["text"] = task["data"]["text"][:task["data"]["text"].rindex("\n", 0, 1200)]  # whole paragraphs
    tasks_file = tmp_path / "one_task.json"
    tasks_file.write_text(json.dumps([task], ensure_ascii=False), encoding="utf-8")
    studio.push(TITLE, ANNOTATIONS / "labeling_config.xml", [tasks_file])
    report = studio.preannotate(TITLE, load_model(tiny_model_dir))
    [(task_id, _, count)] = report.predicted
    assert count > 0, "the model predicted no entity: nothing to see"
    [prediction] = studio.client.predictions.list(project=report.project_id)
    expected = sorted((v["start"], v["end"], v["labels"][0], v["text"]) for v in (r["value"] for r in prediction.result))

    # log in as the annotator does, then open the task's labeling page
    chromium.get(f"{server.url}/user/login/")
    chromium.find_element(By.NAME, "email").send_keys(server.env["LABEL_STUDIO_USERNAME"])
    password = chromium.find_element(By.NAME, "password")
    password.send_keys(server.env["LABEL_STUDIO_PASSWORD"])
    password.submit()
    wait_until(lambda: "/user/login" not in chromium.current_url, "the login to go through")
    chromium.get(f"{server.url}/projects/{report.project_id}/data?task={task_id}")
    regions = wait_until(lambda: (found := chromium.find_elements(By.CSS_SELECTOR, ".htx-highlight"))
                         and len(found) >= len(expected) and found, f"{len(expected)} highlighted regions")
    shown = sorted((int(r.get_attribute("data-start")), int(r.get_attribute("data-end")),
                    r.get_attribute("data-label").split(":", 1)[1], r.get_attribute("textContent")) for r in regions)
    assert shown == expected
    # the region list names each label, and the prediction's tab its model version
    page = chromium.find_element(By.TAG_NAME, "body").text
    assert report.model_version in page
    for label in {label for _, _, label, _ in expected}:
        assert label in page
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert chromium.save_screenshot(str(tmp_path / "labeling.png"))
    shutil.copyfile(tmp_path / "labeling.png", SCREENSHOT)
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

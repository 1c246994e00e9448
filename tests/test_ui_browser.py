"""The status page in a real browser: Debian's Chromium, headless, driven by Selenium through
chromium-driver, against a real ``hodei serve`` (a subprocess, SQLite, the seed's providers).

Without /usr/bin/chromium and /usr/bin/chromedriver (``apt-get install chromium chromium-driver``) these
tests skip, saying so; under HODEI_REQUIRE_BACKENDS=1 (CI) they fail instead.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hodei.testing import backend_unavailable
from hodei.testing.serve import Served, serve

from tests.test_ui import TOKEN, hodei, seed, write_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The network is closed: without these Chromium keeps trying to reach Google's services, and logs it.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
REFRESH = 1.0  # [ui] refresh_seconds of the daemons below


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        backend_unavailable(f"no {' and no '.join(missing)}: the browser tests need Debian's chromium and "
                            "chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hodei-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """What the page wrote to the console at level SEVERE since the last call (a failed load, a script error)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(condition: Any, seconds: float, what: str) -> Any:
    """``condition()`` once it is true; asked again while the page is between two documents (an element
    not there yet, or gone with the page it belonged to)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while True:
        try:
            found = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    workdir = tmp_path_factory.mktemp("ui-browser")
    write_config(workdir)
    seed(workdir)
    with serve(workdir / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as served:
        yield served, workdir


def test_the_fleet_shows_the_seed_and_a_health_change_without_a_reload(browser: Any,
                                                                        daemon: tuple[Served, Path]) -> None:
    from selenium.webdriver.common.by import By

    served, workdir = daemon
    assert served.ui_url is not None
    browser.get(served.ui_url)
    console_errors(browser)  # from here on
    names = {row.get_attribute("data-provider") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-provider]")}
    assert {"Production Kubernetes", "Local Docker", "Lambda us-east-1", "edge", "private-registry"} <= names
    edge = 'tr[data-provider="edge"] td:nth-of-type(3)'
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, edge).text.startswith("Healthy"), 10,
             "edge checked Healthy")
    browser.execute_script("window.hodeiTestMark = 'same page';")  # gone if the page reloads
    changed = hodei(workdir, "providers", "update", "edge", "--merge-config",
                    '{"health": "Degraded", "health_reason": "disk 91% full"}')
    assert changed.returncode == 0, changed.stderr
    changed_at = time.monotonic()
    # The next check (every 0.3 s) records it; the page shows it at its next refresh, in place.
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, edge).text.startswith("Degraded"), REFRESH + 5,
             "the health change on the page")
    assert time.monotonic() - changed_at < REFRESH + 5
    assert "disk 91% full" in browser.find_element(By.CSS_SELECTOR, edge).text
    assert browser.execute_script("return window.hodeiTestMark;") == "same page"
    assert console_errors(browser) == []


def test_the_filters_and_every_page_load_without_console_errors(browser: Any, daemon: tuple[Served, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    served, _ = daemon
    assert served.ui_url is not None
    browser.get(served.ui_url)
    Select(browser.find_element(By.ID, "f-type")).select_by_visible_text("static")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for(lambda: "type=static" in browser.current_url, 10, "the filtered page")
    names = {row.get_attribute("data-provider") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-provider]")}
    assert names == {"edge"}
    for path, heading in (("decisions", "Recent decisions"), ("replicas", "Replicas"),
                          ("providers/private-registry", "private-registry")):
        browser.get(served.ui_url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == heading
    assert "***" in browser.find_element(By.ID, "config").text
    time.sleep(REFRESH * 1.5)  # a refresh in place ran too
    assert console_errors(browser) == []


def test_the_explain_form_answers_with_the_chains_report(browser: Any, daemon: tuple[Served, Path]) -> None:
    from selenium.webdriver.common.by import By

    served, _ = daemon
    assert served.ui_url is not None
    browser.get(served.ui_url + "providers/edge")
    field = browser.find_element(By.ID, "requirements")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=requirements]").text  # labelled
    field.clear()
    field.send_keys('{"required_labels": {"tier": "edge"}}')
    browser.find_element(By.CSS_SELECTOR, "form.explain button[type=submit]").click()
    verdict = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#answer .verdict"), 10, "the answer")
    assert verdict[0].text == "edge is selected (tier any)"
    answer = browser.find_element(By.ID, "answer").text
    assert "labels passes" in answer and "selected edge" in answer
    # The form keeps what was asked, so it can be changed and asked again.
    assert '"tier": "edge"' in browser.find_element(By.ID, "requirements").get_attribute("value")
    field = browser.find_element(By.ID, "requirements")
    field.clear()
    field.send_keys('{"required_labels": {"tier": "gold"}}')
    browser.find_element(By.CSS_SELECTOR, "form.explain button[type=submit]").click()
    wait_for(lambda: "does not fit" in browser.find_element(By.CSS_SELECTOR, "#answer .verdict").text, 10,
             "the second answer")
    assert console_errors(browser) == []


def test_beyond_loopback_the_page_refuses_without_the_token_and_signs_in_with_it(
        browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    write_config(tmp_path, ui_listen="0.0.0.0:0")
    refused = hodei(tmp_path, "serve")  # no [api] token_file: it does not start at all
    assert refused.returncode != 0 and "token_file is required" in refused.stderr

    write_config(tmp_path, ui_listen="0.0.0.0:0", token=True)
    seed(tmp_path)
    with serve(tmp_path / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as served:
        assert served.ui_url is not None
        url = served.ui_url.replace("0.0.0.0", "127.0.0.1")  # every address: reached on loopback here
        browser.delete_all_cookies()
        browser.get(url + "replicas")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
        assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-provider]")
        assert "ready:" not in browser.page_source  # not even the daemon's state
        console_errors(browser)  # the 401 itself is logged: what follows must be clean
        browser.find_element(By.ID, "token").send_keys("not the token")
        browser.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
        wait_for(lambda: browser.find_elements(By.ID, "signin-problem"), 10, "the refusal")
        console_errors(browser)
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
        wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == "Replicas", 10, "the page asked for")
        cookie = browser.get_cookie("hodei_ui_session")
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in cookie["value"] and TOKEN not in browser.page_source
        browser.get(url)
        names = {row.get_attribute("data-provider")
                 for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-provider]")}
        assert "edge" in names
        time.sleep(REFRESH * 1.5)  # refreshed in place with the cookie
        assert console_errors(browser) == []
        browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
        wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == "Sign in", 10, "signed out")
        browser.get(url)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"

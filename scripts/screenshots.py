"""The README's screenshots of the status page: docs/ui-fleet.png and docs/ui-provider.png.

Rerun: .venv/bin/python scripts/screenshots.py (needs Debian's chromium and chromium-driver)

A real ``hodei serve`` on a scratch SQLite database with the seed's providers (config/providers.example.toml)
and a few ``static`` ones in several regions, some busy, one Degraded, one Unhealthy, one cooling down after
failed provisions; a few selections and provisions, so the decisions have something to show. Headless Chromium then takes the fleet page and
a provider's page with its explain form answered, each as tall as its content.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")
STATIC = [
    ("edge-eu-1", "eu-west-1", {"tier": "edge"}, 8, {}),
    ("edge-eu-2", "eu-west-1", {"tier": "edge"}, 8, {"health": "Degraded", "health_reason": "disk 91% full"}),
    ("edge-us-1", "us-east-1", {"tier": "edge"}, 8, {}),
    ("batch-us-1", "us-east-1", {"tier": "batch"}, 40, {}),
    ("batch-us-2", "us-west-2", {"tier": "batch"}, 40, {}),
    ("gpu-eu-1", "eu-central-1", {"tier": "gpu", "gpu": "a100"}, 4, {}),
    ("gpu-us-1", "us-east-1", {"tier": "gpu", "gpu": "h100"}, 4,
     {"health": "Unhealthy", "health_reason": "node pool scaled to zero"}),
    ("spot-eu-1", "eu-west-1", {"tier": "spot"}, 16, {"fail_provision": "spot capacity not available"}),
]


def main() -> None:
    sys.path.insert(0, str(ROOT / "core"))
    from hodei.testing.serve import clean_environment, hodei_command, serve
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="hodei-screens-") as folder:
        work = Path(folder)
        (work / "hodei.toml").write_text(
            '[database]\nurl = "sqlite:///hodei.db"\n[plugins]\nenable = ["static"]\n'
            '[health]\ninterval_seconds = 1\n[daemon]\npoll_seconds = 0.2\n[metrics]\nlisten = ""\n'
            '[api]\nlisten = "127.0.0.1:0"\n[ui]\nlisten = "127.0.0.1:0"\nrefresh_seconds = 5\n'
            '[cooldown]\nafter_failures = 2\ninitial_seconds = 300\n', encoding="utf-8")
        env = clean_environment(HODEI_CONFIG=str(work / "hodei.toml"), HODEI_PLUGINS_ENABLE="static")

        def hodei(*args: str, stdin: str | None = None) -> str:
            return subprocess.run([*hodei_command(), *args], cwd=work, env=env, input=stdin, capture_output=True,
                                  text=True, check=True, timeout=120).stdout

        hodei("db", "upgrade")
        hodei("providers", "apply", "-f", str(ROOT / "config" / "providers.example.toml"))
        documents = [{"name": name, "provider_type": "static", "preferred_region": region, "required_labels": labels,
                      "max_workers": slots, "priority": 10, "config": {"type": "static", **config}}
                     for name, region, labels, slots, config in STATIC]
        hodei("providers", "apply", "-f", "-", "--format", "json", stdin=json.dumps(documents))
        hodei("providers", "maintenance", "batch-us-2")
        with serve(work / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as daemon:
            assert daemon.address is not None and daemon.ui_url is not None
            time.sleep(3)  # a few health rounds
            for job, count in (('{"required_labels": {"tier": "batch"}}', 23), ('{"required_labels": {"tier": "edge"}}', 6),
                               ('{"required_labels": {"tier": "gpu"}}', 3)):
                for _ in range(count):
                    hodei("--server", daemon.address, "workers", "provision", "-r", "-", "--format", "json", stdin=job)
            for _ in range(2):  # two failed provisions: spot-eu-1 cools down
                subprocess.run([*hodei_command(), "--server", daemon.address, "workers", "provision", "-r", "-",
                                "--format", "json"], cwd=work, env=env, input='{"required_labels": {"tier": "spot"}}',
                               capture_output=True, text=True, timeout=60)
            subprocess.run([*hodei_command(), "--server", daemon.address, "select", "-r", "-", "--format", "json"],
                           cwd=work, env=env, input='{"required_labels": {"tier": "gpu", "gpu": "h100"}}',
                           capture_output=True, text=True, timeout=60)
            time.sleep(2)
            profile = tempfile.mkdtemp(prefix="hodei-chromium-")
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in (*FLAGS, f"--user-data-dir={profile}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
            try:
                explain = urllib.parse.urlencode({"requirements": '{"required_labels": {"tier": "edge"}, '
                                                                  '"preferred_region": "eu-west-1"}'})
                for path, name in (("", "ui-fleet.png"), (f"providers/edge-eu-1?{explain}", "ui-provider.png")):
                    driver.set_window_size(1400, 900)
                    driver.get(daemon.ui_url + path)
                    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 4000)
                    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                        "format": "png", "captureBeyondViewport": True,
                        "clip": {"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1}})
                    (ROOT / "docs" / name).write_bytes(base64.b64decode(shot["data"]))
                    print(f"wrote docs/{name}")
            finally:
                driver.quit()
                shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()

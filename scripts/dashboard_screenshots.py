"""Take the screenshots of docs/dashboard.md from a real, busy pipeline.

Run against a running stack (`jobpipe dev up`, then the JOBPIPE_REDIS_URL and
JOBPIPE_KAFKA_BOOTSTRAP it prints):

    .venv/bin/python scripts/dashboard_screenshots.py [--out docs/dashboard] [--seconds 40]

It declares two queues in a fresh namespace, starts a real `jobpipe bridge`,
`jobpipe worker` and `jobpipe dashboard` (stopped by PID at the end), pushes
jobs through Redis at a steady rate (one in twenty is rejected by its handler,
so the DLQ fills), pauses one tenant of the fair queue, and photographs the
page in Debian's headless chromium: the overview, then a dead letter opened.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from ingest.producer import Producer
from jobpipe.admin import apply_topics
from jobpipe.devstack.ports import free_port
from jobpipe.settings import load_settings

TOKEN = "screenshot-token"
TASKS = '''
import asyncio
from consumers import App, JobContext, Reject

app = App("screenshots")


@app.task
async def send(ctx: JobContext, args: dict) -> None:
    await asyncio.sleep(0.01)
    if args["n"] % 20 == 0:
        raise Reject("mailbox does not exist")
'''


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"dashboard_screenshots: {what} did not happen within {timeout_s}s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"))
    parser.add_argument("--seconds", type=float, default=40.0,
                        help="how long to feed jobs before the first screenshot")
    args = parser.parse_args()
    redis_url = os.environ.get("JOBPIPE_REDIS_URL", "redis://127.0.0.1:16379/0")
    bootstrap = os.environ.get("JOBPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    work = Path(tempfile.mkdtemp(prefix="jobpipe-shots-"))
    (work / "shots_tasks.py").write_text(TASKS)
    config = work / "jobpipe.toml"
    config.write_text(f'''namespace = "demo{uuid.uuid4().hex[:6]}"
[redis]
url = "{redis_url}"
[kafka]
bootstrap = "{bootstrap}"
[ingest]
tokens = ["{TOKEN}"]
[queues.email]
partitions = 2
retry_tiers_s = [1]
[queues.billing]
partitions = 2
fair = true
''')
    settings = load_settings(config, environ={})
    apply_topics(settings)
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(work), "JOBPIPE_CONFIG": str(config)}
    env.pop("JOBPIPE_REDIS_URL", None)
    env.pop("JOBPIPE_KAFKA_BOOTSTRAP", None)
    jobpipe = str(Path(sys.executable).with_name("jobpipe"))
    procs = [subprocess.Popen([jobpipe, *cmd], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
             for cmd in (["bridge"],
                         ["worker", "shots_tasks:app", "--metrics-port", str(metrics_port)],
                         ["dashboard", "--port", str(port), "--metrics",
                          f"http://127.0.0.1:{metrics_port}/metrics"])]
    chrome = None
    try:
        url = f"http://127.0.0.1:{port}/ui/"
        wait_for(lambda: answers(url), 60, "the dashboard answering")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900"):
            options.add_argument(arg)
        chrome = webdriver.Chrome(options=options,
                                  service=Service(shutil.which("chromedriver") or "chromedriver"))
        chrome.get(f"{url}?interval_ms=1000#token={TOKEN}")
        with Producer(settings) as producer:
            tenant_paused = False
            started, n = time.monotonic(), 0
            while time.monotonic() - started < args.seconds:
                batch = [{"n": n + i} for i in range(40)]
                producer.enqueue_many("email", "send", batch)
                producer.enqueue_many("billing", "send", batch[:10], tenant="acme")
                producer.enqueue_many("billing", "send", batch[10:20], tenant="globex")
                n += 40
                if not tenant_paused and time.monotonic() - started > args.seconds / 2:
                    subprocess.run([jobpipe, "pause", "billing", "--tenant", "globex"], env=env,
                                   check=True, stdout=subprocess.DEVNULL)
                    tenant_paused = True
                time.sleep(0.2)
            # Taken while jobs still flow, so the rates and graphs are live.
            args.out.mkdir(parents=True, exist_ok=True)
            chrome.save_screenshot(str(args.out / "overview.png"))
        chrome.find_element(By.CSS_SELECTOR, '#dlq-queue option[value="email"]').click()
        chrome.find_element(By.ID, "dlq-refresh").click()
        wait_for(lambda: chrome.find_elements(By.CSS_SELECTOR, "#dlq tbody button.show"), 60,
                 "the DLQ listing")
        chrome.find_element(By.CSS_SELECTOR, "#dlq tbody button.show").click()
        wait_for(lambda: chrome.find_element(By.ID, "dlq-detail").is_displayed(), 60,
                 "the DLQ record")
        chrome.execute_script("document.querySelector('#dlq-detail').scrollIntoView()")
        chrome.save_screenshot(str(args.out / "dlq.png"))
        print(f"wrote {args.out / 'overview.png'} and {args.out / 'dlq.png'}")
    finally:
        if chrome is not None:
            chrome.quit()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

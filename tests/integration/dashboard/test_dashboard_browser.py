"""The dashboard in a real headless chromium, acting on real Redis and Kafka."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition
from selenium.webdriver.common.by import By

from consumers.dlq.record import dlq_headers
from jobpipe import jobstatus, names
from jobpipe.envelope import encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import make_job, produce, wait_for
from tests.integration.dashboard.conftest import QUEUE, TOKEN

pytestmark = pytest.mark.integration


def _status(url: str, token: str | None, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _dlq_size(settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4", "group.id": "dlq-size-probe"})
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(names.dlq_topic(settings.namespace, QUEUE), 0), timeout=30)
        return int(high - low)
    finally:
        consumer.close()


def test_api_wants_the_intake_token_and_says_what_is_wrong_in_one_line(dashboard_url):
    api = dashboard_url + "api/"
    assert _status(api + "stats", None)[0] == 401
    assert _status(api + "stats", "wrong")[0] == 401
    assert _status(dashboard_url, None)[0] == 200  # the page itself holds no data
    code, body = _status(api + "queues/nope/pause", TOKEN, b"{}")
    assert code == 404
    assert "unknown queue 'nope'" in body
    assert "\n" not in body
    code, body = _status(api + f"queues/{QUEUE}/pause", TOKEN, b'{"tenant": "bad tenant!"}')
    assert code == 400
    assert "tenant 'bad tenant!'" in body
    code, body = _status(api + f"queues/{QUEUE}/dlq/replay", TOKEN, b"[1")
    assert code == 400
    assert "not valid JSON" in body


def test_the_page_shows_live_graphs_and_its_buttons_act_on_redis_and_kafka(
        dash_settings, redis_client, executed, dashboard_url, browser):
    ns = dash_settings.namespace
    browser.get(f"{dashboard_url}?interval_ms=300#token={TOKEN}")

    def cell(selector: str) -> str:
        # Read in one script call: the page redraws parts of itself on every refresh.
        text: str = browser.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
            selector)
        return text.strip()

    def points() -> int:
        return int(browser.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.dataset.points : 0",
            f'tr[data-queue="{QUEUE}"] svg.spark'))

    # The page loads and its graphs grow with every refresh.
    assert wait_for(lambda: points() >= 3), "the graphs did not update"
    assert cell("#namespace") == ns
    assert wait_for(lambda: cell("#workers td.num")), "the worker is not listed"
    # Its last heartbeat (written to Redis by the worker) shows as an age.
    assert wait_for(lambda: cell("#workers td.beat").endswith("s ago")), cell("#workers")
    assert cell("#workers td.alive") == "in group"

    # Pause and resume a queue: in Redis, and back on the page.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-queue="{QUEUE}"] button.pause').click()
    assert wait_for(lambda: redis_client.sismember(names.paused_queues_key(ns), QUEUE))
    assert wait_for(lambda: cell(f'tr[data-queue="{QUEUE}"] td.state') == "queue")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-queue="{QUEUE}"] button.resume').click()
    assert wait_for(lambda: not redis_client.sismember(names.paused_queues_key(ns), QUEUE))
    assert wait_for(lambda: cell(f'tr[data-queue="{QUEUE}"] td.state') == "")

    # Pause and resume one tenant of the fair queue.
    browser.find_element(By.ID, "tenant-name").send_keys("acme")
    browser.find_element(By.CSS_SELECTOR, '#tenant-queue option[value="fair"]').click()
    browser.find_element(By.ID, "tenant-pause").click()
    tenants = names.paused_tenants_key(ns, "fair")
    assert wait_for(lambda: redis_client.sismember(tenants, "acme"))
    assert wait_for(lambda: cell('tr[data-queue="fair"] td.state') == "tenant acme")
    browser.find_element(By.ID, "tenant-resume").click()
    assert wait_for(lambda: not redis_client.sismember(tenants, "acme"))

    # A dead letter: browse it, show it, replay it (a real worker runs it), purge.
    job = make_job(queue=QUEUE, task="work", attempt=3, max_attempts=3)
    produce(dash_settings, names.dlq_topic(ns, QUEUE), [(None, encode(job))],
            headers=dlq_headers("exhausted", "ValueError: boom",
                                names.main_topic(ns, QUEUE), 0, 7))
    assert wait_for(lambda: cell(f'tr[data-queue="{QUEUE}"] td.dlq') == "1")
    browser.find_element(By.CSS_SELECTOR, f'#dlq-queue option[value="{QUEUE}"]').click()
    browser.find_element(By.ID, "dlq-refresh").click()
    assert wait_for(lambda: job.id in cell("#dlq tbody"))
    browser.find_element(By.CSS_SELECTOR, "#dlq tbody button.show").click()
    assert wait_for(lambda: job.id in cell("#dlq-detail") and "exhausted" in cell("#dlq-detail"))
    assert cell(f'tr[data-queue="{QUEUE}"] td.e2e') == "idle"  # no job of it ran yet
    browser.find_element(By.CSS_SELECTOR, "#dlq tbody button.replay").click()
    assert wait_for(lambda: job.id in executed), "the replayed job did not run"
    # The worker's end-to-end histogram, scraped from /metrics, now has that job.
    assert wait_for(lambda: " / " in cell(f'tr[data-queue="{QUEUE}"] td.e2e'))
    assert wait_for(lambda: "replayed" in cell("#dlq tbody"))

    browser.find_element(By.ID, "dlq-purge").click()
    browser.switch_to.alert.accept()
    assert wait_for(lambda: _dlq_size(dash_settings) == 0)
    assert wait_for(lambda: "no dead letters" in cell("#dlq tbody"))
    assert "error" not in (browser.find_element(By.ID, "status").get_attribute("class") or "")

    # Look the replayed job up by id: the record the worker wrote (the queue tracks status).
    assert wait_for(lambda: (s := jobstatus.lookup(redis_client, dash_settings, job.id))
                    is not None and s.state == jobstatus.SUCCEEDED)
    browser.find_element(By.ID, "job-id").send_keys(job.id)
    browser.find_element(By.CSS_SELECTOR, "#job-form button").click()
    assert wait_for(lambda: '"state": "succeeded"' in cell("#job-detail"))
    assert f'"queue": "{QUEUE}"' in cell("#job-detail")
    browser.find_element(By.ID, "job-id").clear()
    browser.find_element(By.ID, "job-id").send_keys("no-such-job")
    browser.find_element(By.CSS_SELECTOR, "#job-form button").click()
    assert wait_for(lambda: "no state record of job 'no-such-job'" in cell("#status"))

"""Trace context travels in job.meta from enqueue to the handler's span."""

from __future__ import annotations

from jobpipe import tracing
from jobpipe.envelope import Job, decode, encode, new_job_id, now_ns
from tests.services import import_unless_ci


def test_without_an_active_span_nothing_is_written():
    assert tracing.inject({}) == {}
    assert tracing.extract({}) is None
    with tracing.job_span({}, task="t", queue="q") as span:
        assert span is None or not span.is_recording()  # no SDK provider configured


def test_handler_span_is_a_child_of_the_enqueue_span():
    import_unless_ci("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("http request") as request_span:
        meta = tracing.inject({})
    assert meta["traceparent"].startswith("00-")
    job = Job(id=new_job_id(), queue="q", task="t", args={}, enqueued_at=now_ns(), meta=meta)
    received = decode(encode(job))  # through the envelope, as the worker sees it
    with tracing.job_span(received.meta, task="t", queue="q", job_id=received.id,
                          tracer_provider=provider):
        pass
    handler = next(s for s in exporter.get_finished_spans() if s.name == "q t")
    assert handler.parent is not None
    assert handler.parent.span_id == request_span.get_span_context().span_id
    assert handler.context.trace_id == request_span.get_span_context().trace_id
    assert handler.attributes["messaging.message.id"] == received.id


def test_handler_span_is_free_for_jobs_without_a_trace():
    job = Job(id=new_job_id(), queue="q", task="t", args={}, enqueued_at=now_ns())
    assert tracing.handler_span(job) is tracing.handler_span(job)  # the shared no-op

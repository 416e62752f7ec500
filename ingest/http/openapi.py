"""The OpenAPI 3.1 document of the HTTP intake, as data (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"},
    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
}}

_JOB = {
    "type": "object",
    "required": ["task"],
    "additionalProperties": False,
    "properties": {
        "task": {"type": "string", "minLength": 1, "maxLength": 200,
                 "description": "Handler name."},
        "args": {"description": "Any JSON value, passed to the handler as is."},
        "key": {"type": ["string", "null"],
                "description": "Ordering key: jobs with the same key keep their order."},
        "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,200}$"},
        "priority": {"type": "integer", "minimum": 0, "description": "0 = highest."},
        "delay_s": {"type": "number", "minimum": 0},
        "run_at": {"type": "number", "description": "Epoch seconds."},
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 512},
        "unique_for_s": {"type": "number", "exclusiveMinimum": 0,
                         "description": "Drop a repeat of idempotency_key in this window; "
                                        "the response then carries the first job's id."},
        "max_attempts": {"type": "integer", "minimum": 1},
    },
}


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "Seconds to wait."}}
    return response


def _status_responses(ok: str) -> dict[str, Any]:
    return {"200": {"description": ok, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/JobStatus"}}}},
            "401": _error("Missing or wrong bearer token."),
            "404": _error("No queue with track_status knows this id."),
            "503": _error("Redis unavailable.", retry_after=True)}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "jobpipe intake", "version": "1",
             "description": "Hand jobs to jobpipe from any language. A 202 means the jobs "
                            "are in Redis (or the producer's spool) and will run."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Job": _JOB,
            "Batch": {"type": "object", "required": ["jobs"], "additionalProperties": False,
                      "properties": {"jobs": {"type": "array", "minItems": 1,
                                              "maxItems": 10000,
                                              "items": {"$ref": "#/components/schemas/Job"}}}},
            "Accepted": {"type": "object", "required": ["ids"], "properties": {
                "ids": {"type": "array", "items": {"type": "string"}}}},
            "FieldError": {"type": "object", "required": ["field", "message"], "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}}},
            "Error": _ERROR,
            "JobStatus": {"type": "object", "required": ["id", "queue", "state", "attempt", "at"],
                          "properties": {
                "id": {"type": "string"}, "queue": {"type": "string"},
                "state": {"enum": ["queued", "delayed", "in_kafka", "running", "retrying",
                                   "succeeded", "failed", "cancelled"]},
                "attempt": {"type": "integer"},
                "at": {"type": "integer", "description": "Entered this state, ns since epoch."},
                "run_at": {"type": "integer"}, "worker": {"type": "string"},
                "started_at": {"type": "integer"}, "next_at": {"type": "integer"},
                "reason": {"type": "string"}, "error": {"type": "string"},
                "result": {"description": "The kept return value (keep_results)."},
                "result_dropped": {"type": "string"},
                "cancel": {"type": "integer", "description": "When cancelling was asked."}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/queues/{queue}/jobs": {"post": {
            "summary": "Enqueue one job or a batch (all or nothing).",
            "parameters": [{"name": "queue", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [{"$ref": "#/components/schemas/Job"},
                          {"$ref": "#/components/schemas/Batch"}]}}}},
            "responses": {
                "202": {"description": "Accepted; ids in request order.", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                "400": _error("Invalid body; 'errors' names each bad field."),
                "401": _error("Missing or wrong bearer token."),
                "404": _error("Unknown queue."),
                "413": _error("Body over the size cap."),
                "429": _error("Queue past its high-water mark.", retry_after=True),
                "503": _error("Redis unavailable.", retry_after=True),
            },
        }},
        "/v1/jobs/{job_id}": {
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "get": {"summary": "A job's state (queues with track_status).",
                    "responses": _status_responses("The job's state.")},
            "delete": {"summary": "Ask to cancel a job: not started yet, it is cancelled "
                                  "at once; running, its worker stops it.",
                       "responses": _status_responses("The job's state after the request.")},
        },
        "/healthz": {"get": {"summary": "Liveness and Redis reachability.", "security": [],
                             "responses": {"200": {"description": "Serving."},
                                           "503": {"description": "Redis unreachable."}}}},
        "/openapi.json": {"get": {"summary": "This document.", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1."}}}},
    },
}

"""Request bodies are capped before Django reads them: the ASGI guard (videobank/body_limit.py)
in front of the http app of videobank/asgi.py, driven through the real ASGI application; and the
upload view's own check of the declared length behind it (for a server without the guard)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_started
from django.test import Client

from videobank.asgi import application

MB = 1024 * 1024
UPLOAD = "/kyc/upload/"
MULTIPART = (b"content-type", b"multipart/form-data; boundary=videobank")


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture
def django_requests() -> Iterator[list[str]]:
    """Paths of the requests Django began to handle (``request_started`` comes after the body
    is read and before any middleware or view)."""
    seen: list[str] = []

    def started(sender, scope=None, **kwargs):
        seen.append((scope or {}).get("path", "?"))

    request_started.connect(started)
    yield seen
    request_started.disconnect(started)


def http_post(path: str, *headers: tuple[bytes, bytes]) -> ApplicationCommunicator:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    return ApplicationCommunicator(application, scope)


async def response_of(app: ApplicationCommunicator) -> tuple[int, dict]:
    start = await app.receive_output(10)
    assert start["type"] == "http.response.start"
    body = b""
    while True:
        message = await app.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], json.loads(body)


def assert_too_large_in_words(status: int, body: dict) -> None:
    assert status == 413
    assert body["code"] == "too_large"
    assert body["detail"]["en"] == "The request is too large: the limit is 12 MB."
    assert body["detail"]["zh"] == "请求过大：上限为 12 MB。"


async def test_a_declared_13_mb_body_is_refused_before_a_byte_is_read(django_requests):
    app = http_post(UPLOAD, MULTIPART, (b"content-length", str(13 * MB).encode()))
    await app.send_input({"type": "http.request", "body": b"x" * 65536, "more_body": True})

    status, body = await response_of(app)
    await app.wait(timeout=5)  # the application is done without waiting for the rest

    assert_too_large_in_words(status, body)
    assert app.input_queue.qsize() == 1  # not even the first chunk was read
    assert django_requests == []  # Django never began the request: no middleware, no view


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap(django_requests):
    app = http_post(UPLOAD, MULTIPART, (b"transfer-encoding", b"chunked"))
    for _ in range(13):  # 13 MB, never finished
        await app.send_input({"type": "http.request", "body": b"x" * MB, "more_body": True})

    status, body = await response_of(app)
    await app.wait(timeout=5)

    assert_too_large_in_words(status, body)
    assert django_requests == []


async def test_a_body_lying_about_its_length_is_counted_as_it_streams(django_requests):
    app = http_post(UPLOAD, MULTIPART, (b"content-length", b"1000"))
    for _ in range(13):
        await app.send_input({"type": "http.request", "body": b"x" * MB, "more_body": True})

    status, body = await response_of(app)
    await app.wait(timeout=5)

    assert_too_large_in_words(status, body)
    assert django_requests == []


async def test_a_body_under_the_cap_reaches_the_view(django_requests):
    """The sentinel: the same route with a small body is handled by Django (and the view answers
    it), so the tests above would see a request that got through."""
    form = b"token=forged&side=front"
    app = http_post(
        UPLOAD,
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(form)).encode()),
    )
    await app.send_input({"type": "http.request", "body": form, "more_body": False})

    status, body = await response_of(app)
    await app.wait(timeout=5)

    assert status == 403
    assert body["code"] == "bad_token"
    assert django_requests == [UPLOAD]


def test_without_the_guard_the_upload_view_refuses_a_large_body_before_parsing_it(monkeypatch):
    """Django's test client bypasses the ASGI guard (as a server without it would): the view
    refuses by the declared length before it parses the form or looks at the call."""
    from kyc import views

    parsed = []
    monkeypatch.setattr(views, "access_customer_call", lambda token: parsed.append(token))
    big = SimpleUploadedFile("card.jpg", b"\xff\xd8" + b"0" * (13 * MB), content_type="image/jpeg")

    response = Client().post(UPLOAD, {"token": "t", "side": "front", "image": big})

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert response.json()["detail"]["zh"] == "请求过大：上限为 12 MB。"
    assert parsed == []

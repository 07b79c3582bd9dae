"""The national ID check stub as the outside service it stands for: its own process, over HTTP.

One ``manage.py national_id_stub`` process serves the module (proving the production mode); the
registry and the fault controls live in the test database it shares.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image

from kyc.national_stub.models import Citizen, CitizenStatus, StubRequest
from kyc.national_stub.seed import CITIZENS, MISMATCH_EXAMPLE, NOT_FOUND_NUMBERS, registry_seed
from kyc.national_stub.services import stub_channels, stub_control_set
from kyc.national_stub.testing import StubServer
from tests.fixtures import starts_processes

ZHANG = CITIZENS[0]  # 张伟, active
REVOKED = CITIZENS[2]  # 王芳


@pytest.fixture(scope="module")
@starts_processes
def stub(django_db_setup, django_db_blocker):
    from tests.livestack import stack_env

    server = StubServer(env=stack_env()).start()
    print(f"national_id_stub ready in {server.startup_s:.2f} s")  # noqa: T201 - a figure
    yield server
    server.stop()


@pytest.fixture
def registry(transactional_db):
    registry_seed()
    for channel in stub_channels():
        stub_control_set(channel=channel, latency_ms=0, jitter_ms=0, error_rate=0.0)


API_KEY = object()  # post()'s default: the session's API key of the stub


def post(
    url: str, body, *, key: str | None | object = API_KEY, admin_key: str | None = None
) -> tuple[int, dict, float]:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if key is API_KEY:
        key = settings.NATIONAL_STUB_API_KEY
    if key is not None:
        headers["X-Api-Key"] = str(key)
    if admin_key is not None:
        headers["X-Admin-Key"] = admin_key
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.load(response), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), time.monotonic() - started


def verify(stub: StubServer, body, *, channel: str = "primary", **kwargs):
    return post(f"{stub.channel_url(channel)}/verify", body, **kwargs)


def query(request_id: str, name: str, id_number: object, **extra: object) -> dict:
    return {"request_id": request_id, "name": name, "id_number": id_number, **extra}


def test_process_serves_only_the_stub_and_says_where(stub):
    assert f"national ID stub listening on {stub.url}/v1/" in stub.log()
    with urllib.request.urlopen(f"{stub.url}/v1/health", timeout=5) as response:  # noqa: S310
        assert json.load(response)["channels"] == ["primary", "secondary"]
    with pytest.raises(urllib.error.HTTPError) as not_here:
        urllib.request.urlopen(f"{stub.url}/console/login/", timeout=5)  # noqa: S310
    assert not_here.value.code == 404


@pytest.mark.parametrize(
    ("name", "id_number", "result", "mismatch_on"),
    [
        (ZHANG.name, ZHANG.id_number, "pass", None),
        ("张伟", NOT_FOUND_NUMBERS[0], "not_found", None),
        (*MISMATCH_EXAMPLE, "mismatch", "name"),
        (REVOKED.name, REVOKED.id_number, "revoked", None),
        # A wrong name learns nothing about a revoked number: it is a name mismatch.
        ("王小芳", REVOKED.id_number, "mismatch", "name"),
        # Full-width spaces around the name are not a different name.
        (f"\u3000{ZHANG.name} ", ZHANG.id_number, "pass", None),
    ],
)
def test_two_factor_answers(stub, registry, name, id_number, result, mismatch_on):
    status, answer, _ = verify(stub, query("q-1", name, id_number), channel="secondary")
    assert status == 200
    assert answer["result"] == result
    assert answer["mismatch_on"] == mismatch_on
    assert answer["factors"] == 2
    assert answer["channel"] == "secondary"
    assert answer["replayed"] is False
    assert StubRequest.objects.get(request_id="q-1").answer["result"] == result


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png_bytes() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"not json", 400, None),
        ([1, 2], 400, None),
        ({"name": "张伟", "id_number": ZHANG.id_number}, 400, "request_id"),
        (query("bad id!", "张伟", ZHANG.id_number), 400, "request_id"),
        (query("q", "", ZHANG.id_number), 400, "name"),
        (query("q", "张" * 51, ZHANG.id_number), 400, "name"),
        (query("q", "张伟", "11010119900307123"), 400, "id_number"),  # 17 characters
        (query("q", "张伟", "110101199003071234"), 400, "id_number"),  # check character
        (query("q", "张伟", 110101199003071233), 400, "id_number"),  # a number, not text
        (query("q", "张伟", ZHANG.id_number, birth="1990"), 400, "birth"),
        (query("q", "张伟", ZHANG.id_number, portrait_jpeg_b64="%%%"), 400, "portrait_jpeg_b64"),
        (
            query("q", "张伟", ZHANG.id_number, portrait_jpeg_b64=_b64(b"GIF89a")),
            422,
            "portrait_jpeg_b64",
        ),
        # A picture, but the registry has no portrait of this person to compare with.
        (query("q", "张伟", ZHANG.id_number, portrait_jpeg_b64=_b64(_png_bytes())), 422, None),
    ],
)
def test_malformed_queries_are_refused_in_words(stub, registry, body, status, field):
    code, answer, _ = verify(stub, body)
    assert code == status
    assert answer["detail"]  # words saying what is wrong
    assert answer.get("field") == field
    assert not StubRequest.objects.exists()  # nothing answered, nothing recorded


def test_key_and_channel_are_checked(stub, registry):
    body = query("q-key", ZHANG.name, ZHANG.id_number)
    status, answer, _ = verify(stub, body, key=None)
    assert (status, answer["error"], answer["detail"]) == (
        401,
        "unauthorized",
        "missing or wrong X-Api-Key",
    )
    assert verify(stub, body, key="wrong")[0] == 401
    assert verify(stub, body, key=stub.admin_key())[0] == 401  # the admin key is no API key
    assert verify(stub, body, channel="tertiary", key=None)[0] == 401  # nothing without a key
    assert verify(stub, body, channel="tertiary")[0] == 404
    assert not StubRequest.objects.exists()


def test_control_needs_the_stubs_admin_key_not_the_api_key(stub, registry):
    """The fault switches are a developer endpoint: the service's callers (its API key), or
    anybody without a key, get 403 in words and change nothing."""
    stub.control(channel="primary", latency_ms=7)
    before = stub.control()
    callers = {
        "the API key": {},
        "the API key as admin key": {"admin_key": stub.api_key()},
        "no key": {"key": None},
        "a wrong admin key": {"key": None, "admin_key": "not-the-admin-key"},
    }
    for fields in ({}, {"channel": "primary", "outage": True}, {"reset": True}):
        for who, keys in callers.items():
            status, answer, _ = post(f"{stub.url}/v1/_control", fields, **keys)
            assert (status, answer["error"]) == (403, "forbidden"), (fields, who)
            assert "admin key" in answer["en"]
            assert "管理密钥" in answer["zh"]
            assert "channels" not in answer
    assert stub.control() == before  # the admin key opens it, and nothing had changed
    assert before["channels"]["primary"]["latency_ms"] == 7
    assert before["channels"]["primary"]["outage"] is False


def test_outage_flipped_at_run_time_on_one_channel(stub, registry):
    state = stub.control(channel="primary", outage=True)
    assert state["channels"]["primary"]["outage"] is True
    assert state["channels"]["secondary"]["outage"] is False
    body = query("q-out", ZHANG.name, ZHANG.id_number)
    status, answer, _ = verify(stub, body)
    assert (status, answer["error"]) == (503, "outage")
    assert not StubRequest.objects.exists()  # an outage is not an answer
    assert verify(stub, body, channel="secondary")[1]["result"] == "pass"
    stub.control(reset=True)
    status, answer, _ = verify(stub, body)
    assert (status, answer["result"], answer["replayed"]) == (200, "pass", True)
    # Bad control input is refused in words.
    status, answer, _ = post(
        f"{stub.url}/v1/_control",
        {"channel": "primary", "error_rate": 2},
        admin_key=stub.admin_key(),
    )
    assert (status, answer["field"]) == (400, "error_rate")


def test_latency_and_jitter_are_honoured(stub, registry):
    stub.control(channel="primary", latency_ms=400, jitter_ms=0)
    _, answer, elapsed = verify(stub, query("q-slow", ZHANG.name, ZHANG.id_number))
    assert answer["result"] == "pass"
    assert elapsed >= 0.4
    stub.control(channel="primary", latency_ms=300, jitter_ms=100)
    waits = [verify(stub, query(f"q-j{i}", ZHANG.name, ZHANG.id_number))[2] for i in range(4)]
    assert min(waits) >= 0.2
    # The other channel keeps its own (zero) latency.
    assert verify(stub, query("q-fast", ZHANG.name, ZHANG.id_number), channel="secondary")[2] < 0.2


def test_injected_errors_are_not_answers(stub, registry):
    stub.control(channel="primary", error_rate=1.0)
    body = query("q-err", ZHANG.name, ZHANG.id_number)
    for _ in range(3):
        status, answer, _ = verify(stub, body)
        assert (status, answer["error"]) == (500, "internal")
    assert not StubRequest.objects.exists()
    stub.control(channel="primary", error_rate=0.0)
    status, answer, _ = verify(stub, body)
    assert (status, answer["result"], answer["replayed"]) == (200, "pass", False)
    # At a rate in between, some requests fail and some are answered.
    stub.control(channel="primary", error_rate=0.5)
    codes = {verify(stub, query(f"q-r{i}", ZHANG.name, ZHANG.id_number))[0] for i in range(40)}
    assert codes == {200, 500}


def test_a_request_id_is_answered_once(stub, registry):
    body = query("teller-7-check-1", ZHANG.name, ZHANG.id_number)
    first = verify(stub, body)[1]
    again = verify(stub, body, channel="secondary")[1]  # failover with the same id
    assert again == {**first, "replayed": True}
    recorded = StubRequest.objects.get(request_id="teller-7-check-1")
    assert (recorded.replays, recorded.channel) == (1, "primary")
    # Meanwhile the registry changes; the recorded answer still stands for that request id.
    Citizen.objects.filter(id_number=ZHANG.id_number).update(status=CitizenStatus.REVOKED)
    assert verify(stub, body)[1]["result"] == "pass"
    status, answer, _ = verify(stub, {**body, "id_number": CITIZENS[1].id_number})
    assert (status, answer["error"]) == (409, "request_id_reused")


@pytest.fixture(scope="module")
def photos():
    from tests.media import face_photos

    return {name: path.read_bytes() for name, path in face_photos().items()}


@pytest.fixture
def zhang_with_portrait(registry, photos):
    """张伟 with a reference portrait from one photo of a person, seeded the way the lead's
    end-to-end test does it (the seed command with --portrait)."""
    from tests.media import face_photos

    call_command("national_stub_seed", "--portrait", f"{ZHANG.name}={face_photos()['obama']}")
    assert len(Citizen.objects.get(id_number=ZHANG.id_number).portrait_encoding) == 128


@pytest.mark.parametrize(
    ("photo", "result", "mismatch_on"),
    [
        ("obama2", "pass", None),  # another photo of the same person
        ("obama3", "pass", None),
        ("biden", "mismatch", "portrait"),  # somebody else
    ],
)
def test_three_factor_compares_the_portrait(
    stub, zhang_with_portrait, photos, photo, result, mismatch_on
):
    body = query(
        f"q-3f-{photo}", ZHANG.name, ZHANG.id_number, portrait_jpeg_b64=_b64(photos[photo])
    )
    status, answer, _ = verify(stub, body)
    assert status == 200
    assert (answer["result"], answer["mismatch_on"], answer["factors"]) == (
        result,
        mismatch_on,
        3,
    )
    # The score a teller sees is on the right side of the line.
    from kyc.faces import DEFAULT_MATCH_THRESHOLD

    limit = 1 - DEFAULT_MATCH_THRESHOLD
    assert (answer["similarity"] >= limit) == (result == "pass")


def test_three_factor_refuses_a_portrait_without_a_face(stub, zhang_with_portrait):
    body = query("q-3f-noface", ZHANG.name, ZHANG.id_number, portrait_jpeg_b64=_b64(_png_bytes()))
    status, answer, _ = verify(stub, body)
    assert (status, answer["error"], answer["field"]) == (422, "bad_portrait", "portrait_jpeg_b64")
    assert "face" in answer["detail"]
    # Name and number are still checked first: a wrong name never reaches the face engine.
    body = query("q-3f-name", "张小伟", ZHANG.id_number, portrait_jpeg_b64=_b64(_png_bytes()))
    assert verify(stub, body)[1]["mismatch_on"] == "name"


def test_stub_logs_mask_numbers_and_names(stub, registry):
    verify(stub, query("q-log-1", ZHANG.name, ZHANG.id_number))
    verify(stub, query("q-log-2", *MISMATCH_EXAMPLE))
    verify(stub, query("q-log-3", "张伟", "110101199003071234"))  # refused: bad check character
    log = stub.log()
    assert "110101********1233" in log
    for secret in (
        ZHANG.id_number,
        MISMATCH_EXAMPLE[1],
        "110101199003071234",
        ZHANG.name,
        MISMATCH_EXAMPLE[0],
    ):
        assert secret not in log


@pytest.mark.skipif(
    settings.PROFILE != "embedded",
    reason="the embedded profile's mount; production's absence: test_stub_guards.py",
)
def test_stub_mounted_on_the_embedded_profile(live_server, settings):
    registry_seed()
    stub_control_set(channel="primary", latency_ms=0, jitter_ms=0)
    url = f"{live_server.url}/ext/national-id/v1/primary/verify"
    status, answer, _ = post(url, query("q-mounted", ZHANG.name, ZHANG.id_number))
    assert (status, answer["result"]) == (200, "pass")


def test_seed_command(transactional_db, tmp_path):
    call_command("national_stub_seed", "--citizen", "赵六:110105200001010016")
    assert Citizen.objects.count() == len(CITIZENS) + 1
    assert Citizen.objects.get(name="王芳").status == CitizenStatus.REVOKED
    call_command("national_stub_seed")  # again: nothing doubles
    assert Citizen.objects.count() == len(CITIZENS) + 1
    with pytest.raises(CommandError, match="expected NAME=PATH"):
        call_command("national_stub_seed", "--portrait", "张伟")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("national_stub_seed", "--portrait", f"张伟={tmp_path / 'missing.jpg'}")
    (tmp_path / "x.jpg").write_bytes(b"not a picture")
    with pytest.raises(CommandError, match="not a picture"):
        call_command("national_stub_seed", "--portrait", f"张伟={tmp_path / 'x.jpg'}")
    with pytest.raises(CommandError, match="not a valid"):
        call_command("national_stub_seed", "--citizen", "赵六:110105200001010017")

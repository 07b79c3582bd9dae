import base64
import os
import stat
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from recordings.crypto import (
    MAGIC,
    SegmentIntegrityError,
    new_data_key,
    open_sealed,
    seal,
    segment_aad,
)
from videobank.keys import (
    KeyUnwrapError,
    SettingsMasterKeys,
    get_key_backend,
)

RECORDING = uuid.UUID("00000000-0000-4000-8000-000000000001")
PLAINTEXT = b"\x1a\x45\xdf\xa3" + b"matroska segment bytes" * 100


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def sealed():
    key = new_data_key()
    aad = segment_aad(RECORDING, "customer", 3)
    return key, aad, seal(key, PLAINTEXT, aad)


def test_seal_round_trip_hides_plaintext(sealed):
    key, aad, blob = sealed
    assert len(key) == 32
    assert blob.startswith(MAGIC)
    assert b"\x1a\x45\xdf\xa3" not in blob
    assert open_sealed(key, blob, aad) == PLAINTEXT


def test_each_seal_uses_a_fresh_nonce(sealed):
    key, aad, blob = sealed
    assert seal(key, PLAINTEXT, aad) != blob


@pytest.mark.parametrize("position", [len(MAGIC), len(MAGIC) + 12, 200, -1])
def test_a_flipped_bit_anywhere_is_detected(sealed, position):
    key, aad, blob = sealed
    tampered = bytearray(blob)
    tampered[position] ^= 0x01
    with pytest.raises(SegmentIntegrityError, match="failed authentication"):
        open_sealed(key, bytes(tampered), aad)


@pytest.mark.parametrize("keep", [0, 10, len(MAGIC) + 12 + 15, -1, -4096])
def test_truncation_is_detected(sealed, keep):
    key, aad, blob = sealed
    with pytest.raises(SegmentIntegrityError):
        open_sealed(key, blob[:keep], aad)


def test_wrong_magic_is_detected(sealed):
    key, aad, blob = sealed
    with pytest.raises(SegmentIntegrityError, match="wrong magic"):
        open_sealed(key, b"VBSEG9" + blob[len(MAGIC) :], aad)


@pytest.mark.parametrize(
    ("recording", "side", "index"),
    [
        (RECORDING, "customer", 4),  # moved to the next slot
        (RECORDING, "teller", 3),  # passed off as the other party
        (uuid.UUID("00000000-0000-4000-8000-000000000002"), "customer", 3),  # other recording
    ],
)
def test_a_segment_moved_to_another_slot_is_detected(sealed, recording, side, index):
    key, _, blob = sealed
    with pytest.raises(SegmentIntegrityError):
        open_sealed(key, blob, segment_aad(recording, side, index))


def test_another_recordings_key_does_not_open(sealed):
    _, aad, blob = sealed
    with pytest.raises(SegmentIntegrityError):
        open_sealed(new_data_key(), blob, aad)


def test_wrap_unwrap_round_trip():
    backend = SettingsMasterKeys(f"k1:{b64key()}", profile="production")
    data_key = new_data_key()
    key_id, wrapped = backend.wrap(data_key)
    assert key_id == "k1"
    assert data_key not in wrapped
    assert backend.unwrap(key_id, wrapped) == data_key


def test_rotation_old_key_still_unwraps():
    old, new = b64key(), b64key()
    before = SettingsMasterKeys(f"2024:{old}", profile="production")
    data_key = new_data_key()
    old_id, old_wrapped = before.wrap(data_key)

    after = SettingsMasterKeys(f"2025:{new}, 2024:{old}", profile="production")
    new_id, new_wrapped = after.wrap(data_key)
    assert (old_id, new_id) == ("2024", "2025")
    assert after.unwrap(old_id, old_wrapped) == data_key
    assert after.unwrap(new_id, new_wrapped) == data_key

    retired = SettingsMasterKeys(f"2025:{new}", profile="production")
    with pytest.raises(KeyUnwrapError, match="not configured"):
        retired.unwrap(old_id, old_wrapped)


def test_a_corrupt_wrapped_key_does_not_unwrap():
    backend = SettingsMasterKeys(f"k1:{b64key()}", profile="production")
    key_id, wrapped = backend.wrap(new_data_key())
    with pytest.raises(KeyUnwrapError):
        backend.unwrap(key_id, bytes([wrapped[0] ^ 1]) + wrapped[1:])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("k1:not-base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"),
        ("nokey", "id:base64key"),
    ],
)
def test_bad_master_keys_are_refused(spec, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        SettingsMasterKeys(spec, profile="production")


def test_production_without_master_keys_refuses_to_start(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="RECORDING_MASTER_KEYS is empty"):
        SettingsMasterKeys("", profile="production", var_dir=tmp_path)
    assert not (tmp_path / "recording-master.key").exists()


def test_embedded_profile_keeps_a_private_local_key(tmp_path):
    first = SettingsMasterKeys("", profile="embedded", var_dir=tmp_path)
    key_file = tmp_path / "recording-master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_id, wrapped = first.wrap(new_data_key())
    assert key_id == "local"
    # A restarted server reuses the same key, so earlier recordings stay readable.
    second = SettingsMasterKeys("", profile="embedded", var_dir=tmp_path)
    assert second.unwrap(key_id, wrapped) == first.unwrap(key_id, wrapped)


def test_get_key_backend_follows_settings(settings):
    settings.RECORDING_KEY_BACKEND = "videobank.keys.SettingsMasterKeys"
    settings.RECORDING_MASTER_KEYS = f"a:{b64key()}"
    backend = get_key_backend()
    assert get_key_backend() is backend
    settings.RECORDING_MASTER_KEYS = f"b:{b64key()}"
    assert get_key_backend().wrap(new_data_key())[0] == "b"

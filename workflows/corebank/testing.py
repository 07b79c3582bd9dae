"""Acting as the customer's browser in tests: what the page's WebCrypto code does with the PIN.

The page does::

    const key = await crypto.subtle.importKey(
        "spki", base64ToBytes(public_key_spki_b64), {name: "RSA-OAEP", hash: "SHA-256"},
        false, ["encrypt"]);
    const plain = new TextEncoder().encode(JSON.stringify({pin, nonce}));
    const ciphertext = await crypto.subtle.encrypt({name: "RSA-OAEP"}, key, plain);
    // → base64 of ciphertext: ciphertext_b64

WebCrypto's RSA-OAEP uses the named hash for MGF1 too, and no label; so does this.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def pin_encrypt(*, public_key_spki_b64: str, nonce: str, pin: str) -> str:
    """The base64 ciphertext of ``{"pin": pin, "nonce": nonce}`` for the core's public key."""
    key = serialization.load_der_public_key(base64.b64decode(public_key_spki_b64))
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the core's key is not an RSA key")
    plain = json.dumps({"pin": pin, "nonce": nonce}, separators=(",", ":")).encode()
    ciphertext = key.encrypt(
        plain,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )
    return base64.b64encode(ciphertext).decode()

"""E-receipts: one per done business, as HTML and PDF, with a verification code.

The code is an HMAC (a subkey of ``WORKFLOW_RECEIPT_KEYS``' current key, see
``videobank.keyring``) of the receipt's canonical content, 12 characters of Crockford base32 (60
bits): it cannot be guessed. Each receipt also keeps a full HMAC-SHA256 of its code and content
(``seal``) and the id of the key that made both (``key_id``): a receipt whose stored content or
code was altered no longer verifies, and the public verify page checks the seal before saying
"genuine". Rotating the key (a new one first, the old one still listed) leaves every receipt
verifiable; SECRET_KEY plays no part.

The customer opens their receipt with a link token of its own (``receipt_token``: signed with
another subkey, bound to that one receipt, valid ``WORKFLOW_RECEIPT_LINK_MAX_AGE_S``), never with
the call's token.

The content is fixed when the receipt is issued (numbers already masked, words in both
languages); HTML and PDF are drawn from it on demand, so both always say the same thing.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from videobank.keyring import RECEIPT_KEYS, KeyNotConfigured, keyring

from . import catalogue
from .models import BusinessCase, Receipt

log = logging.getLogger(__name__)

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 12
_LINK_SALT = "videobank.workflows.receipt-link"
# What people type for the letters the alphabet leaves out.
_CODE_READS = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")

BANK = {"en": "Video Bank", "zh": "视频银行"}


def canonical(content: dict) -> bytes:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def code_for(content: dict, *, key_id: str | None = None) -> str:
    digest = keyring(RECEIPT_KEYS).mac(canonical(content), purpose="code", key_id=key_id)
    number = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_LENGTH)
    chars = []
    for _ in range(CODE_LENGTH):
        chars.append(CODE_ALPHABET[number & 31])
        number >>= 5
    return "".join(reversed(chars))


def code_normalise(text: str) -> str | None:
    """What a person typed (spaces, dashes, lower case, O for 0...) as a code, or None."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    code = re.sub(r"[\s-]", "", text).upper().translate(_CODE_READS)
    return code if CODE_RE.fullmatch(code) else None


def code_display(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def receipt_content(case: BusinessCase, *, issued_at: datetime) -> dict:
    """What the receipt says: the summary the customer confirmed plus what the core answered
    (masked as the catalogue masks it), when, for which call and by which teller."""
    business = catalogue.business_get(case.business)
    result_lines = business.result_lines(case.params, case.result) if business else []
    return {
        "v": 1,
        "bank": BANK,
        "case_id": str(case.id),
        "call_id": str(case.call_id),
        "business": case.business,
        "name": business.name() if business else {"en": case.business, "zh": case.business},
        "lines": list(case.summary),
        "result_lines": result_lines,
        "reference": case.idempotency_key,
        "confirmed_at": case.confirmed_at.isoformat() if case.confirmed_at else None,
        "done_at": (case.done_at or issued_at).isoformat(),
        "issued_at": issued_at.isoformat(),
        "teller": case.teller.get_username(),
    }


def seal_for(code: str, content: dict, *, key_id: str) -> str:
    """HMAC-SHA256 of the code and the content under key ``key_id`` (hex)."""
    data = code.encode() + b"\n" + canonical(content)
    return keyring(RECEIPT_KEYS).mac(data, purpose="seal", key_id=key_id).hex()


def receipt_issue(*, case: BusinessCase) -> Receipt:
    """The case's receipt (issued once: a second call returns the first)."""
    existing = Receipt.objects.filter(case=case).first()
    if existing is not None:
        return existing
    issued_at = timezone.now()
    content = receipt_content(case, issued_at=issued_at)
    key_id = keyring(RECEIPT_KEYS).current_id
    code = code_for(content, key_id=key_id)
    try:
        with transaction.atomic():
            return Receipt.objects.create(
                case=case,
                code=code,
                content=content,
                issued_at=issued_at,
                key_id=key_id,
                seal=seal_for(code, content, key_id=key_id),
            )
    except IntegrityError:
        return Receipt.objects.get(case=case)


def receipt_genuine(receipt: Receipt) -> bool:
    """True if the stored code and content are still those the receipt was issued with."""
    if not receipt.seal:
        return False
    try:
        expected = seal_for(receipt.code, receipt.content, key_id=receipt.key_id)
    except KeyNotConfigured as exc:
        log.error("receipt %s cannot be verified: %s", receipt.code, exc)
        return False
    return constant_time_compare(expected, receipt.seal)


def receipt_verify(text: str) -> tuple[Receipt | None, bool]:
    """(the receipt, genuine) for a code as typed; (None, False) for no such code."""
    code = code_normalise(text)
    if code is None:
        return None, False
    receipt = Receipt.objects.filter(code=code).select_related("case").first()
    if receipt is None:
        return None, False
    return receipt, receipt_genuine(receipt)


def receipt_links(receipt: Receipt, *, for_customer: bool = False) -> dict:
    """The code as people read it (XXXX-XXXX-XXXX; the pages take it with or without dashes)
    and the pages' addresses: staff open them with their session; the customer's carry the
    receipt's own link token."""
    url = reverse("workflows:receipt", kwargs={"code": receipt.code})
    pdf_url = reverse("workflows:receipt_pdf", kwargs={"code": receipt.code})
    if for_customer:
        query = "?" + urlencode({"token": receipt_token(receipt)})
        url, pdf_url = url + query, pdf_url + query
    return {"code": code_display(receipt.code), "url": url, "pdf_url": pdf_url}


# --- the customer's link token ------------------------------------------------------------------


class ReceiptTokenError(Exception):
    pass


def _link_keys() -> list[str]:
    return [key.hex() for _, key in keyring(RECEIPT_KEYS).subkeys("link")]


def receipt_link_max_age_s() -> int:
    return int(getattr(settings, "WORKFLOW_RECEIPT_LINK_MAX_AGE_S", 86400))


def receipt_token(receipt: Receipt) -> str:
    """A signed token that opens this one receipt (HTML and PDF) for
    ``WORKFLOW_RECEIPT_LINK_MAX_AGE_S``: what the customer's links carry."""
    return signing.dumps({"receipt": str(receipt.id)}, key=_link_keys()[0], salt=_LINK_SALT)


def receipt_token_read(token: str) -> uuid.UUID:
    """The receipt a link token opens; ReceiptTokenError if it is forged, altered or expired."""
    current, *older = _link_keys()
    try:
        payload = signing.loads(
            token,
            key=current,
            fallback_keys=[*older],
            salt=_LINK_SALT,
            max_age=receipt_link_max_age_s(),
        )
        return uuid.UUID(payload["receipt"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ReceiptTokenError("The receipt link is invalid or expired.") from None


# --- what the public verify page shows --------------------------------------------------------


def amount_mask(text: str) -> str:
    """``CNY 60,000.00`` → ``CNY 6*,***.00``: the size and the cents to compare with the paper,
    not the amount for anyone holding a code."""
    match = re.search(r"(\d[\d,]*)(\.\d{2})", text)
    if not match:
        return text
    whole = match.group(1)
    hidden = whole[0] + re.sub(r"\d", "*", whole[1:])
    return text[: match.start()] + hidden + match.group(2) + text[match.end() :]


def verify_view(receipt: Receipt) -> dict:
    content = receipt.content
    amounts = [
        {
            "label": line["label"],
            "value": {k: amount_mask(v) for k, v in line["value"].items()},
        }
        for line in content.get("lines", [])
        if line.get("kind") == "amount"
    ]
    return {
        "code": code_display(receipt.code),
        "name": content["name"],
        "done_at": timezone.localtime(datetime.fromisoformat(content["done_at"])).strftime(
            "%Y-%m-%d %H:%M"
        ),
        "amounts": amounts,
    }


# --- drawing ----------------------------------------------------------------------------------


def receipt_html(receipt: Receipt, *, request=None) -> str:
    content = receipt.content
    return render_to_string(
        "workflows/receipt.html",
        {
            "receipt": receipt,
            "content": content,
            "code_display": code_display(receipt.code),
            "done_at": datetime.fromisoformat(content["done_at"]),
            "verify_url": reverse("workflows:verify"),
            "links": receipt_links(receipt),
        },
        request=request,
    )


def receipt_pdf(receipt: Receipt) -> bytes:
    """An A5 page: bank, business, each line in Chinese and English, the code. Chinese through
    the standard CID font STSong-Light (no font file to ship; viewers supply the glyphs)."""
    # reportlab loads when a PDF is first asked for, not in every process that imports receipts.
    from reportlab.lib.pagesizes import A5
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    content = receipt.content
    code = code_display(receipt.code)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A5, invariant=1)
    pdf.setTitle(f"{content['name']['en']} / {content['name']['zh']} — {code}")
    pdf.setSubject(f"Verification code {code}")
    pdf.setAuthor(BANK["en"])
    width, height = A5
    left, y = 14 * mm, height - 18 * mm

    def text(value: str, *, size: float = 9, font: str = "STSong-Light", dx: float = 0) -> None:
        pdf.setFont(font, size)
        pdf.drawString(left + dx, y, value)

    text(f"{BANK['zh']}  电子回单", size=15)
    y -= 6 * mm
    text(f"{BANK['en']} e-receipt", size=10, font="Helvetica")
    y -= 10 * mm
    text(f"{content['name']['zh']}  {content['name']['en']}", size=12)
    y -= 8 * mm
    done_at = timezone.localtime(datetime.fromisoformat(content["done_at"]))
    for label, value in (
        (("办理时间", "Done at"), done_at.strftime("%Y-%m-%d %H:%M:%S %Z")),
        (("业务编号", "Reference"), content["reference"]),
    ):
        text(f"{label[0]} {label[1]}", size=8)
        text(value, size=9, font="Helvetica", dx=48 * mm)
        y -= 6 * mm
    for line in [*content.get("lines", []), *content.get("result_lines", [])]:
        if y < 40 * mm:
            pdf.showPage()
            y = height - 18 * mm
        label, value = line["label"], line["value"]
        text(f"{label['zh']} {label['en']}", size=8)
        text(value["zh"], size=9, dx=48 * mm)
        if value["en"] != value["zh"]:
            y -= 4.5 * mm
            text(value["en"], size=8, font="Helvetica", dx=48 * mm)
        y -= 6 * mm
    y -= 6 * mm
    pdf.line(left, y + 4 * mm, width - left, y + 4 * mm)
    text("验证码 Verification code", size=9)
    y -= 7 * mm
    text(code, size=16, font="Courier-Bold")
    y -= 7 * mm
    text(
        "在本行网站“电子回单验证”页面输入验证码即可核验真伪。",
        size=8,
    )
    y -= 5 * mm
    text(
        "Check this receipt by entering the code on the bank's receipt verification page.",
        size=8,
        font="Helvetica",
    )
    pdf.showPage()
    pdf.save()
    return out.getvalue()

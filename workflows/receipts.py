"""E-receipts: one per done business, as HTML and PDF, with a verification code.

The code is an HMAC (key derived from ``WORKFLOW_RECEIPT_KEY``, default SECRET_KEY) of the
receipt's canonical content, 12 characters of Crockford base32 (60 bits): it cannot be guessed,
and a receipt whose stored content was altered no longer matches its code. The public verify page
recomputes it before saying "genuine".

The content is fixed when the receipt is issued (numbers already masked, words in both
languages); HTML and PDF are drawn from it on demand, so both always say the same thing.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from . import catalogue
from .models import BusinessCase, Receipt

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 12
_CODE_SALT = "videobank.workflows.receipt"
# What people type for the letters the alphabet leaves out.
_CODE_READS = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")

BANK = {"en": "Video Bank", "zh": "视频银行"}


def _key() -> str:
    return getattr(settings, "WORKFLOW_RECEIPT_KEY", "") or settings.SECRET_KEY


def canonical(content: dict) -> bytes:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def code_for(content: dict) -> str:
    digest = salted_hmac(_CODE_SALT, canonical(content), secret=_key(), algorithm="sha256")
    number = int.from_bytes(digest.digest()[:8], "big") >> (64 - 5 * CODE_LENGTH)
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


def receipt_issue(*, case: BusinessCase) -> Receipt:
    """The case's receipt (issued once: a second call returns the first)."""
    existing = Receipt.objects.filter(case=case).first()
    if existing is not None:
        return existing
    issued_at = timezone.now()
    content = receipt_content(case, issued_at=issued_at)
    try:
        with transaction.atomic():
            return Receipt.objects.create(
                case=case, code=code_for(content), content=content, issued_at=issued_at
            )
    except IntegrityError:
        return Receipt.objects.get(case=case)


def receipt_genuine(receipt: Receipt) -> bool:
    """True if the stored content still gives the stored code."""
    return constant_time_compare(code_for(receipt.content), receipt.code)


def receipt_verify(text: str) -> tuple[Receipt | None, bool]:
    """(the receipt, genuine) for a code as typed; (None, False) for no such code."""
    code = code_normalise(text)
    if code is None:
        return None, False
    receipt = Receipt.objects.filter(code=code).select_related("case").first()
    if receipt is None:
        return None, False
    return receipt, receipt_genuine(receipt)


def receipt_links(receipt: Receipt) -> dict:
    # The code as people read it (XXXX-XXXX-XXXX); the pages take it with or without dashes.
    return {
        "code": code_display(receipt.code),
        "url": reverse("workflows:receipt", kwargs={"code": receipt.code}),
        "pdf_url": reverse("workflows:receipt_pdf", kwargs={"code": receipt.code}),
    }


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

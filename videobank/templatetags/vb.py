from django import template

from videobank.i18n import TEXT

register = template.Library()


@register.simple_tag(takes_context=True)
def t(context, key: str, **params) -> str:
    """The page language's text of ``key``; ``{% t "key" minutes=n %}`` fills ``{minutes}``."""
    lang = context.get("lang", "zh")
    text = TEXT[key][lang]
    return text.format(**params) if params else text


@register.simple_tag(takes_context=True)
def t_of(context, prefix: str, value) -> str:
    """The text of ``prefix + value``: ``{% t_of "qa.verdict." review.verdict %}``."""
    return t(context, f"{prefix}{value}")


@register.simple_tag(takes_context=True)
def in_lang(context, item) -> str:
    """The page language's name of something named in both: ``{"zh", "en"}`` pairs (or objects
    with ``zh``/``en``), or models with ``name_zh``/``name_en`` (a Business)."""
    lang = context.get("lang", "zh")
    for key in (lang, f"name_{lang}"):
        value = item.get(key) if isinstance(item, dict) else getattr(item, key, None)
        if value is not None:
            return value
    return ""

from django import template

from videobank.i18n import TEXT

register = template.Library()


@register.simple_tag(takes_context=True)
def t(context, key: str) -> str:
    lang = context.get("lang", "zh")
    return TEXT[key][lang]

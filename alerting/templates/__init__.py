"""Chinese SMS templates as registered with the providers: one per message kind × audience ×
advice, fixed text around short variables, each provider's review rules kept (docs/delivery.md,
*Texts*).

Why so many templates: the providers' review refuses a link or a contact number in a variable,
【】 in a body, adjacent or all-variable templates, and caps each variable (阿里云 35 characters,
腾讯云 12). So what a person must read whole — the advice, the link, the centre's duty number —
is fixed text of the registered template, and the variables are short facts (the unit, where the
device is, what happened, the reading, the time, the 回复码, the link token).

Deployment constants: the acknowledgement link's base (``sms.ack_base_url``) and the duty
room's number (``sms.duty_phone``) are part of the template text registered for a deployment
(:func:`registered_text` prints it), written ``{ACK_URL}`` / ``{DUTY_PHONE}`` here; only the
token after ``…/`` varies. A provider whose cap is shorter than the token (腾讯云) gets the
variants without the link: a reply code only, never a cut link.

Length: a text with any Chinese character travels as UCS-2 — 70 characters in a single SMS, 67
per segment once split. The provider prepends the signature 【签名】 (``sms.sign_name``), which
counts too. :func:`render` shortens the text variables (the unit's name first, then where the
device is) with an ellipsis until the text fits; the code, the token and the numbers are never cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from alerting.templates.catalogue import KIND_DEFAULT, TEMPLATE_CODES, TEMPLATES, for_provider, variant
from alerting.templates.rules import (
    ACK_TOKEN_LEN,
    PROVIDERS,
    REGCODE_LEN,
    TPL_KEY,
    Deployment,
    ProviderRules,
    SmsTemplate,
    sms_segments,
)
from alerting.templates.words import (
    ADVICE,
    CST,
    KIND_ZH,
    advice_class,
    format_when,
    severity_words,
    what_happened,
    what_to_do,
)

__all__ = [
    "ACK_TOKEN_LEN",
    "ADVICE",
    "CST",
    "Deployment",
    "KIND_ZH",
    "PROVIDERS",
    "ProviderRules",
    "SmsTemplate",
    "TEMPLATES",
    "TEMPLATE_CODES",
    "TPL_KEY",
    "advice_class",
    "ack_placeholder",
    "for_provider",
    "format_when",
    "provider_params",
    "REGCODE_LEN",
    "registered_name",
    "registered_text",
    "render",
    "severity_words",
    "sms_segments",
    "variant",
    "what_happened",
    "what_to_do",
]


def registered_name(template: str, params: Mapping[str, str]) -> str:
    """The registered template of an outbox row: its ``_tpl`` parameter, else its kind's default."""
    name = str(params.get(TPL_KEY) or template)
    return KIND_DEFAULT.get(name, name)


def provider_params(params: Mapping[str, str]) -> dict[str, str]:
    """The variables a provider receives: those of the registered template (``_tpl``) — a row
    also carries what the voice scripts and robots read — else every key but our ``_`` ones."""
    tpl = TEMPLATES.get(str(params.get(TPL_KEY, "")))
    if tpl is not None:
        return {k: str(params.get(k, "")) for k in tpl.params}
    return {k: str(v) for k, v in params.items() if not k.startswith("_")}


def registered_text(name: str, provider: str, deployment: Deployment) -> str:
    """The template text as submitted for review: the constants filled in, each variable in the
    provider's syntax (``${unit}`` / ``{1}``)."""
    tpl = TEMPLATES[name]
    style = PROVIDERS[provider].style
    names = {p: (f"${{{p}}}" if style == "${name}" else f"{{{i}}}") for i, p in enumerate(tpl.params, 1)}
    return tpl.text.format(**names, ACK_URL=deployment.ack_url.rstrip("/"), DUTY_PHONE=deployment.duty_phone,
                           LIFT_PHONE=deployment.lift_phone)


def ack_placeholder() -> str:
    """The ``token`` value of a rendered group text: the token's exact length, replaced per
    recipient (:func:`alerting.acks.personalize`), so the text keeps its length and segments."""
    return "-" * ACK_TOKEN_LEN


_BRACKETS = re.compile(r"[【】\[\]]")
#: never shortened: a cut code, token or number is worse than a longer text
_UNCUT = frozenset({"code", "token", "phone", "reading", "regcode", "when", "asof", "deadline", "level", "notice",
                    "unmet", "issuer", "prev", "due"})


def _clean(value: str) -> str:
    """A variable's value: 【】 would read as a signature, braces break the provider's parser."""
    return _BRACKETS.sub("", value).replace("{", "(").replace("}", ")").strip()


_COUNT = re.compile(r"等\d+处$")


def _cut(value: str, n: int) -> str:
    """``value`` in ``n`` characters with an ellipsis; a group's "等N处" stays whole."""
    if len(value) <= n:
        return value
    m = _COUNT.search(value)
    tail = m.group(0) if m else ""
    head = value[: len(value) - len(tail)]
    return head[: max(n - 1 - len(tail), 1)].rstrip() + "…" + tail


def render(name: str, params: Mapping[str, str], *, sign_name: str = "", max_segments: int = 3,
           provider: str = "webhook", deployment: Deployment | None = None) -> tuple[str, dict[str, str]]:
    """The body (without the signature) and the parameters sent, ``_tpl`` naming the template.

    Each text variable is capped at the provider's variable limit, then the shrinkable ones are
    shortened, one character at a time from the longest, until ``【sign】+body`` fits
    ``max_segments``. The code, the token and numbers are never cut: a value of those over the
    cap is an error of the caller (the conformance test renders every template)."""
    tpl = TEMPLATES[name]
    rules = PROVIDERS[provider]
    dep = deployment or Deployment()
    vals = {k: _clean(str(params.get(k, ""))) for k in tpl.params}
    for k in vals:
        if not vals[k]:
            vals[k] = "无"  # providers refuse an empty variable
        if k in tpl.shrink and k not in rules.long_vars:
            vals[k] = _cut(vals[k], rules.var_max)
    prefix = f"【{sign_name}】" if sign_name else ""
    consts = {"ACK_URL": dep.ack_url.rstrip("/"), "DUTY_PHONE": dep.duty_phone, "LIFT_PHONE": dep.lift_phone}

    def body() -> str:
        return tpl.text.format(**vals, **consts)

    floor = {"unit": 4, "loc": 4, "person": 2, "body": 10}
    while sms_segments(prefix + body()) > max_segments:
        cands = [k for k in tpl.shrink if len(_COUNT.sub("", vals[k]).rstrip("…")) > floor.get(k, 2)]
        if not cands:
            break
        k = max(cands, key=lambda c: len(vals[c]))
        vals[k] = _cut(vals[k], len(vals[k]) - 1)
    return body(), {**vals, TPL_KEY: name}

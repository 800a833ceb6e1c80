"""The markup of the login pages: small, accessible HTML with no external assets.

Every page is built from :class:`Html` fragments by :func:`render`, which
escapes each value that is not already an :class:`Html` fragment, so a
client name, an email address or a message can never add markup. Pages
carry their own small style sheet; there are no scripts, fonts or images
from elsewhere (the content security policy of the pages forbids them).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from attrs import frozen

__all__ = [
    "Choice",
    "Html",
    "Notice",
    "choose_page",
    "code_page",
    "enrol_page",
    "error_page",
    "join",
    "login_page",
    "page",
    "push_page",
    "recovery_codes_page",
    "render",
    "secondary",
]


class Html(str):
    """A fragment of markup, inserted by :func:`render` as it is."""

    __slots__ = ()


def render(template: str, *args: object, **values: object) -> Html:
    """Fill ``template``'s fields, escaping every value but :class:`Html` ones."""
    return Html(
        template.format(
            *(_escaped(value) for value in args),
            **{name: _escaped(value) for name, value in values.items()},
        )
    )


def _escaped(value: object) -> str:
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=True)


def join(fragments: Iterable[Html]) -> Html:
    """Concatenate fragments of markup."""
    return Html("".join(fragments))


@frozen
class Notice:
    """A message shown above a form: an ``error`` (announced) or plain ``info``."""

    text: str
    kind: str = "error"


@frozen
class Choice:
    """One authenticator (or the recovery code) offered on the choice page."""

    value: str
    label: str
    detail: str = ""


_STYLE = Html(
    """
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; background: #eef1f5; }
body { margin: 0; }
main { max-width: 25rem; margin: 3rem auto; padding: 2rem; background: #fff;
  border-radius: .5rem; box-shadow: 0 1px 4px rgba(0, 0, 0, .15); }
.tenant { margin: 0 0 .25rem; color: #57606a; font-size: .9rem; }
h1 { margin: 0 0 1rem; font-size: 1.4rem; }
p { line-height: 1.45; }
label, legend { display: block; margin: 1rem 0 .3rem; font-weight: 600; }
input[type=email], input[type=password], input[type=text] { box-sizing: border-box;
  width: 100%; padding: .6rem; border: 1px solid #8c959f; border-radius: .3rem;
  font-size: 1rem; }
fieldset { margin: 0; padding: 0; border: 0; }
.option { display: flex; gap: .5rem; align-items: baseline; margin: .4rem 0; }
.option label { display: inline; margin: 0; font-weight: 400; }
.detail { color: #57606a; }
button { width: 100%; margin-top: 1.2rem; padding: .7rem; border: 1px solid #0b57d0;
  border-radius: .3rem; background: #0b57d0; color: #fff; font-size: 1rem;
  cursor: pointer; }
button.secondary { margin-top: .6rem; background: #fff; color: #0b57d0; }
.error { padding: .6rem .8rem; border-radius: .3rem; background: #ffebe9;
  color: #82071e; }
.info { padding: .6rem .8rem; border-radius: .3rem; background: #ddf4ff; }
.qr { margin: 1rem 0; text-align: center; }
.qr svg { max-width: 100%; height: auto; }
.secret { display: block; padding: .6rem; background: #f6f8fa; border-radius: .3rem;
  font-size: 1.05rem; letter-spacing: .05em; word-break: break-all; }
.hint { color: #57606a; font-size: .9rem; }
"""
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title} · {tenant}</title>
<style>{style}</style>
</head>
<body>
<main>
<p class="tenant">{tenant}</p>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def page(title: str, body: Html, *, tenant: str, refresh: str | None = None) -> Html:
    """Return a whole page; ``refresh`` is a ``<meta http-equiv=refresh>`` content."""
    meta = Html("")
    if refresh is not None:
        meta = render('<meta http-equiv="refresh" content="{0}">\n', refresh)
    return render(
        _PAGE, title=title, tenant=tenant, body=body, style=_STYLE, refresh=meta
    )


def _notice(notice: Notice | None) -> Html:
    if notice is None:
        return Html("")
    if notice.kind == "error":
        return render('<p class="error" id="error" role="alert">{0}</p>\n', notice.text)
    return render('<p class="info" id="info" role="status">{0}</p>\n', notice.text)


def _described_by(notice: Notice | None) -> Html:
    if notice is None or notice.kind != "error":
        return Html("")
    return Html(' aria-describedby="error" aria-invalid="true"')


def _hidden(csrf: str, hidden: dict[str, str]) -> Html:
    """The hidden fields of a form: the anti-forgery token first."""
    return join(
        render('<input type="hidden" name="{0}" value="{1}">\n', name, value)
        for name, value in {"csrf": csrf, **hidden}.items()
    )


def _form(action: str, csrf: str, fields: Html, button: str, **hidden: str) -> Html:
    inputs = _hidden(csrf, hidden)
    return render(
        '<form method="post" action="{action}">\n{inputs}{fields}'
        '<button type="submit">{button}</button>\n</form>\n',
        action=action,
        inputs=inputs,
        fields=fields,
        button=button,
    )


def secondary(action: str, csrf: str, button: str, **hidden: str) -> Html:
    """A form with one secondary button, such as "Try another method"."""
    inputs = _hidden(csrf, hidden)
    return render(
        '<form method="post" action="{action}">\n{inputs}'
        '<button type="submit" class="secondary">{button}</button>\n</form>\n',
        action=action,
        inputs=inputs,
        button=button,
    )


def _code_field(label: str, notice: Notice | None, *, numeric: bool = True) -> Html:
    if numeric:
        kind = Html(
            'inputmode="numeric" pattern="[0-9]{6}" maxlength="6" '
            'autocomplete="one-time-code"'
        )
    else:
        kind = Html('autocomplete="off" autocapitalize="characters" spellcheck="false"')
    return render(
        '<label for="code">{label}</label>\n'
        '<input id="code" name="code" type="text" {kind} required autofocus'
        "{described}>\n",
        label=label,
        kind=kind,
        described=_described_by(notice),
    )


# --- Pages ----------------------------------------------------------------------------


def login_page(
    *,
    tenant: str,
    client: str,
    action: str,
    csrf: str,
    email: str,
    notice: Notice | None = None,
) -> Html:
    """The email and password form; ``email`` is filled in (never the password)."""
    fields = render(
        '<label for="email">Email address</label>\n'
        '<input id="email" name="email" type="email" autocomplete="username" '
        'value="{email}" required{focus}{described}>\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required{password_focus}>\n',
        email=email,
        focus=Html("" if email else " autofocus"),
        password_focus=Html(" autofocus" if email else ""),
        described=_described_by(notice),
    )
    body = join(
        [
            render("<p>Sign in to continue to {0}.</p>\n", client),
            _notice(notice),
            _form(action, csrf, fields, "Continue"),
        ]
    )
    return page("Sign in", body, tenant=tenant)


def choose_page(
    *,
    tenant: str,
    action: str,
    csrf: str,
    choices: Sequence[Choice],
    notice: Notice | None = None,
) -> Html:
    """Radio buttons to pick the authenticator to verify with."""
    options = join(
        render(
            '<div class="option"><input type="radio" id="choice-{index}" '
            'name="authenticator" value="{value}" required{checked}>'
            '<label for="choice-{index}">{label}{detail}</label></div>\n',
            index=index,
            value=choice.value,
            label=choice.label,
            detail=render(' <span class="detail">{0}</span>', choice.detail)
            if choice.detail
            else Html(""),
            checked=Html(" checked" if index == 0 else ""),
        )
        for index, choice in enumerate(choices)
    )
    fields = render(
        "<fieldset>\n<legend>How do you want to verify it's you?</legend>\n"
        "{options}</fieldset>\n",
        options=options,
    )
    body = join([_notice(notice), _form(action, csrf, fields, "Continue")])
    return page("Verify your identity", body, tenant=tenant)


def code_page(
    *,
    tenant: str,
    title: str,
    intro: str,
    label: str,
    action: str,
    csrf: str,
    numeric: bool = True,
    notice: Notice | None = None,
    extra: Html | None = None,
) -> Html:
    """A form asking for one code; ``extra`` holds secondary forms below it."""
    body = join(
        [
            render("<p>{0}</p>\n", intro),
            _notice(notice),
            _form(action, csrf, _code_field(label, notice, numeric=numeric), "Verify"),
            extra or Html(""),
        ]
    )
    return page(title, body, tenant=tenant)


def push_page(
    *,
    tenant: str,
    device: str,
    action: str,
    csrf: str,
    refresh: str,
    notice: Notice | None = None,
    extra: Html | None = None,
) -> Html:
    """Waiting for a push approval; the page reloads itself to check."""
    body = join(
        [
            render(
                "<p>We sent a notification to {0}. Approve it there, then "
                "continue here; this page also checks by itself.</p>\n",
                device,
            ),
            _notice(notice),
            _form(action, csrf, Html(""), "I've approved"),
            extra or Html(""),
        ]
    )
    return page("Approve the notification", body, tenant=tenant, refresh=refresh)


def enrol_page(
    *,
    tenant: str,
    action: str,
    csrf: str,
    qr_svg: Html,
    secret: str,
    uri: str,
    notice: Notice | None = None,
) -> Html:
    """OTP enrolment: the QR code, the secret as text, and a field to confirm."""
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    intro = render(
        "<p>Scan this QR code with an authenticator app (such as Google "
        "Authenticator or 1Password), then enter the 6-digit code it shows.</p>\n"
        '<figure class="qr" role="img" aria-label="QR code for your '
        'authenticator app">{svg}</figure>\n'
        "<p>Can't scan it? Enter this key in the app instead:</p>\n"
        '<code class="secret" id="secret">{secret}</code>\n'
        '<p class="hint"><a href="{uri}" id="otpauth">Open in an authenticator '
        "app on this device</a></p>\n",
        svg=qr_svg,
        secret=grouped,
        uri=uri,
    )
    body = join(
        [
            intro,
            _notice(notice),
            _form(action, csrf, _code_field("Code from the app", notice), "Continue"),
        ]
    )
    return page("Set up an authenticator app", body, tenant=tenant)


def recovery_codes_page(
    *, tenant: str, action: str, csrf: str, codes: Sequence[str], first: bool
) -> Html:
    """Recovery codes, shown once, with a button to go on."""
    intro = (
        "If you lose your device, you can sign in with this recovery code. "
        "Copy it and keep it somewhere safe: it will not be shown again."
        if first
        else "You used your recovery code, so it no longer works. This is your "
        "new one: copy it and keep it somewhere safe."
    )
    listed = join(
        render('<code class="secret recovery-code">{0}</code>\n', code)
        for code in codes
    )
    body = join(
        [
            render("<p>{0}</p>\n", intro),
            listed,
            _form(action, csrf, Html(""), "I have saved it"),
        ]
    )
    return page("Save your recovery code", body, tenant=tenant)


def error_page(*, tenant: str, title: str, message: str) -> Html:
    """A page that explains why the sign-in cannot go on."""
    body = render('<p class="error" id="error" role="alert">{0}</p>\n', message)
    return page(title, body, tenant=tenant)

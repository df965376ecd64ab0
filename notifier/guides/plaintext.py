"""Guide text as owners get it: plain text, links checked against an allow-list. Pure.

Guides are Markdown that any agent may edit through the API, and owners read them in e-mail
and chat apps that show HTML or Markdown. Forewarn sends plain text (Apprise's
``body_format=text``, so a service that shows HTML gets it escaped), and the guide's own
Markdown is read here with markdown-it-py and written out as text: emphasis and code lose
their marks, raw HTML tags are dropped (their text is kept), an image is its alt text, and a
link keeps its text, followed by its address only when that is an https address on an
allowed host. Addresses written out in the text are checked the same way, after the
placeholders are filled, so a device's model or firmware string cannot bring one in either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

REMOVED = "[link removed]"
# What a mail client or chat app would turn into a link by itself.
_BARE_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"'()]+")
_md = MarkdownIt("commonmark")


def allowed(url: str, hosts: Sequence[str]) -> bool:
    """Whether `url` is https on one of `hosts` (``.example.com`` also takes subdomains)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    return any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)


def markdown_to_text(markdown: str, *, hosts: Sequence[str]) -> str:
    """One guide field (paragraphs separated by blank lines) as plain text."""
    paragraphs = [p for p in re.split(r"\n\s*\n", markdown) if p.strip()]
    return "\n\n".join(_inline(p, hosts) for p in paragraphs)


def check_links(text: str, *, hosts: Sequence[str]) -> str:
    """`text` with every address not on an allowed https host replaced by a note."""

    def keep(found: re.Match[str]) -> str:
        url = found.group(0).rstrip(".,;:!?")
        tail = found.group(0)[len(url) :]
        return (url if allowed(url, hosts) else REMOVED) + tail

    return _BARE_URL.sub(keep, text)


def _inline(paragraph: str, hosts: Sequence[str]) -> str:
    tokens = _md.parseInline(paragraph.strip())
    out: list[str] = []
    for token in tokens:
        out.append(_text(token.children or [], hosts))
    return "".join(out).strip()


def _text(children: Sequence[Token], hosts: Sequence[str]) -> str:
    out: list[str] = []
    href: str | None = None
    label: list[str] = []
    for token in children:
        kind = token.type
        piece = ""
        if kind in ("text", "code_inline"):
            piece = token.content
        elif kind == "softbreak":
            piece = " "
        elif kind == "hardbreak":
            piece = "\n"
        elif kind == "image":
            piece = token.content or ""
        elif kind == "link_open":
            href = str(token.attrs.get("href", ""))
            label = []
            continue
        elif kind == "link_close":
            text = "".join(label).strip()
            target = href or ""
            if allowed(target, hosts):
                out.append(target if text in ("", target) else f"{text} ({target})")
            else:
                out.append(text if text and not _BARE_URL.fullmatch(text) else REMOVED)
            href = None
            continue
        # html_inline (raw tags), emphasis and strong marks: nothing of their own.
        if href is not None:
            label.append(piece)
        else:
            out.append(piece)
    return "".join(out)

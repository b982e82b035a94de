"""Email as every slice writes it: one layout (a Letter), both a text and an HTML part, money
and times as people read them, in the shop's language (ko or en), and the port that sends it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from cancelflow.kernel.clock import KST

LANGUAGES = ("ko", "en")


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str  # the text part
    html: str = ""  # the HTML part: sent together as multipart/alternative


def mask_email(email: str) -> str:
    """An address as lists and log lines show it: enough to recognise, not to write to."""
    name, _, domain = email.partition("@")
    return f"{name[:2]}***@{domain}"


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


@dataclass(frozen=True)
class Letter:
    """What an email says, in the one layout: a heading, paragraphs, a table of facts (label,
    value), closing paragraphs and the shop's footer. Values are plain text: the HTML part
    escapes them, so nothing a buyer or a shop typed can become markup."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    closing: tuple[str, ...] = ()
    footer: str = ""

    def to(self, address: str, subject: str) -> Email:
        return Email(address, subject, self.text(), self.html())

    def text(self) -> str:
        blocks = [self.heading, *self.paragraphs]
        if self.facts:
            blocks.append("\n".join(f"{label}: {value}" for label, value in self.facts))
        blocks += [*self.closing, self.footer]
        return "\n\n".join(b for b in blocks if b) + "\n"

    def html(self) -> str:
        e = html.escape
        rows = "".join(
            f'<tr><th style="text-align:left;padding:4px 16px 4px 0;color:#555;'
            f'font-weight:normal">{e(label)}</th><td style="padding:4px 0">{e(value)}</td></tr>'
            for label, value in self.facts
        )
        paragraphs = "".join(f"<p>{e(p)}</p>" for p in self.paragraphs)
        closing = "".join(f"<p>{e(p)}</p>" for p in self.closing)
        footer = f'<p style="color:#777;font-size:13px">{e(self.footer)}</p>' if self.footer else ""
        table = f'<table style="border-collapse:collapse">{rows}</table>' if rows else ""
        return (
            '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;'
            f'color:#222;max-width:560px"><h2 style="font-size:18px">{e(self.heading)}</h2>'
            f"{paragraphs}{table}{closing}{footer}</body></html>"
        )


def language(lang: str) -> str:
    return lang if lang in LANGUAGES else "ko"


def won(amount: int, lang: str) -> str:
    return f"{amount:,}원" if lang == "ko" else f"KRW {amount:,}"


def moment_text(moment: datetime, lang: str) -> str:
    """A time as the customer reads it: Korea's clock, to the minute."""
    t = moment.astimezone(KST)
    if lang == "ko":
        return f"{t.year}년 {t.month}월 {t.day}일 {t.hour:02d}:{t.minute:02d} (한국 시간)"
    return f"{t.day} {t:%b} {t.year}, {t.hour:02d}:{t.minute:02d} KST"


def day_text(day: date, lang: str) -> str:
    return (
        f"{day.year}년 {day.month}월 {day.day}일"
        if lang == "ko"
        else f"{day.day} {day:%b} {day.year}"
    )

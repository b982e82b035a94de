"""An email as every slice writes it, the port that sends it, and money as people read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


def won(amount: int, lang: str) -> str:
    return f"{amount:,}원" if lang == "ko" else f"KRW {amount:,}"

"""What the webhook endpoints API accepts (pydantic; only the webhooks API function imports it)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Url = Annotated[str, Field(min_length=8, max_length=2000, description="https://… (public)")]
EventTypes = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=20,
        description="event types to receive, e.g. cancellation.succeeded",
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EndpointIn(Strict):
    """A URL of the shop's server that receives signed events."""

    url: Url
    events: EventTypes
    description: Annotated[str, Field(max_length=200)] = ""


class EndpointPatch(Strict):
    """Change an endpoint: only the fields named change (`enabled` turns it on or off)."""

    enabled: bool | None = None
    url: Url | None = None
    events: EventTypes | None = None
    description: Annotated[str | None, Field(max_length=200)] = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)

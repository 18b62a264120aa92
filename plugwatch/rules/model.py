"""The rule schema: what a rule file may say, validated by pydantic (unknown keys are errors)."""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from plugwatch.config.durations import parse_duration
from plugwatch.model import State

Duration = Annotated[float, BeforeValidator(parse_duration)]

DEFAULT_TITLE = "{{ plug }}: {{ from }} -> {{ to }}"
DEFAULT_BODY = (
    "{{ plug }} is {{ to }} since {{ at | time }} (was {{ from }} for {{ from_duration }})."
    "{% if run %} Ran {{ run.duration }}, used {{ run.energy_wh | energy }}"
    "{% if run.cost is not none %}, {{ run.cost | money }}{% endif %},"
    " peak {{ run.peak_w | round | int }} W.{% endif %}"
)
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _one_or_list(value: Any) -> Any:
    """Accept one item or a list of items."""
    return [value] if isinstance(value, str) else value


def _state_name(value: Any) -> Any:
    # YAML 1.1 reads unquoted on/off as booleans: a state can never be a bool, so map them back.
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


def _states(value: Any) -> Any:
    """Accept one state or a list of states (unquoted YAML on/off included)."""
    value = _state_name(value)
    return [value] if isinstance(value, str) else [_state_name(v) for v in value]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TagSelector(_Strict):
    """`plugs: {tags: [laundry]}`: every plug carrying at least one of these tags."""

    tags: list[str] = Field(min_length=1)


class When(_Strict):
    """The transition that triggers a rule."""

    from_: Annotated[list[State] | None, BeforeValidator(_states)] = Field(None, alias="from")
    to: Annotated[list[State], BeforeValidator(_states)] = Field(min_length=1)
    min_duration: Duration = 0.0  # minimum time spent in the `from` state

    def matches(self, from_state: State, to_state: State) -> bool:
        """True when a from_state -> to_state transition fits this trigger."""
        return to_state in self.to and (self.from_ is None or from_state in self.from_)


class QuietHours(_Strict):
    """A daily window (local time of `tz`) during which alerts are deferred or dropped."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    action: Literal["defer", "drop"] = "defer"
    tz: str | None = None  # IANA name; None = the machine's zone, resolved when rules are loaded

    @field_validator("start", "end", mode="before")
    @classmethod
    def _sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 22:00 as the base-60 integer 1320: turn it back into HH:MM.
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(str(value)):
            raise ValueError(f"invalid time {value!r} (use HH:MM, e.g. 22:00)")
        return str(value)

    def minutes(self, which: str) -> int:
        """Minutes after midnight of `start` or `end`."""
        hours, mins = getattr(self, which).split(":")
        return int(hours) * 60 + int(mins)


class Rule(_Strict):
    """One rule: when a selected plug makes a matching transition, notify targets."""

    name: str = Field(min_length=1)
    plugs: Annotated[list[str] | TagSelector, BeforeValidator(_one_or_list)] = ["*"]
    when: When
    for_: Duration = Field(0.0, alias="for")
    repeat: Duration | None = None
    max_repeats: int | None = Field(None, ge=0)
    notify: Annotated[list[str], BeforeValidator(_one_or_list)] = Field(min_length=1)
    title: str = DEFAULT_TITLE
    body: str = DEFAULT_BODY
    cooldown: Duration = 0.0
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _repeat_positive(self) -> Rule:
        if self.repeat is not None and self.repeat <= 0:
            raise ValueError("repeat must be longer than 0s (or leave it out)")
        if self.max_repeats is not None and self.repeat is None:
            raise ValueError("max_repeats needs repeat (e.g. repeat: 1h)")
        return self

    def selects(self, plug: str, tags: frozenset[str] | set[str] = frozenset()) -> bool:
        """True when this rule applies to `plug` (carrying `tags`)."""
        if isinstance(self.plugs, TagSelector):
            return any(tag in tags for tag in self.plugs.tags)
        return any(fnmatch.fnmatchcase(plug, pattern) for pattern in self.plugs)

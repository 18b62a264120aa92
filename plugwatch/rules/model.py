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


def _percent(value: Any) -> Any:
    """60, 60.5 or "60%" -> the number of percent."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return value.strip()[:-1].strip()
    return value


Percent = Annotated[float, BeforeValidator(_percent), Field(gt=0, lt=100)]


def _positive(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0s, got {value!r}")
    return seconds


PositiveDuration = Annotated[float, BeforeValidator(_positive)]


class DutyCycle(_Strict):
    """`duty_cycle: {above: 60%, over: 6h}`: on for more than this share of the last `over`."""

    above: Percent
    over: PositiveDuration

    @property
    def check_every(self) -> float:
        """How often the share is worked out again: 1/60 of the window, 10 s to 5 min."""
        return min(300.0, max(10.0, self.over / 60))


class UnusualRun(_Strict):
    """`unusual_run: {by: energy}`: a run far outside the spread of the plug's last runs."""

    by: Literal["energy", "duration"] = "energy"
    last: int = Field(10, ge=3, le=1000)  # how many earlier runs make "usual"
    spread: float = Field(3.0, gt=0)  # how many (robust) standard deviations count as unusual
    min_runs: int = Field(5, ge=2)  # no verdict before this many earlier runs


class When(_Strict):
    """What triggers a rule: a transition (`to`, `from`), or one condition."""

    from_: Annotated[list[State] | None, BeforeValidator(_states)] = Field(None, alias="from")
    to: Annotated[list[State] | None, BeforeValidator(_states), Field(min_length=1)] = None
    min_duration: Duration = 0.0  # minimum time spent in the `from` state
    duty_cycle: DutyCycle | None = None
    no_run_for: PositiveDuration | None = None
    unusual_run: UnusualRun | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> When:
        kinds = [k for k in ("to", "duty_cycle", "no_run_for", "unusual_run")
                 if getattr(self, k) is not None]
        if not kinds:
            raise ValueError("say what triggers the rule: `to:` (a state), `duty_cycle:`, "
                             "`no_run_for:` or `unusual_run:`")
        if len(kinds) > 1 and kinds != ["to", "unusual_run"]:
            raise ValueError(f"one trigger per rule: {' and '.join(kinds)} given "
                             "(write two rules)")
        if (self.from_ is not None or self.min_duration) and kinds[0] not in (
                "to", "unusual_run"):
            raise ValueError(f"`from` and `min_duration` go with `to:`, not `{kinds[0]}:`")
        return self

    @property
    def kind(self) -> str:
        """"transition", "duty_cycle", "no_run_for" or "unusual_run"."""
        for name in ("unusual_run", "duty_cycle", "no_run_for"):
            if getattr(self, name) is not None:
                return name
        return "transition"

    @property
    def states(self) -> list[State]:
        """The states in which an alert of this rule stays active (leaving them resolves it)."""
        if self.to is not None:
            return self.to
        if self.unusual_run is not None:
            return [State.STANDBY, State.OFF]
        return [s for s in State if s is not State.ON] if self.no_run_for else list(State)

    def matches(self, from_state: State, to_state: State) -> bool:
        """True when a from_state -> to_state transition triggers this rule."""
        if self.kind == "unusual_run":
            return from_state is State.ON and to_state in self.states
        return (self.to is not None and to_state in self.to
                and (self.from_ is None or from_state in self.from_))


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


def _unless(value: Any) -> Any:
    items = [value] if isinstance(value, str | dict) else value
    return [{"rule": v} if isinstance(v, str) else v for v in items] if isinstance(
        items, list) else items


class Unless(_Strict):
    """`unless: other-rule`: no alert while an alert of that rule is active (inhibition)."""

    rule: str = Field(min_length=1)
    same_plug: bool = True  # only an alert of the same plug inhibits (false: of any plug)


class TargetText(_Strict):
    """One entry of `notify:` with its own text: `{target: mail, title: ..., body: ...}`."""

    target: str = Field(min_length=1)
    title: str | None = None
    body: str | None = None


# The default texts of condition rules (transition rules: DEFAULT_TITLE / DEFAULT_BODY).
DEFAULT_TEXTS = {
    "duty_cycle": ("{{ plug }} runs {{ duty.percent }} % of the time",
                   "{{ plug }} was on {{ duty.percent }} % of the last {{ duty.over }} "
                   "(more than {{ duty.above }} %)."),
    "no_run_for": ("{{ plug }} has not run for {{ duration }}",
                   "{{ plug }} last ran {{ last_run | time }} ({{ duration }} ago)."),
    "unusual_run": ("{{ plug }}: unusual run",
                    "Ran {{ run.duration }}, used {{ run.energy_wh | energy }}; its usual "
                    "{{ usual.by }} is {{ usual.text }} (last {{ usual.runs }} runs)."),
}
DEFAULT_GROUP_TITLE = "{{ count }} plugs {{ to }}: {{ plugs | join(', ') }}"
DEFAULT_GROUP_BODY = "{% for a in alerts %}{{ a.title }}\n{% endfor %}"


class Rule(_Strict):
    """One rule: when a selected plug makes a matching transition, notify targets."""

    name: str = Field(min_length=1)
    plugs: Annotated[list[str] | TagSelector, BeforeValidator(_one_or_list)] = ["*"]
    when: When
    for_: Duration = Field(0.0, alias="for")
    repeat: Duration | None = None
    max_repeats: int | None = Field(None, ge=0)
    ack_when: Annotated[list[State] | None, BeforeValidator(_states)] = None
    notify: Annotated[list[str | TargetText], BeforeValidator(_one_or_list)] = Field(
        min_length=1)
    title: str = DEFAULT_TITLE
    body: str = DEFAULT_BODY
    cooldown: Duration = 0.0
    quiet_hours: QuietHours | None = None
    unless: Annotated[list[Unless], BeforeValidator(_unless)] = Field(default_factory=list)
    group_by: Literal["plug", "rule", "tag"] = "plug"
    group_wait: Duration | None = None
    group_title: str = DEFAULT_GROUP_TITLE
    group_body: str = DEFAULT_GROUP_BODY

    @model_validator(mode="before")
    @classmethod
    def _texts_for_the_trigger(cls, data: Any) -> Any:
        """A condition rule without its own title/body gets texts that fit its condition."""
        when = data.get("when") if isinstance(data, dict) else None
        if isinstance(when, dict):
            kind = next((k for k in DEFAULT_TEXTS if k in when), None)
            if kind is not None:
                data = {**data}
                data.setdefault("title", DEFAULT_TEXTS[kind][0])
                data.setdefault("body", DEFAULT_TEXTS[kind][1])
        return data

    @model_validator(mode="after")
    def _repeat_positive(self) -> Rule:
        if self.repeat is not None and self.repeat <= 0:
            raise ValueError("repeat must be longer than 0s (or leave it out)")
        if self.max_repeats is not None and self.repeat is None:
            raise ValueError("max_repeats needs repeat (e.g. repeat: 1h)")
        if self.ack_when is not None and self.repeat is None:
            raise ValueError("ack_when needs repeat (it stops the reminders)")
        if self.group_wait is not None and self.group_by == "plug":
            raise ValueError("group_wait needs group_by: rule or tag")
        if any(u.rule == self.name for u in self.unless):
            raise ValueError("unless: a rule cannot inhibit itself")
        return self

    @property
    def targets(self) -> list[str]:
        """The target names of `notify`."""
        return [t if isinstance(t, str) else t.target for t in self.notify]

    def texts(self, target: str) -> tuple[str, str]:
        """(title, body) templates for `target`: its own from `notify`, else the rule's."""
        for entry in self.notify:
            if isinstance(entry, TargetText) and entry.target == target:
                return entry.title or self.title, entry.body or self.body
        return self.title, self.body

    @property
    def wait(self) -> float:
        """How long a new group collects alerts before its message goes (0: no grouping)."""
        if self.group_by == "plug":
            return 0.0
        return 30.0 if self.group_wait is None else self.group_wait

    def selects(self, plug: str, tags: frozenset[str] | set[str] = frozenset()) -> bool:
        """True when this rule applies to `plug` (carrying `tags`)."""
        if isinstance(self.plugs, TagSelector):
            return any(tag in tags for tag in self.plugs.tags)
        return any(fnmatch.fnmatchcase(plug, pattern) for pattern in self.plugs)

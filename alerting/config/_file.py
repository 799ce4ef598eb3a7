"""The sections of ``routes.yaml`` as pydantic models: what each may say.

Unknown keys are refused everywhere (a typo is an error, not a silently ignored setting).
Checks across the entries of one list — a ladder's order, duplicate ids — run once its entries
are valid. The route tree's own rules (inheritance, receiver references, reachability) need the
whole tree and are checked as it is built (:mod:`alerting.config._tree`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerting.config._values import (
    Channels,
    Duration,
    GroupBy,
    LabelNames,
    Level,
    MatcherList,
    Phone,
    Roles,
    SeverityName,
    StopWhenValue,
    StrictBool,
    Texts,
    TimerFactor,
    Timestamp,
    list_of,
    mapping_or_empty,
    rewrite,
)
from hazmon.contracts import NoticeLevel, RecipientRole, Severity
from hazmon.datafile import refuse

__all__ = [
    "RoutesFile",
    "RouteSpec",
    "ReceiverSpec",
    "DutyOperatorSpec",
    "InhibitRuleSpec",
    "StepSpec",
    "KeyPeriodSpec",
    "QuietHoursSpec",
    "SmsSpec",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _refuse_deprecated(value: Any, new: str, op: str) -> Any:
    """Alertmanager's DEPRECATED ``match``/``match_re`` forms: refused, with the rewrite."""
    raise ValueError(f"the deprecated Alertmanager form is not supported; write {rewrite(value, op, new)}")


_OLD = "Alertmanager's deprecated form, refused with the rewrite"


class ReceiverSpec(_Spec):
    """Who is told first and how: matrix roles × channels."""

    roles: Roles = Field(default=(), validate_default=True)
    channels: Channels = ("sms", "console")
    send_resolved: bool = False
    webhook_url: str = Field(default="", validate_default=True)

    @field_validator("roles")
    @classmethod
    def _some_role(cls, roles: tuple[RecipientRole, ...]) -> tuple[RecipientRole, ...]:
        if not roles:
            raise ValueError("a receiver needs at least one role")
        return roles

    @field_validator("webhook_url")
    @classmethod
    def _url_for_webhook(cls, url: str, info: ValidationInfo) -> str:
        if not url and "webhook" in info.data.get("channels", ()):
            raise ValueError("the webhook channel needs a URL")
        return url


class DutyOperatorSpec(_Spec):
    """The centre's 24-hour duty operator (中心值班员): receives what nobody else does."""

    name: str = "中心值班员"
    unit: str = "区应急指挥中心"
    phone: Phone = None


def _clock_time(value: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 22:00 as 1320
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"a time of day in Beijing time, e.g. \"22:00\" (got {value!r})")


class QuietHoursSpec(_Spec):
    """夜间免扰: from ``from`` to ``to`` (Beijing time; spanning midnight when ``from`` is later),
    only the ``keep`` severities go out by SMS or voice; the rest wait for the morning digest."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Annotated[time, BeforeValidator(_clock_time)] = Field(alias="from")
    end: Annotated[time, BeforeValidator(_clock_time)] = Field(alias="to")
    keep: tuple[SeverityName, ...] = (Severity.RED, Severity.ORANGE)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, end: time, info: ValidationInfo) -> time:
        if info.data.get("start") == end:
            raise ValueError("must differ from 'from' (an empty window holds nothing)")
        return end


class RouteSpec(_Spec):
    """One node of the route tree as written; ``routes`` (its children) are validated one by one
    as the tree is built, each inheriting what it does not set from this node."""

    name: str | None = None
    matchers: MatcherList = ()
    receiver: str | None = None
    group_by: GroupBy | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    #: a red alarm not acknowledged this long after it started: its recipients are called by
    #: voice (语音通知); only this route, not inherited
    voice_after: Duration | None = None
    #: whom a recipient's acknowledgement stops the reminders to: recipient | unit | all
    #: (alerting/ack_stops.py; inherited, default unit)
    ack_stops: Literal["recipient", "unit", "all"] | None = None
    #: 夜间免扰 (alerting/quiet.py; inherited): ``{from: "22:00", to: "07:00", keep: [red, orange]}``,
    #: or ``false`` to turn a parent's off for this route and its children
    quiet_hours: QuietHoursSpec | Literal[False] | None = None
    continue_: StrictBool = Field(default=False, alias="continue")
    routes: Annotated[tuple[Any, ...], list_of("routes")] = ()
    match: Any = Field(default=None, deprecated=_OLD)
    match_re: Any = Field(default=None, deprecated=_OLD)

    @field_validator("match", "match_re")
    @classmethod
    def _deprecated(cls, value: Any, info: ValidationInfo) -> Any:
        return _refuse_deprecated(value, "matchers", "=~" if info.field_name == "match_re" else "=")


class InhibitRuleSpec(_Spec):
    """A root-cause alarm (source) mutes the symptoms it explains (target) where ``equal`` agree."""

    name: str | None = None
    source_matchers: MatcherList = Field(default=(), validate_default=True)
    target_matchers: MatcherList = Field(default=(), validate_default=True)
    equal: LabelNames = Field(default=(), validate_default=True)
    source_match: Any = Field(default=None, deprecated=_OLD)
    source_match_re: Any = Field(default=None, deprecated=_OLD)
    target_match: Any = Field(default=None, deprecated=_OLD)
    target_match_re: Any = Field(default=None, deprecated=_OLD)

    @field_validator("source_matchers", "target_matchers", "equal")
    @classmethod
    def _required(cls, value: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        if not value:
            raise ValueError({
                "source_matchers": "required (which alerts are the cause)",
                "target_matchers": "required (which alerts they mute)",
                "equal": "required: without equal labels one alarm anywhere would mute alarms everywhere",
            }[str(info.field_name)])
        return value

    @field_validator("source_match", "source_match_re", "target_match", "target_match_re")
    @classmethod
    def _deprecated(cls, value: Any, info: ValidationInfo) -> Any:
        name = str(info.field_name)
        side = name.split("_", 1)[0]
        return _refuse_deprecated(value, f"{side}_matchers", "=~" if name.endswith("_re") else "=")


class StepSpec(_Spec):
    """One notice of a ladder (四单): which level, how long after the alarm started, to whom."""

    level: Level
    after: Duration
    roles: Roles = Field(default=(), validate_default=True)
    stop_when: StopWhenValue = "acknowledged"
    deadline: Duration | None = None

    @field_validator("roles")
    @classmethod
    def _some_role(cls, roles: tuple[RecipientRole, ...]) -> tuple[RecipientRole, ...]:
        if not roles:
            raise ValueError("a notice needs at least one role")
        return roles

    @model_validator(mode="after")
    def _addressed_to_units(self) -> StepSpec:
        """四单 are the 区安委办's documents to the units that failed to act (seed 000): a
        business or a 维保单位 gets alarms and reminders, never a notice addressed to a government;
        the 问责建议单 is a recommendation about the townships and departments, to the leaders."""
        allowed = _RECORD_ROLES if self.level is NoticeLevel.ACCOUNTABILITY else _UNIT_ROLES
        refuse(((("roles", i), f"{self.level.zh} is not addressed to {role.value}: "
                 f"{_WHY[self.level is NoticeLevel.ACCOUNTABILITY]} (allowed: "
                 f"{', '.join(r.value for r in allowed)})")
                for i, role in enumerate(self.roles) if role not in allowed))
        return self


#: who a notice of the first three levels is addressed to: 属地 and 行业监管 (the centre's duty desk
#: keeps a copy); who reads the 问责建议单: the responsible and 包保 leaders, the duty desk
_UNIT_ROLES = (RecipientRole.TOWNSHIP, RecipientRole.GRID_MEMBER, RecipientRole.DEPARTMENT,
               RecipientRole.DUTY_OPERATOR)
_RECORD_ROLES = (RecipientRole.LEADER, RecipientRole.COVERING_LEADER, RecipientRole.DUTY_OPERATOR)
_WHY = {False: "the 区安委办 issues it to townships and departments; a business gets the alarm and its "
               "reminders (receivers, repeat_interval), a leader the 问责建议单",
        True: "it is an internal recommendation about the units that failed to act, to the leaders "
              "who decide 问责"}


def _climbing(steps: tuple[StepSpec, ...]) -> tuple[StepSpec, ...]:
    found: list[tuple[Any, str]] = []
    for i in range(1, len(steps)):
        before, step = steps[i - 1], steps[i]
        if step.after <= before.after:
            found.append(((i, "after"), "steps must come later than the step before"))
        if step.level.step <= before.level.step:
            found.append(((i, "level"), "levels must climb: "
                                        "工作提醒单 → 风险警示单 → 问题督办单 → 问责建议单"))
    refuse(found)
    return steps


#: the steps of one severity, climbing (``null`` is refused: it would silently never escalate)
Ladder = Annotated[tuple[StepSpec, ...], list_of("steps", null=False), AfterValidator(_climbing)]


class KeyPeriodSpec(_Spec):
    """重点时段: timers × ``timer_factor`` for alarms starting inside."""

    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    kind: str = "other"
    starts_at: Timestamp
    ends_at: Timestamp
    timer_factor: TimerFactor = 0.5
    domains: Texts = ()
    township_ids: Texts = ()

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            raise ValueError("must be after starts_at")
        return ends_at


def _unique_ids(periods: tuple[KeyPeriodSpec, ...]) -> tuple[KeyPeriodSpec, ...]:
    seen = [p.id for p in periods]
    refuse(((i, "id"), f"duplicate id {pid!r}") for i, pid in enumerate(seen) if pid in seen[:i])
    return periods


class SmsSpec(_Spec):
    max_segments: int = 3  # 70 字/条 (UCS-2); a longer text is cut to fit

    @field_validator("max_segments", mode="plain")
    @classmethod
    def _segments(cls, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
            raise ValueError("must be an integer 1..10")
        return value


_ISSUER = r"^[^\s{}【】\[\]]+$"  # a name: no spaces, braces or brackets (a signature's 【】)


class RoutesFile(_Spec):
    """``routes.yaml``. ``route`` is the root :class:`RouteSpec`, built into the tree by
    :func:`parse_config`; every other section is checked here."""

    duty_operator: DutyOperatorSpec = Field(default=None, validate_default=True)
    #: in whose name the 四单 are issued (seed 000: 由区安委办向各街道、区各有关部门下发); a template
    #: variable never cut, so at most 12 characters (腾讯云's cap)
    notice_issuer: Annotated[str, Field(min_length=2, max_length=12, pattern=_ISSUER)] = "区安委办"
    sms: Annotated[SmsSpec, mapping_or_empty("must be a mapping")] = SmsSpec()
    receivers: dict[str, ReceiverSpec] = Field(default=None, validate_default=True)
    route: Any = None
    inhibit_rules: Annotated[tuple[InhibitRuleSpec, ...], list_of("inhibit rules")] = ()
    escalation: Annotated[
        dict[SeverityName, Ladder],
        mapping_or_empty("must map a severity (red, orange, yellow, blue) to a list of steps"),
    ] = Field(default_factory=dict)
    key_periods: Annotated[
        tuple[KeyPeriodSpec, ...], list_of("key periods"), AfterValidator(_unique_ids)
    ] = ()

    @field_validator("duty_operator", mode="before")
    @classmethod
    def _duty_present(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("missing: the centre's duty operator (name, phone) receives what nobody else "
                             "does")
        return value

    @field_validator("receivers", mode="before")
    @classmethod
    def _receivers_present(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not value:
            raise ValueError("missing: name at least one receiver (roles and channels)")
        return value

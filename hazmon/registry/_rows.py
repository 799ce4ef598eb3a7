"""Row models of the registry file format: one pydantic model per table, validating ONE row.

Cross-row checks (references, duplicates, the matrix covering every domain) live in
:mod:`hazmon.registry._check`; this module only knows what a single row must look like, so its
validators are pure and property-testable. Phone rules follow what the notifier can reach:
SMS recipients (business contacts, 网格员, leaders) need a mainland mobile number
``1[3-9]xxxxxxxxx``; 24-hour duty lines (township, department) may also be landlines such as
``0571-87654321``.

Channels (触达渠道) of a township's or department's 24-hour duty room: ``duty_phone`` (the duty
line; a mobile gets SMS, a landline a voice call), ``duty_mobile`` (a duty mobile beside the
landline, SMS), and optionally a group robot (``robot``: ``wecom`` 企业微信群机器人 or
``dingtalk`` 钉钉自定义机器人, its ``robot_url`` and, for 钉钉 加签, ``robot_secret``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from hazmon.datafile import problems
from hazmon.registry._values import normalize_mobile, normalize_phone, parse_bool, parse_date
from hazmon.registry._values import split_list as _split_list

__all__ = [
    "TABLES",
    "TableSpec",
    "DomainRow",
    "TownshipRow",
    "VillageRow",
    "DepartmentRow",
    "LeaderRow",
    "VendorRow",
    "SiteRow",
    "ContactRow",
    "DeviceRow",
    "MatrixRow",
    "MaintainerRow",
    "ComponentRow",
    "KNOWN_ADAPTERS",
    "normalize_mobile",
    "normalize_phone",
    "parse_bool",
    "parse_date",
    "validate_row",
    "RESERVED_MQTT_PREFIX",
    "no_control_characters",
    "vendor_id",
    "mqtt_username",
    "ROBOT_CHANNELS",
]

#: Payload adapters the ingest stage ships, the one list of them: ingest's adapter registry
#: (``ingest/adapters/__init__.py``) loads ``ingest.adapters.<name>`` for each, and
#: tests/ingest/test_adapter_registry.py fails when a module there is not named here. It lives
#: in the spine because the registry import checks vendors against it and must not import a
#: stage. A vendor naming another adapter only gets a warning (one may be added after the
#: registry is loaded).
KNOWN_ADAPTERS: frozenset[str] = frozenset(
    {"gasjson", "elevator_json", "gbt26875", "firejson", "senml", "hazmon_json"}
)


def _need_department(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("at least one department required (三管三必须: every domain needs a regulator)")
    return value


#: group-robot channels a unit may have (the notifier names: alerting/notify/robot_*.py)
ROBOT_CHANNELS: tuple[str, ...] = ("wecom", "dingtalk")


def _robot_channel(value: str) -> str:
    if value not in ROBOT_CHANNELS:
        raise ValueError(f"unknown channel {value!r} (expected {' or '.join(ROBOT_CHANNELS)})")
    return value


def _robot_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value) or len(value) > 500:
        raise ValueError(f"invalid robot webhook URL {value!r} (expected https://…)")
    return value


def _check_robot(row: Any) -> Any:
    """A robot needs its webhook URL; a URL or secret needs the robot it belongs to."""
    if row.robot and not row.robot_url:
        raise ValueError(f"robot_url: required for robot {row.robot!r}")
    if not row.robot and (row.robot_url or row.robot_secret):
        raise ValueError("robot: required when robot_url or robot_secret is given (wecom or dingtalk)")
    return row


def _in_range(low: float, high: float) -> Any:
    def check(value: float | None) -> float | None:
        if value is not None and not (low <= value <= high):
            raise ValueError(f"{value:g} out of range [{low:g}, {high:g}]")
        return value

    return check


#: Project MQTT accounts and the bridges' client ids start with this (hazmon.stack.mosquitto):
#: a vendor account must never be able to log in as, or take the client id of, one of them.
RESERVED_MQTT_PREFIX = "hazmon-"
_VENDOR_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_MQTT_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def no_control_characters(value: str) -> str:
    """Text written into generated files (a vendor's name is a comment line of the MQTT ACL):
    no line breaks, tabs or other control characters (a newline once wrote an ACL line)."""
    m = _CONTROL.search(value)
    if m:
        raise ValueError(f"control character U+{ord(m.group()):04X} not allowed")
    return value


def vendor_id(value: str) -> str:
    """A vendor id is an MQTT topic level (``hazmon/v1/{vendor}/…``) and an ACL token."""
    if not _VENDOR_ID.fullmatch(value):
        raise ValueError(f"invalid identifier {value!r} (lower-case letters, digits, '-' and '_' only)")
    return value


def mqtt_username(value: str) -> str:
    """An MQTT account of the password file and the ACL; on the vendor listener also the
    client id (``use_username_as_clientid``), so the project's prefix is reserved."""
    if not _MQTT_USER.fullmatch(value):
        raise ValueError(f"invalid MQTT user name {value!r} (letters, digits, '.', '-' and '_' only)")
    if value.lower().startswith(RESERVED_MQTT_PREFIX):
        raise ValueError(f"{value!r} is reserved: {RESERVED_MQTT_PREFIX!r} names the project's own accounts")
    return value


Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
DomainName = Annotated[str, StringConstraints(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: a vendor's name is written (as a comment) into the generated MQTT ACL
VendorName = Annotated[Text, AfterValidator(no_control_characters)]
Mobile = Annotated[str, AfterValidator(normalize_mobile)]
Phone = Annotated[str, AfterValidator(normalize_phone)]
Bool = Annotated[bool, BeforeValidator(parse_bool)]
RobotChannel = Annotated[str, AfterValidator(_robot_channel)]
RobotUrl = Annotated[str, AfterValidator(_robot_url)]
Day = Annotated[date, BeforeValidator(parse_date)]
IdList = Annotated[list[Ident], BeforeValidator(_split_list)]
TextList = Annotated[list[Text], BeforeValidator(_split_list)]
Lon = Annotated[float | None, AfterValidator(_in_range(-180.0, 180.0))]
Lat = Annotated[float | None, AfterValidator(_in_range(-90.0, 90.0))]
#: GB/T 26875.3 §8.2 fields: a byte (系统类型, 系统地址, 部件类型), half the u32 部件地址 (回路, 点位)
Byte = Annotated[int, AfterValidator(_in_range(0, 255))]
Half = Annotated[int, AfterValidator(_in_range(0, 65535))]


class _Row(BaseModel):
    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True, frozen=True
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        # an empty CSV cell (or YAML null) means "not given": the default applies, or "required"
        if isinstance(data, dict):
            return {
                k: v for k, v in data.items() if v is not None and not (isinstance(v, str) and not v.strip())
            }
        return data


class DomainRow(_Row):
    name: DomainName
    name_zh: Text
    default_interval_s: int = Field(default=60, gt=0, le=7 * 86400)


class TownshipRow(_Row):
    """镇/街道 and its 24-hour duty contact (24小时值班)."""

    id: Ident
    name: Text
    kind: Literal["镇", "街道", "乡", "园区"] = "镇"
    duty_name: Text
    duty_phone: Phone
    duty_mobile: Mobile | None = None
    robot: RobotChannel | None = None
    robot_url: RobotUrl | None = None
    robot_secret: Annotated[str, StringConstraints(max_length=200)] | None = None

    _robot = model_validator(mode="after")(_check_robot)


class VillageRow(_Row):
    """村/社区 and its grid member (网格员), reached by SMS."""

    id: Ident
    township_id: Ident
    name: Text
    kind: Literal["村", "社区"] = "社区"
    grid_member: Text
    grid_member_phone: Mobile


class DepartmentRow(_Row):
    id: Ident
    name: Text
    duty_name: str = ""
    duty_phone: Phone
    duty_mobile: Mobile | None = None
    robot: RobotChannel | None = None
    robot_url: RobotUrl | None = None
    robot_secret: Annotated[str, StringConstraints(max_length=200)] | None = None

    _robot = model_validator(mode="after")(_check_robot)


class LeaderRow(_Row):
    id: Ident
    name: Text
    title: str = ""
    phone: Mobile


class VendorRow(_Row):
    id: Annotated[str, AfterValidator(vendor_id)]
    name: VendorName
    adapter: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    mqtt_username: Annotated[str, AfterValidator(mqtt_username)]


class MaintainerRow(_Row):
    """电梯维保单位 (a lift maintenance company) and its 24-hour duty contact: trapped passengers
    and lift faults of the lifts it maintains reach it (TSG T5002: it arrives within 30 min)."""

    id: Ident
    name: Text
    duty_name: str = ""
    duty_phone: Phone
    duty_mobile: Mobile | None = None


class SiteRow(_Row):
    """A business premises (企业主体责任) in a township (属地), optionally a village."""

    id: Ident
    name: Text
    address: str = ""
    industry: str = ""
    site_class: Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9_]*$")] = ""
    township_id: Ident
    village_id: Ident | None = None
    lon: Lon = None
    lat: Lat = None
    gas_alarm_required: Bool = False
    critical: Bool = False
    covering_leader_id: Ident | None = None
    #: 人员密集程度 (people density class) for 企业风险分级 (data/risk_rules.yaml): 高 (人员密集场所:
    #: 商场、医院、学校、养老院 …), 中, 低; empty = not assessed
    density_class: Literal["", "高", "中", "低"] = ""

    @model_validator(mode="after")
    def _both_coordinates(self) -> SiteRow:
        if (self.lon is None) != (self.lat is None):
            missing = "lat" if self.lat is None else "lon"
            raise ValueError(f"{missing}: required when {'lon' if missing == 'lat' else 'lat'} is given")
        return self


class ContactRow(_Row):
    site_id: Ident
    name: Text
    role: str = "主要负责人"
    phone: Mobile


class DeviceRow(_Row):
    id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    ]
    vendor_id: Ident
    model: str = ""
    domain: DomainName
    site_id: Ident
    #: None → the domain's default_interval_s
    expected_interval_s: int | None = Field(default=None, gt=0, le=7 * 86400)
    installed_on: Day | None = None
    parent_id: Ident | None = None
    active: Bool = True
    #: 安装位置, what a text names the device by ("后厨灶台上方", "2号楼1单元 3号梯", "3F 东侧走廊")
    location: Annotated[str, StringConstraints(max_length=60), AfterValidator(no_control_characters)] = ""
    #: a lift's 特种设备注册代码 (20 digits on its 使用标志); empty for other devices
    reg_code: Annotated[str, StringConstraints(pattern=r"^([0-9]{20})?$")] = ""
    #: a lift's 维保单位 (maintainers.id); lifts only
    maintainer_id: Ident | None = None
    #: a canary device (监测链路探针, issue 20): ``hazmon canary`` publishes it every 10 s through
    #: the real path; the detectors never count it as business data, KPIs or device health
    is_canary: Bool = False


class ComponentRow(_Row):
    """A fire panel's 部件 by its GB/T 26875.3-2011 §8.2 部件地址 (系统类型, 系统地址, 部件类型, the u32
    address as 回路 high half and 点位 low half) and its 位置说明 ("3F 东侧走廊 感烟探测器")."""

    device_id: Ident
    sys_type: Byte
    sys_addr: Byte
    comp_type: Byte
    loop: Half
    point: Half
    description: Annotated[str, StringConstraints(max_length=60), AfterValidator(no_control_characters)] = ""


class MatrixRow(_Row):
    """责任矩阵 row: domain → department(s) (三管三必须) + 责任领导 + 专委会."""

    id: Ident
    domain: DomainName
    department_ids: Annotated[IdList, AfterValidator(_need_department)] = Field(
        default_factory=list, validate_default=True
    )
    leader_id: Ident | None = None
    committee: str = ""
    industries: TextList = []
    note: str = ""


@dataclass(frozen=True)
class TableSpec:
    """How a table appears in files and in PostgreSQL."""

    name: str  # PostgreSQL table
    stem: str  # CSV file stem and YAML key
    model: type[_Row]
    columns: tuple[str, ...]  # CSV column order == INSERT column order
    key: tuple[str, ...]  # primary key columns


def _spec(name: str, stem: str, model: type[_Row], key: tuple[str, ...] = ("id",)) -> TableSpec:
    return TableSpec(name, stem, model, tuple(model.model_fields), key)


_PART = ("device_id", "sys_type", "sys_addr", "comp_type", "loop", "point")

#: Tables in dependency order (load forwards, delete backwards).
TABLES: tuple[TableSpec, ...] = (
    _spec("domains", "domains", DomainRow, ("name",)),
    _spec("townships", "townships", TownshipRow),
    _spec("villages", "villages", VillageRow),
    _spec("departments", "departments", DepartmentRow),
    _spec("leaders", "leaders", LeaderRow),
    _spec("vendors", "vendors", VendorRow),
    _spec("maintainers", "maintainers", MaintainerRow),
    _spec("sites", "sites", SiteRow),
    _spec("site_contacts", "site_contacts", ContactRow, ("site_id", "phone")),
    _spec("devices", "devices", DeviceRow),
    _spec("matrix_rules", "matrix", MatrixRow),
    _spec("device_components", "components", ComponentRow, _PART),
)


def validate_row(model: type[_Row], data: dict[str, Any]) -> tuple[_Row | None, list[tuple[str, str]]]:
    """Validate one row: ``(row, [])`` or ``(None, [(field, problem), ...])`` — every problem."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [(field or "(row)", problem) for field, problem in problems(exc, model=model)]

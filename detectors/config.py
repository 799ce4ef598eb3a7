"""Detector thresholds: defaults per domain, overridden per site class and then per device model.

The file is data (``data/detectors.yaml``, ``HAZMON_DETECTORS_FILE``), validated at load with
errors that name the field. Resolution order, most specific last: ``defaults`` →
``site_classes[<site_class>]`` → ``models[<model>]``. Every default below names its source;
where a national standard gives a bound we sit inside it, where it is local practice we say so.

A ``site_classes`` key is matched against the registry's ``sites.site_class`` values, a vocabulary
the file cannot validate alone: :meth:`DetectorConfig.unused_site_classes` names every key no site
of the loaded registry uses (an ``elderly_care`` block never applied to the sample's
``elderly_home`` 养老院), file:line and key path, so the detector warns at start and on reload.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazmon.contracts import Severity
from hazmon.datafile import format_errors
from hazmon.errors import ConfigError

__all__ = [
    "GasParams",
    "ElevatorParams",
    "FireParams",
    "DeviceParams",
    "DomainParams",
    "DetectorConfig",
    "load_config",
    "DEFAULT_SEVERITY",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GasParams(_Params):
    """燃气 (restaurant combustible-gas alarms, 可燃气体报警装置)."""

    #: GB/T 50493-2019 §5.5.2: first-level alarm set point ≤ 25 %LEL; we use 20 (margin).
    low_lel: float = Field(default=20.0, gt=0, le=100)
    #: GB/T 50493-2019 §5.5.2: second-level alarm set point ≤ 50 %LEL.
    high_lel: float = Field(default=50.0, gt=0, le=100)
    #: clear only below threshold − hysteresis (no flapping around the set point); local practice.
    hysteresis_lel: float = Field(default=5.0, ge=0)
    #: consecutive readings at/above a set point before firing (noise immunity); local practice.
    confirm_n: int = Field(default=2, ge=1, le=20)
    #: consecutive readings below (set point − hysteresis) before resolving.
    clear_n: int = Field(default=2, ge=1, le=20)
    #: rate of rise: rise ≥ rise_lel within rise_window_s (a leak building up before the set point).
    rise_lel: float = Field(default=10.0, gt=0)
    rise_window_s: float = Field(default=60.0, gt=0)
    #: stuck sensor: the exact same non-zero value for this long (a live catalytic/IR sensor
    #: always shows noise); zero is skipped because many detectors clamp clean air to 0.
    flatline_s: float = Field(default=6 * 3600.0, gt=0)
    flatline_min_n: int = Field(default=10, ge=2)
    flatline_ignore_zero: bool = True


class ElevatorParams(_Params):
    """电梯 (电梯物联网 data items: GB/T 24476-2023, read as the 2017 edition's items — a change in
    the 2023 text is not verified, ingest/adapters/elevator_json.py)."""

    #: 困人: car stopped outside the door zone, doors closed, person inside for this long.
    #: TSG T7005 / local IoT platform practice: 30 s before raising 困人.
    trapped_s: float = Field(default=30.0, gt=0)
    #: GB 7588-2003 §9.9.1: the overspeed governor trips at ≥ 115 % of rated speed.
    overspeed_ratio: float = Field(default=1.15, gt=1)
    overspeed_clear_ratio: float = Field(default=1.05, gt=0)
    #: used when the box does not report rated_speed_mps (a common 1.75 m/s passenger lift).
    rated_speed_mps: float = Field(default=1.75, gt=0)
    #: speed above which the car counts as moving for 开门走车 (door open while moving).
    moving_speed_mps: float = Field(default=0.1, ge=0)
    #: 频繁故障: this many faults within the window (local practice: 3 in 24 h).
    frequent_faults_n: int = Field(default=3, ge=2)
    frequent_faults_window_s: float = Field(default=86400.0, gt=0)
    #: optional hoistway bounds for 冲顶/蹲底 from the floor reading (None = device code only).
    top_floor: float | None = None
    bottom_floor: float | None = None
    #: service_mode values that mean 维保/检修 (catalog: 1 inspection 检修, 2 maintenance 维保).
    maintenance_modes: tuple[int, ...] = (1, 2)
    #: kinds not raised while in maintenance (workers ride the car, test the governor and buffers).
    maintenance_suppresses: tuple[str, ...] = (
        "elevator.trapped",
        "elevator.door_open_moving",
        "elevator.overspeed",
        "elevator.overtravel_top",
        "elevator.overtravel_bottom",
        "elevator.door_lock_fault",
        "elevator.stopped_out_of_zone",
        "elevator.fault",
        "elevator.frequent_faults",
    )


class FireParams(_Params):
    """消防 (fire alarm control panels and analogue detectors)."""

    #: fire-alarm confirmation: "none" (every detector alarm fires), or "two_in_zone"
    #: (GB 50116-2013 §4.1.6 linkage logic: two independent alarm signals in one zone).
    confirm: Literal["none", "two_in_zone"] = "none"
    confirm_window_s: float = Field(default=300.0, gt=0)
    #: 屏蔽 longer than this is an event (local practice: a shield over 24 h must be reviewed).
    max_shield_s: float = Field(default=86400.0, gt=0)
    #: analogue heat detectors: GB 4716-2005 rate-of-rise classes respond from 10 K/min; we warn at 8.
    temp_rise_c: float = Field(default=8.0, gt=0)
    #: analogue smoke: obscuration rise (%/m) within the window; local practice.
    smoke_rise: float = Field(default=2.0, gt=0)
    rise_window_s: float = Field(default=60.0, gt=0)
    clear_n: int = Field(default=2, ge=1)


class DeviceParams(_Params):
    """All domains: presence (在线全时段), judged by the detector that owns the device's partitions."""

    #: offline after this many expected reporting intervals without anything heard (data,
    #: heartbeat, status). 3: one missed report is routine (a lost packet, jitter, an NB-IoT
    #: retry), two in a row happen under poor coverage, three in a row are rare enough without
    #: a real outage (≈ p³ for independent loss p) while still being minutes, not hours, for
    #: 30–60 s devices; "three missed heartbeats" is also the usual IoT-platform practice.
    #: 0 = this detector does not judge silence (LWT / explicit offline still count).
    offline_k: float = Field(default=3.0, ge=0, le=1000)
    #: who judges silence: "detector" (here, over all of a device's traffic; bridge-side
    #: ``silence`` transitions are stored but ignored) or "ingest" (a single bridge with
    #: ``mqtt.presence_k`` > 0 judges; its transitions are followed and no check runs here).
    offline_source: Literal["detector", "ingest"] = "detector"
    #: the clock silence is judged on: "ingest" = bounded by the bridges' watermarks
    #: (IngestBeat; no beat seen → not judged), so an ingest outage is not mistaken for
    #: silent devices; "consumed" = only by how far the device's partitions are consumed
    #: (records produced to Kafka by something other than hazmon bridges).
    silence_clock: Literal["ingest", "consumed"] = "ingest"


class DomainParams(_Params):
    gas: GasParams = GasParams()
    elevator: ElevatorParams = ElevatorParams()
    fire: FireParams = FireParams()
    device: DeviceParams = DeviceParams()
    #: severity (红/橙/黄/蓝) per event kind; merged over DEFAULT_SEVERITY.
    severity: dict[str, Severity] = Field(default_factory=dict)


#: Default severity per kind (四色预警). Life-safety first: fire, trapped, high gas are 红.
DEFAULT_SEVERITY: dict[str, Severity] = {
    "gas.high": Severity.RED,
    "gas.low": Severity.ORANGE,
    "gas.rate_of_rise": Severity.ORANGE,
    "gas.valve_closed": Severity.ORANGE,
    "gas.sensor_fault": Severity.YELLOW,
    "gas.valve_fault": Severity.YELLOW,
    "gas.flatline": Severity.YELLOW,
    # 在线全时段: a protection device without mains power neither detects nor shuts off for long;
    # it replaces the site's device.offline alarms (routes.yaml inhibit power-loss), so never lower
    "gas.power_loss": Severity.YELLOW,
    "elevator.trapped": Severity.RED,
    "elevator.door_open_moving": Severity.RED,
    "elevator.overspeed": Severity.RED,
    "elevator.overtravel_top": Severity.RED,
    "elevator.overtravel_bottom": Severity.RED,
    "elevator.door_lock_fault": Severity.ORANGE,
    "elevator.stopped_out_of_zone": Severity.YELLOW,
    "elevator.frequent_faults": Severity.ORANGE,
    "elevator.fault": Severity.BLUE,
    "fire.alarm": Severity.RED,
    "fire.rate_of_rise": Severity.ORANGE,
    "fire.fault": Severity.YELLOW,
    "fire.supervisory": Severity.YELLOW,
    "fire.shielded_too_long": Severity.BLUE,
    "fire.test": Severity.BLUE,  # a part in 测试状态 reporting 火警: visible, never a real fire alarm
    "device.offline": Severity.YELLOW,
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    defaults: dict[str, Any] = Field(default_factory=dict)
    site_classes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)


class DetectorConfig:
    """Parsed ``detectors.yaml``; :meth:`params` resolves one (site_class, model) pair."""

    def __init__(self, raw: dict[str, Any] | None = None, *, source: str = "<dict>",
                 key_lines: Mapping[str, int] | None = None) -> None:
        try:
            parsed = _File.model_validate(raw or {})
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, source, model=_File)) from None
        self._file = parsed
        self.source = source
        #: ``site_classes.<key>`` / ``models.<key>`` → its line in the file (from :func:`load_config`)
        self.key_lines = dict(key_lines or {})
        self._reported: set[str] = set()
        # validate every override once at load, so a typo fails start-up, not the first alarm
        self.params("", "")
        for cls in parsed.site_classes:
            self.params(cls, "")
        for model in parsed.models:
            self.params("", model)

    def params(self, site_class: str, model: str) -> DomainParams:
        return _resolve(self, site_class, model)

    def severity(self, params: DomainParams, kind: str) -> Severity:
        return params.severity.get(kind) or DEFAULT_SEVERITY.get(kind, Severity.YELLOW)

    def unused_site_classes(self, used: Iterable[str]) -> list[str]:
        """One problem per ``site_classes`` key that no registry site has as its ``site_class``
        (``used``): ``file:line: site_classes.<key>: …``, with the closest class in use. Nothing
        when ``used`` is empty (no registry loaded yet: nothing to compare with)."""
        in_use = sorted({u for u in used if u})
        if not in_use:
            return []
        out = []
        for key in self._file.site_classes:
            if key in in_use:
                continue
            path = f"site_classes.{key}"
            line = self.key_lines.get(path)
            where = f"{self.source}:{line}" if line else self.source
            near = difflib.get_close_matches(key, in_use, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            out.append(f"{where}: {path}: no site in the registry has site_class {key!r}, so these "
                       f"overrides never apply{hint} (site classes in use: {', '.join(in_use)})")
        return out

    def warn_unused_site_classes(self, used: Iterable[str], log: logging.Logger) -> list[str]:
        """:meth:`unused_site_classes`, each problem logged as a warning once per loaded file (the
        registry is re-read every minute); returns them all."""
        found = self.unused_site_classes(used)
        for problem in found:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning("thresholds override matches no site: %s", problem)
        return found

    def __hash__(self) -> int:
        return id(self)


@lru_cache(maxsize=4096)
def _resolve(cfg: DetectorConfig, site_class: str, model: str) -> DomainParams:
    merged = dict(cfg._file.defaults)
    where = "defaults"
    if site_class and site_class in cfg._file.site_classes:
        merged = _merge(merged, cfg._file.site_classes[site_class])
        where = f"site_classes.{site_class}"
    if model and model in cfg._file.models:
        merged = _merge(merged, cfg._file.models[model])
        where = f"models.{model}"
    try:
        return DomainParams.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, f"{cfg.source}: {where}", model=DomainParams)) from None


def load_config(path: Path | str | None) -> DetectorConfig:
    """Load and validate the thresholds file; a missing path means built-in defaults."""
    if path is None:
        return DetectorConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"HAZMON_DETECTORS_FILE: no such file: {p}")
    try:
        text = p.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return DetectorConfig(raw, source=str(p), key_lines=_key_lines(text))


def _key_lines(text: str) -> dict[str, int]:
    """``site_classes.<key>`` and ``models.<key>`` → the 1-based line the key is written on."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    out: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return out
    for k, v in root.value:
        if k.value in ("site_classes", "models") and isinstance(v, yaml.MappingNode):
            for kk, _ in v.value:
                out[f"{k.value}.{kk.value}"] = kk.start_mark.line + 1
    return out

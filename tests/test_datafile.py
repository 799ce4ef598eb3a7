"""The one wording of data-file problems (hazmon.datafile): paths as written in the file,
pydantic's Python words replaced, validators able to blame an entry below what they check."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hazmon.datafile import format_errors, join_path, problems, refuse


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: int
    level: int = 1


def _climbing(steps: list[Step]) -> list[Step]:
    refuse(((i, "after"), "must come later")
           for i in range(1, len(steps)) if steps[i].after <= steps[i - 1].after)
    return steps


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float | None = None
    lat: float | None = None

    @model_validator(mode="after")
    def _both(self) -> Site:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lat: required when lon is given")
        return self


class File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ladders: dict[str, Annotated[list[Step], AfterValidator(_climbing)]] = Field(default_factory=dict)
    sites: list[Site] = []
    flag: bool = False


def _problems(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as exc:
        File.model_validate(raw)
    return problems(exc.value, model=File)


def test_paths_read_as_the_file_and_every_problem_is_reported() -> None:
    got = _problems({"ladders": {"red": [{"after": 1}, {"after": "x"}], "blue": "no"},
                     "flag": "maybe", "colour": 1})
    assert got == [
        ("ladders.red[1].after", "must be an integer"),
        ("ladders.blue", "must be a list"),
        ("flag", "must be true or false"),
        ("colour", "unknown key (expected one of flag, ladders, sites)"),
    ]


def test_a_container_validator_blames_the_entry_and_a_model_validator_its_field() -> None:
    got = _problems({"ladders": {"red": [{"after": 5}, {"after": 5}, {"after": 1}]},
                     "sites": [{}, {"lon": 1.0}]})
    assert got == [
        ("ladders.red[1].after", "must come later"),
        ("ladders.red[2].after", "must come later"),
        ("sites[1].lat", "required when lon is given"),
    ]


def test_missing_and_unknown_keys_below_the_top_and_the_one_line_form() -> None:
    with pytest.raises(ValidationError) as exc:
        File.model_validate({"ladders": {"red": [{"level": 2, "aftr": 3}]}})
    assert format_errors(exc.value, "f.yaml", model=File) == (
        "f.yaml: ladders.red[0].after: required; "
        "f.yaml: ladders.red[0].aftr: unknown key (expected one of after, level)"
    )
    assert problems(exc.value, at="x")[0][0] == "x.ladders.red[0].after"  # without the model: no key list
    assert problems(exc.value)[1] == ("ladders.red[0].aftr", "unknown key")


def test_join_path() -> None:
    assert join_path("route", "[1].x") == "route[1].x"
    assert join_path("route", "x") == "route.x"
    assert join_path("", "x") == join_path("x", "") == "x"

"""Property tests of the row validators and of the CSV reader/writer round trip."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hazmon.registry import (
    TABLES,
    SiteRow,
    check,
    normalize_mobile,
    normalize_phone,
    parse_date,
    read_sources,
    validate_row,
    write_csv_table,
)

mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
separators = st.sampled_from(["", " ", "-"])


@given(mobiles, separators, st.sampled_from(["", "+86", "+86 ", "86"]))
def test_every_valid_mobile_normalises_to_its_digits(number: str, sep: str, prefix: str) -> None:
    shown = prefix + sep.join([number[:3], number[3:7], number[7:]])
    assert normalize_mobile(shown) == number
    assert normalize_phone(shown) == number


@given(st.from_regex(r"[0-9]{1,15}", fullmatch=True))
def test_only_1_3to9_plus_nine_digits_is_a_mobile(digits: str) -> None:
    valid = len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"
    if valid:
        assert normalize_mobile(digits) == digits
    else:
        with pytest.raises(ValueError, match="invalid mobile number"):
            normalize_mobile(digits)


@given(
    st.one_of(
        st.just("010"),
        st.from_regex(r"02[0-9]", fullmatch=True),
        st.from_regex(r"0[3-9][0-9]{2}", fullmatch=True),
    ),
    st.from_regex(r"[2-9][0-9]{6,7}", fullmatch=True),
    st.sampled_from(["-", "", " "]),
)
def test_landlines_with_area_code(area: str, local: str, sep: str) -> None:
    assert normalize_phone(f"{area}{sep}{local}") == f"{area}-{local}"
    with pytest.raises(ValueError):
        normalize_mobile(f"{area}-{local}")


def _site(**kw: object) -> dict[str, object]:
    return {"id": "S1", "name": "老王面馆", "township_id": "T1", **kw}


@given(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_coordinates_in_range_or_a_named_problem(lon: float, lat: float) -> None:
    row, problems = validate_row(SiteRow, _site(lon=lon, lat=lat))
    expected = {f for f, ok in (("lon", -180 <= lon <= 180), ("lat", -90 <= lat <= 90)) if not ok}
    assert {f for f, _ in problems} == expected
    assert all("out of range" in p for _, p in problems)
    assert (row is None) == bool(expected)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_dates_round_trip(day: date) -> None:
    assert parse_date(day.isoformat()) == day


@given(st.integers(1900, 2100), st.integers(1, 12), st.integers(29, 40))
def test_impossible_days_are_refused(year: int, month: int, day: int) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        expected = date(year, month, day)
    except ValueError:
        with pytest.raises(ValueError, match="invalid date"):
            parse_date(text)
    else:
        assert parse_date(text) == expected


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
@settings(max_examples=40)
@given(data=st.data())
def test_validation_never_raises(spec, data) -> None:  # type: ignore[no-untyped-def]
    # any mix of known/unknown columns and junk values gives a row or named problems, never a crash
    keys = st.one_of(st.sampled_from(spec.columns), st.text(min_size=1, max_size=8))
    values = st.one_of(
        st.none(),
        st.text(max_size=20),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.lists(st.text(max_size=5)),
    )
    row_data = data.draw(st.dictionaries(keys, values, max_size=len(spec.columns) + 2))
    row, problems = validate_row(spec.model, row_data)
    assert (row is None) == bool(problems)
    assert all(isinstance(f, str) and f and isinstance(p, str) and p for f, p in problems)


cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from([",", '"', "\n"]),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(cell_text, min_size=1, max_size=5), addresses=st.lists(cell_text, min_size=5, max_size=5)
)
def test_csv_round_trip_keeps_values_and_lines(names: list[str], addresses: list[str]) -> None:
    spec = next(t for t in TABLES if t.name == "sites")
    rows = [
        {
            "id": f"S{i}",
            "name": name,
            "address": addresses[i],
            "township_id": "T1",
            "lon": 120.1 + i / 1000,
            "lat": 30.2,
        }
        for i, name in enumerate(names)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sites.csv"
        write_csv_table(path, spec, [{**{c: None for c in spec.columns}, **r} for r in rows])
        # a bad last row: its reported line must account for every quoted newline before it
        text = path.read_text(encoding="utf-8")
        path.write_text(text + "S999,x,,,,T1,,200,30,,,\n", encoding="utf-8")
        ds = read_sources([path])
        parsed = {r.data["id"]: r for r in ds.rows["sites"]}
        for row in rows:
            assert parsed[row["id"]].data["name"] == row["name"]
            assert parsed[row["id"]].data["address"] == row["address"]
        errors, _warnings, _plan = check(ds, {"townships": {"T1": {"id": "T1"}}})
        assert [str(e) for e in errors] == [
            f"{path}:{text.count(chr(10)) + 1}: lon: 200 out of range [-180, 180]"
        ]

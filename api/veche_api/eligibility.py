"""Who may vote in a poll, and in which stratum."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from .errors import ApiError
from .models import Resident
from .strata import Stratum, stratum_of


def utc_year(at_unix: int) -> int:
    """The (proleptic Gregorian) UTC year of a Unix time, for any integer: `datetime` stops at
    year 9999, and a poll stored with a later time made every listing answer 500. Howard
    Hinnant's civil-from-days, in integers; tests compare it with `datetime` where both run."""
    days = at_unix // 86_400 + 719_468  # days since 0000-03-01
    era, day_of_era = divmod(days, 146_097)  # 400-year eras
    year_of_era = (day_of_era - day_of_era // 1_460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)  # from March 1
    in_january_or_february = day_of_year >= 306
    return era * 400 + year_of_era + in_january_or_february


def age_in(resident: Resident, at_unix: int) -> int:
    """Age in whole years reached in the calendar year of `at_unix` (UTC)."""
    return utc_year(at_unix) - resident.birth_year


def admits_age(audience: dict, birth_year: int, opens_at: int) -> bool:
    """The audience's age rule, in whole years reached in the calendar year of the opening."""
    age = utc_year(opens_at) - birth_year
    if audience.get("minAge") is not None and age < audience["minAge"]:
        return False
    if audience.get("maxAge") is not None and age > audience["maxAge"]:
        return False
    return True


def eligible_stratum(audience: dict, strata: Sequence[Stratum], resident: Resident, opens_at: int) -> int | None:
    """The resident's stratum in the poll, or None if the poll's audience does not hold them.
    (The audience's districts are the strata's: the poll was made from them.)"""
    if not admits_age(audience, resident.birth_year, opens_at):
        return None
    return stratum_of(strata, resident.district)


def eligible_register(audience: dict, strata: Sequence[Stratum], residents, opens_at: int) -> list[list[str]]:
    """The eligible residents of each stratum, as the poll's register commits them: per stratum
    the addresses in ascending order (the leaf order, docs/protocol.md §3.11). The one place
    that decides who is in a poll's register, by the rule issuance applies (`eligible_stratum`)."""
    register: list[list[str]] = [[] for _ in strata]
    for resident in residents:
        stratum = eligible_stratum(audience, strata, resident, opens_at)
        if stratum is not None:
            register[stratum].append(resident.address)
    return [sorted(addresses, key=str.lower) for addresses in register]


def require_stratum(audience: dict, strata: Sequence[Stratum], resident: Resident, opens_at: int) -> int:
    """The resident's stratum, or `resident.ineligible` (403)."""
    stratum = eligible_stratum(audience, strata, resident, opens_at)
    if stratum is None:
        raise ApiError("resident.ineligible", 403, "the resident is not in this poll's audience")
    return stratum


def count_eligible(session: Session, audience: dict, districts: Sequence[str], opens_at: int) -> dict[str, int]:
    """Enrolled residents per district whom the audience admits at `opens_at`, by the same
    rule as issuance (`eligible_stratum`): one grouped query, then the age rule per birth year."""
    rows = session.exec(
        select(Resident.district, Resident.birth_year, func.count())
        .where(col(Resident.district).in_(list(districts)))
        .group_by(col(Resident.district), col(Resident.birth_year))
    ).all()
    counts = dict.fromkeys(districts, 0)
    for district, birth_year, count in rows:
        if admits_age(audience, birth_year, opens_at):
            counts[district] += count
    return counts

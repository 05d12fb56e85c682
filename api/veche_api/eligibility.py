"""Who may vote in a poll, and in which stratum."""

from __future__ import annotations

from .errors import ApiError
from .models import Resident


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


def is_eligible(audience: dict, strata: tuple[str, ...] | list[str], resident: Resident, opens_at: int) -> bool:
    if resident.district not in strata:
        return False
    age = age_in(resident, opens_at)
    if audience.get("minAge") is not None and age < audience["minAge"]:
        return False
    if audience.get("maxAge") is not None and age > audience["maxAge"]:
        return False
    return True


def eligible_register(audience: dict, strata: tuple[str, ...] | list[str], residents, opens_at: int) -> list[list[str]]:
    """The eligible residents of each stratum, as the poll's register commits them: per stratum
    the addresses in ascending order (the leaf order, docs/protocol.md §3.10). The one place
    that decides who is in a poll's register."""
    register: list[list[str]] = [[] for _ in strata]
    for resident in residents:
        if is_eligible(audience, strata, resident, opens_at):
            register[list(strata).index(resident.district)].append(resident.address)
    return [sorted(addresses, key=str.lower) for addresses in register]


def stratum_of(audience: dict, strata, resident: Resident, opens_at: int) -> int:
    """The resident's stratum, or `resident.ineligible` (403)."""
    if not is_eligible(audience, strata, resident, opens_at):
        raise ApiError("resident.ineligible", 403, "the resident is not in this poll's audience")
    return list(strata).index(resident.district)

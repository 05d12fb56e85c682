"""Who may vote in a poll, and in which stratum."""

from __future__ import annotations

import datetime as dt

from .errors import ApiError
from .models import Resident


def age_in(resident: Resident, at_unix: int) -> int:
    """Age in whole years reached in the calendar year of `at_unix` (UTC)."""
    year = dt.datetime.fromtimestamp(at_unix, dt.timezone.utc).year
    return year - resident.birth_year


def is_eligible(audience: dict, strata: tuple[str, ...] | list[str], resident: Resident, opens_at: int) -> bool:
    if resident.district not in strata:
        return False
    age = age_in(resident, opens_at)
    if audience.get("minAge") is not None and age < audience["minAge"]:
        return False
    if audience.get("maxAge") is not None and age > audience["maxAge"]:
        return False
    return True


def stratum_of(audience: dict, strata, resident: Resident, opens_at: int) -> int:
    """The resident's stratum, or `resident.ineligible` (403)."""
    if not is_eligible(audience, strata, resident, opens_at):
        raise ApiError("resident.ineligible", 403, "the resident is not in this poll's audience")
    return list(strata).index(resident.district)

"""Enrolment (admin): one resident, or a CSV file of them, all or nothing."""

from __future__ import annotations

import csv
import io
import time
from typing import Any, NamedTuple

from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from veche_core.abi import checksum_address

from ..core.db import ProcessLock
from ..deps import AdminDep, SessionDep, StateDep
from ..errors import ApiError, error_responses
from ..models import Resident, table_of
from ..schemas import ADDRESS_PATTERN, ImportReport, ImportRow, ResidentCreate, ResidentPublic, clean_text

router = APIRouter(prefix="/admin/residents", tags=["residents"])

MAX_CSV_BYTES = 5_000_000
IMPORT_CHUNK = 2_000  # rows a transaction
CSV_HEADER = "address,district,birth_year"
# The header is checked before any row (`import.bad_header`, 422); the rows are reported one by one.
CSV_SCHEMA = {
    "type": "string",
    "pattern": f"^{CSV_HEADER}([\\r\\n][\\s\\S]*)?$",
    "description": f"UTF-8 CSV whose first line is `{CSV_HEADER}` (case and spaces around "
    "the names are ignored, and a byte-order mark is allowed)",
}


class NewResident(NamedTuple):
    address: str
    district: str
    birth_year: int


def _public(resident: Resident) -> ResidentPublic:
    return ResidentPublic(
        address=resident.address,
        district=resident.district,
        birth_year=resident.birth_year,
        enrolled_at=resident.enrolled_at,
    )


@router.post("", status_code=201, response_model=ResidentPublic, responses=error_responses(400, 401, 409, 413, 422))
def create_resident(body: ResidentCreate, state: StateDep, _: AdminDep) -> ResidentPublic:
    if body.district not in state.settings.districts:
        raise ApiError("resident.unknown_district", 422, f"unknown district {body.district!r}")
    resident = Resident(address=to_checksum_address(body.address), district=body.district, birth_year=body.birth_year)
    with enrolment_lock(state.db).held(), state.db.write_session() as session:
        if session.get(Resident, resident.address) is not None:
            raise ApiError("resident.duplicate", 409, "this address is already enrolled")
        session.add(resident)
        try:
            session.commit()
        except IntegrityError:
            raise ApiError("resident.duplicate", 409, "this address is already enrolled") from None
    return _public(resident)


@router.post(
    "/import",
    response_model=ImportReport,
    responses=error_responses(401, 413, 422),
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": CSV_SCHEMA}}, "required": True}},
)
async def import_residents(request: Request, state: StateDep, _: AdminDep) -> ImportReport:
    """CSV with the header `address,district,birth_year`. Any bad or duplicate row: nothing
    is imported and every problem is reported by line. Rows already enrolled exactly so are
    counted as `unchanged`, so the same file can be sent again."""
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise ApiError("request.too_large", 413, "CSV file too large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("import.not_utf8", 422, "the CSV file is not UTF-8") from None
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_import_rows, state, text)


def _import_rows(state, text: str) -> ImportReport:
    records = _records(csv.reader(io.StringIO(text, newline="")))  # newline="": as the csv module requires
    _, header = next(records, (1, None))
    if header is None or [h.strip().lower() for h in header] != CSV_HEADER.split(","):
        raise ApiError("import.bad_header", 422, f"the CSV header must be {CSV_HEADER}")
    errors: list[ImportRow] = []
    rows: list[tuple[int, NewResident]] = []  # plain tuples: a SQLModel object cost ~200 µs a row
    seen: set[str] = set()
    for line, fields in records:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != 3:
            errors.append(ImportRow(line=line, error="expected 3 fields"))
            continue
        address, district, year = (f.strip() for f in fields)
        if not is_address(address):
            errors.append(ImportRow(line=line, address=address[:64], error="not an address"))
            continue
        address = checksum_address(bytes.fromhex(address[2:]))  # ~10 µs; eth-utils' ~130 µs
        try:
            district = clean_text(district, max_length=100)
        except ValueError as exc:
            errors.append(ImportRow(line=line, address=address, error=f"district: {exc}"))
            continue
        if district not in state.settings.districts:
            errors.append(ImportRow(line=line, address=address, error=f"unknown district {district[:100]!r}"))
            continue
        if not year.isdigit() or not 1880 <= int(year) <= 2100:
            errors.append(ImportRow(line=line, address=address, error="birth_year must be a year"))
            continue
        if address in seen:
            errors.append(ImportRow(line=line, address=address, error="duplicate in this file"))
            continue
        seen.add(address)
        rows.append((line, NewResident(address, district, int(year))))
    # Rows already enrolled exactly as in the file are left as they are: a file can be sent
    # again after a lost answer or an interrupted import. Enrolled otherwise: an error.
    with enrolment_lock(state.db).held():
        enrolled = _enrolled(state.db, [row.address for _, row in rows])
        fresh = []
        for line, row in rows:
            known = enrolled.get(row.address)
            if known is None:
                fresh.append(row)
            elif known != (row.district, row.birth_year):
                errors.append(ImportRow(line=line, address=row.address, error="already enrolled"))
        if errors:
            return ImportReport(imported=0, unchanged=0, errors=sorted(errors, key=lambda e: e.line))
        now = int(time.time())
        values: list[dict[str, Any]] = [  # Resident rows, for one bulk INSERT per chunk
            {"address": r.address, "district": r.district, "birth_year": r.birth_year, "enrolled_at": now}
            for r in fresh
        ]
        values.sort(key=lambda v: v["address"])  # the primary key's order: a cheaper B-tree insert
        # In chunks, each its own transaction: on SQLite the write lock is free between them, so
        # ballots are acknowledged during a large import (one 90,000-row transaction held it for
        # seconds). All or nothing still holds: the rows were checked under the enrolment lock,
        # which every enrolment takes; a crash midway leaves a file that can be sent again.
        for start in range(0, len(values), IMPORT_CHUNK):
            with state.db.write_session() as session:
                session.connection().execute(table_of(Resident).insert(), values[start : start + IMPORT_CHUNK])
                session.commit()
    return ImportReport(imported=len(fresh), unchanged=len(rows) - len(fresh), errors=[])


def _enrolled(db, addresses: list[str]) -> dict[str, tuple[str, int]]:
    """address → (district, birth year) of those of `addresses` already enrolled."""
    found: dict[str, tuple[str, int]] = {}
    with db.session() as session:
        for start in range(0, len(addresses), 500):
            chunk = addresses[start : start + 500]
            for address, district, birth_year in session.exec(
                select(Resident.address, Resident.district, Resident.birth_year).where(col(Resident.address).in_(chunk))
            ):
                found[address] = (district, birth_year)
    return found


def enrolment_lock(db) -> ProcessLock:
    """Held by every enrolment, across processes: between an import's check of the register and
    its last chunk, no other enrolment can change it."""
    return ProcessLock(db, "enrol", 0x76656368655F65)  # "veche_e"


def _records(reader):
    """(line where the record starts, fields) for each record: a quoted field may hold line
    breaks, so the record count is not the line number (`reader.line_num` counts lines read).
    A file the csv module cannot read (a field over its size limit) is `import.bad_csv` (422)
    with the line."""
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ApiError("import.bad_csv", 422, f"line {line}: {exc}") from None
        yield line, fields


@router.get("/{address:address}", response_model=ResidentPublic, responses=error_responses(401, 404, 422))
def read_resident(
    session: SessionDep, _: AdminDep, address: str = PathParam(pattern=ADDRESS_PATTERN)
) -> ResidentPublic:
    resident = session.get(Resident, to_checksum_address(address))  # the path convertor admits only an address
    if resident is None:
        raise ApiError("resident.unknown", 404, "no such resident")
    return _public(resident)

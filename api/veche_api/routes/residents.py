"""Enrolment (admin): one resident, or a CSV file of them, all or nothing."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from eth_utils import is_address, to_checksum_address
from sqlalchemy.exc import IntegrityError

from ..deps import AdminDep, SessionDep, StateDep
from ..errors import ApiError, error_responses
from ..models import Resident
from ..schemas import ADDRESS_PATTERN, ImportReport, ImportRow, ResidentCreate, ResidentPublic, clean_text

router = APIRouter(prefix="/admin/residents", tags=["residents"])

MAX_CSV_BYTES = 5_000_000
CSV_HEADER = "address,district,birth_year"
# The header is checked before any row (`import.bad_header`, 422); the rows are reported one by one.
CSV_SCHEMA = {"type": "string", "pattern": f"^{CSV_HEADER}([\\r\\n][\\s\\S]*)?$",
              "description": f"UTF-8 CSV whose first line is `{CSV_HEADER}` (case and spaces around "
                             "the names are ignored, and a byte-order mark is allowed)"}


def _public(resident: Resident) -> ResidentPublic:
    return ResidentPublic(
        address=resident.address, district=resident.district,
        birth_year=resident.birth_year, enrolled_at=resident.enrolled_at,
    )


@router.post("", status_code=201, response_model=ResidentPublic, responses=error_responses(400, 401, 409, 413, 422))
def create_resident(body: ResidentCreate, state: StateDep, _: AdminDep) -> ResidentPublic:
    if body.district not in state.settings.districts:
        raise ApiError("resident.unknown_district", 422, f"unknown district {body.district!r}")
    resident = Resident(address=to_checksum_address(body.address), district=body.district, birth_year=body.birth_year)
    with state.db.write_session() as session:
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
    is imported and every problem is reported by line."""
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
    rows: list[tuple[int, Resident]] = []
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
        address = to_checksum_address(address)
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
        rows.append((line, Resident(address=address, district=district, birth_year=int(year))))
    with state.db.write_session() as session:
        existing = set()
        addresses = [r.address for _, r in rows]
        for start in range(0, len(addresses), 500):
            chunk = addresses[start:start + 500]
            from sqlmodel import select

            existing |= set(session.exec(select(Resident.address).where(Resident.address.in_(chunk))).all())
        for line, row in rows:
            if row.address in existing:
                errors.append(ImportRow(line=line, address=row.address, error="already enrolled"))
        if errors:
            session.rollback()
            return ImportReport(imported=0, errors=errors)
        session.add_all([row for _, row in rows])
        session.commit()
    return ImportReport(imported=len(rows), errors=[])


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
def read_resident(session: SessionDep, _: AdminDep, address: str = PathParam(pattern=ADDRESS_PATTERN)) -> ResidentPublic:
    resident = session.get(Resident, to_checksum_address(address))  # the path convertor admits only an address
    if resident is None:
        raise ApiError("resident.unknown", 404, "no such resident")
    return _public(resident)

"""The relays a resident may send a ballot to: PollBook's registry, read from the chain."""

from __future__ import annotations

from fastapi import APIRouter

from veche_core.relays import in_listing_order, read_relays
from veche_core.rpc import RpcError

from ..deps import StateDep
from ..errors import ApiError, error_responses
from ..schemas import RelayOut, RelaysOut

router = APIRouter(tags=["relays"])


@router.get("/relays", response_model=RelaysOut, responses=error_responses(503))
def list_relays(state: StateDep) -> RelaysOut:
    """Every key that holds or held PollBook's RELAYER_ROLE, with what it registered: active
    relays first (registered before unregistered, then by name). A client sends its ballot to an
    active relay it chooses, by default one the city does not run (`city`: false), since the
    city also issues the tokens (docs/threat-model.md)."""
    rpc = state.chain.rpc()
    deployment = state.chain.deployment
    try:
        found = read_relays(rpc, deployment.poll_book, deployment.start_block, rpc.block_number())
    except (RpcError, OSError):
        raise ApiError("chain.unavailable", 503, "the chain node is not reachable") from None
    own = state.relayer_address.lower()
    return RelaysOut(
        relays=[
            RelayOut(address=r.address, name=r.name, url=r.url, active=r.active, city=r.address.lower() == own)
            for r in in_listing_order(found)
        ]
    )

"""The contracts, the protocol core and eth-account compute the same EIP-712 digests.

Each digest is computed three ways: by the contract's view, by `veche_core.typed_data`'s fast
encoder, and by eth-account's generic `encode_typed_data` over the full typed-data JSON that
`eip712_message` builds (what a wallet signs). The domains must match the contracts'
`eip712Domain()` (ERC-5267) too.
"""

import os

import pytest
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from veche_core import typed_data


def eth_account_digest(domain, primary_type, message) -> bytes:
    full_message = typed_data.eip712_message(domain, primary_type, message)
    signable = encode_typed_data(full_message=full_message)
    # EIP-191 version 0x01: keccak(0x19 || 0x01 || domainSeparator || structHash).
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def check_domain(contract, domain, expected_name):
    fields, name, version, chain_id, verifying_contract, salt, extensions = contract.eip712Domain()
    assert bytes(fields) == b"\x0f"  # name, version, chainId, verifyingContract
    assert (name, version, chain_id, verifying_contract) == (
        expected_name,
        "1",
        domain.chain_id,
        domain.verifying_contract,
    )
    assert bytes(salt) == bytes(32) and list(extensions) == []
    assert domain.name == expected_name and domain.version == "1"


def test_poll_book_domain_matches(poll_book, domain):
    check_domain(poll_book, domain, typed_data.POLL_BOOK_NAME)


def test_city_points_domain_matches(city_points, points_domain):
    check_domain(city_points, points_domain, typed_data.CITY_POINTS_NAME)


def test_typehashes_match(poll_book, city_points):
    assert poll_book.BALLOT_TYPEHASH() == typed_data.BALLOT_TYPEHASH
    assert poll_book.ISSUANCE_REQUEST_TYPEHASH() == typed_data.ISSUANCE_REQUEST_TYPEHASH
    assert poll_book.KEY_SHARE_TYPEHASH() == typed_data.KEY_SHARE_TYPEHASH
    assert poll_book.TRUSTEE_KEY_TYPEHASH() == typed_data.TRUSTEE_KEY_TYPEHASH
    assert poll_book.CEREMONY_MESSAGE_TYPEHASH() == typed_data.CEREMONY_MESSAGE_TYPEHASH
    assert city_points.REDEMPTION_TYPEHASH() == typed_data.REDEMPTION_TYPEHASH
    assert city_points.DONATION_TYPEHASH() == typed_data.DONATION_TYPEHASH


@pytest.mark.parametrize(
    "poll_id, sequence, stratum",
    [(1, 1, 0), (2**256 - 1, 2**64 - 1, 2**32 - 1), (42, 7, 11)],
)
def test_ballot_digest(poll_book, domain, poll_id, sequence, stratum):
    token = "0x" + os.urandom(20).hex()
    ciphertext, token_signature = os.urandom(51), os.urandom(288)
    on_chain = poll_book.ballotDigest(poll_id, token, sequence, stratum, keccak(ciphertext), keccak(token_signature))
    core = typed_data.ballot_digest(domain, poll_id, token, sequence, stratum, ciphertext, token_signature)
    wallet = eth_account_digest(
        domain,
        "Ballot",
        {
            "pollId": poll_id,
            "token": token,
            "sequence": sequence,
            "stratum": stratum,
            "ciphertextHash": keccak(ciphertext),
            "tokenSignatureHash": keccak(token_signature),
        },
    )
    assert on_chain == core == wallet


@pytest.mark.parametrize("poll_id, stratum, deadline", [(1, 0, 0), (9, 3, 2**64 - 1)])
def test_issuance_request_digest(poll_book, domain, poll_id, stratum, deadline):
    blinded = os.urandom(256)
    on_chain = poll_book.issuanceRequestDigest(poll_id, stratum, keccak(blinded), deadline)
    core = typed_data.issuance_request_digest(domain, poll_id, stratum, blinded, deadline)
    wallet = eth_account_digest(
        domain,
        "IssuanceRequest",
        {
            "pollId": poll_id,
            "stratum": stratum,
            "blindedMessageHash": keccak(blinded),
            "deadline": deadline,
        },
    )
    assert on_chain == core == wallet


@pytest.mark.parametrize("poll_id, index", [(1, 0), (5, 255)])
def test_key_share_digest(poll_book, domain, poll_id, index):
    share = os.urandom(90)
    on_chain = poll_book.keyShareDigest(poll_id, index, keccak(share))
    core = typed_data.key_share_digest(domain, poll_id, index, share)
    wallet = eth_account_digest(domain, "KeyShare", {"pollId": poll_id, "index": index, "shareHash": keccak(share)})
    assert on_chain == core == wallet


@pytest.mark.parametrize("serial", [1, 2, 2**64 - 1])
def test_trustee_key_digest(poll_book, domain, serial):
    trustee = "0x" + os.urandom(20).hex()
    key = b"\x02" + os.urandom(32)
    on_chain = poll_book.trusteeKeyDigest(trustee, keccak(key), serial)
    core = typed_data.trustee_key_digest(domain, trustee, key, serial)
    wallet = eth_account_digest(domain, "TrusteeKey", {"trustee": trustee, "keyHash": keccak(key), "serial": serial})
    assert on_chain == core == wallet


@pytest.mark.parametrize("poll_id, attempt, index, kind", [(1, 1, 0, 1), (2**256 - 1, 255, 254, 3), (7, 2, 9, 255)])
def test_ceremony_message_digest(poll_book, domain, poll_id, attempt, index, kind):
    payload = os.urandom(700)
    on_chain = poll_book.ceremonyMessageDigest(poll_id, attempt, index, kind, keccak(payload))
    core = typed_data.ceremony_message_digest(domain, poll_id, attempt, index, kind, payload)
    wallet = eth_account_digest(
        domain,
        "CeremonyMessage",
        {"pollId": poll_id, "attempt": attempt, "index": index, "kind": kind, "payloadHash": keccak(payload)},
    )
    assert on_chain == core == wallet


def test_redemption_digest(city_points, points_domain):
    resident = "0x" + os.urandom(20).hex()
    on_chain = city_points.redemptionDigest(resident, 3, 17, 2**256 - 1)
    core = typed_data.redemption_digest(points_domain, resident, 3, 17, 2**256 - 1)
    wallet = eth_account_digest(
        points_domain,
        "Redemption",
        {"resident": resident, "rewardId": 3, "nonce": 17, "deadline": 2**256 - 1},
    )
    assert on_chain == core == wallet


def test_donation_digest(city_points, points_domain):
    resident = "0x" + os.urandom(20).hex()
    on_chain = city_points.donationDigest(resident, 2, 150, 4, 1_900_000_000)
    core = typed_data.donation_digest(points_domain, resident, 2, 150, 4, 1_900_000_000)
    wallet = eth_account_digest(
        points_domain,
        "Donation",
        {
            "resident": resident,
            "charityId": 2,
            "amount": 150,
            "nonce": 4,
            "deadline": 1_900_000_000,
        },
    )
    assert on_chain == core == wallet


def test_digests_depend_on_the_deployment(project, admin, poll_book, domain):
    """Another deployment (another verifying contract) gives another ballot digest."""
    other = admin.deploy(project.PollBook, admin, poll_book.cityPoints())
    args = (1, "0x" + "11" * 20, 1, 0, bytes(32), bytes(32))
    assert other.ballotDigest(*args) != poll_book.ballotDigest(*args)
    other_domain = typed_data.poll_book_domain(domain.chain_id, other.address)
    token = "0x" + "11" * 20
    assert other.ballotDigest(1, token, 1, 0, keccak(b""), keccak(b"")) == (
        typed_data.ballot_digest(other_domain, 1, token, 1, 0, b"", b"")
    )

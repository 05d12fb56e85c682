// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICityPoints} from "../interfaces/ICityPoints.sol";
import {IPollBook} from "../interfaces/IPollBook.sol";

/**
 * @title EventForge
 * @notice TEST ONLY — never deployed by Veche's tooling. Emits PollBook's (and CityPoints'
 * PointsCredited) events with any
 * content and no checks, standing in for a broken or malicious PollBook, so that the verifier's
 * tests can build chain state the real contract refuses to produce (a ballot outside the window,
 * a signature by another key, a sequence that goes backwards) and see the verifier fail it.
 * @dev The events and structs are IPollBook's own (`emit IPollBook.X`), not copies: a change to
 * an event's layout reaches the forge, and its ABI lists exactly PollBook's events.
 */
contract EventForge {
    /// @notice The sum of the credits forged for each address, as CityPoints' balanceOf reads.
    mapping(address resident => uint256) public balanceOf;

    /**
     * @notice Emit PollCreated exactly as given.
     * @param pollId The poll id to emit, whether or not it follows the last one.
     * @param p The parameters to emit, unchecked.
     */
    function createPoll(uint256 pollId, IPollBook.PollParams calldata p) external {
        emit IPollBook.PollCreated(
            pollId, p.metadataHash, p.optionCount, p.maxChoices, p.opensAt, p.closesAt, p.points,
            p.electionKey, p.issuerKeys, p.trustees, p.threshold
        );
    }

    /**
     * @notice Emit RegisterCommitted, unchecked (the arrays may differ in length).
     * @param pollId The poll id to emit.
     * @param roots The register roots to emit.
     * @param sizes The register sizes to emit.
     */
    function commitRegister(uint256 pollId, bytes32[] calldata roots, uint32[] calldata sizes) external {
        emit IPollBook.RegisterCommitted(pollId, roots, sizes);
    }

    /**
     * @notice Emit IssuancesRecorded, unchecked (any resident, signature or proof).
     * @param pollId The poll id to emit.
     * @param issuances The issuances to emit.
     */
    function recordIssuances(uint256 pollId, IPollBook.IssuanceRecord[] calldata issuances) external {
        emit IPollBook.IssuancesRecorded(pollId, issuances);
    }

    /**
     * @notice Emit protocol v1's TokensIssued, unchecked (the arrays may even differ in length).
     * @param pollId The poll id to emit.
     * @param pseudonyms The pseudonyms to emit.
     * @param strata The strata to emit.
     */
    function recordPseudonyms(uint256 pollId, bytes32[] calldata pseudonyms, uint32[] calldata strata) external {
        emit IPollBook.TokensIssued(pollId, pseudonyms, strata);
    }

    /**
     * @notice Emit CityPoints' PointsCredited for each resident, as a points contract that
     * credits whom it likes would.
     * @param pollId The poll id to emit.
     * @param residents The addresses to emit.
     * @param amount The amount to emit for each.
     */
    function creditPoints(uint256 pollId, address[] calldata residents, uint256 amount) external {
        for (uint256 i = 0; i < residents.length; ++i) {
            balanceOf[residents[i]] += amount;
            emit ICityPoints.PointsCredited(residents[i], pollId, amount);
        }
    }

    /**
     * @notice Emit one BallotCast per ballot, unchecked, then BallotsRelayed naming the caller.
     * @param pollId The poll id to emit.
     * @param ballots The ballots to emit, in order, whatever their window, stratum or signature.
     */
    function castBallots(uint256 pollId, IPollBook.Ballot[] calldata ballots) external {
        castBallotsUnattributed(pollId, ballots);
        emit IPollBook.BallotsRelayed(pollId, msg.sender, ballots.length);
    }

    /**
     * @notice Emit one BallotCast per ballot, unchecked, and no BallotsRelayed: as a PollBook from
     * before that event did.
     * @param pollId The poll id to emit.
     * @param ballots The ballots to emit, in order, whatever their window, stratum or signature.
     */
    function castBallotsUnattributed(uint256 pollId, IPollBook.Ballot[] calldata ballots) public {
        for (uint256 i = 0; i < ballots.length; ++i) {
            IPollBook.Ballot calldata b = ballots[i];
            emit IPollBook.BallotCast(pollId, b.token, b.sequence, b.stratum, b.ciphertext, b.tokenSignature, b.signature);
        }
    }

    /**
     * @notice Emit KeyShareSubmitted as if `trustee` had posted it.
     * @param pollId The poll id to emit.
     * @param index The share index to emit.
     * @param trustee The trustee address to emit, whoever the poll's trustees are.
     * @param share The share bytes to emit.
     */
    function submitKeyShare(uint256 pollId, uint8 index, address trustee, bytes calldata share) external {
        emit IPollBook.KeyShareSubmitted(pollId, index, trustee, share);
    }

    /**
     * @notice Emit TrusteeKeyRegistered, unchecked (any key, any serial, no signature).
     * @param trustee The trustee address to emit.
     * @param serial The serial to emit.
     * @param key The key bytes to emit.
     */
    function registerTrusteeKey(address trustee, uint64 serial, bytes calldata key) external {
        emit IPollBook.TrusteeKeyRegistered(trustee, serial, key);
    }

    /**
     * @notice Emit CeremonyStarted, unchecked (the arrays may differ in length, the members
     * repeat or go down, the keys be anyone's).
     * @param pollId The poll id to emit.
     * @param attempt The attempt to emit.
     * @param members The member indices to emit.
     * @param keys The keys to emit.
     */
    function startCeremony(uint256 pollId, uint8 attempt, uint8[] calldata members, bytes[] calldata keys) external {
        emit IPollBook.CeremonyStarted(pollId, attempt, members, keys);
    }

    /**
     * @notice Emit CeremonyMessagePosted, unchecked (any attempt, sender, kind or payload).
     * @param pollId The poll id to emit.
     * @param attempt The attempt to emit.
     * @param index The sender index to emit.
     * @param kind The kind to emit.
     * @param payload The payload to emit.
     */
    function postCeremonyMessage(uint256 pollId, uint8 attempt, uint8 index, uint8 kind, bytes calldata payload)
        external
    {
        emit IPollBook.CeremonyMessagePosted(pollId, attempt, index, kind, payload);
    }

    /**
     * @notice Emit ElectionKeyCertified, unchecked (whatever the members certified).
     * @param pollId The poll id to emit.
     * @param attempt The attempt to emit.
     * @param electionKey The key to emit.
     */
    function certifyElectionKey(uint256 pollId, uint8 attempt, bytes calldata electionKey) external {
        emit IPollBook.ElectionKeyCertified(pollId, attempt, electionKey);
    }

    /**
     * @notice Emit ResultPublished.
     * @param pollId The poll id to emit.
     * @param counts The counts to emit.
     * @param datasetHash The dataset hash to emit.
     */
    function publishResult(uint256 pollId, uint256[] calldata counts, bytes32 datasetHash) external {
        emit IPollBook.ResultPublished(pollId, counts, datasetHash);
    }
}

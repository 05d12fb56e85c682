// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title EventForge
 * @notice TEST ONLY — never deployed by Veche's tooling. Emits PollBook's events with any
 * content and no checks, standing in for a broken or malicious PollBook, so that the verifier's
 * tests can build chain state the real contract refuses to produce (a ballot outside the window,
 * a signature by another key, a sequence that goes backwards) and see the verifier fail it.
 */
contract EventForge {
    event PollCreated(
        uint256 indexed pollId,
        bytes32 metadataHash,
        uint8 optionCount,
        uint8 maxChoices,
        uint64 opensAt,
        uint64 closesAt,
        uint32 points,
        bytes32 electionKey,
        bytes[] issuerKeys,
        address[] trustees,
        uint8 threshold
    );
    event TokensIssued(uint256 indexed pollId, bytes32[] pseudonyms, uint32[] strata);
    event BallotCast(
        uint256 indexed pollId,
        address indexed token,
        uint64 sequence,
        uint32 stratum,
        bytes ciphertext,
        bytes tokenSignature,
        bytes signature
    );
    event KeyShareSubmitted(uint256 indexed pollId, uint8 indexed index, address trustee, bytes share);
    event ResultPublished(uint256 indexed pollId, uint256[] counts, bytes32 datasetHash);

    struct PollParams {
        bytes32 metadataHash;
        uint8 optionCount;
        uint8 maxChoices;
        uint64 opensAt;
        uint64 closesAt;
        uint32 points;
        bytes32 electionKey;
        bytes[] issuerKeys;
        address[] trustees;
        uint8 threshold;
    }

    struct Ballot {
        address token;
        uint64 sequence;
        uint32 stratum;
        bytes ciphertext;
        bytes tokenSignature;
        bytes signature;
    }

    /// @notice Emit PollCreated exactly as given.
    function createPoll(uint256 pollId, PollParams calldata p) external {
        emit PollCreated(
            pollId, p.metadataHash, p.optionCount, p.maxChoices, p.opensAt, p.closesAt, p.points,
            p.electionKey, p.issuerKeys, p.trustees, p.threshold
        );
    }

    /// @notice Emit TokensIssued, unchecked (the arrays may even differ in length).
    function recordIssuances(uint256 pollId, bytes32[] calldata pseudonyms, uint32[] calldata strata) external {
        emit TokensIssued(pollId, pseudonyms, strata);
    }

    /// @notice Emit one BallotCast per ballot, unchecked.
    function castBallots(uint256 pollId, Ballot[] calldata ballots) external {
        for (uint256 i = 0; i < ballots.length; ++i) {
            Ballot calldata b = ballots[i];
            emit BallotCast(pollId, b.token, b.sequence, b.stratum, b.ciphertext, b.tokenSignature, b.signature);
        }
    }

    /// @notice Emit KeyShareSubmitted as if `trustee` had posted it.
    function submitKeyShare(uint256 pollId, uint8 index, address trustee, bytes calldata share) external {
        emit KeyShareSubmitted(pollId, index, trustee, share);
    }

    /// @notice Emit ResultPublished.
    function publishResult(uint256 pollId, uint256[] calldata counts, bytes32 datasetHash) external {
        emit ResultPublished(pollId, counts, datasetHash);
    }
}

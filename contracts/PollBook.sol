// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {ICityPoints} from "./interfaces/ICityPoints.sol";
import {IPollBook} from "./interfaces/IPollBook.sol";

/**
 * @title PollBook
 * @notice Veche's ledger of city polls. Poll administrators create polls (each with a committed
 * register of eligible residents per stratum) and publish results, the issuer records
 * ballot-token issuances (each with the resident's signed request and register proof, crediting
 * the resident's points in the same call), the relayer posts batches of
 * encrypted ballots signed by one-time token keys, and trustees release their key shares after
 * the poll closes.
 *
 * What is checked here and what is not:
 * - Checked: poll parameters, the register's shape, the ballot window, each ballot's stratum and
 *   EIP-712 token-key signature, each issuance's request signature and register proof, one
 *   issuance (and one credit) per resident and poll, key shares only after close and only from (or signed
 *   by) their trustee, one result after `threshold` shares.
 * - Not checked (by design; the API checks them before relaying and every verifier after): the
 *   RSA token signature on a ballot, counted ballots <= issued tokens per stratum, and the revote
 *   rule (per token, the highest sequence counts). The first two need data the chain cannot check
 *   cheaply; verifiers must be able to see violations of all three.
 *
 * Ballots are a log: every ballot with a known stratum and a valid signature is emitted as
 * `BallotCast`, in batch order, whatever its sequence. The contract keeps no per-token state:
 * a sequence slot per token (a cold SLOAD and a zero-to-nonzero SSTORE) cost ~23,000 of a
 * ballot's ~47,000 gas and capped the chain's ballot throughput. The sequence rule lives in the
 * verifier (check 5), which recomputes it from the events; the API refuses a stale sequence
 * before it acknowledges a ballot, and its relay posts each acknowledged ballot exactly once (its
 * write-ahead log only re-sends the same signed transaction, or a repriced version of the same
 * nonce, and one nonce is mined once). A duplicate or an out-of-order revote that reaches the
 * chain anyway is visible to every verifier.
 *
 * A bad ballot in a batch does not revert the batch: it is skipped with `BallotRejected`, so one
 * malformed ballot cannot block the others relayed with it.
 *
 * Protocol v2's key ceremony (a poll created with a zero election key): the contract is the
 * DKG's authenticated broadcast channel. It checks each message's sender (an EIP-712 signature
 * of a member of the current attempt), its length and its place in the rounds, and keeps per
 * attempt one bit per member for each of "posted round 1", "certified" and, per complainer,
 * "complained about": trustee indices are uint8, so a uint256 holds every member. It does no
 * curve arithmetic: whether the messages are well formed, the proofs valid and the exclusions
 * justified is decided by every verifier from the events.
 */
contract PollBook is IPollBook, AccessControl, EIP712 {
    /// @notice Role that creates polls and publishes their results.
    bytes32 public constant POLL_ADMIN_ROLE = keccak256("POLL_ADMIN_ROLE");
    /// @notice Role of the issuer key: records ballot-token issuances.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    /// @notice Role of the relayer key: posts batches of ballots.
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");

    /// @notice EIP-712 type hash of the `Ballot` a token key signs.
    bytes32 public constant BALLOT_TYPEHASH =
        keccak256(
            "Ballot(uint256 pollId,address token,uint64 sequence,uint32 stratum,bytes32 ciphertextHash,bytes32 tokenSignatureHash)"
        );
    /// @notice EIP-712 type hash of the `IssuanceRequest` a resident's identity key signs.
    bytes32 public constant ISSUANCE_REQUEST_TYPEHASH =
        keccak256("IssuanceRequest(uint256 pollId,uint32 stratum,bytes32 blindedMessageHash,uint64 deadline)");
    /// @notice EIP-712 type hash of the `KeyShare` a trustee signs to have its share relayed.
    bytes32 public constant KEY_SHARE_TYPEHASH = keccak256("KeyShare(uint256 pollId,uint8 index,bytes32 shareHash)");
    /// @notice EIP-712 type hash of the `TrusteeKey` a trustee signs to register a static key.
    bytes32 public constant TRUSTEE_KEY_TYPEHASH =
        keccak256("TrusteeKey(address trustee,bytes32 keyHash,uint64 serial)");
    /// @notice EIP-712 type hash of the `CeremonyMessage` a trustee signs for each ceremony message.
    bytes32 public constant CEREMONY_MESSAGE_TYPEHASH =
        keccak256("CeremonyMessage(uint256 pollId,uint8 attempt,uint8 index,uint8 kind,bytes32 payloadHash)");

    uint256 private constant _MAX_TRUSTEES = type(uint8).max;
    bytes1 private constant _LEAF_PREFIX = 0x00;
    bytes1 private constant _LEAF_VERSION = 0x01;
    bytes1 private constant _NODE_PREFIX = 0x01;
    uint256 private constant _POINT_LENGTH = 33; // a SEC1-compressed P-256 point
    // Round 1: 33 per commitment, then PoP (65) and E (33), then per member uint64 length (8) and share (48).
    uint256 private constant _ROUND1_FIXED = 98;
    uint256 private constant _ROUND1_PER_MEMBER = 56;
    uint256 private constant _COMPLAINT_PUBLIC_LENGTH = 2; // accused, reason
    uint256 private constant _COMPLAINT_EVIDENCE_LENGTH = 132; // accused, reason, S^e (33), S^d (33), c, z
    uint256 private constant _CERTIFY_LENGTH = 98; // Y (33), signature (65)
    uint8 private constant _MAX_ATTEMPT = type(uint8).max;

    /// @dev A trustee's registered static key: the SEC1 prefix byte and x, in two slots.
    struct TrusteeKeyRecord {
        bytes32 x;
        uint64 serial;
        uint8 prefix;
    }

    /**
     * @dev A v2 poll's key ceremony, its current attempt. `opensAt` and `threshold` repeat the
     * poll's (immutable) values, so that a message reads one slot of the poll instead of two.
     * The bitmaps have bit i set for poll trustee i. `keyPrefix` ‖ `keyX` is the attempt's first
     * certified key (prefix 0: none yet), and the election key once `certified`.
     */
    struct Ceremony {
        uint64 opensAt;
        uint8 attempt;
        uint8 memberCount;
        uint8 threshold;
        uint8 keyPrefix;
        bool frozen;
        bool certified;
        uint256 members;
        uint256 round1;
        uint256 certifiers;
        bytes32 keyX;
    }

    ICityPoints private immutable _CITY_POINTS;

    uint256 private _pollCount;
    mapping(uint256 pollId => Poll) private _polls;
    mapping(uint256 pollId => bytes[]) private _issuerKeys;
    mapping(uint256 pollId => address[]) private _trustees;
    mapping(uint256 pollId => mapping(uint32 stratum => uint256)) private _issuedCounts;
    mapping(uint256 pollId => mapping(address resident => bool)) private _issued;
    mapping(uint256 pollId => bytes32[]) private _registerRoots;
    mapping(uint256 pollId => uint32[]) private _registerSizes;
    mapping(uint256 pollId => mapping(uint8 index => bytes)) private _keyShares;
    mapping(uint256 pollId => uint256[]) private _resultCounts;
    mapping(uint256 pollId => bytes32) private _datasetHashes;
    mapping(address trustee => TrusteeKeyRecord) private _trusteeKeys;
    mapping(uint256 pollId => Ceremony) private _ceremonies;
    mapping(uint256 pollId => mapping(uint8 attempt => mapping(uint8 complainer => uint256 accused)))
        private _complaints;

    /// @dev Reverts with {PollBookUnknownPoll} unless `pollId` names a created poll.
    modifier pollExists(uint256 pollId) {
        _requirePoll(pollId);
        _;
    }

    /**
     * @notice Deploys an empty poll book in the EIP-712 domain `Veche PollBook`, version 1.
     * @param admin The account that holds DEFAULT_ADMIN_ROLE and grants the other roles.
     * @param points The CityPoints contract credited at issuance (it must grant this contract
     * its POLL_BOOK_ROLE).
     */
    constructor(address admin, ICityPoints points) EIP712("Veche PollBook", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _CITY_POINTS = points;
    }

    // ---------------------------------------------------------------------------------------
    // Poll administration
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc IPollBook
    function createPoll(
        PollParams calldata params,
        bytes32[] calldata registerRoots,
        uint32[] calldata registerSizes
    ) external onlyRole(POLL_ADMIN_ROLE) returns (uint256 pollId) {
        _validatePollParams(params);
        uint256 strata = params.issuerKeys.length;
        if (registerRoots.length != strata || registerSizes.length != strata) {
            revert PollBookInvalidRegister(strata, registerRoots.length, registerSizes.length);
        }

        pollId = ++_pollCount;
        _polls[pollId] = Poll({
            metadataHash: params.metadataHash,
            electionKey: params.electionKey,
            opensAt: params.opensAt,
            closesAt: params.closesAt,
            points: params.points,
            issuerKeyCount: uint32(params.issuerKeys.length),
            optionCount: params.optionCount,
            maxChoices: params.maxChoices,
            threshold: params.threshold,
            trusteeCount: uint8(params.trustees.length),
            shareCount: 0,
            resultPublished: false
        });
        bytes[] storage keys = _issuerKeys[pollId];
        for (uint256 i = 0; i < params.issuerKeys.length; ++i) {
            keys.push(params.issuerKeys[i]);
        }
        _trustees[pollId] = params.trustees;
        _registerRoots[pollId] = registerRoots;
        _registerSizes[pollId] = registerSizes;

        _emitPollCreated(pollId, params);
        emit RegisterCommitted(pollId, registerRoots, registerSizes);
        if (params.electionKey == bytes32(0)) _startFirstAttempt(pollId, params);
    }

    /// @inheritdoc IPollBook
    function publishResult(
        uint256 pollId,
        uint256[] calldata counts,
        bytes32 datasetHash
    ) external onlyRole(POLL_ADMIN_ROLE) pollExists(pollId) {
        Poll storage p = _polls[pollId];
        if (block.timestamp < p.closesAt) revert PollBookNotClosed(pollId, p.closesAt);
        if (p.resultPublished) revert PollBookResultAlreadyPublished(pollId);
        _requireElectionKey(pollId);
        if (p.shareCount < p.threshold) revert PollBookNotEnoughShares(pollId, p.shareCount, p.threshold);
        if (counts.length != p.optionCount) revert PollBookInvalidCounts(pollId, counts.length, p.optionCount);

        p.resultPublished = true;
        _resultCounts[pollId] = counts;
        _datasetHashes[pollId] = datasetHash;
        emit ResultPublished(pollId, counts, datasetHash);
    }

    // ---------------------------------------------------------------------------------------
    // Issuance and ballots
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc IPollBook
    function recordIssuances(
        uint256 pollId,
        IssuanceRecord[] calldata issuances
    ) external onlyRole(ISSUER_ROLE) pollExists(pollId) {
        Poll storage p = _polls[pollId];
        uint64 closesAt = p.closesAt;
        if (block.timestamp >= closesAt) revert PollBookIssuanceClosed(pollId, closesAt);

        uint32 issuerKeyCount = p.issuerKeyCount;
        mapping(address => bool) storage issued = _issued[pollId];
        mapping(uint32 => uint256) storage counts = _issuedCounts[pollId];
        address[] memory residents = new address[](issuances.length);
        for (uint256 i = 0; i < issuances.length; ++i) {
            IssuanceRecord calldata item = issuances[i];
            address resident = item.resident;
            _checkRequest(pollId, issuerKeyCount, item);
            if (issued[resident]) revert PollBookAlreadyIssued(pollId, resident);

            issued[resident] = true;
            ++counts[item.stratum];
            residents[i] = resident;
        }
        if (issuances.length == 0) return;
        emit IssuancesRecorded(pollId, issuances);
        // The points go to the residents who signed, in the same call: no key credits anyone else.
        if (p.points != 0) _CITY_POINTS.creditIssuances(pollId, residents, p.points);
    }

    /// @inheritdoc IPollBook
    function castBallots(
        uint256 pollId,
        Ballot[] calldata ballots
    ) external onlyRole(RELAYER_ROLE) pollExists(pollId) returns (uint256 accepted) {
        Poll storage p = _polls[pollId];
        uint64 opensAt = p.opensAt;
        uint64 closesAt = p.closesAt;
        if (block.timestamp < opensAt || block.timestamp >= closesAt) {
            revert PollBookNotOpen(pollId, opensAt, closesAt);
        }
        _requireElectionKey(pollId);

        uint32 issuerKeyCount = p.issuerKeyCount;
        for (uint256 i = 0; i < ballots.length; ++i) {
            Ballot calldata b = ballots[i];
            if (b.stratum >= issuerKeyCount) {
                emit BallotRejected(pollId, b.token, b.sequence, BallotRejection.UnknownStratum);
                continue;
            }
            bytes32 digest = ballotDigest(
                pollId,
                b.token,
                b.sequence,
                b.stratum,
                _calldataKeccak(b.ciphertext),
                _calldataKeccak(b.tokenSignature)
            );
            if (!_isSignedBy(digest, b.signature, b.token)) {
                emit BallotRejected(pollId, b.token, b.sequence, BallotRejection.BadSignature);
                continue;
            }
            // No sequence check: the verifier applies the revote rule (see the contract's notice).
            ++accepted;
            emit BallotCast(pollId, b.token, b.sequence, b.stratum, b.ciphertext, b.tokenSignature, b.signature);
        }
        if (accepted != 0) emit BallotsRelayed(pollId, msg.sender, accepted);
    }

    // ---------------------------------------------------------------------------------------
    // Key shares
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc IPollBook
    function submitKeyShare(uint256 pollId, uint8 index, bytes calldata share) external pollExists(pollId) {
        address trustee = _trustee(pollId, index);
        if (msg.sender != trustee) revert PollBookNotTrustee(pollId, index, msg.sender);
        _storeKeyShare(pollId, index, trustee, share);
    }

    /// @inheritdoc IPollBook
    function submitKeyShareFor(
        uint256 pollId,
        uint8 index,
        bytes calldata share,
        bytes calldata signature
    ) external pollExists(pollId) {
        address trustee = _trustee(pollId, index);
        if (!_isSignedBy(keyShareDigest(pollId, index, keccak256(share)), signature, trustee)) {
            revert PollBookInvalidShareSignature(pollId, index);
        }
        _storeKeyShare(pollId, index, trustee, share);
    }

    /// @inheritdoc IPollBook
    function registerRelay(
        address relayer,
        string calldata name,
        string calldata url
    ) external onlyRole(getRoleAdmin(RELAYER_ROLE)) {
        uint256 nameLength = bytes(name).length;
        uint256 urlLength = bytes(url).length;
        if (relayer == address(0) || nameLength == 0 || nameLength > 64 || urlLength == 0 || urlLength > 256) {
            revert PollBookInvalidRelay(relayer, nameLength, urlLength);
        }
        _grantRole(RELAYER_ROLE, relayer);
        emit RelayRegistered(relayer, name, url);
    }

    // ---------------------------------------------------------------------------------------
    // Trustee keys and the key ceremony (protocol v2)
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc IPollBook
    function registerTrusteeKey(
        address trustee,
        bytes calldata key,
        uint64 serial,
        bytes calldata signature
    ) external {
        if (!_isCompressedPoint(key)) revert PollBookInvalidTrusteeKey(trustee, key.length);
        TrusteeKeyRecord storage record = _trusteeKeys[trustee];
        uint64 expected = record.serial + 1;
        if (serial != expected) revert PollBookInvalidTrusteeKeySerial(trustee, serial, expected);
        if (!_isSignedBy(trusteeKeyDigest(trustee, _calldataKeccak(key), serial), signature, trustee)) {
            revert PollBookInvalidTrusteeKeySignature(trustee);
        }

        record.x = bytes32(key[1:]);
        record.serial = serial;
        record.prefix = uint8(key[0]);
        emit TrusteeKeyRegistered(trustee, serial, key);
    }

    /// @inheritdoc IPollBook
    function postCeremonyMessage(
        uint256 pollId,
        uint8 attempt,
        uint8 index,
        uint8 kind,
        bytes calldata payload,
        bytes calldata signature
    ) external pollExists(pollId) {
        Ceremony storage c = _openCeremony(pollId);
        if (attempt != c.attempt) revert PollBookWrongAttempt(pollId, attempt, c.attempt);
        uint256 bit = uint256(1) << index;
        if (c.members & bit == 0) revert PollBookNotCeremonyMember(pollId, attempt, index);
        _checkCeremonySignature(pollId, attempt, index, kind, payload, signature);

        bool certifiedNow = false;
        if (kind == uint8(CeremonyMessageKind.Round1)) {
            _acceptRound1(pollId, c, index, bit, payload.length);
        } else if (kind == uint8(CeremonyMessageKind.Complaint)) {
            _acceptComplaint(pollId, c, index, payload);
        } else if (kind == uint8(CeremonyMessageKind.Certify)) {
            certifiedNow = _acceptCertification(pollId, c, index, bit, payload);
        } else {
            revert PollBookUnknownMessageKind(pollId, kind);
        }
        emit CeremonyMessagePosted(pollId, attempt, index, kind, payload);
        if (certifiedNow) emit ElectionKeyCertified(pollId, attempt, payload[:_POINT_LENGTH]);
    }

    /// @inheritdoc IPollBook
    function restartCeremony(
        uint256 pollId,
        uint8[] calldata excluded
    ) external onlyRole(POLL_ADMIN_ROLE) pollExists(pollId) {
        Ceremony storage c = _openCeremony(pollId);
        uint8 attempt = c.attempt;
        uint256 members = c.members;
        uint256 count = c.memberCount;
        for (uint256 i = 0; i < excluded.length; ++i) {
            uint256 bit = uint256(1) << excluded[i];
            if (members & bit == 0) revert PollBookNotCeremonyMember(pollId, attempt, excluded[i]);
            members &= ~bit;
            --count;
        }
        if (count < c.threshold) revert PollBookTooFewMembers(pollId, count, c.threshold);
        if (attempt == _MAX_ATTEMPT) revert PollBookTooManyAttempts(pollId);

        ++attempt;
        c.attempt = attempt;
        c.members = members;
        c.memberCount = uint8(count);
        c.round1 = 0;
        c.certifiers = 0;
        c.keyPrefix = 0;
        c.frozen = false;
        _emitCeremonyStarted(pollId, attempt, members, count);
    }

    // ---------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc IPollBook
    function poll(uint256 pollId) external view pollExists(pollId) returns (Poll memory) {
        return _polls[pollId];
    }

    /// @inheritdoc IPollBook
    function pollCount() external view returns (uint256) {
        return _pollCount;
    }

    /// @inheritdoc IPollBook
    function issuerKey(uint256 pollId, uint32 stratum) external view pollExists(pollId) returns (bytes memory) {
        bytes[] storage keys = _issuerKeys[pollId];
        if (stratum >= keys.length) revert PollBookUnknownStratum(pollId, stratum);
        return keys[stratum];
    }

    /// @inheritdoc IPollBook
    function issuerKeys(uint256 pollId) external view pollExists(pollId) returns (bytes[] memory) {
        return _issuerKeys[pollId];
    }

    /// @inheritdoc IPollBook
    function trustees(uint256 pollId) external view pollExists(pollId) returns (address[] memory) {
        return _trustees[pollId];
    }

    /// @inheritdoc IPollBook
    function issuedCount(uint256 pollId, uint32 stratum) external view returns (uint256) {
        return _issuedCounts[pollId][stratum];
    }

    /// @inheritdoc IPollBook
    function isIssued(uint256 pollId, address resident) external view returns (bool) {
        return _issued[pollId][resident];
    }

    /// @inheritdoc IPollBook
    function register(
        uint256 pollId
    ) external view pollExists(pollId) returns (bytes32[] memory roots, uint32[] memory sizes) {
        return (_registerRoots[pollId], _registerSizes[pollId]);
    }

    /// @inheritdoc IPollBook
    function cityPoints() external view returns (address) {
        return address(_CITY_POINTS);
    }

    /// @inheritdoc IPollBook
    function shareCount(uint256 pollId) external view returns (uint8) {
        return _polls[pollId].shareCount;
    }

    /// @inheritdoc IPollBook
    function keyShare(uint256 pollId, uint8 index) external view returns (bytes memory) {
        return _keyShares[pollId][index];
    }

    /// @inheritdoc IPollBook
    function result(
        uint256 pollId
    ) external view returns (bool published, uint256[] memory counts, bytes32 datasetHash) {
        return (_polls[pollId].resultPublished, _resultCounts[pollId], _datasetHashes[pollId]);
    }

    /// @inheritdoc IPollBook
    function ceremony(
        uint256 pollId
    )
        external
        view
        pollExists(pollId)
        returns (uint8 attempt, uint8[] memory members, bool certified, bytes memory electionKey)
    {
        Ceremony storage c = _ceremonies[pollId];
        members = _memberList(c.members, c.memberCount);
        if (c.certified) electionKey = abi.encodePacked(c.keyPrefix, c.keyX);
        return (c.attempt, members, c.certified, electionKey);
    }

    /// @inheritdoc IPollBook
    function trusteeKey(address trustee) external view returns (bytes memory key, uint64 serial) {
        TrusteeKeyRecord storage record = _trusteeKeys[trustee];
        serial = record.serial;
        if (serial != 0) key = abi.encodePacked(record.prefix, record.x);
    }

    /// @inheritdoc IPollBook
    function issuanceRequestDigest(
        uint256 pollId,
        uint32 stratum,
        bytes32 blindedMessageHash,
        uint64 deadline
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(abi.encode(ISSUANCE_REQUEST_TYPEHASH, pollId, stratum, blindedMessageHash, deadline))
            );
    }

    /// @inheritdoc IPollBook
    function ballotDigest(
        uint256 pollId,
        address token,
        uint64 sequence,
        uint32 stratum,
        bytes32 ciphertextHash,
        bytes32 tokenSignatureHash
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(BALLOT_TYPEHASH, pollId, token, sequence, stratum, ciphertextHash, tokenSignatureHash)
                )
            );
    }

    /// @inheritdoc IPollBook
    function keyShareDigest(uint256 pollId, uint8 index, bytes32 shareHash) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(KEY_SHARE_TYPEHASH, pollId, index, shareHash)));
    }

    /// @inheritdoc IPollBook
    function trusteeKeyDigest(address trustee, bytes32 keyHash, uint64 serial) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(TRUSTEE_KEY_TYPEHASH, trustee, keyHash, serial)));
    }

    /// @inheritdoc IPollBook
    function ceremonyMessageDigest(
        uint256 pollId,
        uint8 attempt,
        uint8 index,
        uint8 kind,
        bytes32 payloadHash
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(abi.encode(CEREMONY_MESSAGE_TYPEHASH, pollId, attempt, index, kind, payloadHash))
            );
    }

    // ---------------------------------------------------------------------------------------
    // Internal
    // ---------------------------------------------------------------------------------------

    /// @dev Reverts with {PollBookUnknownPoll} unless `pollId` names a created poll.
    function _requirePoll(uint256 pollId) internal view {
        if (pollId == 0 || pollId > _pollCount) revert PollBookUnknownPoll(pollId);
    }

    /// @dev The trustee with share index `index`; reverts with {PollBookUnknownTrustee}.
    function _trustee(uint256 pollId, uint8 index) internal view returns (address) {
        address[] storage list = _trustees[pollId];
        if (index >= list.length) revert PollBookUnknownTrustee(pollId, index);
        return list[index];
    }

    /**
     * @dev Records trustee `index`'s share after checking the poll is closed, the share is
     * non-empty and the index has not posted yet. Emits {KeyShareSubmitted}.
     */
    function _storeKeyShare(uint256 pollId, uint8 index, address trustee, bytes calldata share) internal {
        Poll storage p = _polls[pollId];
        if (block.timestamp < p.closesAt) revert PollBookNotClosed(pollId, p.closesAt);
        if (share.length == 0) revert PollBookEmptyShare(pollId, index);
        bytes storage slot = _keyShares[pollId][index];
        if (slot.length != 0) revert PollBookShareAlreadySubmitted(pollId, index);

        _keyShares[pollId][index] = share;
        ++p.shareCount;
        emit KeyShareSubmitted(pollId, index, trustee, share);
    }

    // ---------------------------------------------------------------------------------------
    // Private
    // ---------------------------------------------------------------------------------------

    /// @dev Reverts unless `params` describes a well-formed poll that has not closed yet.
    function _validatePollParams(PollParams calldata params) private view {
        if (params.optionCount < 2 || params.maxChoices == 0 || params.maxChoices > params.optionCount) {
            revert PollBookInvalidOptions(params.optionCount, params.maxChoices);
        }
        if (params.opensAt >= params.closesAt || params.closesAt <= block.timestamp) {
            revert PollBookInvalidWindow(params.opensAt, params.closesAt);
        }
        uint256 keyCount = params.issuerKeys.length;
        if (keyCount == 0) revert PollBookNoIssuerKeys();
        for (uint256 i = 0; i < keyCount; ++i) {
            if (params.issuerKeys[i].length == 0) revert PollBookEmptyIssuerKey(i);
        }
        // A zero election key makes a v2 poll; its ceremony must be able to end before it opens.
        if (params.electionKey == bytes32(0) && params.opensAt <= block.timestamp) {
            revert PollBookInvalidWindow(params.opensAt, params.closesAt);
        }

        address[] calldata list = params.trustees;
        if (list.length == 0 || list.length > _MAX_TRUSTEES) revert PollBookInvalidTrusteeCount(list.length);
        for (uint256 i = 0; i < list.length; ++i) {
            address trustee = list[i];
            if (trustee == address(0)) revert PollBookInvalidTrustee(i, trustee);
            for (uint256 j = 0; j < i; ++j) {
                if (list[j] == trustee) revert PollBookInvalidTrustee(i, trustee);
            }
        }
        if (params.threshold == 0 || params.threshold > list.length) {
            revert PollBookInvalidThreshold(params.threshold, list.length);
        }
    }

    /// @dev Emits {PollCreated} (a separate frame keeps the 11 event fields within the stack).
    function _emitPollCreated(uint256 pollId, PollParams calldata params) private {
        bytes[] memory keys = params.issuerKeys;
        address[] memory list = params.trustees;
        emit PollCreated(
            pollId,
            params.metadataHash,
            params.optionCount,
            params.maxChoices,
            params.opensAt,
            params.closesAt,
            params.points,
            params.electionKey,
            keys,
            list,
            params.threshold
        );
    }

    /// @dev Reverts with {PollBookKeyNotCertified} if `pollId` is a v2 poll whose key is not certified.
    function _requireElectionKey(uint256 pollId) private view {
        Ceremony storage c = _ceremonies[pollId];
        if (c.attempt != 0 && !c.certified) revert PollBookKeyNotCertified(pollId);
    }

    /**
     * @dev The ceremony of `pollId` if messages and restarts are still accepted: a v2 poll,
     * before opensAt, not certified (else {PollBookNoCeremony}, {PollBookCeremonyClosed},
     * {PollBookKeyAlreadyCertified}).
     */
    function _openCeremony(uint256 pollId) private view returns (Ceremony storage c) {
        c = _ceremonies[pollId];
        if (c.attempt == 0) revert PollBookNoCeremony(pollId);
        if (block.timestamp >= c.opensAt) revert PollBookCeremonyClosed(pollId, c.opensAt);
        if (c.certified) revert PollBookKeyAlreadyCertified(pollId);
    }

    /**
     * @dev Reverts with {PollBookInvalidCeremonySignature} unless trustee `index` signed the
     * message (a frame of its own: the six arguments fill the caller's stack).
     */
    function _checkCeremonySignature(
        uint256 pollId,
        uint8 attempt,
        uint8 index,
        uint8 kind,
        bytes calldata payload,
        bytes calldata signature
    ) private view {
        bytes32 digest = ceremonyMessageDigest(pollId, attempt, index, kind, _calldataKeccak(payload));
        if (!_isSignedBy(digest, signature, _trustees[pollId][index])) {
            revert PollBookInvalidCeremonySignature(pollId, attempt, index);
        }
    }

    /**
     * @dev Starts attempt 1 of a new v2 poll with every trustee as a member, after checking
     * that each has a key and no two the same. Emits {CeremonyStarted}.
     */
    function _startFirstAttempt(uint256 pollId, PollParams calldata params) private {
        uint256 n = params.trustees.length;
        bytes32[] memory xs = new bytes32[](n);
        uint8[] memory prefixes = new uint8[](n);
        for (uint256 i = 0; i < n; ++i) {
            TrusteeKeyRecord storage record = _trusteeKeys[params.trustees[i]];
            if (record.serial == 0) revert PollBookMissingTrusteeKey(i, params.trustees[i]);
            bytes32 x = record.x;
            uint8 prefix = record.prefix;
            for (uint256 j = 0; j < i; ++j) {
                if (xs[j] == x && prefixes[j] == prefix) revert PollBookDuplicateTrusteeKey(i, j);
            }
            xs[i] = x;
            prefixes[i] = prefix;
        }
        uint256 members = (uint256(1) << n) - 1; // n <= 255
        Ceremony storage c = _ceremonies[pollId];
        c.members = members;
        c.opensAt = params.opensAt;
        c.attempt = 1;
        c.memberCount = uint8(n);
        c.threshold = params.threshold;
        _emitCeremonyStarted(pollId, 1, members, n);
    }

    /// @dev Emits {CeremonyStarted} with the members' currently registered keys.
    function _emitCeremonyStarted(uint256 pollId, uint8 attempt, uint256 members, uint256 count) private {
        uint8[] memory list = _memberList(members, count);
        address[] storage pollTrustees = _trustees[pollId];
        bytes[] memory keys = new bytes[](count);
        for (uint256 m = 0; m < count; ++m) {
            TrusteeKeyRecord storage record = _trusteeKeys[pollTrustees[list[m]]];
            keys[m] = abi.encodePacked(record.prefix, record.x);
        }
        emit CeremonyStarted(pollId, attempt, list, keys);
    }

    /// @dev Records member `index`'s round 1 after checking its length and that it is the first.
    function _acceptRound1(uint256 pollId, Ceremony storage c, uint8 index, uint256 bit, uint256 length) private {
        uint256 expected = _POINT_LENGTH * c.threshold + _ROUND1_FIXED + _ROUND1_PER_MEMBER * c.memberCount;
        if (length != expected) {
            revert PollBookInvalidPayloadLength(pollId, uint8(CeremonyMessageKind.Round1), length, expected);
        }
        if (c.round1 & bit != 0) {
            revert PollBookMessageAlreadyPosted(pollId, c.attempt, index, uint8(CeremonyMessageKind.Round1));
        }
        c.round1 |= bit;
    }

    /**
     * @dev Records member `index`'s complaint after checking its reason, its length and its
     * accused (a member other than `index` with a round 1, not accused by `index` before), and
     * freezes the attempt.
     */
    function _acceptComplaint(uint256 pollId, Ceremony storage c, uint8 index, bytes calldata payload) private {
        uint8 kind = uint8(CeremonyMessageKind.Complaint);
        if (payload.length < _COMPLAINT_PUBLIC_LENGTH) {
            revert PollBookInvalidPayloadLength(pollId, kind, payload.length, _COMPLAINT_PUBLIC_LENGTH);
        }
        uint8 accused = uint8(payload[0]);
        uint8 reason = uint8(payload[1]);
        if (reason == uint8(ComplaintReason.Reserved) || reason > uint8(ComplaintReason.ShareVerification)) {
            revert PollBookUnknownComplaintReason(pollId, reason);
        }
        uint256 expected = reason == uint8(ComplaintReason.MalformedRound1)
            ? _COMPLAINT_PUBLIC_LENGTH
            : _COMPLAINT_EVIDENCE_LENGTH;
        if (payload.length != expected) revert PollBookInvalidPayloadLength(pollId, kind, payload.length, expected);
        uint8 attempt = c.attempt;
        uint256 accusedBit = uint256(1) << accused;
        if (accused == index || c.members & accusedBit == 0 || c.round1 & accusedBit == 0) {
            revert PollBookInvalidAccused(pollId, attempt, accused);
        }
        mapping(uint8 => uint256) storage complaints = _complaints[pollId][attempt];
        if (complaints[index] & accusedBit != 0) revert PollBookDuplicateComplaint(pollId, attempt, index, accused);

        complaints[index] |= accusedBit;
        c.frozen = true;
    }

    /**
     * @dev Records member `index`'s certification of the key in `payload` after checking the
     * rounds are complete and unfrozen, the member's first, the key well formed and equal to
     * the attempt's first; returns whether it was the last member's (the key is certified).
     */
    function _acceptCertification(
        uint256 pollId,
        Ceremony storage c,
        uint8 index,
        uint256 bit,
        bytes calldata payload
    ) private returns (bool) {
        uint8 kind = uint8(CeremonyMessageKind.Certify);
        uint8 attempt = c.attempt;
        if (payload.length != _CERTIFY_LENGTH) {
            revert PollBookInvalidPayloadLength(pollId, kind, payload.length, _CERTIFY_LENGTH);
        }
        uint256 members = c.members;
        if (c.round1 != members) revert PollBookRound1Incomplete(pollId, attempt);
        if (c.frozen) revert PollBookCeremonyFrozen(pollId, attempt);
        uint256 certifiers = c.certifiers;
        if (certifiers & bit != 0) revert PollBookMessageAlreadyPosted(pollId, attempt, index, kind);
        if (!_isCompressedPoint(payload[:_POINT_LENGTH])) revert PollBookInvalidElectionKey(pollId, attempt, index);
        uint8 prefix = uint8(payload[0]);
        bytes32 x = bytes32(payload[1:_POINT_LENGTH]);
        if (certifiers == 0) {
            c.keyPrefix = prefix;
            c.keyX = x;
        } else if (prefix != c.keyPrefix || x != c.keyX) {
            revert PollBookElectionKeyMismatch(pollId, attempt, index);
        }

        certifiers |= bit;
        c.certifiers = certifiers;
        if (certifiers != members) return false;
        c.certified = true;
        return true;
    }

    /// @dev The poll trustee indices set in `members`, ascending (`count` of them).
    function _memberList(uint256 members, uint256 count) private pure returns (uint8[] memory list) {
        list = new uint8[](count);
        uint256 m = 0;
        for (uint256 i = 0; m < count; ++i) {
            if (members & (uint256(1) << i) != 0) {
                list[m] = uint8(i);
                ++m;
            }
        }
    }

    /// @dev Whether `key` is 33 bytes with the SEC1 prefix of a compressed point (0x02 or 0x03).
    function _isCompressedPoint(bytes calldata key) private pure returns (bool) {
        return key.length == _POINT_LENGTH && (key[0] == 0x02 || key[0] == 0x03);
    }

    /**
     * @dev Whether the 65-byte (r, s, v) `signature` over `digest` recovers to `signer`. Never
     * reverts: malformed, malleable (high-s) and non-recovering signatures are simply invalid, as
     * with OpenZeppelin's {ECDSA-tryRecover}. Reads r, s and v straight from calldata.
     */
    function _isSignedBy(bytes32 digest, bytes calldata signature, address signer) private pure returns (bool) {
        if (signature.length != 65) return false;
        bytes32 r;
        bytes32 s;
        uint8 v;
        // Reads r, s and v from calldata: ECDSA.tryRecover(bytes) would copy the signature to memory.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        (address recovered, ECDSA.RecoverError error, ) = ECDSA.tryRecover(digest, v, r, s);
        return error == ECDSA.RecoverError.NoError && recovered == signer;
    }

    /**
     * @dev Reverts unless `item` is a request of its resident, in a known stratum, proven in
     * that stratum's register (a frame of its own: the loop's locals fill the stack).
     */
    function _checkRequest(uint256 pollId, uint32 issuerKeyCount, IssuanceRecord calldata item) private view {
        uint32 stratum = item.stratum;
        if (stratum >= issuerKeyCount) revert PollBookUnknownStratum(pollId, stratum);
        bytes32 digest = issuanceRequestDigest(pollId, stratum, item.blindedMessageHash, item.deadline);
        if (!_isSignedBy(digest, item.signature, item.resident)) {
            revert PollBookInvalidRequestSignature(pollId, item.resident);
        }
        if (!_inRegister(pollId, stratum, item.leafIndex, item.resident, item.proof)) {
            revert PollBookNotInRegister(pollId, stratum, item.resident);
        }
    }

    /**
     * @dev Whether `proof` shows `resident` at `leafIndex` of the register of (`pollId`,
     * `stratum`) (docs/protocol.md §3.11): the index below the size, exactly depth(size) steps,
     * leaf keccak256(0x00 ‖ 0x01 ‖ uint32 leafIndex ‖ resident), node keccak256(0x01 ‖ left ‖
     * right), bit i of the index set when the path's node at level i is a right child.
     */
    function _inRegister(
        uint256 pollId,
        uint32 stratum,
        uint32 leafIndex,
        address resident,
        bytes32[] calldata proof
    ) private view returns (bool) {
        uint32 size = _registerSizes[pollId][stratum];
        if (leafIndex >= size) return false;
        uint256 depth = 0;
        while ((uint256(1) << depth) < size) ++depth;
        if (proof.length != depth) return false;
        bytes32 node = keccak256(abi.encodePacked(_LEAF_PREFIX, _LEAF_VERSION, leafIndex, resident));
        uint256 position = leafIndex;
        for (uint256 i = 0; i < depth; ++i) {
            node = position & 1 == 0
                ? keccak256(abi.encodePacked(_NODE_PREFIX, node, proof[i]))
                : keccak256(abi.encodePacked(_NODE_PREFIX, proof[i], node));
            position >>= 1;
        }
        return node == _registerRoots[pollId][stratum];
    }

    /// @dev keccak256 of calldata bytes, hashed in scratch memory without allocating.
    function _calldataKeccak(bytes calldata data) private pure returns (bytes32 hash) {
        // Twice on every ballot's path (docs/benchmarks.md): one calldatacopy, then the hash.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, data.offset, data.length)
            hash := keccak256(ptr, data.length)
        }
    }
}

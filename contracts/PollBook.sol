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

    uint256 private constant _MAX_TRUSTEES = type(uint8).max;
    bytes1 private constant _LEAF_PREFIX = 0x00;
    bytes1 private constant _LEAF_VERSION = 0x01;
    bytes1 private constant _NODE_PREFIX = 0x01;

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
        if (params.electionKey == bytes32(0)) revert PollBookZeroElectionKey();

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

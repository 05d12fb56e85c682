// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title IPollBook
 * @notice The ledger of one city's polls: parameters, each stratum's committed register of eligible
 * residents, issued ballot tokens (each backed by a resident's signed request and a proof that the
 * resident is in the register), encrypted ballots, trustees' decryption-key shares and the
 * published result.
 *
 * Everything a verifier needs to recount a poll is in the events below; the storage only keeps
 * what the contract must check (time windows, registers, issued residents, shares, one result). Ballots
 * leave no state: the revote rule (per token, the highest sequence counts) is the verifier's.
 */
interface IPollBook {
    /**
     * @notice Why a ballot in a `castBallots` batch was skipped (the batch itself goes on).
     * @dev Emitted as a uint8; each value is fixed forever by its member, so a retired reason
     * stays in the list: StaleSequence (2) was retired when the sequence rule moved to the
     * verifier and is never emitted. A new reason is appended (it takes 3).
     */
    enum BallotRejection {
        UnknownStratum,
        BadSignature,
        StaleSequence
    }

    /**
     * @notice What a poll administrator submits to create a poll.
     * @param metadataHash Hash of the off-chain poll description (question, options, audience).
     * @param optionCount Number of options (at least 2).
     * @param maxChoices How many options a ballot may mark (1 for single choice).
     * @param opensAt First second (block timestamp) at which ballots are accepted.
     * @param closesAt First second at which ballots are refused and key shares accepted.
     * @param points Loyalty points a resident earns for this poll.
     * @param electionKey The X25519 public key ballots are sealed to.
     * @param issuerKeys One RSA issuer public key per stratum (index = stratum), as encoded by
     * the protocol core.
     * @param trustees The key-share holders; share `i` is posted by `trustees[i]`.
     * @param threshold Shares needed to rebuild the election secret key (k of n).
     */
    // Never stored (calldata only), so packing does not apply; the field order is createPoll's ABI.
    // solhint-disable-next-line gas-struct-packing
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

    /**
     * @notice A poll as stored (the issuer keys and trustees are read with `issuerKey`,
     * `issuerKeys` and `trustees`).
     */
    struct Poll {
        bytes32 metadataHash;
        bytes32 electionKey;
        uint64 opensAt;
        uint64 closesAt;
        uint32 points;
        uint32 issuerKeyCount;
        uint8 optionCount;
        uint8 maxChoices;
        uint8 threshold;
        uint8 trusteeCount;
        uint8 shareCount;
        bool resultPublished;
    }

    /**
     * @notice One ballot as a relayer submits it.
     * @param token The one-time token address whose key signed the ballot.
     * @param sequence Revote counter of the token (starts at 1; the verifier counts the token's
     * highest one; the contract does not compare sequences).
     * @param stratum Index of the issuer key that signed the token.
     * @param ciphertext The sealed, versioned choice.
     * @param tokenSignature The RSA blind signature on the token (checked off chain).
     * @param signature The token key's 65-byte EIP-712 signature over the `Ballot` type.
     */
    struct Ballot {
        address token;
        uint64 sequence;
        uint32 stratum;
        bytes ciphertext;
        bytes tokenSignature;
        bytes signature;
    }

    /**
     * @notice One recorded issuance (protocol v2): the resident's EIP-712 `IssuanceRequest` and
     * the proof that the resident is in the stratum's committed register.
     * @param resident The resident's identity address, which signed the request.
     * @param stratum The stratum the token was requested (and blindly signed) in.
     * @param blindedMessageHash keccak256 of the blinded token message the issuer signed.
     * @param deadline The request's deadline (checked by the API when it signs, not here: the
     * record may be mined later).
     * @param signature The resident's 65-byte signature over {issuanceRequestDigest}.
     * @param leafIndex The resident's position in the stratum's register tree.
     * @param proof The sibling hashes from the leaf up to the root (depth(size) of them).
     */
    // Never stored (calldata and logs only), so packing does not apply; the field order is the ABI's.
    // solhint-disable-next-line gas-struct-packing
    struct IssuanceRecord {
        address resident;
        uint32 stratum;
        bytes32 blindedMessageHash;
        uint64 deadline;
        bytes signature;
        uint32 leafIndex;
        bytes32[] proof;
    }

    // ---------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------

    /// @dev No poll has this id.
    error PollBookUnknownPoll(uint256 pollId);

    /// @dev optionCount < 2, or maxChoices outside [1, optionCount].
    error PollBookInvalidOptions(uint8 optionCount, uint8 maxChoices);

    /// @dev opensAt >= closesAt, or closesAt is not in the future.
    error PollBookInvalidWindow(uint64 opensAt, uint64 closesAt);

    /// @dev A poll needs at least one issuer key.
    error PollBookNoIssuerKeys();

    /// @dev The issuer key of `stratum` is empty.
    error PollBookEmptyIssuerKey(uint256 stratum);

    /// @dev The election key is zero.
    error PollBookZeroElectionKey();

    /// @dev The trustee list is empty or longer than 255 (share indices are uint8).
    error PollBookInvalidTrusteeCount(uint256 count);

    /// @dev The trustee at `index` is the zero address or repeats an earlier one.
    error PollBookInvalidTrustee(uint256 index, address trustee);

    /// @dev threshold is 0 or larger than the number of trustees.
    error PollBookInvalidThreshold(uint8 threshold, uint256 trusteeCount);

    /// @dev Tokens can no longer be issued: the poll closed at `closesAt`.
    error PollBookIssuanceClosed(uint256 pollId, uint64 closesAt);

    /// @dev The register needs one root and one size per stratum (issuer key).
    error PollBookInvalidRegister(uint256 strata, uint256 roots, uint256 sizes);

    /// @dev The issuance request is not signed by `resident`.
    error PollBookInvalidRequestSignature(uint256 pollId, address resident);

    /// @dev `resident` is not proven to be in the committed register of `stratum`.
    error PollBookNotInRegister(uint256 pollId, uint32 stratum, address resident);

    /// @dev The poll has no issuer key with index `stratum`.
    error PollBookUnknownStratum(uint256 pollId, uint32 stratum);

    /// @dev A token was already issued to `resident` in this poll.
    error PollBookAlreadyIssued(uint256 pollId, address resident);

    /// @dev Ballots are accepted only in [opensAt, closesAt).
    error PollBookNotOpen(uint256 pollId, uint64 opensAt, uint64 closesAt);

    /// @dev The poll closes at `closesAt`; key shares and the result come after.
    error PollBookNotClosed(uint256 pollId, uint64 closesAt);

    /// @dev The poll has no trustee with this index.
    error PollBookUnknownTrustee(uint256 pollId, uint8 index);

    /// @dev `account` is not the trustee with this index.
    error PollBookNotTrustee(uint256 pollId, uint8 index, address account);

    /// @dev The relayed key-share signature is malformed or not by the trustee.
    error PollBookInvalidShareSignature(uint256 pollId, uint8 index);

    /// @dev A key share cannot be empty.
    error PollBookEmptyShare(uint256 pollId, uint8 index);

    /// @dev The trustee with this index already posted its share.
    error PollBookShareAlreadySubmitted(uint256 pollId, uint8 index);

    /// @dev Fewer than `threshold` shares have been posted.
    error PollBookNotEnoughShares(uint256 pollId, uint8 shareCount, uint8 threshold);

    /// @dev The result needs exactly one count per option.
    error PollBookInvalidCounts(uint256 pollId, uint256 length, uint8 optionCount);

    /// @dev The poll's result is already published.
    error PollBookResultAlreadyPublished(uint256 pollId);

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    /**
     * @notice A poll was created; the event carries every parameter a verifier needs.
     * @param pollId The new poll's id.
     * @param metadataHash Hash of the off-chain poll description (question, options, audience).
     * @param optionCount Number of options.
     * @param maxChoices How many options a ballot may mark.
     * @param opensAt First second at which ballots are accepted.
     * @param closesAt First second at which ballots are refused and key shares accepted.
     * @param points Loyalty points a resident earns for this poll.
     * @param electionKey The X25519 public key ballots are sealed to.
     * @param issuerKeys One RSA issuer public key per stratum (index = stratum).
     * @param trustees The key-share holders; share `i` is posted by `trustees[i]`.
     * @param threshold Shares needed to rebuild the election secret key.
     */
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

    /**
     * @notice The poll's register, committed by {createPoll} right after {PollCreated}: per
     * stratum, the root of the positional Merkle tree of its eligible residents' identity
     * addresses and their number. No more than `sizes[s]` residents can ever be proven in
     * stratum `s`.
     * @param pollId The poll.
     * @param roots The register root of each stratum (index = stratum).
     * @param sizes The number of eligible residents of each stratum.
     */
    event RegisterCommitted(uint256 indexed pollId, bytes32[] roots, uint32[] sizes);

    /**
     * @notice Ballot tokens were issued (protocol v2), one event per {recordIssuances} call:
     * each item carries the resident's signed request and register proof, so that any verifier
     * re-checks it from this log alone.
     * @param pollId The poll the tokens are for.
     * @param issuances The batch's issuances, in order.
     */
    event IssuancesRecorded(uint256 indexed pollId, IssuanceRecord[] issuances);

    /**
     * @notice Protocol v1's issuance record: `pseudonyms[i]` in `strata[i]`. This PollBook never
     * emits it; it stays declared so that the ABI describes the logs of v1 deployments, which
     * verifiers still read.
     * @param pollId The poll the tokens are for.
     * @param pseudonyms The residents' per-poll pseudonyms, one per issued token.
     * @param strata The stratum of each pseudonym's token, in the same order.
     */
    event TokensIssued(uint256 indexed pollId, bytes32[] pseudonyms, uint32[] strata);

    /**
     * @notice A well-signed ballot was posted. Not necessarily the one that counts: per token the
     * verifier counts the highest sequence (a lower or repeated one may appear too, in any order).
     * @param pollId The poll the ballot is for.
     * @param token The one-time token address whose key signed the ballot.
     * @param sequence The ballot's revote counter for this token.
     * @param stratum Index of the issuer key that signed the token.
     * @param ciphertext The sealed, versioned choice.
     * @param tokenSignature The RSA blind signature on the token, for verifiers to check.
     * @param signature The token key's EIP-712 signature over the `Ballot` type.
     */
    event BallotCast(
        uint256 indexed pollId,
        address indexed token,
        uint64 sequence,
        uint32 stratum,
        bytes ciphertext,
        bytes tokenSignature,
        bytes signature
    );

    /**
     * @notice A ballot of a batch was skipped, and why.
     * @param pollId The poll the ballot was for.
     * @param token The token address the ballot named.
     * @param sequence The sequence the ballot carried.
     * @param reason Why the ballot was skipped; it is never counted.
     */
    event BallotRejected(
        uint256 indexed pollId,
        address indexed token,
        uint64 sequence,
        BallotRejection reason
    );

    /**
     * @notice Trustee `index` released its share of the election key.
     * @param pollId The poll whose election key the share rebuilds.
     * @param index The trustee's share index (its position in the poll's trustees).
     * @param trustee The trustee's address, `trustees[index]`, whoever relayed the share.
     * @param share The trustee's share of the election secret key.
     */
    event KeyShareSubmitted(uint256 indexed pollId, uint8 indexed index, address trustee, bytes share);

    /**
     * @notice The poll's tally and the hash of its anonymised dataset were published.
     * @param pollId The poll counted.
     * @param counts Counted ballots that mark each option, by option index.
     * @param datasetHash keccak256 of the canonical anonymised dataset (one row per counted ballot).
     */
    event ResultPublished(uint256 indexed pollId, uint256[] counts, bytes32 datasetHash);

    // ---------------------------------------------------------------------------------------
    // Functions
    // ---------------------------------------------------------------------------------------

    /**
     * @notice Creates a poll with its committed register and returns its id (ids start at 1).
     * @dev Requires POLL_ADMIN_ROLE; optionCount >= 2; 1 <= maxChoices <= optionCount;
     * opensAt < closesAt; closesAt in the future; at least one issuer key and none empty; a
     * non-zero election key; 1..255 trustees, none zero or repeated; 1 <= threshold <= trustees;
     * one register root and size per issuer key. Emits {PollCreated}, then {RegisterCommitted}.
     * @param params The poll's parameters, stored and emitted as given.
     * @param registerRoots Per stratum, the root of its register tree (docs/protocol.md §3.11).
     * @param registerSizes Per stratum, the number of residents in its register.
     * @return pollId The new poll's id.
     */
    function createPoll(
        PollParams calldata params,
        bytes32[] calldata registerRoots,
        uint32[] calldata registerSizes
    ) external returns (uint256 pollId);

    /**
     * @notice Records a batch of ballot-token issuances, each backed by its resident's signed
     * request and register proof, and credits each resident the poll's points in the same call.
     * @dev Requires ISSUER_ROLE and a known poll that has not closed; for every item a known
     * stratum, a request signature by `resident` ({issuanceRequestDigest}; malformed and high-s
     * signatures are invalid), `leafIndex` below the stratum's register size, a proof of
     * exactly depth(size) steps leading from (leafIndex, resident) to the stratum's root, and no
     * earlier issuance to `resident` in this poll. Any failure reverts the whole batch (with
     * {PollBookUnknownStratum}, {PollBookInvalidRequestSignature}, {PollBookNotInRegister} or
     * {PollBookAlreadyIssued}). Emits one {IssuancesRecorded}, then CityPoints'
     * {ICityPoints-PointsCredited} per item (if the poll's points are not zero).
     * @param pollId The poll the tokens are for.
     * @param issuances The issuances, in the order they are emitted and credited.
     */
    function recordIssuances(uint256 pollId, IssuanceRecord[] calldata issuances) external;

    /**
     * @notice Posts a batch of ballots and returns how many were accepted.
     * @dev Requires RELAYER_ROLE, a known poll and opensAt <= block.timestamp < closesAt (else
     * the whole call reverts). Each ballot is then checked on its own and skipped with
     * {BallotRejected} if its stratum is unknown or its EIP-712 `Ballot` signature does not
     * recover `token`. Every other ballot emits {BallotCast}, in batch order, whatever its
     * sequence: the contract keeps no per-token state. The sequence rule (per token the highest
     * sequence counts), the RSA token signature and counted <= issued are checked off chain by
     * every verifier; the API refuses stale sequences before acknowledging, and its relay posts
     * each ballot once; a duplicate or a reordered revote that reaches the chain anyway is
     * visible to every verifier.
     * @param pollId The poll the ballots are for.
     * @param ballots The ballots, each signed by its token key, in the order they are emitted.
     * @return accepted How many of `ballots` emitted {BallotCast} (the others {BallotRejected}).
     */
    function castBallots(uint256 pollId, Ballot[] calldata ballots) external returns (uint256 accepted);

    /**
     * @notice Posts the caller's share of the poll's election key.
     * @dev Requires the caller to be `trustees[index]`, the poll to have closed, a non-empty
     * share and no earlier share from this index. Emits {KeyShareSubmitted}.
     * @param pollId The poll whose election key the share rebuilds.
     * @param index The caller's share index (its position in the poll's trustees).
     * @param share The caller's share of the election secret key.
     */
    function submitKeyShare(uint256 pollId, uint8 index, bytes calldata share) external;

    /**
     * @notice Posts trustee `index`'s share on its behalf (anyone may relay it).
     * @dev Same rules as {submitKeyShare}, except that instead of being the caller the trustee
     * signs the EIP-712 `KeyShare(pollId, index, keccak256(share))`. Emits {KeyShareSubmitted}.
     * @param pollId The poll whose election key the share rebuilds.
     * @param index The share index of the trustee who signed.
     * @param share The trustee's share of the election secret key.
     * @param signature The trustee's 65-byte EIP-712 signature over the share ({keyShareDigest}).
     */
    function submitKeyShareFor(uint256 pollId, uint8 index, bytes calldata share, bytes calldata signature) external;

    /**
     * @notice Publishes the poll's tally and the hash of its anonymised dataset.
     * @dev Requires POLL_ADMIN_ROLE, a closed poll, at least `threshold` key shares, one count
     * per option and no earlier result. Emits {ResultPublished}.
     * @param pollId The poll counted.
     * @param counts Counted ballots that mark each option, by option index.
     * @param datasetHash keccak256 of the canonical anonymised dataset (one row per counted ballot).
     */
    function publishResult(uint256 pollId, uint256[] calldata counts, bytes32 datasetHash) external;

    /**
     * @notice The stored parameters and progress of a poll; reverts if the poll is unknown.
     * @param pollId The poll's id.
     */
    function poll(uint256 pollId) external view returns (Poll memory);

    /// @notice Number of polls created (the id of the latest one).
    function pollCount() external view returns (uint256);

    /**
     * @notice The issuer public key of one stratum; reverts if the poll or stratum is unknown.
     * @param pollId The poll's id.
     * @param stratum Index of the issuer key.
     */
    function issuerKey(uint256 pollId, uint32 stratum) external view returns (bytes memory);

    /**
     * @notice All issuer public keys of a poll, by stratum; reverts if the poll is unknown.
     * @param pollId The poll's id.
     */
    function issuerKeys(uint256 pollId) external view returns (bytes[] memory);

    /**
     * @notice The trustees of a poll, by share index; reverts if the poll is unknown.
     * @param pollId The poll's id.
     */
    function trustees(uint256 pollId) external view returns (address[] memory);

    /**
     * @notice Tokens issued in one stratum of a poll.
     * @param pollId The poll's id.
     * @param stratum Index of the issuer key the tokens were signed with.
     */
    function issuedCount(uint256 pollId, uint32 stratum) external view returns (uint256);

    /**
     * @notice Whether a token was issued to `resident` in this poll.
     * @param pollId The poll's id.
     * @param resident The resident's identity address.
     */
    function isIssued(uint256 pollId, address resident) external view returns (bool);

    /**
     * @notice The poll's committed register; reverts if the poll is unknown.
     * @param pollId The poll's id.
     * @return roots The register root of each stratum.
     * @return sizes The number of residents in each stratum's register.
     */
    function register(uint256 pollId) external view returns (bytes32[] memory roots, uint32[] memory sizes);

    /// @notice The CityPoints contract this PollBook credits at issuance.
    function cityPoints() external view returns (address);

    /**
     * @notice Number of key shares posted for this poll.
     * @param pollId The poll's id.
     */
    function shareCount(uint256 pollId) external view returns (uint8);

    /**
     * @notice The key share posted by trustee `index` (empty if none yet).
     * @param pollId The poll's id.
     * @param index The trustee's share index.
     */
    function keyShare(uint256 pollId, uint8 index) external view returns (bytes memory);

    /**
     * @notice The published result: whether there is one, the counts per option, the dataset hash.
     * @param pollId The poll's id.
     * @return published Whether the result is published (if not, `counts` is empty and
     * `datasetHash` zero).
     * @return counts Counted ballots that mark each option, by option index.
     * @return datasetHash keccak256 of the canonical anonymised dataset.
     */
    function result(uint256 pollId) external view returns (bool published, uint256[] memory counts, bytes32 datasetHash);

    /**
     * @notice The EIP-712 digest a token key signs for a ballot, in this contract's domain.
     * @param pollId The poll the ballot is for.
     * @param token The one-time token address whose key signs.
     * @param sequence The ballot's revote counter for this token.
     * @param stratum Index of the issuer key that signed the token.
     * @param ciphertextHash keccak256 of the ballot's ciphertext.
     * @param tokenSignatureHash keccak256 of the ballot's RSA token signature.
     */
    function ballotDigest(
        uint256 pollId,
        address token,
        uint64 sequence,
        uint32 stratum,
        bytes32 ciphertextHash,
        bytes32 tokenSignatureHash
    ) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest a resident's identity key signs to request a ballot token; the
     * API checks it before signing, {recordIssuances} and every verifier after.
     * @param pollId The poll the token is requested for.
     * @param stratum The stratum (issuer key) the token is requested in.
     * @param blindedMessageHash keccak256 of the blinded token message.
     * @param deadline Unix time after which the API refuses the request.
     */
    function issuanceRequestDigest(
        uint256 pollId,
        uint32 stratum,
        bytes32 blindedMessageHash,
        uint64 deadline
    ) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest a trustee signs to have its share relayed.
     * @param pollId The poll whose election key the share rebuilds.
     * @param index The trustee's share index.
     * @param shareHash keccak256 of the share.
     */
    function keyShareDigest(uint256 pollId, uint8 index, bytes32 shareHash) external view returns (bytes32);
}

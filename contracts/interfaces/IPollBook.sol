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
 *
 * Protocol v2 (docs/protocol.md): a poll created with a zero `electionKey` has its election key
 * made by its trustees in a key ceremony (a DKG) that uses this contract as its broadcast
 * channel. Each trustee account registers a P-256 static key ({registerTrusteeKey}); the
 * ceremony runs in attempts ({CeremonyStarted}), each a set of members posting signed messages
 * ({postCeremonyMessage}), until every member certifies the same joint key
 * ({ElectionKeyCertified}), before the poll opens. The contract checks lengths, membership,
 * signatures and the order of the rounds, never the cryptography: every verifier does.
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
     * @notice The kind of a key-ceremony message ({postCeremonyMessage}), emitted as a uint8.
     * @dev Each value is fixed by its member. Reserved (0) is never accepted: the kinds the
     * protocol names are 1, 2 and 3. A new kind is appended.
     */
    enum CeremonyMessageKind {
        Reserved,
        Round1,
        Complaint,
        Certify
    }

    /**
     * @notice Why a member complains about another (a Complaint's second byte).
     * @dev Each value is fixed by its member; Reserved (0) is never accepted. MalformedRound1:
     * the accused's round-1 message is malformed or its proof of possession fails (public, no
     * evidence). The others are about the share the accused encrypted to the complainer, with
     * the complainer's decryption evidence: it fails AEAD (ShareDecryption), decrypts to a
     * non-canonical scalar (ShareNotCanonical), or fails the VSS check (ShareVerification).
     */
    enum ComplaintReason {
        Reserved,
        MalformedRound1,
        ShareDecryption,
        ShareNotCanonical,
        ShareVerification
    }

    /**
     * @notice What a poll administrator submits to create a poll.
     * @param metadataHash Hash of the off-chain poll description (question, options, audience).
     * @param optionCount Number of options (at least 2).
     * @param maxChoices How many options a ballot may mark (1 for single choice).
     * @param opensAt First second (block timestamp) at which ballots are accepted.
     * @param closesAt First second at which ballots are refused and key shares accepted.
     * @param points Loyalty points a resident earns for this poll.
     * @param electionKey Protocol v1: the X25519 public key ballots are sealed to. Zero for a v2
     * poll, whose key the trustees make in the key ceremony (read it with {ceremony}).
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

    /// @dev opensAt >= closesAt, or closesAt is not in the future, or (a v2 poll, whose key
    /// ceremony ends at opensAt) opensAt is not in the future.
    error PollBookInvalidWindow(uint64 opensAt, uint64 closesAt);

    /// @dev A poll needs at least one issuer key.
    error PollBookNoIssuerKeys();

    /// @dev The issuer key of `stratum` is empty.
    error PollBookEmptyIssuerKey(uint256 stratum);

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

    /// @dev The poll's election key is still to be certified by its key ceremony (protocol v2).
    error PollBookKeyNotCertified(uint256 pollId);

    // Trustee keys and the key ceremony (protocol v2)

    /// @dev A trustee key is 33 bytes, SEC1-compressed: its first byte 0x02 or 0x03.
    error PollBookInvalidTrusteeKey(address trustee, uint256 length);

    /// @dev The registration's serial is not the trustee's current serial + 1.
    error PollBookInvalidTrusteeKeySerial(address trustee, uint64 serial, uint64 expected);

    /// @dev The registration is not signed by `trustee` ({trusteeKeyDigest}).
    error PollBookInvalidTrusteeKeySignature(address trustee);

    /// @dev A v2 poll's trustee at `index` has registered no key.
    error PollBookMissingTrusteeKey(uint256 index, address trustee);

    /// @dev The trustees at `index` and `other` (< index) registered the same key.
    error PollBookDuplicateTrusteeKey(uint256 index, uint256 other);

    /// @dev The poll is a v1 poll (its election key was given at creation): it has no ceremony.
    error PollBookNoCeremony(uint256 pollId);

    /// @dev The ceremony ends when the poll opens: nothing is posted or restarted from opensAt on.
    error PollBookCeremonyClosed(uint256 pollId, uint64 opensAt);

    /// @dev The poll's election key is certified: its ceremony is over.
    error PollBookKeyAlreadyCertified(uint256 pollId);

    /// @dev The message names another attempt than the current one.
    error PollBookWrongAttempt(uint256 pollId, uint8 attempt, uint8 current);

    /// @dev The trustee with this index is not a member of the current attempt.
    error PollBookNotCeremonyMember(uint256 pollId, uint8 attempt, uint8 index);

    /// @dev The message's signature is malformed or not by the trustee `index`.
    error PollBookInvalidCeremonySignature(uint256 pollId, uint8 attempt, uint8 index);

    /// @dev The message kind is not one of {CeremonyMessageKind}'s Round1, Complaint, Certify.
    error PollBookUnknownMessageKind(uint256 pollId, uint8 kind);

    /// @dev The payload of a message of this kind must be `expected` bytes long.
    error PollBookInvalidPayloadLength(uint256 pollId, uint8 kind, uint256 length, uint256 expected);

    /// @dev The member `index` already posted its message of this kind in this attempt.
    error PollBookMessageAlreadyPosted(uint256 pollId, uint8 attempt, uint8 index, uint8 kind);

    /// @dev The complaint's reason is not one of {ComplaintReason}'s non-reserved members.
    error PollBookUnknownComplaintReason(uint256 pollId, uint8 reason);

    /// @dev The accused is the complainer, or not a member, or has not posted its round 1.
    error PollBookInvalidAccused(uint256 pollId, uint8 attempt, uint8 accused);

    /// @dev The member `index` already complained about `accused` in this attempt.
    error PollBookDuplicateComplaint(uint256 pollId, uint8 attempt, uint8 index, uint8 accused);

    /// @dev Certification needs every member's round 1 first.
    error PollBookRound1Incomplete(uint256 pollId, uint8 attempt);

    /// @dev A complaint froze the attempt: no certification; the administrator restarts.
    error PollBookCeremonyFrozen(uint256 pollId, uint8 attempt);

    /// @dev The certified key is not 33 bytes starting 0x02 or 0x03.
    error PollBookInvalidElectionKey(uint256 pollId, uint8 attempt, uint8 index);

    /// @dev The member certifies another key than the attempt's first certifier.
    error PollBookElectionKeyMismatch(uint256 pollId, uint8 attempt, uint8 index);

    /// @dev After the restart fewer members than the poll's threshold would remain.
    error PollBookTooFewMembers(uint256 pollId, uint256 members, uint8 threshold);

    /// @dev Attempts are numbered by a uint8: the 255th is the last.
    error PollBookTooManyAttempts(uint256 pollId);

    /// @dev A relay needs a non-zero key, a name of 1..64 bytes and a URL of 1..256 bytes.
    error PollBookInvalidRelay(address relayer, uint256 nameLength, uint256 urlLength);

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
     * @param electionKey The X25519 public key ballots are sealed to (protocol v1); zero for a
     * v2 poll, whose key comes with {ElectionKeyCertified}.
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
     * @notice Which relay carried the ballots just cast: one per castBallots call that cast any,
     * after its {BallotCast} events (the same transaction), so that every verifier can say which relay
     * carried each ballot and tell a ballot one relay posted twice from one two relays carried.
     * @param pollId The poll the batch was for.
     * @param relayer The RELAYER_ROLE account that posted the batch (msg.sender).
     * @param accepted How many ballots of the batch emitted {BallotCast}.
     */
    event BallotsRelayed(uint256 indexed pollId, address indexed relayer, uint256 accepted);

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

    /**
     * @notice A trustee account registered (or rotated) its P-256 static key.
     * @param trustee The trustee account, which signed the registration.
     * @param serial The registration's serial: 1 for the first, one more for each rotation.
     * @param key The static public key, 33 bytes SEC1-compressed.
     */
    event TrusteeKeyRegistered(address indexed trustee, uint64 serial, bytes key);

    /**
     * @notice An attempt of a v2 poll's key ceremony started: attempt 1 in {createPoll} (after
     * {RegisterCommitted}), each later one in {restartCeremony}.
     * @param pollId The poll.
     * @param attempt The attempt's number (1, 2, ...).
     * @param members The attempt's members, as poll trustee indices in ascending order; member
     * `members[m]` is the DKG's participant m + 1.
     * @param keys The members' static keys as registered when the attempt started, in the order
     * of `members`.
     */
    event CeremonyStarted(uint256 indexed pollId, uint8 attempt, uint8[] members, bytes[] keys);

    /**
     * @notice A member's key-ceremony message was accepted.
     * @param pollId The poll.
     * @param attempt The attempt it belongs to (the current one).
     * @param index The sender's poll trustee index (its signature was checked).
     * @param kind A {CeremonyMessageKind} value.
     * @param payload The message as posted.
     */
    event CeremonyMessagePosted(uint256 indexed pollId, uint8 attempt, uint8 index, uint8 kind, bytes payload);

    /**
     * @notice Every member of the attempt certified the same joint key: it is the poll's
     * election key. Emitted right after the last certification's {CeremonyMessagePosted}.
     * @param pollId The poll.
     * @param attempt The attempt that made the key.
     * @param electionKey The joint P-256 public key Y, 33 bytes SEC1-compressed.
     */
    event ElectionKeyCertified(uint256 indexed pollId, uint8 attempt, bytes electionKey);

    /**
     * @notice A relay was registered, or its name or URL changed: `relayer` holds RELAYER_ROLE
     * from this call on. It is removed with `revokeRole(RELAYER_ROLE, relayer)` ({RoleRevoked}).
     * @param relayer The relay's key: the account that posts its batches and signs its receipts.
     * @param name Who runs it, as residents are shown it (1..64 bytes of UTF-8).
     * @param url Where clients send it ballots (1..256 bytes).
     */
    event RelayRegistered(address indexed relayer, string name, string url);

    // ---------------------------------------------------------------------------------------
    // Functions
    // ---------------------------------------------------------------------------------------

    /**
     * @notice Creates a poll with its committed register and returns its id (ids start at 1).
     * @dev Requires POLL_ADMIN_ROLE; optionCount >= 2; 1 <= maxChoices <= optionCount;
     * opensAt < closesAt; closesAt in the future; at least one issuer key and none empty;
     * 1..255 trustees, none zero or repeated; 1 <= threshold <= trustees; one register root and
     * size per issuer key. Emits {PollCreated}, then {RegisterCommitted}.
     * A zero `electionKey` makes a v2 poll, which also needs opensAt in the future and a
     * registered key of every trustee, no two equal ({PollBookMissingTrusteeKey},
     * {PollBookDuplicateTrusteeKey}); it starts the key ceremony's attempt 1 with every trustee
     * as a member and their current keys, and emits {CeremonyStarted} last.
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
     * the whole call reverts), and for a v2 poll a certified election key (else
     * {PollBookKeyNotCertified}). Each ballot is then checked on its own and skipped with
     * {BallotRejected} if its stratum is unknown or its EIP-712 `Ballot` signature does not
     * recover `token`. Every other ballot emits {BallotCast}, in batch order, whatever its
     * sequence: the contract keeps no per-token state; if any was, one {BallotsRelayed} follows,
     * naming the caller. The sequence rule (per token the highest sequence counts), the RSA token signature
     * and counted <= issued are checked off chain by every verifier; a relay refuses stale
     * sequences before acknowledging and posts each ballot once; the same ballot carried by two
     * relays counts once, and one relay posting a ballot twice is visible to every verifier.
     * @param pollId The poll the ballots are for.
     * @param ballots The ballots, each signed by its token key, in the order they are emitted.
     * @return accepted How many of `ballots` emitted {BallotCast} (the others {BallotRejected}).
     */
    function castBallots(uint256 pollId, Ballot[] calldata ballots) external returns (uint256 accepted);

    /**
     * @notice Registers a relay anyone may send ballots to (a partner, an NGO, a university, or
     * the city's own API): grants `relayer` RELAYER_ROLE and publishes its name and URL.
     * @dev Requires the admin role of RELAYER_ROLE; again for the same relayer, it updates the
     * name and URL. Reverts with {PollBookInvalidRelay} on a zero key or a name or URL out of
     * bounds. Emits {RoleGranted} (unless it held the role) and {RelayRegistered}.
     * @param relayer The relay's key.
     * @param name Who runs it (1..64 bytes).
     * @param url Where clients send it ballots (1..256 bytes).
     */
    function registerRelay(address relayer, string calldata name, string calldata url) external;

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
     * @dev Requires POLL_ADMIN_ROLE, a closed poll, no earlier result, for a v2 poll a
     * certified election key ({PollBookKeyNotCertified}: such a poll took no ballot), at least
     * `threshold` key shares and one count per option. Emits {ResultPublished}.
     * @param pollId The poll counted.
     * @param counts Counted ballots that mark each option, by option index.
     * @param datasetHash keccak256 of the canonical anonymised dataset (one row per counted ballot).
     */
    function publishResult(uint256 pollId, uint256[] calldata counts, bytes32 datasetHash) external;

    /**
     * @notice Registers (or rotates) `trustee`'s P-256 static key, the key shares of a v2 key
     * ceremony are encrypted to; anyone may relay the trustee's signed registration.
     * @dev Requires a 33-byte SEC1-compressed key (first byte 0x02 or 0x03; the contract does
     * no curve arithmetic, so the point itself is checked by the ceremony's participants and
     * verifiers), `serial` equal to the trustee's current serial + 1 (1 the first time; a
     * replay or a skipped serial is refused) and the trustee's EIP-712 signature over
     * `TrusteeKey(trustee, keccak256(key), serial)` ({trusteeKeyDigest}). The new key is used
     * by the ceremony attempts that start later; attempts already started keep the key they
     * announced. Emits {TrusteeKeyRegistered}.
     * @param trustee The trustee account the key is for, which signed.
     * @param key The static public key, 33 bytes SEC1-compressed.
     * @param serial The trustee's current serial + 1.
     * @param signature The trustee's 65-byte EIP-712 signature.
     */
    function registerTrusteeKey(address trustee, bytes calldata key, uint64 serial, bytes calldata signature) external;

    /**
     * @notice Posts a key-ceremony message of member `index` on its behalf (anyone relays).
     * @dev Requires a known v2 poll ({PollBookNoCeremony}), block.timestamp < opensAt
     * ({PollBookCeremonyClosed}), an uncertified key ({PollBookKeyAlreadyCertified}), `attempt`
     * the current attempt, `index` one of its members, and the trustee's EIP-712 signature over
     * `CeremonyMessage(pollId, attempt, index, kind, keccak256(payload))`
     * ({ceremonyMessageDigest}). Then, by `kind`:
     * - Round1: once per member and attempt; length 33t + 98 + 56n (t the poll's threshold, n
     *   the attempt's member count).
     * - Complaint: payload = accused (uint8, a poll trustee index) ‖ reason (uint8, a
     *   {ComplaintReason}) ‖ evidence; 2 bytes for MalformedRound1, 132 for the others (their
     *   evidence S^e (33) ‖ S^d (33) ‖ c (32) ‖ z (32)); the accused a member other than
     *   `index` that posted its round 1; once per (member, accused) and attempt. A complaint
     *   freezes the attempt: no certification in it any more (round 1 messages and complaints
     *   are still accepted, as evidence for the restart).
     * - Certify: payload = Y (33, first byte 0x02 or 0x03) ‖ the member's signature (65); every
     *   member posted its round 1 and none complained; once per member and attempt; Y equal to
     *   the attempt's first certified key. The last member's certification certifies Y.
     * Emits {CeremonyMessagePosted}, then {ElectionKeyCertified} if the key was certified.
     * @param pollId The v2 poll.
     * @param attempt The current attempt's number.
     * @param index The sender's poll trustee index.
     * @param kind A {CeremonyMessageKind} value: 1 Round1, 2 Complaint, 3 Certify.
     * @param payload The message.
     * @param signature The trustee's 65-byte EIP-712 signature over the message.
     */
    function postCeremonyMessage(
        uint256 pollId,
        uint8 attempt,
        uint8 index,
        uint8 kind,
        bytes calldata payload,
        bytes calldata signature
    ) external;

    /**
     * @notice Starts the next attempt of a v2 poll's key ceremony with the current members
     * minus `excluded` (whose messages, or silence, the verifier holds against them).
     * @dev Requires POLL_ADMIN_ROLE, a known v2 poll, block.timestamp < opensAt, an uncertified
     * key, each of `excluded` a current member (once), at least `threshold` members left and
     * fewer than 255 attempts so far. The new attempt has no messages; its keys are the
     * members' registered keys now. Emits {CeremonyStarted}.
     * @param pollId The v2 poll.
     * @param excluded Poll trustee indices to leave out (may be empty: the same members again).
     */
    function restartCeremony(uint256 pollId, uint8[] calldata excluded) external;

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
     * @notice A poll's key ceremony; reverts if the poll is unknown. A v1 poll has none:
     * attempt 0, no members, not certified, no key.
     * @param pollId The poll's id.
     * @return attempt The current attempt's number (1, 2, ...).
     * @return members The current attempt's members, as poll trustee indices in ascending order.
     * @return certified Whether the election key is certified.
     * @return electionKey The certified key Y (33 bytes), empty until certified.
     */
    function ceremony(
        uint256 pollId
    ) external view returns (uint8 attempt, uint8[] memory members, bool certified, bytes memory electionKey);

    /**
     * @notice The static key `trustee` registered last, and its serial (empty and 0 if none).
     * @param trustee The trustee account.
     * @return key The static public key, 33 bytes SEC1-compressed.
     * @return serial The registration's serial (the next one must be serial + 1).
     */
    function trusteeKey(address trustee) external view returns (bytes memory key, uint64 serial);

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

    /**
     * @notice The EIP-712 digest a trustee signs to register a static key.
     * @param trustee The trustee account.
     * @param keyHash keccak256 of the key.
     * @param serial The registration's serial.
     */
    function trusteeKeyDigest(address trustee, bytes32 keyHash, uint64 serial) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest a trustee signs for one key-ceremony message.
     * @param pollId The poll.
     * @param attempt The attempt.
     * @param index The trustee's poll trustee index.
     * @param kind The {CeremonyMessageKind} value.
     * @param payloadHash keccak256 of the payload.
     */
    function ceremonyMessageDigest(
        uint256 pollId,
        uint8 attempt,
        uint8 index,
        uint8 kind,
        bytes32 payloadHash
    ) external view returns (bytes32);
}

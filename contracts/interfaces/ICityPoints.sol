// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @title ICityPoints
 * @notice Residents' loyalty points: credited by the PollBook in the same call that records a
 * resident's ballot-token issuance (to the resident who signed its request, and only then), spent
 * on rewards from an on-chain catalog or donated to registered charities. Points cannot be
 * moved between residents (that would open a market for votes). Residents act through EIP-712
 * signatures that anyone (the city's API) relays.
 */
interface ICityPoints {
    /// @notice A reward of the catalog.
    struct Reward {
        bytes32 metadataHash;
        uint256 price;
        uint256 stock;
        bool active;
    }

    /// @notice A registered charity; donated points accumulate in its balance.
    // `account` and `active` could share a slot, but the order is charity()'s ABI and the
    // storage layout of the deployed ledgers.
    // solhint-disable-next-line gas-struct-packing
    struct Charity {
        address account;
        bytes32 metadataHash;
        bool active;
    }

    /// @notice A resident's signed request to redeem one unit of a reward.
    struct Redemption {
        address resident;
        uint256 rewardId;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A resident's signed request to donate points to a charity.
    struct Donation {
        address resident;
        uint256 charityId;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    // ---------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------

    /// @dev An amount of points must be positive.
    error CityPointsZeroAmount();

    /// @dev The resident (or charity account) is the zero address.
    error CityPointsZeroAddress();

    /// @dev The signed request expired at `deadline`.
    error CityPointsExpiredSignature(uint256 deadline);

    /// @dev The signature is malformed or not by `resident`.
    error CityPointsInvalidSigner(address resident);

    /// @dev No reward has this id.
    error CityPointsUnknownReward(uint256 rewardId);

    /// @dev The reward is withdrawn from the catalog.
    error CityPointsInactiveReward(uint256 rewardId);

    /// @dev The reward is out of stock.
    error CityPointsOutOfStock(uint256 rewardId);

    /// @dev No charity has this id.
    error CityPointsUnknownCharity(uint256 charityId);

    /// @dev The charity does not accept donations now.
    error CityPointsInactiveCharity(uint256 charityId);

    /// @dev The resident has `balance` points and needs `needed`.
    error CityPointsInsufficientBalance(address resident, uint256 balance, uint256 needed);

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    /**
     * @notice `resident` earned `amount` points for poll `pollId`.
     * @param resident The resident credited.
     * @param pollId The poll the points were earned for.
     * @param amount Points credited.
     */
    event PointsCredited(address indexed resident, uint256 indexed pollId, uint256 amount);

    /**
     * @notice A reward was added to the catalog (active).
     * @param rewardId The new reward's id.
     * @param metadataHash Hash of the reward's off-chain description (name, description).
     * @param price Points one unit costs.
     * @param stock Units available.
     */
    event RewardAdded(uint256 indexed rewardId, bytes32 metadataHash, uint256 price, uint256 stock);

    /**
     * @notice A reward's price, stock or availability changed.
     * @param rewardId The reward changed.
     * @param price Points one unit now costs.
     * @param stock Units now available.
     * @param active Whether the reward can now be redeemed.
     */
    event RewardUpdated(uint256 indexed rewardId, uint256 price, uint256 stock, bool active);

    /**
     * @notice A charity was registered (active).
     * @param charityId The new charity's id.
     * @param account The charity's address.
     * @param metadataHash Hash of the charity's off-chain description (name, description).
     */
    event CharityRegistered(uint256 indexed charityId, address indexed account, bytes32 metadataHash);

    /**
     * @notice A charity was activated or deactivated.
     * @param charityId The charity changed.
     * @param active Whether the charity now accepts donations.
     */
    event CharityUpdated(uint256 indexed charityId, bool active);

    /**
     * @notice `resident` spent `price` points on one unit of reward `rewardId`.
     * @param resident The resident who signed the redemption.
     * @param rewardId The reward redeemed.
     * @param price Points spent (the reward's price at redemption).
     * @param nonce The resident's nonce the redemption consumed.
     */
    event RewardRedeemed(address indexed resident, uint256 indexed rewardId, uint256 price, uint256 nonce);

    /**
     * @notice `resident` donated `amount` points to charity `charityId`.
     * @param resident The resident who signed the donation.
     * @param charityId The charity the points went to.
     * @param amount Points donated.
     * @param nonce The resident's nonce the donation consumed.
     */
    event PointsDonated(address indexed resident, uint256 indexed charityId, uint256 amount, uint256 nonce);

    // ---------------------------------------------------------------------------------------
    // Functions
    // ---------------------------------------------------------------------------------------

    /**
     * @notice Credits `amount` points to each resident whose issuance the PollBook just recorded
     * for poll `pollId`. There is no other way in: no key can credit an address of its choice.
     * @dev Requires POLL_BOOK_ROLE (held by the PollBook contract alone, which calls this from
     * {IPollBook-recordIssuances} with the residents who signed the requests, each once per poll)
     * and amount > 0. Emits {PointsCredited} per resident.
     * @param pollId The poll the points are earned for.
     * @param residents The residents whose issuances were recorded, in the batch's order.
     * @param amount Points each resident earns (the poll's `points`).
     */
    function creditIssuances(uint256 pollId, address[] calldata residents, uint256 amount) external;

    /**
     * @notice Adds an active reward to the catalog and returns its id (ids start at 1).
     * @dev Requires POINTS_ADMIN_ROLE. Emits {RewardAdded}.
     * @param metadataHash Hash of the reward's off-chain description (name, description).
     * @param price Points one unit costs.
     * @param stock Units available.
     * @return rewardId The new reward's id.
     */
    function addReward(bytes32 metadataHash, uint256 price, uint256 stock) external returns (uint256 rewardId);

    /**
     * @notice Sets a reward's price, stock and availability.
     * @dev Requires POINTS_ADMIN_ROLE and a known reward. Emits {RewardUpdated}.
     * @param rewardId The reward to change.
     * @param price Points one unit costs from now on.
     * @param stock Units available from now on.
     * @param active Whether the reward can be redeemed.
     */
    function updateReward(uint256 rewardId, uint256 price, uint256 stock, bool active) external;

    /**
     * @notice Registers an active charity and returns its id (ids start at 1).
     * @dev Requires POINTS_ADMIN_ROLE and a non-zero account. Emits {CharityRegistered}.
     * @param account The charity's address.
     * @param metadataHash Hash of the charity's off-chain description (name, description).
     * @return charityId The new charity's id.
     */
    function registerCharity(address account, bytes32 metadataHash) external returns (uint256 charityId);

    /**
     * @notice Activates or deactivates a charity.
     * @dev Requires POINTS_ADMIN_ROLE and a known charity. Emits {CharityUpdated}.
     * @param charityId The charity to change.
     * @param active Whether the charity accepts donations.
     */
    function setCharityActive(uint256 charityId, bool active) external;

    /**
     * @notice Redeems one unit of a reward for a resident who signed `redemption` (EIP-712
     * `Redemption`); anyone may relay it.
     * @dev Requires deadline >= block.timestamp, a signature by `resident`, nonce equal to the
     * resident's current nonce (then consumed), a known active reward in stock and a balance of at
     * least its price. Emits {RewardRedeemed}.
     * @param redemption The resident's request: who, which reward, the nonce and the deadline.
     * @param signature The resident's 65-byte EIP-712 signature over `redemption`
     * ({redemptionDigest}).
     */
    function redeem(Redemption calldata redemption, bytes calldata signature) external;

    /**
     * @notice Donates points of a resident who signed `donation` (EIP-712 `Donation`) to a
     * charity; anyone may relay it.
     * @dev Requires deadline >= block.timestamp, a signature by `resident`, nonce equal to the
     * resident's current nonce (then consumed), amount > 0, a known active charity and enough
     * balance. Emits {PointsDonated}.
     * @param donation The resident's request: who, to which charity, how many points, the nonce
     * and the deadline.
     * @param signature The resident's 65-byte EIP-712 signature over `donation` ({donationDigest}).
     */
    function donate(Donation calldata donation, bytes calldata signature) external;

    /**
     * @notice A resident's points.
     * @param resident The resident's address.
     */
    function balanceOf(address resident) external view returns (uint256);

    /**
     * @notice A reward of the catalog; reverts if unknown.
     * @param rewardId The reward's id.
     */
    function reward(uint256 rewardId) external view returns (Reward memory);

    /// @notice Number of rewards added (the id of the latest one).
    function rewardCount() external view returns (uint256);

    /**
     * @notice A registered charity; reverts if unknown.
     * @param charityId The charity's id.
     */
    function charity(uint256 charityId) external view returns (Charity memory);

    /// @notice Number of charities registered (the id of the latest one).
    function charityCount() external view returns (uint256);

    /**
     * @notice Points donated to a charity so far.
     * @param charityId The charity's id.
     */
    function charityBalance(uint256 charityId) external view returns (uint256);

    /**
     * @notice The EIP-712 digest a resident signs to redeem a reward.
     * @param resident The resident who signs and whose points are spent.
     * @param rewardId The reward to redeem one unit of.
     * @param nonce The resident's current nonce (`nonces(resident)`).
     * @param deadline Last second (block timestamp) at which the request is valid.
     */
    function redemptionDigest(
        address resident,
        uint256 rewardId,
        uint256 nonce,
        uint256 deadline
    ) external view returns (bytes32);

    /**
     * @notice The EIP-712 digest a resident signs to donate to a charity.
     * @param resident The resident who signs and whose points are spent.
     * @param charityId The charity to donate to.
     * @param amount Points to donate.
     * @param nonce The resident's current nonce (`nonces(resident)`).
     * @param deadline Last second (block timestamp) at which the request is valid.
     */
    function donationDigest(
        address resident,
        uint256 charityId,
        uint256 amount,
        uint256 nonce,
        uint256 deadline
    ) external view returns (bytes32);
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {ICityPoints} from "./interfaces/ICityPoints.sol";

/**
 * @title CityPoints
 * @notice Veche's loyalty points. The PollBook credits a resident once per poll, in the call
 * that records the resident's signed token request (the only way points come in); residents redeem
 * rewards and donate to charities through EIP-712 requests relayed by anyone. There is no
 * transfer between residents at all: points only come in as credits and go out to the catalog or
 * to a charity, and every change is an event, so an auditor can check that the credits of a poll
 * equal its issued tokens times its points.
 *
 * Each resident has one nonce sequence ({Nonces}) shared by redemptions and donations: a signed
 * request can be used once, and only in order.
 */
contract CityPoints is ICityPoints, AccessControl, EIP712, Nonces {
    /// @notice Role of the PollBook contract: credits the residents whose issuances it records.
    bytes32 public constant POLL_BOOK_ROLE = keccak256("POLL_BOOK_ROLE");
    /// @notice Role that manages the reward catalog and the charities.
    bytes32 public constant POINTS_ADMIN_ROLE = keccak256("POINTS_ADMIN_ROLE");

    /// @notice EIP-712 type hash of the `Redemption` a resident signs.
    bytes32 public constant REDEMPTION_TYPEHASH =
        keccak256("Redemption(address resident,uint256 rewardId,uint256 nonce,uint256 deadline)");
    /// @notice EIP-712 type hash of the `Donation` a resident signs.
    bytes32 public constant DONATION_TYPEHASH =
        keccak256("Donation(address resident,uint256 charityId,uint256 amount,uint256 nonce,uint256 deadline)");

    mapping(address resident => uint256) private _balances;
    uint256 private _rewardCount;
    mapping(uint256 rewardId => Reward) private _rewards;
    uint256 private _charityCount;
    mapping(uint256 charityId => Charity) private _charities;
    mapping(uint256 charityId => uint256) private _charityBalances;

    /**
     * @notice Deploys an empty points ledger in the EIP-712 domain `Veche CityPoints`, version 1.
     * @param admin The account that holds DEFAULT_ADMIN_ROLE and grants the other roles.
     */
    constructor(address admin) EIP712("Veche CityPoints", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------------
    // Credits
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc ICityPoints
    function creditIssuances(
        uint256 pollId,
        address[] calldata residents,
        uint256 amount
    ) external onlyRole(POLL_BOOK_ROLE) {
        if (amount == 0) revert CityPointsZeroAmount();
        // One credit per (poll, resident) is the PollBook's rule (one issuance each), not
        // stored again here: a second flag per resident cost ~22,000 gas an issuance.
        for (uint256 i = 0; i < residents.length; ++i) {
            address resident = residents[i];
            _balances[resident] += amount;
            emit PointsCredited(resident, pollId, amount);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Catalog and charities
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc ICityPoints
    function addReward(
        bytes32 metadataHash,
        uint256 price,
        uint256 stock
    ) external onlyRole(POINTS_ADMIN_ROLE) returns (uint256 rewardId) {
        rewardId = ++_rewardCount;
        _rewards[rewardId] = Reward({metadataHash: metadataHash, price: price, stock: stock, active: true});
        emit RewardAdded(rewardId, metadataHash, price, stock);
    }

    /// @inheritdoc ICityPoints
    function updateReward(
        uint256 rewardId,
        uint256 price,
        uint256 stock,
        bool active
    ) external onlyRole(POINTS_ADMIN_ROLE) {
        Reward storage r = _reward(rewardId);
        r.price = price;
        r.stock = stock;
        r.active = active;
        emit RewardUpdated(rewardId, price, stock, active);
    }

    /// @inheritdoc ICityPoints
    function registerCharity(
        address account,
        bytes32 metadataHash
    ) external onlyRole(POINTS_ADMIN_ROLE) returns (uint256 charityId) {
        if (account == address(0)) revert CityPointsZeroAddress();
        charityId = ++_charityCount;
        _charities[charityId] = Charity({account: account, metadataHash: metadataHash, active: true});
        emit CharityRegistered(charityId, account, metadataHash);
    }

    /// @inheritdoc ICityPoints
    function setCharityActive(uint256 charityId, bool active) external onlyRole(POINTS_ADMIN_ROLE) {
        _charity(charityId).active = active;
        emit CharityUpdated(charityId, active);
    }

    // ---------------------------------------------------------------------------------------
    // Residents' signed requests
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc ICityPoints
    function redeem(Redemption calldata redemption, bytes calldata signature) external {
        address resident = redemption.resident;
        _checkRequest(
            resident,
            redemptionDigest(resident, redemption.rewardId, redemption.nonce, redemption.deadline),
            redemption.deadline,
            signature
        );
        _useCheckedNonce(resident, redemption.nonce);

        Reward storage r = _reward(redemption.rewardId);
        if (!r.active) revert CityPointsInactiveReward(redemption.rewardId);
        if (r.stock == 0) revert CityPointsOutOfStock(redemption.rewardId);
        uint256 price = r.price;
        _spend(resident, price);

        // `--r.stock` compiles to other bytecode (2 bytes less): a contract change, not a lint fix.
        // solhint-disable-next-line gas-increment-by-one
        r.stock -= 1;
        emit RewardRedeemed(resident, redemption.rewardId, price, redemption.nonce);
    }

    /// @inheritdoc ICityPoints
    function donate(Donation calldata donation, bytes calldata signature) external {
        address resident = donation.resident;
        _checkRequest(
            resident,
            donationDigest(resident, donation.charityId, donation.amount, donation.nonce, donation.deadline),
            donation.deadline,
            signature
        );
        _useCheckedNonce(resident, donation.nonce);

        if (donation.amount == 0) revert CityPointsZeroAmount();
        if (!_charity(donation.charityId).active) revert CityPointsInactiveCharity(donation.charityId);
        _spend(resident, donation.amount);

        _charityBalances[donation.charityId] += donation.amount;
        emit PointsDonated(resident, donation.charityId, donation.amount, donation.nonce);
    }

    // ---------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------

    /// @inheritdoc ICityPoints
    function balanceOf(address resident) external view returns (uint256) {
        return _balances[resident];
    }

    /// @inheritdoc ICityPoints
    function reward(uint256 rewardId) external view returns (Reward memory) {
        return _reward(rewardId);
    }

    /// @inheritdoc ICityPoints
    function rewardCount() external view returns (uint256) {
        return _rewardCount;
    }

    /// @inheritdoc ICityPoints
    function charity(uint256 charityId) external view returns (Charity memory) {
        return _charity(charityId);
    }

    /// @inheritdoc ICityPoints
    function charityCount() external view returns (uint256) {
        return _charityCount;
    }

    /// @inheritdoc ICityPoints
    function charityBalance(uint256 charityId) external view returns (uint256) {
        return _charityBalances[charityId];
    }

    /// @inheritdoc ICityPoints
    function redemptionDigest(
        address resident,
        uint256 rewardId,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REDEMPTION_TYPEHASH, resident, rewardId, nonce, deadline)));
    }

    /// @inheritdoc ICityPoints
    function donationDigest(
        address resident,
        uint256 charityId,
        uint256 amount,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(keccak256(abi.encode(DONATION_TYPEHASH, resident, charityId, amount, nonce, deadline)));
    }

    // ---------------------------------------------------------------------------------------
    // Internal
    // ---------------------------------------------------------------------------------------

    /// @dev Reverts unless the request is not expired and `signature` over `digest` is by `resident`.
    function _checkRequest(address resident, bytes32 digest, uint256 deadline, bytes calldata signature) internal view {
        if (block.timestamp > deadline) revert CityPointsExpiredSignature(deadline);
        (address signer, ECDSA.RecoverError error, ) = ECDSA.tryRecover(digest, signature);
        if (error != ECDSA.RecoverError.NoError || signer != resident) revert CityPointsInvalidSigner(resident);
    }

    /// @dev Takes `amount` points from `resident`; reverts with {CityPointsInsufficientBalance}.
    function _spend(address resident, uint256 amount) internal {
        uint256 balance = _balances[resident];
        if (balance < amount) revert CityPointsInsufficientBalance(resident, balance, amount);
        unchecked {
            _balances[resident] = balance - amount;
        }
    }

    /// @dev The stored reward; reverts with {CityPointsUnknownReward}.
    function _reward(uint256 rewardId) internal view returns (Reward storage) {
        if (rewardId == 0 || rewardId > _rewardCount) revert CityPointsUnknownReward(rewardId);
        return _rewards[rewardId];
    }

    /// @dev The stored charity; reverts with {CityPointsUnknownCharity}.
    function _charity(uint256 charityId) internal view returns (Charity storage) {
        if (charityId == 0 || charityId > _charityCount) revert CityPointsUnknownCharity(charityId);
        return _charities[charityId];
    }
}

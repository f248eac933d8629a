// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title The gitcoop anchor contract
/// @notice Puts a gitcoop ledger head on the chain as an event, so that anyone can list a
/// ledger's anchors with eth_getLogs, by its origin, without knowing who anchored it.
/// @dev It keeps nothing, has no owner and takes no ether (the fallback is not payable).
/// The calldata is the anchoring format itself, byte for byte what a gitcoop anchor sends
/// to its own account: "gitcoop-anchor-v1\0" ‖ origin (32 bytes) ‖ size (uint64, big
/// endian: entries up to the anchored one) ‖ head (the SHA-256 of that entry). Anything
/// else reverts, so every event stands for a well-formed anchor from `sender`; whether
/// `sender` speaks for the ledger is for whoever reads the events to decide.
contract CoopAnchor {
    event Anchored(bytes32 indexed origin, address indexed sender, uint64 size, bytes32 head);

    error NotAnAnchor();

    bytes18 private constant TAG = "gitcoop-anchor-v1\x00";
    uint256 private constant LENGTH = 18 + 32 + 8 + 32;

    fallback() external {
        bytes calldata data = msg.data;
        if (data.length != LENGTH || bytes18(data[:18]) != TAG) revert NotAnAnchor();
        emit Anchored(bytes32(data[18:50]), msg.sender, uint64(bytes8(data[50:58])), bytes32(data[58:90]));
    }
}

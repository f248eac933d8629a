"""The boundary to eth-account: EIP-191 personal messages and Ethereum addresses.

Imported only by the commands that need it (eth-account alone costs about a second to
import), and only where it is installed (``pip install 'gitcoop[eth]'``).
"""

from __future__ import annotations

import sys

from gitcoop.errors import ConfigError

# py_ecc, which eth-account imports, raises the interpreter's recursion limit to 100,000
# for the whole process; with it, input nested deeply enough (a node's JSON answer) would
# overflow the C stack in the JSON decoder and crash the process instead of raising.
_LIMIT = sys.getrecursionlimit()
try:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.address import is_address, to_checksum_address
except ImportError:
    raise ConfigError(
        "an Ethereum address needs the eth-account package", hint="pip install 'gitcoop[eth]'"
    ) from None
finally:
    sys.setrecursionlimit(_LIMIT)


def checksummed(address: str) -> str:
    """The EIP-55 form of ``address``; raises ConfigError when it is no address."""
    if not is_address(address):
        raise ConfigError(
            f"{address[:60]!r} is not an Ethereum address", hint="give 0x and 40 hex digits"
        )
    return str(to_checksum_address(address))


def sign_text(text: str, secret: bytes) -> str:
    """The EIP-191 personal-message signature of ``text`` by the key ``secret``, as 0x hex."""
    try:
        signed = Account.sign_message(encode_defunct(text=text), secret)
    except Exception:  # eth-account raises several types for a bad key
        raise ConfigError("that is not an Ethereum private key", hint="64 hex digits") from None
    return "0x" + bytes(signed.signature).hex()


def signer_of(text: str, signature: str) -> str:
    """The checksummed address whose key made ``signature`` over ``text`` (EIP-191)."""
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception:  # eth-account raises several types for a malformed signature
        raise ConfigError(
            "the Ethereum signature is malformed", hint="give it as 0x and 130 hex digits"
        ) from None


def address_of(secret: bytes) -> str:
    """The checksummed address of a private key; raises ConfigError for a bad key."""
    try:
        return str(Account.from_key(secret).address)
    except Exception:  # eth-account raises several types for a bad key
        raise ConfigError("that is not an Ethereum private key", hint="64 hex digits") from None


def sign_transaction(tx: dict[str, object], secret: bytes) -> tuple[str, str]:
    """(raw transaction, its hash), both 0x hex, of an EIP-1559 transaction signed with
    ``secret`` (its ``chainId`` makes it valid on that chain only, EIP-155)."""
    signed = Account.sign_transaction(tx, secret)
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()

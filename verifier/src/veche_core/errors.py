"""Every error the protocol core raises: one root, and subclasses that also inherit the built-in
exception a caller would naturally catch (as web3.py does)."""


class VecheError(Exception):
    """Root of every protocol-core error."""


class EncodingError(VecheError, ValueError):
    """Bytes that are not a well-formed encoding of what they claim to be."""


class SignatureError(VecheError, ValueError):
    """A signature that does not verify, or is malformed."""


class SealingError(VecheError, ValueError):
    """A ciphertext that does not open under the given key."""


class KeyShareError(VecheError, ValueError):
    """Key shares that cannot rebuild the election key (too few, corrupted, mismatched)."""


class CeremonyError(VecheError, ValueError):
    """A key-ceremony (DKG) step that cannot complete: bad parameters, or a check that fails."""


class CeremonyFaultError(CeremonyError):
    """Round 2 found members at fault; `faults` lists (member id, reason) pairs, each a complaint
    to file. The message names members and reasons only, never a share or a key."""

    def __init__(self, faults: tuple[tuple[int, int], ...]) -> None:
        self.faults = faults
        super().__init__("; ".join(f"member {member} at fault (reason {reason})" for member, reason in faults))

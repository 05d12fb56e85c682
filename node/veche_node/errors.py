"""Every error the node tooling raises: one root, and subclasses that also inherit the built-in
exception a caller would naturally catch (as web3.py does)."""


class VecheNodeError(Exception):
    """Root of every node-tooling error."""


class NetworkConfigError(VecheNodeError, ValueError):
    """A network directory or manifest that is missing, malformed or inconsistent."""


class KeystoreError(VecheNodeError, ValueError):
    """A keystore that is missing, unreadable, or does not decrypt with the password given."""


class NodeProcessError(VecheNodeError, RuntimeError):
    """A geth process that would not start, answer or stop in time."""


class NodeRpcError(VecheNodeError, ConnectionError):
    """A node's JSON-RPC could not be reached, or answered with an error."""

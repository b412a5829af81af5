"""The on-disk PKI of one stack or devnet, and its bookkeeping file.

::

    DIR/ca/ca.crt ca.key ca.crl state.json   the CA (directory mode 0700, key 0600)
    DIR/aggregator/ca.crt tls.crt tls.key ca.crl   the SuperLink's server bundle + CRL
    DIR/operator/ca.crt tls.crt tls.key      client cert of the ServerApp process and `flwr`
    DIR/nodes/<node-id>/ca.crt tls.crt tls.key   one client cert per node

``state.json`` records every serial ever issued (with its holder), the revoked serials, the
current serial of each holder and the settings used by ``init`` (validity, renewal window,
server names), so ``issue``/``rotate`` reproduce them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from certs.bundle import atomic_write
from certs.pki import CertificateError
from fl.contract import TLS_CA_FILE, TLS_CRL_FILE

__all__ = [
    "AGGREGATOR",
    "OPERATOR",
    "Holder",
    "Layout",
    "PkiState",
    "Role",
    "node_id_for",
    "validate_node_id",
]

AGGREGATOR: str = "aggregator"
OPERATOR: str = "operator"
CA_KEY_FILE = "ca.key"
STATE_FILE = "state.json"
STATE_FORMAT = 1

Role = Literal["server", "client"]
# "<prefix>-<ordinal>" where the ordinal is the data partition (see fl.contract.ENV_NODE_ID).
_NODE_ID = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?-(0|[1-9][0-9]*)$")


def node_id_for(ordinal: int) -> str:
    """The node id of the node with this ordinal: ``node-<ordinal>``."""
    if ordinal < 0:
        raise CertificateError(f"a node ordinal must be >= 0, got {ordinal}")
    return f"node-{ordinal}"


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it looks like ``node-3`` (lowercase, ends in -<ordinal>)."""
    if node_id in (AGGREGATOR, OPERATOR) or not _NODE_ID.match(node_id):
        raise CertificateError(
            f"invalid node id {node_id!r}: expected e.g. 'node-3' (lowercase letters, "
            "digits and '-', ending in '-<ordinal>', at most 63 characters)"
        )
    return node_id


@dataclass(frozen=True)
class Layout:
    """Paths of one PKI directory."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / TLS_CA_FILE

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / CA_KEY_FILE

    @property
    def ca_crl(self) -> Path:
        return self.ca_dir / TLS_CRL_FILE

    @property
    def state_file(self) -> Path:
        return self.ca_dir / STATE_FILE

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    def holder_dir(self, name: str) -> Path:
        """Bundle directory of ``aggregator``, ``operator`` or a node id."""
        if name in (AGGREGATOR, OPERATOR):
            return self.root / name
        return self.nodes_dir / validate_node_id(name)

    def has_ca(self) -> bool:
        return self.ca_cert.exists() or self.ca_key.exists()

    def managed_paths(self) -> list[Path]:
        """Everything ``init`` creates (what ``init --force`` moves to a backup)."""
        return [self.ca_dir, self.root / AGGREGATOR, self.root / OPERATOR, self.nodes_dir]


@dataclass
class Holder:
    """The current certificate of one holder (aggregator, operator or a node)."""

    role: Role
    serial: str  # hex
    not_after: str  # ISO 8601, UTC
    revoked: bool = False


@dataclass
class PkiState:
    """Contents of ``ca/state.json``."""

    validity_days: float
    renew_before_days: float
    server_names: list[str]
    holders: dict[str, Holder] = field(default_factory=dict)
    issued: dict[str, str] = field(default_factory=dict)  # serial (hex) -> holder name
    revoked: dict[str, str] = field(default_factory=dict)  # serial (hex) -> ISO time
    format: int = STATE_FORMAT

    @property
    def validity(self) -> timedelta:
        return timedelta(days=self.validity_days)

    @property
    def renew_before(self) -> timedelta:
        return timedelta(days=self.renew_before_days)

    def node_ids(self) -> list[str]:
        """Node ids in ordinal order."""
        nodes = [name for name in self.holders if name not in (AGGREGATOR, OPERATOR)]
        return sorted(nodes, key=lambda n: (int(n.rsplit("-", 1)[1]), n))

    def record(self, name: str, role: Role, serial: int, not_after: datetime) -> None:
        """Make ``serial`` the current certificate of ``name``."""
        self.issued[f"{serial:x}"] = name
        self.holders[name] = Holder(role, f"{serial:x}", not_after.isoformat())

    def revoke(self, serial: int, at: datetime) -> None:
        self.revoked.setdefault(f"{serial:x}", at.isoformat())

    def revoked_serials(self) -> dict[int, datetime]:
        return {int(s, 16): datetime.fromisoformat(t) for s, t in self.revoked.items()}

    def save(self, path: Path) -> None:
        text = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        atomic_write(path, text.encode(), 0o600)

    @classmethod
    def load(cls, path: Path) -> PkiState:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise CertificateError(f"missing PKI state file: {path}") from None
        except (OSError, ValueError) as exc:
            raise CertificateError(f"cannot read PKI state {path}: {exc}") from None
        try:
            if raw.get("format") != STATE_FORMAT:
                raise CertificateError(
                    f"{path} has state format {raw.get('format')!r}; this tool reads "
                    f"format {STATE_FORMAT}"
                )
            holders = {name: Holder(**h) for name, h in raw.pop("holders").items()}
            return cls(holders=holders, **raw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise CertificateError(f"{path} is not a PKI state file ({exc})") from None

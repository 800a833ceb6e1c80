"""mfaflow: authentication flows with MFA, as YAML state machines.

The public API lives here; every other module is private. A typical use::

    import mfaflow

    engine = mfaflow.Engine(mfaflow.Client(issuer, client_id))
    result = engine.start("password-grant", {"username": ..., "password": ...})
    while result.waiting_for:
        result = engine.resume(result.run_id, {"otp": input("Code: ")})
"""

from ._catalog import Catalog, shipped_flows_dir
from ._crypto import Sealer, generate_key, load_or_create_key
from ._diagram import (
    DiagramError,
    RunPath,
    check_all,
    render,
    run_path,
    to_dot,
    to_mermaid,
    write_all,
)
from ._engine import Client, Engine, RunEvent
from ._errors import (
    ActionError,
    AuthorizationServerError,
    ConcurrencyError,
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    DefinitionError,
    DefinitionErrors,
    EncryptionKeyMissing,
    InputError,
    MfaflowError,
    ProtocolError,
    RegistryError,
    ResponseTooLarge,
    RunEnded,
    RunError,
    RunNotFound,
    StoreError,
    TLSError,
    TransportError,
    TransportTimeout,
    UnhandledEvent,
    UnhandledServerError,
)
from ._loader import load_flow, parse_flow
from ._model import (
    Call,
    CatchRule,
    Condition,
    DataSpec,
    Flow,
    InputSpec,
    Location,
    OutputSpec,
    RetryRule,
    State,
    Transition,
)
from ._registry import (
    AUTH0_ENDPOINTS,
    ActionContext,
    ActionResult,
    Registry,
    default_registry,
)
from ._run import HistoryEntry, InputRequest, RunResult
from ._store import MemoryStore, RunSummary, SQLiteStore, Store, StoredRun
from ._store_postgres import PostgresStore
from ._store_redis import RedisStore
from ._transport import (
    MockTransport,
    Request,
    RequestsTransport,
    Response,
    Transport,
    WSGITransport,
)
from ._validate import check_flow
from ._version import __version__

__all__ = [
    "AUTH0_ENDPOINTS",
    "ActionContext",
    "ActionError",
    "ActionResult",
    "AuthorizationServerError",
    "Call",
    "Catalog",
    "CatchRule",
    "Client",
    "ConcurrencyError",
    "Condition",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionDropped",
    "DataSpec",
    "DefinitionError",
    "DefinitionErrors",
    "DiagramError",
    "EncryptionKeyMissing",
    "Engine",
    "Flow",
    "HistoryEntry",
    "InputError",
    "InputRequest",
    "InputSpec",
    "Location",
    "MemoryStore",
    "MfaflowError",
    "MockTransport",
    "OutputSpec",
    "PostgresStore",
    "ProtocolError",
    "RedisStore",
    "Registry",
    "RegistryError",
    "Request",
    "RequestsTransport",
    "Response",
    "ResponseTooLarge",
    "RetryRule",
    "RunEnded",
    "RunError",
    "RunEvent",
    "RunNotFound",
    "RunPath",
    "RunResult",
    "RunSummary",
    "SQLiteStore",
    "Sealer",
    "State",
    "Store",
    "StoreError",
    "StoredRun",
    "TLSError",
    "Transition",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "UnhandledEvent",
    "UnhandledServerError",
    "WSGITransport",
    "__version__",
    "check_all",
    "check_flow",
    "default_registry",
    "generate_key",
    "load_flow",
    "load_or_create_key",
    "parse_flow",
    "render",
    "run_path",
    "shipped_flows_dir",
    "to_dot",
    "to_mermaid",
    "write_all",
]

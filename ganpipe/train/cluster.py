"""Connecting to a Ray cluster (RAY_ADDRESS) fails in seconds, in one line, with its fix.

`ray.init(address=...)` on its own retries for minutes while printing GCS time-out warnings
when nothing listens, and a cluster with token authentication (Ray 2.60's default once a
token exists: `ray start --head` turns it on when ~/.ray/auth_token does) answers a client
without the token with `InvalidAuthToken` retries and a ConnectionError traceback. Kept apart
from `local_ray` so that commands can check the cluster before importing torch or Ray Train.
"""

from __future__ import annotations

import os
import re

CONNECT_TIMEOUT_ENV = "GANPIPE_RAY_CONNECT_TIMEOUT_S"
CONNECT_TIMEOUT_S = 10.0  # per step: the TCP connect, then one GCS call
AUTH_MODE_ENV, AUTH_TOKEN_ENV, AUTH_TOKEN_PATH_ENV = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
AUTH_DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


def _connect_timeout() -> float:
    try:
        return float(os.environ.get(CONNECT_TIMEOUT_ENV) or CONNECT_TIMEOUT_S)
    except ValueError:
        return CONNECT_TIMEOUT_S


def _host_port(address: str) -> tuple[str, int] | None:
    """('host', port) of 'host:port' or 'ray://host:port'; None for 'auto' and the like."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _auth_hint(address: str) -> str:
    """What to do when the cluster refuses this client, given how the client is set up."""
    mode = os.environ.get(AUTH_MODE_ENV, "")
    token_here = bool(os.environ.get(AUTH_TOKEN_ENV) or os.environ.get(AUTH_TOKEN_PATH_ENV)) or os.path.exists(os.path.expanduser("~/.ray/auth_token"))
    share = f"copy the cluster's token (`ray get-auth-token` on the head) into {AUTH_TOKEN_ENV} or ~/.ray/auth_token"
    if mode.lower() != "token":
        first = f"set {AUTH_MODE_ENV}=token here so the client sends the cluster's token" + ("" if token_here else f" and {share}")
        return f"{first}; or start the cluster with {AUTH_MODE_ENV}=disabled (trusted networks only); see {AUTH_DOCS}"
    return f"this client's token is not the cluster's: {share}; see {AUTH_DOCS}"


def _unreachable(address: str, cause: str) -> Exception:
    from ganpipe.errors import ServiceError

    return ServiceError(
        f"no Ray cluster answers at RAY_ADDRESS={address} ({cause})",
        hint="start the cluster (`ray start --head`, `ray up`), fix RAY_ADDRESS, or unset it to train on a private local instance",
    )


def _refused(address: str, cause: str) -> Exception:
    from ganpipe.errors import ServiceError

    return ServiceError(f"the Ray cluster at RAY_ADDRESS={address} refuses this client: {cause}", hint=_auth_hint(address))


def cluster_error(address: str, e: BaseException) -> Exception:
    """A failed `ray.init(address=...)` as a one-line `ServiceError` with its fix."""
    from ray.exceptions import AuthenticationError

    chain, c = [], e  # ray.init wraps the GCS's refusal: ConnectionError <- RuntimeError <- AuthenticationError
    while c is not None and len(chain) < 5:
        chain.append(c)
        c = c.__cause__ or c.__context__
    text = " ".join(str(x) for x in chain)
    if any(isinstance(x, AuthenticationError) for x in chain) or "InvalidAuthToken" in text or "UNAUTHENTICATED" in text or "authentication token" in text:
        m = re.search(r"InvalidAuthToken[^.\n]*|[Aa]uthentication token[^.\n]*", text)
        return _refused(address, (m.group(0) if m else str(e).split(".")[0])[:160])
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
    return _unreachable(address, f"{type(e).__name__}: {first[:160]}")


_answered: set[str] = set()  # addresses whose cluster answered and accepted this process


def check_cluster(address: str | None = None, timeout: float | None = None) -> None:
    """Raise a `ServiceError` within ~2 x `timeout` seconds when the cluster at `address`
    (default: RAY_ADDRESS; nothing to check when unset or 'local') is down or refuses this
    client. `ray.init` itself retries for minutes, printing GCS time-out warnings, and a
    cluster with token authentication turns a client without the token into a traceback.

    Two steps: a TCP connection to the address, then (for a GCS address, not a `ray://` client
    server) one GCS call, `GetClusterId`, made as Ray's own clients make it (TLS and token
    header when this process has token authentication on). An address that answered once is
    not probed again in this process (the CLI, the train stage and `ensure_ray` all ask); a
    cluster lost after that fails in `ray.init`, whose error `cluster_error` words the same way."""
    address = address if address is not None else os.environ.get("RAY_ADDRESS")
    if not address or address in ("local", "auto") or address in _answered:
        return
    hp = _host_port(address)
    if hp is None:
        return
    timeout = timeout or _connect_timeout()
    import socket

    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as e:
        raise _unreachable(address, e.strerror or type(e).__name__) from None
    if address.startswith("ray://"):
        _answered.add(address)
        return
    import grpc
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = init_grpc_channel(f"{hp[0]}:{hp[1]}")
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as e:
        code, details = e.code(), (e.details() or "").strip()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise _refused(address, details or "invalid or missing authentication token") from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise _unreachable(address, f"its GCS did not answer within {timeout:.0f} s") from None
        raise _unreachable(address, f"not a Ray GCS or not ready: {code.name} {details[:120]}") from None
    finally:
        channel.close()
    _answered.add(address)

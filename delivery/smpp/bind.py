"""Opening and closing one bind over smpplib (R-DLV-3): TCP connect, TCP_NODELAY, bind_<type>,
errors mapped to SmppConnectError / SmppBindError. The session owns what happens after.
"""

from __future__ import annotations

import logging
import socket

from smpplib import client as smpp_client
from smpplib import consts, exceptions

from .results import SmppBindError, SmppConnectError

logger = logging.getLogger("delivery.smpp")


def open_bind(
    *, host: str, port: int, system_id: str, password: str, system_type: str, bind: str, socket_timeout: float
) -> tuple[smpp_client.Client, socket.socket]:
    """Connect (TCP_NODELAY right away: without it a windowed sender stalls on Nagle/delayed-ACK)
    and bind as `bind` ("transceiver", "transmitter", "receiver"). Returns (client, socket)."""
    client = smpp_client.Client(
        host,
        port,
        timeout=socket_timeout,
        allow_unknown_opt_params=True,
        logger_name=f"delivery.smpp.client.{system_id}",
    )
    try:
        client.connect()
    except exceptions.ConnectionError as exc:
        client._socket = None  # smpplib leaves the failed socket object behind
        raise SmppConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
    sock = client._socket  # smpplib exposes no accessor; it is a plain socket
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if len(password) > 8 or len(system_id) > 15:
        # SMPP 3.4: password ≤ 8, system_id ≤ 15 octets; smpplib silently truncates them
        logger.warning(
            "SMPP %s: system_id/password longer than SMPP 3.4 allows; smpplib truncates them", system_id[:15]
        )
    # smpplib logs every PDU in hex at DEBUG, the bind PDU includes the password: never at bind
    client.logger.setLevel(max(logging.INFO, client.logger.getEffectiveLevel()))
    try:
        getattr(client, f"bind_{bind}")(system_id=system_id, password=password, system_type=system_type)
    except exceptions.PDUError as exc:
        close_client(client)
        status = exc.args[1] if len(exc.args) > 1 else None
        raise SmppBindError(f"bind_{bind} refused: {exc.args[0]}", command_status=status) from exc
    except (exceptions.ConnectionError, OSError) as exc:
        close_client(client)
        raise SmppConnectError(f"connection lost during bind: {exc}") from exc
    return client, sock


def close_client(client: smpp_client.Client) -> None:
    """Close smpplib's socket without an unbind (smpplib's own disconnect() insists on one)."""
    sock = client._socket
    client._socket = None
    client.state = consts.SMPP_CLIENT_STATE_CLOSED
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass

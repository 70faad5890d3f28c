"""Every outbound call has a wall-clock deadline and a size limit (issue 14, item 3).

A read timeout bounds one socket read: a server that trickles one byte a second,
or never stops sending, used to hold the worker as long as it liked. Through real
HTTP against the fake France Travail (tests/fakeop.py) and a raw socket server:
the trickle lasts a minute, the deadline is 2 s, and each test asserts only that
the call ended well within 30 s (no test depends on the machine's speed).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ftauth.core.errors import TransportError
from ftauth.core.http import ANSWER_LIMITS, HttpClient, HttpConfig
from ftauth.models import Grant
from tests.fakeop import ENDLESS, TRICKLE
from tests.idp import sign_in

pytestmark = pytest.mark.django_db

DEADLINE = 2.0
# A minute of trickle against a 2 s deadline: anything under 30 s is the deadline's work.
GENEROUS = 30.0


@pytest.fixture
def deadline(idp, settings):
    # The read timeout alone would never fire: every read gets a byte within a second.
    settings.FTAUTH = {
        **settings.FTAUTH,
        "HTTP_READ_TIMEOUT": 5.0,
        "HTTP_DEADLINE": DEADLINE,
        "API_TIME_BUDGET": DEADLINE,
    }
    return idp


@pytest.mark.parametrize("kind", ["jwks", "token"])
@pytest.mark.parametrize("mode", [TRICKLE, ENDLESS], ids=["trickle", "endless"])
def test_a_server_that_never_finishes_its_answer_is_a_503_in_bounded_time(
    client, deadline, kind, mode
):
    deadline.fail_next(kind, mode)
    started = time.monotonic()
    _, response = sign_in(client, deadline)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert "momentanément indisponible" in response.content.decode()
    assert elapsed < GENEROUS
    assert "_auth_user_id" not in client.session
    assert not Grant.objects.exists()


@pytest.mark.parametrize("mode", [TRICKLE, ENDLESS], ids=["trickle", "endless"])
def test_a_userinfo_that_never_finishes_is_given_up_and_the_sign_in_goes_on(client, deadline, mode):
    """The code is exchanged already: the sign-in completes with the ID token's claims
    after at most the deadline, and keeps its tokens (issue 15)."""
    deadline.fail_next("userinfo", mode)
    started = time.monotonic()
    _, response = sign_in(client, deadline)
    assert time.monotonic() - started < GENEROUS
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    assert Grant.objects.count() == 1


@pytest.mark.parametrize("mode", [TRICKLE, ENDLESS], ids=["trickle", "endless"])
def test_a_discovery_that_never_finishes_is_given_up_for_the_realm_defaults(client, deadline, mode):
    """Discovery unavailable means France Travail's documented paths (core.discovery):
    the sign-in goes on, after at most the deadline."""
    deadline.fail_next("discovery", mode)
    started = time.monotonic()
    _, response = sign_in(client, deadline)
    assert time.monotonic() - started < GENEROUS
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_a_40_mib_token_answer_is_not_read(client, idp):
    big = {"access_token": "AT-" + "x" * (40 * 1024 * 1024), "token_type": "Bearer"}
    idp.fail_next("token", 200, {}, big)
    _, response = sign_in(client, idp)
    assert response.status_code == 503
    assert not Grant.objects.exists()


def test_answers_of_every_kind_have_a_limit():
    assert set(ANSWER_LIMITS) == {"discovery", "jwks", "token", "userinfo", "api"}
    assert all(0 < limit <= 16 * 1024 * 1024 for limit in ANSWER_LIMITS.values())


class SlowHeaders:
    """A raw TCP server that sends its status line and headers one byte a second."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.closed_by_client = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/x"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 60:
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            except OSError:
                self.closed_by_client.set()
                return
            # Still sending when the client gave up is impossible: it shut its side.
            if conn.recv(1) == b"":
                self.closed_by_client.set()

    def close(self) -> None:
        self.sock.close()


def test_headers_trickled_a_byte_a_second_end_at_the_deadline_and_close_the_connection():
    server = SlowHeaders()
    client = HttpClient(HttpConfig(read_timeout=5.0, retries=2, deadline=DEADLINE))
    try:
        started = time.monotonic()
        with pytest.raises(TransportError, match="deadline"):
            client.get(server.url)
        assert time.monotonic() - started < GENEROUS
        # The connection is closed, not left to the server.
        assert server.closed_by_client.wait(GENEROUS)
    finally:
        client.close()
        server.close()


def test_a_call_within_its_deadline_and_limit_is_unchanged(fakeop):
    client = HttpClient(HttpConfig(deadline=DEADLINE))
    try:
        response = client.get(f"{fakeop.server_url}/connexion/oauth2/connect/jwk_uri")
        assert response.status_code == 200 and response.json()["keys"]
        # The connection went back to the pool: a second call reuses it.
        assert client.get(f"{fakeop.server_url}/connexion/oauth2/connect/jwk_uri").ok
    finally:
        client.close()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The HTTP half of the fault matrix (galileo-credential(1) EXIT STATUS, TOKEN LIFETIME, SECURITY):
what the token endpoint can do wrong, and what the user sees for each.

Every failing row asserts the exit code, exactly one stderr line starting
'galileo-credential: ' (with the telling part of its text), nothing on
stdout, what the endpoint received, and that the Secret Service holds
exactly what it held before.  Rows that succeed assert the token printed,
an empty stderr, what the endpoint received, and what got cached.

Retry waits are real: rows use small timeouts and Retry-After: 1, and
assert lower bounds on time (a wait happened) with generous upper bounds.
"""

import json
import os
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, Listener, Response, TokenServer,  # noqa: E402
                     free_port, git_lines, http_date, make_jwt, parse_git_output,
                     parse_rfc3339, rfc3339, settled)

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

WARNING = harness.PREFIX + 'warning: '


class FaultBase(GCTestCase):
    """A stored credential for the endpoint; the keyring as it was before the row."""

    def setUp(self):
        super().setUp()
        # the stale-token rows are about a refresh in the call itself
        # (refresh = background is tested in test_ahead.py)
        self.env.refresh_mode = 'inline'
        self.env.write_config()
        self.key = self.login(args=['--no-verify'])
        self.before = self.env.keyring_snapshot()

    # -- steps -------------------------------------------------------------
    def fails(self, code, *contains, args=(), requests=None, server=None):
        """
        `token` fails with code and one line holding each of contains; the
        endpoint (server, default ours) got `requests` requests; the keyring
        is as it was.  Returns the error line.
        """
        server = server or self.server
        res = self.env.run(['token'] + list(args))
        self.assertFails(res, code, *contains)
        if requests is not None:
            self.assertEqual(server.count, requests, 'requests to the endpoint')
        self.assertKeyringUnchanged(self.before)
        return res.stderr

    def succeeds(self, requests):
        """`token` prints the last token issued, nothing else; returns it."""
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, 'token failed: %r' % err)
        self.assertEqual(err, '', 'stderr on success')
        self.assertEqual(self.server.count, requests, 'requests to the endpoint')
        self.assertTrue(out.endswith('\n') and out.count('\n') == 1, 'not one line')
        self.assertSecretEqual(out[:-1], self.server.last.token, 'token printed')
        self.assertRequestsCarryKey()
        return out[:-1]

    def git_get(self):
        """git-format get: (token, password_expiry_utc as int or None)."""
        rc, out, err = self.env.run(['get'], input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '', 'stderr on success')
        d, _ = parse_git_output(out)
        exp = d.get('password_expiry_utc')
        return d.get('password'), int(exp) if exp else None

    # -- checks ------------------------------------------------------------
    def assertRequestsCarryKey(self):
        for req in self.server.requests:
            self.assertEqual((req.method, req.path), ('GET', '/v1/token'))
            self.assertEqual(req.credential, ('api-key', self.key), 'credential sent')

    def assertCredentialKept(self):
        """The credential item as before (tokens may have been added)."""
        def creds(snap):
            return [i for i in snap if i[1] == harness.KEY_SCHEMA]
        after = creds(self.env.keyring_snapshot())
        if after != creds(self.before):
            self.fail('the credential item changed')

    def assertCached(self, token, expires_near=None):
        """Exactly one token item, holding token; its expiry (status) near expires_near."""
        self.assertCredentialKept()
        items = self.env.token_items()
        self.assertEqual(len(items), 1, items)
        self.assertIn(token, items[0].secret.split(), 'the token item does not hold the token')
        if expires_near is not None:
            rc, out, err = self.env.run(['status', '--json'])
            self.assertEqual(rc, 0, err)
            toks = json.loads(out)['servers'][0]['tokens']
            self.assertEqual(len(toks), 1, toks)
            self.assertNear(parse_rfc3339(toks[0]['expires_at']), expires_near)

    def assertNear(self, got, expected, slack=5, what='expiry'):
        self.assertIsNotNone(got, what + ' missing')
        self.assertLessEqual(abs(got - expected), slack,
                             '%s %d, expected about %d' % (what, got, expected))


class Unreachable(FaultBase):
    """Connection failures and timeouts: retried inside `timeout`, then exit 5."""

    def other_server(self, url):
        self.login(key=self.key, args=['--no-verify', '--server', url])
        self.before = self.env.keyring_snapshot()

    def test_endpoint_down(self):
        url = 'https://127.0.0.1:%d' % free_port()
        self.other_server(url)
        t0 = time.time()
        line = self.fails(5, "cannot reach '%s': cannot connect to the server" % url,
                          '(3 attempts)', args=['--server', url], requests=0)
        # two backoff waits: at least 250 + 500 ms
        self.assertGreaterEqual(time.time() - t0, 0.75, line)

    def test_connection_reset(self):
        lis = Listener(reset=True)
        try:
            self.other_server(lis.url)
            self.fails(5, "cannot reach '%s': " % lis.url, '(3 attempts)',
                       args=['--server', lis.url], requests=0)
            self.assertEqual(lis.settled_count(3), 3, 'connections made')
        finally:
            lis.close()

    def test_endpoint_accepts_never_answers(self):
        # TCP accepted, no TLS handshake ever: one attempt uses the 2 s up
        lis = Listener()
        try:
            self.other_server(lis.url)
            self.env.write_config(extra='timeout = 2\n')
            t0 = time.time()
            self.fails(5, "cannot reach '%s': timed out after 2 s" % lis.url,
                       args=['--server', lis.url], requests=0)
            elapsed = time.time() - t0
            self.assertGreaterEqual(elapsed, 1.9)
            self.assertLess(elapsed, 15, 'timeout = 2 not honoured')
            self.assertEqual(lis.settled_count(1), 1, 'connections made')
        finally:
            lis.close()

    def test_request_never_answered(self):
        # the HTTP request arrives, the answer never does
        self.env.write_config(extra='timeout = 2\n')
        self.server.push(Response(200, b'{}', delay=30), times=None)
        t0 = time.time()
        self.fails(5, "cannot reach '%s': timed out after 2 s" % self.url, requests=1)
        self.assertNotIn('attempts', self.env.history[-1].stderr)
        elapsed = time.time() - t0
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 15, 'timeout = 2 not honoured')


class ServerErrors(FaultBase):
    """5xx and 429: retried, at most 3 attempts, Retry-After honoured."""

    def test_500_always(self):
        self.server.push(Response(500, {'detail': 'boom'}), times=None)
        self.fails(5, "the server '%s' failed the token request (HTTP 500; 3 attempts); "
                      "try again later" % self.url, requests=3)
        self.assertRequestsCarryKey()

    def test_503_once_then_200(self):
        self.server.push(Response(503, {'detail': 'restarting'}))
        tok = self.succeeds(requests=2)
        gap = self.server.requests[1].time - self.server.requests[0].time
        self.assertGreaterEqual(gap, 0.24, 'no backoff between the attempts')
        self.assertCached(tok)

    def test_429_retry_after_seconds(self):
        self.server.push(Response(429, {'detail': 'slow down'}, headers={'Retry-After': '1'}))
        tok = self.succeeds(requests=2)
        gap = self.server.requests[1].time - self.server.requests[0].time
        self.assertGreaterEqual(gap, 0.95, 'Retry-After: 1 not waited for')
        self.assertLess(gap, 10)
        self.assertCached(tok)

    def test_429_retry_after_http_date(self):
        # one second after the response's own Date, whatever the clocks say
        def reply(req):
            now = int(time.time()) - 7200       # a server clock 2 h behind
            return Response(429, {'detail': 'slow down'},
                            headers={'Date': http_date(now),
                                     'Retry-After': http_date(now + 1)})
        self.server.push(reply)
        tok = self.succeeds(requests=2)
        gap = self.server.requests[1].time - self.server.requests[0].time
        self.assertGreaterEqual(gap, 0.95, 'Retry-After date not waited for')
        self.assertLess(gap, 10)
        self.assertCached(tok)

    def test_retry_after_beyond_timeout_fails_at_once(self):
        self.env.write_config(extra='timeout = 8\n')
        self.server.push(Response(429, {'detail': 'slow down'},
                                  headers={'Retry-After': '3600'}), times=None)
        t0 = time.time()
        self.fails(5, "the server '%s' failed the token request (HTTP 429); "
                      "it asks to be tried again in 3600 s" % self.url, requests=1)
        self.assertLess(time.time() - t0, 8, 'waited instead of failing at once')
        # the same as an HTTP date
        self.server.push(lambda req: Response(503, {'detail': 'maintenance'}, headers={
            'Retry-After': http_date(time.time() + 600)}), times=None)
        t0 = time.time()
        self.fails(5, '(HTTP 503); it asks to be tried again in ', requests=2)
        self.assertLess(time.time() - t0, 8, 'waited instead of failing at once')

    def test_attempts_logged_in_debug(self):
        self.server.push(Response(503, {'detail': 'restarting'}))
        rc, out, err = self.env.run(['token'], env_extra={'GALILEO_CREDENTIAL_DEBUG': '1'})
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 2)
        for needle in ('attempt 1 of 3: GET %s/v1/token (api-key credential: ***)' % self.url,
                       'HTTP 503', 'before attempt 2', 'attempt 2 of 3: GET ', 'HTTP 200'):
            self.assertIn(needle, err)
        self.assertTrue(all(line.startswith(harness.PREFIX) for line in err.splitlines()), err)
        # (no key or token in it: GCTestCase checks every output after each test)


class Refusals(FaultBase):
    """Answers no retry can change: one request, then exit 4, 7 or 5."""

    def test_401(self):
        self.server.accepted.clear()
        self.fails(4, "the server '%s' rejected the credential (HTTP 401); "
                      "run 'galileo-credential login --server %s'" % (self.url, self.url),
                   requests=1)
        self.assertRequestsCarryKey()

    def test_403(self):
        self.server.push(Response(403, {'detail': 'Not allowed'}), times=None)
        self.fails(4, "the server '%s' rejected the credential (HTTP 403); "
                      "run 'galileo-credential login" % self.url, requests=1)

    def test_422_detail_list(self):
        self.server.push(Response(422, {'detail': [
            {'loc': ['query', 'organization_id'], 'msg': 'Input should be a valid UUID',
             'type': 'uuid_parsing'},
            {'loc': ['query', 'organization_slug', 0], 'msg': 'bad slug', 'type': 'x'},
        ]}), times=None)
        self.fails(7, "the server '%s' refused the request: query.organization_id: Input "
                      "should be a valid UUID; query.organization_slug.0: bad slug" % self.url,
                   requests=1)

    def test_404_and_400(self):
        for status in (404, 400):
            self.server.push(Response(status, {'detail': 'Not Found'}), times=None)
            self.fails(5, "(HTTP %d); check the server URL and token-path" % status)
        self.assertEqual(self.server.count, 2)

    def test_redirect_to_other_origin(self):
        lis = Listener()
        try:
            self.server.push(Response(302, b'', headers={
                'Location': lis.url + '/v1/token'}), times=None)
            self.fails(5, "the server '%s' redirected the request (HTTP 302); "
                          "redirects are not followed" % self.url, requests=1)
            self.assertEqual(lis.settled_count(), 0, 'the other origin was contacted')
        finally:
            lis.close()


class BadBodies(FaultBase):
    """A 200 that is not a valid token response: exit 5, one request, nothing kept."""

    def bad(self, body, why, **kw):
        before = self.server.count
        self.server.push(Response(200, body, **kw), times=None)
        self.fails(5, "the server '%s' sent an invalid token response: %s" % (self.url, why),
                   requests=before + 1)

    def expiry(self, seconds=3600):
        return rfc3339(time.time() + seconds)

    def test_not_json(self):
        self.bad('<html>hello</html>', 'not JSON', headers={'Content-Type': 'text/html'})

    def test_missing_access_token(self):
        self.bad({'token_type': 'bearer', 'expires_at': self.expiry()},
                 'access_token is missing or not a string')

    def test_fields_of_the_wrong_type(self):
        tok = self.server.new_token()
        self.bad({'access_token': 12345, 'expires_at': self.expiry()},
                 'access_token is missing or not a string')
        self.bad({'access_token': tok, 'expires_at': int(time.time()) + 3600},
                 'expires_at is not a string')
        self.bad({'access_token': tok, 'token_type': 5, 'expires_at': self.expiry()},
                 'token_type is not a string')
        self.bad({'access_token': [tok], 'expires_at': self.expiry()},
                 'access_token is missing or not a string')

    def test_expires_at_in_the_past(self):
        self.server.push(self.server.token_reply(expires_at=lambda now: rfc3339(now - 10)),
                         times=None)
        self.fails(5, "the server '%s' sent a token that has already expired" % self.url,
                   requests=1)

    def test_body_of_1_mib(self):
        tok = self.server.new_token()
        self.server.push(Response(200, {'access_token': tok, 'token_type': 'bearer',
                                        'expires_at': self.expiry(),
                                        'padding': 'x' * (1024 * 1024)}), times=None)
        self.fails(5, "the request to '%s' failed: response body over 64 KiB" % self.url,
                   requests=1)


class StreamingServer:
    """
    An HTTPS endpoint that answers every request with 200 and a body without
    Content-Length that never ends: close-delimited, or chunked; counts
    the bytes it got out.
    """

    def __init__(self, certfile, keyfile, chunked):
        self.chunked = chunked
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.url = 'https://127.0.0.1:%d' % self.sock.getsockname()[1]
        self.sent = 0
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        piece = b'{"padding": "' + b'x' * 8192
        try:
            conn = self.ctx.wrap_socket(conn, server_side=True)
            conn.settimeout(harness.RUN_TIMEOUT)
            head = b''
            while b'\r\n\r\n' not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
                         (b'Transfer-Encoding: chunked\r\n' if self.chunked
                          else b'Connection: close\r\n') + b'\r\n')
            deadline = time.time() + harness.RUN_TIMEOUT
            while not self.stop.is_set() and time.time() < deadline:
                if self.chunked:
                    conn.sendall(b'%x\r\n%s\r\n' % (len(piece), piece))
                else:
                    conn.sendall(piece)
                self.sent += len(piece)
                time.sleep(0.01)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


class EndlessBody(FaultBase):
    """
    A 200 with no Content-Length whose body never ends (close-delimited or
    chunked): refused once it passes 64 KiB, at once, not when the timeout
    runs out (curl's own size limit only sees a Content-Length).
    """

    def check(self, chunked):
        srv = StreamingServer(self.env.server_cert, self.env.server_key, chunked)
        self.addCleanup(srv.close)
        self.env.write_config(extra='timeout = 10\n')
        t = time.time()
        res = self.env.run(['token'], env_extra={'GALILEO_API_URL': srv.url,
                                                 'GALILEO_API_KEY': self.key})
        took = time.time() - t
        self.assertFails(res, 5, "the request to '%s' failed: response body over 64 KiB" % srv.url)
        self.assertLess(took, 5, 'the body was read until the timeout')
        self.assertLess(srv.sent, 4 * 1024 * 1024)
        self.assertKeyringUnchanged(self.before)

    def test_close_delimited(self):
        self.check(chunked=False)

    def test_chunked(self):
        self.check(chunked=True)


class StoreDuringOutage(FaultBase):
    """
    git 2.39 stores what get gave it (username=token, password=TOKEN, no
    password_expiry_utc): with no token cache to recognise it, only the
    exchange that verifies a new secret keeps it from replacing the key.
    When that exchange cannot be made (the server down), nothing is stored.
    """

    def test_uncached_token_is_not_stored_while_the_server_is_down(self):
        self.env.write_config(token_cache='none')
        host = '127.0.0.1:%d' % self.server.port
        rc, out, err = self.env.git(['credential', 'fill'], input='url=https://%s\n\n' % host)
        self.assertEqual(rc, 0, err)
        tok = parse_git_output(out)[0]['password']
        self.server.push(Response(503, {'detail': 'down'}), times=None)
        count = self.server.count
        rc, _, err = self.env.git(['credential', 'approve'], input=git_lines(
            'protocol=https', 'host=' + host, 'username=token', 'password=' + tok))
        self.assertEqual(rc, 0, err)
        self.assertGreater(self.server.count, count, 'the store never tried to verify')
        self.assertCredentialKept()
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, self.key, 'stored credential')


class Expiry(FaultBase):
    """Readable and unreadable expiries: what is handed out, and what cached."""

    def test_missing_expires_at_opaque_token(self):
        # neither expires_at nor a JWT exp: handed out, not cached (TOKEN LIFETIME)
        self.server.push(self.server.token_reply(omit_expires=True), times=None)
        t1 = self.succeeds(requests=1)
        self.assertKeyringUnchanged(self.before)
        tok, exp = self.git_get()
        self.assertEqual(self.server.count, 2, 'an uncached token was reused')
        self.assertNotEqual(tok, t1)
        self.assertIsNone(exp, 'password_expiry_utc for a token of unknown expiry')
        self.assertKeyringUnchanged(self.before)

    def test_unparsable_expires_at(self):
        # opaque token: as if missing
        self.server.push(self.server.token_reply(expires_at='next tuesday'))
        self.succeeds(requests=1)
        self.assertKeyringUnchanged(self.before)
        # a JWT: its exp claim is used, and the token cached
        self.server.push(self.server.token_reply(
            expires_at='2024-13-45T99:99:99Z',
            token=lambda: make_jwt({'sub': 'u', 'exp': int(time.time()) + 1200})))
        now = int(time.time())
        tok = self.succeeds(requests=2)
        self.assertCached(tok, expires_near=now + 1200)

    def check_format(self, fmt, lifetime=3600, **reply):
        self.server.push(self.server.token_reply(
            expires_at=lambda now: fmt(now + lifetime), **reply))
        now = int(time.time())
        tok, exp = self.git_get()
        self.assertEqual(self.server.count, 1)
        self.assertSecretEqual(tok, self.server.last.token, 'token handed out')
        self.assertNear(exp, now + lifetime, what='password_expiry_utc')
        self.assertCached(tok, expires_near=now + lifetime)
        tok2, exp2 = self.git_get()
        self.assertEqual(self.server.count, 1, 'not served from the cache')
        self.assertSecretEqual(tok2, tok, 'cached token')

    def test_naive_is_utc(self):
        self.check_format(lambda e: rfc3339(e, naive=True))

    def test_fractional_seconds(self):
        self.check_format(lambda e: rfc3339(e, frac='987654', offset_minutes=-90))

    def test_date_header_fifty_minutes_ahead(self):
        # the server's clock (Date and expires_at) 50 minutes ahead of ours
        # (more than an hour is not believed: test_lifetime.py)
        self.server.push(self.server.token_reply(lifetime=1800, date_skew=3000))
        now = int(time.time())
        tok, exp = self.git_get()
        self.assertNear(exp, now + 1800, what='password_expiry_utc')
        self.assertCached(tok, expires_near=now + 1800)

    def test_date_header_fifty_minutes_behind(self):
        # by our clock this expires_at is 20 minutes ago
        self.server.push(self.server.token_reply(lifetime=1800, date_skew=-3000))
        now = int(time.time())
        tok, exp = self.git_get()
        self.assertNear(exp, now + 1800, what='password_expiry_utc')
        self.assertCached(tok, expires_near=now + 1800)


class TLS(FaultBase):
    """Verification failures: exit 5 at the first attempt, no request made."""

    def check_tls(self, certfile, keyfile, why):
        other = TokenServer(certfile, keyfile)
        other.start()
        try:
            other.accept_key(self.key)
            self.login(key=self.key, args=['--no-verify', '--server', other.url])
            self.before = self.env.keyring_snapshot()
            line = self.fails(5, "the request to '%s' failed: TLS verification failed: "
                              % other.url, why, args=['--server', other.url],
                              requests=0, server=other)
            self.assertNotIn('attempts', line)
            # one connection, refused by us at the handshake: no retry
            self.assertEqual(settled(lambda: other.connections, 1), 1, 'connections made')
            self.assertEqual(self.server.count, 0)
        finally:
            other.stop()

    def test_untrusted_certificate(self):
        cert, key = self.env.issue_cert('untrusted', 'IP:127.0.0.1,DNS:localhost',
                                        other_ca=True)
        self.check_tls(cert, key, 'certificate')

    def test_wrong_host_name(self):
        cert, key = self.env.issue_cert('wronghost', 'DNS:wrong.example')
        self.check_tls(cert, key, 'subject name')

    def test_unreadable_ca_file(self):
        self.env.write_config(ca_file=os.path.join(self.env.root, 'no-such-ca.pem'))
        self.fails(5, "the request to '%s' failed: cannot read the CA file" % self.url,
                   requests=0)


class EarlyConnection(GCTestCase):
    """
    The cold path: the TLS connection to the endpoint is made while the
    keystore is read, and the request goes on that connection once the
    credential is there; nothing is sent when the keystore fails.
    """

    def test_one_connection_carries_the_request(self):
        key = self.login()
        self.env.kernel_keys_clear()
        before = self.server.connections
        rc, out, err = self.env.run(['token', '--refresh'],
                                    env_extra={'GALILEO_CREDENTIAL_DEBUG': '1'})
        self.assertEqual(rc, 0, err)
        self.assertIn('connecting while the credential is read', err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertEqual(self.server.connections - before, 1, 'a second connection')

    def test_nothing_sent_when_the_keystore_fails(self):
        self.login()
        count = self.server.count
        res = self.env.run(['token', '--refresh'],
                           env_extra={'DBUS_SESSION_BUS_ADDRESS': 'unix:path=/nonexistent'})
        self.assertFails(res, 6, 'cannot reach the Secret Service')
        self.assertEqual(self.server.count, count, 'a request without a credential')

    def test_another_organization_gets_a_connection_of_its_own(self):
        # the stored default organization is known only once the credential
        # is read: the connection begun for none is given up, nothing sent on it
        self.login(args=['--org-slug', 'acme'])
        count, conns = self.server.count, self.server.connections
        rc, out, err = self.env.run(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, count + 1)
        self.assertEqual(self.server.last.query, {'organization_slug': 'acme'})
        self.assertLessEqual(self.server.connections - conns, 2)


class StaleToken(FaultBase):
    """
    galileo-credential(1) TOKEN LIFETIME: a cached token inside its margin but not expired
    survives a refresh that fails with exit class 5 (after the retries),
    not a rejection.
    """

    def setUp(self):
        super().setUp()
        self.server.push(self.server.token_reply(lifetime=3600))
        self.cached = self.succeeds(requests=1)
        self.age_cached_token(left=120)
        self.before = self.env.keyring_snapshot()
        self.server.reset()
        self.server.accept_key(self.key)
        self.server.register_token(self.cached)     # still checked for leaks

    def age_cached_token(self, left):
        """
        Rewrite the cached item as if its token (lifetime 3600 s) had only
        `left` seconds to go: inside the 300 s margin, not expired.  This
        relies on the payload format of token/cache.h (harness.parse_payload)
        to avoid waiting.
        """
        item, = self.env.token_items()
        fields = harness.parse_payload(item.secret)
        self.assertIsNotNone(fields, 'the token item holds no payload')
        self.assertSecretEqual(fields['token'], self.cached, 'cached token')
        fields['expires'] = int(time.time()) + left
        self.env.keyring_store(harness.TOKEN_SCHEMA, item.label, harness.format_payload(fields),
                               **item.attributes)
        self.assertEqual(len(self.env.token_items()), 1, 'the item was not replaced')

    def test_503_always_returns_cached_token_with_warning(self):
        self.server.push(Response(503, {'detail': 'down'}), times=None)
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(out, self.cached + '\n', 'cached token')
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith(WARNING), err)
        self.assertIn("the server '%s' failed the token request (HTTP 503; 3 attempts)"
                      % self.url, lines[0])
        self.assertIn('using the cached token, which expires in ', lines[0])
        self.assertEqual(self.server.count, 3, 'refresh attempts')
        self.assertKeyringUnchanged(self.before)

    def test_unreachable_returns_cached_token_with_warning(self):
        self.env.write_config(extra='timeout = 2\n')
        self.server.push(Response(200, b'{}', delay=30), times=None)
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(out, self.cached + '\n', 'cached token')
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith(WARNING + "cannot reach '%s': timed out after 2 s"
                                       % self.url), err)
        self.assertEqual(self.server.count, 1)
        self.assertKeyringUnchanged(self.before)

    def test_token_that_expires_during_the_retries_is_not_served(self):
        # 2 s left; each of the 3 attempts waits 1 s for a 503: by the time
        # the refresh has failed, the cached token has expired
        self.age_cached_token(left=2)
        self.before = self.env.keyring_snapshot()
        self.server.push(Response(503, {'detail': 'down'}, delay=1.0), times=None)
        t = time.time()
        res = self.env.run(['token'])
        self.assertGreater(time.time() - t, 2, 'the retries ended before the token expired')
        self.assertFails(res, 5, "the server '%s' failed the token request (HTTP 503; 3 attempts)"
                         % self.url)
        self.assertEqual(self.server.count, 3, 'refresh attempts')
        self.assertKeyringUnchanged(self.before)

    def test_401_fails(self):
        self.server.accepted.clear()
        self.fails(4, "the server '%s' rejected the credential (HTTP 401)" % self.url,
                   requests=1)


if __name__ == '__main__':
    harness.main()

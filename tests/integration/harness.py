# SPDX-License-Identifier: MIT
"""
Integration-test harness for galileo-credential (stdlib only; run the tests
with /usr/bin/python3).

Each test module gets one private world (module_env()):
  - a temporary HOME / XDG_CONFIG_HOME / XDG_DATA_HOME / XDG_RUNTIME_DIR,
  - a private D-Bus session bus and a gnome-keyring-daemon on it, unlocked,
    so the default ("login") collection exists,
  - a throwaway CA and a server certificate for 127.0.0.1 and localhost,
  - an HTTPS token endpoint (TokenServer) on 127.0.0.1, random port,
  - a bin dir with git-credential-galileo / docker-credential-galileo links
    to the built program, first on PATH,
  - a config file naming the endpoint and the CA.

The program is $GC_BUILDDIR/galileo-credential (default: the current
directory); its modules come from $GALILEO_CREDENTIAL_MODULE_DIR (default:
$GC_BUILDDIR/.libs).

Kernel keys (the `keyctl` token-cache tier) live in the user keyring @u,
which every process of this UID shares and which outlives the test: Env
removes the ones naming its endpoint's server (kernel_keys_clear()) on
every reset() and on close().  It uses /proc/keys and the `keyctl` program
(package keyutils).  The kernel's key quota is per UID too: every test
module holds a shared lock on it (keys_lock()) for as long as it may add
keys, and test_quota, which fills the quota, holds it exclusively, so no
other test runs while the quota is full.

Secrets (keys made with new_key(), tokens the endpoint hands out) are never
printed by the harness: keyring items redact them in repr(), and GCTestCase
checks after every test that no key ever reached any output, and no token
reached any output but the stdout of get/token.
"""

import atexit
import base64
import collections
import datetime
import email.utils
import fcntl
import http.server
import json
import os
import re
import secrets as _secrets
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

PROGRAM = 'galileo-credential'
VERSION = '0.1.0'
USER_AGENT_PREFIX = 'galileo-credential/' + VERSION
KEY_SCHEMA = 'ai.galileo.credential.Key'
TOKEN_SCHEMA = 'ai.galileo.credential.Token'
PREFIX = 'galileo-credential: '
DEFAULT_SERVER = 'https://api.galileo.ai'

RUN_TIMEOUT = 30        # seconds for any one subprocess
TEST_ALARM = 180        # seconds for any one test
KEYRING_PASSWORD = 'harness-login-password'


def builddir():
    return os.path.abspath(os.environ.get('GC_BUILDDIR') or os.getcwd())


def program_path():
    return os.path.join(builddir(), PROGRAM)


def keyctl_refused_path():
    """tests/keyctl-refused: runs a program with keyctl(2) & co. refused"""
    return os.path.join(builddir(), 'tests', 'keyctl-refused')


def module_dir():
    d = os.environ.get('GALILEO_CREDENTIAL_MODULE_DIR')
    if d:
        return os.path.abspath(d)
    return os.path.join(builddir(), '.libs')


# --------------------------------------------------------------------------
# time helpers

def rfc3339(epoch, offset_minutes=0, frac=None, naive=False):
    """
    RFC 3339 text for an epoch: 'Z' by default, '+hh:mm'/'-hh:mm' for an
    offset, no offset at all when naive (then it is UTC), and '.frac'
    (a digit string) when frac is given.
    """
    tz = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    dt = datetime.datetime.fromtimestamp(int(epoch), tz)
    s = dt.strftime('%Y-%m-%dT%H:%M:%S')
    if frac is not None:
        s += '.' + frac
    if naive:
        return s
    if offset_minutes == 0:
        return s + 'Z'
    sign = '+' if offset_minutes > 0 else '-'
    m = abs(offset_minutes)
    return s + '%s%02d:%02d' % (sign, m // 60, m % 60)


def parse_rfc3339(s):
    """epoch seconds (int) for RFC 3339 text; no offset means UTC"""
    m = re.fullmatch(r'(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?'
                     r'([Zz]|[+-]\d\d:\d\d)?', s)
    if not m:
        raise ValueError('not RFC 3339: %r' % s)
    y, mo, d, h, mi, sec = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    off = 0
    tz = m.group(8)
    if tz and tz not in 'Zz':
        off = (int(tz[1:3]) * 60 + int(tz[4:6])) * (1 if tz[0] == '+' else -1)
    dt = datetime.datetime(y, mo, d, h, mi, sec, tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) - off * 60


def http_date(epoch):
    return email.utils.formatdate(epoch, usegmt=True)


def wait_for_second_start(frac=0.05):
    """Sleep until just after a whole second, so timing tests have slack."""
    now = time.time()
    wait = (1.0 - (now % 1.0)) + frac
    if wait >= 1.0:
        wait -= 1.0
    time.sleep(wait)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def make_jwt(payload):
    """An unsigned-looking JWT (the program only reads the exp claim)."""
    header = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    body = b64url(json.dumps(payload).encode())
    sig = b64url(_secrets.token_bytes(32))
    return '%s.%s.%s' % (header, body, sig)


PAYLOAD_FIELDS = ('magic', 'expires', 'lifetime', 'fingerprint', 'generation', 'context',
                  'token')


def parse_payload(text):
    """
    A cached token's payload (token/cache.h: "gc2 EXPIRES LIFETIME
    FINGERPRINT GENERATION CONTEXT TOKEN") as a dict of strings; None when
    it is not one.  Holds a token: compare it, never print it.
    """
    parts = (text or '').split(' ')
    if len(parts) != len(PAYLOAD_FIELDS) or parts[0] != 'gc2':
        return None
    return dict(zip(PAYLOAD_FIELDS, parts))


def format_payload(fields):
    return ' '.join(str(fields[k]) for k in PAYLOAD_FIELDS)


def redact(s):
    """First 6 characters and an ellipsis: safe to show a person."""
    if s is None:
        return '(none)'
    return s[:6] + '\u2026'


# --------------------------------------------------------------------------
# the HTTPS token endpoint

class Response:
    """A scripted answer.  body: bytes, str, or a JSON-able object."""

    def __init__(self, status=200, body=b'', headers=None, delay=0.0,
                 date=True):
        self.status = status
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {})
            headers.setdefault('Content-Type', 'application/json')
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay
        self.date = date        # add a Date header (now) unless one is given


def delayed(reply, delay):
    """
    reply (a Response, or a callable req -> Response such as
    TokenServer.token_reply()) answered only after `delay` seconds; for push().
    The delay ends early when the endpoint is reset.
    """
    def build(req):
        r = reply(req) if callable(reply) else reply
        r = Response(r.status, r.body, headers=r.headers, delay=delay, date=r.date)
        return r
    return build


class Request:
    """What the endpoint received (one per HTTP request)."""

    def __init__(self, method, path, query, headers):
        self.method = method
        self.path = path                # without the query
        self.query = query              # dict: name -> value (last one)
        self.headers = headers          # dict: lower-case name -> value
        self.credential = None          # ('api-key', k) | ('basic', u, p) | ('bearer', t)
        self.status = None
        self.body = b''                 # the request body (a secret, maybe: never shown)
        self.token = None               # access_token handed out, if any
        self.time = time.time()         # when it arrived
        self.server_now = None          # token_reply's clock, when it answered

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        # never the credential itself
        kind = self.credential[0] if self.credential else None
        return '<Request %s %s query=%r cred-kind=%r status=%r>' % (
            self.method, self.path, self.query, kind, self.status)


def _credential_of(headers):
    key = headers.get('galileo-api-key')
    if key is not None:
        return ('api-key', key)
    auth = headers.get('authorization')
    if auth:
        scheme, _, value = auth.partition(' ')
        if scheme.lower() == 'basic':
            try:
                raw = base64.b64decode(value.strip(), validate=True).decode()
            except Exception:
                return ('basic-malformed', value)
            user, _, pw = raw.partition(':')
            return ('basic', user, pw)
        if scheme.lower() == 'bearer':
            return ('bearer', value.strip())
        return ('unknown', auth)
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'harness'

    def log_message(self, fmt, *args):
        pass

    def _handle(self):
        srv = self.server.owner
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in
                 urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, parsed.path, query, headers)
        req.credential = _credential_of(headers)
        length = int(headers.get('content-length') or 0)
        if 0 < length <= 65536:
            req.body = self.rfile.read(length)     # what an SDK POSTs (may hold a key)
        generation = srv._generation
        wake = srv._wake
        resp = srv._next_response(req)
        req.status = resp.status
        srv._record(req, generation)
        if resp.delay:
            wake.wait(resp.delay)
        self.send_response_only(resp.status)
        hdrs = dict(resp.headers)
        if resp.date and not any(k.lower() == 'date' for k in hdrs):
            hdrs['Date'] = http_date(time.time())
        for k, v in hdrs.items():
            if v is not None:
                self.send_header(k, v)
        self.send_header('Content-Length', str(len(resp.body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True
        try:
            if self.command != 'HEAD':
                self.wfile.write(resp.body)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, not the accept loop
        self.owner._connected()
        request.settimeout(RUN_TIMEOUT)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.owner._tls_error(str(e))
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class TokenServer:
    """
    GET {prefix}{token_path} answers 200 with a fresh token when the
    credential is accepted, else 401; anything else is 404.  Scripted
    responses (push) come first.
    """

    def __init__(self, certfile, keyfile):
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.load_cert_chain(certfile, keyfile)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.httpd = _TLSServer(('127.0.0.1', 0), _Handler)
        self.httpd.ssl_ctx = self.ssl_ctx
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = 'https://127.0.0.1:%d' % self.port
        self._thread = None
        self.reset()

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={'poll_interval': 0.1},
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(10)

    def reset(self):
        """Forget requests, accepted credentials and scripted responses."""
        self._wake.set()
        with self._lock:
            self._generation = getattr(self, '_generation', 0) + 1
            self.requests = []
            self.tls_errors = []
            self.connections = 0        # TCP connections accepted
            self.accepted = set()
            self.issued = []            # every access_token handed out
            self._queue = collections.deque()
            self._sticky = None
            self.prefix = ''
            self.token_path = '/v1/token'
            self.lifetime = 3600
        self._wake = threading.Event()

    # -- test API ----------------------------------------------------------
    def accept_key(self, key):
        self.accepted.add(('api-key', key))

    def accept_basic(self, username, password):
        self.accepted.add(('basic', username, password))

    def accept_bearer(self, token):
        self.accepted.add(('bearer', token))

    def push(self, response, times=1):
        """
        Queue a Response (or a callable req -> Response) for the next
        `times` requests; times=None: for every request from now on.
        """
        with self._lock:
            if times is None:
                self._sticky = response
            else:
                for _ in range(times):
                    self._queue.append(response)

    @property
    def count(self):
        with self._lock:
            return len(self.requests)

    @property
    def last(self):
        with self._lock:
            return self.requests[-1] if self.requests else None

    def new_token(self):
        tok = 'gt-test-' + _secrets.token_hex(20)
        with self._lock:
            self.issued.append(tok)
        return tok

    def register_token(self, tok):
        with self._lock:
            self.issued.append(tok)
        return tok

    def token_reply(self, lifetime=None, expires_at=None, date_skew=0,
                    token=None, omit_expires=False, date=True, extra=None):
        """
        A callable building a 200 token response at request time.
          lifetime: seconds from the server's now (default self.lifetime)
          expires_at: a string, or a callable(server_now) -> string
          date_skew: the server clock (Date header and default expires_at)
                     is this many seconds off the real one
          token: a string, or a callable() -> string (registered as issued)
          omit_expires: leave expires_at out
          date: send a Date header
        """
        def build(req):
            server_now = int(time.time()) + date_skew
            if token is None:
                tok = self.new_token()
            else:
                tok = self.register_token(token() if callable(token) else token)
            body = {'access_token': tok, 'token_type': 'bearer'}
            if not omit_expires:
                if expires_at is None:
                    life = self.lifetime if lifetime is None else lifetime
                    body['expires_at'] = rfc3339(server_now + life)
                elif callable(expires_at):
                    body['expires_at'] = expires_at(server_now)
                else:
                    body['expires_at'] = expires_at
            if extra:
                body.update(extra)
            req.token = tok
            req.server_now = server_now     # the "now" expires_at counts from
            headers = {}
            if date:
                headers['Date'] = http_date(server_now)
            return Response(200, body, headers=headers, date=False)
        return build

    # -- handler side ------------------------------------------------------
    def _record(self, req, generation):
        # a request still in flight from before reset() is not this test's
        with self._lock:
            if generation == self._generation:
                self.requests.append(req)

    def _connected(self):
        with self._lock:
            self.connections += 1

    def _tls_error(self, msg):
        with self._lock:
            self.tls_errors.append(msg)

    def _next_response(self, req):
        with self._lock:
            scripted = self._queue.popleft() if self._queue else self._sticky
        if scripted is not None:
            return scripted(req) if callable(scripted) else scripted
        if req.method != 'GET' or req.path != self.prefix + self.token_path:
            return Response(404, {'detail': 'Not Found'})
        if req.credential in self.accepted:
            return self.token_reply()(req)
        return Response(401, {'detail': 'Invalid credentials'})


class Listener:
    """
    A TCP port on 127.0.0.1 (or addr) that accepts connections and never
    answers them: no TLS handshake, no HTTP (an endpoint that hangs, or an
    origin that must receive nothing).  reset=True: each connection is
    reset at once instead (RST, as a crashing server does).  count:
    connections accepted; url: scheme://addr:port.
    """

    def __init__(self, reset=False, addr='127.0.0.1', scheme='https'):
        self.reset_conns = reset
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = '%s://%s:%d' % (scheme, addr, self.port)
        self._lock = threading.Lock()
        self._count = 0
        self._conns = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._count += 1
            if self.reset_conns:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack('ii', 1, 0))
                conn.close()
            else:
                self._conns.append(conn)

    @property
    def count(self):
        with self._lock:
            return self._count

    def settled_count(self, expect=0, quiet=0.3, timeout=10):
        """
        count, once it has reached `expect` (or `timeout` ran out) and then
        stayed put for `quiet` seconds: the accept loop may lag behind the
        program that connected.
        """
        return settled(lambda: self.count, expect, quiet, timeout)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
        self._conns = []


def settled(get, expect=0, quiet=0.3, timeout=10):
    """
    get(), once it has reached `expect` (or `timeout` ran out) and then not
    changed for `quiet` seconds: for counters that server threads update a
    little after the client is done.
    """
    deadline = time.time() + timeout
    while get() < expect and time.time() < deadline:
        time.sleep(0.05)
    last, since = get(), time.time()
    while time.time() - since < quiet and time.time() < deadline:
        time.sleep(0.05)
        n = get()
        if n != last:
            last, since = n, time.time()
    return last


def free_port():
    """A port on 127.0.0.1 that nothing listens on (as far as one can tell)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# keyring items

class Item:
    """A Secret Service item as secret-tool shows it; repr() hides the secret."""

    def __init__(self, path):
        self.path = path
        self.label = None
        self.secret = None
        self.schema = None
        self.attributes = {}    # the contract's attributes (galileo-credential(1) KEYSTORES)
        self.generation = None  # the store's ordering attribute, kept apart

    def __repr__(self):
        return '<Item %s schema=%s label=%r attributes=%r secret=***>' % (
            self.path, self.schema, self.label, self.attributes)


def parse_secret_tool(text):
    items = []
    cur = None
    for line in text.split('\n'):
        if line.startswith('[') and line.endswith(']'):
            cur = Item(line[1:-1])
            items.append(cur)
            continue
        if cur is None or not line:
            continue
        key, sep, val = line.partition(' = ')
        if not sep:
            key, sep, val = line.partition(' =')
        if not sep:
            continue
        if key == 'label':
            cur.label = val
        elif key == 'secret':
            cur.secret = val
        elif key == 'schema':
            cur.schema = val
        elif key == 'attribute.generation':
            cur.generation = val
        elif key.startswith('attribute.'):
            cur.attributes[key[len('attribute.'):]] = val
    return items


# --------------------------------------------------------------------------
# results and history

RunResult = collections.namedtuple('RunResult', 'returncode stdout stderr')


class _Run:
    def __init__(self, what, action, stdout, stderr, token_ok):
        self.what = what
        self.action = action
        self.stdout = stdout
        self.stderr = stderr
        self.token_ok = token_ok


def assert_not_in_any(testcase, needles, outputs, what='secret'):
    """
    Fail if any of needles occurs in any of outputs (a dict name -> text or
    a list of texts).  The message never contains the needle.
    """
    if isinstance(outputs, dict):
        named = list(outputs.items())
    else:
        named = [('output #%d' % i, o) for i, o in enumerate(outputs)]
    for n, needle in enumerate(needles):
        if not needle:
            continue
        for name, text in named:
            if text is None:
                continue
            if isinstance(text, bytes):
                hit = needle.encode() in text
            else:
                hit = needle in text
            if hit:
                testcase.fail('%s #%d (%s) appears in %s' % (
                    what, n, redact(needle), name))


# --------------------------------------------------------------------------
# kernel keys (the keyctl token-cache tier)

KERNEL_KEY_PREFIX = 'galileo-credential:'
_EXPIRY_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}


class KernelKey:
    """One line of /proc/keys; never holds the payload."""

    def __init__(self, serial, flags, expiry, perm, uid, gid, type_, description,
                 datalen):
        self.serial = serial            # int
        self.flags = flags              # e.g. 'I--Q---'
        self.expiry = expiry            # 'perm', 'expd', '59m', '3s', ...
        self.perm = perm                # int, e.g. 0x3f010000
        self.uid = uid
        self.gid = gid
        self.type = type_
        self.description = description
        self.datalen = datalen          # int or None
        self.seen_at = time.time()      # when /proc/keys was read (expiry is relative)

    @property
    def alive(self):
        """usable: instantiated, not expired, revoked, dead or invalidated"""
        return (self.expiry != 'expd' and self.flags[:1] == 'I' and
                not any(f in self.flags for f in 'RDi'))

    def expiry_range(self):
        """
        Seconds left as /proc/keys shows them, as (low, high) bounds; None
        for no timeout.  The kernel rounds down to the unit it prints: '59m'
        means 3540 <= left < 3600.
        """
        return expiry_range(self.expiry)

    def __repr__(self):
        return '<KernelKey %d %s %s perm=%08x uid=%d expiry=%s %r>' % (
            self.serial, self.type, self.flags, self.perm, self.uid, self.expiry,
            self.description)


def expiry_range(text):
    if text == 'perm':
        return None
    if text == 'expd':
        return (0, 0)
    m = re.fullmatch(r'(\d+)([smhdw])', text)
    if not m:
        raise ValueError('unknown /proc/keys expiry %r' % text)
    n, unit = int(m.group(1)), _EXPIRY_UNITS[m.group(2)]
    return (n * unit, (n + 1) * unit)


def proc_keys():
    """Every key this process may view, from /proc/keys (KernelKey list)."""
    with open('/proc/keys') as f:
        lines = f.readlines()
    seen_at = time.time()
    keys = []
    for line in lines:
        parts = line.rstrip('\n').split(None, 8)
        if len(parts) < 9:
            continue
        serial, flags, _usage, expiry, perm, uid, gid, type_, rest = parts
        desc, datalen = rest, None
        head, sep, tail = rest.rpartition(': ')
        if sep and tail.isdigit():
            desc, datalen = head, int(tail)
        k = KernelKey(int(serial, 16), flags, expiry, int(perm, 16),
                      int(uid), int(gid), type_, desc, datalen)
        k.seen_at = seen_at
        keys.append(k)
    return keys


def keyctl(args, timeout=RUN_TIMEOUT):
    """Run the keyctl program; RunResult with stdout as bytes (may be a secret)."""
    r = subprocess.run(['keyctl'] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout,
                       env=dict(os.environ, LC_ALL='C'))
    return RunResult(r.returncode, r.stdout, r.stderr.decode('utf-8', 'replace'))


def unlink_and_invalidate(serial, keyring='@u'):
    """
    Remove a key from keyring, then from every other one.  In that order:
    the kernel gives back the 4 bytes of quota a link costs when a key is
    unlinked, but not when an invalidated key's link is collected (Linux
    6.x), so invalidating first would eat 4 bytes of this UID's 20000 for
    good (until the keyring goes) on every call.  Expired keys cannot be
    invalidated, only unlinked.
    """
    keyctl(['unlink', serial, keyring])
    keyctl(['invalidate', serial])


KEYS_LOCK_WAIT = 900    # seconds to wait for the key quota lock


def keys_lock_path():
    """
    The lock on this UID's kernel key quota (shared by every process of the
    UID, as the quota is).  tests/test_tier_keyctl.c takes it too.
    """
    return '/tmp/gc-it-keys-%d.lock' % os.getuid()


_keys_lock = {'fd': None, 'exclusive': False}
_persistent_lock = {'fd': None, 'exclusive': False}


def _hold_lock(st, path, exclusive):
    """flock path (shared or exclusive) until this process exits"""
    if st['fd'] is not None and (st['exclusive'] or not exclusive):
        return
    if st['fd'] is None:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_uid != os.getuid():
            os.close(fd)
            raise RuntimeError('%s belongs to another user' % path)
        st['fd'] = fd
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.time() + KEYS_LOCK_WAIT
    while True:
        try:
            fcntl.flock(st['fd'], mode | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                raise RuntimeError('%s still locked after %d s' % (path, KEYS_LOCK_WAIT))
            time.sleep(0.05)
    st['exclusive'] = exclusive


def keys_lock(exclusive=False):
    """
    Hold the key quota lock until this process exits: shared by every test
    module (Env.start(), kernel_keys_usable()), exclusive for one that
    fills the quota (test_quota).  Taking it shared once it is held does
    nothing; exclusive upgrades.  Waits at most KEYS_LOCK_WAIT seconds.
    """
    _hold_lock(_keys_lock, keys_lock_path(), exclusive)


def persistent_keyring_lock():
    """
    Hold this UID's persistent keyring alone until this process exits.  It
    is one per UID, like the quota, and `status` lists every credential in
    it: a test module that stores credentials there (test_persistent_keyring,
    test_stack, test_faults_keyring) would see another's, run at once by
    `make -j`.  So those modules take turns.
    """
    _hold_lock(_persistent_lock, '/tmp/gc-it-persistent-%d.lock' % os.getuid(), True)


def kernel_keys_usable():
    """
    None when the kernel keyring can be inspected and used here (keyctl
    program, /proc/keys, a key can be added to @u), else why not.
    """
    keys_lock()
    if not shutil.which('keyctl'):
        return 'the keyctl program is missing (apt-get install keyutils)'
    if not os.path.exists('/proc/keys'):
        return '/proc/keys is missing (kernel without CONFIG_KEYS or CONFIG_PROC_KEYS)'
    desc = 'harness-probe:%d:%s' % (os.getpid(), _secrets.token_hex(4))
    r = keyctl(['add', 'user', desc, 'probe', '@u'])
    if r.returncode != 0:
        return 'cannot add a key to @u: %s' % r.stderr.strip()
    keyctl(['unlink', r.stdout.decode().strip(), '@u'])
    return None


# --------------------------------------------------------------------------
# signals

# what a shell may leave ignored or blocked for a job it starts in the
# background (`cmd &` ignores SIGINT and SIGQUIT, nohup SIGHUP)
DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM,
                   signal.SIGPIPE)


def default_signals():
    """
    preexec_fn for every program a test starts: the default disposition of
    DEFAULT_SIGNALS and nothing blocked, however the test runner itself was
    started (`nohup`, `&` from a script), so that a test sees what a user's
    shell gives the program.
    """
    for sig in DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def signals_preexec():
    """
    default_signals when this runner would pass on anything but the
    defaults (a signal ignored or blocked), else None: exec gives a child
    the default for every signal this Python handles, and subprocess puts
    SIGPIPE back, so the usual run needs no preexec_fn (and its fork).
    """
    if signal.pthread_sigmask(signal.SIG_BLOCK, []) or any(
            signal.getsignal(sig) == signal.SIG_IGN
            for sig in DEFAULT_SIGNALS if sig != signal.SIGPIPE):
        return default_signals
    return None


# --------------------------------------------------------------------------
# the private world

class Spawned:
    """A program started by Env.spawn()."""

    def __init__(self, env, proc, label, action, token_ok):
        self.env = env
        self.proc = proc
        self.pid = proc.pid
        self.label = label
        self.action = action
        self.token_ok = token_ok
        self.result = None

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def finish(self, timeout=RUN_TIMEOUT):
        """Wait for it; RunResult as text, recorded in the history (once)."""
        if self.result is not None:
            return self.result
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            self._record(out, err)
            raise
        self._record(out, err)
        self.result = RunResult(self.proc.returncode, out.decode('utf-8', 'replace'),
                                err.decode('utf-8', 'replace'))
        return self.result

    def _record(self, out, err):
        self.env.history.append(_Run(self.label, self.action,
                                     out.decode('utf-8', 'replace'),
                                     err.decode('utf-8', 'replace'),
                                     token_ok=self.token_ok))


def xvfb_display(r, timeout, logdir):
    """
    The display that `Xvfb -displayfd W` writes on the pipe's read end r
    (closed here), as ':N'.  RuntimeError when none comes within timeout
    seconds or Xvfb exits first.
    """
    buf = b''
    deadline = time.monotonic() + timeout
    try:
        while not buf.endswith(b'\n'):
            ready, _, _ = select.select([r], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise RuntimeError('Xvfb did not report its display (see %s)' % logdir)
            chunk = os.read(r, 64)
            if not chunk:
                raise RuntimeError('Xvfb exited (see %s)' % logdir)
            buf += chunk
    finally:
        os.close(r)
    return ':' + buf.decode().strip()


def private_dir(root, rel):
    """root/rel (and what leads to it) made, mode 0700 whatever the umask; its path"""
    p = os.path.join(root, rel)
    os.makedirs(p, mode=0o700, exist_ok=True)
    os.chmod(p, 0o700)
    return p


def stop_process_group(p):
    """SIGTERM the process group of Popen p (started with a new session), then SIGKILL."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except OSError:
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait(5)


def run_secret_tool(args, env, input=None, timeout=RUN_TIMEOUT):
    """
    secret-tool ARGS with environment env (its bus); RunResult as text
    (stdout may be a secret).  A search's stderr goes to stdout: secret-tool
    prints attributes there, and the order keeps them with their item.
    """
    r = subprocess.run(['secret-tool'] + list(args),
                       input=input.encode() if input is not None else None,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                       if args[:1] == ['search'] else subprocess.PIPE,
                       env=env, timeout=timeout)
    return RunResult(r.returncode, r.stdout.decode('utf-8', 'replace'),
                     (r.stderr or b'').decode('utf-8', 'replace'))


PRIVATE_BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
%(servicedir)s  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
'''


def start_private_bus(conf, socket_path, log, env=None, servicedir=None):
    """
    A dbus-daemon in a session of its own, from a configuration written to
    `conf`: a session bus on the unix socket `socket_path` whose only
    service directory is `servicedir` (none when None: no
    <standard_session_servicedirs/>, so nothing the system offers, such as
    gnome-keyring, is activated on it).  stderr goes to the open file
    `log`.  Returns (Popen, bus address); RuntimeError, the daemon
    stopped, when it prints no address within 15 s.
    """
    with open(conf, 'w') as f:
        f.write(PRIVATE_BUS_CONFIG % {
            'socket': socket_path,
            'servicedir': '  <servicedir>%s</servicedir>\n' % servicedir if servicedir else ''})
    p = subprocess.Popen(
        ['dbus-daemon', '--config-file=' + conf, '--nofork', '--print-address=1'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        env=env, start_new_session=True)
    ready, _, _ = select.select([p.stdout], [], [], 15)
    addr = p.stdout.readline().decode().strip() if ready else ''
    p.stdout.close()
    if not addr:
        stop_process_group(p)
        raise RuntimeError('private dbus-daemon did not start (see %s)' % log.name)
    return p, addr


class Env:
    def __init__(self):
        self.root = None
        self._procs = []
        self.server = None
        self.history = []
        self.keys = []          # secrets made by new_key(): never in any output
        self.gitconfig = None

    # -- setup / teardown --------------------------------------------------
    def start(self):
        prog = program_path()
        if not os.access(prog, os.X_OK):
            raise RuntimeError('%s not found or not executable; set GC_BUILDDIR' % prog)
        self.program = prog
        keys_lock()
        self.root = tempfile.mkdtemp(prefix='gc-it-')
        os.chmod(self.root, 0o700)
        self.home = self._mkdir('home')
        self.xdg_config = self._mkdir('home/.config')
        self.xdg_data = self._mkdir('home/.local/share')
        self.xdg_cache = self._mkdir('home/.cache')
        self.runtime = self._mkdir('runtime')
        self.bindir = self._mkdir('bin')
        self.tlsdir = self._mkdir('tls')
        self.dbusdir = self._mkdir('dbus')
        self.logdir = self._mkdir('log')
        self.config_path = os.path.join(self.root, 'config')
        self.gitconfig = os.path.join(self.root, 'gitconfig')
        atexit.register(self.close)
        self._start_dbus()
        self._start_keyring()
        self._make_tls()
        self.server = TokenServer(self.server_cert, self.server_key)
        self.server.start()
        self.server_url = self.server.url
        for name in (PROGRAM, 'git-credential-galileo', 'docker-credential-galileo'):
            os.symlink(prog, os.path.join(self.bindir, name))
        self.write_config()
        self.write_gitconfig()
        self._wait_endpoint()
        return self

    def _mkdir(self, rel):
        return private_dir(self.root, rel)

    def base_env(self):
        """Environment of every child: private dirs, nothing inherited that matters."""
        path = os.environ.get('PATH') or '/usr/local/bin:/usr/bin:/bin'
        env = {
            'PATH': self.bindir + os.pathsep + path,
            'HOME': self.home,
            'XDG_CONFIG_HOME': self.xdg_config,
            'XDG_DATA_HOME': self.xdg_data,
            'XDG_CACHE_HOME': self.xdg_cache,
            'XDG_RUNTIME_DIR': self.runtime,
            'LC_ALL': 'C.UTF-8',
            'TZ': 'UTC',
        }
        for k in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS',
                  'LD_LIBRARY_PATH', 'TMPDIR'):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def _start_dbus(self):
        sock = os.path.join(self.dbusdir, 'bus')
        log = open(os.path.join(self.logdir, 'dbus.log'), 'wb')
        p = subprocess.Popen(
            ['dbus-daemon', '--session', '--nofork',
             '--address=unix:path=' + sock, '--print-address=1'],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            env=self.base_env(), start_new_session=True)
        log.close()
        self._procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 15)
        if not ready:
            raise RuntimeError('dbus-daemon did not print its address')
        addr = p.stdout.readline().decode().strip()
        if not addr:
            raise RuntimeError('dbus-daemon failed (see %s)' % self.logdir)
        p.stdout.close()
        self.dbus_address = addr

    def _start_keyring(self):
        log = open(os.path.join(self.logdir, 'gnome-keyring.log'), 'wb')
        env = self.base_env()
        env['DBUS_SESSION_BUS_ADDRESS'] = self.dbus_address
        p = subprocess.Popen(
            ['gnome-keyring-daemon', '--foreground', '--unlock',
             '--components=secrets'],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
            start_new_session=True)
        log.close()
        self._procs.append(p)
        p.stdin.write(KEYRING_PASSWORD.encode())
        p.stdin.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError('gnome-keyring-daemon exited (see %s)' % self.logdir)
            r = subprocess.run(
                ['dbus-send', '--session', '--print-reply',
                 '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
                 'org.freedesktop.DBus.NameHasOwner',
                 'string:org.freedesktop.secrets'],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                timeout=10)
            if b'boolean true' in r.stdout:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError('gnome-keyring-daemon did not take the bus name')
        # the default collection must exist and be unlocked: store and clear
        # a probe item
        r = self.secret_tool(['store', '--label=harness probe',
                              'xdg:schema', 'harness.Probe', 'probe', '1'],
                             input='probe')
        if r.returncode != 0:
            raise RuntimeError('secret-tool store failed: %s' % r.stderr)
        self.secret_tool(['clear', 'xdg:schema', 'harness.Probe'])

    def _openssl(self, args):
        r = subprocess.run(['openssl'] + args, cwd=self.tlsdir,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            raise RuntimeError('openssl %s failed: %s' % (args[0], r.stderr.decode()))

    def _make_tls(self):
        d = self.tlsdir
        self.ca_file = os.path.join(d, 'ca.pem')
        self.server_cert = os.path.join(d, 'server.pem')
        self.server_key = os.path.join(d, 'server.key')
        ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        self._openssl(['req', '-x509'] + ec + [
            '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
            '-subj', '/CN=galileo-credential test CA',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
        self._openssl(['req'] + ec + [
            '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
        with open(os.path.join(d, 'ext.cnf'), 'w') as f:
            f.write('basicConstraints=CA:FALSE\n'
                    'keyUsage=critical,digitalSignature,keyEncipherment\n'
                    'extendedKeyUsage=serverAuth\n'
                    'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
        self._openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem',
                       '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem',
                       '-days', '2', '-extfile', 'ext.cnf'])

    def issue_cert(self, name, san, other_ca=False):
        """
        A server certificate and key (paths) for subjectAltName `san`
        (e.g. 'DNS:wrong.example'), issued by the test CA the config trusts,
        or by another CA that nothing trusts (other_ca=True).
        """
        d = self.tlsdir
        ca = 'ca'
        ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        if other_ca:
            ca = 'other-ca'
            if not os.path.exists(os.path.join(d, 'other-ca.pem')):
                self._openssl(['req', '-x509'] + ec + [
                    '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2',
                    '-subj', '/CN=galileo-credential untrusted test CA',
                    '-addext', 'basicConstraints=critical,CA:TRUE',
                    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
        self._openssl(['req'] + ec + [
            '-keyout', name + '.key', '-out', name + '.csr', '-subj', '/CN=' + name])
        with open(os.path.join(d, name + '.cnf'), 'w') as f:
            f.write('basicConstraints=CA:FALSE\n'
                    'keyUsage=critical,digitalSignature,keyEncipherment\n'
                    'extendedKeyUsage=serverAuth\n'
                    'subjectAltName=%s\n' % san)
        self._openssl(['x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
                       '-CAkey', ca + '.key', '-CAcreateserial', '-out', name + '.pem',
                       '-days', '2', '-extfile', name + '.cnf'])
        return os.path.join(d, name + '.pem'), os.path.join(d, name + '.key')

    def _wait_endpoint(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(('127.0.0.1', self.server.port), 5) as s:
                    with ctx.wrap_socket(s, server_hostname='127.0.0.1'):
                        return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def close(self):
        if self.root is None:
            return
        try:
            self.kernel_keys_clear()
        except Exception:
            pass
        if self.server:
            try:
                self.server.stop()
            except Exception:
                pass
        for p in reversed(self._procs):
            stop_process_group(p)
        self._procs = []
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    # -- per-test reset ----------------------------------------------------
    def reset(self):
        """Empty the keyring of our items, reset the endpoint and the config."""
        self.wait_refreshes()
        self.refresh_mode = None
        self.keyring_clear()
        self.kernel_keys_clear()
        self.server.reset()
        self.write_config()
        self.write_gitconfig()
        self.history = []

    # -- config --------------------------------------------------------------
    def write_config(self, extra='', server=True, ca_file=True,
                     token_cache='keystore', path=None):
        """
        Write the program's config file.  server=True: the endpoint; a string:
        that; None: no server line.  token_cache pins where tokens go, so tests
        can see them in the keyring (None: leave the default).
        """
        lines = []
        if server is True:
            lines.append('server = %s' % self.server_url)
        elif server:
            lines.append('server = %s' % server)
        if ca_file is True:
            lines.append('ca-file = %s' % self.ca_file)
        elif ca_file:
            lines.append('ca-file = %s' % ca_file)
        if token_cache:
            lines.append('token-cache = %s' % token_cache)
        if getattr(self, 'refresh_mode', None):
            # a test class's choice between refresh = background and inline
            lines.append('refresh = %s' % self.refresh_mode)
        text = '\n'.join(lines) + '\n' + extra
        with open(path or self.config_path, 'w') as f:
            f.write(text)
        return path or self.config_path

    def wait_refreshes(self, timeout=15):
        """
        Wait for the background refreshes a test left behind (each holds
        its exchange lock while it runs), so that none reaches the next test.
        """
        import fcntl
        d = os.path.join(self.runtime, 'galileo-credential')
        if not os.path.isdir(d):
            return
        deadline = time.time() + timeout
        for name in os.listdir(d):
            if not name.startswith('lock-'):
                continue
            try:
                fd = os.open(os.path.join(d, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.time() > deadline:
                            break
                        time.sleep(0.05)
            finally:
                os.close(fd)

    def write_config_raw(self, text):
        with open(self.config_path, 'w') as f:
            f.write(text)
        return self.config_path

    # -- secrets -------------------------------------------------------------
    def new_key(self, prefix='gk-test-'):
        k = prefix + _secrets.token_hex(16)
        self.keys.append(k)
        return k

    def all_secrets(self):
        return list(self.keys) + list(self.server.issued)

    # -- running things --------------------------------------------------------
    def child_env(self, env_extra=None):
        env = self.base_env()
        env['DBUS_SESSION_BUS_ADDRESS'] = self.dbus_address
        env['GALILEO_CREDENTIAL_CONFIG'] = self.config_path
        env['GALILEO_CREDENTIAL_MODULE_DIR'] = module_dir()
        env['GIT_CONFIG_NOSYSTEM'] = '1'
        env['GIT_CONFIG_GLOBAL'] = self.gitconfig
        env['GIT_TERMINAL_PROMPT'] = '0'
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _program_argv(self, args, argv0, wrapper):
        exe = self.program if argv0 is None else os.path.join(self.bindir, argv0)
        action = next((a for a in args if not a.startswith('-')), None)
        label = '%s %s' % (argv0 or PROGRAM, ' '.join(args[:1]))
        if wrapper:
            label = '%s %s' % (os.path.basename(wrapper[0]), label)
        return list(wrapper or []) + [exe] + list(args), label, action

    def run(self, args, input=None, env_extra=None, argv0=None,
            timeout=RUN_TIMEOUT, wrapper=None):
        """
        Run the program (as argv0, one of the harness links, when given).
        wrapper: a list of arguments to run it under, e.g.
        [keyctl_refused_path()].
        Returns RunResult(returncode, stdout, stderr) as text.
        """
        argv, label, action = self._program_argv(args, argv0, wrapper)
        return self._exec(argv, input, env_extra, timeout, label,
                          action, action in ('get', 'token'))

    def spawn(self, args, input=None, env_extra=None, argv0=None, wrapper=None):
        """
        Start the program as run() would, without waiting for it: returns a
        Spawned, whose finish() waits and records the output as run() does.
        """
        argv, label, action = self._program_argv(args, argv0, wrapper)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None
                             else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.child_env(env_extra), cwd=self.home,
                             preexec_fn=signals_preexec(),
                             start_new_session=True)    # no terminal, as in _exec
        if input is not None:
            # small inputs fit the pipe: the child reads them when it likes
            p.stdin.write(input.encode() if isinstance(input, str) else input)
            p.stdin.close()
            p.stdin = None      # so communicate() does not flush it again
        return Spawned(self, p, label, action, action in ('get', 'token'))

    def _exec(self, argv, input, env_extra, timeout, label, action, token_ok):
        """Run argv in the private environment and record its output."""
        if isinstance(input, str):
            input = input.encode()
        # a session of its own, without a controlling terminal: run from a
        # person's terminal, a get or token with nothing stored would ask
        # there (galileo-credential(1) FIRST USE)
        r = subprocess.run(argv, input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           env=self.child_env(env_extra), cwd=self.home,
                           timeout=timeout, preexec_fn=signals_preexec(),
                           start_new_session=True)
        out = r.stdout.decode('utf-8', 'replace')
        err = r.stderr.decode('utf-8', 'replace')
        self.history.append(_Run(label, action, out, err, token_ok=token_ok))
        return RunResult(r.returncode, out, err)

    def run_tty(self, args, typed, env_extra=None, timeout=RUN_TIMEOUT):
        """
        Run the program with a new pseudo-terminal as its controlling
        terminal and stdin; when it has written something to the terminal
        (the prompt), type `typed` and a newline.  Returns
        (returncode, stdout, stderr, what the terminal showed).
        """
        import fcntl
        import termios
        master, slave = os.openpty()

        def preexec():
            default_signals()
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        p = subprocess.Popen([self.program] + list(args), stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.child_env(env_extra), cwd=self.home,
                             preexec_fn=preexec)
        os.close(slave)
        shown = b''
        sent = False
        deadline = time.time() + timeout
        prompt_deadline = time.time() + 10
        try:
            while time.time() < deadline:
                if not sent and (shown or time.time() > prompt_deadline):
                    time.sleep(0.2)     # let it turn echo off after the prompt
                    os.write(master, typed.encode() + b'\n')
                    sent = True
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        chunk = b''
                    if not chunk:
                        break
                    shown += chunk
                elif p.poll() is not None:
                    break
            out, err = p.communicate(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        finally:
            os.close(master)
        out = out.decode('utf-8', 'replace')
        err = err.decode('utf-8', 'replace')
        tty = shown.decode('utf-8', 'replace')
        self.history.append(_Run('%s %s (tty)' % (PROGRAM, ' '.join(args[:1])),
                                 args[0] if args else None, out, err + tty,
                                 token_ok=False))
        return p.returncode, out, err, tty

    def write_gitconfig(self, helper=None, extra=''):
        """helper defaults to the absolute path of git-credential-galileo."""
        if helper is None:
            helper = os.path.join(self.bindir, 'git-credential-galileo')
        with open(self.gitconfig, 'w') as f:
            f.write('[credential]\n\thelper = %s\n%s' % (helper, extra))

    def git(self, args, input=None, env_extra=None, timeout=RUN_TIMEOUT):
        return self._exec(['git'] + list(args), input, env_extra, timeout,
                          'git ' + ' '.join(args[:2]), 'git', True)

    def apply_to_os_environ(self, env_extra=None):
        """
        Make this process's environment the children's one (dockerpycreds
        runs the helper with os.environ and finds it on os.environ's PATH).
        """
        new = self.child_env(env_extra)
        os.environ.clear()
        os.environ.update(new)

    # -- keyring ---------------------------------------------------------------
    def secret_tool(self, args, input=None):
        env = self.base_env()
        env['DBUS_SESSION_BUS_ADDRESS'] = self.dbus_address
        return run_secret_tool(args, env, input)

    def keyring_items(self, schema=None, **attrs):
        """Items of our schemas (or one), optionally filtered by attributes."""
        schemas = [schema] if schema else [KEY_SCHEMA, TOKEN_SCHEMA]
        items = []
        for s in schemas:
            # stderr goes to the same pipe: secret-tool prints attributes
            # there, and the order keeps them with their item
            r = self.secret_tool(['search', '--all', 'xdg:schema', s])
            items += parse_secret_tool(r.stdout)
        return [i for i in items
                if all(i.attributes.get(k) == v for k, v in attrs.items())]

    def key_items(self, **attrs):
        return self.keyring_items(KEY_SCHEMA, **attrs)

    def token_items(self, **attrs):
        return self.keyring_items(TOKEN_SCHEMA, **attrs)

    def keyring_count(self, schema, **attrs):
        return len(self.keyring_items(schema, **attrs))

    def keyring_snapshot(self):
        """
        Our items as sorted tuples (path, schema, label, attributes, secret),
        to compare with a later one: holds secrets, never print it (see
        GCTestCase.assertKeyringUnchanged).
        """
        return sorted((i.path, i.schema, i.label, tuple(sorted(i.attributes.items())),
                       i.secret) for i in self.keyring_items())

    def keyring_lookup(self, schema, **attrs):
        """secret-tool lookup: the secret of the first match, or None."""
        args = ['lookup', 'xdg:schema', schema]
        for k, v in attrs.items():
            args += [k, v]
        r = self.secret_tool(args)
        return r.stdout if r.returncode == 0 else None

    def keyring_clear(self):
        for s in (KEY_SCHEMA, TOKEN_SCHEMA):
            self.secret_tool(['clear', 'xdg:schema', s])

    def keyring_store(self, schema, label, secret, **attrs):
        args = ['store', '--label=' + label, 'xdg:schema', schema]
        for k, v in attrs.items():
            args += [k, v]
        r = self.secret_tool(args, input=secret)
        if r.returncode != 0:
            raise RuntimeError('secret-tool store failed')

    # -- kernel keys (keyctl tier) ---------------------------------------------
    # Token and summary keys carry the context of the call that cached them
    # (galileo-credential:token:CTX:SERVER#ORG): descriptions below show it
    # as 'CTX' (KernelKey.context has it); a test module's calls share one.
    def token_key_desc(self, organization='', server=None):
        return 'galileo-credential:token:CTX:%s#%s' % (server or self.server_url,
                                                       organization)

    def credential_key_desc(self, server=None):
        return 'galileo-credential:credential:CTX:%s' % (server or self.server_url)

    def generation_key_desc(self, server=None):
        return 'galileo-credential:generation:%s' % (server or self.server_url)

    def _ours(self, description):
        """a galileo-credential key naming the endpoint's server or a prefix under it"""
        if not description.startswith(KERNEL_KEY_PREFIX):
            return False
        url = getattr(self, 'server_url', None)
        if not url:
            return False
        # the endpoint's URL, or one with a path prefix under it
        return re.search(re.escape(url) + r'(?=[/#]|$)', description) is not None

    def kernel_keys(self, include_dead=False, generation=False):
        """
        galileo-credential keys naming this endpoint's server (or a prefix
        under it), sorted by description: the usable ones linked in @u,
        their context shown as CTX.  include_dead: every one /proc/keys
        still shows, linked or not (a key replaced or unlinked stays there
        until the kernel's garbage collector runs; an expired one stays
        linked for gc_delay seconds).  generation: the write generation's
        key too.
        """
        if not os.path.exists('/proc/keys'):
            return []
        keys = [k for k in proc_keys() if self._ours(k.description)]
        if not generation:
            keys = [k for k in keys if not k.description.startswith(
                'galileo-credential:generation:')]
        if not include_dead:
            linked = self.user_keyring_serials()
            keys = [k for k in keys if k.alive and k.serial in linked]
        for k in keys:
            m = re.match(r'(galileo-credential:(?:token|credential):)([0-9a-f]{16}):',
                         k.description)
            k.context = m.group(2) if m else None
            k.raw_description = k.description
            if m:
                k.description = m.group(1) + 'CTX:' + k.description[m.end():]
        return sorted(keys, key=lambda k: (k.description, k.serial))

    def kernel_key(self, description):
        """The usable key with exactly this description, or None."""
        found = [k for k in self.kernel_keys() if k.description == description]
        if len(found) > 1:
            raise AssertionError('%d keys described %r' % (len(found), description))
        return found[0] if found else None

    def kernel_key_descriptions(self):
        return [k.description for k in self.kernel_keys()]

    def kernel_payload(self, key):
        """
        The payload of a KernelKey (or serial) as text, None when it cannot
        be read.  A secret: compare it, never print it.
        """
        serial = key.serial if isinstance(key, KernelKey) else int(key)
        r = keyctl(['pipe', serial])
        if r.returncode != 0:
            return None
        return r.stdout.decode('utf-8', 'replace')

    def user_keyring_serials(self):
        """serials linked in @u"""
        r = keyctl(['rlist', '@u'])
        if r.returncode != 0:
            return set()
        return {int(x) for x in r.stdout.split()}

    def kernel_keys_clear(self):
        """
        Remove every galileo-credential key naming this endpoint's server
        (or a path prefix under it) from @u, expired ones too.  A no-op
        without the keyctl program.
        """
        if not getattr(self, 'server_url', None) or not shutil.which('keyctl'):
            return
        serials = {k.serial for k in self.kernel_keys(include_dead=True, generation=True)}
        if not os.path.exists('/proc/keys'):
            # fall back to describing what @u links (usable keys only)
            for serial in self.user_keyring_serials():
                r = keyctl(['rdescribe', serial])
                desc = r.stdout.decode('utf-8', 'replace').rstrip('\n').split(';', 4)
                if r.returncode == 0 and len(desc) == 5 and self._ours(desc[4]):
                    serials.add(serial)
        for serial in sorted(serials):
            unlink_and_invalidate(serial)


# --------------------------------------------------------------------------
# per-module world and the base test case

ENV = None


def setUpModule():
    global ENV
    ENV = Env()
    try:
        ENV.start()
    except Exception:
        ENV.close()
        ENV = None
        raise


def tearDownModule():
    global ENV
    if ENV is not None:
        ENV.close()
        ENV = None


def _alarm(signum, frame):
    raise TimeoutError('test took longer than %d s' % TEST_ALARM)


def _term(signum, frame):
    # so atexit cleanup runs when the runner is killed
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _term)


class GCTestCase(unittest.TestCase):
    """Resets the world before each test; checks for leaked secrets after."""

    maxDiff = None

    def setUp(self):
        if ENV is None:
            self.skipTest('harness environment did not start')
        self.env = ENV
        self.server = ENV.server
        self.url = ENV.server_url
        self.env.reset()
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TEST_ALARM)

    def tearDown(self):
        signal.alarm(0)
        self.check_no_leaks()

    # -- checks ------------------------------------------------------------
    def check_no_leaks(self):
        """No key in any output; no token outside the stdout of get/token."""
        env = self.env
        keys = list(env.keys)
        tokens = list(env.server.issued)
        for i, run in enumerate(env.history):
            where = 'run #%d (%s)' % (i, run.what)
            assert_not_in_any(self, keys, {where + ' stdout': run.stdout,
                                           where + ' stderr': run.stderr}, 'key')
            outs = {where + ' stderr': run.stderr}
            if not run.token_ok:
                outs[where + ' stdout'] = run.stdout
            assert_not_in_any(self, tokens, outs, 'token')

    def assertOneErrorLine(self, stderr, *contains):
        lines = stderr.split('\n')
        self.assertTrue(stderr.endswith('\n') and len(lines) == 2,
                        'expected exactly one stderr line, got %r' % stderr)
        self.assertTrue(lines[0].startswith(PREFIX),
                        'stderr line does not start with %r: %r' % (PREFIX, stderr))
        for c in contains:
            self.assertIn(c, lines[0])

    def assertFails(self, res, code, *contains):
        """exit code, nothing on stdout, exactly one 'galileo-credential: ' line."""
        rc, out, err = res
        self.assertEqual(rc, code, 'exit code; stderr=%r' % err)
        self.assertEqual(out, '', 'stdout on failure')
        self.assertOneErrorLine(err, *contains)

    def assertOk(self, res):
        rc, out, err = res
        self.assertEqual(rc, 0, 'exit code; stderr=%r' % err)

    def assertSecretEqual(self, got, expected, what='secret'):
        """Compare secrets without printing them."""
        if got != expected:
            self.fail('%s differs (got %s, expected %s)' % (
                what, redact(got), redact(expected)))

    def assertKeyringUnchanged(self, before, what='keyring'):
        """The same items with the same secrets as keyring_snapshot() `before`."""
        after = self.env.keyring_snapshot()
        if after != before:
            def show(snap):
                return [(path, label, dict(attrs), redact(secret))
                        for path, _schema, label, attrs, secret in snap]
            self.fail('%s changed:\n before %r\n after  %r' % (what, show(before), show(after)))

    def assertNoneOf(self, needles, outputs):
        assert_not_in_any(self, needles, outputs)

    def assertNoEchoPrompt(self, master, slave, prompt=b'API key'):
        """
        The program on the pseudo-terminal (master, slave) shows `prompt`
        within 10 s, then turns echo off within 5 s.
        """
        import termios
        shown = b''
        deadline = time.time() + 10
        while prompt not in shown and time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                shown += os.read(master, 4096)
        self.assertIn(prompt, shown, 'no prompt')
        deadline = time.time() + 5
        while termios.tcgetattr(slave)[3] & termios.ECHO and time.time() < deadline:
            time.sleep(0.02)
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO, 'echo never went off')

    # -- common steps ------------------------------------------------------
    def login(self, key=None, args=(), accept=True, env_extra=None):
        """login with a key on stdin; returns the key (accepted by the endpoint)."""
        if key is None:
            key = self.env.new_key()
        if accept:
            self.server.accept_key(key)
        res = self.env.run(['login'] + list(args), input=key + '\n',
                           env_extra=env_extra)
        self.assertEqual(res.returncode, 0, 'login failed: %r' % res.stderr)
        return key

    def token(self, args=(), env_extra=None, expect_new=None):
        """
        Run `token`; assert success and return the printed token.
        expect_new: True/False asserts whether the endpoint was asked.
        """
        before = self.server.count
        rc, out, err = self.env.run(['token'] + list(args), env_extra=env_extra)
        self.assertEqual(rc, 0, 'token failed: %r' % err)
        self.assertTrue(out.endswith('\n') and out.count('\n') == 1,
                        'token output is not one line')
        tok = out[:-1]
        if expect_new is True:
            self.assertEqual(self.server.count, before + 1,
                             'expected one request to the endpoint')
            self.assertSecretEqual(tok, self.server.last.token, 'token printed')
        elif expect_new is False:
            self.assertEqual(self.server.count, before,
                             'expected the token from the cache, no request')
        return tok


def parse_git_output(text):
    """key=value lines -> dict (last wins) and the ordered list of keys."""
    d = {}
    keys = []
    for line in text.split('\n'):
        if not line:
            continue
        k, _, v = line.partition('=')
        d[k] = v
        keys.append(k)
    return d, keys


def git_lines(*lines):
    """A git-credential request: the lines, then a blank line."""
    return ''.join(l + '\n' for l in lines) + '\n'


def main():
    unittest.main(verbosity=2)

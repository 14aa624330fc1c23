#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The docker dialect as real container tools use it (galileo-credential(1) SERVER AND ORGANIZATION,
DOCKER DIALECT): Debian 12's skopeo and podman (containers/image), no daemon, each finding
docker-credential-galileo through `credHelpers` and sending what it answers to a registry as HTTP
Basic auth.

The registry is a harness TokenServer on its own port (certificate from the
harness CA) that answers both
  - GET /v1/token: the Galileo exchange (a stored key -> an access token), so
    https://127.0.0.1:PORT is the Galileo server the helper logs in to, and
  - just enough of the Docker Registry HTTP API v2 (/v2/, tags/list,
    manifests, blobs, _catalog) for `skopeo inspect`, `skopeo list-tags`,
    `podman pull` and `podman search`, behind HTTP Basic: 401 with
    `WWW-Authenticate: Basic realm=...` unless the request carries
    `Basic USER:TOKEN` with a token its /v1/token issued.
Every request and its headers are recorded.

Nothing outside the harness's private world is changed: the tools get
private containers.conf / storage.conf / registries.conf / policy.json
through CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF
(skopeo also --registries-conf) and --signature-policy; the registry's CA in
~/.config/containers/certs.d/127.0.0.1:PORT/ca.crt under the private HOME,
with --tls-verify=true; podman a private store (--root, --runroot, --tmpdir,
--storage-driver vfs, --events-backend none, --cgroup-manager cgroupfs);
HOME / XDG_RUNTIME_DIR are the harness's private dirs.  As root the tools
run in a private mount namespace with /etc, /var and /run read-only (see
_sandbox); as another user podman runs rootless (vfs needs no
fuse-overlayfs; newuidmap from `uidmap` when /etc/subuid has an entry) and
its leftover pause process is stopped at the end.
"""

import base64
import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, Response, USER_AGENT_PREFIX  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

SKOPEO = shutil.which('skopeo')
PODMAN = shutil.which('podman')
NO_SKOPEO = 'skopeo is not installed (apt-get install skopeo; scripts/deps installs it)'
NO_PODMAN = 'podman is not installed (apt-get install podman; scripts/deps installs it)'
TOOL_TIMEOUT = 60


def _sandbox():
    """
    As root, containers/image keeps its blob-info cache in
    /var/lib/containers/cache (podman pull writes it; no option or
    environment variable moves it in podman 4.3 / skopeo 1.9): run the
    tools in a private mount namespace where /etc, /var and /run are
    read-only, so they fall back to a memory cache and cannot change the
    system.  (argv prefix, None) or ([], why not).  Not root: nothing to
    do, the cache goes to $XDG_DATA_HOME.
    """
    if os.geteuid() != 0:
        return [], None
    unshare = shutil.which('unshare')
    if not unshare:
        return [], 'running as root and unshare(1) is missing (util-linux)'
    script = ('for d in /etc /var /run; do [ -d "$d" ] || continue; '
              'mount --rbind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 125; '
              'done; exec "$@"')
    prefix = [unshare, '--mount', '--propagation', 'private', '--', '/bin/sh', '-c',
              script, 'sandbox']
    r = subprocess.run(prefix + ['/bin/sh', '-c', 'touch /var/lib/.gc-probe'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if os.path.exists('/var/lib/.gc-probe'):
        os.unlink('/var/lib/.gc-probe')
        return [], 'running as root, and the read-only mount namespace did not hold'
    if r.returncode != 1 or b'Read-only file system' not in r.stdout:
        return [], ('running as root, and a private mount namespace (unshare --mount) '
                    'is not available to keep podman out of /var/lib/containers: %s'
                    % r.stdout.decode('utf-8', 'replace').strip()[-300:])
    return prefix, None


SANDBOX, SANDBOX_ERROR = _sandbox()
REPO = 'galileo/hello'
TAG = 'latest'
REALM = 'galileo-test-registry'
MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json'


def go_arch():
    m = platform.machine()
    return {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm',
            'i686': '386', 'ppc64le': 'ppc64le', 's390x': 's390x'}.get(m, m)


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def make_image():
    """
    A one-layer image, deterministic: (manifest bytes, {digest: blob}).
    """
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode='w', format=tarfile.USTAR_FORMAT) as t:
        data = b'hello from the galileo-credential test registry\n'
        info = tarfile.TarInfo('hello.txt')
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    layer_tar = tar.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode='wb', mtime=0) as g:
        g.write(layer_tar)
    layer = gz.getvalue()
    config = json.dumps({
        'architecture': go_arch(), 'os': 'linux',
        'config': {'Cmd': ['/hello.txt']},
        'rootfs': {'type': 'layers', 'diff_ids': [sha256(layer_tar)]},
        'history': [{'created_by': 'galileo-credential test'}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        'schemaVersion': 2, 'mediaType': MANIFEST_TYPE,
        'config': {'mediaType': 'application/vnd.docker.container.image.v1+json',
                   'size': len(config), 'digest': sha256(config)},
        'layers': [{'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
                    'size': len(layer), 'digest': sha256(layer)}],
    }, indent=3).encode()
    return manifest, {sha256(config): config, sha256(layer): layer}


def stop_pause_processes(env):
    """
    Rootless podman leaves a "podman pause" process holding its user
    namespace; it records its pid in a pause.pid under our private dirs.
    Stop the ones started in this world (their HOME is ours), by pid.
    """
    for top in (env.root,):
        for dirpath, _dirs, files in os.walk(top):
            if 'pause.pid' not in files:
                continue
            try:
                with open(os.path.join(dirpath, 'pause.pid')) as f:
                    pid = int(f.read().strip())
                with open('/proc/%d/environ' % pid, 'rb') as f:
                    environ = f.read().split(b'\0')
            except (OSError, ValueError):
                continue
            if ('HOME=%s' % env.home).encode() not in environ:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            for _ in range(50):
                if not os.path.exists('/proc/%d' % pid):
                    break
                time.sleep(0.05)


class Registry:
    """
    A TokenServer that is also a registry.  srv.accept_key(k) makes /v1/token
    accept k; the registry accepts `Basic user:token` only for a token the
    /v1/token endpoint issued and a user in `users`.
    """

    def __init__(self, env):
        self.env = env
        cert, key = env.issue_cert('registry', 'IP:127.0.0.1,DNS:localhost')
        self.srv = harness.TokenServer(cert, key)
        self.port = self.srv.port
        self.url = self.srv.url                 # https://127.0.0.1:PORT
        self.host = '127.0.0.1:%d' % self.port   # what credHelpers is keyed by
        self.manifest, self.blobs = make_image()
        self.manifest_digest = sha256(self.manifest)
        self.srv.start()
        self.reset()

    def stop(self):
        self.srv.stop()

    def reset(self):
        self.srv.reset()            # also drops the router: push it again
        self.users = {'token'}
        self.srv.push(self._route, times=None)

    # -- what it received ----------------------------------------------------
    @property
    def requests(self):
        with self.srv._lock:
            return list(self.srv.requests)

    def registry_requests(self):
        return [r for r in self.requests if r.path.startswith('/v2')]

    def exchanges(self):
        return [r for r in self.requests if r.path == '/v1/token']

    # -- answers ---------------------------------------------------------------
    def _token(self):
        # registered with the harness endpoint too, so GCTestCase's leak
        # check knows these tokens
        return self.env.server.new_token()

    def _route(self, req):
        if req.path == '/v1/token':
            if req.method == 'GET' and req.credential in self.srv.accepted:
                return self.srv.token_reply(token=self._token)(req)
            return Response(401, {'detail': 'Invalid credentials'})
        if not req.path.startswith('/v2'):
            return Response(404, {'detail': 'Not Found'})
        base = {'Docker-Distribution-API-Version': 'registry/2.0'}
        cred = req.credential
        with self.srv._lock:
            issued = set(self.srv.issued)
        if not (cred and cred[0] == 'basic' and cred[1] in self.users
                and cred[2] in issued):
            return Response(401, {'errors': [{'code': 'UNAUTHORIZED',
                                              'message': 'authentication required'}]},
                            headers=dict(base, **{
                                'WWW-Authenticate': 'Basic realm="%s"' % REALM}))
        if req.method not in ('GET', 'HEAD'):
            return Response(405, {'errors': [{'code': 'UNSUPPORTED', 'message': 'read-only'}]},
                            headers=base)
        path = req.path
        if path in ('/v2', '/v2/'):
            return Response(200, {}, headers=base)
        if path == '/v2/_catalog':
            return Response(200, {'repositories': [REPO]}, headers=base)
        m = re.fullmatch(r'/v2/(.+)/(tags/list|manifests/[^/]+|blobs/[^/]+)', path)
        if not m or m.group(1) != REPO:
            return Response(404, {'errors': [{'code': 'NAME_UNKNOWN',
                                              'message': 'repository name not known'}]},
                            headers=base)
        what = m.group(2)
        if what == 'tags/list':
            return Response(200, {'name': REPO, 'tags': [TAG]}, headers=base)
        ref = what.split('/', 1)[1]
        if what.startswith('manifests/'):
            if ref not in (TAG, self.manifest_digest):
                return Response(404, {'errors': [{'code': 'MANIFEST_UNKNOWN',
                                                  'message': 'manifest unknown'}]},
                                headers=base)
            return Response(200, self.manifest, headers=dict(base, **{
                'Content-Type': MANIFEST_TYPE,
                'Docker-Content-Digest': self.manifest_digest}))
        blob = self.blobs.get(ref)
        if blob is None:
            return Response(404, {'errors': [{'code': 'BLOB_UNKNOWN',
                                              'message': 'blob unknown'}]}, headers=base)
        return Response(200, blob, headers=dict(base, **{
            'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': ref}))


class ContainersBase(GCTestCase):

    @classmethod
    def setUpClass(cls):
        env = harness.ENV
        if env is None:
            raise unittest.SkipTest('harness environment did not start')
        cls.registry = Registry(env)
        # the tools' private configuration, under the harness's private root
        d = cls.ctrdir = os.path.join(env.root, 'containers')
        os.makedirs(d, exist_ok=True)
        # the registry's CA, where containers/image looks first for a
        # registry's certificates: ~/.config/containers/certs.d/HOST:PORT/
        # (podman search has no --cert-dir)
        cls.certdir = os.path.join(env.home, '.config', 'containers', 'certs.d',
                                   cls.registry.host)
        os.makedirs(cls.certdir, exist_ok=True)
        shutil.copyfile(env.ca_file, os.path.join(cls.certdir, 'ca.crt'))
        cls.policy = os.path.join(d, 'policy.json')
        with open(cls.policy, 'w') as f:
            json.dump({'default': [{'type': 'insecureAcceptAnything'}]}, f)
        cls.registries_conf = os.path.join(d, 'registries.conf')
        with open(cls.registries_conf, 'w') as f:
            f.write('unqualified-search-registries = []\n')
        cls.storage_root = os.path.join(d, 'storage')
        cls.storage_run = os.path.join(d, 'storage-run')
        cls.storage_tmp = os.path.join(d, 'tmp')
        os.makedirs(cls.storage_tmp, exist_ok=True)
        cls.storage_conf = os.path.join(d, 'storage.conf')
        with open(cls.storage_conf, 'w') as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                    % (cls.storage_run, cls.storage_root))
        cls.containers_conf = os.path.join(d, 'containers.conf')
        with open(cls.containers_conf, 'w') as f:
            f.write('[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n'
                    'tmp_dir = "%s"\n' % cls.storage_tmp)
        cls.auth_json = os.path.join(env.runtime, 'containers', 'auth.json')
        cls.docker_config = os.path.join(env.home, '.docker', 'config.json')
        cls.other_authfile = os.path.join(d, 'authfile.json')

    @classmethod
    def tearDownClass(cls):
        cls.registry.stop()
        stop_pause_processes(harness.ENV)
        shutil.rmtree(cls.ctrdir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.registry.reset()
        for p in (self.auth_json, self.docker_config, self.other_authfile):
            if os.path.exists(p):
                os.unlink(p)
        self.write_helper_config(self.auth_json)

    # -- configuration -------------------------------------------------------
    def write_helper_config(self, path, host=None):
        """{"credHelpers": {"127.0.0.1:PORT": "galileo"}} at path"""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, 'w') as f:
            json.dump({'auths': {},
                       'credHelpers': {host or self.registry.host: 'galileo'}}, f)
        os.chmod(path, 0o600)

    def tool_env(self, extra=None):
        env = {
            'CONTAINERS_CONF': self.containers_conf,
            'CONTAINERS_STORAGE_CONF': self.storage_conf,
            'CONTAINERS_REGISTRIES_CONF': self.registries_conf,
            'REGISTRY_AUTH_FILE': None,
            'DOCKER_CONFIG': None,
            'TMPDIR': self.storage_tmp,
        }
        env.update(extra or {})
        return env

    def login_registry(self, username=None):
        """Store a key for the registry's server (checked by its /v1/token)."""
        args = ['--server', self.registry.url]
        if username:
            args += ['--username', username]
        key = self.env.new_key()
        self.registry.srv.accept_key(key)
        return self.login(key, args=args, accept=False)

    # -- running the tools ---------------------------------------------------
    def tool(self, argv, env_extra=None, input=None):
        """
        Run a container tool in the private world; recorded in the harness
        history (so GCTestCase checks it leaked no key and no token), and
        checked here explicitly too.
        """
        res = self.env._exec(argv, input, self.tool_env(env_extra), TOOL_TIMEOUT,
                             ' '.join(os.path.basename(a) for a in argv[:2]),
                             None, False)
        self.assertNoneOf(self.env.keys, {'%s stdout' % argv[0]: res.stdout,
                                          '%s stderr' % argv[0]: res.stderr})
        self.assertNoneOf(list(self.env.server.issued),
                          {'%s stdout' % argv[0]: res.stdout,
                           '%s stderr' % argv[0]: res.stderr})
        return res

    def skopeo(self, *args, env_extra=None, authfile=None):
        argv = SANDBOX + [SKOPEO, '--registries-conf', self.registries_conf]
        argv += list(args[:1]) + ['--tls-verify=true']
        if authfile:
            argv += ['--authfile', authfile]
        return self.tool(argv + list(args[1:]), env_extra)

    def podman(self, *args, env_extra=None, tls=True):
        if SANDBOX_ERROR and args[:1] == ('pull',):
            self.skipTest(SANDBOX_ERROR)
        argv = SANDBOX + [PODMAN, '--root', self.storage_root, '--runroot', self.storage_run,
                '--tmpdir', self.storage_tmp, '--storage-driver', 'vfs',
                '--events-backend', 'none', '--cgroup-manager', 'cgroupfs',
                '--log-level', 'error'] + list(args[:1])
        if tls:
            argv += ['--tls-verify=true']
        return self.tool(argv + list(args[1:]), env_extra)

    def image(self):
        return 'docker://%s/%s:%s' % (self.registry.host, REPO, TAG)

    # -- checks ----------------------------------------------------------------
    def assertToolOk(self, res, what):
        self.assertEqual(res.returncode, 0, '%s failed: %s' % (what, res.stderr[-2000:]))

    def assertNoKeyToRegistry(self):
        """No registry request carried a stored key, in any header, raw or decoded."""
        keys = list(self.env.keys)
        for i, req in enumerate(self.registry.registry_requests()):
            where = 'registry request #%d %s %s' % (i, req.method, req.path)
            self.assertIsNone(req.header('galileo-api-key'), where)
            texts = {}
            for name, value in req.headers.items():
                texts['%s header %s' % (where, name)] = value
                for part in value.split():
                    try:
                        texts['%s header %s, decoded' % (where, name)] = \
                            base64.b64decode(part + '=' * (-len(part) % 4)).decode(
                                'utf-8', 'replace')
                    except ValueError:
                        pass
            self.assertNoneOf(keys, texts)
        # /v1/token is only ever asked by the helper, never by the tool
        for req in self.registry.exchanges():
            self.assertTrue((req.header('user-agent') or '').startswith(USER_AGENT_PREFIX),
                            'an exchange not made by the helper: %r' % req)

    def assertBasicWithIssuedToken(self, user):
        """
        The tool authenticated: every credentialed registry request was
        Basic USER:TOKEN with a token /v1/token issued; and there was one.
        """
        with self.registry.srv._lock:
            issued = list(self.registry.srv.issued)
        self.assertTrue(issued, 'the helper obtained no token from /v1/token')
        seen = 0
        for req in self.registry.registry_requests():
            cred = req.credential
            if cred is None:
                continue
            self.assertEqual(cred[0], 'basic', 'registry got a non-Basic credential')
            self.assertEqual(cred[1], user, 'Basic username')
            self.assertIn(cred[2], issued, 'Basic password is not an issued token')
            seen += 1
        self.assertGreater(seen, 0, 'no registry request carried a credential')
        self.assertNoKeyToRegistry()

    def assertNoCredentialToRegistry(self):
        """
        The tool asked the registry, anonymously: no Authorization, or the
        empty `Basic Og==` (base64 of ':') that containers/image answers a
        Basic challenge with when it has no credential.
        """
        self.assertTrue(self.registry.registry_requests(), 'the tool never asked the registry')
        got = [r.credential for r in self.registry.registry_requests()
               if r.credential not in (None, ('basic', '', ''))]
        self.assertEqual(len(got), 0, 'the registry received %d credential(s)' % len(got))
        self.assertNoKeyToRegistry()


@unittest.skipUnless(SKOPEO, NO_SKOPEO)
class Skopeo(ContainersBase):

    def test_inspect_with_token_username(self):
        self.login_registry()
        self.assertEqual(len(self.registry.exchanges()), 1, 'login verified the key once')
        res = self.skopeo('inspect', self.image())
        self.assertToolOk(res, 'skopeo inspect')
        doc = json.loads(res.stdout)
        self.assertEqual(doc['Digest'], self.registry.manifest_digest)
        self.assertEqual(doc['Architecture'], go_arch())
        self.assertBasicWithIssuedToken('token')
        # the first request is anonymous and challenged; the rest carry Basic
        first = self.registry.registry_requests()[0]
        self.assertEqual((first.path, first.status, first.credential), ('/v2/', 401, None))

    def test_registry_tls_is_verified(self):
        # the setup's own check: without the CA in certs.d the tool refuses
        # the registry, so the tests do talk verified TLS
        self.login_registry()
        ca = os.path.join(self.certdir, 'ca.crt')
        os.rename(ca, ca + '.off')
        try:
            res = self.skopeo('inspect', '--raw', self.image())
        finally:
            os.rename(ca + '.off', ca)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('x509', res.stderr)
        self.assertEqual(self.registry.registry_requests(), [])

    def test_inspect_with_stored_username(self):
        self.registry.users = {'alice'}
        self.login_registry(username='alice')
        res = self.skopeo('inspect', '--raw', self.image())
        self.assertToolOk(res, 'skopeo inspect --raw')
        self.assertEqual(res.stdout.encode(), self.registry.manifest)
        self.assertBasicWithIssuedToken('alice')

    def test_list_tags_and_cached_token(self):
        self.login_registry()
        for _ in range(2):
            res = self.skopeo('list-tags', 'docker://%s/%s' % (self.registry.host, REPO))
            self.assertToolOk(res, 'skopeo list-tags')
            self.assertEqual(json.loads(res.stdout)['Tags'], [TAG])
        self.assertBasicWithIssuedToken('token')
        # the token is cached and served: no further exchange.  As root the
        # tools run in a mount namespace of their own (SANDBOX), which is
        # another context, as another container is: its first call gets a
        # token of its own (galileo-credential(1) TOKEN CACHE)
        self.assertEqual(len(self.registry.exchanges()), 2 if SANDBOX else 1)

    def test_every_place_credhelpers_is_read(self):
        self.login_registry()
        places = [
            ('$XDG_RUNTIME_DIR/containers/auth.json', self.auth_json, {}, None),
            ('REGISTRY_AUTH_FILE', self.other_authfile,
             {'REGISTRY_AUTH_FILE': self.other_authfile}, None),
            ('--authfile', self.other_authfile, {}, self.other_authfile),
            ('~/.docker/config.json', self.docker_config, {}, None),
            ('$DOCKER_CONFIG/config.json', self.other_authfile.replace(
                'authfile.json', 'dockercfg/config.json'),
             {'DOCKER_CONFIG': os.path.join(self.ctrdir, 'dockercfg')}, None),
        ]
        for name, path, env_extra, authfile in places:
            with self.subTest(config=name):
                for p in (self.auth_json, self.docker_config, self.other_authfile,
                          places[-1][1]):
                    if os.path.exists(p):
                        os.unlink(p)
                self.write_helper_config(path)
                before = len(self.registry.registry_requests())
                res = self.skopeo('inspect', '--raw', self.image(),
                                  env_extra=env_extra, authfile=authfile)
                self.assertToolOk(res, 'skopeo inspect with credHelpers in ' + name)
                creds = [r.credential for r in self.registry.registry_requests()[before:]]
                self.assertTrue(any(c and c[0] == 'basic' for c in creds),
                                'no credential sent with credHelpers in ' + name)
        self.assertBasicWithIssuedToken('token')

    def test_nothing_stored(self):
        res = self.skopeo('inspect', '--raw', self.image())
        self.assertNotEqual(res.returncode, 0, 'skopeo succeeded without a credential')
        self.assertIn('unauthorized', res.stderr)
        self.assertNoCredentialToRegistry()
        self.assertEqual(self.registry.exchanges(), [])

    def test_key_of_another_server_is_not_used(self):
        # logged in to the home server (the harness endpoint) only, and
        # GALILEO_API_KEY set (for the home server only): the registry is not
        # a known server, so the helper answers nothing for it
        home_key = self.login()
        env_key = self.env.new_key()
        self.server.accept_key(env_key)
        for env_extra in ({}, {'GALILEO_API_KEY': env_key}):
            with self.subTest(env=sorted(env_extra)):
                res = self.skopeo('inspect', '--raw', self.image(), env_extra=env_extra)
                self.assertNotEqual(res.returncode, 0)
        self.assertNoCredentialToRegistry()
        self.assertEqual(self.registry.exchanges(), [])
        self.assertTrue(home_key)

    def test_rejected_key(self):
        # stored without a check, then refused by /v1/token: the tool fails,
        # the key never reaches the registry
        key = self.env.new_key()
        self.login(key, args=['--server', self.registry.url, '--no-verify'], accept=False)
        res = self.skopeo('inspect', '--raw', self.image())
        self.assertNotEqual(res.returncode, 0, 'skopeo succeeded with a rejected key')
        self.assertGreaterEqual(len(self.registry.exchanges()), 1)
        # containers/image stops at the helper's error, before any request
        self.assertIn('error getting credentials', res.stderr)
        self.assertIn('rejected', res.stderr)
        self.assertEqual(self.registry.registry_requests(), [])
        self.assertNoKeyToRegistry()

    def test_logout_then_nothing(self):
        self.login_registry()
        self.assertToolOk(self.skopeo('inspect', '--raw', self.image()), 'skopeo inspect')
        self.assertEqual(self.env.run(['logout', '--server', self.registry.url]).returncode, 0)
        self.registry.reset()
        res = self.skopeo('inspect', '--raw', self.image())
        self.assertNotEqual(res.returncode, 0, 'a token was still served after logout')
        self.assertNoCredentialToRegistry()


@unittest.skipUnless(PODMAN, NO_PODMAN)
class Podman(ContainersBase):

    def podman_pull(self, env_extra=None):
        return self.podman('pull', '--signature-policy', self.policy, '--quiet',
                           '%s/%s:%s' % (self.registry.host, REPO, TAG),
                           env_extra=env_extra)

    def test_pull(self):
        self.login_registry()
        res = self.podman_pull()
        self.assertToolOk(res, 'podman pull')
        self.assertBasicWithIssuedToken('token')
        # the image is in the private store, under the name it was pulled by
        res = self.podman('images', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}',
                          tls=False)
        self.assertToolOk(res, 'podman images')
        self.assertIn('%s/%s:%s %s' % (self.registry.host, REPO, TAG,
                                        self.registry.manifest_digest), res.stdout)
        self.assertToolOk(self.podman('rmi', '--all', '--force', tls=False), 'podman rmi')

    def test_pull_nothing_stored(self):
        res = self.podman_pull()
        self.assertNotEqual(res.returncode, 0, 'podman pull succeeded without a credential')
        self.assertNoCredentialToRegistry()
        self.assertEqual(self.registry.exchanges(), [])

    def test_get_login(self):
        self.registry.users = {'alice'}
        self.login_registry(username='alice')
        res = self.podman('login', '--get-login', self.registry.host, tls=False)
        self.assertToolOk(res, 'podman login --get-login')
        self.assertEqual(res.stdout, 'alice\n')
        # without a username stored: the helper's `token`
        self.assertEqual(self.env.run(['logout', '--server', self.registry.url]).returncode, 0)
        self.login_registry()
        res = self.podman('login', '--get-login', self.registry.host, tls=False)
        self.assertToolOk(res, 'podman login --get-login')
        self.assertEqual(res.stdout, 'token\n')
        # the tool itself sent the registry nothing
        self.assertEqual(self.registry.registry_requests(), [])

    def test_get_login_nothing_stored(self):
        res = self.podman('login', '--get-login', self.registry.host, tls=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('not logged in', res.stderr)
        self.assertEqual(self.registry.requests, [])

    def test_logout_erases(self):
        # podman logout with credHelpers runs the helper's `erase`
        self.login_registry()
        self.assertEqual(len(self.env.key_items(server=self.registry.url)), 1)
        res = self.podman('logout', self.registry.host, tls=False)
        self.assertToolOk(res, 'podman logout')
        self.assertEqual(self.env.keyring_items(), [])
        res = self.podman('login', '--get-login', self.registry.host, tls=False)
        self.assertNotEqual(res.returncode, 0, 'still logged in after podman logout')
        self.assertEqual(self.registry.registry_requests(), [])

    def test_search(self):
        self.login_registry()
        res = self.podman('search', '--format', '{{.Name}}', '%s/galileo' % self.registry.host)
        self.assertToolOk(res, 'podman search')
        self.assertIn('%s/%s' % (self.registry.host, REPO), res.stdout)
        self.assertBasicWithIssuedToken('token')


if __name__ == '__main__':
    harness.main()

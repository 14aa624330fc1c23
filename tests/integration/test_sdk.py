#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The real JavaScript Galileo SDK under `exec --api-key` (galileo-credential(1)
EXEC; README "For the Galileo SDKs"; issue 18 item 3).

The SDK, `galileo` from npm at a pinned version, reads only GALILEO_API_KEY
(or a username and password, or SSO) and logs in itself: GET /healthcheck,
then POST /login/api_key with {"api_key": KEY}, then every call with
`Authorization: Bearer TOKEN` (node_modules/galileo/dist/api-client/
base-client.js, services/auth-service.js; the API URL from GALILEO_API_URL,
galileo-generated's lib/galileo-config.js).  The local HTTPS endpoint serves
those routes, and GET /projects, for the test:

  - `exec --api-key -- node script` runs the SDK with the stored key: the
    endpoint received that key in the login, and the SDK's next call
    carried the token the login gave, so the SDK authenticated;
  - plain `exec` (GALILEO_JWT_TOKEN only) is not enough for this SDK: it
    stops before any call, naming GALILEO_API_KEY.

The package is installed once with `npm install --ignore-scripts` into a
cache directory outside the source tree ($GC_NPM_CACHE, else
$XDG_CACHE_HOME/galileo-credential-tests, else ~/.cache/...), into a
temporary directory first and renamed, so a cut-short install is never
used.  Skipped, with the reason, when node or npm is missing or the npm
registry cannot be reached; any other install failure fails.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, Response  # noqa: E402

SDK_PACKAGE = 'galileo'
SDK_VERSION = '1.33.1'
INSTALL_TIMEOUT = 600
NETWORK_ERRORS = ('ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT',
                  'ENETUNREACH', 'EHOSTUNREACH', 'network request', 'getaddrinfo',
                  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT',
                  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED')
# node trusts its own CA list, not the system's; the system's holds the
# CAs a site adds (a proxy's): npm checks the registry against it, as apt
# and curl do, unless npm was told otherwise
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
PROJECT = 'gc-sdk-test'

SCRIPT = r'''
const { GalileoApiClient } = require('galileo');
(async () => {
  const client = new GalileoApiClient();
  await client.init({ projectScoped: false });
  const id = await client.getProjectIdByName(process.argv[2]);
  console.log('project ' + id);
})().catch((e) => {
  console.error('sdk failed: ' + (e && e.message ? e.message : e));
  process.exit(3);
});
'''

SDK_DIR = None


def cache_base():
    d = os.environ.get('GC_NPM_CACHE')
    if d:
        return d
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'galileo-credential-tests')


def installed(d):
    try:
        with open(os.path.join(d, 'node_modules', SDK_PACKAGE, 'package.json')) as f:
            return json.load(f).get('version') == SDK_VERSION
    except (OSError, ValueError):
        return False


def install_sdk():
    """the directory holding node_modules/galileo at SDK_VERSION; SkipTest when it cannot be had"""
    for prog, pkg in (('node', 'nodejs'), ('npm', 'npm')):
        if not shutil.which(prog):
            raise unittest.SkipTest('%s is not installed (apt-get install %s; scripts/deps '
                                    'installs it)' % (prog, pkg))
    base = cache_base()
    d = os.path.join(base, 'npm-%s-%s' % (SDK_PACKAGE, SDK_VERSION))
    if installed(d):
        return d
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='npm-install-', dir=base)
    env = dict(os.environ, npm_config_cache=os.path.join(base, 'npm-cache'),
               npm_config_update_notifier='false', npm_config_fund='false',
               npm_config_audit='false')
    if os.path.exists(SYSTEM_CA_BUNDLE) and not any(
            k.lower() == 'npm_config_cafile' for k in env):
        env['npm_config_cafile'] = SYSTEM_CA_BUNDLE
    t = time.monotonic()
    try:
        r = subprocess.run(['npm', 'install', '--prefix', tmp, '--no-audit', '--no-fund',
                            '--ignore-scripts', '--no-package-lock',
                            '%s@%s' % (SDK_PACKAGE, SDK_VERSION)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unittest.SkipTest('npm install %s@%s took over %d s: the npm registry cannot '
                                'be reached' % (SDK_PACKAGE, SDK_VERSION, INSTALL_TIMEOUT))
    out = r.stdout.decode('utf-8', 'replace')
    if r.returncode != 0 or not installed(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        if any(e in out for e in NETWORK_ERRORS):
            raise unittest.SkipTest('the npm registry cannot be reached (npm install %s@%s: %s)'
                                    % (SDK_PACKAGE, SDK_VERSION, out.strip()[-300:]))
        raise RuntimeError('npm install %s@%s failed:\n%s' % (SDK_PACKAGE, SDK_VERSION, out))
    sys.stderr.write('installed %s@%s in %.1f s\n' % (SDK_PACKAGE, SDK_VERSION,
                                                      time.monotonic() - t))
    try:
        os.rename(tmp, d)
    except OSError:         # another run installed it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return d if installed(d) else tmp


def setUpModule():
    global SDK_DIR
    SDK_DIR = install_sdk()
    harness.setUpModule()


def tearDownModule():
    harness.tearDownModule()


class JavaScriptSDK(GCTestCase):

    def setUp(self):
        super().setUp()
        self.logins = []            # (the api_key posted, the token given)
        self.script = os.path.join(self.env.root, 'sdk-script.js')
        with open(self.script, 'w') as f:
            f.write(SCRIPT)
        self.server.push(self.routes, times=None)

    def routes(self, req):
        """the Galileo API as far as the SDK goes here"""
        srv = self.server
        if req.method == 'GET' and req.path == '/healthcheck':
            return Response(200, {'api_version': 'test'})
        if req.method == 'POST' and req.path == '/login/api_key':
            try:
                key = json.loads(req.body or b'{}').get('api_key')
            except ValueError:
                key = None
            if ('api-key', key) not in srv.accepted:
                self.logins.append((key, None))
                return Response(401, {'detail': 'Invalid credentials'})
            tok = srv.new_token()
            req.token = tok
            self.logins.append((key, tok))
            return Response(200, {'access_token': tok, 'token_type': 'bearer'})
        if req.method == 'GET' and req.path == '/projects':
            given = [t for _, t in self.logins if t]
            if not req.credential or req.credential[0] != 'bearer' or \
                    req.credential[1] not in given:
                return Response(401, {'detail': 'Not authenticated'})
            return Response(200, [{'id': 'p-0001', 'name': req.query.get('project_name'),
                                   'type': req.query.get('type')}])
        if req.method == 'GET' and req.path == srv.token_path:
            if req.credential in srv.accepted:
                return srv.token_reply()(req)
            return Response(401, {'detail': 'Invalid credentials'})
        return Response(404, {'detail': 'Not Found'})

    def node_env(self):
        return {'NODE_PATH': os.path.join(SDK_DIR, 'node_modules'),
                'NODE_EXTRA_CA_CERTS': self.env.ca_file,
                'GALILEO_LOG_LEVEL': 'error'}

    def test_exec_api_key_authenticates_the_sdk(self):
        key = self.login()
        t0 = time.monotonic()
        rc, out, err = self.env.run(['exec', '--api-key', '--', 'node', self.script, PROJECT],
                                    env_extra=self.node_env(), timeout=60)
        took = time.monotonic() - t0
        sys.stderr.write('the SDK ran in %.1f s\n' % took)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, 'project p-0001\n')
        # the SDK logged in with the stored key, once ...
        self.assertEqual(len(self.logins), 1, 'the SDK logged in %d times' % len(self.logins))
        self.assertSecretEqual(self.logins[0][0], key, 'the api_key the SDK posted')
        # ... and its call carried the token that login gave: authenticated
        calls = [r for r in self.server.requests if r.path == '/projects']
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0].status, 200)
        self.assertEqual(calls[0].credential, ('bearer', self.logins[0][1]))
        self.assertEqual(calls[0].query.get('project_name'), PROJECT)
        self.assertEqual(calls[0].header('X-Galileo-SDK') is not None, True,
                         'the call did not come from the SDK')

    def test_plain_exec_is_not_enough_for_this_sdk(self):
        # the JavaScript SDK never reads GALILEO_JWT_TOKEN (README's table)
        self.login()
        rc, out, err = self.env.run(['exec', '--', 'node', self.script, PROJECT],
                                    env_extra=self.node_env(), timeout=60)
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, '')
        self.assertIn('GALILEO_API_KEY', err)
        self.assertEqual(self.logins, [])
        self.assertEqual([r for r in self.server.requests if r.path == '/projects'], [])


if __name__ == '__main__':
    harness.main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The four-backend stack `env secret-service pass persistent-keyring`
(galileo-credential(1) KEYSTORE STACK) end to end, through every dialect,
on a machine with a Secret Service and on one with no D-Bus at all, with
and without a password store.

Which backend holds the credential is read from the backends themselves
(secret-tool on the harness's keyring, the decrypted pass entry, the
persistent keyring's keys), never from the program's own report.  Between
dialects the kernel token tier is emptied, so each one reads the stack and
makes its own exchange with the stored key.

Skips when pass, gpg, keystore-pass.so or a persistent keyring is missing.
"""

import hashlib
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402
import test_pass as tp  # noqa: E402
import test_persistent_keyring as tpk  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
STACK = 'env secret-service pass persistent-keyring'
NO_BUS = {'DBUS_SESSION_BUS_ADDRESS': None}
BACKENDS = ('secret-service', 'pass', 'persistent-keyring')

# exec's COMMAND: writes the sha256 of the token it was given to argv[1]
REPORTER = ('import hashlib, os, sys\n'
            'open(sys.argv[1], "w").write(hashlib.sha256('
            'os.environ["GALILEO_JWT_TOKEN"].encode()).hexdigest())\n')


def setUpModule():
    if tp.MISSING:
        raise unittest.SkipTest('not installed: %s' % ', '.join(tp.MISSING))
    if not os.path.exists(os.path.join(harness.module_dir(), 'keystore-pass.so')):
        raise unittest.SkipTest('keystore-pass.so not built')
    if tpk.WHY_NOT:
        raise unittest.SkipTest('no persistent keyring here: ' + tpk.WHY_NOT)
    harness.persistent_keyring_lock()
    harness.setUpModule()


def tearDownModule():
    try:
        for store in list(tp._STORES.values()):
            store.close()
        tp._STORES.clear()
        if harness.ENV is not None:
            tpk.clear_stored(harness.ENV)
    finally:
        harness.tearDownModule()


class FourBackends(GCTestCase):

    stack = STACK

    def setUp(self):
        super().setUp()
        self.store = tp.pass_store(self.env, 'stack')
        tpk.clear_stored(self.env)
        self.addCleanup(tpk.clear_stored, self.env)
        self.env.write_config(token_cache='keyctl', extra='keystore = %s\n' % self.stack)
        self.host = '127.0.0.1:%d' % self.server.port
        self.no_store = self.store.env(
            PASSWORD_STORE_DIR=os.path.join(self.store.root, 'none'))
        # the machine each backend ends up holding the credential on
        self.machines = {
            'secret-service': self.store.env(),
            'pass': dict(NO_BUS, **self.store.env()),
            'persistent-keyring': dict(NO_BUS, **self.no_store),
        }

    # -- what the backends hold ------------------------------------------------
    def held(self):
        """{backend: secret} of every backend holding the endpoint's credential"""
        out = {}
        items = self.env.key_items()
        if items:
            self.assertEqual(len(items), 1, items)
            out['secret-service'] = items[0].secret
        entry = self.store.read(self.url)
        if entry is not None:
            out['pass'] = entry.split('\n', 1)[0]
        if tpk.stored_keys(self.env, self.url):
            cred = tpk.parse_payload(self.env.kernel_payload(
                tpk.stored_keys(self.env, self.url)[0][0]))
            out['persistent-keyring'] = cred['secret']
        return out

    def assertHeldBy(self, backend, secret):
        held = self.held()
        self.assertEqual(sorted(held), [backend], 'held by %r' % sorted(held))
        self.assertSecretEqual(held[backend], secret, backend)

    def assertHeldByNone(self):
        self.assertEqual(sorted(self.held()), [])

    # -- one exchange per dialect ----------------------------------------------
    def fresh(self, env, key, run):
        """empty the token tier, run, see one exchange made with key"""
        tpk.clear_token_tier(self.env)
        before = self.server.count
        res = run(env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.server.count, before + 1, 'expected one exchange')
        self.assertEqual(self.server.last.credential, ('api-key', key))
        return res.stdout

    def git_get(self, env):
        return self.env.run(['get'], input=git_lines('protocol=https', 'host=' + self.host),
                            env_extra=env, argv0=GIT)

    def docker_get(self, env):
        return self.env.run(['get'], input=self.url + '\n', env_extra=env, argv0=DOCKER)

    def spec_get(self, env):
        return self.env.run(['get'], input=json.dumps({'uri': self.url + '/x'}), env_extra=env)

    def exec_(self, env):
        self.report = os.path.join(self.env.root, 'stack-report')
        return self.env.run(['exec', '--', sys.executable, '-c', REPORTER, self.report],
                            env_extra=env)

    def assertEveryDialectServes(self, env, key):
        tok = self.fresh(env, key, lambda e: self.env.run(['token'], env_extra=e))
        self.assertSecretEqual(tok, self.server.last.token + '\n', 'token')
        out = self.fresh(env, key, self.git_get)
        self.assertSecretEqual(parse_git_output(out)[0].get('password'),
                               self.server.last.token, 'git password')
        out = self.fresh(env, key, self.docker_get)
        self.assertSecretEqual(json.loads(out)['Secret'], self.server.last.token, 'Secret')
        out = self.fresh(env, key, self.spec_get)
        self.assertSecretEqual(json.loads(out)['headers']['Authorization'][0],
                               'Bearer ' + self.server.last.token, 'Authorization')
        self.fresh(env, key, self.exec_)
        with open(self.report) as f:
            got = f.read()
        self.assertEqual(got, hashlib.sha256(self.server.last.token.encode()).hexdigest())

    def assertStatusNames(self, env, backend):
        tpk.assert_status_names(self, backend, env)
        rc, out, err = self.env.run(['list'], env_extra=env, argv0=DOCKER)
        self.assertEqual((rc, err), (0, ''), out)
        self.assertIn(self.url, json.loads(out))
        rc, out, err = self.env.run(['doctor'], env_extra=env)
        self.assertEqual((rc, err), (0, ''), out)
        self.assertIn('token: can be served', out)

    # -- writes through every dialect ------------------------------------------
    def git_store(self, env, key):
        self.server.accept_key(key)
        res = self.env.run(['store'], argv0=GIT, env_extra=env, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=u', 'password=' + key))
        self.assertEqual(res, (0, '', ''))

    def docker_store(self, env, key):
        self.server.accept_key(key)
        doc = {'ServerURL': self.url, 'Username': 'u', 'Secret': key}
        res = self.env.run(['store'], argv0=DOCKER, env_extra=env, input=json.dumps(doc))
        self.assertEqual(res, (0, '', ''))

    def walk(self, backend):
        env = self.machines[backend]
        key = self.login(env_extra=env)
        self.assertHeldBy(backend, key)
        self.assertEveryDialectServes(env, key)
        self.assertStatusNames(env, backend)
        for store in (self.git_store, self.docker_store):
            key = self.env.new_key()
            store(env, key)
            self.assertHeldBy(backend, key)
            self.fresh(env, key, self.git_get)
        # erase through git (no password: the credential), docker, logout
        res = self.env.run(['erase'], argv0=GIT, env_extra=env,
                           input=git_lines('protocol=https', 'host=' + self.host))
        self.assertEqual(res, (0, '', ''))
        self.assertHeldByNone()
        self.login(env_extra=env)
        res = self.env.run(['erase'], argv0=DOCKER, env_extra=env, input=self.url + '\n')
        self.assertEqual(res, (0, '', ''))
        self.assertHeldByNone()
        self.login(env_extra=env)
        self.assertEqual(self.env.run(['logout'], env_extra=env), (0, '', ''))
        self.assertHeldByNone()

    # -- the tests ---------------------------------------------------------------
    def test_with_a_secret_service(self):
        self.walk('secret-service')

    def test_no_dbus_with_a_password_store(self):
        self.walk('pass')

    def test_no_dbus_and_no_password_store(self):
        self.walk('persistent-keyring')

    def test_env_key_returns_first(self):
        # success=return: GALILEO_API_KEY answers before any stored key
        self.login(env_extra=self.machines['pass'])
        key = self.env.new_key()
        self.server.accept_key(key)
        env = dict(self.machines['pass'], GALILEO_API_KEY=key)
        self.assertEveryDialectServes(env, key)

    def test_notfound_in_pass_continues(self):
        # stored without a password store; a store that appears later
        # answers notfound and the walk goes on to the persistent keyring
        key = self.login(env_extra=self.machines['persistent-keyring'])
        self.assertEveryDialectServes(self.machines['pass'], key)
        self.assertStatusNames(self.machines['pass'], 'persistent-keyring')

    def test_locked_pass_returns_unless_told_to_continue(self):
        key = self.login(env_extra=self.machines['persistent-keyring'])
        locked = tp.pass_store(self.env, 'locked', tp.PASSPHRASE)
        locked.insert(self.url, self.env.new_key() + '\n')
        env = dict(NO_BUS, **locked.env())
        tpk.clear_token_tier(self.env)
        self.assertFails(self.env.run(['token'], env_extra=env), 6, 'passphrase')
        self.assertFalse(locked.pinentry_started())
        self.env.write_config(token_cache='keyctl', extra=(
            'keystore = env secret-service pass [locked=continue] persistent-keyring\n'))
        self.assertEveryDialectServes(env, key)
        self.assertFalse(locked.pinentry_started())

    def test_nothing_stored(self):
        # everything notfound: "nothing stored", exit 3 (git: silent)
        env = self.machines['secret-service']
        self.assertFails(self.env.run(['token'], env_extra=env), 3)
        self.assertEqual(self.git_get(env), (0, '', ''))
        # without D-Bus the Secret Service was not there to ask: unavailable
        for name in ('pass', 'persistent-keyring'):
            with self.subTest(machine=name):
                env = self.machines[name]
                self.assertFails(self.env.run(['token'], env_extra=env), 6, 'Secret Service')
        self.assertEqual(self.server.count, 0)


if __name__ == '__main__':
    harness.main()

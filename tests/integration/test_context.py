#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Whose token (galileo-credential(1) TOKEN CACHE, CONTRACT section 8 v3): a
cached token belongs to the credential that obtained it and to the context
of the call that cached it (home directory, configuration file, keystore
stack and where its backends keep their data, mount namespace).  It is
served to calls of that context whatever their runtime directory, D-Bus
session or terminal, and to no other: another stack or HOME, another
container (mount namespace), a refresh in flight during a logout under
another runtime directory.  Locks live where only the user can make them.
In a container (keyctl refused, no D-Bus) tokens are cached in sealed files.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, delayed, git_lines, parse_git_output  # noqa: E402
from test_keyctl import refused_wrapper  # noqa: E402
import test_pass  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

DEAD_BUS = 'unix:path=/nonexistent/bus'
GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
UNSHARE = shutil.which('unshare')
NSENTER = shutil.which('nsenter')


class ContextBase(GCTestCase):

    def setUp(self):
        super().setUp()
        self.fresh()

    def fresh(self):
        """the default token tier (keyctl where the kernel allows it)"""
        self.env.reset()
        self.env.write_config(token_cache=None)

    def owner(self, token):
        """the credential of the exchange that handed token out"""
        for r in self.server.requests:
            if r.token == token:
                return r.credential
        self.fail('the endpoint never handed that token out')

    def get(self, env_extra=None, wrapper=None, args=()):
        """`token`: (the token or None, exit code, stderr)"""
        rc, out, err = self.env.run(['token'] + list(args), env_extra=env_extra,
                                    wrapper=wrapper)
        if rc == 0:
            self.assertTrue(out.endswith('\n') and out.count('\n') == 1)
            return out[:-1], rc, err
        self.assertEqual(out, '', 'stdout on failure')
        return None, rc, err

    def token_of(self, env_extra=None, wrapper=None, args=()):
        tok, rc, err = self.get(env_extra, wrapper, args)
        self.assertEqual(rc, 0, err)
        return tok

    def git_get(self, env_extra=None, wrapper=None, user=None):
        host = '127.0.0.1:%d' % self.server.port
        lines = ['protocol=https', 'host=' + host] + (['username=' + user] if user else [])
        return self.env.run(['get'], input=git_lines(*lines), env_extra=env_extra,
                            argv0=GIT, wrapper=wrapper)

    def assertServedNothing(self, env_extra=None, wrapper=None, code=3):
        """no token from token, git get or docker get"""
        tok, rc, err = self.get(env_extra, wrapper)
        self.assertIsNone(tok, 'a token was served')
        self.assertEqual(rc, code, err)
        rc, out, err = self.git_get(env_extra, wrapper)
        self.assertEqual(out, '', 'git get answered')
        rc, out, err = self.env.run(['get'], input=self.url + '\n', env_extra=env_extra,
                                    argv0=DOCKER, wrapper=wrapper)
        self.assertEqual(rc, 1, out)
        self.assertNotIn('Secret', out)


class TwoStacks(ContextBase):
    """
    Two stacks of one user hold two credentials for one server: the
    default stack (secret-service) and GALILEO_CREDENTIAL_KEYSTORE=pass with
    a store of its own (not persistent-keyring, whose keyring every test
    module of this user shares).
    """

    def setUp(self):
        super().setUp()
        why = harness.kernel_keys_usable()
        if why:
            self.skipTest(why)
        if test_pass.MISSING:
            self.skipTest('not installed: %s' % ', '.join(test_pass.MISSING))

    def test_each_stack_gets_its_own_token(self):
        store = test_pass.pass_store(self.env, 'ctx-stacks')
        self.addCleanup(store.close)
        alice = self.login()
        b = store.env(GALILEO_CREDENTIAL_KEYSTORE='pass')
        carol = self.login(env_extra=b)
        for rnd in range(3):
            with self.subTest(round=rnd):
                ta = self.token_of()
                tb = self.token_of(b)
                self.assertEqual(self.owner(ta), ('api-key', alice))
                self.assertEqual(self.owner(tb), ('api-key', carol))
                count = self.server.count
                self.assertSecretEqual(self.token_of(), ta, "stack A's cached token")
                self.assertSecretEqual(self.token_of(b), tb, "stack B's cached token")
                self.assertEqual(self.server.count, count, 'a cached token was not served')
                # a refresh of one leaves the other its own
                self.token_of(b if rnd % 2 else None, args=['--refresh'])


class OtherHome(ContextBase):

    def other_home(self):
        home = tempfile.mkdtemp(prefix='home2-', dir=self.env.root)
        return {'HOME': home, 'XDG_CONFIG_HOME': os.path.join(home, '.config'),
                'XDG_CACHE_HOME': os.path.join(home, '.cache'),
                'XDG_DATA_HOME': os.path.join(home, '.local', 'share'),
                'GALILEO_CREDENTIAL_CONFIG': None, 'DBUS_SESSION_BUS_ADDRESS': DEAD_BUS}

    def test_another_home_is_served_nothing(self):
        self.login()
        self.token_of()
        env = self.other_home()
        count = self.server.count
        tok, rc, err = self.get(env, args=['--server', self.url])
        self.assertIsNone(tok, "another HOME was served the first HOME's token")
        self.assertEqual(rc, 6, err)
        rc, out, err = self.git_get(env)
        self.assertEqual(out, '', "git get in another HOME answered")
        self.assertEqual(self.server.count, count)

    def test_same_configuration_without_dbus_is_served_from_the_cache(self):
        """a cron job: no D-Bus, another runtime directory; no keystore read"""
        self.login()
        tok = self.token_of()
        rt = tempfile.mkdtemp(prefix='cron-rt-', dir=self.env.root)
        count = self.server.count
        for dbus in (None, DEAD_BUS):
            with self.subTest(dbus=dbus):
                env = {'DBUS_SESSION_BUS_ADDRESS': dbus, 'XDG_RUNTIME_DIR': rt}
                self.assertSecretEqual(self.token_of(env), tok, 'cached token')
                rc, out, err = self.git_get(env)
                self.assertEqual(rc, 0, err)
                self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git')
        self.assertEqual(self.server.count, count)


class RefreshDuringLogout(ContextBase):
    """The write generation lives with the cache, not in a runtime directory."""

    def test_refresh_under_another_runtime_dir_during_logout(self):
        for rnd in range(2):
            with self.subTest(round=rnd):
                self.fresh()
                self.login()
                rt = tempfile.mkdtemp(prefix='rt2-', dir=self.env.root)
                self.server.push(delayed(self.server.token_reply(), 2.0))
                count = self.server.count
                refresh = self.env.spawn(['token', '--refresh'],
                                         env_extra={'XDG_RUNTIME_DIR': rt})
                harness.settled(lambda: self.server.count, expect=count + 1, timeout=10)
                self.assertEqual(self.server.count, count + 1, 'the refresh never asked')
                self.assertEqual(self.env.run(['logout']), (0, '', ''))
                refresh.finish()
                self.assertServedNothing()
                self.assertServedNothing({'XDG_RUNTIME_DIR': rt})


class LockDirOfAnotherUser(ContextBase):
    """No lock directory in /tmp that another user can make first."""

    def test_squatted_tmp_dir_does_not_switch_off_single_flight(self):
        squat = '/tmp/galileo-credential-%d' % os.getuid()
        aside = None
        if os.path.lexists(squat):
            aside = squat + '.aside-%d' % os.getpid()
            os.rename(squat, aside)
        try:
            os.mkdir(squat, 0o755)
            if os.geteuid() == 0:
                os.chown(squat, 65534, 65534)   # nobody's, as another user would
            self.login(args=['--no-verify'])
            self.server.push(delayed(self.server.token_reply(), 1.0))
            env = {'XDG_RUNTIME_DIR': None}
            procs = [self.env.spawn(['token'], env_extra=env) for _ in range(12)]
            outs = [p.finish() for p in procs]
            for rc, out, err in outs:
                self.assertEqual((rc, err), (0, ''))
            self.assertEqual(self.server.count, 1, 'racing cold calls exchanged more than once')
            self.assertEqual(len({out for _, out, _ in outs}), 1)
            self.assertEqual(os.listdir(squat), [], 'locked in the squatted directory')
        finally:
            shutil.rmtree(squat, ignore_errors=True)
            if aside:
                os.rename(aside, squat)


class Container(ContextBase):
    """keyctl refused (the seccomp wrapper), no D-Bus: the sealed file tier."""

    def setUp(self):
        super().setUp()
        self.wrapper, why = refused_wrapper()
        if self.wrapper is None:
            self.skipTest(why)
        self.tokdir = os.path.join(self.env.xdg_cache, 'galileo-credential')
        shutil.rmtree(self.tokdir, ignore_errors=True)

    def headless(self, key):
        return {'GALILEO_API_KEY': key, 'DBUS_SESSION_BUS_ADDRESS': None}

    def token_files(self):
        if not os.path.isdir(self.tokdir):
            return []
        return sorted(n for n in os.listdir(self.tokdir) if n.startswith('token-'))

    def assertNoPlainToken(self, *secrets):
        """no file anywhere in the test's world holds a token or key as it is"""
        for top, _dirs, files in os.walk(self.env.root):
            for name in files:
                path = os.path.join(top, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                try:
                    with open(path, 'rb') as f:
                        data = f.read()
                except OSError:
                    continue
                for s in secrets:
                    self.assertNotIn(s.encode(), data, 'a secret in plain text in %s' % path)

    def test_env_key_cached_sealed_and_tied_to_the_key(self):
        key, key2 = self.env.new_key(), self.env.new_key()
        self.server.accept_key(key)
        self.server.accept_key(key2)
        env, env2 = self.headless(key), self.headless(key2)
        tok = self.token_of(env, self.wrapper)
        for _ in range(4):
            self.assertSecretEqual(self.token_of(env, self.wrapper), tok, 'cached token')
        self.assertEqual(self.server.count, 1, 'repeated calls exchanged again')
        self.assertEqual(len(self.token_files()), 1)
        st = os.stat(os.path.join(self.tokdir, self.token_files()[0]))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.tokdir).st_mode & 0o777, 0o700)
        self.assertNoPlainToken(tok, key)
        # git get reuses the cached token
        rc, out, err = self.git_get(env, self.wrapper)
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git password')
        self.assertEqual(self.server.count, 1)
        # another key gets a token of its own, never the first key's (one
        # file per server, organization and context: it takes the place)
        tok2 = self.token_of(env2, self.wrapper)
        self.assertEqual(self.owner(tok2), ('api-key', key2))
        self.assertSecretEqual(self.token_of(env2, self.wrapper), tok2, 'second key again')
        tok3 = self.token_of(env, self.wrapper)
        self.assertEqual(self.owner(tok3), ('api-key', key))
        self.assertEqual(self.server.count, 3)
        self.assertNoPlainToken(tok, tok2, tok3, key, key2)

    def test_status_and_doctor_name_the_file_tier(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = self.headless(key)
        self.token_of(env, self.wrapper)
        rc, out, err = self.env.run(['status'], env_extra=env, wrapper=self.wrapper)
        self.assertEqual(rc, 0, err)
        self.assertIn('tier=file', out)
        rc, out, err = self.env.run(['doctor'], env_extra=env, wrapper=self.wrapper)
        self.assertEqual(rc, 0, err)
        self.assertIn('token cache: file (the kernel refuses keyctl here', out)

    def test_a_tampered_file_is_a_miss(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = self.headless(key)
        tok = self.token_of(env, self.wrapper)
        path = os.path.join(self.tokdir, self.token_files()[0])
        with open(path, 'r+b') as f:
            data = bytearray(f.read())
            data[-5] ^= 0x20
            f.seek(0)
            f.write(bytes(data))
        rc, out, err = self.env.run(['token'], env_extra=env, wrapper=self.wrapper)
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.count, 2, 'a tampered file was not a miss')
        self.assertNotEqual(out[:-1], tok)

    def test_pass_stack_cached_and_logout_leaves_nothing(self):
        if test_pass.MISSING:
            self.skipTest('not installed: %s' % ', '.join(test_pass.MISSING))
        store = test_pass.pass_store(self.env, 'ctx-pass')
        self.env.write_config(token_cache=None, extra='keystore = pass\n')
        self.addCleanup(store.close)
        env = store.env(DBUS_SESSION_BUS_ADDRESS=None)
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login'], input=key + '\n', env_extra=env,
                                    wrapper=self.wrapper)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 1)
        tok = self.token_of(env, self.wrapper)
        self.assertSecretEqual(tok, self.server.last.token, "login's token")
        for _ in range(3):
            self.assertSecretEqual(self.token_of(env, self.wrapper), tok, 'cached token')
        rc, out, err = self.git_get(env, self.wrapper)
        self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git password')
        self.assertEqual(self.server.count, 1, 'repeated calls exchanged again')
        self.assertNoPlainToken(tok)
        self.assertEqual(self.env.run(['logout'], env_extra=env, wrapper=self.wrapper),
                         (0, '', ''))
        self.assertEqual(self.token_files(), [])
        self.assertServedNothing(env, self.wrapper)


class MountNamespaces(ContextBase):
    """
    Two rootful containers allowed keyctl share the user keyring, with the
    same paths inside; here two mount namespaces, each held by a sleeper,
    entered with nsenter.
    """

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest('a mount namespace of its own needs root (unshare -m)')
        if not (UNSHARE and NSENTER):
            self.skipTest('unshare(1) or nsenter(1) is missing (util-linux)')
        self.sleepers = []

    def tearDown(self):
        for p in getattr(self, 'sleepers', []):
            p.kill()
            p.wait()
        super().tearDown()

    def namespace(self):
        """argv prefix entering a new mount namespace that stays while the test runs"""
        p = subprocess.Popen([UNSHARE, '-m', '--propagation', 'private', 'sleep', '300'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        self.sleepers.append(p)
        ns = '/proc/%d/ns/mnt' % p.pid
        deadline = time.time() + 10
        while time.time() < deadline and p.poll() is None:
            try:
                if os.readlink(ns) != os.readlink('/proc/self/ns/mnt'):
                    return [NSENTER, '-t', str(p.pid), '-m', '--']
            except OSError:
                pass
            time.sleep(0.02)
        self.skipTest('unshare -m does not work here: %s' % p.stderr.read().decode().strip())

    def test_two_mount_namespaces_do_not_share(self):
        self.login()
        host = self.token_of()
        one, two = self.namespace(), self.namespace()
        first = self.token_of(wrapper=one)
        self.assertNotEqual(first, host, "another mount namespace got the host's token")
        second = self.token_of(wrapper=two)
        self.assertNotEqual(second, first, 'two mount namespaces shared a token')
        self.assertEqual(self.server.count, 3)
        # each keeps its own, as the host does
        self.assertSecretEqual(self.token_of(wrapper=one), first, 'the first namespace again')
        self.assertSecretEqual(self.token_of(wrapper=two), second, 'the second namespace again')
        self.assertSecretEqual(self.token_of(), host, "the host's own token")
        self.assertEqual(self.server.count, 3)


if __name__ == '__main__':
    harness.main()

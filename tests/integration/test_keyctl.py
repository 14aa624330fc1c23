#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The kernel-keyring token cache (galileo-credential(1) TOKEN LIFETIME, CONFIGURATION, `token-cache =
keyctl`, the default) and the single-flight refresh lock (TOKEN LIFETIME: at most
one exchange per server and organization at a time).

Keys live in the user keyring @u, shared by every process of this UID: the
harness removes the ones naming this module's endpoint before each test and
at the end.  Payloads are compared in memory and never printed.

Cases that need tests/keyctl-refused (a seccomp wrapper refusing keyctl(2),
add_key(2) and request_key(2), built by `make check`) skip when it is not
built or cannot install its filter here.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest
import uuid

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, delayed, git_lines, parse_git_output,  # noqa: E402
                     parse_rfc3339)

ORG_A = str(uuid.uuid4())
GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
DEAD_BUS = 'unix:path=/nonexistent'
WARNING = harness.PREFIX + 'warning: '
DEBUG = harness.PREFIX + 'debug: '

# what a cache hit must not load (galileo-credential(1), Token tiers: heavy libraries live in
# modules)
HEAVY = ('libsecret', 'libglib', 'libgio', 'libgobject', 'libcurl',
         'keystore-secret-service.so', 'http-curl.so')

WHY_NO_KEYS = harness.kernel_keys_usable()


def setUpModule():
    if WHY_NO_KEYS:
        raise unittest.SkipTest('kernel keyring not usable here: ' + WHY_NO_KEYS)
    harness.setUpModule()


tearDownModule = harness.tearDownModule


def loaded_heavy(ld_debug_stderr):
    """LD_DEBUG=files lines naming a heavy library (file names, no secrets)."""
    return [line.strip() for line in ld_debug_stderr.split('\n')
            if any(h in line for h in HEAVY)]


_refused_checked = {}


def refused_wrapper(errno_name='EPERM'):
    """
    argv prefix running a program with keyctl refused, or None (and why)
    when the wrapper is not built or cannot work here.
    """
    path = harness.keyctl_refused_path()
    if not os.access(path, os.X_OK):
        return None, '%s not built (make check builds it)' % path
    wrapper = [path] + (['--enosys'] if errno_name == 'ENOSYS' else [])
    if errno_name not in _refused_checked:
        message = {'EPERM': 'Operation not permitted',
                   'ENOSYS': 'Function not implemented'}[errno_name]
        r = subprocess.run(wrapper + ['keyctl', 'show', '@u'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL='C'),
                           timeout=30)
        err = r.stderr.decode('utf-8', 'replace')
        if r.returncode == 77:
            _refused_checked[errno_name] = 'keyctl-refused cannot work here: ' + err.strip()
        elif r.returncode == 0 or message not in err:
            _refused_checked[errno_name] = 'broken: keyctl under keyctl-refused: rc %d, %r' % (
                r.returncode, err)
        else:
            _refused_checked[errno_name] = None
    why = _refused_checked[errno_name]
    if why and why.startswith('broken'):
        raise AssertionError(why)
    return (None, why) if why else (wrapper, None)


class KeyctlBase(GCTestCase):

    def setUp(self):
        super().setUp()
        self.env.write_config(token_cache=None)        # the default: keyctl
        self.host = '127.0.0.1:%d' % self.server.port
        self.other = self.url + '/other'                # another server, same endpoint
        shutil.rmtree(self.lock_dir(), ignore_errors=True)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            d = self.lock_dir()
            if os.path.isdir(d):
                os.chmod(d, 0o700)
                shutil.rmtree(d, ignore_errors=True)

    # -- helpers -----------------------------------------------------------
    def fresh(self, token_cache=None):
        """a clean slate inside one test (subTest loops); checks leaks first"""
        self.check_no_leaks()
        self.env.reset()
        self.env.write_config(token_cache=token_cache)
        d = self.lock_dir()
        if os.path.isdir(d):
            os.chmod(d, 0o700)
            shutil.rmtree(d, ignore_errors=True)

    def lock_dir(self):
        return os.path.join(self.env.runtime, 'galileo-credential')

    def token_key(self, org='', server=None):
        return self.env.kernel_key(self.env.token_key_desc(org, server))

    def cred_key(self, server=None):
        return self.env.kernel_key(self.env.credential_key_desc(server))

    def descs_of(self, server):
        """descriptions of the usable keys of exactly this server"""
        tok = self.env.token_key_desc('', server)
        cred = self.env.credential_key_desc(server)
        return sorted(d for d in self.env.kernel_key_descriptions()
                      if d == cred or d.startswith(tok))

    def token_payload(self, key):
        """
        'gc2 EXPIRES LIFETIME FINGERPRINT GENERATION CONTEXT TOKEN' as a
        dict; fails without echoing it
        """
        self.assertIsNotNone(key, 'no such token key')
        payload = self.env.kernel_payload(key)
        self.assertIsNotNone(payload, 'cannot read %r' % key)
        parts = payload.split(' ')
        hex16 = [re.fullmatch(r'[0-9a-f]{16}', p) is not None for p in parts[3:6]]
        ok = (len(parts) == 7 and parts[0] == 'gc2' and parts[1].isdigit() and
              parts[2].isdigit() and all(hex16) and parts[6] != '' and '\n' not in parts[6])
        if not ok:
            # what is wrong, not the payload: it holds a token
            self.fail('token key payload is not "gc2 EXPIRES LIFETIME FINGERPRINT '
                      'GENERATION CONTEXT TOKEN" (%d fields, magic %s)' % (
                          len(parts), 'ok' if parts[0] == 'gc2' else 'wrong'))
        # the description's context is the payload's
        self.assertEqual(key.context, parts[5])
        return {'expires': int(parts[1]), 'lifetime': int(parts[2]),
                'fingerprint': parts[3], 'generation': parts[4], 'context': parts[5],
                'token': parts[6]}

    def summary_payload(self, key):
        """'gc1\\nFINGERPRINT\\nKIND\\nORGANIZATION\\nUSERNAME' as a dict"""
        self.assertIsNotNone(key, 'no credential summary key')
        payload = self.env.kernel_payload(key)
        self.assertIsNotNone(payload, 'cannot read %r' % key)
        # never a secret in it
        self.assertNoneOf(self.env.all_secrets(), {'credential summary payload': payload})
        lines = payload.split('\n')        # no trailing newline: USERNAME may be ''
        self.assertEqual(len(lines), 5, 'summary payload lines: %r' % payload)
        self.assertEqual(lines[0], 'gc1', payload)
        self.assertRegex(lines[1], r'^[0-9a-f]{16}$')
        return {'fingerprint': lines[1], 'kind': lines[2], 'organization': lines[3],
                'username': lines[4]}

    def assertPrivateUserKey(self, key):
        """type user, ours, owner-only permissions, linked in @u"""
        self.assertIsNotNone(key)
        self.assertEqual(key.type, 'user', key)
        self.assertEqual(key.uid, os.getuid(), key)
        self.assertEqual(key.perm & 0x0000ffff, 0, 'group/other permission bits: %r' % key)
        self.assertNotEqual(key.perm & 0xffff0000, 0, 'no possessor/user bits: %r' % key)
        self.assertIn(key.serial, self.env.user_keyring_serials(), 'not linked in @u: %r' % key)

    def assertTimeoutAt(self, key, expires_at, slack=2):
        """the kernel timeout of key is at expires_at (epoch), as /proc/keys shows it"""
        rng = key.expiry_range()
        self.assertIsNotNone(rng, 'no kernel timeout on %r' % key)
        left = expires_at - key.seen_at
        lo, hi = rng
        self.assertTrue(lo - slack <= left < hi + slack,
                        'timeout of %r does not match the token expiry (%.0f s left)' % (
                            key, left))

    def login_other_server(self):
        """a credential and a token for self.other (scripted reply)"""
        self.server.push(self.server.token_reply())
        self.login(args=['--server', self.other], accept=False)
        self.assertEqual(len(self.descs_of(self.other)), 2, self.env.kernel_keys())
        return self.descs_of(self.other)

    def git_get(self, env_extra=None):
        return self.env.run(['get'], input=git_lines('protocol=https', 'host=' + self.host),
                            argv0=GIT, env_extra=env_extra)

    def docker_get(self, env_extra=None):
        return self.env.run(['get'], input=self.url + '\n', argv0=DOCKER, env_extra=env_extra)


class TokenKey(KeyctlBase):
    """Section 9: the token and credential-summary keys in @u."""

    def test_login_caches_token_and_summary_in_user_keyring(self):
        key = self.login()
        req = self.server.last
        self.assertEqual(self.env.kernel_key_descriptions(),
                         sorted([self.env.credential_key_desc(), self.env.token_key_desc('')]))
        self.assertEqual(self.env.token_items(), [], 'token also cached in the Secret Service')
        tk = self.token_key('')
        self.assertPrivateUserKey(tk)
        p = self.token_payload(tk)
        self.assertSecretEqual(p['token'], req.token, 'token in the key')
        self.assertLessEqual(abs(p['expires'] - (req.server_now + 3600)), 2)
        self.assertEqual(p['lifetime'], 3600)
        self.assertFalse(key in self.env.kernel_payload(tk), 'the key is in the token key')
        self.assertTimeoutAt(tk, p['expires'])
        self.assertIn(tk.expiry, ('59m', '1h'), tk)      # as /proc/keys shows a 1 h token
        ck = self.cred_key()
        self.assertPrivateUserKey(ck)
        s = self.summary_payload(ck)
        self.assertEqual(s, {'fingerprint': p['fingerprint'], 'kind': 'api-key',
                             'organization': '', 'username': ''})
        self.assertTimeoutAt(ck, p['expires'])
        # and handed out from there
        tok = self.token(expect_new=False)
        self.assertSecretEqual(tok, req.token, 'token after login')

    def test_organization_username_and_kind(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice',
                                 '--org-slug', 'acme'], accept=False)
        acme = self.server.last.token
        self.token(['--org-id', ORG_A], expect_new=True)
        org_a = self.server.last.token
        self.assertEqual(self.env.kernel_key_descriptions(), sorted([
            self.env.credential_key_desc(), self.env.token_key_desc('acme'),
            self.env.token_key_desc(ORG_A)]))
        pa = self.token_payload(self.token_key('acme'))
        pb = self.token_payload(self.token_key(ORG_A))
        self.assertSecretEqual(pa['token'], acme, 'acme token')
        self.assertSecretEqual(pb['token'], org_a, 'ORG_A token')
        self.assertEqual(pa['fingerprint'], pb['fingerprint'])
        s = self.summary_payload(self.cred_key())
        self.assertEqual(s, {'fingerprint': pa['fingerprint'], 'kind': 'basic',
                             'organization': 'acme', 'username': 'alice'})
        for k in self.env.kernel_keys():
            self.assertPrivateUserKey(k)
        self.assertSecretEqual(self.token(expect_new=False), acme, 'default organization')
        self.assertSecretEqual(self.token(['--org-id', ORG_A], expect_new=False), org_a,
                               'ORG_A from the cache')

    def test_keyctl_chosen_by_config_and_by_environment(self):
        for how, cfg, env in (('config', 'keyctl', None),
                              ('environment', 'keystore',
                               {'GALILEO_CREDENTIAL_TOKEN_CACHE': 'keyctl'})):
            with self.subTest(how=how):
                self.fresh(cfg)
                self.login(env_extra=env)
                self.assertIsNotNone(self.token_key(''), 'no token key (%s)' % how)
                self.assertEqual(self.env.token_items(), [])
                self.token(env_extra=env, expect_new=False)
                self.token(['--org-slug', 'acme'], env_extra=env, expect_new=True)
                self.assertIsNotNone(self.token_key('acme'))
                self.assertEqual(self.env.token_items(), [])

    def test_timeouts_follow_token_and_latest_token(self):
        self.server.push(self.server.token_reply(lifetime=40))
        self.login(accept=False)
        exp1 = self.server.last.server_now + 40
        tk, ck = self.token_key(''), self.cred_key()
        self.assertTrue(tk.expiry.endswith('s'), tk)
        self.assertTimeoutAt(tk, exp1)
        self.assertTimeoutAt(ck, exp1)
        self.server.push(self.server.token_reply(lifetime=50))
        self.token(['--org-slug', 'acme'], expect_new=True)
        exp2 = self.server.last.server_now + 50
        self.assertTimeoutAt(self.token_key('acme'), exp2)
        self.assertTimeoutAt(self.token_key(''), exp1)
        self.assertTimeoutAt(self.cred_key(), exp2)

    def test_short_lived_token_vanishes_by_itself(self):
        self.server.push(self.server.token_reply(lifetime=3))
        self.login()
        expires = self.server.last.server_now + 3
        self.assertIsNotNone(self.token_key(''), 'a 3 s token is not cached')
        # the Date correction may put the local expiry up to a second later
        time.sleep(max(0, expires + 2 - time.time()))
        self.assertIsNone(self.token_key(''), 'the token key outlived its expiry')
        self.assertIsNone(self.cred_key(), 'the summary key outlived the only token')
        # a new call exchanges again and caches the new token
        tok = self.token(expect_new=True)
        self.assertSecretEqual(self.token_payload(self.token_key(''))['token'], tok,
                               'new token in the key')


class CacheHit(KeyctlBase):
    """A cache hit needs neither the keyring nor the HTTP stack."""

    def login_alice(self):
        """basic credential with a username: the hits must find it in the summary"""
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice'], accept=False)

    def hits(self, env_extra):
        """token, git get, docker get: each the cached token, no exchange"""
        before = self.server.count
        cached = self.server.last.token
        results = {}
        rc, out, err = self.env.run(['token'], env_extra=env_extra)
        self.assertEqual(rc, 0, 'token: %s' % err[-500:])
        self.assertSecretEqual(out, cached + '\n', 'token output')
        results['token'] = err
        rc, out, err = self.git_get(env_extra)
        self.assertEqual(rc, 0, 'git get: %s' % err[-500:])
        d, _ = parse_git_output(out)
        self.assertEqual(d.get('username'), 'alice')
        self.assertSecretEqual(d.get('password'), cached, 'git password')
        results['git get'] = err
        rc, out, err = self.docker_get(env_extra)
        self.assertEqual(rc, 0, 'docker get: %s' % err[-500:])
        doc = json.loads(out)
        self.assertEqual(doc['ServerURL'], self.url)
        self.assertEqual(doc['Username'], 'alice')
        self.assertSecretEqual(doc['Secret'], cached, 'docker Secret')
        results['docker get'] = err
        self.assertEqual(self.server.count, before, 'a cache hit asked the endpoint')
        return results

    def test_plain_hits_are_silent(self):
        self.login_alice()
        for what, err in self.hits(None).items():
            self.assertEqual(err, '', what)

    def test_hits_load_nothing_heavy(self):
        self.login_alice()
        for what, err in self.hits({'LD_DEBUG': 'files'}).items():
            self.assertIn('calling init', err, 'LD_DEBUG=files printed nothing (%s)' % what)
            heavy = loaded_heavy(err)
            self.assertFalse(heavy, '%s loaded heavy libraries (%d lines), e.g. %s' % (
                what, len(heavy), heavy[:4]))
        # the check can see them: a refresh loads both modules
        rc, out, err = self.env.run(['token', '--refresh'], env_extra={'LD_DEBUG': 'files'})
        self.assertEqual(rc, 0)
        for name in ('keystore-secret-service.so', 'http-curl.so', 'libcurl', 'libsecret'):
            self.assertIn(name, err, 'a refresh did not load %s' % name)

    def test_hits_need_no_dbus(self):
        self.login_alice()
        for what, err in self.hits({'DBUS_SESSION_BUS_ADDRESS': DEAD_BUS}).items():
            self.assertEqual(err, '', what)
        # without the cache the dead bus is noticed
        self.assertFails(self.env.run(['token', '--refresh'],
                                      env_extra={'DBUS_SESSION_BUS_ADDRESS': DEAD_BUS}), 6)


class Removal(KeyctlBase):
    """Section 5, 6 and 8: what drops which keys; other servers' keys stay."""

    def two_servers(self):
        key = self.login()
        self.token(['--org-slug', 'acme'], expect_new=True)
        mine = self.descs_of(self.url)
        self.assertEqual(mine, sorted([self.env.credential_key_desc(),
                                       self.env.token_key_desc(''),
                                       self.env.token_key_desc('acme')]))
        other = self.login_other_server()
        return key, other

    def assertAllGone(self, other):
        self.assertEqual(self.descs_of(self.url), [], 'keys of the server remain')
        self.assertEqual(self.descs_of(self.other), other, 'keys of another server changed')

    def test_logout(self):
        _, other = self.two_servers()
        self.assertEqual(self.env.run(['logout']), (0, '', ''))
        self.assertAllGone(other)

    def test_git_erase_without_password(self):
        _, other = self.two_servers()
        rc, out, err = self.env.run(['erase'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertAllGone(other)
        self.assertEqual(self.env.key_items(server=self.url), [])

    def test_git_erase_with_stored_password(self):
        key, other = self.two_servers()
        rc, out, err = self.env.run(['erase'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + key))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertAllGone(other)

    def test_git_erase_with_cached_token_drops_that_token_only(self):
        self.login()
        tok = self.server.last.token
        self.token(['--org-slug', 'acme'], expect_new=True)
        acme = self.server.last.token
        other = self.login_other_server()
        # any other password: nothing happens
        rc, out, err = self.env.run(['erase'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token',
            'password=' + self.env.new_key('gx-test-')))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(len(self.descs_of(self.url)), 3)
        rc, out, err = self.env.run(['erase'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + tok))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(self.descs_of(self.url), sorted([self.env.credential_key_desc(),
                                                          self.env.token_key_desc('acme')]))
        self.assertEqual(self.descs_of(self.other), other)
        self.assertEqual(len(self.env.key_items(server=self.url)), 1, 'credential erased')
        self.assertSecretEqual(self.token(['--org-slug', 'acme'], expect_new=False), acme,
                               'other organization still cached')
        new = self.token(expect_new=True)
        self.assertTrue(new != tok, 'the erased token came back')

    def test_docker_erase(self):
        _, other = self.two_servers()
        rc, out, err = self.env.run(['erase'], argv0=DOCKER, input=self.url + '\n')
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertAllGone(other)

    def assertReplaced(self, old_fp, new_key, other):
        """
        no token of the old credential; summary gone or of the new one; the
        new key's own token (from the store's check, galileo-credential(1) GIT DIALECT) used
        """
        for d in self.descs_of(self.url):
            if ':token:' in d:
                self.assertNotEqual(self.token_payload(self.env.kernel_key(d))['fingerprint'],
                                    old_fp, 'a token of the old credential remains')
        ck = self.cred_key()
        if ck is not None:
            self.assertNotEqual(self.summary_payload(ck)['fingerprint'], old_fp,
                                'summary still describes the old credential')
        self.assertEqual(self.descs_of(self.other), other)
        self.assertEqual(self.server.last.credential, ('api-key', new_key))
        self.assertSecretEqual(self.token(expect_new=False), self.server.last.token,
                               'the new credential\'s token')

    def test_login_of_new_credential_replaces_tokens(self):
        self.login()
        old = self.token_payload(self.token_key(''))
        self.token(['--org-slug', 'acme'], expect_new=True)
        other = self.login_other_server()
        key2 = self.login()
        new = self.token_payload(self.token_key(''))
        self.assertSecretEqual(new['token'], self.server.last.token, 'new token cached')
        self.assertNotEqual(new['fingerprint'], old['fingerprint'])
        self.assertIsNone(self.token_key('acme'), 'old acme token remains')
        self.assertEqual(self.summary_payload(self.cred_key())['fingerprint'],
                         new['fingerprint'])
        self.assertEqual(self.descs_of(self.other), other)
        self.token(expect_new=False)
        self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key2))

    def test_git_store_of_new_credential_drops_tokens(self):
        _, other = self.two_servers()
        old_fp = self.summary_payload(self.cred_key())['fingerprint']
        key2 = self.env.new_key()
        self.server.accept_key(key2)
        rc, out, err = self.env.run(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + key2))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertReplaced(old_fp, key2, other)

    def test_git_store_echo_of_cached_token_keeps_everything(self):
        key = self.login()
        tok = self.server.last.token
        before = self.descs_of(self.url)
        rc, out, err = self.env.run(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + tok))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(self.descs_of(self.url), before)
        self.assertSecretEqual(self.env.key_items()[0].secret, key, 'stored credential')
        self.token(expect_new=False)

    def test_docker_store_of_new_credential_drops_tokens(self):
        _, other = self.two_servers()
        old_fp = self.summary_payload(self.cred_key())['fingerprint']
        key2 = self.env.new_key()
        self.server.accept_key(key2)
        rc, out, err = self.env.run(['store'], argv0=DOCKER, input=json.dumps(
            {'ServerURL': self.url, 'Username': 'alice', 'Secret': key2}))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertReplaced(old_fp, key2, other)


class Refused(KeyctlBase):
    """The kernel refuses keyctl (containers' seccomp): the keystore tier instead."""

    def wrapper(self, errno_name):
        wrapper, why = refused_wrapper(errno_name)
        if wrapper is None:
            self.skipTest(why)
        return wrapper

    def falls_back(self, errno_name):
        w = self.wrapper(errno_name)
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login'], input=key + '\n', wrapper=w)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "galileo-credential: logged in to '%s'\n" % self.url)
        toks = self.env.token_items()
        self.assertEqual([t.attributes for t in toks], [{'server': self.url,
                                                         'organization': ''}])
        self.assertEqual(self.env.kernel_keys(), [])
        login_token = self.server.last.token
        rc, out, err = self.env.run(['token'], wrapper=w)
        self.assertEqual((rc, err), (0, ''))
        self.assertSecretEqual(out, login_token + '\n', 'token from the keystore cache')
        self.assertEqual(self.server.count, 1)
        # a cold one: exchanged, cached in the keystore, silently
        rc, out, err = self.env.run(['token', '--org-slug', 'acme'], wrapper=w)
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.count, 2)
        self.assertEqual(len(self.env.token_items(organization='acme')), 1)
        rc, out2, err = self.env.run(['token', '--org-slug', 'acme'], wrapper=w)
        self.assertEqual((rc, err), (0, ''))
        self.assertSecretEqual(out2, out, 'second token')
        self.assertEqual(self.server.count, 2, 'second call was not served from the keystore')
        self.assertEqual(self.env.kernel_keys(), [])
        # status still lists them; logout still removes them
        rc, out, err = self.env.run(['status', '--json'], wrapper=w)
        self.assertEqual(rc, 0, err)
        orgs = sorted(t['organization'] for t in json.loads(out)['servers'][0]['tokens'])
        self.assertEqual(orgs, ['', 'acme'])
        self.assertEqual(self.env.run(['logout'], wrapper=w), (0, '', ''))
        self.assertEqual(self.env.keyring_items(), [])

    def test_eperm_falls_back_to_keystore_silently(self):
        self.falls_back('EPERM')

    def test_enosys_falls_back_to_keystore_silently(self):
        self.falls_back('ENOSYS')

    def test_debug_says_kernel_keyring_unavailable(self):
        w = self.wrapper('EPERM')
        self.login(args=['--no-verify'])
        rc, out, err = self.env.run(['token'], wrapper=w,
                                    env_extra={'GALILEO_CREDENTIAL_DEBUG': '1'})
        self.assertEqual(rc, 0, err)
        lines = err.rstrip('\n').split('\n')
        self.assertTrue(all(l.startswith(DEBUG) for l in lines), lines)
        about = [l for l in lines if re.search(r'kernel keyring', l, re.I)]
        self.assertEqual(len(about), 1, lines)
        self.assertRegex(about[0], r'(?i)unavailable|not available')

    def test_wrapper_refuses_keyctl(self):
        for errno_name in ('EPERM', 'ENOSYS'):
            with self.subTest(errno=errno_name):
                self.wrapper(errno_name)        # checks the wrapper with keyctl(1)


class HeadlessKey(KeyctlBase):
    """Section 8: GALILEO_API_KEY without D-Bus, cached in @u under its fingerprint."""

    def test_cached_without_dbus_and_tied_to_the_key(self):
        key1, key2 = self.env.new_key(), self.env.new_key()
        for bus in (None, DEAD_BUS):
            with self.subTest(dbus=bus):
                self.fresh()
                self.server.accept_key(key1)
                self.server.accept_key(key2)
                env1 = {'GALILEO_API_KEY': key1, 'DBUS_SESSION_BUS_ADDRESS': bus}
                env2 = dict(env1, GALILEO_API_KEY=key2)
                t1 = self.token(env_extra=env1, expect_new=True)
                self.assertEqual(self.server.last.credential, ('api-key', key1))
                self.assertSecretEqual(self.token(env_extra=env1, expect_new=False), t1,
                                       'cached token')
                payload = self.env.kernel_payload(self.token_key(''))
                self.assertIsNotNone(payload, 'no token key')
                self.assertFalse(key1 in payload, 'GALILEO_API_KEY written into the key')
                self.token(env_extra=env2, expect_new=True)
                self.assertEqual(self.server.last.credential, ('api-key', key2))
                self.token(env_extra=env2, expect_new=False)


class SingleFlight(KeyctlBase):
    """Section 8: at most one exchange per (server, organization) at a time."""

    def test_simultaneous_cold_calls_make_one_exchange(self):
        n = 24
        self.login(args=['--no-verify'])
        self.server.push(delayed(self.server.token_reply(), 0.8), times=None)
        procs = [self.env.spawn(['token']) for _ in range(n)]
        results = [p.finish() for p in procs]
        for i, (rc, out, err) in enumerate(results):
            self.assertEqual((rc, err), (0, ''), 'call #%d' % i)
        self.assertEqual(self.server.count, 1, 'exchanges made by %d simultaneous calls' % n)
        tok = self.server.last.token
        for i, r in enumerate(results):
            self.assertSecretEqual(r.stdout, tok + '\n', 'token of call #%d' % i)

    def test_killed_lock_holder_does_not_wedge_others(self):
        self.login(args=['--no-verify'])
        self.server.push(delayed(self.server.token_reply(), 5))
        self.server.push(self.server.token_reply())
        holder = self.env.spawn(['token'])
        deadline = time.time() + 10
        while self.server.count < 1 and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.server.count, 1, 'the first call never reached the endpoint')
        holder.kill(signal.SIGKILL)
        self.assertEqual(holder.finish().returncode, -signal.SIGKILL)
        t0 = time.time()
        tok = self.token()
        elapsed = time.time() - t0
        self.assertLess(elapsed, 2.5, 'waited for a dead lock holder')
        self.assertEqual(self.server.count, 2)
        self.assertSecretEqual(tok, self.server.last.token, 'token of the second call')


class LockDir(KeyctlBase):
    """Where the lock files live, and what happens when that is not private."""

    def assertPrivateDir(self, d):
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode), d)
        self.assertEqual(st.st_uid, os.getuid(), d)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, '%s mode %o' % (
            d, stat.S_IMODE(st.st_mode)))

    def lock_files(self, d):
        """
        the exchange locks (lock-FP); the write locks (write-FP), the notes
        of failed background refreshes (fail-FP) and, in the cache directory,
        the write generations (generation-FP) are checked alike
        """
        names = sorted(os.listdir(d))
        for n in names:
            self.assertRegex(n, r'^(lock|write|fail|generation)-[0-9a-f]{16}$')
            st = os.lstat(os.path.join(d, n))
            self.assertTrue(stat.S_ISREG(st.st_mode), n)
            self.assertEqual(st.st_uid, os.getuid(), n)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, '%s mode %o' % (
                n, stat.S_IMODE(st.st_mode)))
        return [n for n in names if n.startswith('lock-')]

    def test_lock_files_in_runtime_dir(self):
        self.login(args=['--no-verify'])
        self.token(expect_new=True)
        self.assertPrivateDir(self.lock_dir())
        self.assertEqual(len(self.lock_files(self.lock_dir())), 1)
        self.token(['--org-slug', 'acme'], expect_new=True)
        self.token(['--refresh'], expect_new=True)
        self.token(['--org-slug', 'acme', '--refresh'], expect_new=True)
        self.assertEqual(len(self.lock_files(self.lock_dir())), 2,
                         'one lock file per (server, organization)')

    def test_no_runtime_dir_locks_in_a_dir_of_the_users_own(self):
        """
        Without XDG_RUNTIME_DIR: /run/user/UID when it is the user's, else
        the user's cache directory; never /tmp/galileo-credential-UID,
        which another user can make first.
        """
        tmp = '/tmp/galileo-credential-%d' % os.getuid()
        existed = os.path.lexists(tmp)
        before = set(os.listdir(tmp)) if existed and os.path.isdir(tmp) else set()
        run = '/run/user/%d' % os.getuid()
        want = (os.path.join(run, 'galileo-credential')
                if os.path.isdir(run) and os.stat(run).st_uid == os.getuid()
                else os.path.join(self.env.xdg_cache, 'galileo-credential'))
        self.login(args=['--no-verify'])
        rc, out, err = self.env.run(['token', '--refresh'], env_extra={'XDG_RUNTIME_DIR': None})
        self.assertEqual((rc, err), (0, ''))
        self.assertPrivateDir(want)
        self.assertIn(len([n for n in os.listdir(want) if n.startswith('lock-')]), (1, 2))
        if want.startswith(self.env.root):
            self.lock_files(want)
        self.assertEqual(os.path.lexists(tmp), existed, 'made a lock directory in /tmp')
        if existed and os.path.isdir(tmp):
            self.assertEqual(set(os.listdir(tmp)), before, 'locked in /tmp')

    def assertFailsClosed(self):
        """
        A lock directory that is not private is not used: stores and
        refreshes fail with one line (exit 1) and change nothing; a cached
        token is still served.
        """
        key = self.login()
        self.token(expect_new=False)
        self.make_lock_dir_unsafe()
        try:
            count = self.server.count
            self.assertSecretEqual(self.env.run(['token'])[1], self.server.last.token + '\n',
                                   'token')
            for args, input_ in ((['token', '--refresh'], None), (['logout'], None),
                                 (['login', '--no-verify'], self.env.new_key() + '\n')):
                with self.subTest(args=args):
                    res = self.env.run(args, input=input_)
                    self.assertFails(res, 1, 'cannot lock in', 'not private')
            self.assertEqual(self.server.count, count, 'exchanged without the lock')
            self.assertEqual(len(self.env.key_items()), 1)
            self.assertSecretEqual(self.env.key_items()[0].secret, key, 'stored key')
        finally:
            shutil.rmtree(self.lock_dir(), ignore_errors=True)

    def test_shared_dir_fails_closed(self):
        for mode in (0o777, 0o750):
            with self.subTest(mode='%o' % mode):
                self.fresh()
                self.make_lock_dir_unsafe = lambda: os.chmod(self.lock_dir(), mode)
                self.assertFailsClosed()

    def test_dir_of_another_owner_fails_closed(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to make a directory of another owner')
        self.make_lock_dir_unsafe = lambda: os.chown(self.lock_dir(), 65534, 65534)
        self.assertFailsClosed()

    def test_wait_for_lock_is_bounded_by_timeout(self):
        self.env.write_config(token_cache=None, extra='timeout = 1\n')
        self.login(args=['--no-verify'])
        self.token(expect_new=True)
        names = self.lock_files(self.lock_dir())
        self.assertTrue(names, 'no lock file')
        held = []
        try:
            for n in names:
                f = open(os.path.join(self.lock_dir(), n), 'r+')
                held.append(f)
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)   # POSIX locks too
            t0 = time.time()
            res = self.env.run(['token', '--refresh'])
            elapsed = time.time() - t0
        finally:
            for f in held:
                f.close()
        self.assertFails(res, 5, 'timed out', 'another galileo-credential')
        self.assertTrue(0.9 <= elapsed <= 3.5, 'gave up after %.1f s with timeout = 1' % elapsed)
        self.assertEqual(self.server.count, 1, 'exchanged without the lock')


class Status(KeyctlBase):

    def test_status_lists_kernel_cached_tokens(self):
        self.login()
        self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertEqual(self.env.token_items(), [])
        before = int(time.time())
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual((rc, err), (0, ''))
        s = json.loads(out)['servers']
        self.assertEqual([x['server'] for x in s], [self.url])
        tokens = s[0]['tokens']
        self.assertEqual(sorted(t['organization'] for t in tokens), ['', 'acme'])
        for t in tokens:
            self.assertTrue(3500 <= t['seconds_left'] <= 3600, t)
            self.assertLessEqual(abs(parse_rfc3339(t['expires_at']) - (before + 3600)), 5)
        rc, out, err = self.env.run(['status'])
        self.assertEqual((rc, err), (0, ''))
        lines = [l.strip() for l in out.split('\n') if l.strip().startswith('token:')]
        self.assertEqual(len(lines), 2, out)
        self.assertTrue(any(l.startswith('token: organization=acme ') for l in lines), lines)


if __name__ == '__main__':
    harness.main()

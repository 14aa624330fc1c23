#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The helper against KWallet 5.103 (kwalletd5, Debian 12) as its Secret
Service (galileo-credential(1) SECRET SERVICE PROVIDERS; keystore/secret_service.c),
one kwalletd5 per module (kwallet.KWalletEnv: headless, a private bus with
no service activation, the wallet opened as pam_kwallet5 does; see
KWALLET-NOTES.md).  The scenarios of test_keepassxc.py, as they apply, on
the test base they share (provider.ProviderCase):

  1. login / token / git get / docker get / status / logout work, and the
     items carry the contract's attributes;
  2. replacing the credential (a second login, a git store) and the
     keystore-cached token (refreshes) leaves one item per slot, a new one
     each time (never overwritten in place);
  3. the wallet closed (locked): every command that needs the keystore
     fails with exit 6 (docker: exit 1, the line on stdout) within
     timeout + 1.5 s (KWallet's password dialog is shown nowhere and never
     answered), and a token in the kernel tier is still served at once;
  4. secrets read back exactly: KWallet expands no placeholder, so what
     KeePassXC refuses ({USERNAME}, {REF:...}) is stored and sent as typed,
     and so are quotes, spaces and non-ASCII text;
  5. logout leaves nothing in the wallet (KWallet keeps no deleted items);
  6. the 5-second write-back window: a kwalletd5 killed within it loses
     the new credential, and the helper then says nothing is stored; one
     killed after it keeps it;
  7. KWallet fails about 1% of its Secret Service sessions (KDE bug
     514194): a few hundred `token --refresh` and `login` calls in a row,
     none failing, since a call that fails on its session runs again on a
     fresh one (at most twice).  How long they take is printed.

`timeout = 3` in the config.  Needs kwalletd5 (libkf5wallet-bin) and the
QCA plugins (libqca-qt5-2-plugins); skipped with the reason when missing.
"""

import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import kwallet  # noqa: E402
import provider  # noqa: E402
from harness import git_lines, parse_git_output  # noqa: E402
from provider import (CONTRACT_KEY_ATTRS, CONTRACT_TOKEN_ATTRS, DOCKER,  # noqa: E402
                      GIT, contract_attrs, token_of)

WRITE_BACK = 5          # seconds KWallet keeps a change in memory before writing it
STRESS_TOKENS = 200
STRESS_LOGINS = 150
# the sanitizer build runs about ten times slower: fewer calls there
SANITIZED_SHARE = 4


def sanitized():
    """the program was built with --enable-sanitizers"""
    with open(harness.program_path(), 'rb') as f:
        return b'__asan_init' in f.read()


def setUpModule():
    provider.setUpTestModule(kwallet.KWalletEnv, kwallet.missing())


def tearDownModule():
    provider.tearDownEnvModule()


class KWalletCase(provider.ProviderCase):
    """Before each test: kwalletd5 running with the wallet open, then the harness's reset."""

    def settle(self, kw):
        self.kw = kw
        if kw.daemon is None or kw.daemon.poll() is not None or not kw.is_open():
            kw.restart_daemon()

    def wallet_snapshot(self):
        """our items without their object paths (kwalletd5 numbers them anew at each start)"""
        return sorted(i[1:] for i in self.env.keyring_snapshot())

    def kill_daemon(self):
        """kwalletd5 killed as by a crash or a power cut (SIGKILL), then started again"""
        self.kw.daemon.send_signal(signal.SIGKILL)
        self.kw.daemon.wait(10)
        self.kw.daemon = None
        self.kw.stop_daemon()
        self.kw.start_daemon()
        self.kw.open_wallet()


# --------------------------------------------------------------------------
# 1. the commands

class Commands(KWalletCase):

    def test_login_token_git_docker_status_logout(self):
        self.config()
        key = self.login()
        self.assertContractKey(key)
        tok = self.token(expect_new=False)
        self.assertSecretEqual(tok, self.server.last.token, 'token')
        self.assertContractToken(tok)
        self.assertGetsServe(tok)
        rc, out, err = self.env.run(['status'])
        self.assertEqual((rc, err), (0, ''), 'status')
        body = [l.strip() for l in out.rstrip('\n').split('\n')[1:]]
        self.assertIn('keystore: secret-service', body)
        self.assertEqual(len([l for l in body if l.startswith('token:') and
                              'tier=keystore' in l]), 1, out)
        self.assertEqual(self.env.run(['logout']).returncode, 0)
        self.assertEqual(self.env.key_items(), [])
        self.assertEqual(self.env.token_items(), [])
        self.assertEqual(self.server.count, 1, 'only login asked the endpoint')

    def test_basic_credential_with_username_and_organization(self):
        self.config()
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice', '--org-slug', 'acme'],
                   accept=False)
        item = self.assertOneKey(pw)
        self.assertEqual(contract_attrs(item, CONTRACT_KEY_ATTRS),
                         {'server': self.url, 'kind': 'basic', 'username': 'alice',
                          'organization': 'acme'})
        self.assertCredentialSent(('basic', 'alice', pw))
        self.assertEqual([contract_attrs(t, CONTRACT_TOKEN_ATTRS) for t in self.env.token_items()],
                         [{'server': self.url, 'organization': 'acme'}])


# --------------------------------------------------------------------------
# 2. replacing: one item per slot, a new one each time

class Replacing(KWalletCase):

    def test_second_login_and_git_store_replace(self):
        self.config()
        old = self.login()
        first = self.assertOneKey(old).path
        new = self.login()
        item = self.assertOneKey(new)
        self.assertNotEqual(item.path, first, 'replaced in place')
        self.assertEqual(len(self.env.token_items()), 1)
        self.assertUsed(new, 'after the second login')
        newer = self.env.new_key()
        self.server.accept_key(newer)
        res = self.env.run(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + newer))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertOneKey(newer)
        self.assertUsed(newer, 'after git store')

    def test_keystore_token_refreshes(self):
        self.env.refresh_mode = 'inline'
        self.config()
        key = self.login()
        for n in (1, 2):
            tok = self.token(['--refresh'], expect_new=True)
            toks = self.env.token_items()
            self.assertEqual(len(toks), 1, 'refresh #%d: %r' % (n, toks))
            self.assertSecretEqual(token_of(toks[0]), tok, 'cached token')
        self.assertCredentialSent(('api-key', key))
        self.token(['--refresh', '--org-slug', 'acme'], expect_new=True)
        self.token(['--refresh', '--org-slug', 'acme'], expect_new=True)
        self.assertEqual(sorted(t.attributes['organization'] for t in self.env.token_items()),
                         ['', 'acme'])


# --------------------------------------------------------------------------
# 3. the wallet closed

class Locked(KWalletCase):

    def test_every_command_gives_up_within_the_timeout(self):
        self.config()
        key = self.login()
        tok = self.token(expect_new=False)
        before = self.wallet_snapshot()
        new = self.env.new_key()
        self.server.accept_key(new)
        count = self.server.count
        self.kw.close_wallet()
        timings = {}
        try:
            started = [(name, dialect, time.monotonic(), self.env.spawn(**kw))
                       for name, kw, dialect in self.keystore_rows(new)]
            for name, dialect, t0, sp in started:
                res = sp.finish()
                timings[name] = time.monotonic() - t0
                with self.subTest(row=name):
                    self.assertBoundedFailure(name, dialect, res, timings[name])
            self.assertEqual(self.server.count, count)
        finally:
            sys.stderr.write('locked: %s\n' % ', '.join(
                '%s %.2fs' % kv for kv in timings.items()))
            # the password dialogs asked for stay pending in kwalletd5 (shown
            # nowhere); a new session starts it again, as logging in does
            self.kw.restart_daemon()
        if self.wallet_snapshot() != before:        # holds secrets: never shown
            self.fail('the items changed while the wallet was closed')
        self.assertSecretEqual(self.token(expect_new=False), tok, 'cached token')
        self.assertUsed(key, 'after opening the wallet again')

    def test_kernel_tier_token_served_while_locked(self):
        if harness.kernel_keys_usable():
            self.skipTest(harness.kernel_keys_usable())
        self.config(token_cache=None)
        key = self.login()
        tok = self.token()
        self.assertEqual(self.env.token_items(), [], 'the token went to the keystore')
        count = self.server.count
        self.kw.close_wallet()
        try:
            t0 = time.monotonic()
            self.assertSecretEqual(self.token(expect_new=False), tok, 'token while locked')
            self.assertLess(time.monotonic() - t0, 1.0)
            rc, out, err = self.git_get()
            self.assertEqual((rc, err), (0, ''), 'git get while locked')
            self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git')
            t0 = time.monotonic()
            res = self.env.run(['token', '--refresh'])
            self.assertBoundedFailure('token --refresh', 'native', res, time.monotonic() - t0)
            self.assertEqual(self.server.count, count)
        finally:
            self.kw.restart_daemon()
        self.assertOneKey(key)
        self.assertUsed(key, 'after opening the wallet again')


# --------------------------------------------------------------------------
# 4. exact secrets

class ExactSecrets(KWalletCase):

    def test_what_keepassxc_would_expand_is_kept_as_typed(self):
        self.config()
        for prefix in ('pw{USERNAME}x-', 'pw{TITLE}x-', 'pw{REF:U@I:0}x-', 'p w"\'\\x-',
                       'p\u00e4\u00df\u20ac\u4e2d-'):
            with self.subTest(n=len(prefix)):
                pw = self.env.new_key(prefix)      # a secret: never in any output
                self.server.accept_basic('alice', pw)
                self.login(key=pw, args=['--kind', 'basic', '--username', 'alice'],
                           accept=False)
                self.assertOneKey(pw)
                self.token(['--refresh'], expect_new=True)
                self.assertCredentialSent(('basic', 'alice', pw))


# --------------------------------------------------------------------------
# 5. logout

class Logout(KWalletCase):

    def test_logout_leaves_nothing_in_the_wallet(self):
        self.config()
        self.login()
        self.login()        # a replaced credential too
        self.assertEqual(self.env.run(['logout']).returncode, 0)
        r = self.kw.secret_tool(['search', '--all', 'server', self.url])
        self.assertNotIn('Galileo', r.stdout)
        self.assertEqual(self.env.key_items(), [])
        self.assertEqual(self.env.token_items(), [])


# --------------------------------------------------------------------------
# 6. the 5-second write-back window

class WriteBack(KWalletCase):

    def test_a_daemon_killed_within_the_window_loses_the_new_credential(self):
        # documents KWallet: a change lives in kwalletd5's memory for 5 s
        # before it is written; the helper never serves a wrong credential
        # after such a loss, it says nothing is stored
        self.config()
        old = self.login()
        time.sleep(WRITE_BACK + 1)      # the old one is on disk
        new = self.login()
        self.kill_daemon()
        keys = self.env.key_items()
        self.assertFalse(any(i.secret in (old, new) for i in keys if i.secret),
                         'a credential survived the kill inside the window')
        self.assertFails(self.env.run(['token', '--refresh']), 3, 'no credential stored')
        rc, out, err = self.env.run(['list'], argv0=DOCKER)
        self.assertEqual(json.loads(out), {})

    def test_a_daemon_killed_after_the_window_keeps_it(self):
        self.config()
        self.login()
        new = self.login()
        time.sleep(WRITE_BACK + 1)
        self.kill_daemon()
        self.assertOneKey(new)
        self.assertUsed(new, 'after the kill')


# --------------------------------------------------------------------------
# 7. a few hundred calls in a row

class Stress(KWalletCase):

    def test_hundreds_of_calls_without_a_failure(self):
        self.env.refresh_mode = 'inline'
        self.config()
        self.login()
        failed = []
        tokens, logins = STRESS_TOKENS, STRESS_LOGINS
        if sanitized():
            tokens, logins = tokens // SANITIZED_SHARE, logins // SANITIZED_SHARE
        t0 = time.monotonic()
        for n in range(tokens):
            res = self.env.run(['token', '--refresh'])
            if res.returncode != 0:
                failed.append(('token', n, res.stderr))
        t_tokens = time.monotonic() - t0
        t0 = time.monotonic()
        key = None
        for n in range(logins):
            key = self.env.new_key()
            self.server.accept_key(key)
            res = self.env.run(['login'], input=key + '\n')
            if res.returncode != 0:
                failed.append(('login', n, res.stderr))
        t_logins = time.monotonic() - t0
        sys.stderr.write('KWallet: %d token --refresh in %.1f s, %d login in %.1f s, %d failed\n'
                         % (tokens, t_tokens, logins, t_logins, len(failed)))
        self.assertEqual(failed, [])
        self.assertOneKey(key)
        self.assertEqual(len(self.env.token_items()), 1)
        self.assertUsed(key, 'after the last login')


if __name__ == '__main__':
    harness.main()

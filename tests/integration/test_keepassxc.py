#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The helper against KeePassXC 2.7.4 as its Secret Service (galileo-credential(1) SECRET SERVICE
PROVIDERS; keystore/secret_service.c), one KeePassXC per module (keepassxc.KeePassXCEnv: Xvfb, a
private bus with no service activation, a throwaway database; see KEEPASSXC-NOTES.md):

  1. login / token / git get / docker get / status / logout work, and the
     items carry the contract's attributes (KeePassXC adds Title, UserName,
     URL, Notes, Uuid and Path of its own: ignored here);
  2. replacing the credential (a second login, from a new process) and the
     keystore-cached token (refreshes) raises no dialog and leaves one item
     per slot: KeePassXC 2.7 asks about any in-place replace of an item
     another process made, so the program writes new and deletes old;
  3. a locked database: every command that needs the keystore fails with
     exit 6 (docker: exit 1, the line on stdout) within timeout + 1.5 s,
     and a token in the kernel tier is still served at once; unlocking
     later finds everything as it was;
  4. ConfirmAccessItem on, nobody answering the Access Request: exit 6
     within timeout + 1.5 s; a person who allows it in time makes it work;
  5. a password KeePassXC would expand ({USERNAME}, {TITLE}, {REF:...}):
     the store fails with exit 6, one line naming the Secret Service, and
     the previous credential stays in use;
  6. logout: KeePassXC moves the item to its recycle bin, where the secret
     stays (what the man page must warn about).

`timeout = 3` in the config wherever a prompt is involved.  KeePassXC
leaves its dialog up after Prompt.Dismiss (KEEPASSXC-NOTES.md), so tests
press Escape in what is left (dismiss_all()) before going on.

Needs keepassxc (with keepassxc-cli), Xvfb and xdotool (Debian: apt-get
install keepassxc xvfb xdotool); skipped with the reason when missing.
"""

import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import keepassxc  # noqa: E402
import provider  # noqa: E402
from harness import git_lines, parse_git_output  # noqa: E402
from provider import (CONTRACT_KEY_ATTRS, CONTRACT_TOKEN_ATTRS, GENERATION,  # noqa: E402
                      GIT, LOCKED, SLACK, TIMEOUT, WAITING, contract_attrs, token_of)

DENIED = 'refused access'
KEPT = ('Secret Service', 'did not keep the secret as written')


def setUpModule():
    provider.setUpTestModule(keepassxc.KeePassXCEnv, keepassxc.missing())


def tearDownModule():
    provider.tearDownEnvModule()


class KeePassXCCase(provider.ProviderCase):
    """
    Before each test: KeePassXC unlocked, without confirmations and without
    dialogs (whatever an earlier test left), then the harness's reset.
    """

    def settle(self, kpxc):
        self.kpxc = k = kpxc
        k.dismiss_all()
        if k.settings['confirm_access'] or k.settings['confirm_delete']:
            k.restart(confirm_access=False, confirm_delete=False)
        if k.is_locked():
            k.unlock()
        k.dismiss_all()

    # -- running, with an eye on dialogs ---------------------------------------
    def run_watched(self, args, **kw):
        """
        Run the program (as env.spawn) while looking at the display for
        dialogs; (RunResult, seconds it took, titles of dialogs seen while
        it ran and right after).
        """
        seen = []
        t0 = time.monotonic()
        sp = self.env.spawn(args, **kw)
        while sp.proc.poll() is None and time.monotonic() - t0 < harness.RUN_TIMEOUT:
            seen += self.kpxc.dialogs()
            time.sleep(0.02)
        res = sp.finish()
        took = time.monotonic() - t0
        seen += self.kpxc.dialogs()
        return res, took, seen

    def assertNoDialog(self, seen, what):
        self.assertEqual(seen, [], '%s: KeePassXC showed a dialog' % what)


# --------------------------------------------------------------------------
# 1. the commands

class Commands(KeePassXCCase):

    def test_login_token_git_docker_status_logout(self):
        self.config()
        key, seen = self.env.new_key(), []
        self.server.accept_key(key)
        res, _, dialogs = self.run_watched(['login'], input=key + '\n')
        seen += dialogs
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertContractKey(key)
        # the token login obtained is cached in the keystore: one item
        tok = self.token(expect_new=False)
        self.assertSecretEqual(tok, self.server.last.token, 'token')
        item = self.assertContractToken(tok)
        self.assertRegex(item.generation or '', GENERATION, 'generation attribute')

        doc = self.assertGetsServe(tok)
        self.assertEqual(doc['ServerURL'], self.url)

        rc, out, err = self.env.run(['status'])
        self.assertEqual((rc, err), (0, ''), 'status')
        lines = out.rstrip('\n').split('\n')
        self.assertEqual(lines[0], self.url)
        body = [l.strip() for l in lines[1:]]
        self.assertIn('keystore: secret-service', body)
        self.assertIn('kind: api-key', body)
        self.assertEqual(len([l for l in body if l.startswith('token:') and
                              'tier=keystore' in l]), 1, out)
        seen += self.kpxc.dialogs()

        res, _, dialogs = self.run_watched(['logout'])
        seen += dialogs
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.env.key_items(), [])
        self.assertEqual(self.env.token_items(), [])
        self.assertNotIn(self.key_label, self.kpxc.exposed_entries())
        self.assertEqual(self.server.count, 1, 'only login asked the endpoint')
        self.assertNoDialog(seen, 'login .. logout')

    def test_basic_credential_with_username_and_organization(self):
        self.config()
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        res, _, seen = self.run_watched(['login', '--kind', 'basic', '--username', 'alice',
                                         '--org-slug', 'acme'], input=pw + '\n')
        self.assertEqual(res.returncode, 0, res.stderr)
        item = self.assertOneKey(pw)
        self.assertEqual(contract_attrs(item, CONTRACT_KEY_ATTRS),
                         {'server': self.url, 'kind': 'basic', 'username': 'alice',
                          'organization': 'acme'})
        self.assertCredentialSent(('basic', 'alice', pw))
        toks = self.env.token_items()
        self.assertEqual([contract_attrs(t, CONTRACT_TOKEN_ATTRS) for t in toks],
                         [{'server': self.url, 'organization': 'acme'}])
        self.assertNoDialog(seen, 'login --kind basic')


# --------------------------------------------------------------------------
# 2. replacing: no dialog, one item per slot

class Replacing(KeePassXCCase):

    def test_second_login_replaces_without_a_dialog(self):
        self.config()
        old = self.login()
        self.assertOneKey(old)
        first = self.env.key_items()[0].path
        new = self.env.new_key()
        self.server.accept_key(new)
        res, took, seen = self.run_watched(['login'], input=new + '\n')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNoDialog(seen, 'second login')
        self.assertLess(took, TIMEOUT, 'the second login waited for something')
        item = self.assertOneKey(new)
        self.assertNotEqual(item.path, first, 'replaced in place (CreateItem replace=true)')
        self.assertCredentialSent(('api-key', new))
        self.assertEqual(len(self.env.token_items()), 1)
        self.assertUsed(new, 'after the second login')
        # a third, from git this time: still no dialog, still one
        newer = self.env.new_key()
        self.server.accept_key(newer)
        res, _, seen = self.run_watched(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + newer))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNoDialog(seen, 'git store')
        self.assertOneKey(newer)
        self.assertUsed(newer, 'after git store')
        self.assertEqual(self.kpxc.dialogs(), [])

    def test_keystore_token_refreshes_without_a_dialog(self):
        self.env.refresh_mode = 'inline'
        self.config()
        key = self.login()
        for n in (1, 2):
            res, _, seen = self.run_watched(['token', '--refresh'])
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertNoDialog(seen, 'token --refresh #%d' % n)
            self.assertSecretEqual(res.stdout, self.server.last.token + '\n', 'token')
            toks = self.env.token_items()
            self.assertEqual(len(toks), 1, 'refresh #%d: %r' % (n, toks))
            self.assertSecretEqual(token_of(toks[0]), self.server.last.token, 'cached token')
        self.assertCredentialSent(('api-key', key))
        # a stale token (inside the margin, at most half its lifetime) is
        # refreshed by a plain `token`, and replaced
        self.server.push(self.server.token_reply(lifetime=4))
        self.token(['--refresh'], expect_new=True)
        stale = self.server.last.token
        count = self.server.count
        time.sleep(2.3)
        res, _, seen = self.run_watched(['token'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNoDialog(seen, 'token (stale)')
        self.assertEqual(self.server.count, count + 1, 'the stale token was not refreshed')
        self.assertSecretEqual(res.stdout, self.server.last.token + '\n', 'refreshed token')
        self.assertTrue(res.stdout != stale + '\n', 'the stale token was handed out')
        toks = self.env.token_items()
        self.assertEqual(len(toks), 1, toks)
        self.assertSecretEqual(token_of(toks[0]), self.server.last.token, 'cached token')
        # one per (server, organization)
        res, _, seen = self.run_watched(['token', '--refresh', '--org-slug', 'acme'])
        self.assertEqual(res.returncode, 0, res.stderr)
        res, _, seen2 = self.run_watched(['token', '--refresh', '--org-slug', 'acme'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNoDialog(seen + seen2, 'token --refresh --org-slug')
        self.assertEqual(sorted(t.attributes['organization'] for t in self.env.token_items()),
                         ['', 'acme'])
        self.assertSecretEqual(self.token(expect_new=False), self.token(expect_new=False),
                               'cached token')


# --------------------------------------------------------------------------
# 3. the database locked

class Locked(KeePassXCCase):

    def test_every_command_gives_up_within_the_timeout(self):
        # token-cache = keystore: nothing is served from a cache the lock
        # does not cover
        self.config()
        key = self.login()
        tok = self.token(expect_new=False)
        before = self.env.keyring_snapshot()
        new = self.env.new_key()
        self.server.accept_key(new)
        count = self.server.count
        self.kpxc.lock()
        timings = {}
        try:
            rows = self.keystore_rows(new)
            # the first alone, then the others all at once (each is bounded
            # on its own; together they keep the file's run short)
            name, kw, dialect = rows[0]
            t0 = time.monotonic()
            res = self.env.run(**kw)
            timings[name] = time.monotonic() - t0
            with self.subTest(row=name):
                self.assertBoundedFailure(name, dialect, res, timings[name])
            self.assertTrue(self.kpxc.dialogs(keepassxc.UNLOCK_TITLE),
                            'no Unlock Database dialog was raised')
            started = [(name, kw, dialect, time.monotonic(), self.env.spawn(**kw))
                       for name, kw, dialect in rows[1:]]
            ended = {}
            while len(ended) < len(started):
                for name, _, _, _, sp in started:
                    if name not in ended and sp.proc.poll() is not None:
                        ended[name] = time.monotonic()
                if time.monotonic() - started[0][3] > harness.RUN_TIMEOUT:
                    break
                time.sleep(0.01)
            for name, kw, dialect, t0, sp in started:
                res = sp.finish()
                timings[name] = ended.get(name, time.monotonic()) - t0
                with self.subTest(row=name):
                    self.assertBoundedFailure(name, dialect, res, timings[name])
            self.assertEqual(self.server.count, count,
                             'the endpoint was asked: %r' % self.server.requests[count:])
            self.assertTrue(self.kpxc.is_locked(), 'something unlocked the database')
        finally:
            sys.stderr.write('locked: %s\n' % ', '.join(
                '%s %.2fs' % kv for kv in timings.items()))
            # KeePassXC leaves its Unlock dialogs up after Dismiss
            self.kpxc.dismiss_all()
            self.kpxc.unlock()
        self.assertEqual(self.kpxc.dialogs(), [])
        self.assertKeyringUnchanged(before, 'after unlocking')
        self.assertSecretEqual(self.token(expect_new=False), tok, 'cached token')
        self.assertUsed(key, 'after unlocking')

    def test_kernel_tier_token_served_while_locked(self):
        # "tokens in the kernel tier are still served meanwhile", and what
        # gave up changed nothing: the kernel's token is still there
        self.config(token_cache=None)
        key = self.login()
        tok = self.token()
        self.assertEqual(self.env.token_items(), [], 'the token went to the keystore')
        new = self.env.new_key()
        self.server.accept_key(new)
        count = self.server.count
        self.kpxc.lock()
        try:
            t0 = time.monotonic()
            self.assertSecretEqual(self.token(expect_new=False), tok, 'token while locked')
            took = time.monotonic() - t0
            self.assertLess(took, 1.0, 'the kernel hit waited %.2f s' % took)
            rc, out, err = self.git_get()
            self.assertEqual((rc, err), (0, ''), 'git get while locked')
            self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git')
            rc, out, err = self.docker_get()
            self.assertEqual((rc, err), (0, ''), 'docker get while locked')
            self.assertSecretEqual(json.loads(out)['Secret'], tok, 'docker')
            self.assertEqual(self.server.count, count)
            self.assertEqual(self.kpxc.dialogs(), [], 'a kernel hit raised a dialog')
            # what needs the keystore fails within the bound, and meanwhile
            # (while both wait) the kernel still serves the token at once
            t0 = time.monotonic()
            waiting = [(name, self.env.spawn(args, input=stdin)) for name, args, stdin in (
                ('token --refresh', ['token', '--refresh'], None),
                ('login', ['login'], new + '\n'))]
            time.sleep(0.5)
            t1 = time.monotonic()
            self.assertSecretEqual(self.token(expect_new=False), tok, 'token while others wait')
            self.assertLess(time.monotonic() - t1, 1.0)
            for name, sp in waiting:
                res = sp.finish()
                self.assertBoundedFailure(name, 'native', res, time.monotonic() - t0)
            self.assertEqual(self.server.count, count)
            self.assertSecretEqual(self.token(expect_new=False), tok,
                                   'token after the login gave up')
            self.assertTrue(self.kpxc.is_locked())
        finally:
            self.kpxc.dismiss_all()
            self.kpxc.unlock()
        self.assertOneKey(key)
        self.assertUsed(key, 'after unlocking')


# --------------------------------------------------------------------------
# 4. ConfirmAccessItem: an Access Request nobody answers

class ConfirmAccess(KeePassXCCase):

    def test_unanswered_access_request_then_allowed(self):
        self.config()
        key = self.login()
        before = self.env.keyring_snapshot()
        count = self.server.count
        self.kpxc.set_confirm_access(True)
        try:
            t0 = time.monotonic()
            res = self.env.run(['token', '--refresh'])
            took = time.monotonic() - t0
            self.assertBoundedFailure('token --refresh', 'native', res, took, (WAITING,))
            self.assertEqual(self.server.count, count, 'the secret was read anyway')
            # KeePassXC keeps the dialog up after the Dismiss
            self.assertEqual(self.kpxc.dismiss_all(timeout=3)[:1], [keepassxc.ACCESS_TITLE])
            # someone who says no: at once, not at the timeout
            sp = self.env.spawn(['token', '--refresh'])
            t0 = time.monotonic()
            self.assertTrue(self.kpxc.answer_access(False, timeout=TIMEOUT), 'no dialog')
            res = sp.finish()
            took = time.monotonic() - t0
            # (2.7.4 gives no decision for Escape: the prompt completes
            # dismissed, which the module reports as "locked and was not
            # unlocked"; "refused access" would say it better)
            self.assertBoundedFailure('token --refresh (denied)', 'native', res, took,
                                      (LOCKED, DENIED))
            self.assertLess(took, TIMEOUT, 'a denial waited for the timeout')
            self.assertEqual(self.server.count, count)
            self.kpxc.dismiss_all()
            # someone who allows it in time
            sp = self.env.spawn(['token', '--refresh'])
            t0 = time.monotonic()
            self.assertTrue(self.kpxc.answer_access(True, timeout=TIMEOUT), 'no dialog')
            rc, out, err = sp.finish()
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, 'token --refresh, access allowed: %r' % err)
            self.assertLess(took, TIMEOUT + SLACK)
            self.assertEqual(self.server.count, count + 1)
            self.assertCredentialSent(('api-key', key))
            self.assertSecretEqual(out, self.server.last.token + '\n', 'token')
            self.assertEqual(self.kpxc.dialogs(), [])
        finally:
            self.kpxc.dismiss_all()
            self.kpxc.set_confirm_access(False)
        # the credential as it was; the token the allowed call cached is the only one
        self.assertOneKey(key)
        keys = [i for i in self.env.keyring_snapshot() if i[1] == harness.KEY_SCHEMA]
        if keys != [i for i in before if i[1] == harness.KEY_SCHEMA]:
            self.fail('the credential item changed')     # snapshots hold secrets
        toks = self.env.token_items()
        self.assertEqual(len(toks), 1, toks)
        self.assertSecretEqual(token_of(toks[0]), self.server.last.token, 'cached token')


# --------------------------------------------------------------------------
# 5. placeholders KeePassXC expands

class Placeholders(KeePassXCCase):

    def key_snapshot(self):
        return [i for i in self.env.keyring_snapshot() if i[1] == harness.KEY_SCHEMA]

    def test_a_password_that_does_not_read_back_is_refused(self):
        self.config()
        old = self.login()
        uuid = self.env.key_items()[0].attributes.get('Uuid')
        self.assertTrue(uuid, 'KeePassXC gave the item no Uuid attribute')
        before = self.key_snapshot()
        in_db = self.kpxc.exposed_entries()
        for prefix in ('pw{USERNAME}x-', 'pw{TITLE}x-', 'pw{REF:U@I:%s}x-' % uuid):
            shown = prefix.split('}')[0] + '}'
            with self.subTest(placeholder=shown):
                pw = self.env.new_key(prefix)      # a secret: never in any output
                self.server.accept_basic('alice', pw)
                res, _, seen = self.run_watched(['login', '--kind', 'basic', '--username',
                                                 'alice'], input=pw + '\n')
                self.assertFails(res, 6, *KEPT)
                self.assertNoDialog(seen, 'login with %s' % shown)
                if self.key_snapshot() != before:
                    self.fail('the credential changed after %s' % shown)   # no secret shown
                # nothing of the refused credential is cached
                mine = {r.token for r in self.server.requests
                        if r.credential == ('api-key', old) and r.token}
                for t in self.env.token_items():
                    self.assertTrue(token_of(t) in mine,
                                    'a token of the refused credential was cached')
                now = self.kpxc.exposed_entries()
                self.assertEqual(now.count(self.key_label), 1, now)
                self.assertLessEqual(len(now), len(in_db), 'an entry was left in the database')
                self.assertUsed(old, 'after the refused %s' % shown)


# --------------------------------------------------------------------------
# 6. what logout leaves behind

class RecycleBin(KeePassXCCase):

    def test_logout_moves_the_entries_to_the_recycle_bin(self):
        # documents KeePassXC's behaviour: Item.Delete moves the entry into
        # the database's Recycle Bin, where its secret stays until the
        # user empties it (titles only here, never a secret)
        self.config()
        self.login()
        bin_before = self.kpxc.recycle_bin_entries()
        self.assertEqual(self.kpxc.exposed_entries().count(self.key_label), 1)
        self.assertEqual(self.env.run(['logout']).returncode, 0)
        self.assertEqual(self.env.key_items(), [])
        self.assertNotIn(self.key_label, self.kpxc.exposed_entries())
        bin_after = self.kpxc.recycle_bin_entries()
        self.assertEqual(bin_after.count(self.key_label), bin_before.count(self.key_label) + 1,
                         'the credential did not go to the recycle bin')
        self.assertEqual(bin_after.count(self.token_label),
                         bin_before.count(self.token_label) + 1,
                         'the cached token did not go to the recycle bin')

    def test_replacing_also_fills_the_recycle_bin(self):
        # every replaced credential and refreshed token lands there too
        self.config()
        self.login()
        bin_before = self.kpxc.recycle_bin_entries()
        self.login()
        self.token(['--refresh'], expect_new=True)
        bin_after = self.kpxc.recycle_bin_entries()
        self.assertEqual(bin_after.count(self.key_label), bin_before.count(self.key_label) + 1)
        self.assertGreaterEqual(bin_after.count(self.token_label),
                                bin_before.count(self.token_label) + 2)

    def test_the_man_page_says_so(self):
        # where a provider keeps deleted items (KeePassXC's recycle bin), the man
        # page says so: galileo-credential(1) SECRET SERVICE PROVIDERS
        page = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs',
                            'galileo-credential.1')
        with open(page, encoding='utf-8') as f:
            text = re.sub(r'\\f[BIRP]|\\-|\\&', '', f.read())
        text = re.sub(r'\s+', ' ', text)
        self.assertTrue(re.search(r'(?i)keepassxc', text),
                        'docs/galileo-credential.1 does not name KeePassXC')
        self.assertTrue(re.search(r'(?i)recycle bin', text),
                        'docs/galileo-credential.1 does not say that KeePassXC keeps '
                        'deleted items in its recycle bin')


if __name__ == '__main__':
    harness.main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The git dialect (galileo-credential(1) GIT DIALECT): through real `git credential`, and raw
on stdin as git-credential-galileo and as `galileo-credential get|store|erase`.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

GIT = 'git-credential-galileo'
ORG_A = str(uuid.uuid4())


def git_version():
    out = subprocess.run(['git', '--version'], stdout=subprocess.PIPE,
                         timeout=30).stdout.decode()
    m = re.search(r'(\d+)\.(\d+)', out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# git learnt password_expiry_utc in 2.41; older git drops it from `fill`
GIT_HAS_EXPIRY = git_version() >= (2, 41)


class GitBase(GCTestCase):

    def setUp(self):
        super().setUp()
        self.host = '127.0.0.1:%d' % self.server.port

    def request(self, *extra):
        return git_lines('protocol=https', 'host=' + self.host, *extra)

    def helper(self, action, *extra, argv0=GIT, input=None, env_extra=None):
        return self.env.run([action], input=self.request(*extra) if input is None else input,
                            argv0=argv0, env_extra=env_extra)

    def assertExpiry(self, value, expected, slack=5):
        self.assertIsNotNone(value, 'no password_expiry_utc')
        self.assertTrue(value.isdigit(), value)
        self.assertLessEqual(abs(int(value) - expected), slack,
                             'password_expiry_utc %s, expected about %d' % (value, expected))

    def assertKeyIntact(self, key):
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def assertOnlyTokenOf(self, key):
        """The one cached token is the one the server gave for key."""
        self.assertEqual(len(self.env.token_items()), 1)
        mine = [r.token for r in self.server.requests
                if r.credential == ('api-key', key) and r.token]
        self.assertTrue(mine, 'the server never gave a token for that key')
        self.assertSecretEqual(self.token(expect_new=False), mine[-1], 'cached token')


class RealGit(GitBase):
    """`git credential fill|approve|reject` with credential.helper = this program."""

    def fill(self, *extra):
        return self.env.git(['credential', 'fill'], input=self.request(*extra))

    def test_fill_returns_cached_token(self):
        self.login()
        login_token = self.server.last.token
        before = int(time.time())
        rc, out, err = self.fill()
        self.assertEqual(rc, 0, err)
        d, keys = parse_git_output(out)
        self.assertEqual(d['protocol'], 'https')
        self.assertEqual(d['host'], self.host)
        self.assertEqual(d['username'], 'token')
        self.assertSecretEqual(d.get('password'), login_token, 'password from fill')
        self.assertEqual(self.server.count, 1, 'fill did not use the cached token')
        if GIT_HAS_EXPIRY:
            self.assertExpiry(d.get('password_expiry_utc'), before + 3600)
        else:
            # this git drops the attribute: check what the helper told it
            rc, out, err = self.helper('get')
            self.assertEqual(rc, 0, err)
            self.assertExpiry(parse_git_output(out)[0].get('password_expiry_utc'),
                              before + 3600)

    def test_fill_exchanges_when_nothing_cached(self):
        key = self.login(args=['--no-verify'])
        rc, out, err = self.fill()
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 1)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertSecretEqual(parse_git_output(out)[0].get('password'),
                               self.server.last.token, 'password from fill')

    def test_helper_by_short_name_and_shell_form(self):
        self.login()
        tok = self.server.last.token
        for helper in ('galileo', '!' + os.path.join(self.env.bindir, GIT)):
            self.env.write_gitconfig(helper=helper)
            rc, out, err = self.fill()
            self.assertEqual(rc, 0, '%s: %s' % (helper, err))
            self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok,
                                   'password via ' + helper)

    def test_path_is_ignored(self):
        self.login()
        self.env.write_gitconfig(extra='\tuseHttpPath = true\n')
        rc, out, err = self.fill('path=acme/repo.git')
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 1, 'path changed the server or cache entry')
        self.assertEqual([i.attributes['server'] for i in self.env.keyring_items()],
                         [self.url, self.url])

    def test_fill_with_nothing_stored(self):
        # galileo-credential(1) GIT DIALECT: silent, as git's own helpers are,
        # so that the next helper, or git's prompt, can answer
        rc, out, err = self.fill()
        self.assertNotEqual(rc, 0)
        self.assertNotIn('password=', out)
        self.assertNotIn('galileo-credential', err)
        self.assertEqual(self.server.count, 0)

    def test_approve_after_fill_keeps_api_key(self):
        key = self.login()
        rc, out, err = self.fill()
        self.assertEqual(rc, 0, err)
        rc, _, err = self.env.git(['credential', 'approve'], input=out + '\n')
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)
        self.assertEqual(len(self.env.token_items()), 1)
        self.token(expect_new=False)

    def test_reject_after_fill_drops_only_the_token(self):
        key = self.login()
        rc, out, err = self.fill()
        self.assertEqual(rc, 0, err)
        old = parse_git_output(out)[0]['password']
        rc, _, err = self.env.git(['credential', 'reject'], input=out + '\n')
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)
        self.assertEqual(self.env.token_items(), [])
        count = self.server.count
        rc, out, err = self.fill()
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, count + 1, 'no new exchange after reject')
        self.assertNotEqual(parse_git_output(out)[0]['password'], old)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_reject_with_stored_secret_removes_everything(self):
        key = self.login()
        rc, _, err = self.env.git(['credential', 'reject'],
                                  input=self.request('username=token', 'password=' + key))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.env.keyring_items(), [])

    def test_reject_without_password_removes_everything(self):
        self.login()
        rc, _, err = self.env.git(['credential', 'reject'], input=self.request())
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.env.keyring_items(), [])

    def test_reject_with_other_password_does_nothing(self):
        key = self.login()
        rc, _, err = self.env.git(['credential', 'reject'],
                                  input=self.request('username=token',
                                                     'password=' + self.env.new_key()))
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)
        self.assertEqual(len(self.env.token_items()), 1)

    def test_approve_of_a_new_secret_stores_it(self):
        old = self.login()
        new = self.env.new_key()
        self.server.accept_key(new)
        rc, _, err = self.env.git(['credential', 'approve'],
                                  input=self.request('username=alice', 'password=' + new))
        self.assertEqual(rc, 0, err)
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0].attributes['kind'], 'api-key')
        self.assertEqual(items[0].attributes['username'], 'alice')
        self.assertSecretEqual(items[0].secret, new, 'stored credential')
        self.assertNotEqual(items[0].secret, old)
        # the old credential's token is gone; the new one's, from its check, is cached
        self.assertEqual(self.server.last.credential, ('api-key', new))
        self.assertOnlyTokenOf(new)


class Get(GitBase):

    def test_output(self):
        self.login(args=['--no-verify'])
        for argv0 in (GIT, None):
            before = int(time.time())
            rc, out, err = self.helper('get', argv0=argv0)
            self.assertEqual(rc, 0, err)
            self.assertEqual(err, '')
            d, keys = parse_git_output(out)
            self.assertTrue(out.endswith('\n'))
            self.assertEqual(sorted(keys), ['password', 'password_expiry_utc', 'username'])
            self.assertEqual(d['username'], 'token')
            self.assertSecretEqual(d['password'], self.server.issued[0], 'password')
            self.assertExpiry(d['password_expiry_utc'], before + 3600)
        self.assertEqual(self.server.count, 1)

    def test_stored_username(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice'], accept=False)
        rc, out, err = self.helper('get')
        self.assertEqual(rc, 0, err)
        self.assertEqual(parse_git_output(out)[0]['username'], 'alice')

    def test_one_identity_per_server(self):
        # galileo-credential(1) GIT DIALECT, one identity per server: a
        # request naming another user than the stored one is not answered
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice'], accept=False)
        count = self.server.count
        for extra in (('username=bob',), ('username=Alice',)):
            with self.subTest(extra=extra):
                self.assertEqual(self.helper('get', *extra), (0, '', ''))
        bob_url = 'url=https://bob@%s/repo.git' % self.host
        self.assertEqual(self.env.run(['get'], input=git_lines(bob_url), argv0=GIT),
                         (0, '', ''))
        # and through real git: https://bob@HOST gets nothing from us
        rc, out, err = self.env.git(['credential', 'fill'],
                                    input=git_lines('url=https://bob@%s' % self.host))
        self.assertNotIn('password=', out)
        self.assertEqual(self.server.count, count, 'a request for bob reached the endpoint')
        for extra in (('username=alice',), ('username=token',), ('username=',), ()):
            with self.subTest(extra=extra):
                rc, out, err = self.helper('get', *extra)
                self.assertEqual(rc, 0, err)
                d = parse_git_output(out)[0]
                self.assertEqual(d['username'], 'alice')
                self.assertSecretEqual(d['password'], self.server.last.token, 'password')
        rc, out, err = self.env.run(['get'], argv0=GIT, input=git_lines(
            'url=https://alice@%s/repo.git' % self.host))
        self.assertIn('password=', out)
        # token always answers
        self.token(expect_new=False)

    def test_any_username_is_answered_when_none_is_stored(self):
        self.login()
        for extra in (('username=bob',), ('username=token',)):
            with self.subTest(extra=extra):
                rc, out, err = self.helper('get', *extra)
                self.assertEqual(rc, 0, err)
                self.assertSecretEqual(parse_git_output(out)[0]['password'],
                                       self.server.last.token, 'password')

    def test_authtype_capability(self):
        self.login(args=['--no-verify'])
        before = int(time.time())
        rc, out, err = self.helper('get', 'capability[]=authtype')
        self.assertEqual(rc, 0, err)
        d, keys = parse_git_output(out)
        self.assertEqual(sorted(keys), sorted(['capability[]', 'authtype', 'credential',
                                               'ephemeral', 'password_expiry_utc']), keys)
        self.assertEqual(d['capability[]'], 'authtype')
        self.assertEqual(d['authtype'], 'Bearer')
        self.assertEqual(d['ephemeral'], '1')
        self.assertSecretEqual(d['credential'], self.server.last.token, 'credential')
        self.assertExpiry(d['password_expiry_utc'], before + 3600)

    def test_url_attribute(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.helper('get', input=git_lines('url=' + self.url + '/'))
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(parse_git_output(out)[0]['password'], self.server.last.token,
                               'password')

    def test_organization_attributes(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.helper('get', 'organization_id=' + ORG_A)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.query, {'organization_id': ORG_A})
        rc, out, err = self.helper('get', 'organization_slug=acme')
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.query, {'organization_slug': 'acme'})
        self.assertEqual(sorted(t.attributes['organization'] for t in self.env.token_items()),
                         sorted([ORG_A, 'acme']))
        count = self.server.count
        self.assertFails(self.helper('get', 'organization_id=nope'), 7)
        self.assertEqual(self.server.count, count)

    def test_url_path_is_ignored(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.helper('get', input=git_lines('url=' + self.url + '/org/repo.git'))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 1)
        self.assertEqual(self.server.last.path, '/v1/token')

    def test_url_wins_over_protocol_and_host(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.helper('get', input=git_lines(
            'protocol=https', 'host=other.example', 'url=' + self.url))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, 1)

    def test_organization_in_input_wins_over_environment(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.helper('get', 'organization_slug=inputorg',
                                   env_extra={'GALILEO_ORGANIZATION_ID': ORG_A})
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.query, {'organization_slug': 'inputorg'})

    def test_values_written_never_break_lines(self):
        # a username with a newline (docker's JSON can carry one) must not
        # smuggle an extra attribute into git's output
        key = self.env.new_key()
        self.server.accept_key(key)
        self.env.run(['store'], argv0='docker-credential-galileo', input=json.dumps(
            {'ServerURL': self.url, 'Username': 'bob\npassword=injected\r', 'Secret': key}))
        rc, out, err = self.helper('get')
        self.assertNotIn('password=injected', out.split('\n'))
        self.assertNotIn('\r', out)
        d, keys = parse_git_output(out)
        self.assertLessEqual(keys.count('password'), 1)

    def test_nothing_stored(self):
        # galileo-credential(1) GIT DIALECT: nothing on stdout or stderr, exit 0
        self.assertEqual(self.helper('get'), (0, '', ''))
        rc, out, err = self.helper('get', input=git_lines('protocol=https', 'host=github.com'))
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(self.server.count, 0)

    def test_rejected_credential(self):
        self.login(args=['--no-verify'], accept=False)
        self.assertFails(self.helper('get'), 4)

    def test_http_non_loopback_host_names_no_server(self):
        # galileo-credential(1) GIT DIALECT: not a server we serve, ignored silently
        self.login()
        res = self.helper('get', input=git_lines('protocol=http', 'host=example.com'))
        self.assertEqual(res, (0, '', ''))
        self.assertEqual(self.server.count, 1)


class Store(GitBase):

    def test_stores_api_key_with_username(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.helper('store', 'username=alice', 'password=' + key)
        self.assertEqual((rc, out), (0, ''), err)
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0].attributes, {'server': self.url, 'kind': 'api-key',
                                               'username': 'alice', 'organization': ''})
        self.assertSecretEqual(items[0].secret, key, 'stored credential')
        # verified first (galileo-credential(1) GIT DIALECT): one exchange
        self.assertEqual(self.server.count, 1)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_kind_and_organization(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('bob', pw)
        rc, out, err = self.helper('store', 'kind=basic', 'username=bob', 'password=' + pw,
                                   'organization_id=' + ORG_A, argv0=None)
        self.assertEqual(rc, 0, err)
        it = self.env.key_items()[0]
        self.assertEqual(it.attributes, {'server': self.url, 'kind': 'basic',
                                         'username': 'bob', 'organization': ORG_A})
        self.assertEqual(self.server.last.credential, ('basic', 'bob', pw))
        self.assertEqual(self.server.last.query, {'organization_id': ORG_A})
        self.token(expect_new=False)

    def test_echoes_of_get_store_nothing(self):
        key = self.login()
        tok = self.server.last.token
        other = self.env.new_key()
        echoes = [
            ('username=token', 'password=' + tok),
            ('username=token', 'password=' + other, 'password_expiry_utc=%d' % (time.time() + 99)),
            ('username=token', 'password=' + other, 'ephemeral=1'),
            ('capability[]=authtype', 'authtype=Bearer', 'credential=' + tok),
            ('authtype=Bearer', 'credential=' + other, 'password=' + other),
        ]
        for extra in echoes:
            rc, out, err = self.helper('store', *extra)
            self.assertEqual(rc, 0, err)
            self.assertKeyIntact(key)
            self.assertEqual(len(self.env.token_items()), 1, 'cached token dropped')

    def test_echo_with_nothing_stored_stores_nothing(self):
        rc, out, err = self.helper('store', 'username=token', 'password=' + self.env.new_key(),
                                   'password_expiry_utc=%d' % (time.time() + 99))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.env.keyring_items(), [])

    def test_replacing_the_credential_drops_tokens(self):
        self.login()
        new = self.env.new_key()
        self.server.accept_key(new)
        rc, out, err = self.helper('store', 'password=' + new)
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(new)
        self.assertOnlyTokenOf(new)


class Erase(GitBase):

    def setUp(self):
        super().setUp()
        self.key = self.login()
        self.tok = self.server.last.token

    def test_cached_token_password_drops_only_that_token(self):
        self.token(['--org-slug', 'acme'], expect_new=True)
        rc, out, err = self.helper('erase', 'username=token', 'password=' + self.tok)
        self.assertEqual((rc, out), (0, ''), err)
        self.assertKeyIntact(self.key)
        self.assertEqual([t.attributes['organization'] for t in self.env.token_items()],
                         ['acme'])
        self.token(expect_new=True)

    def test_cached_token_credential_drops_only_the_token(self):
        rc, out, err = self.helper('erase', 'capability[]=authtype', 'authtype=Bearer',
                                   'credential=' + self.tok)
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(self.key)
        self.assertEqual(self.env.token_items(), [])

    def test_stored_secret_removes_everything(self):
        rc, out, err = self.helper('erase', 'password=' + self.key, argv0=None)
        self.assertEqual((rc, out), (0, ''), err)
        self.assertEqual(self.env.keyring_items(), [])

    def test_no_password_removes_everything(self):
        self.token(['--org-slug', 'acme'], expect_new=True)
        rc, out, err = self.helper('erase')
        self.assertEqual((rc, out), (0, ''), err)
        self.assertEqual(self.env.keyring_items(), [])

    def test_other_password_or_credential_does_nothing(self):
        for extra in (('password=' + self.env.new_key(),),
                      ('authtype=Bearer', 'credential=' + self.env.new_key())):
            rc, out, err = self.helper('erase', *extra)
            self.assertEqual(rc, 0, err)
            self.assertKeyIntact(self.key)
            self.assertEqual(len(self.env.token_items()), 1)

    def test_other_server_untouched(self):
        rc, out, err = self.helper('erase', input=git_lines('protocol=https',
                                                            'host=other.example'))
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(self.key)


class Actions(GitBase):

    def test_capability(self):
        for argv0 in (GIT, None):
            res = self.env.run(['capability'], argv0=argv0, input='')
            self.assertEqual(res, (0, 'version 0\ncapability authtype\n', ''))

    def test_unknown_action_ignored(self):
        self.login()
        res = self.env.run(['frobnicate'], argv0=GIT, input=self.request('password=x'))
        self.assertEqual(res, (0, '', ''))
        self.assertEqual(len(self.env.key_items()), 1)

    def test_protocol_option_overrides_name(self):
        res = self.env.run(['--protocol=git', 'capability'], argv0='docker-credential-galileo',
                           input='')
        self.assertEqual(res, (0, 'version 0\ncapability authtype\n', ''))


class Limits(GitBase):
    """Oversize or malformed input: exit 7, nothing stored."""

    def refused(self, data):
        res = self.env.run(['store'], argv0=GIT, input=data)
        self.assertFails(res, 7)
        self.assertEqual(self.env.keyring_items(), [])

    def test_line_over_65535_bytes(self):
        key = self.env.new_key()
        pad = 'x' * (65536 - len('password=') - len(key))
        self.refused(self.request('password=' + key + pad))
        self.refused(self.request('password=' + key, 'junk=' + 'y' * 70000))

    def test_line_of_65535_bytes_is_fine(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        junk = 'junk=' + 'y' * (65535 - len('junk='))
        rc, out, err = self.env.run(['store'], argv0=GIT,
                                    input=self.request(junk, 'password=' + key))
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)

    def test_nul_byte(self):
        key = self.env.new_key()
        self.refused(self.request('password=' + key[:8] + '\0' + key[8:]).encode())
        self.refused(self.request('password=' + key, 'junk=a\0b'))

    def test_input_over_1_mib(self):
        key = self.env.new_key()
        lines = ['password=' + key] + ['junk%d=%s' % (i, 'z' * 60000) for i in range(20)]
        self.refused(self.request(*lines))

    def test_line_without_equals(self):
        self.refused(self.request('password=' + self.env.new_key(), 'no equals sign here'))


if __name__ == '__main__':
    harness.main()

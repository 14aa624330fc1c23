#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The config file and its environment overrides (galileo-credential(1) EXIT STATUS, CONFIGURATION as
far as they change what a user sees), and debug output never showing a
secret.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, wait_for_second_start  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule


class Malformed(GCTestCase):

    def check(self, text, line, *contains):
        path = self.env.write_config_raw(text)
        for args in (['token'], ['status'], ['login', '--no-verify']):
            res = self.env.run(args, input=self.env.new_key() + '\n')
            self.assertFails(res, 1, '%s:%d: ' % (path, line), *contains)
            self.assertTrue(res.stderr.startswith('galileo-credential: %s:%d: ' % (path, line)),
                            res.stderr)
        self.assertEqual(self.env.keyring_items(), [])
        self.assertEqual(self.server.count, 0)

    def test_line_without_equals(self):
        self.check('server = %s\n# fine\n\nthis line is wrong\n' % self.url, 4)

    def test_unknown_key(self):
        self.check('ca-file = %s\nfrobnicate = 1\n' % self.env.ca_file, 2, 'frobnicate')

    def test_bad_values(self):
        self.check('timeout = soon\n', 1)
        self.check('refresh-margin = -5\n', 1)
        self.check('token-cache = sometimes\n', 1)
        self.check('organization-id = not-a-uuid\n', 1)

    def test_server_inside_a_section(self):
        self.check('[%s]\nserver = https://other.example\n' % self.url, 2)

    def test_unterminated_section(self):
        self.check('server = %s\n[https://other.example\n' % self.url, 2)

    def test_missing_file_is_fine(self):
        res = self.env.run(['login', '--no-verify'], input=self.env.new_key() + '\n',
                           env_extra={'GALILEO_CREDENTIAL_CONFIG':
                                      os.path.join(self.env.root, 'no-such-config')})
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual([i.attributes['server'] for i in self.env.key_items()],
                         [harness.DEFAULT_SERVER])

    def test_xdg_config_home_location(self):
        d = os.path.join(self.env.xdg_config, 'galileo-credential')
        os.makedirs(d, exist_ok=True)
        path = self.env.write_config(path=os.path.join(d, 'config'),
                                     extra='organization-slug = xdgorg\n')
        try:
            key = self.login(args=['--no-verify'],
                             env_extra={'GALILEO_CREDENTIAL_CONFIG': None})
            self.token(env_extra={'GALILEO_CREDENTIAL_CONFIG': None}, expect_new=True)
            self.assertEqual(self.server.last.query, {'organization_slug': 'xdgorg'})
            self.assertEqual(self.server.last.credential, ('api-key', key))
        finally:
            os.unlink(path)


class Sections(GCTestCase):

    def test_per_server_values_apply(self):
        other = 'https://localhost:%d' % self.server.port
        self.env.write_config(extra=(
            'organization-slug = global-org\n'
            '[HTTPS://127.0.0.1:%d/]\n'        # canonicalised like any server
            'organization-slug = section-org\n'
            'token-path = /section/token\n' % self.server.port))
        key = self.login(args=['--no-verify'])
        self.login(key=key, args=['--no-verify', '--server', other])
        self.server.token_path = '/section/token'
        self.token(expect_new=True)
        self.assertEqual(self.server.last.path, '/section/token')
        self.assertEqual(self.server.last.query, {'organization_slug': 'section-org'})
        # another server gets the global values
        self.server.token_path = '/v1/token'
        self.token(['--server', other], expect_new=True)
        self.assertEqual(self.server.last.path, '/v1/token')
        self.assertEqual(self.server.last.query, {'organization_slug': 'global-org'})

    def test_section_timeout_and_ca_file(self):
        # the global ca-file is missing: only the section's makes TLS work
        self.env.write_config(ca_file=None, extra='[%s]\nca-file = %s\n'
                              % (self.url, self.env.ca_file))
        self.login(args=['--no-verify'])
        self.token(expect_new=True)
        other = 'https://localhost:%d' % self.server.port
        self.login(args=['--no-verify', '--server', other])
        self.assertFails(self.env.run(['token', '--server', other]), 5)


class Keystore(GCTestCase):

    def test_unknown_keystore_fails_closed(self):
        self.env.write_config(extra='keystore = nosuch\n')
        self.assertFails(self.env.run(['login', '--no-verify'],
                                      input=self.env.new_key() + '\n'), 6)
        self.assertFails(self.env.run(['token']), 6)
        self.assertEqual(self.env.keyring_items(), [])
        self.assertEqual(self.server.count, 0)

    def test_environment_overrides_keystore(self):
        self.assertFails(self.env.run(['token'],
                                      env_extra={'GALILEO_CREDENTIAL_KEYSTORE': 'nosuch'}), 6)
        self.env.write_config(extra='keystore = nosuch\n')
        self.login(args=['--no-verify'],
                   env_extra={'GALILEO_CREDENTIAL_KEYSTORE': 'secret-service'})
        self.assertEqual(len(self.env.key_items()), 1)

    def test_env_keystore(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_CREDENTIAL_KEYSTORE': 'env', 'GALILEO_API_KEY': key}
        self.token(env_extra=env, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        rc, out, err = self.env.run(['status', '--json'], env_extra=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual([s['keystore'] for s in json.loads(out)['servers']], ['env'])
        # a read-only keystore stores nothing
        self.assertNotEqual(self.env.run(['login', '--no-verify'],
                                         input=self.env.new_key() + '\n',
                                         env_extra=env).returncode, 0)
        self.assertEqual(self.env.keyring_items(), [])
        # and without GALILEO_API_KEY there is nothing
        self.assertFails(self.env.run(['token'], env_extra={
            'GALILEO_CREDENTIAL_KEYSTORE': 'env'}), 3)


class TokenCache(GCTestCase):

    def test_none_makes_every_call_exchange(self):
        self.env.write_config(token_cache='none')
        self.login()
        self.assertEqual(self.env.token_items(), [])
        t1 = self.token(expect_new=True)
        t2 = self.token(expect_new=True)
        self.assertNotEqual(t1, t2)
        self.assertEqual(self.env.token_items(), [])

    def test_environment_overrides_token_cache(self):
        self.login(args=['--no-verify'])
        env = {'GALILEO_CREDENTIAL_TOKEN_CACHE': 'none'}
        self.token(env_extra=env, expect_new=True)
        self.token(env_extra=env, expect_new=True)
        self.assertEqual(self.env.token_items(), [])
        self.env.write_config(token_cache='none')
        env = {'GALILEO_CREDENTIAL_TOKEN_CACHE': 'keystore'}
        self.token(env_extra=env, expect_new=True)
        self.token(env_extra=env, expect_new=False)

    def test_refresh_margin(self):
        # lifetime 6 s: the default margin (3 s after the cap) would refresh
        # after 3 s; refresh-margin = 1 keeps it 5 s
        self.env.write_config(extra='refresh-margin = 1\nrefresh = inline\n')
        self.login(args=['--no-verify'])
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=6))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now      # the server's "now" for expires_at
        time.sleep(max(0, base + 3.5 - time.time()))
        self.assertSecretEqual(self.token(expect_new=False), t1, 'token within margin 1')
        time.sleep(max(0, base + 5.5 - time.time()))
        self.token(expect_new=True)

    def test_refresh_margin_zero(self):
        self.env.write_config(extra='refresh-margin = 0\nrefresh = inline\n')
        self.login(args=['--no-verify'])
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=4))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now
        # the default margin (2 s after the cap) would refresh from base + 2
        time.sleep(max(0, base + 2.5 - time.time()))
        self.assertSecretEqual(self.token(expect_new=False), t1, 'token with margin 0')


class Debug(GCTestCase):

    def test_debug_output_never_shows_a_secret(self):
        env = {'GALILEO_CREDENTIAL_DEBUG': '1'}
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login'], input=key + '\n', env_extra=env)
        self.assertEqual(rc, 0, err)
        self.assertGreater(len(err.split('\n')), 2, 'no debug output')
        rc, out, err = self.env.run(['token'], env_extra=env)
        self.assertEqual(rc, 0, err)
        self.assertTrue(err, 'no debug output')
        self.assertEqual(out.count('\n'), 1)
        rc, out, err = self.env.run(['token', '--refresh'], env_extra=env)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.env.run(['get'], env_extra=env, input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.env.run(['status'], env_extra=env)
        self.assertEqual(rc, 0, err)
        # a rejected credential, from the environment
        bad = self.env.new_key()
        rc, out, err = self.env.run(['token'], env_extra=dict(env, GALILEO_API_KEY=bad))
        self.assertEqual(rc, 4)
        # git's echo of the token, and an erase with it
        tok = self.server.last.token or self.server.issued[-1]
        self.env.run(['store'], env_extra=env, input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port, 'password=' + tok))
        self.env.run(['erase'], env_extra=env, input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port, 'password=' + tok))
        # every key and token checked against every output in tearDown


if __name__ == '__main__':
    harness.main()

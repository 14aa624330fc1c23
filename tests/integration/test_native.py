#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Native commands (galileo-credential(1) SERVER AND ORGANIZATION, COMMANDS, EXIT STATUS): login,
token, status, logout, GALILEO_API_KEY, server resolution, and how failures of the token endpoint
reach the user.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, Response, TokenServer,  # noqa: E402
                     USER_AGENT_PREFIX, DEFAULT_SERVER, parse_rfc3339)

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

ORG_A = str(uuid.uuid4())
ORG_B = str(uuid.uuid4())


def no_org_query(req):
    return 'organization_id' not in req.query and 'organization_slug' not in req.query


class Login(GCTestCase):

    def test_key_from_stdin_is_verified_stored_and_token_cached(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login'], input=key + '\n')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '')
        self.assertEqual(err, "galileo-credential: logged in to '%s'\n" % self.url)
        # exactly one exchange, with the key in the API-key header
        self.assertEqual(self.server.count, 1)
        req = self.server.last
        self.assertEqual(req.method, 'GET')
        self.assertEqual(req.path, '/v1/token')
        self.assertTrue(no_org_query(req), req.query)
        self.assertSecretEqual(req.header('Galileo-API-Key'), key, 'Galileo-API-Key header')
        self.assertIsNone(req.header('Authorization'))
        self.assertTrue((req.header('User-Agent') or '').startswith(USER_AGENT_PREFIX),
                        req.header('User-Agent'))
        # the credential item
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        it = items[0]
        self.assertEqual(it.attributes, {'server': self.url, 'kind': 'api-key',
                                         'username': '', 'organization': ''})
        self.assertEqual(it.label, 'Galileo credential for %s' % self.url)
        self.assertSecretEqual(it.secret, key, 'stored credential')
        # the verified token is cached, never with the key in it
        toks = self.env.token_items()
        self.assertEqual(len(toks), 1, toks)
        self.assertEqual(toks[0].attributes, {'server': self.url, 'organization': ''})
        self.assertEqual(toks[0].label, 'Galileo token for %s' % self.url)
        self.assertNotIn(key, toks[0].secret, 'the key is in the token item')
        self.assertIn(req.token, toks[0].secret.split(), 'token item does not hold the token')
        # and handed out without a new request
        tok = self.token(expect_new=False)
        self.assertSecretEqual(tok, req.token, 'token after login')

    def test_key_from_terminal_with_echo_off(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err, tty = self.env.run_tty(['login'], key)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '')
        self.assertIn("Galileo API key for '%s': " % self.url, tty)
        self.assertNotIn(key, tty, 'the key was echoed')
        self.assertSecretEqual(self.env.key_items()[0].secret, key, 'stored credential')
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_password_and_bearer_prompts(self):
        pw = self.env.new_key('gp-test-')
        rc, out, err, tty = self.env.run_tty(
            ['login', '--no-verify', '--kind', 'basic', '--username', 'alice'], pw)
        self.assertEqual(rc, 0, err)
        self.assertIn("Password for 'alice' at '%s': " % self.url, tty)
        self.assertNotIn(pw, tty, 'the password was echoed')
        self.assertSecretEqual(self.env.key_items()[0].secret, pw, 'stored password')
        bearer = self.env.new_key('gb-test-')
        rc, out, err, tty = self.env.run_tty(['login', '--no-verify', '--kind', 'bearer'],
                                             bearer)
        self.assertEqual(rc, 0, err)
        self.assertIn("Bearer token for '%s': " % self.url, tty)
        self.assertNotIn(bearer, tty, 'the token was echoed')
        self.assertSecretEqual(self.env.key_items()[0].secret, bearer, 'stored token')

    def test_only_the_first_line_is_read_and_crlf_stripped(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login'], input=key + '\r\nsecond line\n')
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(self.env.key_items()[0].secret, key, 'stored credential')
        self.assertSecretEqual(self.server.last.header('Galileo-API-Key'), key, 'header')

    def test_empty_line_is_bad_input(self):
        res = self.env.run(['login'], input='\n')
        self.assertFails(res, 7)
        self.assertEqual(self.server.count, 0)
        self.assertEqual(self.env.keyring_items(), [])

    def test_kind_basic_with_username(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        rc, out, err = self.env.run(['login', '--kind', 'basic', '--username', 'alice'],
                                    input=pw + '\n')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '')
        self.assertEqual(self.server.count, 1)
        req = self.server.last
        self.assertIsNone(req.header('Galileo-API-Key'))
        self.assertTrue(req.header('Authorization').startswith('Basic '))
        self.assertEqual(req.credential[:2], ('basic', 'alice'))
        self.assertSecretEqual(req.credential[2], pw, 'basic password')
        it = self.env.key_items()[0]
        self.assertEqual(it.attributes['kind'], 'basic')
        self.assertEqual(it.attributes['username'], 'alice')
        self.assertSecretEqual(it.secret, pw, 'stored password')
        # later exchanges use the same header
        self.token(['--refresh'], expect_new=True)
        self.assertEqual(self.server.last.credential, ('basic', 'alice', pw))

    def test_kind_basic_needs_username(self):
        res = self.env.run(['login', '--kind', 'basic'], input='pw-x\n')
        self.assertFails(res, 2)
        self.assertEqual(self.server.count, 0)
        self.assertEqual(self.env.keyring_items(), [])

    def test_unknown_kind_is_usage(self):
        res = self.env.run(['login', '--kind', 'password'], input='x\n')
        self.assertFails(res, 2)
        self.assertEqual(self.env.keyring_items(), [])

    def test_kind_bearer(self):
        bearer = self.env.new_key('gb-test-')
        self.server.accept_bearer(bearer)
        rc, out, err = self.env.run(['login', '--kind', 'bearer'], input=bearer + '\n')
        self.assertEqual(rc, 0, err)
        req = self.server.last
        self.assertEqual(req.credential[0], 'bearer')
        self.assertSecretEqual(req.header('Authorization'), 'Bearer ' + bearer,
                               'Authorization header')
        it = self.env.key_items()[0]
        self.assertEqual(it.attributes['kind'], 'bearer')
        self.assertSecretEqual(it.secret, bearer, 'stored bearer token')

    def test_org_id_is_sent_and_stored_as_default(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login', '--org-id', ORG_A], input=key + '\n')
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.query, {'organization_id': ORG_A})
        it = self.env.key_items()[0]
        self.assertEqual(it.attributes['organization'], ORG_A)
        toks = self.env.token_items()
        self.assertEqual([t.attributes['organization'] for t in toks], [ORG_A])
        # plain `token` uses the default organization: served from the cache
        self.token(expect_new=False)
        # another organization is another exchange
        self.token(['--org-id', ORG_B], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_id': ORG_B})

    def test_org_slug_is_sent_and_stored(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login', '--org-slug', 'acme'], input=key + '\n')
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.query, {'organization_slug': 'acme'})
        self.assertEqual(self.env.key_items()[0].attributes['organization'], 'acme')

    def test_invalid_org_id_refused_before_any_request(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        res = self.env.run(['login', '--org-id', 'not-a-uuid'], input=key + '\n')
        self.assertFails(res, 7)
        self.assertEqual(self.server.count, 0)
        self.assertEqual(self.env.keyring_items(), [])

    def test_no_verify_sends_nothing_caches_nothing(self):
        key = self.env.new_key()
        rc, out, err = self.env.run(['login', '--no-verify'], input=key + '\n')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '')
        self.assertEqual(self.server.count, 0)
        self.assertEqual(self.env.token_items(), [])
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def test_rejected_key_stores_nothing(self):
        key = self.env.new_key()        # not accepted
        res = self.env.run(['login'], input=key + '\n')
        self.assertFails(res, 4)
        self.assertEqual(self.server.count, 1)
        self.assertEqual(self.env.keyring_items(), [])

    def test_forbidden_key_stores_nothing(self):
        self.server.push(Response(403, {'detail': 'Forbidden'}))
        res = self.env.run(['login'], input=self.env.new_key() + '\n')
        self.assertFails(res, 4)
        self.assertEqual(self.env.keyring_items(), [])

    def test_rejected_key_keeps_previous_credential(self):
        old = self.login()
        old_token = self.server.last.token
        new = self.env.new_key()        # not accepted
        res = self.env.run(['login'], input=new + '\n')
        self.assertFails(res, 4)
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertSecretEqual(items[0].secret, old, 'stored credential after failed login')
        # the old credential still works, its token still cached
        tok = self.token(expect_new=False)
        self.assertSecretEqual(tok, old_token, 'cached token')

    def test_secret_not_taken_from_argv(self):
        # there is no option for it: an extra argument is a usage error
        res = self.env.run(['login', 'gk-on-the-command-line'], input='')
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertEqual(self.env.keyring_items(), [])


class HelpVersion(GCTestCase):

    def test_version(self):
        self.assertEqual(self.env.run(['--version']), (0, 'galileo-credential 0.1.0\n', ''))

    def test_help(self):
        rc, out, err = self.env.run(['--help'])
        self.assertEqual((rc, err), (0, ''))
        for cmd in ('login', 'logout', 'token', 'status'):
            self.assertIn(cmd, out)

    def test_no_action_is_usage(self):
        res = self.env.run([])
        self.assertEqual(res.returncode, 2, res)
        self.assertEqual(res.stdout, '')

    def test_unknown_option_is_usage(self):
        self.assertFails(self.env.run(['--frobnicate']), 2)


class Hardening(GCTestCase):
    """Section 10: the process is not dumpable (no core, no ptrace)."""

    def proc_owner_while_waiting(self, argv):
        """
        Start argv as an unprivileged user, blocked on stdin, and return the
        owner of its /proc/PID/environ: the user for a dumpable process, root
        for one that is not (proc(5)).
        """
        prefix = []
        if os.getuid() == 0:
            prefix = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
        env = {'PATH': '/usr/bin:/bin', 'GALILEO_CREDENTIAL_CONFIG': '/nonexistent'}
        p = subprocess.Popen(prefix + argv, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env, cwd='/')
        comm = os.path.basename(argv[0])[:15]
        try:
            # wait until it runs argv (not setpriv) and sleeps reading stdin
            deadline = time.time() + 5
            while time.time() < deadline:
                with open('/proc/%d/stat' % p.pid) as f:
                    stat = f.read()
                name, state = stat[stat.index('(') + 1:stat.rindex(')')], stat[stat.rindex(')') + 2]
                if name == comm and state == 'S':
                    break
                time.sleep(0.02)
            else:
                self.fail('%s never waited on stdin' % comm)
            return os.stat('/proc/%d/environ' % p.pid).st_uid, (65534 if prefix else os.getuid())
        finally:
            p.stdin.close()
            p.wait(10)

    def test_not_dumpable(self):
        # the check tells the two apart: a plain program stays the user's
        owner, user = self.proc_owner_while_waiting(['/bin/cat'])
        self.assertEqual(owner, user, 'control process should be dumpable')
        owner, user = self.proc_owner_while_waiting([harness.program_path(), 'get'])
        self.assertEqual(owner, 0, 'galileo-credential is dumpable')


class Token(GCTestCase):

    def test_nothing_stored_is_exit_3(self):
        res = self.env.run(['token'])
        self.assertFails(res, 3, "no credential stored for '%s'" % self.url,
                         "run 'galileo-credential login")
        self.assertEqual(self.server.count, 0)

    def test_prints_token_and_newline_only(self):
        key = self.login(args=['--no-verify'])
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '')
        self.assertEqual(self.server.count, 1)
        self.assertSecretEqual(out, self.server.last.token + '\n', 'token output')
        req = self.server.last
        self.assertSecretEqual(req.header('Galileo-API-Key'), key, 'API key header')
        self.assertTrue(req.header('User-Agent').startswith(USER_AGENT_PREFIX),
                        req.header('User-Agent'))
        self.assertEqual(req.path, '/v1/token')
        self.assertTrue(no_org_query(req), req.query)

    def test_second_call_served_from_cache(self):
        self.login(args=['--no-verify'])
        t1 = self.token(expect_new=True)
        t2 = self.token(expect_new=False)
        self.assertSecretEqual(t2, t1, 'cached token')
        self.assertEqual(len(self.env.token_items()), 1)

    def test_refresh_ignores_cache_and_updates_it(self):
        self.login(args=['--no-verify'])
        t1 = self.token(expect_new=True)
        t2 = self.token(['--refresh'], expect_new=True)
        self.assertNotEqual(t1, t2, 'refresh returned the old token')
        t3 = self.token(expect_new=False)
        self.assertSecretEqual(t3, t2, 'token after refresh')
        self.assertEqual(len(self.env.token_items()), 1)

    def test_each_organization_has_its_own_cache_entry(self):
        self.login(args=['--no-verify'])
        t_none = self.token(expect_new=True)
        self.assertTrue(no_org_query(self.server.last), self.server.last.query)
        t_a = self.token(['--org-id', ORG_A], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_id': ORG_A})
        t_s = self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'acme'})
        self.assertEqual(len({t_none, t_a, t_s}), 3)
        # each served from its own entry
        self.assertSecretEqual(self.token(expect_new=False), t_none, 'no-org token')
        self.assertSecretEqual(self.token(['--org-id', ORG_A], expect_new=False), t_a,
                               'org-id token')
        self.assertSecretEqual(self.token(['--org-slug', 'acme'], expect_new=False), t_s,
                               'org-slug token')
        orgs = sorted(t.attributes['organization'] for t in self.env.token_items())
        self.assertEqual(orgs, sorted(['', ORG_A, 'acme']))
        for t in self.env.token_items():
            self.assertEqual(t.attributes['server'], self.url)

    def test_organization_from_environment(self):
        self.login(args=['--no-verify'])
        self.token(env_extra={'GALILEO_ORGANIZATION_ID': ORG_A}, expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_id': ORG_A})
        self.token(env_extra={'GALILEO_ORGANIZATION_SLUG': 'envorg'}, expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'envorg'})
        # the option wins over the environment
        self.token(['--org-slug', 'flagorg'], env_extra={'GALILEO_ORGANIZATION_ID': ORG_A},
                   expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'flagorg'})

    def test_organization_order_stored_default_over_config(self):
        self.env.write_config(extra='organization-slug = cfgorg\n')
        self.login(args=['--no-verify'])
        self.token(expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'cfgorg'})
        self.login(args=['--no-verify', '--org-slug', 'storedorg'])
        self.token(expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'storedorg'})
        # environment over the stored default
        self.token(env_extra={'GALILEO_ORGANIZATION_SLUG': 'envorg'}, expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'envorg'})

    def test_invalid_org_id_exit_7_no_request(self):
        self.login(args=['--no-verify'])
        self.assertFails(self.env.run(['token', '--org-id', '1234']), 7)
        self.assertFails(self.env.run(['token'], env_extra={
            'GALILEO_ORGANIZATION_ID': 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'}), 7)
        self.assertEqual(self.server.count, 0)

    def test_stored_basic_and_bearer_headers(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('bob', pw)
        self.login(key=pw, args=['--no-verify', '--kind', 'basic', '--username', 'bob'],
                   accept=False)
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('basic', 'bob', pw))
        self.assertIsNone(self.server.last.header('Galileo-API-Key'))
        bearer = self.env.new_key('gb-test-')
        self.server.accept_bearer(bearer)
        self.login(key=bearer, args=['--no-verify', '--kind', 'bearer'], accept=False)
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('bearer', bearer))

    def test_cached_token_does_not_load_libcurl(self):
        self.login(args=['--no-verify'])
        env = {'LD_DEBUG': 'files'}
        rc, out, err = self.env.run(['token'], env_extra=env)
        self.assertEqual(rc, 0)
        self.assertEqual(self.server.count, 1)
        self.assertIn('libcurl', err, 'a cold call should load libcurl')
        rc, out2, err2 = self.env.run(['token'], env_extra=env)
        self.assertEqual(rc, 0)
        self.assertEqual(self.server.count, 1, 'second call was not served from cache')
        self.assertSecretEqual(out2, out, 'cached token')
        lines = [l for l in err2.split('\n') if 'libcurl' in l]
        self.assertEqual(lines, [], 'a cached call loaded libcurl')

    def test_unknown_option_is_usage(self):
        self.assertFails(self.env.run(['token', '--bogus']), 2)
        self.assertFails(self.env.run(['token', '--server']), 2)

    def test_server_option_equals_form(self):
        self.login(args=['--no-verify'])
        self.token(['--server=' + self.url], expect_new=True)


class Status(GCTestCase):

    def test_nothing_stored_is_exit_3(self):
        self.assertFails(self.env.run(['status']), 3, "run 'galileo-credential login")
        self.assertFails(self.env.run(['status', '--json']), 3)
        self.assertFails(self.env.run(['status', '--server', 'https://other.example']), 3)

    def test_text(self):
        self.login()
        before = int(time.time())
        rc, out, err = self.env.run(['status'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '')
        lines = out.rstrip('\n').split('\n')
        self.assertEqual(lines[0], self.url)
        body = [l.strip() for l in lines[1:]]
        self.assertIn('kind: api-key', body)
        self.assertIn('username: -', body)
        self.assertIn('keystore: secret-service', body)
        self.assertIn('organization: -', body)
        tok = [l for l in body if l.startswith('token:')]
        self.assertEqual(len(tok), 1, out)
        # galileo-credential(1) COMMANDS, TOKEN LIFETIME: the tier holding it, and the
        # time left for a person
        m = re.fullmatch(r'token: organization=- expires_at=(\S+) seconds_left=(\d+) '
                         r'tier=keystore \((in 59 min|in 1 h 0 min)\)', tok[0])
        self.assertIsNotNone(m, tok[0])
        exp = parse_rfc3339(m.group(1))
        self.assertLessEqual(abs(exp - (before + 3600)), 5)
        self.assertTrue(3500 <= int(m.group(2)) <= 3600, m.group(2))

    def test_json_shape(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice',
                                 '--org-slug', 'acme'], accept=False)
        self.token(['--org-id', ORG_A], expect_new=True)
        before = int(time.time())
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(set(doc), {'servers'})
        self.assertEqual(len(doc['servers']), 1, doc)
        s = doc['servers'][0]
        self.assertEqual(set(s), {'server', 'kind', 'username', 'keystore',
                                  'organization', 'tokens'})
        self.assertEqual(s['server'], self.url)
        self.assertEqual(s['kind'], 'basic')
        self.assertEqual(s['username'], 'alice')
        self.assertEqual(s['keystore'], 'secret-service')
        self.assertEqual(s['organization'], 'acme')
        self.assertEqual(len(s['tokens']), 2, s['tokens'])
        for t in s['tokens']:
            self.assertEqual(set(t), {'organization', 'expires_at', 'seconds_left', 'tier'})
            self.assertEqual(t['tier'], 'keystore')
            self.assertIsInstance(t['seconds_left'], int)
            self.assertTrue(3500 <= t['seconds_left'] <= 3600, t)
            self.assertLessEqual(abs(parse_rfc3339(t['expires_at']) - (before + 3600)), 5)
        self.assertEqual(sorted(t['organization'] for t in s['tokens']),
                         sorted(['acme', ORG_A]))

    def test_json_no_organization_no_tokens(self):
        self.login(args=['--no-verify'])
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        s = json.loads(out)['servers'][0]
        self.assertIn(s['organization'], ('', None))
        self.assertIn(s['username'], ('', None))
        self.assertEqual(s['tokens'], [])

    def test_env_key_listed_with_keystore_env(self):
        key = self.env.new_key()
        rc, out, err = self.env.run(['status', '--json'], env_extra={'GALILEO_API_KEY': key})
        self.assertEqual(rc, 0, err)
        servers = json.loads(out)['servers']
        self.assertEqual(len(servers), 1, servers)
        self.assertEqual(servers[0]['server'], self.url)
        self.assertEqual(servers[0]['keystore'], 'env')
        self.assertEqual(servers[0]['kind'], 'api-key')
        rc, out, err = self.env.run(['status'], env_extra={'GALILEO_API_KEY': key})
        self.assertEqual(rc, 0, err)
        self.assertIn('keystore: env', out)

    def test_env_key_listed_besides_stored(self):
        self.login(args=['--no-verify', '--server', 'https://other.example'])
        key = self.env.new_key()
        rc, out, err = self.env.run(['status', '--json'], env_extra={'GALILEO_API_KEY': key})
        self.assertEqual(rc, 0, err)
        got = {(s['server'], s['keystore']) for s in json.loads(out)['servers']}
        self.assertEqual(got, {('https://other.example', 'secret-service'),
                               (self.url, 'env')})

    def test_server_option_limits_output(self):
        self.login()
        self.login(args=['--no-verify', '--server', 'https://other.example'])
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(s['server'] for s in json.loads(out)['servers']),
                         sorted([self.url, 'https://other.example']))
        rc, out, err = self.env.run(['status', '--json', '--server', 'https://other.example'])
        self.assertEqual(rc, 0, err)
        self.assertEqual([s['server'] for s in json.loads(out)['servers']],
                         ['https://other.example'])
        rc, out, err = self.env.run(['status', '--server', 'https://other.example'])
        self.assertEqual(rc, 0, err)
        self.assertIn('https://other.example', out)
        self.assertNotIn(self.url, out)


class Logout(GCTestCase):

    def test_removes_credential_and_every_token(self):
        self.login()
        self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertEqual(len(self.env.token_items()), 2)
        rc, out, err = self.env.run(['logout'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '')
        self.assertEqual(self.env.keyring_items(), [])
        self.assertFails(self.env.run(['token']), 3)

    def test_idempotent(self):
        self.login()
        self.assertEqual(self.env.run(['logout']).returncode, 0)
        self.assertEqual(self.env.run(['logout']), (0, '', ''))

    def test_nothing_stored_is_silent(self):
        self.assertEqual(self.env.run(['logout']), (0, '', ''))

    def test_other_servers_untouched(self):
        self.login()
        self.login(args=['--no-verify', '--server', 'https://other.example'])
        rc, out, err = self.env.run(['logout', '--server', 'https://other.example'])
        self.assertEqual(rc, 0, err)
        self.assertEqual([i.attributes['server'] for i in self.env.key_items()], [self.url])
        self.assertEqual(len(self.env.token_items(server=self.url)), 1)


class EnvironmentKey(GCTestCase):

    def test_works_without_dbus(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_API_KEY': key, 'DBUS_SESSION_BUS_ADDRESS': None}
        t = self.token(env_extra=env, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertTrue(t)
        # no keystore for tokens: not cached, the next call asks again
        self.token(env_extra=env, expect_new=True)

    def test_no_dbus_and_no_env_key_is_exit_6(self):
        self.login(args=['--no-verify'])
        res = self.env.run(['token'], env_extra={'DBUS_SESSION_BUS_ADDRESS': None})
        self.assertFails(res, 6)
        self.assertEqual(self.server.count, 0)

    def test_unreachable_bus_is_exit_6(self):
        res = self.env.run(['token'], env_extra={
            'DBUS_SESSION_BUS_ADDRESS': 'unix:path=' + os.path.join(self.env.root, 'no-bus')})
        self.assertFails(res, 6)
        res = self.env.run(['login', '--no-verify'], input=self.env.new_key() + '\n',
                           env_extra={'DBUS_SESSION_BUS_ADDRESS': None})
        self.assertFails(res, 6)
        self.assertEqual(self.server.count, 0)

    def test_wins_over_stored_credential(self):
        stored = self.login(args=['--no-verify'])
        envkey = self.env.new_key()
        self.server.accept_key(envkey)
        self.token(env_extra={'GALILEO_API_KEY': envkey}, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', envkey))
        self.assertSecretEqual(self.env.key_items()[0].secret, stored, 'stored credential')

    def test_never_written_anywhere(self):
        envkey = self.env.new_key()
        self.server.accept_key(envkey)
        env = {'GALILEO_API_KEY': envkey}
        self.token(env_extra=env, expect_new=True)
        self.token(env_extra=env)
        self.assertEqual(self.env.run(['status'], env_extra=env).returncode, 0)
        rc, out, err = self.env.run(['get'], input=harness.git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port), env_extra=env)
        self.assertEqual(rc, 0, err)
        # git's approve after the get echoes the token back: stores nothing
        rc, out2, err = self.env.run(['store'], input=out + '\n', env_extra=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.env.key_items(), [])
        # an explicit login stores the given key, not the environment's
        other = self.env.new_key()
        self.server.accept_key(other)
        rc, out, err = self.env.run(['login'], input=other + '\n', env_extra=env)
        self.assertEqual(rc, 0, err)
        items = self.env.keyring_items()
        self.assertSecretEqual(self.env.key_items()[0].secret, other, 'stored credential')
        for it in items:
            self.assertNotIn(envkey, it.secret, 'GALILEO_API_KEY written to the keyring')
            self.assertNotIn(envkey, repr(it.attributes), 'GALILEO_API_KEY in attributes')
        # nor into any file under the private HOME
        for d, _, files in os.walk(self.env.home):
            for f in files:
                p = os.path.join(d, f)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                with open(p, 'rb') as fh:
                    self.assertNotIn(envkey.encode(), fh.read(),
                                     'GALILEO_API_KEY written to %s' % p)


class ServerResolution(GCTestCase):
    """Which server a credential is stored for: the `server` attribute."""

    def stored_server(self, args=(), env_extra=None):
        rc, out, err = self.env.run(['login', '--no-verify'] + list(args),
                                    input=self.env.new_key() + '\n', env_extra=env_extra)
        self.assertEqual(rc, 0, err)
        servers = [i.attributes['server'] for i in self.env.key_items()]
        self.assertEqual(len(servers), 1, servers)
        self.env.keyring_clear()
        return servers[0]

    def test_order(self):
        env = {'GALILEO_API_URL': 'https://api-url.example',
               'GALILEO_CONSOLE_URL': 'https://console.cons.example'}
        self.assertEqual(self.stored_server(['--server', 'https://flag.example'], env),
                         'https://flag.example')
        self.assertEqual(self.stored_server([], env), 'https://api-url.example')
        self.assertEqual(self.stored_server([], {'GALILEO_CONSOLE_URL':
                                                 'https://console.cons.example'}),
                         'https://api.cons.example')
        self.assertEqual(self.stored_server(), self.url)
        self.env.write_config(server=None)
        self.assertEqual(self.stored_server(), DEFAULT_SERVER)

    def test_console_url_mapping(self):
        cases = {
            'https://console.acme.example': 'https://api.acme.example',
            'https://app.galileo.ai': 'https://api.galileo.ai',
            'https://console.acme.rungalileo.io': 'https://api.acme.rungalileo.io',
            'https://console.console.example/': 'https://api.console.example',
        }
        for console, api in cases.items():
            self.assertEqual(self.stored_server([], {'GALILEO_CONSOLE_URL': console}), api,
                             console)

    def test_canonical_form(self):
        cases = {
            'HTTPS://API.Example.COM:443/': 'https://api.example.com',
            'https://api.example.com:8443/prefix/': 'https://api.example.com:8443/prefix',
            'http://LOCALHOST:80/': 'http://localhost',
            'http://127.0.0.1:8080': 'http://127.0.0.1:8080',
            'http://127.1.2.3:8080/': 'http://127.1.2.3:8080',
            'http://[::1]:8080': 'http://[::1]:8080',
        }
        for given, canon in cases.items():
            self.assertEqual(self.stored_server(['--server', given]), canon, given)
        self.assertEqual(self.stored_server([], {'GALILEO_API_URL': 'https://API.example.com/'}),
                         'https://api.example.com')

    def test_http_non_loopback_refused_before_io(self):
        for url in ('http://api.example.com', 'http://10.0.0.1', 'ftp://api.example.com',
                    'http://127.0.0.1.example.com'):
            res = self.env.run(['login', '--no-verify', '--server', url],
                               input=self.env.new_key() + '\n')
            self.assertFails(res, 7)
        res = self.env.run(['login', '--no-verify'], input=self.env.new_key() + '\n',
                           env_extra={'GALILEO_API_URL': 'http://api.example.com'})
        self.assertFails(res, 7)
        # the environment key path refuses too, without trying the network
        res = self.env.run(['token', '--server', 'http://api.example.com'],
                           env_extra={'GALILEO_API_KEY': self.env.new_key(),
                                      'LD_DEBUG': 'files'})
        self.assertEqual(res.returncode, 7)
        self.assertEqual(res.stdout, '')
        self.assertNotIn('libcurl', res.stderr, 'libcurl loaded for a refused URL')
        self.assertEqual(self.env.keyring_items(), [])

    def test_prefix_and_token_path(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.server.prefix = '/api'
        self.login(key=key, args=['--server', self.url + '/api/'])
        self.assertEqual(self.server.last.path, '/api/v1/token')
        self.assertEqual(self.env.key_items()[0].attributes['server'], self.url + '/api')
        self.server.prefix = ''
        self.server.token_path = '/custom/token'
        self.env.write_config(extra='token-path = /custom/token\n')
        self.login(key=key, args=['--no-verify'])
        self.token(expect_new=True)
        self.assertEqual(self.server.last.path, '/custom/token')


class EndpointFailures(GCTestCase):
    """Each failure: its exit code, one stderr line, nothing on stdout, nothing cached."""

    def setUp(self):
        super().setUp()
        self.key = self.login(args=['--no-verify'])

    def check(self, code, *contains):
        res = self.env.run(['token'])
        self.assertFails(res, code, *contains)
        self.assertEqual(self.env.token_items(), [])
        return res

    def test_401(self):
        self.server.accepted.clear()
        self.check(4)
        self.assertEqual(self.server.count, 1)

    def test_403(self):
        self.server.push(Response(403, {'detail': 'Not allowed'}), times=None)
        self.check(4)
        self.assertEqual(self.server.count, 1)

    def test_422_detail_entries(self):
        self.server.push(Response(422, {'detail': [
            {'loc': ['query', 'organization_id'], 'msg': 'Input should be a valid UUID',
             'type': 'uuid_parsing'},
            {'loc': ['query', 'organization_slug', 0], 'msg': 'bad slug', 'type': 'x'},
        ]}), times=None)
        self.check(7, 'query.organization_id: Input should be a valid UUID; '
                      'query.organization_slug.0: bad slug')
        self.assertEqual(self.server.count, 1)

    def test_500(self):
        self.server.push(Response(500, {'detail': 'boom'}), times=None)
        self.check(5)

    def test_429(self):
        self.server.push(Response(429, {'detail': 'slow down'}), times=None)
        self.check(5)

    def test_non_json_200(self):
        self.server.push(Response(200, '<html>hello</html>',
                                  headers={'Content-Type': 'text/html'}), times=None)
        self.check(5)

    def test_200_without_access_token(self):
        self.server.push(Response(200, {'token_type': 'bearer',
                                        'expires_at': harness.rfc3339(time.time() + 3600)}),
                         times=None)
        self.check(5)

    def test_token_with_control_characters(self):
        for bad in ('gt-test-abc\ndef', 'gt-test-abc\rdef', 'gt-test abc', ''):
            self.server.push(Response(200, {'access_token': bad, 'token_type': 'bearer',
                                            'expires_at': harness.rfc3339(time.time() + 3600)}),
                             times=None)
            self.check(5)
            res = self.env.run(['get'], input=harness.git_lines(
                'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
            self.assertFails(res, 5)

    def test_redirect_not_followed(self):
        other = TokenServer(self.env.server_cert, self.env.server_key)
        other.start()
        try:
            other.accept_key(self.key)
            self.server.push(Response(302, b'', headers={
                'Location': other.url + '/v1/token'}), times=None)
            self.check(5)
            self.assertGreaterEqual(self.server.count, 1)
            self.assertEqual(other.count, 0, 'the redirect target received a request')
            self.server.push(Response(307, b'', headers={
                'Location': other.url + '/v1/token'}), times=None)
            self.check(5)
            self.assertEqual(other.count, 0, 'the redirect target received a request')
        finally:
            other.stop()

    def test_untrusted_ca(self):
        self.env.write_config(ca_file=None)
        self.check(5)
        self.assertEqual(self.server.count, 0, 'a request got through an untrusted TLS peer')

    def test_body_over_64k(self):
        tok = self.server.new_token()
        self.server.push(Response(200, {'access_token': tok, 'token_type': 'bearer',
                                        'expires_at': harness.rfc3339(time.time() + 3600),
                                        'padding': 'x' * (70 * 1024)}), times=None)
        self.check(5)

    def test_timeout(self):
        self.env.write_config(extra='timeout = 2\n')
        self.server.push(Response(200, b'{}', delay=20), times=None)
        t0 = time.time()
        self.check(5)
        self.assertLess(time.time() - t0, 8, 'timeout = 2 not honoured')

    def test_unreachable(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        url = 'https://127.0.0.1:%d' % port
        self.login(args=['--no-verify', '--server', url])
        res = self.env.run(['token', '--server', url])
        self.assertFails(res, 5)



class LockedKeyring(harness.unittest.TestCase):
    """A locked collection is exit 6, not a hang (its own keyring: it stays locked)."""

    def test_locked_collection(self):
        env = harness.Env()
        try:
            env.start()
            key = env.new_key()
            env.server.accept_key(key)
            rc, out, err = env.run(['login'], input=key + '\n')
            self.assertEqual(rc, 0, err)
            r = subprocess.run(
                ['gdbus', 'call', '--session', '--dest', 'org.freedesktop.secrets',
                 '--object-path', '/org/freedesktop/secrets',
                 '--method', 'org.freedesktop.Secret.Service.Lock',
                 "['/org/freedesktop/secrets/collection/login']"],
                env=env.child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            t0 = time.time()
            for args, stdin in ((['token', '--refresh'], None),
                                (['login', '--no-verify'], env.new_key() + '\n')):
                rc, out, err = env.run(args, input=stdin)
                self.assertEqual(rc, 6, err)
                self.assertEqual(out, '')
                self.assertTrue(err.startswith(harness.PREFIX) and err.count('\n') == 1, err)
            self.assertLess(time.time() - t0, 20)
            self.assertEqual(env.server.count, 1)
            harness.assert_not_in_any(self, env.all_secrets(),
                                      [r.stdout + r.stderr for r in env.history])
        finally:
            env.close()

if __name__ == '__main__':
    harness.main()

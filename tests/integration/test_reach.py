#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Other consumers (galileo-credential(1) CREDENTIAL HELPER SPEC): the credential-helper-spec driven
the way Bazel drives it (the program path alone, `get` as the only argument, the JSON on stdin),
exec for the SDKs with a small program that reports what it got, token --min-ttl, and COMMAND
--help.
"""

import hashlib
import json
import os
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, parse_rfc3339  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

# the program exec runs: writes what it was given, hashed, to the file argv[1]
REPORTER = r'''
import hashlib, json, os, sys
def h(name):
    v = os.environ.get(name)
    return None if v is None else hashlib.sha256(v.encode()).hexdigest()
with open(sys.argv[1], 'w') as f:
    json.dump({'token': h('GALILEO_JWT_TOKEN'), 'key': h('GALILEO_API_KEY'),
               'url': os.environ.get('GALILEO_API_URL'), 'args': sys.argv[2:]}, f)
sys.exit(int(os.environ.get('REPORTER_EXIT', '0')))
'''


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


class Spec(GCTestCase):
    """credential-helper-spec `get`"""

    def bazel(self, request, env_extra=None):
        # Bazel runs the helper by its path with `get` alone, JSON on stdin
        return self.env.run(['get'], input=json.dumps(request), env_extra=env_extra)

    def test_answer(self):
        self.login()
        before = int(time.time())
        rc, out, err = self.bazel({'uri': self.url + '/v2/some/blob?x=1'})
        self.assertEqual((rc, err), (0, ''))
        doc = json.loads(out)
        self.assertEqual(set(doc), {'headers', 'expires'})
        self.assertEqual(list(doc['headers']), ['Authorization'])
        self.assertSecretEqual(doc['headers']['Authorization'][0],
                               'Bearer ' + self.server.last.token, 'Authorization')
        self.assertLessEqual(abs(parse_rfc3339(doc['expires']) - (before + 3600)), 5)
        # cached: the next one asks nobody
        count = self.server.count
        self.assertEqual(self.bazel({'uri': self.url + '/other'}).returncode, 0)
        self.assertEqual(self.server.count, count)

    def test_env_key_for_the_home_server_only(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_API_KEY': key}
        self.assertEqual(self.bazel({'uri': self.url + '/x'}, env).returncode, 0)
        attacker = harness.TokenServer(harness.ENV.server_cert, harness.ENV.server_key)
        attacker.start()
        try:
            res = self.bazel({'uri': attacker.url + '/x'}, env)
            self.assertFails(res, 3, 'no credential stored')
            self.assertEqual(attacker.count, 0)
        finally:
            attacker.stop()

    def test_failures(self):
        self.login()
        for request, code in (({'uri': 'https://unknown.example/x'}, 3),
                              ({'uri': 'http://example.com/x'}, 7),
                              ({'uri': 'ftp://x/y'}, 7),
                              ({'url': self.url}, 7),
                              ([self.url], 7)):
            with self.subTest(request=request):
                self.assertFails(self.bazel(request), code)
        self.assertFails(self.env.run(['get'], input='{"uri": '), 7)


class Exec(GCTestCase):

    def setUp(self):
        super().setUp()
        self.report = os.path.join(self.env.root, 'report.json')
        if os.path.exists(self.report):
            os.unlink(self.report)

    def exec_(self, options=(), args=(), env_extra=None):
        argv = ['exec'] + list(options) + ['--', sys.executable, '-c', REPORTER, self.report]
        return self.env.run(argv + list(args), env_extra=env_extra)

    def got(self):
        with open(self.report) as f:
            return json.load(f)

    def test_token_and_url_in_the_environment(self):
        self.login()
        rc, out, err = self.exec_(args=['a b', '--x'])
        self.assertEqual((rc, out, err), (0, '', ''))
        got = self.got()
        self.assertEqual(got['token'], sha(self.server.last.token))
        self.assertEqual(got['url'], self.url)
        self.assertIsNone(got['key'])
        self.assertEqual(got['args'], ['a b', '--x'], 'arguments changed on the way')

    def test_an_inherited_key_is_not_passed_on(self):
        # GALILEO_API_KEY in our environment: used, but COMMAND gets only
        # the token (SECURITY: a secret goes to another program by request)
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.exec_(env_extra={'GALILEO_API_KEY': key})
        self.assertEqual((rc, err), (0, ''))
        got = self.got()
        self.assertIsNone(got['key'], 'the key reached COMMAND')
        self.assertEqual(got['token'], sha(self.server.last.token))

    def test_api_key(self):
        key = self.login()
        rc, out, err = self.exec_(['--api-key'])
        self.assertEqual((rc, err), (0, ''))
        got = self.got()
        self.assertEqual(got['key'], sha(key))
        self.assertIsNone(got['token'])

    def test_exit_status_passed_on(self):
        self.login()
        self.assertEqual(self.exec_(env_extra={'REPORTER_EXIT': '42'}).returncode, 42)
        rc = self.env.run(['exec', '--', sys.executable, '-c',
                           'import os, signal; os.kill(os.getpid(), signal.SIGTERM)']).returncode
        self.assertEqual(rc, 128 + 15)

    def test_command_missing(self):
        self.login()
        self.assertFails(self.env.run(['exec', '--', 'no-such-command-here']), 127,
                         "cannot run 'no-such-command-here'")
        self.assertFails(self.env.run(['exec', '--']), 2)
        self.assertFails(self.env.run(['exec', sys.executable]), 2)

    def test_min_ttl(self):
        self.login()
        # the cached token (3600 s) is long enough for the default (1800 s)
        count = self.server.count
        self.assertEqual(self.exec_().returncode, 0)
        self.assertEqual(self.server.count, count)
        os.unlink(self.report)
        # a job that needs more than the server gives: refused, one line
        self.assertFails(self.exec_(['--min-ttl', '7200']), 5, 'less than the 7200 s')
        self.assertFalse(os.path.exists(self.report), 'ran anyway')

    def test_nothing_stored(self):
        self.assertFails(self.exec_(), 3, 'no credential stored')
        self.assertFalse(os.path.exists(self.report))


class MinTtl(GCTestCase):

    def test_token_min_ttl(self):
        self.server.lifetime = 1000
        self.login()
        old = self.server.last.token
        self.server.lifetime = 3600
        # 1000 s left is enough for 900
        self.assertSecretEqual(self.token(['--min-ttl', '900'], expect_new=False), old, 'token')
        # not for 2000: refreshed first
        tok = self.token(['--min-ttl', '2000'], expect_new=True)
        self.assertNotEqual(tok, old)
        self.assertFails(self.env.run(['token', '--min-ttl', '9999']), 5, 'less than')
        self.assertFails(self.env.run(['token', '--min-ttl', 'soon']), 2, 'bad --min-ttl')


class Help(GCTestCase):

    def test_command_help(self):
        for cmd in ('login', 'logout', 'token', 'status', 'doctor', 'exec'):
            with self.subTest(cmd=cmd):
                rc, out, err = self.env.run([cmd, '--help'])
                self.assertEqual((rc, err), (0, ''))
                self.assertTrue(out.startswith('usage: galileo-credential %s' % cmd), out)


if __name__ == '__main__':
    harness.main()

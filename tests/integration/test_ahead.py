#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Refresh ahead (galileo-credential(1) TOKEN LIFETIME, refresh = background, the default): a
call that finds its token valid but inside the margin answers at once and
leaves one detached refresh behind; git and docker see it end at once; the
next call gets the new token; a refresh that fails leaves the old token
served, with the usual warning, until it expires.
"""

import fcntl
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, Response, delayed, git_lines  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

SLOW = 2.0      # seconds the endpoint takes to answer a refresh
WARNING = harness.PREFIX + 'warning: '


class Ahead(GCTestCase):

    def setUp(self):
        super().setUp()
        self.key = self.login()
        self.cached = self.server.last.token

    def age(self, left=120):
        """the cached token (keystore tier) as if it had only `left` s to go"""
        item, = self.env.token_items()
        fields = harness.parse_payload(item.secret)
        self.assertIsNotNone(fields, 'the token item holds no payload')
        fields['expires'] = int(time.time()) + left
        self.env.keyring_store(harness.TOKEN_SCHEMA, item.label, harness.format_payload(fields),
                               **item.attributes)

    def timed(self, args, **kw):
        t = time.time()
        res = self.env.run(args, **kw)
        return res, time.time() - t

    def test_served_at_once_then_refreshed(self):
        self.age()
        self.server.push(delayed(self.server.token_reply(), SLOW))
        count = self.server.count
        res, took = self.timed(['token'])
        self.assertEqual((res.returncode, res.stderr), (0, ''))
        self.assertSecretEqual(res.stdout, self.cached + '\n', 'token served')
        self.assertLess(took, SLOW / 2, 'the call waited for the refresh')
        self.env.wait_refreshes()
        self.assertEqual(self.server.count, count + 1, 'no refresh, or more than one')
        new = self.server.last.token
        self.assertSecretEqual(self.token(expect_new=False), new, 'the refreshed token')

    def test_git_and_docker_see_the_call_end_at_once(self):
        for argv0, args, inp in (
                ('git-credential-galileo', ['get'],
                 git_lines('protocol=https', 'host=127.0.0.1:%d' % self.server.port)),
                ('docker-credential-galileo', ['get'], '127.0.0.1:%d\n' % self.server.port)):
            with self.subTest(dialect=argv0):
                self.env.wait_refreshes()
                self.age()
                self.server.push(delayed(self.server.token_reply(), SLOW))
                # run() reads stdout and stderr to their end: a refresh that
                # kept either open would make it wait
                res, took = self.timed(args, argv0=argv0, input=inp)
                self.assertEqual(res.returncode, 0, res)
                self.assertLess(took, SLOW / 2, 'the caller waited')
                self.env.wait_refreshes()
                self.cached = self.server.last.token

    def test_no_descriptor_of_the_caller_is_kept(self):
        """
        A pipeline reading from a descriptor the caller inherited (fd 5
        here, not one of 0-2) sees it closed once the call ends, not once
        the detached refresh does.
        """
        self.age()
        self.server.push(delayed(self.server.token_reply(), SLOW))
        r, w = os.pipe()
        moved = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10)     # keep 5 free for w
        os.close(r)
        r = moved
        try:
            if w != 5:
                os.dup2(w, 5)
                os.close(w)
            t = time.time()
            p = subprocess.run([self.env.program, 'token'], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(5,),
                               env=self.env.child_env(), cwd=self.env.home, timeout=30)
            os.close(5)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertSecretEqual(p.stdout.decode(), self.cached + '\n', 'token served')
            self.assertEqual(os.read(r, 1), b'', 'something wrote into the inherited pipe')
            took = time.time() - t
        finally:
            os.close(r)
        self.assertLess(took, SLOW / 2, 'the inherited descriptor stayed open for the refresh')
        self.env.wait_refreshes()

    def test_one_refresh_for_many_callers(self):
        self.age()
        self.server.push(delayed(self.server.token_reply(), SLOW), times=None)
        count = self.server.count
        procs = [self.env.spawn(['token']) for _ in range(8)]
        for p in procs:
            res = p.finish()
            self.assertEqual(res.returncode, 0, res.stderr)
        self.env.wait_refreshes()
        self.assertEqual(self.server.count, count + 1, 'single flight')

    def test_failed_refresh_keeps_the_old_token_with_a_warning(self):
        self.age(left=100)
        self.server.push(Response(503, {'detail': 'down'}), times=None)
        res = self.env.run(['token'])
        self.assertEqual((res.returncode, res.stderr), (0, ''))
        self.assertSecretEqual(res.stdout, self.cached + '\n', 'token served')
        self.env.wait_refreshes()
        # the failure noted: the next call warns and serves the old token
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(out, self.cached + '\n', 'token served')
        lines = err.split('\n')
        self.assertEqual(len(lines), 2, err)
        self.assertTrue(lines[0].startswith(WARNING), err)
        self.assertIn('HTTP 503', lines[0])
        self.assertIn('using the cached token, which expires in', lines[0])
        self.env.wait_refreshes()
        # once it expired, never again
        self.age(left=-1)
        self.assertFails(self.env.run(['token']), 5, 'HTTP 503')

    def test_a_rejected_refresh_is_not_papered_over(self):
        # TOKEN LIFETIME: a 401 on refresh fails as EXIT STATUS says, also when a
        # background refresh met it: the next call refreshes itself
        self.age()
        self.server.push(Response(401, {'detail': 'revoked'}), times=None)
        self.assertEqual(self.env.run(['token']).returncode, 0)
        self.env.wait_refreshes()
        self.assertFails(self.env.run(['token']), 4, 'rejected the credential')

    def test_after_a_failure_not_every_call_starts_a_refresh(self):
        self.age(left=200)
        self.server.push(Response(503, {'detail': 'down'}), times=None)
        self.assertEqual(self.env.run(['token']).returncode, 0)
        self.env.wait_refreshes()
        count = self.server.count
        for _ in range(3):
            rc, out, err = self.env.run(['token'])
            self.assertEqual(rc, 0, err)
            self.assertIn('using the cached token', err)
        self.env.wait_refreshes()
        self.assertEqual(self.server.count, count, 'a refresh per call while it fails')

    def test_inline_refreshes_in_the_call(self):
        self.env.refresh_mode = 'inline'
        self.env.write_config()
        self.age()
        self.server.push(delayed(self.server.token_reply(), SLOW))
        res, took = self.timed(['token'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertGreaterEqual(took, SLOW * 0.9)
        self.assertSecretEqual(res.stdout, self.server.last.token + '\n', 'new token')

    def test_kernel_tier(self):
        self.env.write_config(token_cache=None)
        self.server.push(self.server.token_reply(lifetime=6))
        self.token(['--refresh'], expect_new=True)
        old = self.server.last.token
        time.sleep(3.3)         # margin capped at half of 6 s
        self.server.push(delayed(self.server.token_reply(), SLOW))
        res, took = self.timed(['token'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertSecretEqual(res.stdout, old + '\n', 'token served')
        self.assertLess(took, SLOW / 2)
        self.env.wait_refreshes()
        self.assertSecretEqual(self.token(expect_new=False), self.server.last.token, 'refreshed')


if __name__ == '__main__':
    harness.main()

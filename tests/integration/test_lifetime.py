#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Token lifetime (galileo-credential(1) TOKEN LIFETIME): freshness margin and its half-lifetime
cap, expires_at formats, the Date correction, the JWT fallback, expired
tokens, and which credential a cached token belongs to.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, git_lines, make_jwt, parse_git_output,  # noqa: E402
                     rfc3339, wait_for_second_start)

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule


class LifetimeBase(GCTestCase):

    def setUp(self):
        super().setUp()
        # these rows are about when a token is refreshed, so refresh in the
        # call itself (refresh = background is tested in test_ahead.py)
        self.env.refresh_mode = 'inline'
        self.env.write_config()
        self.key = self.login(args=['--no-verify'])

    def get(self, expect_new=None):
        """git-format get; returns (token, password_expiry_utc or None)."""
        before = self.server.count
        rc, out, err = self.env.run(['get'], input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
        self.assertEqual(rc, 0, err)
        d, _ = parse_git_output(out)
        if expect_new is True:
            self.assertEqual(self.server.count, before + 1, 'expected a request')
        elif expect_new is False:
            self.assertEqual(self.server.count, before, 'expected the cached token')
        exp = d.get('password_expiry_utc')
        return d.get('password'), int(exp) if exp else None

    def assertNear(self, got, expected, slack=3, what='expiry'):
        self.assertIsNotNone(got, what + ' missing')
        self.assertLessEqual(abs(got - expected), slack,
                             '%s %d, expected about %d (off by %d)'
                             % (what, got, expected, got - expected))


class Freshness(LifetimeBase):

    def test_token_inside_margin_is_not_served(self):
        # lifetime 6 s: margin = min(300, 6/2) = 3 s, fresh for about 3 s
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=6))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now      # the server's "now" for expires_at
        self.assertSecretEqual(self.token(expect_new=False), t1, 'cached token')
        time.sleep(max(0, base + 3.4 - time.time()))
        # not expired yet, but inside the margin: exchanged again
        t2 = self.token(expect_new=True)
        self.assertNotEqual(t1, t2)

    def test_failed_refresh_inside_margin_keeps_cached_token(self):
        # TOKEN LIFETIME: unreachable/5xx on refresh while not yet expired;
        # lifetime 10 s: margin 5 s, room for 3 attempts and their waits
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=10))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now
        time.sleep(max(0, base + 5.4 - time.time()))
        self.server.push(harness.Response(500, {'detail': 'down'}), times=None)
        before = self.server.count
        rc, out, err = self.env.run(['token'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, before + 3, 'a refresh was tried 3 times')
        self.assertSecretEqual(out, t1 + '\n', 'cached token')
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('galileo-credential: warning: '), err)
        # a rejection on refresh is not papered over
        self.server.push(harness.Response(401, {'detail': 'no'}), times=None)
        self.assertFails(self.env.run(['token']), 4)
        # and once expired, a failed refresh fails
        self.server.push(harness.Response(500, {'detail': 'down'}), times=None)
        time.sleep(max(0, base + 10.3 - time.time()))
        self.assertFails(self.env.run(['token']), 5)

    def test_expired_cached_token_never_handed_out(self):
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=2))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now
        time.sleep(max(0, base + 2.5 - time.time()))
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        for t in json.loads(out)['servers'][0]['tokens']:
            self.assertEqual(t['seconds_left'], 0, 'negative or stale seconds_left')
        t2 = self.token(expect_new=True)
        self.assertNotEqual(t1, t2)

    def test_margin_capped_at_half_lifetime(self):
        # lifetime 100 s, margin 300: without the cap it would never be fresh
        self.server.push(self.server.token_reply(lifetime=100))
        t1 = self.token(expect_new=True)
        self.assertSecretEqual(self.token(expect_new=False), t1, 'cached token')

    def test_margin_between_half_and_whole_lifetime(self):
        # a lifetime between the margin and twice it (5-10 minutes with the
        # default 300 s; here 20 s with refresh-margin 12): the margin is
        # half the lifetime, 10 s, so the token is used for 10 s, not 8
        self.env.write_config(extra='refresh-margin = 12\n')
        wait_for_second_start()
        self.server.push(self.server.token_reply(lifetime=20))
        t1 = self.token(expect_new=True)
        base = self.server.last.server_now
        time.sleep(max(0, base + 9.2 - time.time()))
        self.assertSecretEqual(self.token(expect_new=False), t1, 'cached token after 9 s')
        time.sleep(max(0, base + 10.5 - time.time()))
        self.assertNotEqual(self.token(expect_new=True), t1)

    def test_already_expired_expires_at(self):
        self.server.push(self.server.token_reply(expires_at=lambda now: rfc3339(now - 10)),
                         times=None)
        res = self.env.run(['token'])
        self.assertFails(res, 5)
        self.assertEqual(self.env.token_items(), [])
        res = self.env.run(['get'], input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
        self.assertFails(res, 5)


class ExpiresAtFormats(LifetimeBase):
    """Each format read right: expiry reported, token cached."""

    def check(self, fmt, lifetime=3600):
        self.server.push(self.server.token_reply(expires_at=lambda now: fmt(now + lifetime)))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertNear(exp, now + lifetime)
        tok2, exp2 = self.get(expect_new=False)
        self.assertSecretEqual(tok2, tok, 'cached token')
        self.env.keyring_clear()
        self.login(key=self.key, args=['--no-verify'])

    def test_utc_z(self):
        self.check(lambda e: rfc3339(e))

    def test_positive_offset(self):
        self.check(lambda e: rfc3339(e, offset_minutes=330))

    def test_negative_offset(self):
        self.check(lambda e: rfc3339(e, offset_minutes=-7 * 60))

    def test_naive_is_utc(self):
        self.check(lambda e: rfc3339(e, naive=True))

    def test_fractional_seconds(self):
        self.check(lambda e: rfc3339(e, frac='123456'))
        self.check(lambda e: rfc3339(e, frac='5', offset_minutes=60))
        self.check(lambda e: rfc3339(e, frac='999999', naive=True))


class DateHeader(LifetimeBase):
    """
    The lifetime counts from the server's Date, when that is at most an hour
    off the local clock; expiry is on the local clock.
    """

    def test_server_clock_ahead(self):
        self.server.push(self.server.token_reply(lifetime=3600, date_skew=1800))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertNear(exp, now + 3600)
        self.get(expect_new=False)

    def test_server_clock_behind(self):
        # by the local clock this expires_at is now: without the Date
        # correction the token would count as already expired
        self.server.push(self.server.token_reply(lifetime=1800, date_skew=-1800))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertNear(exp, now + 1800)
        self.get(expect_new=False)

    def test_date_of_1970_is_not_believed(self):
        # a proxy with a dead clock: Date 1970, expires_at 3 s from now.
        # Believed, the 3 s would count from 1970 and last until 2080.
        wait_for_second_start()
        self.server.push(self.server.token_reply(
            date_skew=-int(time.time()),
            expires_at=lambda _server_now: rfc3339(time.time() + 3)))
        now = int(time.time())
        t1, exp = self.get(expect_new=True)
        self.assertNear(exp, now + 3, slack=2)
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        for t in json.loads(out)['servers'][0]['tokens']:
            self.assertLessEqual(t['seconds_left'], 3, t)
        # never served after the server's expiry
        time.sleep(max(0, now + 3.5 - time.time()))
        t2, exp2 = self.get(expect_new=True)
        self.assertNotEqual(t1, t2)

    def test_date_more_than_an_hour_off_is_not_believed(self):
        for skew in (3700, -3700, -10 * 365 * 86400):
            with self.subTest(skew=skew):
                self.env.keyring_clear()
                self.login(key=self.key, args=['--no-verify'])
                # expires_at 600 s from the local now, whatever Date says
                self.server.push(self.server.token_reply(
                    date_skew=skew, expires_at=lambda _server_now: rfc3339(time.time() + 600)))
                now = int(time.time())
                tok, exp = self.get(expect_new=True)
                self.assertNear(exp, now + 600)

    def test_status_reports_local_clock(self):
        self.server.push(self.server.token_reply(lifetime=1800, date_skew=2400))
        now = int(time.time())
        self.token(expect_new=True)
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        t = json.loads(out)['servers'][0]['tokens'][0]
        self.assertNear(harness.parse_rfc3339(t['expires_at']), now + 1800)
        self.assertTrue(1790 <= t['seconds_left'] <= 1800, t)

    def test_no_date_header(self):
        self.server.push(self.server.token_reply(lifetime=3600, date=False))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertNear(exp, now + 3600)


class Fallbacks(LifetimeBase):

    def test_jwt_exp_when_expires_at_missing(self):
        self.server.push(self.server.token_reply(
            omit_expires=True,
            token=lambda: make_jwt({'sub': 'u', 'exp': int(time.time()) + 1800})))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertEqual(tok.count('.'), 2)
        self.assertNear(exp, now + 1800)
        self.get(expect_new=False)

    def test_jwt_exp_when_expires_at_unreadable(self):
        self.server.push(self.server.token_reply(
            expires_at='next tuesday',
            token=lambda: make_jwt({'exp': int(time.time()) + 1200})))
        now = int(time.time())
        tok, exp = self.get(expect_new=True)
        self.assertNear(exp, now + 1200)
        self.get(expect_new=False)

    def test_neither_returns_token_uncached(self):
        self.server.push(self.server.token_reply(omit_expires=True), times=2)
        t1 = self.token(expect_new=True)
        self.assertTrue(t1)
        t2 = self.token(expect_new=True)
        self.assertNotEqual(t1, t2)
        self.assertEqual(self.env.token_items(), [])

    def test_expired_jwt_exp(self):
        self.server.push(self.server.token_reply(
            omit_expires=True,
            token=lambda: make_jwt({'exp': int(time.time()) - 60})), times=None)
        self.assertFails(self.env.run(['token']), 5)


class WhoseToken(LifetimeBase):

    def test_new_credential_drops_cached_tokens(self):
        self.token(expect_new=True)
        self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertEqual(len(self.env.token_items()), 2)
        new = self.login(args=['--no-verify'])
        self.assertEqual(self.env.token_items(), [])
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', new))

    def test_env_key_tokens_tied_to_that_key(self):
        a, b = self.env.new_key(), self.env.new_key()
        self.server.accept_key(a)
        self.server.accept_key(b)
        ta = self.token(env_extra={'GALILEO_API_KEY': a}, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', a))
        self.assertSecretEqual(self.token(env_extra={'GALILEO_API_KEY': a}, expect_new=False),
                               ta, 'cached token for A')
        tb = self.token(env_extra={'GALILEO_API_KEY': b}, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', b))
        self.assertNotEqual(ta, tb)
        for it in self.env.token_items():
            for k in (a, b, self.key):
                self.assertNotIn(k, it.secret, 'a key is in a token item')

    def test_stored_credential_token_not_served_for_env_key(self):
        ts = self.token(expect_new=True)
        envkey = self.env.new_key()
        self.server.accept_key(envkey)
        te = self.token(env_extra={'GALILEO_API_KEY': envkey}, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', envkey))
        self.assertNotEqual(ts, te)
        # and the other way round
        ts2 = self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', self.key))
        self.assertNotEqual(ts2, te)


if __name__ == '__main__':
    harness.main()

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
A full kernel key quota (galileo-credential(1) TOKEN LIFETIME): a token that the kernel tier
cannot hold is cached in the keystore tier, `status` says which tier holds
it, and the next call is served from there without an exchange; login,
git get and docker get go on working.

A user may own at most /proc/sys/kernel/keys/maxkeys keys of at most
maxbytes bytes in all (200 keys and 20000 bytes on Debian; root gets
root_maxkeys and root_maxbytes, a million keys and 25 MB), counted per UID
over every keyring, as /proc/key-users shows.  So this runs only as a
user other than root (scripts/check-as-user in CI), and skips as root.

Each test fills the quota almost full with filler keys in @u (user keys
described gc-it-quota-filler:...), leaving less room than one token key
needs: no key slot at all, or fewer bytes than a token key's description.
The fillers go after the test, whatever happens (and any a killed run
left are removed at the next start).  The module holds the harness's key
quota lock exclusively (harness.keys_lock()), so no other test module of
this UID adds keys while the quota is full.
"""

import atexit
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
FILLER = 'gc-it-quota-filler:'
QUOTA_FULL = 'Disk quota exceeded'      # EDQUOT, as keyctl says it


def quota():
    """
    This UID's (keys, max keys, bytes, max bytes) from /proc/key-users, or
    None when it has no line there.
    """
    with open('/proc/key-users') as f:
        for line in f:
            # "  UID:  USAGE NKEYS/NIKEYS QNKEYS/MAXKEYS QNBYTES/MAXBYTES"
            m = re.match(r'\s*(\d+):\s+\d+\s+\d+/\d+\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s*$', line)
            if m and int(m.group(1)) == os.getuid():
                return tuple(int(x) for x in m.group(2, 3, 4, 5))
    return None


def settled_quota(timeout=10):
    """quota() once it has stopped changing (the kernel frees keys lazily)"""
    last, since = quota(), time.time()
    deadline = since + timeout
    while time.time() < deadline and time.time() - since < 0.5:
        time.sleep(0.05)
        q = quota()
        if q != last:
            last, since = q, time.time()
    return last


def filler_serials():
    """serials of the filler keys linked in @u (this run's or a killed one's)"""
    return sorted(k.serial for k in harness.proc_keys()
                  if k.type == 'user' and k.description.startswith(FILLER))


def remove_fillers():
    for serial in filler_serials():
        harness.unlink_and_invalidate(serial)
    settled_quota()


def why_not():
    if os.geteuid() == 0:
        return ("root's key quota is root_maxkeys/root_maxbytes (25 MB), too large to "
                "fill; run as a user (scripts/check-as-user)")
    why = harness.kernel_keys_usable()
    if why:
        return why
    if not os.path.exists('/proc/key-users'):
        return '/proc/key-users is missing'
    return None


def setUpModule():
    if os.geteuid() != 0:
        # before any key is added: no other test module of this UID runs
        # while the quota is full
        harness.keys_lock(exclusive=True)
    why = why_not()
    if why:
        raise unittest.SkipTest(why)
    atexit.register(remove_fillers)     # even when killed by SIGTERM
    remove_fillers()                    # what a killed run left
    harness.setUpModule()


def tearDownModule():
    try:
        harness.tearDownModule()
    finally:
        remove_fillers()


class QuotaFull(GCTestCase):

    def setUp(self):
        super().setUp()
        self.env.write_config(token_cache=None)        # the default: keyctl
        self.host = '127.0.0.1:%d' % self.server.port
        self.fillers = 0

    # -- the filler keys ------------------------------------------------------
    def add_filler(self, payload_len):
        """one user key in @u taking payload_len bytes of payload, plus its description"""
        desc = '%s%08d:%06d' % (FILLER, os.getpid() % 10 ** 8, self.fillers)
        self.fillers += 1
        r = subprocess.run(['keyctl', 'padd', 'user', desc, '@u'],
                           input=b'f' * payload_len, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=harness.RUN_TIMEOUT,
                           env=dict(os.environ, LC_ALL='C'))
        return r.returncode, r.stderr.decode('utf-8', 'replace').strip()

    def fill(self, keys_free=None, bytes_free=None):
        """
        Filler keys until at most keys_free key slots and exactly bytes_free
        bytes are left of the quota (None: as many as there are).
        """
        self.addCleanup(remove_fillers)
        # expired keys in @u stay counted until the kernel collects them
        # (gc_delay after expiry) and could be freed in the middle of a
        # test: unlink them now, they are of use to no one
        linked = self.env.user_keyring_serials()
        for k in harness.proc_keys():
            if k.uid == os.getuid() and k.expiry == 'expd' and k.serial in linked:
                harness.keyctl(['unlink', k.serial, '@u'])
        nkeys, maxkeys, nbytes, maxbytes = settled_quota()
        # a key costs its description and payload, and 4 bytes for its
        # link in @u: measure one
        rc, err = self.add_filler(1)
        self.assertEqual(rc, 0, 'first filler key: %s' % err)
        k1, _, b1, _ = settled_quota()
        self.assertEqual(k1, nkeys + 1, 'quota counts keys differently')
        base = b1 - nbytes - 1          # what a filler costs beside its payload
        self.assertGreater(base, len(FILLER), 'quota counts bytes differently')
        while True:
            nkeys, maxkeys, nbytes, maxbytes = quota()
            slots, room = maxkeys - nkeys, maxbytes - nbytes
            more_slots = keys_free is not None and slots > keys_free
            more_room = bytes_free is not None and room > bytes_free
            if not more_slots and not more_room:
                break
            payload = 1
            if more_room and (not more_slots or slots == keys_free + 1):
                # the bytes but bytes_free, in one key where it can hold
                # them (at most 32767 bytes), else in a few
                payload = room - bytes_free - base
                if payload > 32767:
                    payload = min(32767, payload - base - 1)
                self.assertGreater(payload, 0, 'cannot leave exactly %d bytes' % bytes_free)
            rc, err = self.add_filler(payload)
            self.assertEqual(rc, 0, 'filler key of %d bytes (%d slots, %d bytes left): %s' % (
                payload, slots, room, err))
        return self.assertQuotaFull(keys_free, bytes_free)

    def assertQuotaFull(self, keys_free=None, bytes_free=None):
        """the quota is (still) as full as fill() left it"""
        nkeys, maxkeys, nbytes, maxbytes = q = settled_quota()
        keys_free = maxkeys if keys_free is None else keys_free
        bytes_free = maxbytes if bytes_free is None else bytes_free
        self.assertTrue(maxkeys - nkeys <= keys_free and maxbytes - nbytes <= bytes_free,
                        'quota not full: %d/%d keys, %d/%d bytes used (wanted at most %d '
                        'keys and %d bytes free)' % (nkeys, maxkeys, nbytes, maxbytes,
                                                     keys_free, bytes_free))
        return q

    def assertNoRoomForAToken(self):
        """a key as large as the helper's token key for this server cannot be added"""
        desc = self.env.token_key_desc()
        probe = 'gc-it-quota-probe:' + 'p' * max(0, len(desc) - len('gc-it-quota-probe:'))
        r = harness.keyctl(['add', 'user', probe, 'p', '@u'])
        if r.returncode == 0:
            harness.keyctl(['unlink', r.stdout.decode().strip(), '@u'])
        self.assertNotEqual(r.returncode, 0, 'the quota still holds a token key: %r' %
                            (quota(),))
        self.assertIn(QUOTA_FULL, r.stderr)

    # -- what a user sees -------------------------------------------------------
    def status_tiers(self):
        """(organization, tier) of each token `status --json` lists, and the text lines"""
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual((rc, err), (0, ''))
        servers = json.loads(out)['servers']
        self.assertEqual([s['server'] for s in servers], [self.url])
        tiers = sorted((t['organization'], t['tier']) for t in servers[0]['tokens'])
        rc, out, err = self.env.run(['status'])
        self.assertEqual((rc, err), (0, ''))
        lines = [l.strip() for l in out.split('\n') if l.strip().startswith('token:')]
        return tiers, lines

    def assertInKeystoreTier(self, orgs):
        """a token for each of orgs in the keyring, none in the kernel; status says so"""
        self.assertEqual(sorted(t.attributes['organization'] for t in self.env.token_items()),
                         sorted(orgs))
        self.assertEqual(self.env.kernel_keys(), [],
                         'a key of ours in the kernel keyring with its quota full')
        tiers, lines = self.status_tiers()
        self.assertEqual(tiers, sorted((o, 'keystore') for o in orgs))
        self.assertEqual(len(lines), len(orgs), lines)
        for o, line in zip(sorted(orgs), sorted(lines)):
            self.assertRegex(line, r'^token: organization=%s expires_at=\S+ seconds_left=\d+ '
                                   r'tier=keystore \(' % re.escape(o or '-'))

    def git_get(self, *extra):
        rc, out, err = self.env.run(['get'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, *extra))
        self.assertEqual((rc, err), (0, ''))
        return parse_git_output(out)[0]

    def docker_get(self):
        rc, out, err = self.env.run(['get'], argv0=DOCKER, input=self.url + '\n')
        self.assertEqual((rc, err), (0, ''))
        return json.loads(out)

    # -- the tests ----------------------------------------------------------------
    def check_full(self, keys_free=None, bytes_free=None):
        self.fill(keys_free, bytes_free)
        self.assertNoRoomForAToken()
        key = self.login(args=['--no-verify'])
        self.assertEqual(self.server.count, 0)

        # a token the kernel tier cannot hold goes to the keystore tier
        tok = self.token(expect_new=True)
        self.assertInKeystoreTier([''])
        # (not assertIn: its message would show the token)
        self.assertTrue(tok in self.env.token_items()[0].secret.split(' '),
                        'the token item does not hold the token')
        # and is served from there
        self.assertSecretEqual(self.token(expect_new=False), tok, 'cached token')
        self.assertSecretEqual(self.git_get().get('password'), tok, 'git get token')
        self.assertSecretEqual(self.docker_get().get('Secret'), tok, 'docker get token')
        self.assertEqual(self.server.count, 1, 'cached token exchanged again')

        # another organization: one exchange, cached beside the first
        tok2 = self.token(['--org-slug', 'acme'], expect_new=True)
        self.assertSecretEqual(self.token(['--org-slug', 'acme'], expect_new=False), tok2,
                               'cached token')
        count = self.server.count
        self.assertSecretEqual(self.git_get('organization_slug=acme').get('password'), tok2,
                               'git get token')
        self.assertEqual(self.server.count, count, 'cached token exchanged again')
        self.assertInKeystoreTier(['', 'acme'])

        # login verifying a new key: its token is cached in the keystore
        # tier, the old credential's tokens are dropped
        key2 = self.login()
        self.assertNotEqual(key, key2)
        self.assertEqual(self.server.count, count + 1, 'login did not verify')
        login_tok = self.server.last.token
        self.assertInKeystoreTier([''])
        self.assertSecretEqual(self.token(expect_new=False), login_tok, 'token after login')

        # a git get and a docker get that must exchange work too
        rc, out, err = self.env.run(['logout'])
        self.assertEqual(rc, 0, err)
        self.login(key=key2, args=['--no-verify'])
        got = self.git_get()
        self.assertEqual(self.server.count, count + 2, 'git get did not exchange')
        self.assertSecretEqual(got.get('password'), self.server.last.token, 'git get token')
        self.assertInKeystoreTier([''])
        rc, out, err = self.env.run(['logout'])
        self.assertEqual(rc, 0, err)
        self.login(key=key2, args=['--no-verify'])
        got = self.docker_get()
        self.assertEqual(self.server.count, count + 3, 'docker get did not exchange')
        self.assertSecretEqual(got.get('Secret'), self.server.last.token, 'docker get token')
        self.assertInKeystoreTier([''])
        self.assertSecretEqual(self.token(expect_new=False), got['Secret'], 'cached token')

        # nothing above freed the quota or sneaked a key in
        self.assertQuotaFull(keys_free, bytes_free)
        # and no call said a word about it
        for run in self.env.history:
            if run.action in ('token', 'get', 'status', 'logout'):
                self.assertEqual(run.stderr, '', run.what)

    def test_no_key_slot_left(self):
        """every key the user may own is taken, bytes to spare"""
        self.check_full(keys_free=0)

    def test_bytes_left_too_few_for_a_token(self):
        """key slots to spare, fewer bytes left than a token key's description"""
        self.check_full(bytes_free=len(self.env.token_key_desc()) // 2)


if __name__ == '__main__':
    harness.main()

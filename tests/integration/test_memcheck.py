#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The main commands under valgrind's memcheck: the exit codes they have
without it, no memory error and no definite leak.

Each run is `valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
--errors-for-leak-kinds=definite --track-fds=no --log-file=...`, with the
suppressions of tests/integration/valgrind.supp (third-party libraries
only: GLib, libsecret, libcurl, OpenSSL).  The modules are dlopened with
RTLD_NODELETE, so their symbols resolve in the stacks; "possibly lost"
blocks (GLib's type system keeps many) do not count.  A failure shows the
first error stacks of the log (the log holds no secret).

Runs take seconds each, so they are few; the module skips when valgrind is
not installed (apt-get install valgrind) and for a build with
--enable-sanitizers (ASan and valgrind exclude each other).
"""

import json
import os
import re
import shutil
import sys
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'valgrind.supp')
VALGRIND_TIMEOUT = 180
# GLib's allocator and memory hygiene in the form valgrind understands
GLIB_ENV = {'G_SLICE': 'always-malloc', 'G_DEBUG': 'gc-friendly'}


def sanitized(path):
    """whether the program is built with ASan (valgrind cannot run it)"""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return False
    return b'__asan_init' in data or b'libasan.so' in data


def setUpModule():
    if not shutil.which('valgrind'):
        raise unittest.SkipTest('valgrind is not installed (apt-get install valgrind)')
    if sanitized(harness.program_path()):
        raise unittest.SkipTest('built with AddressSanitizer, which valgrind cannot run '
                                '(that build checks memory itself)')
    harness.setUpModule()


tearDownModule = harness.tearDownModule


def parse_log(text):
    """(errors, definitely lost bytes, first error blocks) of a memcheck log"""
    m = re.search(r'ERROR SUMMARY: ([\d,]+) errors', text)
    errors = int(m.group(1).replace(',', '')) if m else None
    m = re.search(r'definitely lost: ([\d,]+) bytes', text)
    definite = int(m.group(1).replace(',', '')) if m else 0
    blocks = []
    cur = []
    for line in text.split('\n'):
        body = re.sub(r'^==\d+== ?', '', line)
        if not body.strip():
            if cur:
                blocks.append('\n'.join(cur))
                cur = []
            continue
        cur.append(body)
    if cur:
        blocks.append('\n'.join(cur))
    # the error blocks: an error line followed by its stack, not the banners
    interesting = [b for b in blocks
                   if re.search(r'^(Invalid|Conditional|Use of uninit|Syscall param|'
                                r'Mismatched|Source and destination|Argument|'
                                r'.*definitely lost in loss record)', b, re.M)]
    return errors, definite, interesting


class Memcheck(GCTestCase):

    def setUp(self):
        super().setUp()
        self.host = '127.0.0.1:%d' % self.server.port
        self.logs = []

    def start(self, what, args, code, **kw):
        """start args under memcheck; check() waits and asserts"""
        log = os.path.join(self.env.logdir, 'memcheck-%d.log' % len(self.logs))
        self.logs.append(log)
        wrapper = ['valgrind', '--tool=memcheck', '--error-exitcode=99', '--leak-check=full',
                   '--errors-for-leak-kinds=definite', '--track-fds=no', '--num-callers=30',
                   '--log-file=' + log]
        if os.path.exists(SUPPRESSIONS):
            wrapper.append('--suppressions=' + SUPPRESSIONS)
        env = dict(GLIB_ENV, **(kw.pop('env_extra', None) or {}))
        sp = self.env.spawn(args, wrapper=wrapper, env_extra=env, **kw)
        return (what, code, log, sp)

    def check(self, started):
        what, code, log, sp = started
        res = sp.finish(timeout=VALGRIND_TIMEOUT)
        with open(log, errors='replace') as f:
            text = f.read()
        errors, definite, blocks = parse_log(text)
        with self.subTest(command=what):
            self.assertIsNotNone(errors, '%s: no ERROR SUMMARY in %s' % (what, log))
            if errors or definite:
                self.fail('%s: %d memcheck errors, %d bytes definitely lost:\n\n%s' % (
                    what, errors, definite, '\n\n'.join(blocks[:4])))
            self.assertEqual(res.returncode, code, '%s: exit code; stderr=%r' % (
                what, res.stderr[-300:]))
        return res

    def vg(self, what, args, code, **kw):
        """run under memcheck; assert its exit code and a clean log"""
        return self.check(self.start(what, args, code, **kw))

    def vg_together(self, *runs):
        """independent runs (what, args, code, kw) side by side: memcheck is slow"""
        started = [self.start(what, args, code, **kw) for what, args, code, kw in runs]
        return [self.check(s) for s in started]

    def test_main_commands(self):
        """
        login, token (miss, hit, 401), status, logout, git get/store/erase,
        docker get/store/list/erase; both token-cache tiers; independent
        runs side by side
        """
        self.env.write_config(token_cache=None)         # keyctl, the default
        keystore_tier = {'GALILEO_CREDENTIAL_TOKEN_CACHE': 'keystore'}
        key, bad, key2, key3 = (self.env.new_key() for _ in range(4))
        for k in (key, key2, key3):
            self.server.accept_key(k)
        git_in = git_lines('protocol=https', 'host=' + self.host, 'capability[]=authtype')
        self.vg_together(
            ('login', ['login'], 0, dict(input=key + '\n')),
            ('token (401)', ['token'], 4, dict(env_extra={'GALILEO_API_KEY': bad})))
        self.assertEqual(self.server.count, 2)
        hit, status, get, listed = self.vg_together(
            ('token (kernel hit)', ['token'], 0, {}),
            ('status --json', ['status', '--json'], 0, {}),
            ('git get (kernel hit)', ['get'], 0, dict(argv0=GIT, input=git_in)),
            ('docker list', ['list'], 0, dict(argv0=DOCKER)))
        self.assertEqual(self.server.count, 2)
        self.assertEqual(len(json.loads(status.stdout)['servers']), 1)
        self.assertEqual(json.loads(listed.stdout), {self.url: ''})
        tok = parse_git_output(get.stdout)[0]['credential']
        self.vg_together(
            ('token (miss, keystore tier)', ['token', '--org-slug', 'acme'], 0,
             dict(env_extra=keystore_tier)),
            ('docker get (kernel hit)', ['get'], 0, dict(argv0=DOCKER, input=self.url + '\n')))
        self.assertEqual(self.server.count, 3)
        self.assertEqual(len(self.env.token_items()), 1)
        self.vg_together(
            ('token (keystore hit)', ['token', '--org-slug', 'acme'], 0,
             dict(env_extra=keystore_tier)),
            ('git erase (token)', ['erase'], 0, dict(argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + self.host, 'credential=' + tok,
                'authtype=Bearer'))))
        self.assertEqual(self.server.count, 3)
        self.vg('git store', ['store'], 0, argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=alice', 'password=' + key2))
        self.vg('docker store', ['store'], 0, argv0=DOCKER, input=json.dumps(
            {'ServerURL': self.url, 'Username': 'bob', 'Secret': key3}))
        self.assertSecretEqual(self.env.key_items()[0].secret, key3, 'stored by docker')
        self.vg('docker erase', ['erase'], 0, argv0=DOCKER, input=self.url + '\n')
        self.assertEqual(self.env.keyring_items(), [])
        self.vg('logout (nothing stored)', ['logout'], 0)


if __name__ == '__main__':
    harness.main()

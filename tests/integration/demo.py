#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The main job end to end, for a person to read: log in with an API key,
get a token, get it again from the cache, let real git fetch it through
the helper, look at the status, log out.

Runs against a private keyring and a local HTTPS token endpoint (see
harness.py).  Keys and tokens are shown redacted.  Exits non-zero when a
step does not do what it should.

    GC_BUILDDIR=<build dir> /usr/bin/python3 tests/integration/demo.py
"""

import os
import sys

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import git_lines, parse_git_output, redact  # noqa: E402


class StepFailed(Exception):
    pass


class Demo:
    def __init__(self, env):
        self.env = env
        self.server = env.server
        self.step_no = 0
        self.failures = 0

    def step(self, title, cmd):
        self.step_no += 1
        print()
        print('%d. %s' % (self.step_no, title))
        print('   $ %s' % cmd)

    def show(self, label, value):
        print('   %-22s %s' % (label + ':', value))

    def check(self, ok, what):
        print('   %s %s' % ('ok  ' if ok else 'FAIL', what))
        if not ok:
            self.failures += 1
        return ok

    def no_secrets(self, *texts, allow_token=None):
        leaked = []
        for s in self.env.keys + self.server.issued:
            if s == allow_token:
                continue
            if any(s in t for t in texts):
                leaked.append(redact(s))
        self.check(not leaked, 'no key or other token in the output' +
                   (' (leaked: %s)' % ', '.join(leaked) if leaked else ''))

    def run(self):
        env, server = self.env, self.server
        host = '127.0.0.1:%d' % server.port
        print('galileo-credential demo')
        print('   program:   %s' % env.program)
        print('   endpoint:  %s/v1/token (local HTTPS, throwaway CA)' % env.server_url)
        print('   keyring:   private gnome-keyring on a private D-Bus session')
        # the README's default tier, the kernel keyring, unless this machine
        # refuses it (a container's seccomp profile): then say so
        why_not = harness.kernel_keys_usable()
        env.write_config(token_cache=None if why_not is None else 'keystore')
        if why_not is None:
            print('   tokens:    token-cache = keyctl, the default (the kernel user keyring)')
        else:
            print('   tokens:    token-cache = keystore, not the default keyctl: %s' % why_not)

        # 1. login
        key = env.new_key()
        server.accept_key(key)
        self.step('log in with an API key read from stdin',
                  'echo %s | galileo-credential login' % redact(key))
        rc, out, err = env.run(['login'], input=key + '\n')
        self.show('exit', rc)
        self.show('stderr', err.strip())
        self.show('endpoint requests', server.count)
        items = env.key_items()
        self.check(rc == 0, 'login succeeded')
        self.check(server.count == 1 and server.last.credential == ('api-key', key),
                   'the key was verified once with the Galileo-API-Key header')
        self.check(len(items) == 1 and items[0].secret == key,
                   'the keyring holds the key: %r' % (items[0].label if items else None))
        self.no_secrets(out, err)

        # 2. token
        self.step('get an access token', 'galileo-credential token')
        before = server.count
        rc, out, err = env.run(['token'])
        tok = out.strip()
        self.show('exit', rc)
        self.show('stdout', redact(tok))
        self.show('endpoint requests', '%d -> %d' % (before, server.count))
        if server.count == before:
            print('   (login cached the token it got when it verified the key)')
        self.check(rc == 0 and tok in server.issued, 'printed a token the endpoint issued')
        self.check(out == tok + '\n' and err == '', 'stdout is the token and a newline, nothing else')
        self.no_secrets(out, err, allow_token=tok)

        # 3. token again: from the cache
        self.step('get it again (served from the cache)', 'galileo-credential token')
        before = server.count
        rc, out2, err = env.run(['token'])
        self.show('exit', rc)
        self.show('stdout', redact(out2.strip()))
        self.show('endpoint requests', '%d -> %d' % (before, server.count))
        self.check(rc == 0 and out2 == out, 'same token')
        self.check(server.count == before, 'the endpoint request count did not change')
        self.no_secrets(out2, err, allow_token=tok)

        # 4. git
        self.step('real git asks the helper (credential.helper = git-credential-galileo)',
                  'printf "protocol=https\\nhost=%s\\n\\n" | git credential fill' % host)
        before = server.count
        rc, out, err = env.git(['credential', 'fill'],
                               input=git_lines('protocol=https', 'host=' + host))
        d, _ = parse_git_output(out)
        self.show('exit', rc)
        for k in ('protocol', 'host', 'username', 'password', 'password_expiry_utc'):
            if k in d:
                self.show(k, redact(d[k]) if k == 'password' else d[k])
        self.show('endpoint requests', '%d -> %d' % (before, server.count))
        self.check(rc == 0 and d.get('password') == tok, 'git got the cached token as the password')
        self.no_secrets(out, err, allow_token=tok)

        # 5. status
        self.step('status', 'galileo-credential status')
        rc, out, err = env.run(['status'])
        self.show('exit', rc)
        for line in out.rstrip('\n').split('\n'):
            print('   | ' + line)
        self.check(rc == 0 and env.server_url in out, 'lists the server')
        self.no_secrets(out, err)

        # 6. logout
        self.step('log out', 'galileo-credential logout')
        rc, out, err = env.run(['logout'])
        self.show('exit', rc)
        left = env.keyring_items()
        self.show('keyring items left', len(left))
        self.check(rc == 0 and not left, 'credential and cached tokens removed')
        rc, out, err = env.run(['token'])
        self.show('token afterwards', 'exit %d: %s' % (rc, err.strip()))
        self.check(rc == 3, 'token now says nothing is stored (exit 3)')
        self.no_secrets(out, err)

        print()
        if self.failures:
            print('demo: %d check(s) FAILED' % self.failures)
        else:
            print('demo: all steps did what they should')
        return 1 if self.failures else 0


def main():
    env = harness.Env()
    try:
        env.start()
        return Demo(env).run()
    except Exception as e:
        print('demo: error: %s' % e)
        return 2
    finally:
        env.close()


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""
The keystore stack and its modules (galileo-credential(1) KEYSTORE STACK): a module built
OUTSIDE the source tree against the INSTALLED header, found by pkg-config
(docs/keystore-example.c, copied out and compiled by the test after
`make install DESTDIR=...`), used in stacks with the Secret Service so that
each status and each default action shows; a module of another interface
version fails closed; doctor names what it finds.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
EXAMPLE = os.path.join(SRCDIR, 'docs', 'keystore-example.c')


def run(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, **kw)
    if r.returncode:
        raise RuntimeError('%s failed: %s' % (argv[0], r.stdout.decode()[-2000:]))
    return r.stdout.decode()


class Modules(GCTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='gc-modules-')
        dest = os.path.join(cls.tmp, 'dest')
        run(['make', '-s', '-C', harness.builddir(), 'install', 'DESTDIR=' + dest],
            env=dict(os.environ, MAKEFLAGS=''))
        pcs = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs
               if f == 'galileo-credential-module.pc']
        if not pcs:
            raise RuntimeError('make install put no galileo-credential-module.pc')
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                   PKG_CONFIG_SYSROOT_DIR=dest)
        cflags = run(['pkg-config', '--cflags', 'galileo-credential-module'], env=env).split()
        src = os.path.join(cls.tmp, 'src')       # outside the source tree
        os.mkdir(src)
        shutil.copy(EXAMPLE, src)
        cls.modules = {}
        for name, extra in (('good', []), ('wrong', ['-DEXAMPLE_INTERFACE_VERSION=99'])):
            d = os.path.join(cls.tmp, name)
            # the program's own modules, and the example beside them
            shutil.copytree(harness.module_dir(), d,
                            ignore=shutil.ignore_patterns('*.la', '*.lai', '*.o'))
            run(['cc', '-shared', '-fPIC', '-Wall', '-Werror'] + cflags + extra +
                ['-o', os.path.join(d, 'keystore-example.so'),
                 os.path.join(src, 'keystore-example.c')])
            cls.modules[name] = d
        cls.header_from = [f for f in cflags if f.startswith('-I')]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.store_dir = os.path.join(self.env.root, 'example-store')
        shutil.rmtree(self.store_dir, ignore_errors=True)
        os.mkdir(self.store_dir, 0o700)

    def configure(self, stack, status=None):
        extra = 'keystore = %s\nexample.dir = %s\n' % (stack, self.store_dir)
        if status:
            extra += 'example.status = %s\n' % status
        self.env.write_config(extra=extra)

    def gc(self, args, input=None, which='good', env_extra=None):
        env = {'GALILEO_CREDENTIAL_MODULE_DIR': self.modules[which]}
        env.update(env_extra or {})
        return self.env.run(args, input=input, env_extra=env)

    def test_header_is_the_installed_one(self):
        self.assertTrue(self.header_from, 'pkg-config gave no -I')
        for flag in self.header_from:
            self.assertTrue(flag[2:].startswith(self.tmp), flag)
            self.assertFalse(flag[2:].startswith(SRCDIR), flag)

    def test_example_alone_end_to_end(self):
        self.configure('example')
        key = self.env.new_key()
        self.server.accept_key(key)
        self.assertEqual(self.gc(['login'], input=key + '\n').returncode, 0)
        self.assertEqual(len(os.listdir(self.store_dir)), 1)
        self.assertEqual(self.env.key_items(), [], 'stored in the Secret Service instead')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        rc, out, err = self.gc(['get'], input=git_lines('url=' + self.url))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.gc(['status', '--json'])
        self.assertEqual(rc, 0, err)
        self.assertEqual([(s['server'], s['keystore']) for s in json.loads(out)['servers']],
                         [(self.url, 'example')])
        self.assertEqual(self.gc(['logout']), (0, '', ''))
        self.assertEqual(os.listdir(self.store_dir), [])

    def stored_in_secret_service(self):
        self.configure('secret-service')
        return self.login()

    def test_notfound_continues_success_returns(self):
        key = self.stored_in_secret_service()
        self.configure('example secret-service')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # success returns: the example's own credential wins once it has one
        other = self.env.new_key()
        self.server.accept_key(other)
        self.assertEqual(self.gc(['login'], input=other + '\n').returncode, 0)
        self.assertEqual(len(os.listdir(self.store_dir)), 1, 'login wrote past the first writer')
        self.assertEqual(self.gc(['token', '--refresh']).returncode, 0)
        self.assertEqual(self.server.last.credential, ('api-key', other))

    def test_unavailable_continues(self):
        key = self.stored_in_secret_service()
        self.configure('example secret-service', status='unavailable')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # and writes go past it, to the first writer that is there
        new = self.env.new_key()
        self.server.accept_key(new)
        self.assertEqual(self.gc(['login'], input=new + '\n').returncode, 0)
        self.assertSecretEqual(self.env.key_items()[0].secret, new, 'stored credential')

    def test_unavailable_and_nothing_found_is_unavailable(self):
        self.configure('example secret-service', status='unavailable')
        self.assertFails(self.gc(['token']), 6, 'the example keystore is unavailable')
        self.configure('example secret-service')
        self.assertFails(self.gc(['token']), 3, 'no credential stored')

    def test_locked_and_error_return(self):
        self.stored_in_secret_service()
        for status, line in (('locked', 'is locked'), ('error', 'fails')):
            with self.subTest(status=status):
                self.configure('example secret-service', status=status)
                count = self.server.count
                self.assertFails(self.gc(['token', '--refresh']), 6, line)
                self.assertFails(self.gc(['login'], input=self.env.new_key() + '\n'), 6, line)
                self.assertEqual(self.server.count, count, 'fell through to a weaker store')
                # unless the stack says so
                self.configure('example [%s=continue] secret-service' % status, status=status)
                self.assertEqual(self.gc(['token', '--refresh']).returncode, 0)

    def test_wrong_interface_version_fails_closed(self):
        self.stored_in_secret_service()
        self.configure('example secret-service')
        for args in (['token', '--refresh'], ['login'], ['status'], ['logout']):
            with self.subTest(args=args[0]):
                res = self.gc(args, input=self.env.new_key() + '\n', which='wrong')
                self.assertFails(res, 6, "keystore module 'example' speaks interface version 99")
        self.assertEqual(len(self.env.key_items()), 1)

    def test_headless_install_without_the_secret_service_module(self):
        # a package set without keystore-secret-service.so (the Debian
        # headless path): the default stack still answers with the env key
        d = os.path.join(self.tmp, 'headless')
        if not os.path.isdir(d):
            os.mkdir(d)
            shutil.copy(os.path.join(harness.module_dir(), 'http-curl.so'), d)
        self.env.write_config()
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_CREDENTIAL_MODULE_DIR': d, 'DBUS_SESSION_BUS_ADDRESS': None}
        rc, out, err = self.env.run(['token'], env_extra=dict(env, GALILEO_API_KEY=key))
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertFails(self.env.run(['token'], env_extra=env), 6,
                         "the keystore 'secret-service' is not installed here")
        # but a stack the user wrote fails closed on it
        self.env.write_config(extra='keystore = secret-service\n')
        self.assertFails(self.env.run(['token'], env_extra=dict(env, GALILEO_API_KEY=key)), 6,
                         "unknown keystore 'secret-service'")

    def test_doctor(self):
        self.configure('example secret-service', status='locked')
        rc, out, err = self.gc(['doctor'])
        self.assertEqual(rc, 6, err)
        self.assertIn('  example: locked: the example keystore is locked', out)
        self.assertIn('  secret-service: reachable, can store, can hold tokens', out)
        self.assertIn('home server: %s' % self.url, out)
        self.assertIn('config file: %s' % self.env.config_path, out)
        self.assertIn('token cache:', out)
        self.assertIn('lock directory:', out)
        self.assertOneErrorLine(err, 'locked')
        self.configure('secret-service')
        self.login()
        rc, out, err = self.gc(['doctor'])
        self.assertEqual((rc, err), (0, ''))
        self.assertIn('token: can be served', out)


if __name__ == '__main__':
    harness.main()

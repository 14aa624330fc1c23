#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The docker dialect (galileo-credential(1) DOCKER DIALECT): through dockerpycreds (the client
docker-py uses), and raw on stdin as docker-credential-galileo.
"""

import json
import os
import sys
import warnings

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, Response, VERSION  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter('ignore')     # distutils deprecation inside dockerpycreds
    from dockerpycreds import Store, errors as store_errors  # noqa: E402

DOCKER = 'docker-credential-galileo'
_saved_environ = None


def setUpModule():
    global _saved_environ
    _saved_environ = dict(os.environ)
    harness.setUpModule()


def tearDownModule():
    harness.tearDownModule()
    if _saved_environ is not None:
        os.environ.clear()
        os.environ.update(_saved_environ)


class DockerBase(GCTestCase):

    def setUp(self):
        super().setUp()
        # dockerpycreds finds the helper on this process's PATH and runs it
        # with this process's environment
        self.env.apply_to_os_environ()

    def tearDown(self):
        super().tearDown()
        os.environ.clear()
        os.environ.update(_saved_environ)

    def docker(self, action, stdin, env_extra=None):
        return self.env.run([action], input=stdin, argv0=DOCKER, env_extra=env_extra)

    def assertDockerError(self, res, message=None):
        """exit 1, one line on stdout, nothing on stderr"""
        rc, out, err = res
        self.assertEqual(rc, 1, out)
        self.assertEqual(err, '', 'docker dialect wrote to stderr')
        self.assertTrue(out.endswith('\n') and out.count('\n') == 1, repr(out))
        if message is not None:
            self.assertEqual(out, message + '\n')


class WithDockerpycreds(DockerBase):

    def test_store_get_list_erase(self):
        store = Store('galileo')
        key = self.env.new_key()
        self.server.accept_key(key)
        store.store(self.url, 'alice', key)
        # verified first (galileo-credential(1) DOCKER DIALECT): one exchange, its token cached
        self.assertEqual(self.server.count, 1)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0].attributes, {'server': self.url, 'kind': 'api-key',
                                               'username': 'alice', 'organization': ''})
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

        got = store.get(self.url)
        self.assertEqual(set(got), {'ServerURL', 'Username', 'Secret'})
        self.assertEqual(got['ServerURL'], self.url)
        self.assertEqual(got['Username'], 'alice')
        self.assertEqual(self.server.count, 1)
        self.assertSecretEqual(got['Secret'], self.server.last.token, 'Secret')
        # second get: the cached token
        again = store.get(self.url)
        self.assertEqual(self.server.count, 1)
        self.assertSecretEqual(again['Secret'], got['Secret'], 'cached Secret')

        rc, out, err = self.docker('list', '')
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(json.loads(out), {self.url: 'alice'})

        store.erase(self.url)
        self.assertEqual(self.env.keyring_items(), [])
        with self.assertRaises(store_errors.CredentialsNotFound):
            store.get(self.url)

    def test_get_echoes_server_url_as_given(self):
        store = Store('galileo')
        key = self.env.new_key()
        self.server.accept_key(key)
        given = 'HTTPS://127.0.0.1:%d/' % self.server.port
        store.store(given, 'bob', key)
        self.assertEqual([i.attributes['server'] for i in self.env.key_items()], [self.url])
        got = store.get(given)
        self.assertEqual(got['ServerURL'], given)
        self.assertEqual(got['Username'], 'bob')
        rc, out, err = self.docker('list', '')
        self.assertEqual(json.loads(out), {self.url: 'bob'})

    def test_not_found(self):
        with self.assertRaises(store_errors.CredentialsNotFound):
            Store('galileo').get(self.url)


class Raw(DockerBase):

    def store_json(self, server, username, secret):
        return json.dumps({'ServerURL': server, 'Username': username, 'Secret': secret})

    def test_empty_username(self):
        res = self.docker('store', self.store_json(self.url, '', self.env.new_key()))
        self.assertDockerError(res, 'no credentials username')
        self.assertEqual(self.env.keyring_items(), [])

    def test_get_nothing_stored(self):
        res = self.docker('get', self.url + '\n')
        self.assertDockerError(res, 'credentials not found in native keychain')
        self.assertEqual(self.server.count, 0)

    def test_get_server_url_not_utf8(self):
        # a byte JSON cannot carry: refused as a URL (galileo-credential(1) KEYSTORES,
        # changed: no URL holds a byte outside ASCII), one error line
        key = self.env.new_key()
        self.server.push(self.server.token_reply(), times=None)
        res = self.docker('get', (self.url + '/\xff\n').encode('latin-1'),
                          env_extra={'GALILEO_API_KEY': key})
        self.assertDockerError(res)
        self.assertIn('refused server URL', res.stdout)
        self.assertEqual(self.server.count, 0)

    def test_version(self):
        res = self.docker('version', '')
        self.assertEqual(res, (0, 'docker-credential-galileo (galileo-credential) %s\n'
                               % VERSION, ''))

    def test_protocol_option_on_native_name(self):
        res = self.env.run(['--protocol=docker', 'version'], input='')
        self.assertEqual(res, (0, 'docker-credential-galileo (galileo-credential) %s\n'
                               % VERSION, ''))

    def test_get_output(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.docker('store', self.store_json(self.url, 'alice', key))
        self.assertEqual((rc, err), (0, ''), out)
        rc, out, err = self.docker('get', self.url)
        self.assertEqual((rc, err), (0, ''))
        doc = json.loads(out)
        self.assertEqual(list(doc), ['ServerURL', 'Username', 'Secret'])
        self.assertEqual(doc['ServerURL'], self.url)
        self.assertEqual(doc['Username'], 'alice')
        self.assertSecretEqual(doc['Secret'], self.server.last.token, 'Secret')

    def test_bare_host_as_docker_sends_it(self):
        # "credHelpers": {"api.galileo.ai": "galileo"}: docker passes the
        # bare host name; it means https
        key = self.login()
        bare = '127.0.0.1:%d' % self.server.port
        rc, out, err = self.docker('get', bare + '\n')
        self.assertEqual((rc, err), (0, ''), out)
        doc = json.loads(out)
        self.assertEqual(doc['ServerURL'], bare)
        self.assertSecretEqual(doc['Secret'], self.server.last.token, 'Secret')
        self.assertEqual(self.server.count, 1, 'not served from the cache of the same server')
        # another registry is not a known server: refused (galileo-credential(1) DOCKER DIALECT)
        res = self.docker('store', self.store_json('registry.example.com', 'u',
                                                   self.env.new_key()))
        self.assertDockerError(res)
        self.assertIn("'https://registry.example.com' is not a known Galileo server", res.stdout)
        # the one line says how to configure docker instead (issue 18 item 2)
        self.assertIn('credHelpers', res.stdout)
        self.assertIn('not as credsStore', res.stdout)
        rc, out, err = self.docker('list', '')
        self.assertEqual(json.loads(out), {self.url: ''})
        self.assertTrue(key)

    def test_one_identity_per_server(self):
        # galileo-credential(1) DOCKER DIALECT: docker names no user in a
        # get; a ServerURL that does is refused, never answered
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.docker('store', self.store_json(self.url, 'alice', key))
        self.assertEqual((rc, err), (0, ''), out)
        count = self.server.count
        host = '127.0.0.1:%d' % self.server.port
        for given in ('https://bob@%s' % host, 'https://alice@%s' % host):
            res = self.docker('get', given + '\n')
            self.assertDockerError(res)
            self.assertIn('refused server URL', res.stdout)
        self.assertEqual(self.server.count, count)
        for given in (self.url, host):
            with self.subTest(given=given):
                rc, out, err = self.docker('get', given + '\n')
                self.assertEqual((rc, err), (0, ''), out)
                doc = json.loads(out)
                self.assertEqual(doc['Username'], 'alice')
                self.assertSecretEqual(doc['Secret'], self.server.last.token, 'Secret')

    def test_list_empty_and_canonical(self):
        rc, out, err = self.docker('list', '')
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(json.loads(out), {})
        # servers that cannot verify a key here: logged in without it
        for server, user in (('https://API.Example.com:443/', 'u1'),
                             ('https://other.example/prefix/', 'u2')):
            self.login(args=['--server', server, '--username', user, '--no-verify'],
                       accept=False)
        rc, out, err = self.docker('list', '')
        self.assertEqual(json.loads(out), {'https://api.example.com': 'u1',
                                           'https://other.example/prefix': 'u2'})

    def test_erase_removes_credential_and_tokens(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.docker('store', self.store_json(self.url, 'alice', key))
        self.assertEqual(self.docker('get', self.url).returncode, 0)
        self.assertEqual(len(self.env.token_items()), 1)
        rc, out, err = self.docker('erase', self.url + '\n')
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(self.env.keyring_items(), [])

    def test_rejected_credential(self):
        self.docker('store', self.store_json(self.url, 'alice', self.env.new_key()))
        self.assertDockerError(self.docker('get', self.url))
        self.assertEqual(self.server.count, 1)

    def test_server_error(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.docker('store', self.store_json(self.url, 'alice', key))
        # the verification's token is cached: drop it, so get must exchange
        self.env.secret_tool(['clear', 'xdg:schema', harness.TOKEN_SCHEMA])
        self.server.push(Response(500, {'detail': 'boom'}), times=None)
        self.assertDockerError(self.docker('get', self.url))

    def test_store_of_a_cached_token_stores_nothing(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.docker('store', self.store_json(self.url, 'alice', key))
        tok = json.loads(self.docker('get', self.url).stdout)['Secret']
        rc, out, err = self.docker('store', self.store_json(self.url, 'alice', tok))
        self.assertEqual(rc, 0, out)
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def test_malformed_store_input(self):
        for data in ('not json', '{"ServerURL": "%s"}' % self.url, '[]',
                     '{"ServerURL": 1, "Username": "a", "Secret": "b"}'):
            self.assertDockerError(self.docker('store', data))
        self.assertEqual(self.env.keyring_items(), [])

    def test_store_replaces_and_drops_tokens(self):
        k1, k2 = self.env.new_key(), self.env.new_key()
        self.server.accept_key(k1)
        self.server.accept_key(k2)
        self.docker('store', self.store_json(self.url, 'alice', k1))
        self.docker('get', self.url)
        old = self.server.last.token
        self.docker('store', self.store_json(self.url, 'carol', k2))
        # the old credential's token is gone; the new one's, from its check, is cached
        self.assertEqual(self.server.last.credential, ('api-key', k2))
        new = self.server.last.token
        self.assertEqual(len(self.env.token_items()), 1)
        items = self.env.key_items()
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0].attributes['username'], 'carol')
        self.assertSecretEqual(items[0].secret, k2, 'stored credential')
        got = json.loads(self.docker('get', self.url).stdout)['Secret']
        self.assertSecretEqual(got, new, 'token served')
        self.assertNotEqual(got, old)

    def test_http_non_loopback_refused(self):
        res = self.docker('store', self.store_json('http://registry.example', 'a',
                                                   self.env.new_key()))
        self.assertDockerError(res)
        self.assertEqual(self.env.keyring_items(), [])


if __name__ == '__main__':
    harness.main()

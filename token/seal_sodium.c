/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/seal.h"

#include <sodium.h>
#include <string.h>

/*
 * The file tier's crypto, from libsodium (galileo-credential(1) TOKEN CACHE):
 * the key is BLAKE2b-256 over the length-prefixed parts; a box is a random
 * 192-bit nonce followed by XChaCha20-Poly1305 of the message, with the
 * file's header as associated data.  A random nonce of that size never
 * repeats in practice, whatever the number of files sealed under one key.
 */

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

static int derive(unsigned char key[SEAL_KEY_BYTES], const char *const *parts, size_t n)
{
	crypto_generichash_state st;
	unsigned char len[8];

	if (crypto_generichash_init(&st, NULL, 0, SEAL_KEY_BYTES))
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);

		for (int b = 0; b < 8; b++)
			len[b] = (unsigned char)(l >> (8 * b));
		crypto_generichash_update(&st, len, sizeof(len));
		crypto_generichash_update(&st, (const unsigned char *)parts[i], l);
	}
	crypto_generichash_final(&st, key, SEAL_KEY_BYTES);
	sodium_memzero(&st, sizeof(st));
	return 0;
}

static int seal(unsigned char *box, const unsigned char *msg, size_t len,
		const unsigned char *ad, size_t adlen, const unsigned char key[SEAL_KEY_BYTES])
{
	randombytes_buf(box, NONCE);
	return crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE, NULL, msg, len, ad, adlen,
							  NULL, box, key) ? -1 : 0;
}

static int open_box(unsigned char *msg, const unsigned char *box, size_t len,
		    const unsigned char *ad, size_t adlen, const unsigned char key[SEAL_KEY_BYTES])
{
	if (len < NONCE + TAG)
		return -1;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(msg, NULL, NULL, box + NONCE, len - NONCE,
							  ad, adlen, box, key) ? -1 : 0;
}

static const struct seal_ops ops = {
	.abi_version = SEAL_ABI_VERSION,
	.overhead = NONCE + TAG,
	.derive = derive,
	.seal = seal,
	.open = open_box,
};

const struct seal_ops *seal_module_init(const struct gc_services *services)
{
	if (sodium_init() < 0) {
		services->debug("libsodium cannot start");
		return NULL;
	}
	return &ops;
}

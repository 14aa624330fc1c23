/* SPDX-License-Identifier: MIT */
/*
 * Sealing for the file tier (galileo-credential(1) TOKEN CACHE): authenticated
 * encryption from a maintained library, as a loadable module so that only
 * calls that use the file tier load it.  The module "seal-sodium.so"
 * (libsodium: BLAKE2b for the key, XChaCha20-Poly1305 for the box) exports
 * SEAL_ENTRY_SYMBOL, a seal_entry_fn handed the program's services.
 */
#ifndef GC_SEAL_H
#define GC_SEAL_H

#include <galileo-credential/module.h>

#include <stddef.h>

#define SEAL_ABI_VERSION 1
#define SEAL_MODULE_FILE "seal-sodium.so"
#define SEAL_ENTRY_SYMBOL "seal_module_init"
#define SEAL_KEY_BYTES 32

struct seal_ops {
	int abi_version;
	size_t overhead;	/* a box is this much longer than its message */
	/*
	 * key = a 256-bit hash of the n parts, each taken with its length,
	 * so no two lists of parts give the same key.  0 or -1.
	 */
	int (*derive)(unsigned char key[SEAL_KEY_BYTES], const char *const *parts, size_t n);
	/* box (len + overhead bytes) = msg sealed under key, bound to ad */
	int (*seal)(unsigned char *box, const unsigned char *msg, size_t len,
		    const unsigned char *ad, size_t adlen, const unsigned char key[SEAL_KEY_BYTES]);
	/* msg (len - overhead bytes) from box; -1 when it was not sealed so */
	int (*open)(unsigned char *msg, const unsigned char *box, size_t len,
		    const unsigned char *ad, size_t adlen, const unsigned char key[SEAL_KEY_BYTES]);
};

typedef const struct seal_ops *(*seal_entry_fn)(const struct gc_services *services);
const struct seal_ops *seal_module_init(const struct gc_services *services);

#endif

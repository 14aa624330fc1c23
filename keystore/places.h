/* SPDX-License-Identifier: MIT */
/*
 * Where each backend keeps its data besides its options in the
 * configuration: the environment variables it reads to find it.  Part of
 * the context a cached token belongs to (galileo-credential(1) TOKEN CACHE),
 * known without loading the module, since a cache hit loads none.
 */
#ifndef GC_KEYSTORE_PLACES_H
#define GC_KEYSTORE_PLACES_H

/* NULL-terminated, static; an empty list for a backend that reads none */
const char *const *keystore_place_env(const char *backend);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The context a cached token belongs to (galileo-credential(1) TOKEN CACHE):
 * what decides which credential a call would use.  Calls of one context
 * share cached tokens whatever their runtime directory, D-Bus session or
 * terminal; calls of two contexts never do.
 */
#ifndef GC_CONTEXT_H
#define GC_CONTEXT_H

#include "helper/config.h"
#include "keystore/stack.h"
#include "token/tier.h"

/*
 * The context of a call, as TIER_CONTEXT_LEN hex digits: a truncated
 * SHA-256 of the home directory, the configuration file in use
 * (config_path, whether it exists or not), the keystore stack (each
 * backend with its actions, its options in cfg and the environment
 * variables it keeps its data by, keystore/places.h), and the mount
 * namespace and root directory the call runs in, which tell containers
 * apart.
 */
void context_of(const char *config_path, const struct keystore_stack *st,
		const struct config *cfg, char out[TIER_CONTEXT_LEN + 1]);

#endif

/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/generation.h"
#include "token/tier.h"
#include "lib/common.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

uint64_t generation_current(const char *server)
{
	uint64_t gen = 0;
	int err = tier_keyctl_usable() ? tier_keyctl_generation(server, &gen) :
					 tier_file_generation(server, &gen);

	if (err) {
		gc_debug("cannot read the write generation: %s", gc_error_message());
		gc_error_clear();
	}
	return gen;
}

/*
 * Random rather than counted: a generation lost with the keyring (a
 * reboot, `keyctl clear`) starts again from a value no old token carries.
 * Kept in both places, so that a call where keyctl is refused and one
 * where it is not (one context: a seccomp filter differs) see the same.
 */
int generation_bump(const char *server)
{
	uint64_t gen = 0;
	int kernel = GCERR_KEYSTORE, file;

	while (!gen)
		if (getrandom(&gen, sizeof(gen), 0) != (ssize_t)sizeof(gen))
			return gc_error(GCERR_KEYSTORE, "no random numbers: %s", strerror(errno));
	if (tier_keyctl_usable())
		kernel = tier_keyctl_set_generation(server, gen);
	file = tier_file_set_generation(server, gen);
	if (!kernel || !file)
		gc_error_clear();
	return !kernel || !file ? 0 : kernel;
}

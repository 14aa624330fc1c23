/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's FLOOR for a cache hit: the least a program can do to hand
 * out the token galileo-credential caches in the kernel keyring.  It finds
 * the `user` key DESCRIPTION in the user keyring (the helper's
 * galileo-credential:token:CONTEXT:SERVER#ORG, token/tier_keyctl.c), reads
 * it and prints the token part of its payload ("gc2 EXPIRES LIFETIME
 * FINGERPRINT GENERATION CONTEXT TOKEN", token/cache.h) and a newline.  No
 * expiry check, no config, no context, credential or generation check: only
 * what any hit must cost.
 *
 *     floor DESCRIPTION      (compiled at bench time: gcc -O2 floor.c -lkeyutils)
 */
#include <keyutils.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[16384 + 1], *tok = buf;
	long id, n;
	int i;

	if (argc != 2)
		return 2;
	id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", argv[1], 0);
	if (id < 0 || (n = keyctl_read((key_serial_t)id, buf, sizeof(buf) - 1)) < 0 ||
	    n >= (long)sizeof(buf))
		return 1;
	buf[n] = '\0';
	for (i = 0; i < 6 && tok; i++)
		if ((tok = strchr(tok, ' ')))
			tok++;
	if (!tok)
		return 1;
	n = (long)strlen(tok);
	tok[n++] = '\n';
	return write(1, tok, (size_t)n) == n ? 0 : 1;
}

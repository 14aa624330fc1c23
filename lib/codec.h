/* SPDX-License-Identifier: MIT */
/* Small codecs: base64, base64url, SHA-256 fingerprint. */
#ifndef GC_CODEC_H
#define GC_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Standard base64 with padding.  New string, caller frees (secret_free). */
char *codec_base64(const unsigned char *in, size_t len);

/*
 * base64url without padding (JWT); padding tolerated.  Returns new buffer
 * (NUL-terminated, *outlen bytes before the NUL) or NULL on bad input.
 */
unsigned char *codec_base64url_decode(const char *in, size_t len, size_t *outlen);

void codec_sha256(const void *data, size_t len, uint8_t out[32]);

/*
 * Fingerprint of a credential: first 8 bytes of SHA-256 over
 * kind NUL username NUL secret, as 16 lower-case hex digits + NUL.
 */
void codec_fingerprint(const char *kind, const char *username,
		       const char *secret, char out[17]);

#endif

/*
 * The kernel-keyring token tier (token-cache = keyctl).  Tokens are `user`
 * keys in the user keyring, described galileo-credential:token:SERVER#ORG,
 * readable by their owner only and dropped by the kernel at their expiry.
 * A cache hit costs a few system calls: no D-Bus, no GLib, no libcurl.
 *
 * Next to the tokens a server has one non-secret "summary" key,
 * galileo-credential:credential:SERVER, saying which credential (by
 * fingerprint) and which default organization and username they belong
 * to, so a hit needs no keystore read.  The helper drops both whenever it
 * stores or erases a credential.
 */
#ifndef GC_KEYSTORE_KEYCTL_H
#define GC_KEYSTORE_KEYCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/keystore.h"

/* token slots only; token_erase(server, NULL) also drops the summary */
extern const struct keystore_ops keystore_keyctl_ops;

/*
 * Whether the kernel lets us use the user keyring (containers often
 * forbid keyctl).  Says why in one debug line when not.
 */
bool keyctl_usable(void);

/*
 * The summary of server's credential: kind, username and organization
 * filled, secret NULL, fingerprint in fp.  GCERR_NOTFOUND when none.
 */
int keyctl_summary_get(const char *server, struct credential *out, char fp[17]);
/* kept until expires_at (local clock), like the token it came with */
int keyctl_summary_put(const struct credential *cred, const char *fp, int64_t expires_at);

#endif

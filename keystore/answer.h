/* SPDX-License-Identifier: MIT */
/*
 * What a module may answer (galileo-credential-module(7) THE TABLE): the one
 * place every answer is judged before anything else of the program sees
 * it.  The stack ends the program on a breach (exit 6 naming the module);
 * the module checker reports it.  Each function returns NULL for an answer
 * that keeps the interface, else what is wrong, as a phrase to follow
 * "get() answered ..." (never quoting a value: it may be a secret).  The
 * shape is judged (NULLs, empties, sizes, kinds, whose credential), not
 * the store's data: a control character planted in the keyring is
 * escaped where it is printed and refused where it would be sent.
 */
#ifndef GC_KEYSTORE_ANSWER_H
#define GC_KEYSTORE_ANSWER_H

#include <galileo-credential/module.h>

#include <stdbool.h>
#include <stddef.h>

#define ANSWER_SERVER_MAX 2048
#define ANSWER_FIELD_MAX 1024		/* kind, username, organization */
#define ANSWER_SECRET_MAX (64 * 1024)	/* a secret or a token payload */
#define ANSWER_LIST_MAX 100000

/* status is one of enum gc_status */
bool answer_status_valid(int status);

/* a get() that answered success for server */
const char *answer_credential(const struct gc_credential *c, const char *server);

/* a list() that answered success: n items at list */
const char *answer_list(const struct gc_credential *list, size_t n);

/* a token_get() that answered success */
const char *answer_payload(const char *payload);

/* a token_list() that answered success */
const char *answer_token_list(const struct gc_token_item *list, size_t n);

/* what a failed get() left in *c: nothing, as it should */
bool answer_credential_empty(const struct gc_credential *c);

#endif

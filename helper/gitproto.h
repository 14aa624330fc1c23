/* SPDX-License-Identifier: MIT */
/*
 * git credential protocol codec (galileo-credential(1) GIT DIALECT,
 * git-credential(1)).
 */
#ifndef GC_GITPROTO_H
#define GC_GITPROTO_H

#include <stdbool.h>
#include <stdio.h>

#define GITPROTO_MAX_LINE 65535		/* bytes, without the newline */
#define GITPROTO_MAX_INPUT (1024 * 1024)

/* What a request carried; NULL when the key was absent. */
struct git_request {
	char *protocol;
	char *host;
	char *path;		/* ignored by policy, kept for completeness */
	char *url;
	char *username;
	char *password;		/* secret */
	char *credential;	/* secret */
	char *authtype;
	char *organization_id;
	char *organization_slug;
	char *kind;
	bool has_password_expiry_utc;
	bool has_ephemeral;
	bool cap_authtype;	/* capability[]=authtype */
};

void gitproto_init(struct git_request *req);
/* frees everything, wiping secrets; leaves req initialised */
void gitproto_release(struct git_request *req);

/*
 * Feed one line (without its newline; a trailing CR is kept as part of the
 * value, as git does not strip it either).  Unknown keys are ignored; a
 * line without '=' is GCERR_INPUT; a repeated key replaces the earlier one.
 */
int gitproto_parse_line(struct git_request *req, const char *line, size_t len);

/*
 * Parse a whole buffer: lines up to a blank line or the end.  Refuses (with
 * GCERR_INPUT and a message) a line over GITPROTO_MAX_LINE, a NUL byte, or
 * len over GITPROTO_MAX_INPUT.  On error req is released.
 */
int gitproto_parse(struct git_request *req, const char *buf, size_t len);

/*
 * Read a request from in: stops at a blank line or EOF, so an interactive
 * user can end it with an empty line.  Same limits as gitproto_parse; every
 * buffer used is wiped.
 */
int gitproto_read(struct git_request *req, FILE *in);

/*
 * Write "key=value\n".  A value holding a newline, CR or NUL (len given) is
 * refused with GCERR_INPUT and nothing is written.
 */
int gitproto_write(FILE *out, const char *key, const char *value);

#endif

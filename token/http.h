/* SPDX-License-Identifier: MIT */
/*
 * The HTTP transport, as a loadable module so that calls that never touch
 * the network do not load libcurl.  The module "http-curl.so" exports
 * HTTP_ENTRY_SYMBOL, an http_entry_fn: like a keystore module it is handed
 * the program's services (debug lines, wiping) and links against nothing
 * of the program.
 */
#ifndef GC_HTTP_H
#define GC_HTTP_H

#include <galileo-credential/module.h>

#include <stddef.h>

#define HTTP_ABI_VERSION 4
#define HTTP_MODULE_FILE "http-curl.so"
#define HTTP_ENTRY_SYMBOL "http_module_init"
#define HTTP_MAX_BODY (64 * 1024)

struct http_call;

struct http_request {
	const char *url;		/* full URL with query */
	const char *auth_header;	/* "Name: value", a secret; may be NULL */
	const char *user_agent;
	const char *ca_file;		/* NULL: system bundle */
	long timeout_ms;		/* this attempt, connecting included; > 0 */
	int debug;			/* log steps (never headers) to stderr */
};

/*
 * Why get() failed, so that the caller can tell what another attempt may
 * cure (galileo-credential(1) TOKEN LIFETIME) without reading the message.
 */
enum http_failure {
	HTTP_FAIL_NONE = 0,	/* get() returned 0 */
	HTTP_FAIL_TRANSIENT,	/* name lookup, connect, reset, send or receive
				 * error, TLS handshake cut short */
	HTTP_FAIL_TIMEOUT,	/* timeout_ms ran out */
	HTTP_FAIL_PERMANENT,	/* TLS verification, body over HTTP_MAX_BODY,
				 * unreadable CA file, anything else */
};

struct http_response {
	long status;
	char *body;		/* NUL-terminated; free with secret_freezero */
	size_t body_len;
	char *date;		/* Date header value or NULL */
	char *retry_after;	/* Retry-After header value or NULL */
	enum http_failure failure;
};

struct http_ops {
	int abi_version;
	/*
	 * GET url.  TLS peer and host verification always on; redirects are
	 * never followed (a 3xx comes back as its status); a body over
	 * HTTP_MAX_BODY fails.  One attempt: retrying is the caller's
	 * business.  Returns 0 with resp filled for any HTTP status, or an
	 * error (GCERR_NETWORK for connection, TLS, timeout or size failures)
	 * with a one-line reason in errbuf (no secret, no URL) and only
	 * resp->failure set, never HTTP_FAIL_NONE.  Every buffer that held
	 * the auth header or body is wiped.
	 */
	int (*get)(const struct http_request *req, struct http_response *resp,
		   char *errbuf, size_t errlen);
	/* free resp's members (body wiped) */
	void (*response_release)(struct http_response *resp);
	/*
	 * Begin req (its auth_header ignored) before the credential is
	 * known: the connection (TCP, TLS) is made now, in a thread of the
	 * module, and the request waits.  NULL when it cannot begin (use
	 * get()).
	 */
	struct http_call *(*begin)(const struct http_request *req);
	/*
	 * Finish a begun call with auth_header as get() would; NULL sends
	 * nothing (the connection is closed before any request is made).
	 * The call is freed either way.
	 */
	int (*send)(struct http_call *call, const char *auth_header,
		    struct http_response *resp, char *errbuf, size_t errlen);
};

typedef const struct http_ops *(*http_entry_fn)(const struct gc_services *services);
const struct http_ops *http_module_init(const struct gc_services *services);

#endif

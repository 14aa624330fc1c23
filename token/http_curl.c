#include "autoconfig.h"

#include "token/http.h"
#include "lib/common.h"	/* the error codes only: this module links nothing of the program */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The libcurl transport: one GET, no redirects, verification always on, the
 * body bounded and kept only in buffers that are wiped before being freed.
 * It uses only what the program hands it (struct gc_services).
 */

static const struct gc_services *svc;

static void *must(void *p)
{
	if (!p)
		abort();	/* as the program's x-allocators do */
	return p;
}

static void freezero(void *p, size_t n)
{
	if (p) {
		svc->wipe(p, n);
		free(p);
	}
}

struct body {
	char *buf;
	size_t len;
	size_t cap;
	int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct body *b = userp;
	size_t n = size * nmemb;
	size_t cap;
	char *grown;

	if (n > HTTP_MAX_BODY - b->len) {
		b->too_big = 1;
		return 0;	/* CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		/* no realloc: it could leave a copy of the body behind unwiped */
		grown = must(malloc(cap));
		if (b->len)
			memcpy(grown, b->buf, b->len);
		freezero(b->buf, b->cap);
		b->buf = grown;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* "Name: value" when name matches, else NULL; trims the value */
static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *v, *end = line + len;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return NULL;
	v = line + nlen + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
			   end[-1] == '\t'))
		end--;
	if (end - v > 128)
		return NULL;	/* no sane Date or Retry-After is this long */
	return must(strndup(v, (size_t)(end - v)));
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
	struct http_response *resp = userp;
	size_t n = size * nmemb;
	char *v;

	/* a new status line starts a new header block: keep only the last */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		free(resp->date);
		free(resp->retry_after);
		resp->date = NULL;
		resp->retry_after = NULL;
	} else if ((v = header_value(line, n, "Date"))) {
		free(resp->date);
		resp->date = v;
	} else if ((v = header_value(line, n, "Retry-After"))) {
		free(resp->retry_after);
		resp->retry_after = v;
	}
	return n;
}

/*
 * What another attempt may cure: a server that is down, restarting or
 * overloaded, or a network that dropped the connection.  Not a certificate
 * that does not verify, a body that is too big or a CA file that cannot be
 * read: those fail the same way every time.
 */
static enum http_failure classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_FAIL_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:	/* e.g. reset during the handshake */
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:		/* closed without an answer */
	case CURLE_PARTIAL_FILE:	/* closed in the middle of the body */
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return HTTP_FAIL_TRANSIENT;
	default:
		return HTTP_FAIL_PERMANENT;
	}
}

/* one line for errbuf: no secret, no URL */
static void describe(CURLcode rc, const struct body *b, const char *detail,
		     long timeout_ms, char *errbuf, size_t errlen)
{
	char *p;

	switch (rc) {
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (b->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
			snprintf(errbuf, errlen, "response body over %d KiB",
				 HTTP_MAX_BODY / 1024);
			return;
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(errbuf, errlen, "timed out after %ld ms", timeout_ms);
		return;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(errbuf, errlen, "cannot resolve the host name");
		return;
	case CURLE_COULDNT_CONNECT:
		snprintf(errbuf, errlen, "cannot connect to the server");
		return;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(errbuf, errlen, "cannot read the CA file; check ca-file in the configuration");
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
		/* curl's detail says which check failed; it holds no URL */
		snprintf(errbuf, errlen, "TLS %s failed: %s",
			 rc == CURLE_SSL_CONNECT_ERROR ? "handshake" : "verification",
			 *detail ? detail : curl_easy_strerror(rc));
		for (p = errbuf; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		return;
	default:
		break;
	}
	snprintf(errbuf, errlen, "%s", curl_easy_strerror(rc));
}

static void wipe_headers(struct curl_slist *list)
{
	struct curl_slist *l;

	for (l = list; l; l = l->next)
		svc->wipe(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static void http_curl_response_release(struct http_response *resp)
{
	if (resp->body)
		freezero(resp->body, resp->body_len + 1);
	free(resp->date);
	free(resp->retry_after);
	memset(resp, 0, sizeof(*resp));
}

/* every option of the one GET; CURLE_OK or the first that failed */
static CURLcode setup(CURL *h, const struct http_request *req, struct curl_slist *headers,
		      struct body *b, struct http_response *resp, char *detail)
{
	CURLcode rc;

	if ((rc = curl_easy_setopt(h, CURLOPT_URL, req->url)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http")) ||
	    /* plain http is loopback only: never hand it to a proxy in clear */
	    (rc = curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.0/8,::1")) ||
	    (rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, b)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HEADERDATA, resp)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers)))
		return rc;
	if (req->user_agent && (rc = curl_easy_setopt(h, CURLOPT_USERAGENT, req->user_agent)))
		return rc;
	/* a configured CA file replaces the system store, it does not add to it */
	if (req->ca_file && ((rc = curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file)) ||
			     (rc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL))))
		return rc;
	return CURLE_OK;
}

/* a handle and the header list; GCERR_* with errbuf set when not */
static int prepare(const struct http_request *req, CURL **h, struct curl_slist **headers,
		   char *errbuf, size_t errlen)
{
	static int global_ready;
	CURLcode rc;

	if (!global_ready) {
		rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (rc != CURLE_OK) {
			snprintf(errbuf, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(rc));
			return GCERR_NETWORK;
		}
		global_ready = 1;
	}
	*headers = NULL;
	if (!(*h = curl_easy_init())) {
		snprintf(errbuf, errlen, "cannot initialise libcurl");
		return GCERR_NETWORK;
	}
	if (req->auth_header && !(*headers = curl_slist_append(NULL, req->auth_header))) {
		snprintf(errbuf, errlen, "out of memory");
		curl_easy_cleanup(*h);
		return GCERR_NOMEM;
	}
	return 0;
}

static int http_curl_get(const struct http_request *req, struct http_response *resp,
			 char *errbuf, size_t errlen)
{
	char detail[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers;
	struct body b = { 0 };
	enum http_failure failure = HTTP_FAIL_PERMANENT;
	int ret;
	CURLcode rc;
	CURL *h;

	memset(resp, 0, sizeof(*resp));
	resp->failure = HTTP_FAIL_PERMANENT;	/* until it is known better */
	if (req->auth_header && strpbrk(req->auth_header, "\r\n")) {
		snprintf(errbuf, errlen, "refusing a credential that holds a line break");
		return GCERR_INPUT;
	}
	if ((ret = prepare(req, &h, &headers, errbuf, errlen)))
		return ret;
	ret = GCERR_NETWORK;
	if (req->debug)
		svc->debug("http: GET %.*s", (int)strcspn(req->url, "?"), req->url);
	if ((rc = setup(h, req, headers, &b, resp, detail))) {
		snprintf(errbuf, errlen, "cannot set up the request: %s", curl_easy_strerror(rc));
	} else if ((rc = curl_easy_perform(h)) != CURLE_OK) {
		describe(rc, &b, detail, req->timeout_ms, errbuf, errlen);
		failure = b.too_big ? HTTP_FAIL_PERMANENT : classify(rc);
	} else if ((rc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status))) {
		snprintf(errbuf, errlen, "%s", curl_easy_strerror(rc));
	} else {
		resp->body = b.buf ? b.buf : must(calloc(1, 1));
		resp->body_len = b.len;
		resp->failure = HTTP_FAIL_NONE;
		b.buf = NULL;
		if (req->debug)
			svc->debug("http: status %ld, %zu bytes", resp->status, resp->body_len);
		ret = 0;
	}
	curl_easy_cleanup(h);
	wipe_headers(headers);
	freezero(b.buf, b.cap);
	if (ret) {
		if (req->debug)
			svc->debug("http: %s", errbuf);
		http_curl_response_release(resp);
		resp->failure = failure;
	}
	return ret;
}

static const struct http_ops ops = {
	.abi_version = HTTP_ABI_VERSION,
	.get = http_curl_get,
	.response_release = http_curl_response_release,
};

const struct http_ops *http_module_init(const struct gc_services *services)
{
	if (!services || services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;
	svc = services;
	return &ops;
}

/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/http.h"
#include "lib/common.h"	/* the error codes only: this module links nothing of the program */

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* a handle; GCERR_* with errbuf set when not */
static int prepare(CURL **h, char *errbuf, size_t errlen)
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
	if (!(*h = curl_easy_init())) {
		snprintf(errbuf, errlen, "cannot initialise libcurl");
		return GCERR_NETWORK;
	}
	return 0;
}

/*
 * A GET begun before its credential is known (http.h): the connection
 * (TCP, TLS) is made in a thread of its own while the caller reads the
 * keystore; the request waits in libcurl's pre-request callback, which
 * runs once the connection is up and before the request is built, until
 * the caller hands over the header, or says to send nothing.
 */
struct http_call {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum { CALL_WAITING, CALL_GO, CALL_DROP } state;
	char *auth_header;		/* a secret, from http_curl_send() */
	struct curl_slist *headers;	/* one placeholder, swapped at the callback */
	struct http_request req;
	char *url, *user_agent, *ca_file;
	struct timespec deadline;	/* CLOCK_REALTIME, for the condition wait */
	int ret;
	struct http_response resp;
	char errbuf[256];
};

#define PENDING_HEADER "X-Galileo-Credential: pending"

static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
		     int local_port)
{
	struct http_call *c = clientp;
	int go;

	(void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
	pthread_mutex_lock(&c->mu);
	while (c->state == CALL_WAITING &&
	       pthread_cond_timedwait(&c->cv, &c->mu, &c->deadline) != ETIMEDOUT)
		;
	go = c->state == CALL_GO;
	if (go) {
		/* the request is built after this callback: it carries the credential */
		free(c->headers->data);
		c->headers->data = must(strdup(c->auth_header));
	}
	pthread_mutex_unlock(&c->mu);
	return go ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

/* the one GET of req on h; call: a begun one whose header comes at the callback */
static int perform_get(CURL *h, const struct http_request *req, struct curl_slist *headers,
		       struct http_call *call, struct http_response *resp, char *errbuf,
		       size_t errlen)
{
	char detail[CURL_ERROR_SIZE] = "";
	struct body b = { 0 };
	enum http_failure failure = HTTP_FAIL_PERMANENT;
	int ret = GCERR_NETWORK;
	CURLcode rc;

	if (req->debug)
		svc->debug("http: GET %.*s%s", (int)strcspn(req->url, "?"), req->url,
			   call ? " (connecting while the credential is read)" : "");
	if ((rc = setup(h, req, headers, &b, resp, detail)) ||
	    (call && ((rc = curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq)) ||
		      (rc = curl_easy_setopt(h, CURLOPT_PREREQDATA, call))))) {
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
	freezero(b.buf, b.cap);
	if (ret) {
		if (req->debug)
			svc->debug("http: %s", errbuf);
		http_curl_response_release(resp);
		resp->failure = failure;
	}
	return ret;
}

static int http_curl_get(const struct http_request *req, struct http_response *resp,
			 char *errbuf, size_t errlen)
{
	struct curl_slist *headers = NULL;
	int ret;
	CURL *h;

	memset(resp, 0, sizeof(*resp));
	resp->failure = HTTP_FAIL_PERMANENT;	/* until it is known better */
	if (req->auth_header && strpbrk(req->auth_header, "\r\n")) {
		snprintf(errbuf, errlen, "refusing a credential that holds a line break");
		return GCERR_INPUT;
	}
	if ((ret = prepare(&h, errbuf, errlen)))
		return ret;
	if (req->auth_header && !(headers = curl_slist_append(NULL, req->auth_header))) {
		snprintf(errbuf, errlen, "out of memory");
		ret = GCERR_NOMEM;
	} else {
		ret = perform_get(h, req, headers, NULL, resp, errbuf, errlen);
	}
	curl_easy_cleanup(h);
	wipe_headers(headers);
	return ret;
}

static void *call_thread(void *arg)
{
	struct http_call *c = arg;
	CURL *h;

	c->resp.failure = HTTP_FAIL_PERMANENT;
	if (!(c->ret = prepare(&h, c->errbuf, sizeof(c->errbuf)))) {
		c->ret = perform_get(h, &c->req, c->headers, c, &c->resp, c->errbuf,
				     sizeof(c->errbuf));
		curl_easy_cleanup(h);
	}
	return NULL;
}

static void call_free(struct http_call *c)
{
	if (c->auth_header)
		freezero(c->auth_header, strlen(c->auth_header));
	wipe_headers(c->headers);
	free(c->url);
	free(c->user_agent);
	free(c->ca_file);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct http_call *http_curl_begin(const struct http_request *req)
{
	struct http_call *c = must(calloc(1, sizeof(*c)));

	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->req = *req;
	c->req.auth_header = NULL;
	c->req.url = c->url = must(strdup(req->url));
	c->req.user_agent = c->user_agent = req->user_agent ? must(strdup(req->user_agent)) : NULL;
	c->req.ca_file = c->ca_file = req->ca_file ? must(strdup(req->ca_file)) : NULL;
	c->headers = must(curl_slist_append(NULL, PENDING_HEADER));
	clock_gettime(CLOCK_REALTIME, &c->deadline);
	c->deadline.tv_sec += req->timeout_ms / 1000 + 1;
	if (pthread_create(&c->thread, NULL, call_thread, c)) {
		call_free(c);
		return NULL;
	}
	return c;
}

static int http_curl_send(struct http_call *c, const char *auth_header,
			  struct http_response *resp, char *errbuf, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&c->mu);
	if (auth_header && !strpbrk(auth_header, "\r\n")) {
		c->auth_header = must(strdup(auth_header));
		c->state = CALL_GO;
	} else {
		c->state = CALL_DROP;
	}
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	ret = c->ret;
	if (c->state == CALL_DROP && !ret)
		ret = GCERR_NETWORK;	/* answered without us: never a result */
	snprintf(errbuf, errlen, "%s", c->state == CALL_DROP ? "not sent" : c->errbuf);
	*resp = c->resp;
	if (c->state == CALL_DROP)
		http_curl_response_release(resp);
	call_free(c);
	return ret;
}

static const struct http_ops ops = {
	.abi_version = HTTP_ABI_VERSION,
	.get = http_curl_get,
	.response_release = http_curl_response_release,
	.begin = http_curl_begin,
	.send = http_curl_send,
};

const struct http_ops *http_module_init(const struct gc_services *services)
{
	if (!services || services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;
	svc = services;
	return &ops;
}

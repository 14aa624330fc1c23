/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/policy.h"
#include "token/lock.h"
#include "keystore/stack.h"
#include "lib/codec.h"
#include "lib/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* seconds between detached refreshes after one failed */
#define AHEAD_RETRY 30

/*
 * The write generation seen before the credential was read (a cached
 * token must carry it to be served; a token obtained is tagged with it).
 */
struct flight {
	uint64_t generation;
	bool changed;		/* stored or erased while we exchanged */
	bool ahead;		/* a background refresh: no stale fallback */
	struct cached_token stale;	/* a cached token inside the margin */
};

static int64_t now_epoch(void)
{
	return (int64_t)time(NULL);
}

const char *token_org(const struct token_request *r, const struct gc_credential *cred)
{
	if (r->org)
		return r->org;
	if (cred && cred->organization && *cred->organization)
		return cred->organization;
	if (r->org_config)
		return r->org_config;
	return "";
}

void token_fingerprint(const struct gc_credential *cred, char fp[17])
{
	codec_fingerprint(cred->kind, cred->username, cred->secret, fp);
}

/* a cache failure never fails the call; forget its message */
static void cache_soft(int err, const char *what)
{
	if (err && err != GCERR_NOTFOUND) {
		gc_debug("token cache %s failed: %s", what,
			 gc_error_message() ? gc_error_message() : gc_strerror(err));
		gc_error_clear();
	}
}

static bool use_summary(const struct token_policy *p)
{
	return p->tier && (p->tier->caps & TIER_SUMMARY) && !p->env_credential;
}

/* read the credential, noting the write generation first */
static int load_credential(const struct token_policy *p, struct flight *f,
			   struct gc_credential *cred)
{
	credential_release(cred);
	f->generation = p->src.generation(p->src.ctx);
	return p->src.credential(p->src.ctx, cred);
}

/* the token cached in t for cred, when fresh; a stale one is kept in f */
static int cached(const struct token_policy *p, const struct token_request *r,
		  const struct token_tier *t, const struct gc_credential *cred,
		  const char *fp, struct flight *f, struct cached_token *tok)
{
	struct cache_want want = { fp, f->generation, now_epoch(), p->margin, r->min_ttl };
	enum cache_verdict v;
	int err = cache_get(t, p->server, token_org(r, cred), cred, tok);

	cache_soft(err, "read");
	if (err)
		return GCERR_NOTFOUND;
	v = cache_judge(tok, &want);
	if (v == CACHE_FRESH) {
		gc_debug("token for '%s' served from the %s cache", p->server, t->name);
		return 0;
	}
	/* kept for a failed refresh, unless it is too short for what was asked */
	if (v == CACHE_STALE && !f->stale.token &&
	    tok->expires_at - now_epoch() >= r->min_ttl) {
		f->stale = *tok;
		memset(tok, 0, sizeof(*tok));
	}
	cached_token_release(tok);
	return GCERR_NOTFOUND;
}

/*
 * A fresh cached token and the credential it belongs to: 0 for a hit, 1
 * for a miss, else the error reading the credential.  With the tier's
 * summary this reads no keystore (cred->secret stays NULL).  On a miss
 * cred still holds a whole credential when one was read, so the slow path
 * need not read it again.
 */
static int try_hit(const struct token_policy *p, const struct token_request *r,
		   struct flight *f, struct gc_credential *cred, struct cached_token *tok)
{
	char fp[17];
	int err;

	if (!p->tier)
		return 1;
	if (use_summary(p)) {
		credential_release(cred);
		f->generation = p->src.generation(p->src.ctx);
		if (p->tier->summary_get(p->tier, p->server, cred, fp)) {
			gc_error_clear();
			return 1;
		}
	} else if (!cred->secret) {
		if ((err = load_credential(p, f, cred)))
			return err;
		token_fingerprint(cred, fp);
	} else {
		token_fingerprint(cred, fp);
	}
	if (!cached(p, r, p->tier, cred, fp, f, tok))
		return 0;
	if (!cred->secret && !(p->background && f->stale.token))
		credential_release(cred);
	gc_error_clear();
	return 1;
}

void token_write_back(const struct token_policy *p, const struct gc_credential *cred,
		      const char *org, const struct cached_token *tok)
{
	const struct token_tier *fb;
	int err;

	if (tok->expires_at <= 0) {
		gc_debug("token expiry unknown; not caching it");
		return;
	}
	err = cache_put(p->tier, p->server, org, cred, tok);
	if (err == GCERR_FULL && p->src.fallback && (fb = p->src.fallback(p->src.ctx))) {
		gc_debug("%s; caching the token in the %s tier", gc_error_message(), fb->name);
		gc_error_clear();
		err = cache_put(fb, p->server, org, cred, tok);
	}
	cache_soft(err, "write");
	if (use_summary(p))
		cache_soft(p->tier->summary_put(p->tier, cred, tok->fingerprint, tok->expires_at),
			   "write");
}

/*
 * After a store or erase since the credential was read: whether the stored
 * credential is still the one that obtained tok (an erase of nothing, or
 * the same key stored again, changes nothing).
 */
static bool still_stored(const struct token_policy *p, const struct cached_token *tok)
{
	struct gc_credential now;
	char fp[17];
	bool same;

	if (p->src.credential(p->src.ctx, &now)) {
		gc_error_clear();
		return false;
	}
	token_fingerprint(&now, fp);
	same = !strcmp(fp, tok->fingerprint);
	credential_release(&now);
	return same;
}

/*
 * Write tok back under the server's write lock, only if no store or erase
 * happened since the credential was read, or the stored credential is
 * still the one that obtained it (galileo-credential(1) TOKEN LIFETIME).
 * The token carries the generation seen before that check: should a store
 * or erase that holds no common lock with us (another runtime directory)
 * come after it, the token is never served.
 */
static void write_back_checked(const struct token_policy *p, const struct gc_credential *cred,
			       const char *org, struct cached_token *tok, struct flight *f)
{
	uint64_t now;
	int fd;

	if (write_lock(p->server, p->timeout, &fd)) {
		cache_soft(GCERR_FAIL, "write");
		return;
	}
	if ((now = p->src.generation(p->src.ctx)) != f->generation && !still_stored(p, tok))
		f->changed = true;
	else {
		tok->generation = now;
		token_write_back(p, cred, org, tok);
	}
	lock_release(fd);
}

static void stale_warning(const char *why, const struct cached_token *stale)
{
	fprintf(stderr, "galileo-credential: warning: %s; using the cached token, which expires in %" PRId64 " s\n",
		why, stale->expires_at - now_epoch());
}

/* TOKEN LIFETIME: a failed refresh of a token that has not expired yet */
static int stale_fallback(struct flight *f, int err, struct cached_token *tok)
{
	if (err != GCERR_NETWORK || !f->stale.token || f->ahead ||
	    f->stale.expires_at <= now_epoch())
		return err;
	stale_warning(gc_error_message() ? gc_error_message() : gc_strerror(err), &f->stale);
	gc_error_clear();
	*tok = f->stale;
	memset(&f->stale, 0, sizeof(f->stale));
	return 0;
}

/* the cache once more, under the lock: another process may have refreshed */
static int recheck(const struct token_policy *p, const struct token_request *r,
		   struct flight *f, const struct gc_credential *cred, struct cached_token *tok)
{
	const struct token_tier *fb;
	char fp[17];

	if (r->refresh)
		return GCERR_NOTFOUND;
	token_fingerprint(cred, fp);
	if (!cached(p, r, p->tier, cred, fp, f, tok))
		return 0;
	fb = p->src.fallback ? p->src.fallback(p->src.ctx) : NULL;
	if (fb && fb != p->tier && !cached(p, r, fb, cred, fp, f, tok))
		return 0;
	return GCERR_NOTFOUND;
}

void token_from_result(struct exchange_result *res, const struct gc_credential *cred,
		       struct cached_token *tok)
{
	memset(tok, 0, sizeof(*tok));
	tok->token = res->access_token;
	res->access_token = NULL;
	tok->expires_at = res->expires_at;
	tok->lifetime = res->lifetime;
	token_fingerprint(cred, tok->fingerprint);
	exchange_result_release(res);
}

/*
 * One refresh under the exchange lock; f->changed says to do it again.
 * held: the write lock is ours for the whole round, so nothing can change.
 */
static int refresh_once(const struct token_policy *p, const struct token_request *r,
			struct flight *f, struct gc_credential *cred, struct cached_token *tok,
			bool held)
{
	struct exchange_result res;
	const char *org;
	int err;

	if (!cred->secret) {
		/* only the summary was read: a token got while we waited is served */
		if (!r->refresh && use_summary(p) && try_hit(p, r, f, cred, tok) == 0)
			return 0;
		/* the keystore read and the TLS handshake need not wait for each other */
		if (p->src.prepare)
			p->src.prepare(p->src.ctx, token_org(r, NULL));
		if ((err = load_credential(p, f, cred)))
			return err;
	}
	if (!recheck(p, r, f, cred, tok))
		return 0;
	org = token_org(r, cred);
	gc_debug("exchanging the credential for a token of '%s'", p->server);
	err = p->src.exchange(p->src.ctx, cred, org, &res);
	if (err)
		return stale_fallback(f, err, tok);
	token_from_result(&res, cred, tok);
	tok->generation = f->generation;
	if (p->background)
		flight_note(p->server, r->org ? r->org : "", 0, NULL);	/* a good one now */
	if (held)
		token_write_back(p, cred, org, tok);
	else
		write_back_checked(p, cred, org, tok, f);
	if (f->changed)
		cached_token_release(tok);
	return 0;
}

/*
 * Under the exchange lock: refresh, and when the credential was stored or
 * erased meanwhile, once more with what is stored now, holding the write
 * lock throughout, so that even a storm of stores cannot make us go round
 * again.
 */
static int refresh_locked(const struct token_policy *p, const struct token_request *r,
			  struct flight *f, struct gc_credential *cred, struct cached_token *tok)
{
	int wlock, err = refresh_once(p, r, f, cred, tok, false);

	if (!err && f->changed) {
		gc_debug("the credential for '%s' changed meanwhile; once more with the stored one",
			 p->server);
		credential_release(cred);
		cached_token_release(&f->stale);
		f->changed = false;
		if (!(err = write_lock(p->server, p->timeout, &wlock))) {
			err = refresh_once(p, r, f, cred, tok, true);
			lock_release(wlock);
		}
	}
	return err;
}

int token_refresh_ahead(const struct token_policy *p, const struct token_request *r, int lock)
{
	const char *org = r->org ? r->org : "";
	struct gc_credential cred = { 0 };
	struct cached_token tok = { 0 };
	struct flight f = { .ahead = true };
	int err;

	err = refresh_locked(p, r, &f, &cred, &tok);
	flight_note(p->server, org, err, err ? (gc_error_message() ? gc_error_message() :
						gc_strerror(err)) : NULL);
	cached_token_release(&tok);
	cached_token_release(&f.stale);
	credential_release(&cred);
	lock_release(lock);
	return err;
}

/*
 * The stale token served now, a detached process refreshing it meanwhile;
 * false when it must not be served (TOKEN LIFETIME: a rejected refresh is not
 * papered over, so the call refreshes itself and says why it fails).
 * After a failure, another detached refresh only every AHEAD_RETRY s.
 */
static bool serve_ahead(const struct token_policy *p, const struct token_request *r,
			struct flight *f, struct cached_token *tok)
{
	const char *org = r->org ? r->org : "";
	struct flight_failure last;
	bool noted = flight_note_read(p->server, org, &last);

	if (noted && last.err != GCERR_NETWORK)
		return false;
	if (!noted || last.age >= AHEAD_RETRY)
		p->src.spawn_ahead(p->src.ctx, org);
	*tok = f->stale;
	memset(&f->stale, 0, sizeof(f->stale));
	if (noted)
		stale_warning(last.message, tok);
	return true;
}

int token_obtain(const struct token_policy *p, const struct token_request *r,
		 struct gc_credential *cred, struct cached_token *tok)
{
	struct flight f = { 0 };
	int lock, err;

	memset(cred, 0, sizeof(*cred));
	memset(tok, 0, sizeof(*tok));
	if (!r->refresh && (err = try_hit(p, r, &f, cred, tok)) <= 0)
		return err;
	if (!r->refresh && p->background && p->src.spawn_ahead && f.stale.token &&
	    serve_ahead(p, r, &f, tok))
		return 0;
	if ((err = flight_lock(p->server, r->org ? r->org : "", p->timeout, &lock))) {
		credential_release(cred);
		cached_token_release(&f.stale);
		return err;
	}
	err = refresh_locked(p, r, &f, cred, tok);
	lock_release(lock);
	cached_token_release(&f.stale);
	if (err)
		credential_release(cred);
	return err;
}

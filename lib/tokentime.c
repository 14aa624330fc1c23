/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/tokentime.h"
#include "lib/codec.h"
#include "lib/common.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* 9999-12-31T23:59:59Z: the last instant a four-digit year can name */
#define EPOCH_MAX INT64_C(253402300799)

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* exactly n decimal digits */
static bool take_digits(const char **p, int n, int *val)
{
	int v = 0;

	while (n--) {
		if (!is_digit(**p))
			return false;
		v = v * 10 + (*(*p)++ - '0');
	}
	*val = v;
	return true;
}

static bool take_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Every field is range-checked before timegm() sees it, so timegm never
 * normalises a bad date into a good one and never overflows.
 */
static int make_epoch(int y, int mo, int d, int h, int mi, int s, int64_t *epoch)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct tm tm;
	time_t t;

	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && is_leap(y)) ||
	    h > 23 || mi > 59 || s > 60)
		return GCERR_FAIL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;	/* a leap second 60 rolls into the next minute */
	t = timegm(&tm);
	if (t == (time_t)-1)
		return GCERR_FAIL;	/* only on a 32-bit time_t past 2038 */
	*epoch = (int64_t)t;
	return 0;
}

int tokentime_parse_rfc3339(const char *s, int64_t *epoch)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;
	int64_t t;

	if (!s)
		return GCERR_FAIL;
	if (!take_digits(&p, 4, &y) || !take_char(&p, '-') ||
	    !take_digits(&p, 2, &mo) || !take_char(&p, '-') ||
	    !take_digits(&p, 2, &d))
		return GCERR_FAIL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return GCERR_FAIL;
	p++;
	if (!take_digits(&p, 2, &h) || !take_char(&p, ':') ||
	    !take_digits(&p, 2, &mi) || !take_char(&p, ':') ||
	    !take_digits(&p, 2, &sec))
		return GCERR_FAIL;
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return GCERR_FAIL;
		while (is_digit(*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!take_digits(&p, 2, &oh) || !take_char(&p, ':') ||
		    !take_digits(&p, 2, &om) || oh > 23 || om > 59)
			return GCERR_FAIL;
	}
	if (*p != '\0')
		return GCERR_FAIL;
	if (make_epoch(y, mo, d, h, mi, sec, &t))
		return GCERR_FAIL;
	/* local time = UTC + offset, so UTC = local - offset */
	*epoch = t - sign * (oh * 3600 + om * 60);
	return 0;
}

static bool take_month(const char **p, int *mo)
{
	int i;

	for (i = 0; i < 12; i++) {
		if (!strncmp(*p, month_names[i], 3)) {
			*p += 3;
			*mo = i + 1;
			return true;
		}
	}
	return false;
}

static bool take_time(const char **p, int *h, int *mi, int *s)
{
	return take_digits(p, 2, h) && take_char(p, ':') &&
	       take_digits(p, 2, mi) && take_char(p, ':') &&
	       take_digits(p, 2, s);
}

static bool take_word(const char **p, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(*p, w, n))
		return false;
	*p += n;
	return true;
}

/* a day name, short ("Sun") or, for RFC 850, long ("Sunday") */
static bool take_weekday(const char **p, bool long_form)
{
	static const char *const days[7] = {
		"Sunday", "Monday", "Tuesday", "Wednesday",
		"Thursday", "Friday", "Saturday",
	};
	int i;

	for (i = 0; i < 7; i++) {
		if (long_form ? take_word(p, days[i]) : !strncmp(*p, days[i], 3)) {
			if (!long_form)
				*p += 3;
			return true;
		}
	}
	return false;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
static bool parse_imf(const char *p, int f[6], const char **end)
{
	bool ok = take_weekday(&p, false) && take_word(&p, ", ") &&
		  take_digits(&p, 2, &f[2]) && take_char(&p, ' ') &&
		  take_month(&p, &f[1]) && take_char(&p, ' ') &&
		  take_digits(&p, 4, &f[0]) && take_char(&p, ' ') &&
		  take_time(&p, &f[3], &f[4], &f[5]) && take_word(&p, " GMT");

	*end = p;
	return ok;
}

/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
static bool parse_rfc850(const char *p, int f[6], const char **end)
{
	bool ok = take_weekday(&p, true) && take_word(&p, ", ") &&
		  take_digits(&p, 2, &f[2]) && take_char(&p, '-') &&
		  take_month(&p, &f[1]) && take_char(&p, '-') &&
		  take_digits(&p, 2, &f[0]) && take_char(&p, ' ') &&
		  take_time(&p, &f[3], &f[4], &f[5]) && take_word(&p, " GMT");

	/* two-digit years: nothing we handle predates 1970 */
	if (ok)
		f[0] += f[0] < 70 ? 2000 : 1900;
	*end = p;
	return ok;
}

/* asctime: Sun Nov  6 08:49:37 1994 (day space-padded) */
static bool parse_asctime(const char *p, int f[6], const char **end)
{
	bool ok = take_weekday(&p, false) && take_char(&p, ' ') &&
		  take_month(&p, &f[1]) && take_char(&p, ' ') &&
		  (take_char(&p, ' ') ? take_digits(&p, 1, &f[2]) : take_digits(&p, 2, &f[2])) &&
		  take_char(&p, ' ') && take_time(&p, &f[3], &f[4], &f[5]) &&
		  take_char(&p, ' ') && take_digits(&p, 4, &f[0]);

	*end = p;
	return ok;
}

int tokentime_parse_http_date(const char *s, int64_t *epoch)
{
	int f[6] = { 0 };	/* year, month, day, hour, minute, second */
	const char *end;

	if (!s)
		return GCERR_FAIL;
	/* a header value may still carry its surrounding whitespace */
	while (is_ows(*s))
		s++;
	if (!parse_imf(s, f, &end) && !parse_rfc850(s, f, &end) &&
	    !parse_asctime(s, f, &end))
		return GCERR_FAIL;
	while (is_ows(*end))
		end++;
	if (*end != '\0')
		return GCERR_FAIL;
	return make_epoch(f[0], f[1], f[2], f[3], f[4], f[5], epoch);
}

/*
 * Segment n (0-based) of a three-segment JWT, decoded and parsed as JSON;
 * NULL when jwt is not one or the segment is not JSON.  New reference.
 */
static json_t *jwt_segment(const char *jwt, int n)
{
	const char *dot1, *dot2, *start, *end;
	unsigned char *raw;
	json_t *root;
	size_t len;

	if (!jwt)
		return NULL;
	dot1 = strchr(jwt, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || strchr(dot2 + 1, '.'))
		return NULL;
	start = n == 0 ? jwt : dot1 + 1;
	end = n == 0 ? dot1 : dot2;
	raw = codec_base64url_decode(start, (size_t)(end - start), &len);
	if (!raw)
		return NULL;
	root = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	/* part of a token: wipe it */
	secret_freezero(raw, len + 1);
	return root;
}

bool tokentime_is_jwt(const char *s)
{
	json_t *header = jwt_segment(s, 0);
	bool yes = json_is_object(header) && json_object_get(header, "alg");

	json_decref(header);
	return yes;
}

int tokentime_jwt_exp(const char *jwt, int64_t *exp)
{
	json_t *root, *v;
	int64_t e;
	int ret = GCERR_FAIL;

	root = jwt_segment(jwt, 1);
	if (!root)
		return GCERR_FAIL;
	v = json_is_object(root) ? json_object_get(root, "exp") : NULL;
	if (json_is_integer(v)) {
		e = json_integer_value(v);
		if (e >= 0 && e <= EPOCH_MAX) {
			*exp = e;
			ret = 0;
		}
	} else if (json_is_real(v)) {
		/* NumericDate may carry a fraction (RFC 7519 section 2) */
		double r = json_real_value(v);

		if (isfinite(r) && r >= 0 && r <= (double)EPOCH_MAX) {
			*exp = (int64_t)r;
			ret = 0;
		}
	}
	json_decref(root);
	return ret;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

bool tokentime_date_believed(int64_t server_date, int64_t now)
{
	return server_date >= 0 && sat_sub(server_date, now) <= TOKENTIME_DATE_TRUST &&
	       sat_sub(now, server_date) <= TOKENTIME_DATE_TRUST;
}

int64_t tokentime_local_expiry(int64_t expires_at, int64_t server_date, int64_t now)
{
	/* a broken clock must not make a token of seconds live for years */
	if (!tokentime_date_believed(server_date, now))
		return expires_at;
	return sat_add(now, sat_sub(expires_at, server_date));
}

bool tokentime_is_fresh(int64_t now, int64_t expires, int64_t lifetime, long margin)
{
	int64_t m = margin > 0 ? margin : 0;

	if (now >= expires)
		return false;
	/*
	 * Half the lifetime caps the margin so a short-lived token is still
	 * used at all; an unknown lifetime (<= 0) leaves the margin whole,
	 * which only refreshes earlier.
	 */
	if (lifetime > 0 && lifetime / 2 < m)
		m = lifetime / 2;
	return sat_sub(expires, now) > m;
}

void tokentime_format(int64_t epoch, char buf[static 21])
{
	struct tm tm;
	time_t t;

	/* clamped so the year always has four digits and fits buf */
	if (epoch < 0)
		epoch = 0;
	if (epoch > EPOCH_MAX)
		epoch = EPOCH_MAX;
	t = (time_t)epoch;
	if (!gmtime_r(&t, &tm)) {
		memcpy(buf, "1970-01-01T00:00:00Z", 21);
		return;
	}
	/* the modulos only let the compiler see that 21 bytes suffice */
	snprintf(buf, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ",
		 (unsigned int)(tm.tm_year + 1900) % 10000,
		 (unsigned int)(tm.tm_mon + 1) % 100, (unsigned int)tm.tm_mday % 100,
		 (unsigned int)tm.tm_hour % 100, (unsigned int)tm.tm_min % 100,
		 (unsigned int)tm.tm_sec % 100);
}

/* SPDX-License-Identifier: MIT */
/*
 * Text checks and escaping: what may be stored (galileo-credential(1)
 * KEYSTORES: no control characters) and how peers' text is shown (OUTPUT).
 */
#ifndef GC_TEXT_H
#define GC_TEXT_H

#include <stdbool.h>

/* s holds a C0 control character or DEL */
bool text_has_control(const char *s);

/* s is well-formed UTF-8 (no overlong forms, no surrogates) */
bool text_is_utf8(const char *s);

/*
 * s with every C0 control, DEL, C1 control (U+0080-U+009F) and
 * bidirectional control (U+202A-U+202E, U+2066-U+2069) escaped as \xNN or
 * \uNNNN, and every byte that is not part of well-formed UTF-8 as \xNN;
 * everything else as it is.  New string, caller frees.
 */
char *text_escape(const char *s);

#endif

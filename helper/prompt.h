/* SPDX-License-Identifier: MIT */
/*
 * Reading a secret from a person or a pipe (galileo-credential(1) COMMANDS,
 * SECURITY).
 */
#ifndef GC_PROMPT_H
#define GC_PROMPT_H

#include <stdbool.h>
#include <stdio.h>

#define SECRET_LINE_MAX (64 * 1024)

/*
 * The secret: from the terminal with echo off after showing prompt (as
 * ssh's read_passphrase), else one line of stdin.  The line's newline
 * (and a CR before it) is not part of the secret.  A signal that ends the
 * program at the prompt leaves the terminal as it was.  New string
 * (secret_free), or NULL on EOF or an oversize line (with a message).
 */
char *prompt_secret(const char *prompt);

/*
 * The secret from the controlling terminal alone, whatever stdin is (first
 * use: stdin holds the request), as prompt_secret reads it.  NULL when
 * there is no terminal, on EOF or an oversize line.
 */
char *prompt_terminal(const char *prompt);

/* a person may be there: the process has a controlling terminal that opens */
bool prompt_have_terminal(void);

/* GIT_TERMINAL_PROMPT turns prompts off, read as git reads it (0, false, no, off) */
bool prompt_git_off(void);

/* one line of f, as prompt_secret reads stdin */
char *prompt_read_line(FILE *f);

/*
 * The prompt service modules are lent (galileo-credential-module(7)
 * SERVICES): on the controlling terminal only (never stdin, which belongs
 * to git's or docker's protocol), and not at all when GIT_TERMINAL_PROMPT
 * turns prompts off (prompt_git_off).  secret: show text, read one line with echo off, handled as
 * prompt_secret() handles signals, until deadline (CLOCK_MONOTONIC
 * milliseconds); *answer a new string (secret_free).  Otherwise show text
 * as one line.  0, or -1: no terminal, no answer in time, end of input.
 */
int prompt_tty(const char *text, bool secret, long long deadline, char **answer);

#endif

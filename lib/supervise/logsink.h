/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log sinks: where the byte stream of one source goes (a guest console read
 * from a FIFO, the stdout/stderr pipe of a helper service), inside the
 * single-threaded supervisor.  A sink
 *
 *  - appends the raw bytes to DIR/NAME.log, capped at max_size bytes per
 *    file: when appending would make NAME.log exceed the cap, NAME.log.K
 *    becomes NAME.log.K+1 (NAME.log.KEEP is removed), NAME.log becomes
 *    NAME.log.1 and a new NAME.log is started; with keep 0 NAME.log is
 *    truncated instead.  A write larger than the cap is cut into pieces, so
 *    no file ever exceeds it.  Files are opened relative to a descriptor of
 *    DIR with O_NOFOLLOW (a symbolic link is refused, so is anything but a
 *    regular file), mode 0640; an existing NAME.log is appended to and its
 *    size counts towards the cap.  DIR is created (0750, parents too).
 *  - optionally copies the raw bytes to a "tee" descriptor, the write end of
 *    a pipe feeding another helper (Cuttlefish's kernel_log_monitor).  The
 *    tee never blocks: what the pipe cannot take at once is dropped and
 *    counted.  THE CALLER MUST HAND A NON-BLOCKING DESCRIPTOR: the sink does
 *    not set O_NONBLOCK itself, because the open file description is shared
 *    with a child.
 *  - splits the stream into lines ('\n'; a trailing '\r' is stripped).  A
 *    line longer than AVM_LOGSINK_LINE_MAX bytes is passed on in pieces of
 *    that size, so memory does not grow with the input; a partial line is
 *    held until its newline arrives or avm_logsink_flush is called (at EOF).
 *    NUL bytes in a line are replaced by spaces (the file and the tee get
 *    the bytes unchanged).  Each line goes to
 *      - the line callback, if set (boot-pattern matching);
 *      - the systemd journal, if configured: MESSAGE, PRIORITY,
 *        SYSLOG_IDENTIFIER=avm, AVM_INSTANCE, AVM_SERVICE (when a service is
 *        given) and AVM_STREAM=NAME.  Journal errors are counted, not
 *        reported.  Note that sd_journal_sendv uses a blocking socket: a
 *        stalled journald applies back-pressure, as it does to every client;
 *      - echo_fd, if not -1, as "[NAME] line\n" (stderr with --verbose).
 *        EAGAIN, EPIPE and short writes lose the line silently; a blocking
 *        descriptor (a terminal) is written as it is, and can block.
 *
 * Writes to the tee and echo descriptors never raise SIGPIPE (it is blocked
 * around the write and a SIGPIPE the write caused is consumed), so a reader
 * that went away cannot kill the supervisor.
 *
 * With timestamps, the file gets the lines instead of the raw bytes (each
 * after the UTC time it arrived at, a partial line when it is flushed or
 * fills the buffer); the tee still gets the bytes.  A run header, when
 * given, marks where each run begins in a file appended to across runs.
 *
 * Errors writing the log file (ENOSPC, EIO, a failed rotation) do not stop
 * the sink: the bytes are lost, the error is counted and the first one is
 * kept as a message (avm_logsink_error); lines still reach the callback, the
 * journal and the echo descriptor.  After a failure the next feed tries
 * again (reopening NAME.log if it had to be closed).
 *
 * The sink does not own the tee and echo descriptors, nor the descriptors
 * given to avm_logsink_drain.  The line callback must not feed or free the
 * sink it is called from.
 */
#pragma once

#include "util/cleanup.h"
#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line handed to the consumers; longer ones come in pieces.  */
#define AVM_LOGSINK_LINE_MAX 4096
/* Bytes read by one avm_logsink_drain call at most.  */
#define AVM_LOGSINK_DRAIN_BUDGET (256 * 1024)
/* Largest accepted avm_logsink_config.keep.  */
#define AVM_LOGSINK_KEEP_MAX 1000

/* avm_logsink_drain results.  */
#define AVM_LOGSINK_AGAIN 0 /* drained: the descriptor said EAGAIN */
#define AVM_LOGSINK_MORE 1  /* budget used up: there may be more to read */
#define AVM_LOGSINK_EOF (-1)

struct avm_logsink_config
{
  const char *dir;        /* log directory (created if missing) */
  uint64_t max_size;      /* bytes per file before rotating; 0 = unlimited */
  unsigned keep;          /* rotated generations kept (NAME.log.1 .. NAME.log.KEEP);
                             0: none, NAME.log is truncated instead */
  bool journal;           /* also send lines to the journal */
  int instance;           /* AVM_INSTANCE */
  int echo_fd;            /* -1 or a descriptor lines are echoed to */
  bool timestamps;        /* the file gets lines, each after its time of arrival
                             ("2026-12-07T03:55:01.123Z "), not the raw bytes */
  const char *run_header; /* written to the file as a line of its own when
                             the sink is opened ("=== TEXT ==="), or NULL */
};

typedef void (*avm_logsink_line_fn) (void *data, const char *line, size_t len);

struct avm_logsink;

/* Open (create) CFG->dir/NAME.log.  NAME is a file name (no '/'); SERVICE
   (may be NULL) is the AVM_SERVICE journal field; PRIORITY is the journal
   priority (0-7, e.g. 6 for info).  The strings are copied.  Fails when the
   directory cannot be created or NAME.log cannot be opened (a symbolic link
   or not a regular file: the message names the file).  */
int avm_logsink_open (const struct avm_logsink_config *cfg, const char *name, const char *service, int priority,
                      struct avm_logsink **out, avm_error_t *err);

/* Copy the raw bytes to FD (non-blocking, not owned), or stop with -1.  */
void avm_logsink_set_tee (struct avm_logsink *s, int fd);

/* Call CB for every line: LINE is NUL-terminated, LEN excludes the NUL and
   the newline.  CB NULL removes it.  */
void avm_logsink_set_line_cb (struct avm_logsink *s, avm_logsink_line_fn cb, void *data);

void avm_logsink_feed (struct avm_logsink *s, const void *buf, size_t len);

/* Read FD (non-blocking, not owned) until EAGAIN, feeding everything read,
   but at most AVM_LOGSINK_DRAIN_BUDGET bytes so that one busy source cannot
   starve the event loop.  Returns AVM_LOGSINK_MORE (1) when the budget was
   used up (call again; the descriptor may have more), AVM_LOGSINK_AGAIN (0)
   on EAGAIN, AVM_LOGSINK_EOF (-1) at end of file (the pending partial line
   is flushed), or -errno (never -1: EPERM is reported as -EIO) when read
   fails.  */
int avm_logsink_drain (struct avm_logsink *s, int fd);

/* The first error writing the log file or the journal, once: non-NULL the
   first time an error has happened since the sink was opened, NULL on
   every later call (the supervisor warns once per log).  */
const char *avm_logsink_new_error (struct avm_logsink *s);

/* Hand a pending partial line to the consumers.  */
void avm_logsink_flush (struct avm_logsink *s);

uint64_t avm_logsink_bytes (const struct avm_logsink *s);        /* total bytes fed */
uint64_t avm_logsink_tee_dropped (const struct avm_logsink *s);  /* bytes the tee lost */
uint64_t avm_logsink_write_errors (const struct avm_logsink *s); /* failed log writes */
uint64_t avm_logsink_journal_errors (const struct avm_logsink *s);
/* First log-file error ("cannot write DIR/NAME.log: No space left on
   device"), or NULL.  */
const char *avm_logsink_error (const struct avm_logsink *s);
/* DIR/NAME.log */
const char *avm_logsink_path (const struct avm_logsink *s);

/* Flush, close the log file and free S.  NULL is accepted.  */
void avm_logsink_free (struct avm_logsink *s);
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_logsink *, avm_logsink_free)
#define _cleanup_logsink_ __attribute__ ((cleanup (avm_logsink_freep)))

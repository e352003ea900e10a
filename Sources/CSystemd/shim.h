#ifndef MEDIC_CSYSTEMD_SHIM_H
#define MEDIC_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-id128.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

/* glibc >= 2.32 declares this only under _GNU_SOURCE. */
extern const char *strerrorname_np(int errnum);

/* The symbolic name of an errno ("ECONNRESET"), or NULL if unknown. */
static inline const char *medic_errno_name(int errnum) { return strerrorname_np(errnum); }
#endif

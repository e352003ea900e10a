#ifndef MEDIC_CLINUX_H
#define MEDIC_CLINUX_H
/* Linux interfaces that Glibc's Swift module leaves out: epoll, eventfd and inotify, with which
   the resource watcher waits for the kernel's events (PSI triggers, memory.events); malloc.h,
   with which medicd hands its heap's free memory back after bursts of work; sys/auxv.h and elf.h,
   with which it finds its own binary's segments. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <malloc.h>
#include <sys/auxv.h>
#include <elf.h>
#endif

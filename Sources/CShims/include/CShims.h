#ifndef FLOWTAP_CSHIMS_H
#define FLOWTAP_CSHIMS_H
#include <stddef.h>

/// Writes `value` as printf's "%.17g" (what SF-TAP's boost::lexical_cast<std::string>(double)
/// prints) into `buffer`; returns the length, or -1. Values in [1, 1e16) take an exact integer
/// path (no printf); others, and buffers under 32 bytes, go to snprintf.
int flowtap_format_g17(char *buffer, size_t size, double value);

/// The same through snprintf alone: the reference the fast path is tested against.
int flowtap_format_g17_libc(char *buffer, size_t size, double value);

struct sockaddr_storage;

/// recvfrom(2) that also reads the socket's kernel drop counter (SO_RXQ_OVFL, enabled on the socket):
/// returns the datagram's length or -1 (errno set); `*drops` is set to the counter when the kernel
/// attached it (cumulative datagrams dropped because the receive buffer was full), else left alone.
long flowtap_recv_counting_drops(int fd, void *buffer, size_t size, int flags, struct sockaddr_storage *from,
                                 unsigned int *fromLength, unsigned int *drops);

#endif

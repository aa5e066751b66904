#ifndef FLOWTAP_CSHIMS_H
#define FLOWTAP_CSHIMS_H
#include <stddef.h>

/// Writes `value` as printf's "%.17g" (what SF-TAP's boost::lexical_cast<std::string>(double)
/// prints) into `buffer`; returns the length, or -1. Values in [1, 1e16) take an exact integer
/// path (no printf); others, and buffers under 32 bytes, go to snprintf.
int flowtap_format_g17(char *buffer, size_t size, double value);

/// "00" … "99", 200 characters: the digit pairs the number writers here and in Swift share.
extern const char *const flowtap_digit_pairs;

/// The last second `flowtap_format_g17_time` printed, and its ten digits.
struct flowtap_time_text {
    unsigned long long seconds;
    char digits[16];
};

/// `flowtap_format_g17` for capture times (1e9 <= value < 1e10), keeping the integer digits in `cache`
/// while the second stays the same; other values go to `flowtap_format_g17`. Same text.
int flowtap_format_g17_time(char *buffer, size_t size, double value, struct flowtap_time_text *cache);

/// The same through snprintf alone: the reference the fast path is tested against.
int flowtap_format_g17_libc(char *buffer, size_t size, double value);

struct sockaddr_storage;

/// recvfrom(2) that also reads the socket's kernel drop counter (SO_RXQ_OVFL, enabled on the socket):
/// returns the datagram's length or -1 (errno set); `*drops` is set to the counter when the kernel
/// attached it (cumulative datagrams dropped because the receive buffer was full), else left alone.
long flowtap_recv_counting_drops(int fd, void *buffer, size_t size, int flags, struct sockaddr_storage *from,
                                 unsigned int *fromLength, unsigned int *drops);

/// A reusable recvmmsg(2) batch: `count` slots of `slot_size` bytes, each with its sender's address,
/// its length and whether it was cut short (MSG_TRUNC); the socket's SO_RXQ_OVFL drop counter as the
/// kernel last attached it. Allocated once per worker; nothing is allocated per datagram.
struct flowtap_receive_batch;
struct flowtap_receive_batch *flowtap_receive_batch_create(unsigned count, unsigned slot_size);
void flowtap_receive_batch_destroy(struct flowtap_receive_batch *batch);
/// Receives up to the batch's count of datagrams without blocking: how many (0 when none is queued), or -1 (errno set).
int flowtap_receive_batch_fill(struct flowtap_receive_batch *batch, int fd);
/// Datagram `index` of the last fill: its bytes, with `*length` its length (the slot's size at most)
/// and `*truncated` set when the datagram was longer than the slot.
const unsigned char *flowtap_receive_batch_datagram(const struct flowtap_receive_batch *batch, unsigned index,
                                                    unsigned *length, int *truncated);
/// The sender of datagram `index` (a sockaddr_in or sockaddr_in6 in the storage).
const struct sockaddr_storage *flowtap_receive_batch_sender(const struct flowtap_receive_batch *batch, unsigned index);
/// The cumulative count of datagrams the kernel dropped for a full receive buffer, as last seen (0 before any).
unsigned flowtap_receive_batch_kernel_drops(const struct flowtap_receive_batch *batch);

/// A sendmmsg(2) batch of up to `count` messages, each an optional header (copied, at most 64 bytes)
/// followed by a payload (not copied: it must stay valid until the flush) to an optional address.
struct flowtap_send_batch;
struct flowtap_send_batch *flowtap_send_batch_create(unsigned count);
void flowtap_send_batch_destroy(struct flowtap_send_batch *batch);
/// Queues one message; `to` may be NULL on a connected socket. Returns 0, or -1 when the batch is full
/// or the header is longer than 64 bytes.
int flowtap_send_batch_add(struct flowtap_send_batch *batch, const void *header, unsigned header_length,
                           const void *payload, unsigned payload_length, const struct sockaddr_storage *to, unsigned to_length);
unsigned flowtap_send_batch_count(const struct flowtap_send_batch *batch);
/// Sends every queued message with sendmmsg (blocking), message by message past any the kernel
/// refuses. Returns how many were sent; `results[i]` (room for the batch's count) is 0 for message i
/// sent, else its errno. The batch is empty afterwards.
unsigned flowtap_send_batch_flush(struct flowtap_send_batch *batch, int fd, int *results);

/// An AF_PACKET raw socket bound to interface `name` for sending whole frames; -1 (errno set) when
/// the interface does not exist or the caller may not open packet sockets.
int flowtap_packet_send_socket(const char *name);

/// Joins packet socket `fd` to fanout group `group` with a classic BPF program that picks the member by
/// a symmetric hash of the IP addresses alone (Ethernet, up to one VLAN tag, IPv4 or IPv6; anything
/// else goes to member 0), so every frame of an address pair — each direction, every fragment — meets
/// on one member and keeps its order. `members` is how many sockets join. 0 or -1 (errno set).
int flowtap_fanout_by_addresses(int fd, unsigned short group, unsigned members);

/// Adds `value` to `*counter` atomically (relaxed) and returns the value before.
unsigned long long flowtap_atomic_fetch_add(unsigned long long *counter, unsigned long long value);

#endif

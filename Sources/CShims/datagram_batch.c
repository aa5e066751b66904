#define _GNU_SOURCE
#include "CShims.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/filter.h>
#include <unistd.h>

/* Swift's Glibc module has no mmsghdr, recvmmsg or sendmmsg, so the batches live here. */

struct flowtap_receive_batch {
    unsigned count, slot_size, drops;
    unsigned char *data;
    struct mmsghdr *messages;
    struct iovec *vectors;
    struct sockaddr_storage *senders;
    union control { char bytes[CMSG_SPACE(sizeof(uint32_t))]; struct cmsghdr align; } *controls;
};

struct flowtap_receive_batch *flowtap_receive_batch_create(unsigned count, unsigned slot_size) {
    struct flowtap_receive_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->slot_size = slot_size;
    b->data = malloc((size_t)count * slot_size);
    b->messages = calloc(count, sizeof *b->messages);
    b->vectors = calloc(count, sizeof *b->vectors);
    b->senders = calloc(count, sizeof *b->senders);
    b->controls = calloc(count, sizeof *b->controls);
    if (!b->data || !b->messages || !b->vectors || !b->senders || !b->controls) {
        flowtap_receive_batch_destroy(b);
        return NULL;
    }
    return b;
}

void flowtap_receive_batch_destroy(struct flowtap_receive_batch *b) {
    if (!b) return;
    free(b->data);
    free(b->messages);
    free(b->vectors);
    free(b->senders);
    free(b->controls);
    free(b);
}

int flowtap_receive_batch_fill(struct flowtap_receive_batch *b, int fd) {
    for (unsigned i = 0; i < b->count; i++) {
        b->vectors[i].iov_base = b->data + (size_t)i * b->slot_size;
        b->vectors[i].iov_len = b->slot_size;
        struct msghdr *m = &b->messages[i].msg_hdr;
        m->msg_name = &b->senders[i];
        m->msg_namelen = sizeof b->senders[i];
        m->msg_iov = &b->vectors[i];
        m->msg_iovlen = 1;
        m->msg_control = b->controls[i].bytes;
        m->msg_controllen = sizeof b->controls[i].bytes;
        m->msg_flags = 0;
        b->messages[i].msg_len = 0;
    }
    int n = recvmmsg(fd, b->messages, b->count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (int i = 0; i < n; i++) {
        struct msghdr *m = &b->messages[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                uint32_t value;
                memcpy(&value, CMSG_DATA(c), sizeof value);
                b->drops = value;
            }
        }
    }
    return n;
}

const unsigned char *flowtap_receive_batch_datagram(const struct flowtap_receive_batch *b, unsigned index,
                                                    unsigned *length, int *truncated) {
    unsigned n = b->messages[index].msg_len;
    *truncated = (b->messages[index].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    *length = n < b->slot_size ? n : b->slot_size;
    return b->data + (size_t)index * b->slot_size;
}

const struct sockaddr_storage *flowtap_receive_batch_sender(const struct flowtap_receive_batch *b, unsigned index) {
    return &b->senders[index];
}

unsigned flowtap_receive_batch_kernel_drops(const struct flowtap_receive_batch *b) { return b->drops; }

enum { HEADER_ROOM = 64 };

struct flowtap_send_batch {
    unsigned count, used;
    struct mmsghdr *messages;
    struct iovec *vectors;              /* two per message: header, payload */
    unsigned char *headers;             /* HEADER_ROOM per message */
    struct sockaddr_storage *addresses;
};

struct flowtap_send_batch *flowtap_send_batch_create(unsigned count) {
    struct flowtap_send_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->messages = calloc(count, sizeof *b->messages);
    b->vectors = calloc((size_t)count * 2, sizeof *b->vectors);
    b->headers = calloc(count, HEADER_ROOM);
    b->addresses = calloc(count, sizeof *b->addresses);
    if (!b->messages || !b->vectors || !b->headers || !b->addresses) {
        flowtap_send_batch_destroy(b);
        return NULL;
    }
    return b;
}

void flowtap_send_batch_destroy(struct flowtap_send_batch *b) {
    if (!b) return;
    free(b->messages);
    free(b->vectors);
    free(b->headers);
    free(b->addresses);
    free(b);
}

int flowtap_send_batch_add(struct flowtap_send_batch *b, const void *header, unsigned header_length,
                           const void *payload, unsigned payload_length, const struct sockaddr_storage *to, unsigned to_length) {
    if (b->used == b->count || header_length > HEADER_ROOM || to_length > sizeof(struct sockaddr_storage)) return -1;
    unsigned i = b->used++;
    struct iovec *v = &b->vectors[2 * i];
    unsigned char *slot = b->headers + (size_t)i * HEADER_ROOM;
    if (header_length > 0) memcpy(slot, header, header_length);
    v[0].iov_base = slot;
    v[0].iov_len = header_length;
    v[1].iov_base = (void *)payload;
    v[1].iov_len = payload_length;
    struct msghdr *m = &b->messages[i].msg_hdr;
    memset(m, 0, sizeof *m);
    if (to) {
        memcpy(&b->addresses[i], to, to_length);
        m->msg_name = &b->addresses[i];
        m->msg_namelen = to_length;
    }
    m->msg_iov = header_length > 0 ? v : v + 1;
    m->msg_iovlen = header_length > 0 ? 2 : 1;
    return 0;
}

unsigned flowtap_send_batch_count(const struct flowtap_send_batch *b) { return b->used; }

unsigned flowtap_send_batch_flush(struct flowtap_send_batch *b, int fd, int *results) {
    unsigned sent = 0, next = 0;
    while (next < b->used) {
        int n = sendmmsg(fd, b->messages + next, b->used - next, 0);
        if (n > 0) {
            for (int i = 0; i < n; i++) results[next + i] = 0;
            sent += (unsigned)n;
            next += (unsigned)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            /* The message at `next` was refused (a dead collector's ICMP error, a full neighbour queue, a
               datagram too long for a raw send): note why and go on with the rest. */
            results[next++] = n < 0 ? errno : EIO;
        }
    }
    b->used = 0;
    return sent;
}

unsigned long long flowtap_atomic_fetch_add(unsigned long long *counter, unsigned long long value) {
    return __atomic_fetch_add(counter, value, __ATOMIC_RELAXED);
}

int flowtap_packet_send_socket(const char *name) {
    unsigned index = if_nametoindex(name);
    if (index == 0) return -1;
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) return -1;
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_ifindex = (int)index;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int flowtap_fanout_by_addresses(int fd, unsigned short group, unsigned members) {
    if (members == 0) { errno = EINVAL; return -1; }
    /* The ethertype comes from skb->protocol (VLAN tags are taken off before packet taps see a frame),
       the addresses from offsets relative to the network header (SKF_NET_OFF), the same whether the
       frame was received or sent. A = XOR of the address words (symmetric in the two addresses), then
       mixed and reduced. Scratch words are written before they are read, as the classic BPF checker
       requires; a load past the frame's end ends the program with 0: member 0. */
#define NET(k) ((unsigned)SKF_NET_OFF + (k))
    struct sock_filter code[] = {
        /*  0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, (unsigned)SKF_AD_OFF + SKF_AD_PROTOCOL),
        /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 0, 6),
        /* IPv4: source at 12, destination at 16. */
        /*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(12)),
        /*  3 */ BPF_STMT(BPF_ST, 0),
        /*  4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(16)),
        /*  5 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
        /*  6 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /*  7 */ BPF_STMT(BPF_JMP | BPF_JA, 30),                    /* to 38 */
        /*  8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x86DD, 0, 36), /* else to 45 */
        /* IPv6: source words at 8, 12, 16, 20; destination words at 24, 28, 32, 36. */
        /*  9 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(8)),
        /* 10 */ BPF_STMT(BPF_ST, 0),
        /* 11 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(12)),
        /* 12 */ BPF_STMT(BPF_ST, 1),
        /* 13 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(16)),
        /* 14 */ BPF_STMT(BPF_ST, 2),
        /* 15 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(20)),
        /* 16 */ BPF_STMT(BPF_ST, 3),
        /* 17 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(24)),
        /* 18 */ BPF_STMT(BPF_ST, 4),
        /* 19 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(28)),
        /* 20 */ BPF_STMT(BPF_ST, 5),
        /* 21 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(32)),
        /* 22 */ BPF_STMT(BPF_ST, 6),
        /* 23 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(36)),
        /* 24 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
        /* 25 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 26 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
        /* 27 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 28 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),
        /* 29 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 30 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 3),
        /* 31 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 32 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 4),
        /* 33 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 34 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 5),
        /* 35 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 36 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 6),
        /* 37 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 38: A *= 2^32/phi; A ^= A >> 16; A %= members */
        /* 38 */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),
        /* 39 */ BPF_STMT(BPF_ST, 7),
        /* 40 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
        /* 41 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 7),
        /* 42 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
        /* 43 */ BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, members),
        /* 44 */ BPF_STMT(BPF_RET | BPF_A, 0),
        /* 45 */ BPF_STMT(BPF_RET | BPF_K, 0),
    };
#undef NET
    struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
    int argument = (int)group | (PACKET_FANOUT_CBPF << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &argument, sizeof argument) != 0) return -1;
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &program, sizeof program);
}

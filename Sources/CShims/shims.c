#include "CShims.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int flowtap_format_g17_libc(char *buffer, size_t size, double value) {
    int n = snprintf(buffer, size, "%.17g", value);
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}

static const uint64_t powers_of_ten[18] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
};

/* "00" to "99": numbers are written two digits per division by 100 (a multiply and shifts). */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
const char *const flowtap_digit_pairs = digit_pairs;

/* The `count` decimal digits of q (< 10^count, leading zeros kept) at `out`. */
static void write_digits(char *out, uint64_t q, int count) {
    while (count >= 2) {
        uint64_t pair = q % 100;
        q /= 100;
        count -= 2;
        memcpy(out + count, digit_pairs + 2 * pair, 2);
    }
    if (count) out[0] = (char)('0' + q);
}

/* mantissa × 2^exponent × 10^fraction_digits, rounded half to even to an integer, exactly. */
static unsigned __int128 scaled_to_nearest(uint64_t mantissa, int exponent, int fraction_digits) {
    unsigned __int128 scaled = (unsigned __int128)mantissa * powers_of_ten[fraction_digits];
    if (exponent >= 0) return scaled << exponent;
    int shift = -exponent;
    unsigned __int128 quotient = scaled >> shift;
    unsigned __int128 remainder = scaled - (quotient << shift);
    unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
    if (remainder > half || (remainder == half && (quotient & 1))) quotient++;
    return quotient;
}

/* Values in [1, 1e16) — every capture timestamp — are printed from the exact binary value with
   integer arithmetic: round(v × 10^P) half to even, P = 16 − floor(log10 v), which is what glibc's
   printf computes, at a tenth of its cost. Anything else goes to snprintf. */
int flowtap_format_g17(char *buffer, size_t size, double value) {
    if (!(value >= 1.0 && value < 1e16) || size < 32) return flowtap_format_g17_libc(buffer, size, value);
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    int exponent = (int)((bits >> 52) & 0x7ff) - 1075;
    uint64_t mantissa = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    /* value = mantissa × 2^exponent, and value < 2^54 so exponent <= 1. */
    uint64_t integer = exponent >= 0 ? mantissa << exponent : (exponent > -64 ? mantissa >> -exponent : 0);
    int integer_digits = 1;
    while (integer_digits < 17 && integer >= powers_of_ten[integer_digits]) integer_digits++;
    unsigned __int128 scaled = scaled_to_nearest(mantissa, exponent, 17 - integer_digits);
    int length = 0;
    if (scaled >= (unsigned __int128)powers_of_ten[17]) {
        /* Rounding carried into a new leading digit: the value printed is 10^integer_digits. */
        buffer[length++] = '1';
        for (int i = 0; i < integer_digits; i++) buffer[length++] = '0';
        buffer[length] = 0;
        return length;
    }
    char digits[17];
    write_digits(digits, (uint64_t)scaled, 17);
    memcpy(buffer, digits, (size_t)integer_digits);
    length = integer_digits;
    int last = 16;
    while (last >= integer_digits && digits[last] == '0') last--;
    if (last >= integer_digits) {
        buffer[length++] = '.';
        for (int i = integer_digits; i <= last; i++) buffer[length++] = digits[i];
    }
    buffer[length] = 0;
    return length;
}

long flowtap_recv_counting_drops(int fd, void *buffer, size_t size, int flags, struct sockaddr_storage *from,
                                 unsigned int *fromLength, unsigned int *drops) {
    struct iovec vector = { buffer, size };
    union { char bytes[CMSG_SPACE(sizeof(uint32_t))]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_name = from;
    message.msg_namelen = *fromLength;
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    long n = recvmsg(fd, &message, flags);
    if (n < 0) return n;
    *fromLength = message.msg_namelen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t value;
            memcpy(&value, CMSG_DATA(c), sizeof value);
            *drops = value;
        }
    }
    return n;
}

/* Capture times, 1e9 <= v < 1e10 (2001 to 2286), always print as ten integer digits and up to seven
   fraction digits: the rounding above with those counts known, and the ten digits kept in `cache`
   while the second does not change. Anything else goes to flowtap_format_g17. */
int flowtap_format_g17_time(char *buffer, size_t size, double value, struct flowtap_time_text *cache) {
    if (!(value >= 1e9 && value < 1e10) || size < 32) return flowtap_format_g17(buffer, size, value);
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    int exponent = (int)((bits >> 52) & 0x7ff) - 1075; /* -23 to -20 in this range */
    uint64_t mantissa = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    uint64_t q = (uint64_t)scaled_to_nearest(mantissa, exponent, 7);
    /* Rounded up to 10^10: the general path prints the new leading digit. */
    if (q >= powers_of_ten[17]) return flowtap_format_g17(buffer, size, value);
    uint64_t seconds = q / powers_of_ten[7], fraction = q % powers_of_ten[7];
    if (cache->seconds != seconds) {
        write_digits(cache->digits, seconds, 10);
        cache->seconds = seconds;
    }
    memcpy(buffer, cache->digits, 10);
    int length = 10;
    if (fraction) {
        int digits = 7;
        while (fraction % 10 == 0) { fraction /= 10; digits--; }
        buffer[length++] = '.';
        write_digits(buffer + length, fraction, digits);
        length += digits;
    }
    buffer[length] = 0;
    return length;
}

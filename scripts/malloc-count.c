/*
 * Allocation counter for FlowTap's allocation tests, loaded with LD_PRELOAD.
 *
 * Every call to malloc, calloc, realloc, memalign, aligned_alloc and
 * posix_memalign made by the calling thread is counted, then forwarded to
 * glibc's own allocator (the __libc_* entry points, so no dlsym recursion).
 * Tests read the count through `flowtap_malloc_calls` (looked up with
 * dlsym by Tests/TestSupport/TestHelpers.swift) around the code they measure;
 * without this library loaded they skip.
 *
 * Build: cc -O2 -shared -fPIC -o libmalloc-count.so scripts/malloc-count.c
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *old, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static __thread uint64_t calls;

uint64_t flowtap_malloc_calls(void) { return calls; }

void *malloc(size_t size) {
    calls++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    calls++;
    return __libc_calloc(count, size);
}

void *realloc(void *old, size_t size) {
    calls++;
    return __libc_realloc(old, size);
}

void *memalign(size_t alignment, size_t size) {
    calls++;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    calls++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    calls++;
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

#ifndef FLOWTAP_CSHIMS_H
#define FLOWTAP_CSHIMS_H
#include <stddef.h>

/// Writes `value` as printf's "%.17g" (what SF-TAP's boost::lexical_cast<std::string>(double)
/// prints) into `buffer`; returns the length, or -1. A C shim because Swift cannot call
/// variadic snprintf without allocating a va_list array.
int flowtap_format_g17(char *buffer, size_t size, double value);

#endif

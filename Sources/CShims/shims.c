#include "CShims.h"
#include <stdio.h>

int flowtap_format_g17(char *buffer, size_t size, double value) {
    int n = snprintf(buffer, size, "%.17g", value);
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}

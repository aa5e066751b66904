#ifndef FLOWTAP_CVECTORSCAN_SHIM_H
#define FLOWTAP_CVECTORSCAN_SHIM_H
#include <hs/hs.h>
#endif

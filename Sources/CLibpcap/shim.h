#ifndef FLOWTAP_CLIBPCAP_SHIM_H
#define FLOWTAP_CLIBPCAP_SHIM_H
#include <pcap/pcap.h>
#endif

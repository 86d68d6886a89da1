/* SipHash-1-3 (Aumasson & Bernstein): a keyed hash, so that crafted addresses cannot be chosen
 * to collide in the flow index. */
#ifndef RSTGUARD_SIPHASH_H
#define RSTGUARD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit SipHash-1-3 of len bytes at data under the 16-byte key. */
uint64_t SIP_Hash13(const uint8_t key[16], const void *data, size_t len);

#endif

/*
 * A plain C implementation of lbkit's weighted Maglev population: the baseline of the
 * "Maglev population" benchmark group (benchmarks/test_maglev.py compiles it into a shared
 * library during the session and calls it through ctypes).
 *
 * It is written from the rule in lbkit.forwarding.maglev's module docs and shares no code with
 * lbkit's kernels: rounds r = 1 .. Q (Q the largest quota) visit the servers in index order,
 * and server i claims its next preferred free entry, (offset + j * skip) % size for
 * j = 0, 1, ..., only while claims[i] * Q < r * quotas[i]. The caller passes the offsets,
 * skips and quotas lbkit computes (every skip coprime with size, the quotas adding up to size),
 * so the tables must come out identical.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGLEV_EMPTY 0xFFFFFFFFu

/*
 * Fill table[0 .. size - 1] with the index of the server owning each entry.
 * Returns 0, or -1 if memory runs out.
 */
int maglev_populate(const uint32_t *offsets, const uint32_t *skips, const uint32_t *quotas,
                    size_t count, uint32_t size, uint32_t *table)
{
    uint32_t *next = malloc(count * sizeof *next);
    uint32_t *claims = calloc(count, sizeof *claims);
    uint64_t rounds = 0;
    if (next == NULL || claims == NULL) {
        free(next);
        free(claims);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        next[i] = offsets[i];
        if (quotas[i] > rounds)
            rounds = quotas[i];
    }
    memset(table, 0xFF, (size_t)size * sizeof *table);
    for (uint64_t round = 1; round <= rounds; round++) {
        for (size_t i = 0; i < count; i++) {
            if ((uint64_t)claims[i] * rounds >= round * quotas[i])
                continue;
            uint32_t entry = next[i];
            while (table[entry] != MAGLEV_EMPTY) {
                entry += skips[i];
                if (entry >= size)
                    entry -= size;
            }
            table[entry] = (uint32_t)i;
            entry += skips[i];
            if (entry >= size)
                entry -= size;
            next[i] = entry;
            claims[i]++;
        }
    }
    free(next);
    free(claims);
    return 0;
}

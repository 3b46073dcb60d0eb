/* A small persistent thread pool owned by a workspace (internal). */
#ifndef RAD_POOL_H
#define RAD_POOL_H

#include <stddef.h>

typedef struct rad__pool rad__pool;

/* A pool of `threads` - 1 workers (the caller is the last thread).
   Returns NULL on failure. */
rad__pool *rad__pool_create(size_t threads);
void rad__pool_free(rad__pool *p);
/* Runs fn(ctx, t) for t = 0 .. ntasks-1 on the workers and the caller;
   returns when all have finished. One caller at a time. */
void rad__pool_run(rad__pool *p, size_t ntasks, void (*fn)(void *ctx, size_t t), void *ctx);

#endif

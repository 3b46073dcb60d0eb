/* Scratch memory carved from one block: the workspace of a flow. */
#include "internal.h"

#define RAD_ALIGN 64u

size_t rad__arena_bytes(size_t count, size_t size) {
  size_t b;
  if (!rad__mul_size(count, size, &b) || b > SIZE_MAX - RAD_ALIGN)
    return SIZE_MAX;
  return (b + RAD_ALIGN - 1) / RAD_ALIGN * RAD_ALIGN;
}

void *rad__arena_take(rad__arena *a, size_t count, size_t size) {
  size_t b = rad__arena_bytes(count, size);
  if (b == SIZE_MAX || b > a->cap - a->used) {
    a->failed = 1;
    return NULL;
  }
  void *p = a->base ? a->base + a->used : NULL;
  a->used += b;
  return p;
}

/* A persistent thread pool for a workspace: the workers sleep on a
   condition variable between calls, so splitting a batch across threads
   costs two wake-ups, not thread creation. */
#include <pthread.h>
#include <stdlib.h>

#include "pool.h"

struct rad__pool {
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  pthread_t *tid;
  size_t nworkers;
  unsigned long gen;   /* bumped by each run */
  int stop;
  void (*fn)(void *, size_t);
  void *ctx;
  size_t ntasks, next, finished;
};

/* Takes tasks until none is left. Called with the mutex held. */
static void drain(rad__pool *p) {
  while (p->next < p->ntasks) {
    size_t t = p->next++;
    pthread_mutex_unlock(&p->mu);
    p->fn(p->ctx, t);
    pthread_mutex_lock(&p->mu);
    if (++p->finished == p->ntasks) pthread_cond_broadcast(&p->done);
  }
}

static void *worker(void *arg) {
  rad__pool *p = arg;
  pthread_mutex_lock(&p->mu);
  unsigned long seen = p->gen;
  for (;;) {
    while (!p->stop && p->gen == seen) pthread_cond_wait(&p->start, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    drain(p);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

rad__pool *rad__pool_create(size_t threads) {
  if (threads < 2) return NULL;
  rad__pool *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->tid = calloc(threads - 1, sizeof(pthread_t));
  if (!p->tid || pthread_mutex_init(&p->mu, NULL)) goto fail_mem;
  if (pthread_cond_init(&p->start, NULL)) goto fail_mu;
  if (pthread_cond_init(&p->done, NULL)) goto fail_start;
  for (size_t i = 0; i < threads - 1; i++) {
    if (pthread_create(&p->tid[i], NULL, worker, p)) {
      rad__pool_free(p); /* stops the ones already running */
      return NULL;
    }
    p->nworkers++;
  }
  return p;
fail_start:
  pthread_cond_destroy(&p->start);
fail_mu:
  pthread_mutex_destroy(&p->mu);
fail_mem:
  free(p->tid);
  free(p);
  return NULL;
}

void rad__pool_free(rad__pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < p->nworkers; i++) pthread_join(p->tid[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->start);
  pthread_mutex_destroy(&p->mu);
  free(p->tid);
  free(p);
}

void rad__pool_run(rad__pool *p, size_t ntasks, void (*fn)(void *, size_t), void *ctx) {
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->ntasks = ntasks;
  p->next = 0;
  p->finished = 0;
  p->gen++;
  pthread_cond_broadcast(&p->start);
  drain(p);
  while (p->finished < p->ntasks) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

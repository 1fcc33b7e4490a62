// A malloc counter to preload under benchmarks/profile_step.py (Linux, glibc):
//     gcc -O2 -shared -fPIC -o /tmp/alloccount.so benchmarks/alloccount.c -ldl
//     LD_PRELOAD=/tmp/alloccount.so python benchmarks/profile_step.py
// Counts calls and bytes of malloc/calloc/realloc/posix_memalign/aligned_alloc, all and >= 64 KiB
// (array-sized), and frees; profile_step.py reads them with ctypes through alloc_stats(out[5]).
// Not thread-safe counting (a racing BLAS thread may lose an increment): good enough for counts.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_pm)(void **, size_t, size_t);
static void *(*real_aa)(size_t, size_t);
static unsigned long long n_all, b_all, n_big, b_big, n_free;
static __thread int busy;
static char boot[1 << 16]; static size_t boot_used;
#define BIG (64 * 1024)
static void count(size_t s) { n_all++; b_all += s; if (s >= BIG) { n_big++; b_big += s; } }
void alloc_stats(unsigned long long *o) { o[0]=n_all; o[1]=b_all; o[2]=n_big; o[3]=b_big; o[4]=n_free; }
void *malloc(size_t s) {
  if (!real_malloc) { if (busy) { void *p = boot + boot_used; boot_used += (s + 15) & ~15UL; return p; }
    busy = 1; real_malloc = dlsym(RTLD_NEXT, "malloc"); busy = 0; }
  count(s); return real_malloc(s);
}
void *calloc(size_t n, size_t s) {
  if (!real_calloc) { if (busy) { void *p = boot + boot_used; boot_used += (n*s + 15) & ~15UL; memset(p,0,n*s); return p; }
    busy = 1; real_calloc = dlsym(RTLD_NEXT, "calloc"); busy = 0; }
  count(n * s); return real_calloc(n, s);
}
void *realloc(void *p, size_t s) { if (!real_realloc) real_realloc = dlsym(RTLD_NEXT, "realloc"); count(s); return real_realloc(p, s); }
int posix_memalign(void **p, size_t a, size_t s) { if (!real_pm) real_pm = dlsym(RTLD_NEXT, "posix_memalign"); count(s); return real_pm(p, a, s); }
void *aligned_alloc(size_t a, size_t s) { if (!real_aa) real_aa = dlsym(RTLD_NEXT, "aligned_alloc"); count(s); return real_aa(a, s); }
void free(void *p) {
  static void (*real_free)(void *);
  if ((char *)p >= boot && (char *)p < boot + sizeof boot) return;
  if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
  n_free++; real_free(p);
}

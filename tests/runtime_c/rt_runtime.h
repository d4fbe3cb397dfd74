/* rt_runtime.h: what templates/model.c.j2 defines before it inserts the runtime
 * files (templates/runtime/), for compiling them on their own: the C library
 * headers and the kernel storage classes, the per-layer "speed" form by default,
 * the shared "size" form with -DRT_SIZE (the copies must agree with model.c.j2). */
#ifndef RT_RUNTIME_H
#define RT_RUNTIME_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGEC_KERNEL_SPEED static inline __attribute__((always_inline))
#if defined(__clang__)
#define EDGEC_KERNEL_SIZE static __attribute__((noinline, unused))
#else
#define EDGEC_KERNEL_SIZE static __attribute__((noinline, noclone, unused))
#endif
#else
#define EDGEC_KERNEL_SPEED static inline
#define EDGEC_KERNEL_SIZE static
#endif
#ifdef RT_SIZE
#define EDGEC_KERNEL EDGEC_KERNEL_SIZE
#define EDGEC_INLINE static inline
#else
#define EDGEC_KERNEL EDGEC_KERNEL_SPEED
#define EDGEC_INLINE EDGEC_KERNEL_SPEED
#endif

#endif /* RT_RUNTIME_H */

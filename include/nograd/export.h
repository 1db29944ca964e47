/* NG_EXPORT marks the functions of nograd's API: the library is built with hidden visibility
 * (-fvisibility=hidden), so that only what the public headers declare with NG_EXPORT leaves libnograd.so;
 * everything else is internal (static, or named ng__ / declared in private headers under src/), as libuv does
 * with UV_EXTERN. For a consumer the macro only says where a function comes from. */
#ifndef NOGRAD_EXPORT_H
#define NOGRAD_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define NG_EXPORT __attribute__((visibility("default")))
#else
#define NG_EXPORT
#endif

#endif

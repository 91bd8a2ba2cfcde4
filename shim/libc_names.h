/* Included first, before any other header, by the files that define functions under libc's own names
 * whose glibc declarations _FORTIFY_SOURCE turns into inline checking wrappers (read, recv, poll,
 * fprintf...): after such a wrapper clang drops the visibility of the library's definition, which
 * then interposes nothing. The checks are for callers: the library's own are the _chk hooks.
 * (<features.h> decides once, at the first header.) */
#pragma once
#undef _FORTIFY_SOURCE

// SPDX-License-Identifier: MIT
//
// bytepool.hpp - C++17 (and C++20) classes over the C API, header-only.
//
//   bytepool::pool    owns a bp_pool: constructed from a bp_config (default:
//                     the defaults), destroyed with it. Movable, not copyable.
//   bytepool::buffer  owns one reference of a pooled buffer: a copy retains,
//                     the destructor releases (bp_release: any thread), a
//                     move hands the reference over. slice(offset) is one
//                     more reference through an interior pointer.
//
// Errors: a failed get or construction throws std::bad_alloc for ENOMEM and
// std::system_error (with the errno value) otherwise; a retain that cannot
// be taken (EOVERFLOW) throws std::system_error. Nothing else throws.
// Thread-safety is the C API's: distinct buffer objects may be used on any
// threads at once; one buffer object is not synchronised (as std::string).
// The pool may be destroyed while buffers are alive: they stay valid and the
// pool's memory is freed with the last of them (bp_pool_destroy).
#ifndef BYTEPOOL_HPP
#define BYTEPOOL_HPP

#include "bytepool.h"

#include <cerrno>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <system_error>
#include <utility>
#if __cplusplus >= 202002L
#include <span>
#endif

namespace bytepool {

namespace detail {
[[noreturn]] inline void throw_errno(int err, const char *what) {
    if (err == ENOMEM)
        throw std::bad_alloc();
    throw std::system_error(err, std::generic_category(), what);
}
} // namespace detail

class buffer {
  public:
    buffer() noexcept = default;

    // Takes over one reference the caller holds on the buffer containing p
    // (as returned by bp_get or bp_retain); len is what size() reports.
    static buffer adopt(void *p, std::size_t len) noexcept { return buffer(p, len); }

    buffer(const buffer &o) : p_(o.p_ ? retain(o.p_) : nullptr), len_(o.len_) {}
    buffer(buffer &&o) noexcept
        : p_(std::exchange(o.p_, nullptr)), len_(std::exchange(o.len_, 0)) {}
    buffer &operator=(const buffer &o) {
        if (this != &o)
            buffer(o).swap(*this);
        return *this;
    }
    buffer &operator=(buffer &&o) noexcept {
        buffer(std::move(o)).swap(*this);
        return *this;
    }
    ~buffer() { reset(); }

    // The bytes: data() is the start (or the slice's pointer), size() the
    // length asked for (minus a slice's offset), capacity() all the bytes
    // from data() to the buffer's end, which the program may use.
    unsigned char *data() const noexcept { return static_cast<unsigned char *>(p_); }
    std::size_t size() const noexcept { return len_; }
    std::size_t capacity() const noexcept { return p_ ? bp_cap(p_) : 0; }
    std::size_t refcount() const noexcept { return p_ ? bp_refcount(p_) : 0; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
#if __cplusplus >= 202002L
    std::span<unsigned char> span() const noexcept { return {data(), len_}; }
#endif

    // One more reference to the same buffer, seen from data() + offset.
    // offset must be below capacity() (data() + capacity() is past the
    // buffer: std::out_of_range); size() of the slice is what is left of
    // size(), 0 past it.
    buffer slice(std::size_t offset) const {
        if (!p_ || offset >= capacity())
            throw std::out_of_range("bytepool::buffer::slice: offset past the buffer");
        unsigned char *q = data() + offset;
        return buffer(retain(q), offset < len_ ? len_ - offset : 0);
    }

    // Drops the reference now (the object becomes empty).
    void reset() noexcept {
        if (p_)
            bp_release(p_);
        p_ = nullptr;
        len_ = 0;
    }
    // Gives the reference to the caller, who ends it with bp_release.
    void *release() noexcept {
        len_ = 0;
        return std::exchange(p_, nullptr);
    }
    void swap(buffer &o) noexcept {
        std::swap(p_, o.p_);
        std::swap(len_, o.len_);
    }

  private:
    buffer(void *p, std::size_t len) noexcept : p_(p), len_(len) {}
    static void *retain(void *p) {
        void *r = bp_retain(p);
        if (!r)
            detail::throw_errno(errno, "bp_retain");
        return r;
    }
    void *p_ = nullptr;
    std::size_t len_ = 0;
};

inline void swap(buffer &a, buffer &b) noexcept { a.swap(b); }

class pool {
  public:
    pool() : pool(nullptr) {}
    explicit pool(const bp_config &cfg) : pool(&cfg) {}
    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    pool &operator=(pool &&o) noexcept {
        if (this != &o) {
            bp_pool_destroy(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~pool() { bp_pool_destroy(p_); }

    // A buffer of at least len bytes (bp_get). Throws std::bad_alloc when
    // out of memory or at the pool's budget, std::system_error(EINVAL) for
    // len 0 or a moved-from pool.
    buffer get(std::size_t len) {
        void *p = bp_get(p_, len);
        if (!p)
            detail::throw_errno(errno, "bp_get");
        return buffer::adopt(p, len);
    }

    // A snapshot of the statistics (bp_pool_stats).
    bp_stats stats() const {
        bp_stats st;
        int err = bp_pool_stats(p_, &st);
        if (err)
            detail::throw_errno(err, "bp_pool_stats");
        return st;
    }

    // The C handle, for every call this class does not wrap. Still owned by
    // this object.
    bp_pool *native() const noexcept { return p_; }

  private:
    explicit pool(const bp_config *cfg) : p_(bp_pool_new(cfg)) {
        if (!p_)
            detail::throw_errno(errno, "bp_pool_new");
    }
    bp_pool *p_;
};

} // namespace bytepool

#endif // BYTEPOOL_HPP

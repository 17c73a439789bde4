// SPDX-License-Identifier: MIT
// bytepool.hpp: ownership (copy retains, move hands over, destructor
// releases), slices, errors as exceptions, the C handle. Built by
// check_cxx.sh with g++ and clang++, C++17 and C++20, under ASan+UBSan.
#include <bytepool.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);             \
            std::exit(1);                                                                          \
        }                                                                                          \
    } while (0)

static_assert(!std::is_copy_constructible<bytepool::pool>::value, "a pool is owned once");
static_assert(std::is_nothrow_move_constructible<bytepool::buffer>::value, "moves never throw");

static std::uint64_t outstanding(const bytepool::pool &p) { return p.stats().outstanding; }

static void copy_move_destroy() {
    bytepool::pool pool;
    {
        bytepool::buffer a = pool.get(100);
        CHECK(a && a.size() == 100 && a.capacity() == 128 && a.refcount() == 1);
        std::memset(a.data(), 7, a.capacity()); // the whole capacity is usable
        bytepool::buffer b = a;                 // copy: one more reference
        CHECK(a.refcount() == 2 && b.data() == a.data() && b.size() == 100);
        bytepool::buffer c = std::move(b); // move: the reference changes hands
        CHECK(!b && b.data() == nullptr && b.refcount() == 0 && c.refcount() == 2);
        b = c; // copy assignment
        CHECK(a.refcount() == 3);
        b = std::move(c); // move assignment releases b's old reference
        CHECK(!c && a.refcount() == 2);
        bytepool::buffer &same = b;
        b = same; // self-assignment keeps it
        CHECK(a.refcount() == 2);
        CHECK(outstanding(pool) == 1);
    }
    CHECK(outstanding(pool) == 0); // every destructor released
}

static void slices() {
    bytepool::pool pool;
    bytepool::buffer a = pool.get(100);
    bytepool::buffer s = a.slice(10);
    CHECK(s.data() == a.data() + 10 && s.size() == 90 && s.capacity() == 118);
    CHECK(a.refcount() == 2);
    bytepool::buffer past_len = a.slice(120); // inside the capacity, past the length
    CHECK(past_len.size() == 0 && past_len.capacity() == 8 && a.refcount() == 3);
    bool threw = false;
    try {
        (void)a.slice(a.capacity()); // the end pointer is the next buffer's start
    } catch (const std::out_of_range &) {
        threw = true;
    }
    CHECK(threw && a.refcount() == 3);
    a.reset();
    CHECK(!a && s.refcount() == 2); // the slice keeps the buffer alive
    std::memset(s.data(), 1, s.capacity());
    void *raw = s.release(); // hand the reference to C code
    CHECK(!s && bp_refcount(raw) == 2);
    bytepool::buffer back = bytepool::buffer::adopt(raw, 5);
    CHECK(back.size() == 5 && back.refcount() == 2);
}

static void errors() {
    bytepool::pool pool;
    bool einval = false;
    try {
        (void)pool.get(0);
    } catch (const std::system_error &e) {
        einval = e.code().value() == EINVAL;
    }
    CHECK(einval);

    bp_config cfg{};
    std::size_t sizes[] = {4096};
    cfg.sizes = sizes;
    cfg.nsizes = 1;
    cfg.max_bytes = 4u << 20; /* a few segments */
    cfg.flags = BP_NO_BACKGROUND;
    bytepool::pool small(cfg);
    std::vector<bytepool::buffer> held;
    bool oom = false;
    try {
        for (int i = 0; i < 10000; i++)
            held.push_back(small.get(4096));
    } catch (const std::bad_alloc &) {
        oom = true;
    }
    CHECK(oom && !held.empty() && held.size() < 10000);
    CHECK(small.stats().budget_refused == 1);
    held.clear();
    CHECK(small.get(4096).capacity() == 4096); // room again

    std::size_t bad[] = {64, 64}; // duplicate tiers: EINVAL from bp_pool_new
    cfg.sizes = bad;
    cfg.nsizes = 2;
    bool bad_cfg = false;
    try {
        bytepool::pool never(cfg);
    } catch (const std::system_error &e) {
        bad_cfg = e.code().value() == EINVAL;
    }
    CHECK(bad_cfg);
}

static void native_and_lifetime() {
    bytepool::buffer survivor;
    {
        bytepool::pool pool;
        void *p = bp_get(pool.native(), 1000); // the C API on the same pool
        CHECK(p && bp_put(pool.native(), p) == 0);
        survivor = pool.get(3000);
        bytepool::pool moved = std::move(pool);
        CHECK(pool.native() == nullptr && moved.native() != nullptr);
    } // the pool is destroyed with a buffer alive: it stays valid
    CHECK(survivor.refcount() == 1 && survivor.capacity() == 4096);
    std::memset(survivor.data(), 3, survivor.capacity());
}

#if __cplusplus >= 202002L
static void spans() {
    bytepool::pool pool;
    bytepool::buffer a = pool.get(64);
    std::span<unsigned char> s = a.span();
    CHECK(s.data() == a.data() && s.size() == 64);
    for (unsigned char &c : s)
        c = 9;
    CHECK(a.data()[63] == 9);
}
#endif

int main() {
    copy_move_destroy();
    slices();
    errors();
    native_and_lifetime();
#if __cplusplus >= 202002L
    spans();
#endif
    std::printf("bytepool.hpp C++%ld: ok\n", __cplusplus / 100 % 100);
    return 0;
}

// Storage: a reference-counted block of bytes shared by a tensor and its views, either from the
// caching allocator (made at once, or deferred until first read) or borrowed from outside (e.g. a
// NumPy array kept alive by `owner`).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace gaze {

struct LowpState;  // ops/lowp.h

class Storage {
 public:
  // A fresh 64-byte aligned block from the caching allocator (contents uninitialised).
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Borrows `data`; `owner` keeps it alive for as long as the storage lives.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, std::shared_ptr<void> owner);
  // nbytes whose block is taken from the caching allocator and filled by fill(block) on the first
  // data() (once, whichever thread asks first; the others wait; a fill that throws leaves it unmade
  // for the next reader). fill must not be empty. A quantized model folder's matrices hold their
  // float values this way: a model that only multiplies by the int8 or bf16 form never makes them.
  static std::shared_ptr<Storage> deferred(size_t nbytes, std::function<void(void*)> fill);

  // Public only for make_shared; the Key keeps construction inside allocate()/borrow()/deferred().
  class Key {
    friend class Storage;
    Key() = default;
  };
  explicit Storage(Key);
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const {
    void* p = data_.load(std::memory_order_acquire);
    return p ? p : make_deferred();
  }
  size_t nbytes() const { return nbytes_; }
  // False for a deferred storage until something asked for its data.
  bool materialized() const { return data_.load(std::memory_order_acquire) != nullptr; }
  // Replaces a deferred storage's fill while its bytes are still unmade; false (nothing done) once
  // they are made, or for a storage that was never deferred.
  bool refill(std::function<void(void*)> fill);

  // Bumped by every in-place write, so autograd can tell a saved tensor was modified.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

  // The reduced-precision form of the matrix this storage holds, when inference multiplies by it in
  // bf16 or int8 (ops/lowp.h); kept here so that every view of the weight finds it.
  const std::shared_ptr<LowpState>& lowp() const { return lowp_; }
  void set_lowp(std::shared_ptr<LowpState> s) { lowp_ = std::move(s); }

 private:
  void* make_deferred() const;

  struct Deferred;                            // its fill, and the lock that runs it once
  mutable std::atomic<void*> data_{nullptr};  // null only while deferred (or borrowed null)
  std::unique_ptr<Deferred> deferred_;
  size_t nbytes_ = 0;
  std::shared_ptr<void> owner_;  // keeps borrowed memory alive (may be null: caller guarantees it)
  bool from_allocator_ = false;  // blocks from allocate() and deferred() go back to the allocator
  uint64_t version_ = 0;
  std::shared_ptr<LowpState> lowp_;
};

}  // namespace gaze

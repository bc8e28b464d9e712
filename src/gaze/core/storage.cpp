#include "gaze/core/storage.h"

#include <mutex>

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"

namespace gaze {

struct Storage::Deferred {
  std::mutex mu;
  std::function<void(void*)> fill;
};

Storage::Storage(Key) {}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  auto s = std::make_shared<Storage>(Key{});
  s->data_.store(allocator::allocate(nbytes), std::memory_order_relaxed);
  s->nbytes_ = nbytes;
  s->from_allocator_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>(Key{});
  s->data_.store(data, std::memory_order_relaxed);
  s->nbytes_ = nbytes;
  s->owner_ = std::move(owner);
  return s;
}

std::shared_ptr<Storage> Storage::deferred(size_t nbytes, std::function<void(void*)> fill) {
  GAZE_CHECK(fill != nullptr, ValueError, "Storage::deferred: no fill for {} bytes", nbytes);
  auto s = std::make_shared<Storage>(Key{});
  s->deferred_ = std::make_unique<Deferred>();
  s->deferred_->fill = std::move(fill);
  s->nbytes_ = nbytes;
  s->from_allocator_ = true;
  return s;
}

void* Storage::make_deferred() const {
  if (!deferred_) return nullptr;  // borrowed null (an empty array's)
  std::lock_guard lock(deferred_->mu);
  if (void* p = data_.load(std::memory_order_acquire)) return p;  // made while we waited
  void* p = allocator::allocate(nbytes_);
  try {
    deferred_->fill(p);
  } catch (...) {
    allocator::deallocate(p, nbytes_);
    throw;
  }
  data_.store(p, std::memory_order_release);
  deferred_->fill = nullptr;  // what it captured (the quantized weight) need not live on for it
  return p;
}

bool Storage::refill(std::function<void(void*)> fill) {
  GAZE_CHECK(fill != nullptr, ValueError, "Storage::refill: no fill");
  if (!deferred_) return false;
  std::lock_guard lock(deferred_->mu);
  if (data_.load(std::memory_order_acquire)) return false;
  deferred_->fill = std::move(fill);
  return true;
}

Storage::~Storage() {
  void* p = data_.load(std::memory_order_relaxed);
  if (from_allocator_ && p) allocator::deallocate(p, nbytes_);
}

}  // namespace gaze

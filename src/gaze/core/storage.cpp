#include "gaze/core/storage.h"

#include "gaze/core/allocator.h"

namespace gaze {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  auto s = std::make_shared<Storage>(Key{});
  s->data_ = allocator::allocate(nbytes);
  s->nbytes_ = nbytes;
  s->from_allocator_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>(Key{});
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->owner_ = std::move(owner);
  return s;
}

Storage::~Storage() {
  if (from_allocator_) allocator::deallocate(data_, nbytes_);
}

}  // namespace gaze

// TensorBoard's event files, written without TensorFlow: a TFRecord file of Event protocol buffers
// holding scalar summaries, which `tensorboard --logdir runs/` reads (train.tensorboard).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace gaze::train {

// CRC-32C (Castagnoli), as TFRecord checksums its lengths and payloads.
uint32_t crc32c(const void* data, size_t size);

class EventWriter {
 public:
  // Creates DIR/events.out.tfevents.SECONDS.HOST.gaze and writes its file_version event.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  // One scalar (TensorBoard's simple_value) at a step; flushed at once, so a crash loses nothing
  // written before it.
  void scalar(const std::string& tag, int64_t step, double value);
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& event);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace gaze::train

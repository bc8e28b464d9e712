#include "gaze/train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"

namespace gaze::train {
namespace fs = std::filesystem;

namespace {
constexpr const char* kLock = ".lock";
}

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / kLock).string();
  // O_NOFOLLOW: a symlink planted as .lock must not make gaze truncate the file it points to.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  GAZE_CHECK(fd_ >= 0, DataError,
             "{}: cannot create the run folder's lock ({}; it must be a file of gaze's own)", path,
             std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw DataError(fmt::format(
        "{}: another gaze train{} is using this run folder; wait for it to finish or train into "
        "another output folder",
        run_dir, n > 0 ? fmt::format(" (pid {})", std::string(buf, static_cast<size_t>(n))) : ""));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::optional<std::string> run_folder_of(const std::string& dir) {
  const fs::path d = fs::path(dir).lexically_normal();
  const fs::path parent = d.parent_path().empty() ? fs::path(".") : d.parent_path();
  std::error_code ec;
  for (const fs::path& p : {d, parent})
    if (fs::is_regular_file(p / "config.yaml", ec)) return p.string();
  return std::nullopt;
}

bool run_folder_in_use(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return fs::exists(dir, ec);
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename() != kLock) return true;
  return false;
}

std::optional<int64_t> checkpoint_step(const std::string& name) {
  if (name.rfind("checkpoint-", 0) != 0 || name.size() > 30) return std::nullopt;
  const std::string digits = name.substr(11);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, std::string>> numbered_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const auto step = checkpoint_step(e.path().filename().string());
    if (!step) continue;
    if (!io::find_checkpoint(e.path().string())) continue;  // not a gaze checkpoint: not ours
    out.emplace_back(*step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void prune_numbered_checkpoints(const std::string& run_dir, int64_t keep) {
  const auto all = numbered_checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i)
    io::remove_checkpoint(all[i].second);
}

void clear_run_folder(const std::string& dir) {
  for (const char* sub : {"best", "last"}) io::remove_checkpoint((fs::path(dir) / sub).string());
  for (const auto& [step, path] : numbered_checkpoints(dir)) io::remove_checkpoint(path);
  std::error_code it;
  for (const auto& e : fs::directory_iterator(dir, it)) {  // train.tensorboard's event files
    const std::string name = e.path().filename().string();
    if (name.rfind("events.out.tfevents.", 0) == 0 && name.ends_with(".gaze") &&
        e.is_regular_file(it))
      fs::remove(e.path(), it);
  }
  // config.yaml is not removed: the new run's record replaces it (and it may be the user's own).
  for (const char* file : {"metrics.jsonl", "test_report.json", "test_predictions.jsonl",
                           "report.html", "data_parallel.json"}) {
    const fs::path p = fs::path(dir) / file;
    std::error_code ec;
    if (fs::symlink_status(p, ec).type() != fs::file_type::regular)
      continue;  // absent, or not ours
    fs::remove(p, ec);
    GAZE_CHECK(!ec, DataError, "{}: cannot remove ({})", p.string(), ec.message());
  }
}

void truncate_metrics(const std::string& dir, int64_t step) {
  const std::string path = (fs::path(dir) / "metrics.jsonl").string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return;
  std::string kept;
  std::istringstream in(io::read_file(path, io::kMaxMetadataBytes));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // Unreadable lines (a write cut by a crash) are dropped with the later ones.
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    if (j["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  io::write_file_atomic(path, kept);
}

std::vector<std::string> changed_settings(const std::map<std::string, std::string>& before,
                                          const std::map<std::string, std::string>& after,
                                          const std::vector<std::string>& allowed) {
  std::vector<std::string> out;
  auto skip = [&](const std::string& key) {
    for (const auto& a : allowed)
      if (key.rfind(a, 0) == 0) return true;
    return false;
  };
  for (const auto& [key, value] : after) {
    if (skip(key)) continue;
    const auto it = before.find(key);
    const std::string old = it == before.end() ? "(none)" : it->second;
    if (old != value) out.push_back(fmt::format("{}: {} -> {}", key, old, value));
  }
  for (const auto& [key, value] : before)
    if (!skip(key) && !after.contains(key))
      out.push_back(fmt::format("{}: {} -> (none)", key, value));
  return out;
}

}  // namespace gaze::train

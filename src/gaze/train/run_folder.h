// A run folder (`output` of a training run) that users can trust: one run owns it at a time (a
// lock), a new run does not mix with an old one, and a resumed run continues the same record.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gaze::train {

// An exclusive lock on a run folder for the lifetime of the object (flock on RUN/.lock, released by
// the kernel even if the process is killed). DataError naming the holder's pid if another process
// holds it.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// The run folder `dir` belongs to: `dir` itself or its parent (a checkpoint such as RUN/best),
// whichever holds a config.yaml; nullopt when neither does.
std::optional<std::string> run_folder_of(const std::string& dir);

// Whether `dir` holds anything but the lock file (a previous run, or a user's files).
bool run_folder_in_use(const std::string& dir);

// What a run folder's previous run left (metrics.jsonl, test_report.json, best/, last/; any of them
// may be missing), removed before a run starts afresh there (--overwrite). Other files stay;
// config.yaml is replaced by the new run's record.
void clear_run_folder(const std::string& dir);

// The step of a folder named checkpoint-STEP (train.save_every's names); nullopt for other names.
std::optional<int64_t> checkpoint_step(const std::string& name);
// The checkpoint-STEP folders of a run (train.save_every), oldest first, with their steps. Only
// gaze checkpoints count.
std::vector<std::pair<int64_t, std::string>> numbered_checkpoints(const std::string& run_dir);
// Removes all but the `keep` newest of them.
void prune_numbered_checkpoints(const std::string& run_dir, int64_t keep);

// Keeps the lines of RUN/metrics.jsonl recorded at or before `step` (a resumed run records the
// later validations again; a crash after a record and before its checkpoint would duplicate them).
void truncate_metrics(const std::string& dir, int64_t step);

// The settings two flat configurations (key -> value as JSON text) disagree on, as
// "key: old -> new", skipping keys that start with one of `allowed` (e.g. "train.").
std::vector<std::string> changed_settings(const std::map<std::string, std::string>& before,
                                          const std::map<std::string, std::string>& after,
                                          const std::vector<std::string>& allowed);

}  // namespace gaze::train

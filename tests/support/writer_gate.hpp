// Holds a store's writer inside one write (an update of a service whose change waits), so that the writes
// started meanwhile queue up behind it; they are committed once the gate opens. For tests of how queued
// writes share commits.
#pragma once

#include <chrono>
#include <future>
#include <string>

#include "daemon/store/store.hpp"

namespace notifyd::test {

class WriterGate {
 public:
  // Starts the held write: an update of (account_sid, service_sid), which must exist.
  WriterGate(Store& store, std::string account_sid, std::string service_sid);
  ~WriterGate();  // opens the gate if still shut, then waits for the held write
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  // Whether the writer is inside the held write within `timeout`.
  bool wait_entered(std::chrono::seconds timeout = std::chrono::seconds(30));
  void open();
  // The held write's own result; opens the gate first.
  Result<ServiceRecord> result();

 private:
  std::promise<void> release_;
  std::shared_future<void> released_;
  std::promise<void> entered_;
  std::future<void> entered_future_;
  std::future<Result<ServiceRecord>> held_;
  bool opened_ = false;
};

}  // namespace notifyd::test

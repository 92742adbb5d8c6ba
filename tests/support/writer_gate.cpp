#include "tests/support/writer_gate.hpp"

#include <utility>

namespace notifyd::test {

WriterGate::WriterGate(Store& store, std::string account_sid, std::string service_sid)
    : released_(release_.get_future().share()), entered_future_(entered_.get_future()) {
  held_ = std::async(std::launch::async,
                     [this, &store, account = std::move(account_sid), service = std::move(service_sid)] {
                       return store.update_service(account, service, [this](ServiceRecord& s) -> Status {
                         entered_.set_value();
                         released_.wait();
                         s.friendly_name = "gate passed";
                         return {};
                       });
                     });
}

WriterGate::~WriterGate() {
  open();
  if (held_.valid()) held_.wait();
}

bool WriterGate::wait_entered(std::chrono::seconds timeout) {
  return entered_future_.wait_for(timeout) == std::future_status::ready;
}

void WriterGate::open() {
  if (!opened_) release_.set_value();
  opened_ = true;
}

Result<ServiceRecord> WriterGate::result() {
  open();
  return held_.get();
}

}  // namespace notifyd::test

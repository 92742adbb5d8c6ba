#pragma once
// Test helper: an io_context on its own threads, and a way to await a coroutine from a test thread with a
// bounded wait. The coroutine runs on the io_context; a timeout fails the test instead of hanging it.
#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace notifyd::test {

class IoThreads {
 public:
  explicit IoThreads(unsigned threads = 1) : work_(boost::asio::make_work_guard(io_)) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  boost::asio::io_context& io() { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  template <class T>
  T run(boost::asio::awaitable<T> coroutine, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto future = boost::asio::co_spawn(io_, std::move(coroutine), boost::asio::use_future);
    if (future.wait_for(timeout) != std::future_status::ready) {
      throw std::runtime_error("coroutine did not finish in time");
    }
    return future.get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace notifyd::test
